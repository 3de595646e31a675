"""Encoder test fixtures: the msclap parity fixture and its regenerated random weights.

``msclap2023_io.pt`` was made by msclap 1.3.4 itself with seeded random weights; the 358 MB
weights file (``tinytext`` variant: 2-layer GPT-2, audio branch bit-identical to the full one) is
not shipped but rebuilt by the fixture's own ``regen_msclap2023_random.py`` (~12 s on 2 cores)
and cached across runs in ``$LIGHTHOUSE_AUDIO_TEST_CACHE`` (default
``~/.cache/lighthouse-audio/test-weights``). ``LIGHTHOUSE_AUDIO_MSCLAP_VARIANT=full`` uses the
12-layer text tower instead (650 MB).
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
from pathlib import Path
from types import ModuleType

import pytest
import torch

from tests.conftest import SHARED

MSCLAP_DIR = Path(
    os.environ.get("LIGHTHOUSE_AUDIO_MSCLAP_FIXTURES", SHARED / "fixtures" / "msclap")
)
MSCLAP_VARIANT = os.environ.get("LIGHTHOUSE_AUDIO_MSCLAP_VARIANT", "tiny")
CACHE_DIR = Path(
    os.environ.get(
        "LIGHTHOUSE_AUDIO_TEST_CACHE", Path.home() / ".cache" / "lighthouse-audio" / "test-weights"
    )
)
REGEN_SCRIPT = "regen_msclap2023_random.py"
MANIFEST = "msclap2023_random_manifest.json"


def fixture_texts(folder: Path = MSCLAP_DIR) -> list[str]:
    """The texts the io fixture encoded, as its README states them (``TEXTS = `[...]```): the
    .pt file stores their tokens, not the strings."""
    import ast
    import re

    readme = _require(folder / "README.md").read_text(encoding="utf-8")
    found = re.search(r"TEXTS = `(\[.*?\])`", readme)
    if found is None:
        pytest.fail(f"{folder / 'README.md'}: no TEXTS = `[...]` line")
    return list(ast.literal_eval(found.group(1)))


def _require(path: Path) -> Path:
    if not path.exists():
        pytest.skip(f"msclap fixture file missing: {path}")
    return path


@pytest.fixture(scope="session")
def msclap_dir() -> Path:
    return _require(MSCLAP_DIR)


@pytest.fixture(scope="session")
def msclap_io(msclap_dir: Path) -> dict[str, torch.Tensor]:
    return torch.load(_require(msclap_dir / "msclap2023_io.pt"), weights_only=True)


@pytest.fixture(scope="session")
def msclap_manifest(msclap_dir: Path) -> dict:
    return json.loads(_require(msclap_dir / MANIFEST).read_text())


@pytest.fixture(scope="session")
def gpt2_tokenizer_dir(msclap_dir: Path) -> Path:
    return _require(msclap_dir / "gpt2_tokenizer")


def _regen_module(msclap_dir: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location("msclap_regen", msclap_dir / REGEN_SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def msclap_weights(msclap_dir: Path, msclap_manifest: dict) -> Path:
    """The regenerated random ``CLAP_weights_2023.pth`` stand-in, built once and cached.

    The file name carries a hash of the manifest and the regen script, so a changed fixture
    rebuilds it; it is written to a temporary name and renamed, so an interrupted or concurrent
    run never leaves a truncated file behind.
    """
    stamp = hashlib.sha256()
    for name in (MANIFEST, REGEN_SCRIPT):
        stamp.update(_require(msclap_dir / name).read_bytes())
    path = CACHE_DIR / f"msclap2023_random_{MSCLAP_VARIANT}-{stamp.hexdigest()[:12]}.pth"
    if not path.is_file():
        CACHE_DIR.mkdir(parents=True, exist_ok=True)
        state = _regen_module(msclap_dir).regenerate(msclap_manifest, MSCLAP_VARIANT)
        partial = path.with_name(f"{path.name}.{os.getpid()}.partial")
        torch.save(state, partial)
        os.replace(partial, path)
    return path


@pytest.fixture(scope="session")
def clap_encoder(msclap_weights: Path, gpt2_tokenizer_dir: Path):
    pytest.importorskip("transformers")
    from lighthouse_audio.encoders.clap import build_clap_encoder

    return build_clap_encoder(msclap_weights, tokenizer=gpt2_tokenizer_dir)
