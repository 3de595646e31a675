"""End-to-end: train AM-DETR on a separable toy set through the CLI, evaluate, resume, infer."""

import json
from pathlib import Path

import pytest
import torch

from lighthouse_audio.cli.main import main
from tests.toy_model import TOY_EPOCHS, run_dir, train_args


@pytest.fixture(scope="module")
def toy(toy_data) -> Path:
    return toy_data


@pytest.fixture(scope="module")
def trained(toy_trained) -> Path:
    return toy_trained


def test_training_learns_the_toy_task(trained):
    metrics = json.loads((run_dir(trained) / "best_val_metrics.json").read_text())
    # Random windows score a few percent here. Measured with these settings (tests/toy_model.py)
    # over 14 runs, seeds 0-6 and 2023 on 2 threads and 0-4 and 2023 on 1 thread: R1@0.5
    # 85.4-100, mAP@0.5 91.0-100. The bar at 60 leaves a wide margin for other machines, while
    # a model that does not learn stays far below it.
    assert metrics["brief"]["MR-full-mAP@0.5"] > 60, metrics["brief"]
    assert metrics["brief"]["MR-full-R1@0.5"] > 60, metrics["brief"]


def test_run_folder_has_lighthouse_checkpoint_and_logs(trained):
    folder = run_dir(trained)
    for name in (
        "best.ckpt",
        "last.ckpt",
        "config.yaml",
        "train.log",
        "val.log",
        "best_val_preds.jsonl",
    ):
        assert (folder / name).exists(), name
    ckpt = torch.load(folder / "best.ckpt", weights_only=False)
    assert list(ckpt) == ["model", "optimizer", "lr_scheduler", "epoch", "opt"]
    assert type(ckpt["opt"]).__name__ == "EasyDict"
    assert len((folder / "train.log").read_text().splitlines()) == TOY_EPOCHS


def test_second_run_never_overwrites(toy, trained):
    first = (run_dir(trained) / "best.ckpt").read_bytes()
    assert main(train_args(toy, trained, "n_epoch=1")) == 0
    assert (run_dir(trained) / "best.ckpt").read_bytes() == first
    assert (run_dir(trained, "-2") / "last.ckpt").exists()


def test_seeded_runs_identical_and_resume_continues_exactly(toy, tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    assert main(train_args(toy, a, "n_epoch=3")) == 0
    assert main(train_args(toy, b, "n_epoch=2")) == 0
    assert main(train_args(toy, b, "n_epoch=3") + ["--resume", str(run_dir(b) / "last.ckpt")]) == 0
    sd_a = torch.load(run_dir(a) / "last.ckpt", weights_only=False)["model"]
    sd_b = torch.load(run_dir(b) / "last.ckpt", weights_only=False)["model"]
    assert all(torch.equal(sd_a[k], sd_b[k]) for k in sd_a)
    log_a = [line.split(" ", 1)[1] for line in (run_dir(a) / "train.log").read_text().splitlines()]
    log_b = [line.split(" ", 1)[1] for line in (run_dir(b) / "train.log").read_text().splitlines()]
    assert log_a == log_b


def test_infer_with_eval_reproduces_validation_metrics(toy, trained, tmp_path):
    feats = toy / "features" / "custom"
    out = tmp_path / "preds.jsonl"
    code = main([
        "infer", "--checkpoint", str(run_dir(trained) / "best.ckpt"), "--jsonl",
        str(feats / "val.jsonl"), "--features", str(feats), "--out", str(out), "--eval",
        "--no-progress",
    ])  # fmt: skip
    assert code == 0
    metrics = json.loads(out.with_suffix(".metrics.json").read_text())
    expected = json.loads((run_dir(trained) / "best_val_metrics.json").read_text())
    assert metrics == expected
    assert out.read_text() == (run_dir(trained) / "best_val_preds.jsonl").read_text()


def test_evaluation_only_dataset_cannot_train(capsys):
    assert main(["train", "--dataset", "tut2017", "--feature", "clap"]) == 2
    assert "evaluation-only" in capsys.readouterr().err


def test_wrong_checkpoint_gives_one_line_error(tmp_path, capsys):
    bad = tmp_path / "bad.ckpt"
    torch.save({"weights": 1}, bad)
    code = main(
        ["infer", "--checkpoint", str(bad), "--jsonl", "x.jsonl", "--features", "f", "--out", "o"]
    )
    assert code == 2
    err = capsys.readouterr().err.strip()
    assert "bad.ckpt: not a Lighthouse checkpoint" in err and "\n" not in err
