"""A tiny deterministic encoder, for tests of everything around encoders (no weights needed)."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import numpy as np

from lighthouse_audio.encoders.base import AudioTextEncoder


class ToyEncoder(AudioTextEncoder):
    """Audio: log-energy in 8 frequency bands per window; text: one hashed vector per word."""

    name = "toy"
    sample_rate = 8000
    audio_dim = 8
    text_dim = 4
    frames = "center"

    def encode_audio_windows(self, windows: np.ndarray) -> np.ndarray:
        spectrum = np.abs(np.fft.rfft(windows, axis=1)) ** 2
        bands = np.array_split(spectrum, self.audio_dim, axis=1)
        return np.log10(1e-8 + np.stack([b.sum(axis=1) for b in bands], axis=1)).astype(np.float32)

    def encode_text(self, texts: Sequence[str]) -> list[np.ndarray]:
        out = []
        for text in texts:
            rows = []
            for word in text.lower().split():
                digest = hashlib.sha256(word.encode()).digest()[: self.text_dim]
                rows.append(np.frombuffer(digest, dtype=np.uint8).astype(np.float32) / 255.0)
            out.append(np.stack(rows))
        return out

    def weights_id(self) -> str:
        return "toy-v1"


def write_tone(path, seconds: float, sample_rate: int = 8000, freq: float = 440.0) -> None:
    """A sine tone file (format from the suffix), for audio tests."""
    import soundfile as sf

    t = np.arange(int(seconds * sample_rate)) / sample_rate
    sf.write(path, (0.3 * np.sin(2 * np.pi * freq * t)).astype(np.float32), sample_rate)
