"""Prediction results for people and scripts: times as hh:mm:ss.s, top-k tables, JSON lines.

>>> format_time(3725.25)
'01:02:05.2'
>>> print(format_moments([[12.0, 15.5, 0.8731]]))
   1  00:00:12.0 - 00:00:15.5   score 0.873
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


def format_time(seconds: float) -> str:
    """``hh:mm:ss.s`` (tenths, rounded down so a moment never looks longer than it is)."""
    tenths = int(max(seconds, 0.0) * 10 + 1e-6)
    hours, rest = divmod(tenths, 36_000)
    minutes, rest = divmod(rest, 600)
    return f"{hours:02d}:{minutes:02d}:{rest // 10:02d}.{rest % 10}"


def select_moments(
    windows: Sequence[Sequence[float]], top_k: int | None = None, min_score: float = 0.0
) -> list[list[float]]:
    """The best ``top_k`` ``[start, end, score]`` rows scoring at least ``min_score``.

    Rows that end where they start are left out: a window shorter than half a frame rounds to
    nothing in Lighthouse's post-processing (kept there, so metrics stay Lighthouse's), and a
    moment of no length is nothing to show or play."""
    kept = [list(w) for w in windows if w[2] >= min_score and w[1] > w[0]]
    return kept if top_k is None else kept[:top_k]


def format_moments(windows: Sequence[Sequence[float]]) -> str:
    if not windows:
        return "   (no moment above the score threshold)"
    return "\n".join(
        f"{rank:4d}  {format_time(start)} - {format_time(end)}   score {score:.3f}"
        for rank, (start, end, score) in enumerate(windows, start=1)
    )


def format_recording(
    name: str, duration: float, results: Sequence[dict[str, Any]], top_k: int, min_score: float
) -> str:
    """The block ``lighthouse predict`` prints for one recording: a header, then per query
    its top moments."""
    chunks = max((r.get("num_chunks", 1) for r in results), default=1)
    how = f", predicted in {chunks} overlapping chunks" if chunks > 1 else ""
    lines = [f"{name}  ({format_time(duration)}{how})"]
    for result in results:
        lines.append(f'  "{result["query"]}"')
        moments = select_moments(result["pred_relevant_windows"], top_k, min_score)
        lines.append(format_moments(moments))
    return "\n".join(lines)


def result_line(
    audio: str, duration: float, result: dict[str, Any], top_k: int | None, min_score: float
) -> dict[str, Any]:
    """One JSON line: the recording, its duration, the query, its moments and saliency."""
    return {
        "audio": audio,
        "duration": round(duration, 4),
        "query": result["query"],
        "pred_relevant_windows": select_moments(result["pred_relevant_windows"], top_k, min_score),
        "pred_saliency_scores": [round(float(s), 4) for s in result["pred_saliency_scores"]],
    }
