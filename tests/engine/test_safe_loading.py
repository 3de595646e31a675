"""Checkpoints are unpickled with an allow-list: Lighthouse's load, a crafted one runs nothing."""

import glob
import os
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
from easydict import EasyDict

from lighthouse_audio.engine.checkpoint import CheckpointError, load_checkpoint
from tests.conftest import SHARED

FIXTURE_CKPTS = sorted(glob.glob(str(SHARED / "fixtures" / "*" / "*.ckpt")))


@pytest.mark.parametrize("path", FIXTURE_CKPTS, ids=lambda p: Path(p).name)
def test_every_lighthouse_fixture_checkpoint_loads(path):
    ckpt = load_checkpoint(Path(path))
    reference = torch.load(path, weights_only=False)  # trusted: the project's own fixtures
    assert type(ckpt["opt"]) is EasyDict and ckpt["opt"] == reference["opt"]
    assert list(ckpt["model"]) == list(reference["model"])
    assert all(torch.equal(ckpt["model"][k], reference["model"][k]) for k in reference["model"])


class _RunsCode:
    """Unpickling this calls ``os.system`` with a command that leaves a mark."""

    def __init__(self, mark: Path) -> None:
        self.mark = mark

    def __reduce__(self):
        return (os.system, (f"touch {self.mark}",))


class _CallsEval:
    def __reduce__(self):
        return (eval, ("__import__('os').getcwd()",))


@pytest.mark.parametrize("payload", ["system", "eval", "getattr"])
def test_crafted_checkpoint_is_refused_and_runs_nothing(tmp_path, payload):
    mark = tmp_path / "pwned"
    evil = {
        "system": _RunsCode(mark),
        "eval": _CallsEval(),
        "getattr": _Getattr(),
    }[payload]
    path = tmp_path / "evil.ckpt"
    torch.save({"model": {"w": torch.zeros(2)}, "opt": EasyDict(a=1), "x": evil}, path)
    with pytest.raises(CheckpointError) as err:
        load_checkpoint(path)
    message = str(err.value)
    assert message.startswith(f"{path}: unsafe checkpoint: it would call ") and "\n" not in message
    assert not mark.exists()


class _Getattr:
    def __reduce__(self):
        return (getattr, ("text", "upper"))  # the first step of any getattr-based escape


def test_plain_pickle_file_is_refused_too(tmp_path):
    path = tmp_path / "old.ckpt"
    with open(path, "wb") as f:
        pickle.dump({"model": {}, "x": _RunsCode(tmp_path / "mark")}, f)
    with pytest.raises(CheckpointError):
        load_checkpoint(path)
    assert not (tmp_path / "mark").exists()


def test_numpy_values_and_plain_containers_are_allowed(tmp_path):
    path = tmp_path / "np.ckpt"
    payload = {
        "model": {"w": torch.ones(3, dtype=torch.float16)},
        "opt": EasyDict(seed=np.int64(3), lr=np.float64(1e-4), dims=(768, 768), tags={"a"}),
        "array": np.arange(4, dtype=np.float32),
        "dtype": np.dtype("f4"),
    }
    torch.save(payload, path)
    ckpt = load_checkpoint(path)
    assert ckpt["opt"].seed == 3 and ckpt["opt"].tags == {"a"}
    np.testing.assert_array_equal(ckpt["array"], payload["array"])
    assert ckpt["model"]["w"].dtype == torch.float16
