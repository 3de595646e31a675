"""Shared paths and tiny synthetic audio for the simulator tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from tests.conftest import SHARED

RECIPES_DIR = SHARED / "data" / "clotho_moment_recipes"
ANNOTATIONS_DIR = SHARED / "data" / "annotations"
SOUNDS_DIR = SHARED / "sounds"
# Official split names in recipe files -> in the released annotation files.
SPLITS = {"valid": "val", "test": "test"}

SR = 8000  # low rate keeps synthetic files small; the code takes the rate as a parameter


def write_noise(
    path: Path, seconds: float, sr: int = SR, amplitude: float = 0.1, seed: int = 0
) -> Path:
    """White noise of ``seconds`` at ``sr`` as 16-bit audio (format from the suffix)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    signal = amplitude * rng.uniform(-1, 1, int(round(seconds * sr)))
    sf.write(path, signal, sr, subtype="VORBIS" if path.suffix == ".ogg" else "PCM_16")
    return path


def need(path: Path) -> Path:
    if not path.exists():
        pytest.skip(f"{path} not available")
    return path
