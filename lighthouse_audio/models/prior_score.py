"""Moment scores that compare across recordings: the model's confidence mixed with the joint prior.

QD-DETR's confidence says how well a window fits *this* clip's best match for the query; it is
trained on clips that (almost) always hold the queried sound, so on a long recording cut into
chunks, a chunk without the sound still gets confident windows, and those outrank the true one
(docs/RESULTS.md, "The 60 s benchmark"). The joint prior that AM-DETR carries
(``models/joint_prior.py``) gives an absolute measure: the cosine similarity of the query with
each frame, the same scale in every chunk and every recording. Scoring a window by

    score = (1 - mix) * confidence + mix * max(0, highest similarity of a frame in the window)

keeps the model's boundaries and its ranking within a clip (``mix = 0`` is Lighthouse's score)
and makes scores from different chunks comparable. ``mix`` is the config key
``prior_score_mix``; it needs a model with a joint prior, and is tuned over ``SCORE_MIXES`` on
validation data (``benchmarks/amr_60s.py``, ``lighthouse demo``). Negative similarities count as
0, so scores stay in [0, 1] like Lighthouse's.

A frame (``hop`` seconds, centred at ``(j + 0.5) * hop``) belongs to a window when its centre lies
inside it; a window too short to hold a centre takes the frame under its middle.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import Tensor

__all__ = [
    "PRIOR_SIMILARITY_KEY",
    "SCORE_MIXES",
    "check_prior_fraction",
    "check_prior_score_mix",
    "mix_prior_scores",
    "prior_similarity",
    "window_peak",
    "window_prior",
]

PRIOR_SIMILARITY_KEY = "prior_similarity"
# the mixes tuned over on validation data (the 60 s benchmark, the demo)
SCORE_MIXES = (0.0, 0.25, 0.5, 0.75, 1.0)


def window_peak(
    similarity: Tensor, frame_mask: Tensor, windows: Tensor, hop: float
) -> tuple[Tensor, Tensor]:
    """Highest frame similarity inside each window, and that frame's index.

    Args:
        similarity: ``[B, L]`` query-frame cosine similarity.
        frame_mask: ``[B, L]``, 1 for real frames, 0 for padding.
        windows: ``[B, Q, 2]`` (start, end) in seconds.
        hop: seconds per frame; frame ``j`` is centred at ``(j + 0.5) * hop``.

    Returns:
        ``[B, Q]`` similarities and ``[B, Q]`` frame indices.
    """
    mask = frame_mask.bool()
    index = torch.arange(similarity.shape[1], dtype=similarity.dtype, device=similarity.device)
    centres = (index + 0.5) * hop  # [L]
    start, end = windows[..., :1], windows[..., 1:]  # [B, Q, 1]
    inside = (centres >= start) & (centres <= end) & mask[:, None]  # [B, Q, L]
    filled = similarity[:, None].expand_as(inside).masked_fill(~inside, float("-inf"))
    best, best_index = filled.max(-1)  # -inf where no centre lies inside
    last = (mask.sum(1, keepdim=True) - 1).clamp(min=0)  # [B, 1]
    middle = ((start + end) / 2).squeeze(-1) / hop  # [B, Q], in frames
    nearest = torch.minimum(middle.floor().long().clamp(min=0), last.expand_as(middle))
    found = torch.isfinite(best)
    return (
        torch.where(found, best, similarity.gather(1, nearest)),
        torch.where(found, best_index, nearest),
    )


def window_prior(similarity: Tensor, frame_mask: Tensor, windows: Tensor, hop: float) -> Tensor:
    """Highest frame similarity inside each window (``[B, Q]``; arguments as
    :func:`window_peak`)."""
    return window_peak(similarity, frame_mask, windows, hop)[0]


def prior_similarity(outputs: Mapping[str, Tensor], what: str) -> tuple[Tensor, Tensor]:
    """The outputs' ``[B, L]`` similarity and frame mask on the CPU; ``what`` (the setting that
    needs them) is refused when the model has no joint prior."""
    if PRIOR_SIMILARITY_KEY not in outputs:
        raise ValueError(
            f"{what} needs the joint prior's similarity in the model outputs "
            f"('{PRIOR_SIMILARITY_KEY}'): train with joint_prior=FILE"
        )
    similarity = outputs[PRIOR_SIMILARITY_KEY].detach().float().cpu()
    return similarity, outputs["video_mask"].detach().cpu()


def mix_prior_scores(
    confidence: Tensor, outputs: Mapping[str, Tensor], windows: Tensor, hop: float, mix: float
) -> Tensor:
    """``(1 - mix) * confidence + mix * window prior`` (``[B, Q]``); ``confidence`` when 0."""
    if mix == 0:
        return confidence
    similarity, frame_mask = prior_similarity(outputs, f"prior_score_mix={mix}")
    prior = window_prior(similarity, frame_mask, windows, hop)
    return (1 - mix) * confidence + mix * prior.clamp(min=0)


def check_prior_fraction(opt: Mapping[str, Any], key: str, use: str) -> float:
    """The config's ``key`` as a float in [0, 1], refused above 0 without a joint prior to
    ``use`` ("score with", "refine with")."""
    raw = opt.get(key) or 0
    try:
        value = float(raw)
    except (TypeError, ValueError):
        raise ValueError(f"{key}={raw!r}: must be a number in [0, 1]") from None
    if not 0 <= value <= 1:
        raise ValueError(f"{key}={raw!r}: must be a number in [0, 1]")
    if value > 0 and not (opt.get("joint_prior") or opt.get("joint_prior_heads")):
        raise ValueError(
            f"{key}={raw!r}: the model has no joint prior to {use} (train with joint_prior=FILE)"
        )
    return value


def check_prior_score_mix(opt: Mapping[str, Any]) -> float:
    """The config's ``prior_score_mix`` as a float in [0, 1], refused without a joint prior."""
    return check_prior_fraction(opt, "prior_score_mix", "score with")
