"""M2D's 16 kHz log-mel front end (nnAudio ``MelSpectrogram`` in the reference), in plain torch.

* STFT: ``n_fft = win = 400``, hop 160, periodic Hann, ``center=True`` with reflect padding
  (so more than 200 samples are needed), power ``|X|²``: ``1 + num_samples // 160`` frames.
* Mel: Slaney scale and area norm, 80 bins, 50-8000 Hz (``librosa.filters.mel`` defaults;
  equal to nnAudio's stored basis to ~2e-9).
* Log: natural log of ``mel + float32 eps``; no dB, no clamping. Bin 0 is the lowest band.

Normalisation by the checkpoint's ``norm_stats`` belongs to the network (:mod:`.vit`).
``torch.stft`` replaces nnAudio's conv1d DFT: the log-mel differs by up to ~2.4e-4 in
near-silent bins, the encoder's features by ~1e-5 (README of the parity fixture, §4).
"""

from __future__ import annotations

import torch
from torch import nn

from lighthouse_audio.encoders.clap.frontend import slaney_mel_filterbank

__all__ = ["HOP_LENGTH", "N_FFT", "NUM_MELS", "SAMPLE_RATE", "M2DLogMel", "num_stft_frames"]

SAMPLE_RATE = 16000
N_FFT = 400
HOP_LENGTH = 160
NUM_MELS = 80
MEL_FMIN = 50.0
MEL_FMAX = 8000.0
LOG_OFFSET = float(torch.finfo(torch.float32).eps)  # 1.1920929e-07, as the reference adds


def num_stft_frames(num_samples: int) -> int:
    """Frames of the centred STFT: ``1 + num_samples // 160`` (1 s -> 101)."""
    return 1 + num_samples // HOP_LENGTH


class M2DLogMel(nn.Module):
    """Waveforms ``(batch, num_samples)`` at 16 kHz -> log-mel ``(batch, 1, 80, frames)``."""

    def __init__(self) -> None:
        super().__init__()
        basis = slaney_mel_filterbank(SAMPLE_RATE, N_FFT, NUM_MELS, MEL_FMIN, MEL_FMAX).T
        self.register_buffer("mel_basis", basis.contiguous(), persistent=False)  # (80, 201)
        self.register_buffer("window", torch.hann_window(N_FFT, periodic=True), persistent=False)

    def forward(self, waveforms: torch.Tensor) -> torch.Tensor:
        if waveforms.dim() != 2:
            raise ValueError(
                f"expected waveforms (batch, num_samples), got {tuple(waveforms.shape)}"
            )
        if waveforms.shape[1] <= N_FFT // 2:
            raise ValueError(
                f"need more than {N_FFT // 2} samples ({N_FFT // 2 / SAMPLE_RATE * 1000:.1f} ms "
                f"at 16 kHz) for the reflect-padded STFT, got {waveforms.shape[1]}"
            )
        spec = torch.stft(
            waveforms.float(),
            n_fft=N_FFT,
            hop_length=HOP_LENGTH,
            win_length=N_FFT,
            window=self.window,
            center=True,
            pad_mode="reflect",
            return_complex=True,
        )
        power = spec.real.square() + spec.imag.square()  # (batch, 201, frames)
        return torch.log(torch.matmul(self.mel_basis, power) + LOG_OFFSET)[:, None]
