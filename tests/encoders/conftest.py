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


# ----------------------------------------------------------------------------- M2D-CLAP 2025
# ``m2d_clap2025_io.pt`` was made by the original M2D portable runtime on seeded random weights;
# the 794 MB checkpoint is rebuilt by the fixture's ``regen_m2d_clap2025_random.py`` into
# ``$LIGHTHOUSE_AUDIO_TEST_CACHE/m2d_clap2025_random-<hash>/<model folder>/checkpoint-30.pth``
# (~25 s, once), or single tensors of it in memory (``m2d_tensors``: no file at all).

M2D_DIR = Path(os.environ.get("LIGHTHOUSE_AUDIO_M2D_FIXTURES", SHARED / "fixtures" / "m2d_clap"))
M2D_REGEN_SCRIPT = "regen_m2d_clap2025_random.py"
M2D_MANIFEST = "m2d_clap2025_random_manifest.json"
M2D_SKIP_ENV = "LIGHTHOUSE_AUDIO_SKIP_M2D_CHECKPOINT"  # skip the file tier (disk, time)


def _require_m2d(path: Path) -> Path:
    if not path.exists():
        pytest.skip(f"M2D-CLAP fixture file missing: {path}")
    return path


@pytest.fixture(scope="session")
def m2d_dir() -> Path:
    return _require_m2d(M2D_DIR)


@pytest.fixture(scope="session")
def m2d_io(m2d_dir: Path) -> dict:
    return torch.load(_require_m2d(m2d_dir / "m2d_clap2025_io.pt"), weights_only=True)


@pytest.fixture(scope="session")
def m2d_manifest(m2d_dir: Path) -> dict:
    return json.loads(_require_m2d(m2d_dir / M2D_MANIFEST).read_text())


@pytest.fixture(scope="session")
def bert_vocab_dir(m2d_dir: Path) -> Path:
    return _require_m2d(m2d_dir / "bert_tokenizer")


@pytest.fixture(scope="session")
def m2d_regen(m2d_dir: Path) -> ModuleType:
    """The fixture's own regeneration script, imported (``tensor_for(entry, seed)``)."""
    spec = importlib.util.spec_from_file_location("m2d_regen", m2d_dir / M2D_REGEN_SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def m2d_tensors(regen: ModuleType, manifest: dict, prefix: str) -> dict[str, torch.Tensor]:
    """The random checkpoint's tensors whose key starts with ``prefix``, built in memory."""
    return {
        e["key"]: regen.tensor_for(e, manifest["seed"])
        for e in manifest["keys"]
        if e["key"].startswith(prefix)
    }


@pytest.fixture(scope="session")
def m2d_weights(m2d_dir: Path, m2d_manifest: dict) -> Path:
    """The regenerated random ``checkpoint-30.pth`` in its model-named folder, built once and
    cached. Skips (with the reason) when the disk cannot take it, the script fails or runs
    past 15 minutes, or ``LIGHTHOUSE_AUDIO_SKIP_M2D_CHECKPOINT=1``; the folder name carries a
    hash of the manifest and script, and is renamed into place only when complete."""
    import shutil
    import subprocess
    import sys

    if os.environ.get(M2D_SKIP_ENV, "") not in ("", "0"):
        pytest.skip(f"{M2D_SKIP_ENV} is set: the 794 MB random M2D-CLAP checkpoint is not built")
    stamp = hashlib.sha256()
    for name in (M2D_MANIFEST, M2D_REGEN_SCRIPT):
        stamp.update(_require_m2d(m2d_dir / name).read_bytes())
    root = CACHE_DIR / f"m2d_clap2025_random-{stamp.hexdigest()[:12]}"
    path = root / m2d_manifest["folder"] / m2d_manifest["file"]
    if path.is_file():
        return path
    CACHE_DIR.mkdir(parents=True, exist_ok=True)
    need = int(m2d_manifest["bytes"]) + (256 << 20)
    free = shutil.disk_usage(CACHE_DIR).free
    if free < need:
        pytest.skip(
            f"the random M2D-CLAP checkpoint needs {need >> 20} MiB free, {CACHE_DIR} has "
            f"{free >> 20} MiB"
        )
    partial = CACHE_DIR / f"{root.name}.partial-{os.getpid()}"
    script = m2d_dir / M2D_REGEN_SCRIPT
    try:
        try:
            done = subprocess.run(
                [sys.executable, str(script), str(partial)],
                capture_output=True, text=True, timeout=900,
            )  # fmt: skip
        except subprocess.TimeoutExpired:
            pytest.skip(f"{script} took more than 900 s to rebuild the M2D-CLAP checkpoint")
        if done.returncode != 0:
            last = (done.stderr.strip().splitlines() or ["no output"])[-1]
            pytest.skip(f"{script} could not rebuild the M2D-CLAP checkpoint: {last}")
        if "per-key sums: OK" not in done.stdout:
            pytest.fail(f"{script}: rebuilt tensors differ from the manifest:\n{done.stdout}")
        if not root.exists():
            os.replace(partial, root)
    finally:
        shutil.rmtree(partial, ignore_errors=True)
    return path
