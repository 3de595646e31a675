"""Cross-modal retrieval recall on held-out clips, with its chance level.

text -> audio: each caption ranks all clips; a hit when its own clip is in the top K.
audio -> text: each clip ranks all captions; a hit when one of its captions is in the top K.
Chance is the expected recall of a random ranking: ``K / num_clips`` for text -> audio and
``1 - C(M - m, K) / C(M, K)`` for a clip with ``m`` of ``M`` captions, averaged over clips.

>>> r = retrieval_recall(torch.eye(3), torch.eye(3), torch.arange(3), ks=(1,))
>>> r["text_to_audio"]["recall@1"], r["chance"]["text_to_audio"]["recall@1"]
(1.0, 0.3333333333333333)
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch

__all__ = ["retrieval_recall"]

KS = (1, 5, 10)


def _recall(scores: torch.Tensor, relevant: torch.Tensor, k: int) -> float:
    """``scores`` (queries, items), ``relevant`` bool, same shape: fraction of queries with a
    relevant item among the top ``k`` (ties in the query's favour)."""
    best_relevant = scores.masked_fill(~relevant, -math.inf).amax(dim=1)
    rank = (scores > best_relevant[:, None]).sum(dim=1)  # items strictly better
    return float((rank < k).float().mean())


def retrieval_recall(
    audio: torch.Tensor, text: torch.Tensor, text_clip: torch.Tensor, ks: Sequence[int] = KS
) -> dict[str, Any]:
    """``audio`` unit ``(num_clips, d)``, ``text`` unit ``(num_captions, d)``, ``text_clip``
    ``(num_captions,)`` clip index of each caption -> ``{"text_to_audio": {"recall@K": ...},
    "audio_to_text": {...}, "chance": {same two}, "num_clips", "num_captions"}``."""
    num_clips, num_captions = len(audio), len(text)
    scores = text @ audio.T  # (captions, clips)
    relevant = text_clip[:, None] == torch.arange(num_clips)[None]
    per_clip = relevant.sum(dim=0).tolist()

    def a2t_chance(k: int) -> float:
        k = min(k, num_captions)
        misses = [math.comb(num_captions - m, k) / math.comb(num_captions, k) for m in per_clip]
        return 1.0 - sum(misses) / num_clips

    return {
        "text_to_audio": {f"recall@{k}": _recall(scores, relevant, k) for k in ks},
        "audio_to_text": {f"recall@{k}": _recall(scores.T, relevant.T, k) for k in ks},
        "chance": {
            "text_to_audio": {f"recall@{k}": min(k, num_clips) / num_clips for k in ks},
            "audio_to_text": {f"recall@{k}": a2t_chance(k) for k in ks},
        },
        "num_clips": num_clips,
        "num_captions": num_captions,
    }


def format_table(metrics: dict[str, Any]) -> str:
    """The recall dict as a small text table (rows: direction and chance; columns: K)."""
    ks = list(metrics["text_to_audio"])
    rows = [
        ("text->audio", metrics["text_to_audio"]),
        ("  chance", metrics["chance"]["text_to_audio"]),
        ("audio->text", metrics["audio_to_text"]),
        ("  chance", metrics["chance"]["audio_to_text"]),
    ]
    lines = [f"{'':12s}" + "".join(f"{k:>11s}" for k in ks)]
    lines += [f"{name:12s}" + "".join(f"{row[k]:11.3f}" for k in ks) for name, row in rows]
    return "\n".join(lines)
