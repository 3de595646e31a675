"""The package as users get it: a wheel installed (not editable) into a fresh venv, used from a
folder outside the source tree (tests/install/wheel_smoke.sh)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import SHARED

SCRIPT = Path(__file__).with_name("wheel_smoke.sh")
STEPS = ("install", "list", "demo --help", "demo", "train", "infer", "eval", "predict", "predictor",
         "other model")  # fmt: skip


def outside_this_venv() -> dict[str, str]:
    """The user's environment (pip's settings included) without the test venv on PATH."""
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH")}
    venv_bin = str(Path(sys.prefix) / "bin")
    env["PATH"] = os.pathsep.join(p for p in env["PATH"].split(os.pathsep) if p != venv_bin)
    env["LIGHTHOUSE_AUDIO_SHARED"] = str(SHARED)
    return env


@pytest.mark.skipif(not (SHARED / "sounds").is_dir(), reason="needs ../shared/sounds")
def test_wheel_installs_and_runs_outside_the_tree(tmp_path: Path) -> None:
    done = subprocess.run(
        ["bash", str(SCRIPT), str(tmp_path / "smoke")],
        capture_output=True, text=True, timeout=1200,
        env=outside_this_venv(),
    )  # fmt: skip
    tail = (done.stdout + done.stderr)[-3000:]
    assert done.returncode == 0, tail
    for step in STEPS:
        assert f"smoke: {step} ok" in done.stdout, tail
    assert "smoke: all ok" in done.stdout
