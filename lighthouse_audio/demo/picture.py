"""A picture of one recording: its spectrogram, and for each query the true and predicted moments.

Drawn with matplotlib's object API on an Agg canvas (no pyplot, no global backend switch, no
display needed)::

    write_moment_picture("clip.wav", [{"query": "a dog barks", "relevant_windows": [[3, 6]],
                          "pred_relevant_windows": [[2.8, 6.1, 0.93], ...]}], "clip.png")
"""

from __future__ import annotations

import os
import textwrap
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from lighthouse_audio.audio.decode import load_audio
from lighthouse_audio.file_io import atomic_write

__all__ = ["log_spectrogram", "write_moment_picture"]

TRUE_COLOR = "#2ca02c"
PRED_COLOR = "#ff7f0e"


def log_spectrogram(
    signal: np.ndarray, sample_rate: int, n_fft: int = 512, hop: int = 160
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(times (frames,), freqs (bins,), power_db (bins, frames))`` of a Hann-windowed STFT."""
    from scipy.signal import stft

    freqs, times, spec = stft(
        signal, fs=sample_rate, window="hann", nperseg=n_fft, noverlap=n_fft - hop, boundary=None
    )
    power_db = 10.0 * np.log10(np.abs(spec) ** 2 + 1e-10)
    return times, freqs, power_db


def write_moment_picture(
    audio_path: str | os.PathLike,
    queries: Sequence[dict[str, Any]],
    out_path: str | os.PathLike,
    title: str | None = None,
    sample_rate: int = 16000,
    max_queries: int = 8,
    top_k: int = 1,
) -> Path:
    """Write a PNG of ``audio_path`` with one row per query (at most ``max_queries``).

    Each query is a Lighthouse line: ``query``, ``relevant_windows`` (true moments, seconds) and
    optionally ``pred_relevant_windows`` (``[start, end, score]``, best first; the first
    ``top_k`` are drawn, with their scores). Returns ``out_path``.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.patches import Patch

    out_path = Path(out_path)
    signal = load_audio(audio_path, sample_rate)
    duration = len(signal) / sample_rate
    queries = list(queries)[:max_queries]
    times, freqs, power_db = log_spectrogram(signal, sample_rate)

    rows = max(len(queries), 1)
    fig = Figure(figsize=(11, 3.2 + 0.55 * rows), dpi=110, layout="constrained")
    FigureCanvasAgg(fig)
    spec_ax, moment_ax = fig.subplots(
        2, 1, sharex=True, gridspec_kw={"height_ratios": [3.0, 0.55 * rows + 0.4]}
    )
    floor = np.percentile(power_db, 5)
    spec_ax.imshow(
        power_db, origin="lower", aspect="auto", cmap="magma", vmin=floor, interpolation="none",
        extent=(0.0, duration, 0.0, freqs[-1] / 1000),
    )  # fmt: skip
    spec_ax.set_ylabel("kHz")
    spec_ax.set_title(title or Path(audio_path).name, fontsize=10, loc="left")
    for query in queries:
        for start, end in query.get("relevant_windows") or []:
            for x in (start, end):
                spec_ax.axvline(x, color=TRUE_COLOR, lw=1.0, alpha=0.9)

    labels = []
    for row, query in enumerate(queries):
        y = rows - 1 - row
        for start, end in query.get("relevant_windows") or []:
            moment_ax.broken_barh([(start, end - start)], (y + 0.05, 0.4), color=TRUE_COLOR)
        for start, end, score in (query.get("pred_relevant_windows") or [])[:top_k]:
            moment_ax.broken_barh(
                [(start, end - start)], (y - 0.45, 0.4), color=PRED_COLOR, alpha=0.9
            )
            moment_ax.text(end + 0.15, y - 0.25, f"{score:.2f}", va="center", fontsize=7)
        labels.append(textwrap.shorten(str(query.get("query", "")), width=48, placeholder="..."))
    moment_ax.set_yticks(list(range(rows - 1, rows - 1 - len(labels), -1)), labels, fontsize=8)
    moment_ax.set_ylim(-0.6, rows - 0.4)
    moment_ax.set_xlim(0, duration)
    moment_ax.set_xlabel("time (s)")
    moment_ax.grid(axis="x", alpha=0.3)
    handles = [
        Patch(color=TRUE_COLOR, label="true moment"),
        Patch(color=PRED_COLOR, label="predicted (top-1, score)" if top_k == 1 else "predicted"),
    ]
    fig.legend(handles=handles, loc="outside lower center", ncols=2, fontsize=8, frameon=False)
    return atomic_write(out_path, lambda tmp: fig.savefig(tmp, format="png"))
