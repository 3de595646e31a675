"""A picture of a prediction: the recording's spectrogram, each query's top moments, its saliency.

>>> results = predictor.predict(["a dog barks", "rain"], audio)  # doctest: +SKIP
>>> plot_prediction("garden.wav", results, "garden.png", frame_times=audio.frame_times)  # +SKIP

Any length: the spectrogram is streamed and pooled (``audio.spectrogram``); ``start``/``end``
draw one span of a long recording. Drawn with matplotlib's object API on an Agg canvas (no
pyplot state, no display).
"""

from __future__ import annotations

import os
import textwrap
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from lighthouse_audio.audio.decode import audio_info
from lighthouse_audio.audio.spectrogram import overview_spectrogram
from lighthouse_audio.file_io import atomic_write
from lighthouse_audio.prediction.formatting import format_time, select_moments

__all__ = ["plot_prediction"]

COLORS = ("#ff7f0e", "#1f77b4", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#17becf")


def _frame_centres(result: dict[str, Any], frame_times: np.ndarray | None, duration: float):
    scores = np.asarray(result.get("pred_saliency_scores") or [], dtype=np.float32)
    if frame_times is not None and len(frame_times) == len(scores):
        return np.asarray(frame_times, dtype=np.float64).mean(axis=1), scores
    return (np.arange(len(scores)) + 0.5) * duration / max(len(scores), 1), scores


def _time_formatter(span: float):
    from matplotlib.ticker import FuncFormatter

    if span <= 120:
        return FuncFormatter(lambda x, _: f"{x:g}")
    return FuncFormatter(lambda x, _: format_time(x)[:-2] if span > 600 else format_time(x))


def plot_prediction(
    audio_path: str | os.PathLike,
    results: Sequence[dict[str, Any]],
    out_path: str | os.PathLike,
    *,
    frame_times: np.ndarray | None = None,
    top_k: int = 3,
    min_score: float = 0.0,
    start: float = 0.0,
    end: float | None = None,
    title: str | None = None,
) -> Path:
    """Write a PNG: spectrogram, one row of top-``top_k`` moments per query (score as opacity
    and label), and the queries' saliency curves. Returns ``out_path``."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    out_path = Path(out_path)
    duration = audio_info(audio_path).duration
    end = duration if end is None else min(end, duration)
    _, freqs, power_db = overview_spectrogram(audio_path, start, end)
    span = end - start
    rows = max(len(results), 1)
    fig = Figure(figsize=(12, 4.2 + 0.55 * rows), dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    spec_ax, moment_ax, saliency_ax = fig.subplots(
        3, 1, sharex=True, gridspec_kw={"height_ratios": [2.6, 0.55 * rows + 0.3, 1.1]}
    )
    floor = np.percentile(power_db, 5)
    spec_ax.imshow(
        power_db, origin="lower", aspect="auto", cmap="magma", vmin=floor, interpolation="none",
        extent=(start, end, 0.0, freqs[-1] / 1000),
    )  # fmt: skip
    spec_ax.set_ylabel("kHz")
    spec_ax.set_title(title or Path(audio_path).name, fontsize=10, loc="left")

    labels = []
    lane = 0.8 / max(top_k, 1)  # each of a query's top moments on its own lane, best on top
    for row, result in enumerate(results):
        color = COLORS[row % len(COLORS)]
        y = rows - 1 - row
        moments = select_moments(result.get("pred_relevant_windows", []), top_k, min_score)
        for rank, (m_start, m_end, score) in enumerate(moments, start=1):
            if m_end < start or m_start > end:  # outside the span drawn
                continue
            bottom = y + 0.4 - rank * lane
            alpha = 0.35 + 0.65 * float(np.clip(score, 0, 1))
            moment_ax.broken_barh([(m_start, m_end - m_start)], (bottom, lane * 0.85),
                                  color=color, alpha=alpha)  # fmt: skip
            moment_ax.text(min(m_end, end), bottom + lane * 0.4, f" {rank}: {score:.2f}",
                           va="center", fontsize=6.5, clip_on=True)  # fmt: skip
            if rank == 1:
                for x in (m_start, m_end):
                    spec_ax.axvline(x, color=color, lw=1.0, alpha=0.9)
        centres, scores = _frame_centres(result, frame_times, duration)
        if len(scores):
            saliency_ax.plot(centres, scores, color=color, lw=1.0)
        labels.append(textwrap.shorten(str(result.get("query", "")), width=44, placeholder="..."))
    moment_ax.set_yticks(list(range(rows - 1, rows - 1 - len(labels), -1)), labels, fontsize=8)
    moment_ax.set_ylim(-0.5, rows - 0.5)
    moment_ax.grid(axis="x", alpha=0.3)
    saliency_ax.set_ylabel("saliency", fontsize=8)
    saliency_ax.grid(alpha=0.3)
    saliency_ax.set_xlim(start, end)
    saliency_ax.xaxis.set_major_formatter(_time_formatter(span))
    saliency_ax.set_xlabel("time (s)" if span <= 120 else "time (hh:mm:ss)")

    return atomic_write(out_path, lambda tmp: fig.savefig(tmp, format="png"))
