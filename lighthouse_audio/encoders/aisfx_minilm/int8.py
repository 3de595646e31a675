"""int8 aisfx CNN for ``aisfx-minilm``'s ``precision="int8"``: ~2x the float32 CNN on AVX2 CPUs.

Static post-training quantization with ``torch.ao.quantization``'s FX graph mode and the oneDNN
backend: per-channel symmetric int8 weights, uint8 activations (histogram observers, full 8-bit
range), each conv fused with its ReLU, max-pools and the mean over mel bins run on the uint8
tensors, the final max over time in float32. Only CPU has these kernels.

Calibration needs no audio files: :func:`calibration_audio` synthesises a fixed, seeded set of 1 s
windows (noises, tones, chirps, clicks, at levels from -60 to 0 dBFS), so the same weights give
the same int8 network on any machine. On the project's 390 shared clips (1,418 windows) this
calibration matches calibrating on the clips themselves (see ``docs/PERFORMANCE.md``).

torch marks FX quantization as deprecated in favour of ``torchao``'s pt2e flow (which needs
``torch.compile`` for its speed); the deprecation warnings are silenced here.
"""

from __future__ import annotations

import copy
import warnings
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
import torch
from torch import nn

CALIBRATION_SEED = 20261127
CALIBRATION_WINDOWS = 96
ENGINES = ("onednn", "x86")  # preferred first; "x86" is fbgemm with 7-bit activations


class _MeanFreqMaxTime(nn.Module):
    """aisfx's pooling: mean over mel bins, then max over time -> ``(batch, channels)``."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.mean(dim=3).amax(dim=2)


class PlainEmbeddingNet(nn.Module):
    """aisfx's ``EmbeddingNet`` (BatchNorm already folded) as one ``nn.Sequential`` of
    conv/ReLU/max-pool modules, the shape FX quantization can fuse and convert.
    ``(batch, time, 96)`` -> ``(batch, 512)``."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        blocks = (net.conv_block1, net.conv_block2, net.conv_block3, net.conv_block4)
        layers: list[nn.Module] = []
        for index, block in enumerate(blocks):
            layers += [copy.deepcopy(block.conv1), nn.ReLU(), copy.deepcopy(block.conv2), nn.ReLU()]
            if index < len(blocks) - 1:  # aisfx's last block pools 1x1
                layers.append(nn.MaxPool2d(2))
        self.body = nn.Sequential(*layers)
        self.pool = _MeanFreqMaxTime()

    def forward(self, spec: torch.Tensor) -> torch.Tensor:
        return self.pool(self.body(spec.unsqueeze(1)))


def _component(kind: int, rng: np.random.Generator, sample_rate: int) -> np.ndarray:
    """One synthetic sound of ``sample_rate`` samples, peak 1."""
    t = np.arange(sample_rate) / sample_rate
    if kind < 3:  # white, pink (1/f power), brown (1/f^2 power) noise
        spectrum = np.fft.rfft(rng.standard_normal(sample_rate))
        freqs = np.fft.rfftfreq(sample_rate, 1 / sample_rate)
        spectrum[1:] /= freqs[1:] ** (kind / 2)
        spectrum[0] = 0
        x = np.fft.irfft(spectrum, sample_rate)
    elif kind == 3:  # a tone with a few decaying harmonics
        f0 = 40.0 * 2 ** rng.uniform(0, 8)
        x = sum(
            np.sin(2 * np.pi * f0 * h * t + rng.uniform(0, 2 * np.pi)) / h
            for h in range(1, 6)
            if f0 * h < sample_rate / 2
        )
    elif kind == 4:  # logarithmic chirp
        f_start, f_end = 30.0 * 2 ** rng.uniform(0, 9, size=2)
        x = (
            np.sin(2 * np.pi * f_start * t)
            if abs(f_end / f_start - 1) < 1e-6
            else np.sin(
                2 * np.pi * f_start * (np.power(f_end / f_start, t) - 1) / np.log(f_end / f_start)
            )
        )
    elif kind == 5:  # decaying clicks
        x = np.zeros(sample_rate)
        x[rng.integers(0, sample_rate, size=rng.integers(2, 30))] = rng.uniform(-1, 1)
        x = np.convolve(x, np.exp(-np.arange(2000) / rng.uniform(20, 500)))[:sample_rate]
    else:  # noise under a slow amplitude envelope
        x = rng.standard_normal(sample_rate) * (1 + np.sin(2 * np.pi * rng.uniform(1, 12) * t))
    peak = np.abs(x).max()
    return x / peak if peak > 0 else x


def calibration_audio(
    num_windows: int = CALIBRATION_WINDOWS, sample_rate: int = 44100, seed: int = CALIBRATION_SEED
) -> np.ndarray:
    """Deterministic synthetic 1 s windows ``(num_windows, sample_rate)`` float32. Each mixes one
    to three sounds (white, pink or brown noise, a harmonic tone, a log chirp, decaying clicks,
    amplitude-modulated noise) at relative levels 0 to -30 dB, scaled to a peak of -60 to
    0 dBFS. Mixtures calibrate better than single sounds: on the shared clips the worst window's
    cosine to float32 rose from 0.966 to 0.995."""
    rng = np.random.default_rng(seed)
    out = np.zeros((num_windows, sample_rate))
    for index in range(num_windows):
        kinds = rng.choice(7, size=rng.integers(1, 4), replace=False)
        x = sum(_component(k, rng, sample_rate) * 10 ** (rng.uniform(-30, 0) / 20) for k in kinds)
        out[index] = x / np.abs(x).max() * 10 ** (rng.uniform(-60, 0) / 20)
    return out.astype(np.float32)


@contextmanager
def _quantized_engine(engine: str) -> Iterator[None]:
    previous = torch.backends.quantized.engine
    torch.backends.quantized.engine = engine
    try:
        yield
    finally:
        torch.backends.quantized.engine = previous


def quantization_engine() -> str:
    """The first of :data:`ENGINES` this torch build supports."""
    supported = torch.backends.quantized.supported_engines
    for engine in ENGINES:
        if engine in supported:
            return engine
    raise RuntimeError(
        f"precision='int8' needs one of torch's quantized engines {ENGINES}; this build has "
        f"{supported}"
    )


@torch.no_grad()
def quantize_embedding_net(net: nn.Module, spectrograms: torch.Tensor) -> nn.Module:
    """An int8 copy of aisfx's (BatchNorm-folded) ``net``, calibrated on ``spectrograms``
    ``(windows, time, 96)``. CPU only; ``net`` is left unchanged."""
    from torch.ao.quantization import get_default_qconfig_mapping
    from torch.ao.quantization.quantize_fx import convert_fx, prepare_fx

    engine = quantization_engine()
    plain = PlainEmbeddingNet(net).cpu().eval().to(memory_format=torch.contiguous_format)
    spectrograms = spectrograms.cpu()
    with _quantized_engine(engine), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # FX quantization's deprecation notices
        prepared = prepare_fx(plain, get_default_qconfig_mapping(engine), (spectrograms[:1],))
        torch.manual_seed(0)  # observers draw nothing today; keep it that way if they start
        for start in range(0, spectrograms.shape[0], 32):
            prepared(spectrograms[start : start + 32])
        return convert_fx(prepared).eval()
