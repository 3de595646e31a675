"""A spectrogram of a recording of any length, for looking at: streamed, and pooled to a width.

An hour at 10 ms per column would be 360,000 columns; a picture shows a few thousand. The file is
decoded block by block (``stream_audio``) at a low rate, each block's STFT power is max-pooled
over time (short sounds stay visible) and the columns are kept, so memory stays at one block.

>>> times, freqs, power_db = overview_spectrogram("night.flac", start=600, end=900)  # +SKIP
"""

from __future__ import annotations

import math
import os

import numpy as np

from lighthouse_audio.audio.decode import stream_audio

__all__ = ["overview_spectrogram"]

DISPLAY_RATE = 16_000
N_FFT = 512
HOP = 160  # 10 ms at 16 kHz


def _frames(signal: np.ndarray, n_fft: int, hop: int) -> np.ndarray:
    count = 1 + (len(signal) - n_fft) // hop
    return np.lib.stride_tricks.as_strided(
        signal, shape=(count, n_fft), strides=(signal.strides[0] * hop, signal.strides[0])
    )


def overview_spectrogram(
    path: str | os.PathLike,
    start: float = 0.0,
    end: float | None = None,
    max_columns: int = 2400,
    sample_rate: int = DISPLAY_RATE,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(times (columns,), freqs (bins,), power_db (bins, columns))`` of ``[start, end)`` s.

    Columns are ``HOP`` samples (10 ms) apart, max-pooled by the smallest factor that fits
    ``max_columns``; ``times`` are the pooled columns' centres in seconds from the file's start.
    """
    from lighthouse_audio.audio.decode import audio_info

    duration = audio_info(path).duration
    end = duration if end is None else min(end, duration)
    if not 0 <= start < end:
        raise ValueError(f"{path}: span [{start}, {end}) s is empty or outside the recording")
    first, last = round(start * sample_rate), round(end * sample_rate)
    total_columns = max(1, (last - first - N_FFT) // HOP + 1)
    pool = max(1, math.ceil(total_columns / max_columns))
    window = np.hanning(N_FFT + 1)[:-1].astype(np.float32)

    pooled: list[np.ndarray] = []
    pending = np.zeros((0, N_FFT // 2 + 1), dtype=np.float32)  # columns not yet pooled
    carry = np.zeros(0, dtype=np.float32)  # samples of the span not yet framed
    offset = 0  # file sample index of the block's first sample
    for block in stream_audio(path, sample_rate):
        lo, hi = max(first - offset, 0), min(last - offset, len(block))
        offset += len(block)
        if hi <= lo:
            if offset >= last:
                break
            continue
        signal = np.concatenate([carry, block[lo:hi]])
        if len(signal) >= N_FFT:
            frames = _frames(signal, N_FFT, HOP)
            spectrum = np.abs(np.fft.rfft(frames * window, axis=1)).astype(np.float32) ** 2
            pending = np.concatenate([pending, spectrum])
            carry = signal[len(frames) * HOP :]
        else:
            carry = signal
        usable = len(pending) // pool * pool
        if usable:
            pooled.append(pending[:usable].reshape(-1, pool, pending.shape[1]).max(axis=1))
            pending = pending[usable:]
        if offset >= last:
            break
    group_sizes = [pool] * sum(len(p) for p in pooled)
    if len(pending):
        pooled.append(pending.max(axis=0, keepdims=True))
        group_sizes.append(len(pending))
    if not pooled:  # shorter than one FFT window: one column of the zero-padded signal
        padded = np.zeros(N_FFT, dtype=np.float32)
        padded[: len(carry)] = carry[:N_FFT]
        pooled.append((np.abs(np.fft.rfft(padded * window)) ** 2)[None].astype(np.float32))
        group_sizes.append(1)
    power = np.concatenate(pooled).T
    # each pooled column sits at the centre of the raw columns it took its maxima from
    first_raw = np.concatenate([[0], np.cumsum(group_sizes)[:-1]])
    centres = (first_raw + (np.asarray(group_sizes) - 1) / 2) * HOP + N_FFT / 2  # samples
    times = start + centres / sample_rate
    freqs = np.fft.rfftfreq(N_FFT, 1 / sample_rate)
    return times, freqs, 10.0 * np.log10(power + 1e-10)
