"""A toy alignment problem with a known answer: two-tone clips captioned with the tones' names.

``WideToy`` (ToyEncoder with 16 bands and 16-d word vectors) makes the relation almost linear:
a clip's audio row is high in the two bands it holds, its caption's mean token state is the sum
of the two band words' (linearly independent) vectors plus constants. Held-out clips hold band
pairs never heard together in training, so high held-out recall means the heads generalise.
"""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from lighthouse_audio.encoders.base import FeatureSpec
from lighthouse_audio.joint.trained import TrainedJointSpace
from lighthouse_audio.registry import FEATURES
from lighthouse_audio.testing.dummies import ToyEncoder

TOY_FEATURE = "toy-align"
NUM_BANDS = 16
WORDS = ("alpha bravo charlie delta echo foxtrot golf hotel india juliet kilo lima mike "
         "november oscar papa").split()  # fmt: skip


class WideToy(ToyEncoder):
    name = TOY_FEATURE
    audio_dim = NUM_BANDS
    text_dim = 16

    def weights_id(self) -> str:
        return "toy-v1"


def two_tones(a: int, b: int, seconds: float = 1.5, rate: int = 8000) -> np.ndarray:
    band_hz = rate / 2 / NUM_BANDS
    t = np.arange(int(seconds * rate)) / rate
    return sum(0.2 * np.sin(2 * np.pi * (k + 0.5) * band_hz * t) for k in (a, b)).astype(np.float32)


@pytest.fixture
def toy_align_feature():
    """Registers ``toy-align`` (WideToy, trained joint space for weights ``toy-v1``)."""
    factory = TrainedJointSpace(TOY_FEATURE, lambda **kw: "toy-v1")
    spec = FeatureSpec(TOY_FEATURE, "audio", encoder=lambda **kw: WideToy(), joint_space=factory)
    FEATURES.register(spec)
    yield spec
    FEATURES.unregister(TOY_FEATURE)


def write_manifest(folder: Path, lines: list[dict]) -> Path:
    path = folder / "manifest.jsonl"
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    return path


@pytest.fixture(scope="session")
def toy_sounds(tmp_path_factory) -> Path:
    """A shared/sounds-like folder: 120 two-tone fg clips, one bg line (not a clip)."""
    folder = tmp_path_factory.mktemp("toy_sounds")
    (folder / "fg").mkdir()
    lines = []
    for a, b in itertools.combinations(range(NUM_BANDS), 2):
        name = f"fg/tones_{a:02d}_{b:02d}.wav"
        sf.write(folder / name, two_tones(a, b), 8000)
        lines.append({"path": name, "role": "fg", "caption": f"tones {WORDS[a]} and {WORDS[b]}"})
    sf.write(folder / "bg.wav", two_tones(0, 1, 3.0), 8000)
    lines.append({"path": "bg.wav", "role": "bg", "caption": "an ambience"})
    write_manifest(folder, lines)
    return folder


@pytest.fixture(scope="session")
def toy_cache(tmp_path_factory) -> Path:
    """One encoded-clip cache for the session: clips are encoded once, by the first test."""
    return tmp_path_factory.mktemp("toy_cache")
