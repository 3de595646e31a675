"""A feature plugin: log energy in 16 bands per 1 s window; a hashed vector per query word."""

import hashlib

import numpy as np

from lighthouse_audio.encoders.base import AudioTextEncoder, FeatureSpec
from lighthouse_audio.registry import FEATURES


class BandEnergyEncoder(AudioTextEncoder):
    name = "band-energy"
    sample_rate = 16000  # windows arrive decoded and resampled to this rate
    audio_dim = 16  # class attributes: lighthouse train makes the feature's config from them
    text_dim = 8

    def encode_audio_windows(self, windows: np.ndarray) -> np.ndarray:
        power = np.abs(np.fft.rfft(windows, axis=1)) ** 2
        bands = np.array_split(power, self.audio_dim, axis=1)
        return np.log10(1e-8 + np.stack([b.sum(axis=1) for b in bands], axis=1)).astype("f4")

    def encode_text(self, texts: list[str]) -> list[np.ndarray]:
        def word(w: str) -> np.ndarray:
            return np.frombuffer(hashlib.sha256(w.lower().encode()).digest()[: self.text_dim], "u1")

        return [np.stack([word(w) for w in t.split()]).astype("f4") / 255 for t in texts]

    def weights_id(self) -> str:
        return "band-energy-v1"  # no weights: the version of the computation


FEATURES.register(FeatureSpec("band-energy", "audio", "16 log band energies", BandEnergyEncoder))
