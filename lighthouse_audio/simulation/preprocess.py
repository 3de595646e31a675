"""Preparing sources as the official generator does (its steps 3 and 4).

Backgrounds (``3_clip_bg.py``): a long recording is cut into ``clip_length`` windows starting
every ``hop`` seconds, from 0 while the window still fits; a window is named by its bounds rounded
to 0.1 s, ``"{round(start, 1)}_{round(end, 1)}"`` (``0.0_60.0``, ``1.0_61.0``), and the clip's
name is ``"{recording stem}_{window}"`` (``Singapore_0.0_60.0``).

Foregrounds (``4_clip_fg.py``): the clip is cut into whole-second frames; the kept span runs from
the first to the last frame whose mean power exceeds the clip's mean power minus ``clip_db`` dB.
The sub-second tail never survives, so trimmed durations are whole seconds. If no frame passes,
the whole-second part of the clip is kept.

>>> [w.label for w in background_windows(62 * 8000, 8000, clip_length=60, hop=1)]
['0.0_60.0', '1.0_61.0', '2.0_62.0']
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf

from lighthouse_audio.audio.decode import load_audio
from lighthouse_audio.file_io import atomic_write

__all__ = [
    "BackgroundWindow",
    "background_windows",
    "cut_background",
    "trim_bounds",
    "trim_foreground",
    "trim_foreground_file",
    "write_audio_atomic",
]


@dataclass(frozen=True)
class BackgroundWindow:
    """One background clip inside a recording, in samples and in seconds."""

    start_sample: int
    end_sample: int
    sample_rate: int

    @property
    def start(self) -> float:
        return self.start_sample / self.sample_rate

    @property
    def end(self) -> float:
        return self.end_sample / self.sample_rate

    @property
    def label(self) -> str:
        # str(round(x, 1)): "0.0", "61.0", "100.5" -- the official file and clip names.
        return f"{round(self.start, 1)}_{round(self.end, 1)}"


def background_windows(
    num_samples: int, sample_rate: int, clip_length: float = 60.0, hop: float = 1.0
) -> list[BackgroundWindow]:
    """Every ``clip_length`` window starting at 0, ``hop``, ``2 * hop``... that ends within the
    recording (an end exactly at the last sample counts). A recording shorter than
    ``clip_length`` gives none.

    Starts come from ``np.arange(0, num_samples, hop * sample_rate)`` truncated to integers, as
    in the official script, so fractional hops land on the same samples.
    """
    if clip_length <= 0 or hop <= 0:
        raise ValueError(f"clip_length and hop must be > 0 s, got {clip_length} and {hop}")
    windows = []
    for start in np.arange(0, num_samples, hop * sample_rate):
        end = start + clip_length * sample_rate
        if end > num_samples:
            break
        windows.append(BackgroundWindow(int(start), int(end), sample_rate))
    return windows


def cut_background(
    path: str | os.PathLike,
    out_dir: str | os.PathLike,
    sample_rate: int = 32000,
    clip_length: float = 60.0,
    hop: float = 1.0,
    suffix: str = ".wav",
) -> list[tuple[str, Path]]:
    """Cut a recording into ``out_dir/{stem}/{start}_{end}{suffix}`` (the official layout).

    Returns ``(clip name, clip path)`` pairs, e.g. ``("Singapore_0.0_60.0", .../0.0_60.0.wav)``.
    For long corpora prefer cutting only the windows a simulation uses (``pipeline``).
    """
    path = Path(path)
    signal = load_audio(path, sample_rate)
    clips = []
    for w in background_windows(len(signal), sample_rate, clip_length, hop):
        clip_path = Path(out_dir) / path.stem / f"{w.label}{suffix}"
        write_audio_atomic(clip_path, signal[w.start_sample : w.end_sample], sample_rate)
        clips.append((f"{path.stem}_{w.label}", clip_path))
    return clips


def trim_bounds(signal: np.ndarray, sample_rate: int, clip_db: float = 5.0) -> tuple[int, int]:
    """``(onset, offset)`` in samples, both on whole seconds, of the span to keep.

    Frame ``k`` is ``signal[k * sr:(k + 1) * sr]``; the threshold is ``mean(signal**2) *
    10**(-clip_db / 10)`` over the *whole* clip (sub-second tail included) and a frame passes
    when its mean power is strictly above it. Onset defaults to 0 and offset to the last whole
    second when no frame passes.
    """
    num_frames = len(signal) // sample_rate
    if num_frames == 0:
        return 0, 0
    x = np.asarray(signal, dtype=np.float64)
    threshold = np.mean(x**2) * 10 ** (-clip_db / 10)
    framed = x[: num_frames * sample_rate].reshape(num_frames, sample_rate)
    passes = np.flatnonzero(np.mean(framed**2, axis=1) > threshold)
    if len(passes) == 0:
        return 0, num_frames * sample_rate
    return int(passes[0]) * sample_rate, (int(passes[-1]) + 1) * sample_rate


def trim_foreground(signal: np.ndarray, sample_rate: int, clip_db: float = 5.0) -> np.ndarray:
    """The clip trimmed to :func:`trim_bounds` (possibly empty when shorter than 1 s)."""
    onset, offset = trim_bounds(signal, sample_rate, clip_db)
    return signal[onset:offset]


def trim_foreground_file(
    path: str | os.PathLike, out_path: str | os.PathLike, sample_rate: int, clip_db: float = 5.0
) -> float:
    """Trim one file (decoded to mono at ``sample_rate``) and write it; returns the trimmed
    duration in seconds. Raises ``ValueError`` for clips that are silent or leave nothing."""
    signal = load_audio(path, sample_rate)
    if not np.any(signal):
        raise ValueError(f"{path}: silent (all samples are zero)")
    trimmed = trim_foreground(signal, sample_rate, clip_db)
    if len(trimmed) == 0:
        raise ValueError(
            f"{path}: shorter than 1 s ({len(signal) / sample_rate:.3f} s); trimming works "
            "on whole seconds"
        )
    if not np.any(trimmed):
        raise ValueError(f"{path}: silent after trimming")
    write_audio_atomic(Path(out_path), trimmed, sample_rate)
    return len(trimmed) / sample_rate


def write_audio_atomic(path: Path, signal: np.ndarray, sample_rate: int) -> None:
    """Write 16-bit PCM (the official ``sf.write`` default) via a temporary file + rename, so
    an interrupted run never leaves a truncated file under the final name."""
    fmt = {".wav": "WAV", ".flac": "FLAC"}.get(path.suffix.lower())
    if fmt is None:
        raise ValueError(f"{path}: can only write .wav or .flac")
    atomic_write(
        path,
        lambda tmp: sf.write(os.fspath(tmp), signal, sample_rate, format=fmt, subtype="PCM_16"),
    )
