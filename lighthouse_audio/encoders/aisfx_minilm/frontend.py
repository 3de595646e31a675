"""aisfx's log-mel spectrogram, as its essentia path computes it, redone in torch."""

from __future__ import annotations

from functools import cache

import numpy as np
import torch
import torch.nn.functional as F

SAMPLE_RATE = 44100
FRAME_LENGTH = 2048
FRAME_HOP = 1024
NUM_MELS = 96
BLOCK_FRAMES = 100  # aisfx EMB_BLOCK_LENGTH: the input length the CNN was trained on
SPEC_MAX = 9.457798957824707  # aisfx spectrogram_normalize(spec_norm="original"): (x - 0) / max
MIN_FRAMES = 8  # three 2x2 max-pools need 8 time frames


def _hz_to_mel(hz: np.ndarray) -> np.ndarray:
    return 2595.0 * np.log10(1.0 + hz / 700.0)


def _mel_to_hz(mel: np.ndarray) -> np.ndarray:
    return 700.0 * (10.0 ** (mel / 2595.0) - 1.0)


@cache
def mel_filterbank(
    sample_rate: int = SAMPLE_RATE, n_fft: int = FRAME_LENGTH, num_bands: int = NUM_MELS
) -> np.ndarray:
    """Essentia ``MelBands(warpingFormula="htkMel", weighting="warping", normalize="unit_sum")``
    on ``0 .. sample_rate / 2``: float64 ``(num_bands, n_fft // 2 + 1)``."""
    bin_hz = np.arange(n_fft // 2 + 1) * sample_rate / n_fft
    edges_mel = np.linspace(0.0, _hz_to_mel(np.float64(sample_rate / 2)), num_bands + 2)
    edges_hz = _mel_to_hz(edges_mel)
    bin_mel = _hz_to_mel(bin_hz)
    weights = np.zeros((num_bands, bin_hz.size))
    for band in range(num_bands):
        lo, mid, hi = edges_mel[band : band + 3]
        rising = (bin_hz >= edges_hz[band]) & (bin_hz < edges_hz[band + 1])
        falling = (bin_hz >= edges_hz[band + 1]) & (bin_hz < edges_hz[band + 2])
        weights[band, rising] = (bin_mel[rising] - lo) / (mid - lo)
        weights[band, falling] = (hi - bin_mel[falling]) / (hi - mid)
    sums = weights.sum(axis=1, keepdims=True)
    return weights / np.where(sums > 0, sums, 1.0)


def num_frames(num_samples: int) -> int:
    """Frames essentia's ``FrameCutter(startFromZero=False)`` cuts from ``num_samples``: frame
    ``k`` starts at ``(k - 1) * hop`` and frames are cut while the start is inside the signal."""
    return (max(num_samples, 1) - 1) // FRAME_HOP + 2


def log_mel(audio: torch.Tensor, filterbank: torch.Tensor) -> torch.Tensor:
    """aisfx's normalised log-mel spectrogram: ``(batch, samples)`` at 44.1 kHz
    -> ``(batch, num_frames(samples), 96)``."""
    count = num_frames(audio.shape[-1])
    right = (count + 1) * FRAME_HOP - FRAME_HOP - audio.shape[-1]
    padded = F.pad(audio, (FRAME_HOP, right))
    frames = padded.unfold(-1, FRAME_LENGTH, FRAME_HOP)  # (batch, count, FRAME_LENGTH)
    window = torch.hann_window(FRAME_LENGTH, periodic=False, dtype=audio.dtype, device=audio.device)
    power = torch.fft.rfft(frames * window).abs().square()
    mel = power @ filterbank.T
    return torch.log10(mel * 1e4 + 1.0) / SPEC_MAX
