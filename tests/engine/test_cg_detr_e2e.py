"""End to end for CG-DETR through the CLI on the toy task (tests/toy_model.py): train with its
training-only inputs (vid, targets) and dataset rule, resume bit for bit, infer --eval, the
--fast path, and the plugin listing. Short runs: the parity with Lighthouse is pinned by
tests/models/test_cg_detr.py."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from lighthouse_audio.cli.main import main
from lighthouse_audio.models.cg_detr import build_model
from tests.toy_model import train_args

EPOCHS = 3
# A smaller CG-DETR than the default, to keep CPU runs short (every CG-DETR part still runs).
SMALL = ("enc_layers=2", "dec_layers=2", "num_dummies=8", "hidden_dim=128")


def cg_args(toy: Path, results: Path, *extra: str) -> list[str]:
    return [*train_args(toy, results, *SMALL, *extra), "--model", "cg_detr"]


def cg_dir(results: Path, suffix: str = "") -> Path:
    return results / "cg_detr" / "custom" / f"clap{suffix}"


def _log(folder: Path, name: str = "train.log") -> list[str]:
    """Log lines without their timestamps."""
    return [line.split(" ", 1)[1] for line in (folder / name).read_text().splitlines()]


def _losses(line: str) -> dict[str, float]:
    fields = line.split("[Loss] ")[1].split(" [Metrics]")[0].split()
    return dict(zip(fields[::2], map(float, fields[1::2]), strict=True))


@pytest.fixture(scope="module")
def runs(toy_data, tmp_path_factory) -> tuple[Path, Path]:
    """``a``: EPOCHS epochs straight; ``b``: one epoch fewer, then resumed to EPOCHS."""
    a, b = tmp_path_factory.mktemp("cg_a"), tmp_path_factory.mktemp("cg_b")
    assert main(cg_args(toy_data, a, f"n_epoch={EPOCHS}")) == 0
    assert main(cg_args(toy_data, b, f"n_epoch={EPOCHS - 1}")) == 0
    resume = ["--resume", str(cg_dir(b) / "last.ckpt")]
    assert main(cg_args(toy_data, b, f"n_epoch={EPOCHS}") + resume) == 0
    return a, b


def test_resumed_run_continues_bit_for_bit(runs):
    a, b = runs
    sd_a = torch.load(cg_dir(a) / "last.ckpt", weights_only=False)["model"]
    sd_b = torch.load(cg_dir(b) / "last.ckpt", weights_only=False)["model"]
    assert list(sd_a) == list(sd_b)
    assert all(torch.equal(sd_a[k], sd_b[k]) for k in sd_a)
    assert _log(cg_dir(a)) == _log(cg_dir(b))
    assert _log(cg_dir(a), "val.log") == _log(cg_dir(b), "val.log")
    assert len(_log(cg_dir(a))) == EPOCHS


def test_training_writes_a_lighthouse_cg_detr_checkpoint_and_learns(runs):
    folder = cg_dir(runs[0])
    ckpt = torch.load(folder / "best.ckpt", weights_only=False)
    assert list(ckpt) == ["model", "optimizer", "lr_scheduler", "epoch", "opt"]
    assert type(ckpt["opt"]).__name__ == "EasyDict" and ckpt["opt"]["model_name"] == "cg_detr"
    build_model(ckpt["opt"]).load_state_dict(ckpt["model"], strict=True)
    assert ckpt["model"]["dummy_rep_token"].shape == (8, 128)
    losses = [_losses(line) for line in _log(folder)]
    # the training call got vid and targets: negative pairs and the moment/sentence losses ran
    assert all(epoch["loss_ms_align"] > 0 and epoch["loss_distill"] > 0 for epoch in losses)
    assert {"loss_saliency", "loss_orthogonal_dummy", "loss_span_0"} <= set(losses[0])
    assert losses[-1]["loss_overall"] < losses[0]["loss_overall"], losses


def test_infer_with_eval_reproduces_validation_metrics(toy_data, runs, tmp_path):
    folder = cg_dir(runs[0])
    feats = toy_data / "features" / "custom"
    out = tmp_path / "preds.jsonl"
    code = main([
        "infer", "--checkpoint", str(folder / "best.ckpt"), "--jsonl", str(feats / "val.jsonl"),
        "--features", str(feats), "--out", str(out), "--eval", "--no-progress",
    ])  # fmt: skip
    assert code == 0
    metrics = json.loads(out.with_suffix(".metrics.json").read_text())
    assert metrics == json.loads((folder / "best_val_metrics.json").read_text())
    assert out.read_text() == (folder / "best_val_preds.jsonl").read_text()


def test_fast_path_trains_a_few_steps(toy_data, tmp_path):
    results = tmp_path / "fast"
    assert main([*cg_args(toy_data, results, "n_epoch=1"), "--fast"]) == 0
    folder = cg_dir(results)
    config = (folder / "config.yaml").read_text()
    assert "resident_data: true" in config and "assignment: device" in config
    (line,) = _log(folder)
    losses = _losses(line)
    assert {"loss_span", "loss_giou", "loss_label", "loss_saliency", "loss_ms_align"} <= set(losses)
    assert losses["loss_ms_align"] > 0
    assert all(torch.isfinite(torch.tensor(v)) for v in losses.values())


def test_list_shows_cg_detr(capsys):
    assert main(["list"]) == 0
    models = capsys.readouterr().out.split("baselines:")[0].split()
    assert "cg_detr" in models and "qd_detr" in models
