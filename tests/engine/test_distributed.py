"""Data-parallel training with torchrun: 2 CPU processes on the gloo backend."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from lighthouse_audio.cli.main import main
from lighthouse_audio.engine.distributed import Distributed, current
from tests.toy_model import run_dir, train_args

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")


def torchrun(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    """``torchrun --standalone --nproc_per_node 2 -m lighthouse_audio.train ARGS``."""
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nnodes", "1",
               "--nproc_per_node", "2", "-m", "lighthouse_audio.train", *args]  # fmt: skip
    done = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return done


def test_two_processes_train_once_evaluate_whole_and_resume(toy_data, tmp_path):
    results = tmp_path / "results"
    args = train_args(toy_data, results, "n_epoch=3")[1:]  # torchrun's module adds "train"
    done = torchrun(args, cwd=tmp_path)
    assert "data-parallel over 2 processes, effective batch 2 x 16 = 32" in done.stdout
    assert done.stdout.count("lighthouse: run folder") == 1  # rank 0 alone speaks
    folder = run_dir(results)
    assert sorted(p.name for p in results.rglob("clap*")) == ["clap"]  # one folder, claimed once
    assert len((folder / "train.log").read_text().splitlines()) == 3  # written once per epoch
    assert len((folder / "val.log").read_text().splitlines()) == 3

    # Validation gathered the ranks' halves: the same metrics as one process scoring the
    # best checkpoint on the whole split.
    out = tmp_path / "preds.jsonl"
    feats = toy_data / "features" / "custom"
    assert main(["infer", "--checkpoint", str(folder / "best.ckpt"), "--jsonl",
                 str(feats / "val.jsonl"), "--features", str(feats), "--out", str(out),
                 "--eval", "--no-progress"]) == 0  # fmt: skip
    single = json.loads(out.with_suffix(".metrics.json").read_text())
    gathered = json.loads((folder / "best_val_metrics.json").read_text())
    assert single == gathered
    assert out.read_text() == (folder / "best_val_preds.jsonl").read_text()

    # resume under torchrun: every rank loads last.ckpt and goes on in the same folder
    resume = ["--resume", str(folder / "last.ckpt"), "n_epoch=4", "--no-progress"]
    torchrun(resume, cwd=tmp_path)
    assert len((folder / "train.log").read_text().splitlines()) == 4
    assert len((folder / "resumes.jsonl").read_text().splitlines()) == 1
    assert sorted(p.name for p in results.rglob("clap*")) == ["clap"]


def test_two_processes_on_the_device_resident_path(toy_data, tmp_path):
    results = tmp_path / "results"
    args = train_args(toy_data, results, "n_epoch=2", "resident_data=true", "assignment=device")
    torchrun(args[1:], cwd=tmp_path)
    assert len((run_dir(results) / "train.log").read_text().splitlines()) == 2


def test_single_process_is_not_distributed(monkeypatch):
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    world = current()
    assert not world.enabled and world.is_main
    assert world.gather_in_order(["b", "a", "c"], [1, 0, 2]) == ["a", "b", "c"]
    assert world.share("x") == "x"
    monkeypatch.setenv("WORLD_SIZE", "4")
    monkeypatch.setenv("RANK", "3")
    monkeypatch.setenv("LOCAL_RANK", "1")
    assert current() == Distributed(rank=3, world_size=4, local_rank=1)


def test_a_sweep_refuses_torchrun(monkeypatch, capsys):
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "0")
    assert main(["train", "--dataset", "custom", "--seeds", "1,2"]) == 2
    assert "without torchrun" in capsys.readouterr().err
