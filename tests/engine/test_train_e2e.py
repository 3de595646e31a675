"""End-to-end: train AM-DETR on a separable toy set through the CLI, evaluate, resume, infer."""

import json
from pathlib import Path

import pytest
import torch

from lighthouse_audio.cli.main import main
from lighthouse_audio.testing.synthetic import SyntheticSpec, write_split

SPEC = dict(duration=20, num_classes=4, min_window=3, max_window=8, min_tokens=4, max_tokens=8)


@pytest.fixture(scope="module")
def toy(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("toy")
    feats = root / "features" / "custom"
    write_split(feats, "train", SyntheticSpec(128, **SPEC), seed=1)
    write_split(feats, "val", SyntheticSpec(48, **SPEC), seed=2, qid_offset=10_000)
    return root


def train_args(toy: Path, results: Path, *extra: str) -> list[str]:
    feats = toy / "features" / "custom"
    return [
        "train", "--dataset", "custom", "--feature", "clap", "--no-progress",
        "--features-root", str(toy / "features"), "--device", "cpu",
        f"train_path={feats / 'train.jsonl'}", f"eval_path={feats / 'val.jsonl'}",
        f"results_dir={results}", "bsz=32", "eval_bsz=64", "lr=0.0005", "max_v_l=20", "max_a_l=20",
        "input_dropout=0.1", *extra,
    ]  # fmt: skip


def run_dir(results: Path, suffix: str = "") -> Path:
    return results / "qd_detr" / "custom" / f"clap{suffix}"


@pytest.fixture(scope="module")
def trained(toy, tmp_path_factory) -> Path:
    results = tmp_path_factory.mktemp("results")
    torch.set_num_threads(2)
    assert main(train_args(toy, results, "n_epoch=10")) == 0
    return results


def test_training_learns_the_toy_task(trained):
    metrics = json.loads((run_dir(trained) / "best_val_metrics.json").read_text())
    # Random windows score a few percent here; a model that learned finds most moments.
    assert metrics["brief"]["MR-full-mAP@0.5"] > 40, metrics["brief"]
    assert metrics["brief"]["MR-full-R1@0.5"] > 40, metrics["brief"]


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
    assert len((folder / "train.log").read_text().splitlines()) == 10


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
