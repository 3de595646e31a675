"""Sliding windows over a mono signal, in two named frame conventions.

Lengths are given in seconds and turned into samples once, by ``window_samples``:
``win = round(window * sample_rate)`` and ``hop = round(hop * sample_rate)`` (Python's ``round``,
half to even; both must come out >= 1 sample). Everything after that is integer sample
arithmetic, and ``frame_times`` reports the times of the samples actually cut, so a hop that is
not a whole number of samples (1/3 s at 16 kHz -> 5333 samples) drifts by design rather than
jittering: frame ``i`` starts at exactly ``i * 5333 / 16000`` s. ``N`` below is the signal's
length in samples.

``center`` (the released offline features)
    The signal is zero-padded with ``win // 2`` samples on the left and as many as the last frame
    needs on the right. Frame ``i`` covers samples ``[i*hop - win//2, i*hop - win//2 + win)``,
    i.e. ``[i*hop - window/2, i*hop + window/2]`` seconds, centred on ``i*hop`` (an odd ``win``
    puts its extra sample on the right). There is a frame for every centre inside the signal,
    end included: ``floor(N / hop) + 1`` frames, so an N-second recording gives N+1 frames at
    1 s / 1 s, and even a signal shorter than one window gives at least one frame.

``none`` (Lighthouse's online API)
    No padding; frames that would run past the end are dropped. Frame ``i`` covers
    ``[i*hop, i*hop + win)`` samples; there are ``floor((N - win) / hop) + 1`` frames, or 0 when
    ``N < win``. With 1 s windows and a 1 s hop this is exactly Lighthouse's
    ``wav[: N // sr * sr].unfold(0, sr, sr)``: N frames for N seconds (a trailing partial second
    is dropped). Cutting a signal shorter than one window raises ``AudioError``.

``cut_windows`` cuts an in-memory signal; ``iter_windows`` cuts the blocks of
``lighthouse_audio.audio.decode.stream_audio`` while holding only one block plus the overlap tail
(``< win`` samples) and one batch. Both give bit-identical windows.

>>> num_frames(10 * 16000, 16000, window=1.0, hop=1.0, frames="center")
11
>>> num_frames(10 * 16000, 16000, window=1.0, hop=1.0, frames="none")
10
>>> frame_times(3 * 16000, 16000, window=1.0, hop=1.0, frames="center").tolist()
[[-0.5, 0.5], [0.5, 1.5], [1.5, 2.5], [2.5, 3.5]]
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Literal, get_args

import numpy as np

from lighthouse_audio.audio.decode import AudioError

__all__ = [
    "FRAME_CONVENTIONS",
    "FrameConvention",
    "cut_windows",
    "frame_times",
    "iter_windows",
    "num_frames",
    "window_samples",
]

FrameConvention = Literal["center", "none"]
FRAME_CONVENTIONS: tuple[str, ...] = get_args(FrameConvention)


def window_samples(sample_rate: int, window: float, hop: float) -> tuple[int, int]:
    """``(win, hop)`` in samples: ``round(seconds * sample_rate)``, each at least one sample.

    >>> window_samples(44100, 1.0, 0.5)
    (44100, 22050)
    """
    if sample_rate <= 0:
        raise ValueError(f"sample_rate must be positive, got {sample_rate}")
    win_n = round(window * sample_rate)
    hop_n = round(hop * sample_rate)
    if win_n < 1 or hop_n < 1:
        raise ValueError(
            f"window ({window} s -> {win_n} samples) and hop ({hop} s -> {hop_n} samples) "
            f"must each be at least one sample at {sample_rate} Hz"
        )
    return win_n, hop_n


def num_frames(
    num_samples: int,
    sample_rate: int,
    window: float = 1.0,
    hop: float = 1.0,
    frames: FrameConvention = "center",
) -> int:
    """Frames a signal of ``num_samples`` yields; 0 for ``none`` when shorter than one window."""
    win_n, hop_n = window_samples(sample_rate, window, hop)
    return _count(num_samples, win_n, hop_n, frames)


def frame_times(
    num_samples: int,
    sample_rate: int,
    window: float = 1.0,
    hop: float = 1.0,
    frames: FrameConvention = "center",
) -> np.ndarray:
    """float64 ``(num_frames, 2)``: (start, end) seconds of each frame's support.

    Times are not clipped to the recording: a ``center`` frame reaches ``window / 2`` into the
    zero padding, so its first start is negative and ``end - start == win / sample_rate`` always.
    """
    win_n, hop_n = window_samples(sample_rate, window, hop)
    n = _count(num_samples, win_n, hop_n, frames)
    starts = np.arange(n, dtype=np.int64) * hop_n - _pad_left(win_n, frames)
    return np.stack([starts, starts + win_n], axis=1).astype(np.float64) / sample_rate


def cut_windows(
    signal: np.ndarray,
    sample_rate: int,
    window: float = 1.0,
    hop: float = 1.0,
    frames: FrameConvention = "center",
    source: str = "signal",
) -> np.ndarray:
    """float32 ``(num_frames, win)`` windows of a 1-D in-memory signal (a copy).

    The result is ``window / hop`` times the signal's size; for long recordings use
    ``iter_windows``. ``source`` names the signal (a file path) in errors.
    """
    signal = _as_mono(signal, source)
    win_n, hop_n = window_samples(sample_rate, window, hop)
    n = _count(len(signal), win_n, hop_n, frames)
    _check_some_frames(n, len(signal), sample_rate, window, source)
    pad_left = _pad_left(win_n, frames)
    # Pad to exactly what the last frame reaches (nothing for "none": it never passes the end).
    pad_right = max(0, (n - 1) * hop_n + win_n - pad_left - len(signal))
    padded = np.pad(signal, (pad_left, pad_right))
    view = np.lib.stride_tricks.sliding_window_view(padded, win_n)[::hop_n][:n]
    return np.array(view, dtype=np.float32)  # always a writable copy, even when hop == window


def iter_windows(
    blocks: Iterable[np.ndarray],
    sample_rate: int,
    window: float = 1.0,
    hop: float = 1.0,
    frames: FrameConvention = "center",
    batch_size: int = 64,
    source: str = "signal",
) -> Iterator[np.ndarray]:
    """Yield float32 ``(b, win)`` batches (``b == batch_size`` except the last) of the windows of
    the signal that ``blocks`` concatenate to, in order, equal to ``cut_windows`` of it.

    Blocks may have any length (empty ones are skipped). Memory is one block, the overlap tail
    carried between blocks (fewer than ``win`` samples) and one batch; ``num_frames`` of the
    total length is known only at the end, which is also when a ``none`` signal shorter than
    one window raises ``AudioError``.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    win_n, hop_n = window_samples(sample_rate, window, hop)
    _check_convention(frames)
    # A generator of its own so that bad arguments raise here, not at the first next().
    return _iter_windows(blocks, sample_rate, window, win_n, hop_n, frames, batch_size, source)


def _iter_windows(
    blocks: Iterable[np.ndarray],
    sample_rate: int,
    window: float,
    win_n: int,
    hop_n: int,
    frames: FrameConvention,
    batch_size: int,
    source: str,
) -> Iterator[np.ndarray]:
    # buf holds padded-signal samples [buf_start, buf_start + len(buf)); index 0 of the padded
    # signal is the first left-padding zero, so frame i starts at padded index i * hop_n.
    buf = np.zeros(_pad_left(win_n, frames), dtype=np.float32)
    buf_start = 0
    next_frame = 0
    seen = 0
    batch = np.empty((batch_size, win_n), dtype=np.float32)
    filled = 0

    def emit(until: int) -> Iterator[np.ndarray]:
        # Copies into the batch, so no view keeps an old buffer alive.
        nonlocal next_frame, batch, filled
        for i in range(next_frame, until):
            offset = i * hop_n - buf_start
            batch[filled] = buf[offset : offset + win_n]
            filled += 1
            if filled == batch_size:
                yield batch
                batch = np.empty((batch_size, win_n), dtype=np.float32)
                filled = 0
        next_frame = max(next_frame, until)

    for block in blocks:
        block = _as_mono(block, source)
        if not len(block):
            continue
        seen += len(block)
        buf = np.concatenate([buf, block])
        # Frames whose last sample has arrived. In "center" a frame ending inside the data has its
        # centre inside it too, so every such frame belongs to the final count.
        yield from emit(_count_unpadded(buf_start + len(buf), win_n, hop_n))
        # Keep only what the next frame still needs (nothing, when hop > window skips samples).
        drop = min(next_frame * hop_n - buf_start, len(buf))
        buf = buf[drop:]
        buf_start += drop

    total = _count(seen, win_n, hop_n, frames)
    _check_some_frames(total, seen, sample_rate, window, source)
    if next_frame < total:  # "center": the frames that reach into the right padding
        needed = (total - 1) * hop_n + win_n - buf_start
        buf = np.pad(buf, (0, max(0, needed - len(buf))))
        yield from emit(total)
    if filled:
        yield batch[:filled].copy()


def _count(num_samples: int, win_n: int, hop_n: int, frames: FrameConvention) -> int:
    _check_convention(frames)
    if num_samples < 0:
        raise ValueError(f"num_samples must be >= 0, got {num_samples}")
    if frames == "center":
        return 0 if num_samples == 0 else num_samples // hop_n + 1
    return _count_unpadded(num_samples, win_n, hop_n)


def _count_unpadded(length: int, win_n: int, hop_n: int) -> int:
    """Whole windows in ``length`` samples, unfold-style."""
    return 0 if length < win_n else (length - win_n) // hop_n + 1


def _pad_left(win_n: int, frames: FrameConvention) -> int:
    _check_convention(frames)
    return win_n // 2 if frames == "center" else 0


def _check_convention(frames: str) -> None:
    if frames not in FRAME_CONVENTIONS:
        raise ValueError(f"frames must be one of {FRAME_CONVENTIONS}, got {frames!r}")


def _check_some_frames(n: int, length: int, sample_rate: int, window: float, source: str) -> None:
    if length == 0:
        raise AudioError(f"{source}: empty signal (0 samples)")
    if n == 0:
        raise AudioError(
            f"{source}: shorter than one window "
            f"({round(length / sample_rate, 3)} s < {round(window, 3)} s)"
        )


def _as_mono(signal: np.ndarray, source: str) -> np.ndarray:
    signal = np.asarray(signal)
    if signal.ndim != 1:
        raise ValueError(f"{source}: expected a 1-D mono signal, got shape {signal.shape}")
    return signal.astype(np.float32, copy=False)
