"""MS-CLAP 2023's log-mel front end (torchlibrosa ``Spectrogram`` + ``LogmelFilterBank``).

msclap feeds 44.1 kHz audio into an HTSAT whose front end was configured for 32 kHz, so the
numbers below are the ones the 2023 model actually runs with (``msclap/models/config.py``), not
those of ``config_2023.yml``:

* STFT: ``n_fft = win = 1024``, hop 320, periodic Hann, ``center=True`` with reflect padding,
  power ``re² + im²``; ``1 + num_samples // 320`` frames (1 s at 44.1 kHz -> 138).
* Mel: Slaney-scale, Slaney-normalised filterbank built for ``sr=32000``, 64 bins, 50-14000 Hz
  (``librosa.filters.mel`` defaults). Applied to 44.1 kHz audio, its true band edges are
  about 69 Hz-19.3 kHz; that mismatch is part of the trained model and is kept on purpose.
* Log: ``10 * log10(max(mel, 1e-10))``, ``ref=1``, no ``top_db``, no further normalisation.

``bn0`` (BatchNorm over the mel axis) follows in the network (``ClapAudioModel.batch_norm``).

Two STFT implementations give the same features: ``"fft"`` (``torch.stft``, the default) and
``"conv"`` (torchlibrosa's Conv1d with the DFT kernels, float-for-float the reference). They
differ by up to ~2e-4 dB in near-silent bins and by < 1e-6 in the HTSAT embedding; ``"conv"``
exists for bit-level checks against msclap. ``"fft"`` is preferred on GPUs, where cuDNN may run
the 1024-tap convolution in TF32 (``"conv"`` switches TF32 off for its own call).
"""

from __future__ import annotations

import math
from typing import Literal

import numpy as np
import torch
from torch import nn

StftImpl = Literal["fft", "conv"]

SAMPLE_RATE = 44100  # what the model is fed
N_FFT = 1024
HOP_LENGTH = 320
NUM_MEL_BINS = 64
MEL_SAMPLE_RATE = 32000  # used only to build the filterbank (msclap's HTSAT config)
MEL_FMIN = 50.0
MEL_FMAX = 14000.0
AMIN = 1e-10


def num_stft_frames(num_samples: int) -> int:
    """Frames of the centred STFT: ``1 + num_samples // 320``."""
    return 1 + num_samples // HOP_LENGTH


def _hz_to_mel(freq: np.ndarray) -> np.ndarray:
    """Slaney mel scale (``librosa.hz_to_mel(htk=False)``): linear below 1 kHz, log above."""
    f_sp, min_log_hz, logstep = 200.0 / 3, 1000.0, math.log(6.4) / 27.0
    freq = np.asanyarray(freq, dtype=np.float64)
    log_part = min_log_hz / f_sp + np.log(np.maximum(freq, 1e-10) / min_log_hz) / logstep
    return np.where(freq >= min_log_hz, log_part, freq / f_sp)


def _mel_to_hz(mel: np.ndarray) -> np.ndarray:
    f_sp, min_log_hz, logstep = 200.0 / 3, 1000.0, math.log(6.4) / 27.0
    min_log_mel = min_log_hz / f_sp
    mel = np.asanyarray(mel, dtype=np.float64)
    return np.where(
        mel >= min_log_mel, min_log_hz * np.exp(logstep * (mel - min_log_mel)), f_sp * mel
    )


def slaney_mel_filterbank(
    sample_rate: int = MEL_SAMPLE_RATE,
    n_fft: int = N_FFT,
    num_mels: int = NUM_MEL_BINS,
    fmin: float = MEL_FMIN,
    fmax: float = MEL_FMAX,
) -> torch.Tensor:
    """``librosa.filters.mel(sr, n_fft, n_mels, fmin, fmax).T`` without librosa:
    float32 ``(n_fft // 2 + 1, num_mels)``, Slaney scale and Slaney area normalisation
    (computed in float64, like librosa)."""
    fft_freqs = np.fft.rfftfreq(n=n_fft, d=1.0 / sample_rate)
    mel_freqs = _mel_to_hz(np.linspace(_hz_to_mel(fmin), _hz_to_mel(fmax), num_mels + 2))
    widths = np.diff(mel_freqs)
    ramps = np.subtract.outer(mel_freqs, fft_freqs)
    lower = -ramps[:-2] / widths[:-1, None]
    upper = ramps[2:] / widths[1:, None]
    weights = np.maximum(0.0, np.minimum(lower, upper))
    weights *= (2.0 / (mel_freqs[2:] - mel_freqs[:-2]))[:, None]
    return torch.from_numpy(weights.astype(np.float32).T.copy())


def dft_kernels(n_fft: int = N_FFT) -> tuple[torch.Tensor, torch.Tensor]:
    """torchlibrosa's STFT Conv1d weights ``(n_fft//2+1, 1, n_fft)``: periodic-Hann windowed
    cos and -sin, computed in float64 and cast to float32."""
    n = torch.arange(n_fft, dtype=torch.float64)
    k = torch.arange(n_fft // 2 + 1, dtype=torch.float64)[:, None]
    window = 0.5 - 0.5 * torch.cos(2 * math.pi * n / n_fft)
    angle = 2 * math.pi * k * n / n_fft
    real = (torch.cos(angle) * window).float()[:, None, :]
    imag = (-torch.sin(angle) * window).float()[:, None, :]
    return real, imag


class ClapLogMel(nn.Module):
    """Waveforms ``(batch, num_samples)`` at 44.1 kHz -> log-mel ``(batch, 1, frames, 64)`` dB.

    ``mel_filterbank`` ``(513, 64)`` defaults to :func:`slaney_mel_filterbank`; pass the
    checkpoint's ``logmel_extractor.melW`` to use the stored one.
    """

    def __init__(self, mel_filterbank: torch.Tensor | None = None, stft: StftImpl = "fft") -> None:
        super().__init__()
        if stft not in ("fft", "conv"):
            raise ValueError(f"stft must be 'fft' or 'conv', got {stft!r}")
        self.stft = stft
        if mel_filterbank is None:
            mel_filterbank = slaney_mel_filterbank()
        expected = (N_FFT // 2 + 1, NUM_MEL_BINS)
        if tuple(mel_filterbank.shape) != expected:
            raise ValueError(
                f"mel filterbank has shape {tuple(mel_filterbank.shape)}, expected {expected}"
            )
        self.register_buffer("mel_filterbank", mel_filterbank.float().clone(), persistent=False)
        self.register_buffer("window", torch.hann_window(N_FFT, periodic=True), persistent=False)
        if stft == "conv":
            real, imag = dft_kernels()
            self.register_buffer("dft_real", real, persistent=False)
            self.register_buffer("dft_imag", imag, persistent=False)

    def power_spectrogram(self, waveforms: torch.Tensor) -> torch.Tensor:
        """``(batch, num_samples)`` -> power ``(batch, frames, 513)``."""
        if waveforms.dim() != 2:
            raise ValueError(
                f"expected waveforms (batch, num_samples), got {tuple(waveforms.shape)}"
            )
        if waveforms.shape[1] <= N_FFT // 2:
            raise ValueError(
                f"need more than {N_FFT // 2} samples for the reflect-padded STFT, "
                f"got {waveforms.shape[1]}"
            )
        if self.stft == "fft":
            spec = torch.stft(
                waveforms,
                n_fft=N_FFT,
                hop_length=HOP_LENGTH,
                win_length=N_FFT,
                window=self.window,
                center=True,
                pad_mode="reflect",
                return_complex=True,
            )
            return (spec.real.square() + spec.imag.square()).transpose(1, 2)
        padded = nn.functional.pad(waveforms[:, None, :], (N_FFT // 2, N_FFT // 2), mode="reflect")
        allow_tf32 = torch.backends.cudnn.allow_tf32
        torch.backends.cudnn.allow_tf32 = False  # a TF32 1024-tap DFT loses ~3 digits
        try:
            real = nn.functional.conv1d(padded, self.dft_real, stride=HOP_LENGTH)
            imag = nn.functional.conv1d(padded, self.dft_imag, stride=HOP_LENGTH)
        finally:
            torch.backends.cudnn.allow_tf32 = allow_tf32
        return (real.square() + imag.square()).transpose(1, 2)

    def forward(self, waveforms: torch.Tensor) -> torch.Tensor:
        mel = torch.matmul(self.power_spectrogram(waveforms), self.mel_filterbank)
        return (10.0 * torch.log10(torch.clamp(mel, min=AMIN)))[:, None]
