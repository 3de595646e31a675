"""Run folders record only what happened: failed starts leave nothing, a resumed run keeps its
config and its logs read as one uninterrupted run, and the device used is the one recorded."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import torch
import yaml

from lighthouse_audio.cli.main import main
from tests.toy_model import run_dir, train_args


@pytest.fixture(scope="module")
def two_epochs(toy_data, tmp_path_factory) -> Path:
    """A finished 2-epoch run; tests copy it before changing anything."""
    results = tmp_path_factory.mktemp("two_epochs")
    assert main(train_args(toy_data, results, "n_epoch=2")) == 0
    return results


def copy_run(src: Path, dest: Path) -> Path:
    import shutil

    shutil.copytree(src, dest)
    return dest


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("n_epoch=0", "n_epoch=0: must be a whole number >= 1"),
        ("bsz=0", "bsz=0: must be a whole number >= 1"),
        ("eval_bsz=-4", "eval_bsz=-4: must be a whole number >= 1"),
        ("lr=-0.1", "lr=-0.1: must be a number > 0"),
        ("lr=.nan", "lr=nan: must be a number > 0"),
        ("grad_clip=-1", "grad_clip=-1.0: must be a number >= 0"),
        ("max_es_cnt=-2", "max_es_cnt=-2: must be a whole number >= -1"),
    ],
)
def test_values_training_cannot_use_leave_nothing(toy_data, tmp_path, capsys, override, message):
    results = tmp_path / "results"
    assert main(train_args(toy_data, results, override)) == 2
    captured = capsys.readouterr()
    assert captured.err.strip() == f"lighthouse train: error: {message}"
    assert "run folder" not in captured.out  # nothing announced ...
    assert not results.exists()  # ... and nothing written


def test_config_records_the_device_used_and_absolute_paths(toy_data, tmp_path, monkeypatch):
    feats = toy_data / "features" / "custom"
    monkeypatch.chdir(toy_data)
    args = [a for a in train_args(toy_data, tmp_path / "r", "n_epoch=1") if a != "--device"]
    args.remove("cpu")  # base.yml asks for cuda; this machine trains on the CPU
    relative = [a.replace(str(feats), "features/custom") for a in args]
    assert main(relative) == 0
    config = yaml.safe_load((run_dir(tmp_path / "r") / "config.yaml").read_text())
    assert config["device"] == ("cuda" if torch.cuda.is_available() else "cpu")
    assert config["train_path"] == str(feats / "train.jsonl")  # absolute, not cwd-relative
    assert all(os.path.isabs(p) for p in config["a_feat_dirs"])
    ckpt = torch.load(run_dir(tmp_path / "r") / "last.ckpt", weights_only=False)
    assert ckpt["opt"]["device"] == config["device"]


def test_resume_restores_the_run_config_from_anywhere(two_epochs, tmp_path, monkeypatch, capsys):
    results = copy_run(two_epochs, tmp_path / "results")
    folder = run_dir(results)
    config_before = (folder / "config.yaml").read_bytes()
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)  # no overrides repeated, another working folder
    argv = ["train", "--resume", str(folder / "last.ckpt"), "n_epoch=3", "--no-progress"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert f"resuming from {folder / 'last.ckpt'} after epoch 1" in out
    assert (folder / "config.yaml").read_bytes() == config_before  # written once
    epochs = [
        line.split("[Epoch] ")[1][:3] for line in (folder / "train.log").read_text().splitlines()
    ]
    assert epochs == ["000", "001", "002"]
    resumes = [json.loads(line) for line in (folder / "resumes.jsonl").read_text().splitlines()]
    assert len(resumes) == 1 and resumes[0]["changed"] == {"n_epoch": [2, 3]}
    assert resumes[0]["after_epoch"] == 1 and resumes[0]["device"] == "cpu"
    assert not any(elsewhere.iterdir())  # nothing landed in the working folder
    last = torch.load(folder / "last.ckpt", weights_only=False)
    assert last["epoch"] == 2 and last["opt"]["n_epoch"] == 3
    assert last["optimizer"]["param_groups"][0]["initial_lr"] == last["opt"]["lr"] == 0.0005


@pytest.mark.parametrize(
    "change",
    [["lr=0.1"], ["bsz=8"], ["--dataset", "clotho-moment"], ["--feature", "aisfx-minilm"]],
)
def test_resume_refuses_changed_settings(two_epochs, tmp_path, capsys, change):
    results = copy_run(two_epochs, tmp_path / "results")
    folder = run_dir(results)
    before = {p.name: p.read_bytes() for p in folder.iterdir()}
    argv = ["train", "--resume", str(folder / "last.ckpt"), "--no-progress", *change]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("lighthouse train: error: --resume: ") and "\n" not in err
    assert change[-1].split("=")[0] in err
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == before  # untouched


def test_repeating_the_original_overrides_on_resume_is_accepted(two_epochs, toy_data, tmp_path):
    results = copy_run(two_epochs, tmp_path / "results")
    folder = run_dir(results)
    argv = train_args(toy_data, results, "n_epoch=3") + ["--resume", str(folder / "last.ckpt")]
    assert main(argv) == 0
    assert torch.load(folder / "last.ckpt", weights_only=False)["epoch"] == 2


def test_resume_needs_a_last_checkpoint(two_epochs, tmp_path, capsys):
    results = copy_run(two_epochs, tmp_path / "results")
    best = run_dir(results) / "best.ckpt"
    assert main(["train", "--resume", str(best)]) == 2
    err = capsys.readouterr().err
    assert "no training state to resume" in err and f"--init-from {best}" in err


def test_resume_after_a_kill_mid_epoch_tidies_the_folder(two_epochs, tmp_path):
    """Killed after epoch 2's log lines and mid-way through writing its checkpoint: the rerun
    drops the unfinished epoch's lines, removes the dead writer's temporary, and ends with
    the logs an uninterrupted 3-epoch run writes."""
    results = copy_run(two_epochs, tmp_path / "results")
    folder = run_dir(results)
    for log in ("train.log", "val.log"):
        lines = (folder / log).read_text().splitlines(keepends=True)
        (folder / log).write_text("".join(lines) + lines[-1].replace("[Epoch] 001", "[Epoch] 002"))
    dead_pid = 2**22 + 12345  # above the kernel's pid_max default: never a live process
    stale = folder / f".last.{dead_pid}.0123abcd.tmp.ckpt"
    stale.write_bytes(b"half a checkpoint")
    assert main(["train", "--resume", str(folder / "last.ckpt"), "n_epoch=3", "--no-progress"]) == 0
    assert not stale.exists()
    for log in ("train.log", "val.log"):
        epochs = [line.split("[Epoch] ")[1][:3] for line in (folder / log).read_text().splitlines()]
        assert epochs == ["000", "001", "002"], log


def test_no_best_checkpoint_is_not_announced(toy_data, tmp_path, capsys):
    # No validation set: no epoch is scored, so no best checkpoint exists to name.
    args = train_args(toy_data, tmp_path / "r", "n_epoch=1")
    args = [a for a in args if not a.startswith("eval_path=")] + ["eval_path=null"]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "best checkpoint" not in out and "no best.ckpt was written" in out
    assert not (run_dir(tmp_path / "r") / "best.ckpt").exists()
    assert (run_dir(tmp_path / "r") / "last.ckpt").exists()


def test_ctrl_c_exits_130_with_the_resume_command(toy_data, tmp_path, capsys, monkeypatch):
    import lighthouse_audio.engine.train as engine_train

    real = engine_train.train_one_epoch
    calls = []

    def interrupted_on_the_second_epoch(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(engine_train, "train_one_epoch", interrupted_on_the_second_epoch)
    assert main(train_args(toy_data, tmp_path / "r", "n_epoch=3")) == 130
    err = capsys.readouterr().err.strip()
    last = run_dir(tmp_path / "r") / "last.ckpt"
    assert (
        err
        == f"lighthouse train: error: interrupted; resume with: lighthouse train --resume {last}"
    )
    monkeypatch.setattr(engine_train, "train_one_epoch", real)
    assert main(["train", "--resume", str(last), "--no-progress"]) == 0
    assert torch.load(last, weights_only=False)["epoch"] == 2


def test_a_start_killed_before_its_first_epoch_is_reused(toy_data, tmp_path):
    """Killed before any epoch ended, a run leaves only config.yaml (and maybe a dead
    writer's temporary): no results, so the rerun takes the folder rather than a new -2."""
    folder = run_dir(tmp_path / "r")
    folder.mkdir(parents=True)
    (folder / "config.yaml").write_text("lr: 123\n")
    (folder / f".last.{2**22 + 7}.0123abcd.tmp.ckpt").write_bytes(b"half")
    assert main(train_args(toy_data, tmp_path / "r", "n_epoch=1")) == 0
    assert sorted(p.name for p in folder.parent.iterdir()) == ["clap"]
    assert yaml.safe_load((folder / "config.yaml").read_text())["lr"] == 0.0005
    assert not any(p.name.endswith(".tmp.ckpt") for p in folder.iterdir())
    assert main(train_args(toy_data, tmp_path / "r", "n_epoch=1")) == 0  # now it has results
    assert sorted(p.name for p in folder.parent.iterdir()) == ["clap", "clap-2"]


def test_a_run_killed_inside_its_first_epoch_is_taken_over(toy_data, tmp_path):
    """Killed after its first epoch's log line and best.ckpt but before its last.ckpt, a run
    left nothing to resume: the rerun takes the folder (its marker says so) and leaves no line
    or file of the dead epoch; a folder holding another program's best.ckpt is never taken."""
    folder = run_dir(tmp_path / "r")
    folder.mkdir(parents=True)
    (folder / "config.yaml").write_text("lr: 123\n")
    (folder / ".first-epoch").write_text("")
    (folder / "train.log").write_text("2026_01_01_00_00_00 [Epoch] 000 [Loss] loss_overall 9.0\n")
    (folder / "best.ckpt").write_bytes(b"from the dead epoch")
    assert main(train_args(toy_data, tmp_path / "r", "n_epoch=1")) == 0
    assert sorted(p.name for p in folder.parent.iterdir()) == ["clap"]
    assert "9.0" not in (folder / "train.log").read_text()
    assert len((folder / "train.log").read_text().splitlines()) == 1
    assert torch.load(folder / "best.ckpt", weights_only=False)["epoch"] == 0
    assert not (folder / ".first-epoch").exists()  # an epoch ended: results from now on

    lighthouse = run_dir(tmp_path / "lh")
    lighthouse.mkdir(parents=True)
    (lighthouse / "best.ckpt").write_bytes(b"Lighthouse's own run")
    assert main(train_args(toy_data, tmp_path / "lh", "n_epoch=1")) == 0
    assert (lighthouse / "best.ckpt").read_bytes() == b"Lighthouse's own run"
    assert sorted(p.name for p in lighthouse.parent.iterdir()) == ["clap", "clap-2"]


def test_checkpoints_record_how_their_features_were_made(toy_data, tmp_path):
    import shutil

    from lighthouse_audio.data.feature_manifest import FeatureManifest, write_manifest

    toy = tmp_path / "toy"
    shutil.copytree(toy_data, toy)
    made = FeatureManifest("clap", "msclap-2023-test", 44100, 1.0, 1.0, "none", 768, 768,
                           "tokens", "test")  # fmt: skip
    write_manifest(toy / "features" / "custom" / "clap", made)
    assert main(train_args(toy, tmp_path / "r", "n_epoch=1")) == 0
    for name in ("best.ckpt", "last.ckpt"):
        opt = torch.load(run_dir(tmp_path / "r") / name, weights_only=False)["opt"]
        assert opt["feature_manifest"] == made.to_dict(), name
