"""End to end for TR-DETR through the CLI on the toy task (tests/toy_model.py): train,
resume bit for bit, infer --eval, the --fast path (its device-built targets carry
``src_pos_mask`` for the CTC loss), and the plugin listing. Short runs: the parity with
Lighthouse is pinned by tests/models/test_tr_detr.py."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from lighthouse_audio.cli.main import main
from lighthouse_audio.models.tr_detr import build_model
from tests.toy_model import train_args

EPOCHS = 3


def tr_args(toy: Path, results: Path, *extra: str) -> list[str]:
    return [*train_args(toy, results, *extra), "--model", "tr_detr"]


def tr_dir(results: Path, suffix: str = "") -> Path:
    return results / "tr_detr" / "custom" / f"clap{suffix}"


def _log(folder: Path, name: str = "train.log") -> list[str]:
    """Log lines without their timestamps."""
    return [line.split(" ", 1)[1] for line in (folder / name).read_text().splitlines()]


@pytest.fixture(scope="module")
def runs(toy_data, tmp_path_factory) -> tuple[Path, Path]:
    """``a``: EPOCHS epochs straight; ``b``: one epoch fewer, then resumed to EPOCHS."""
    a, b = tmp_path_factory.mktemp("tr_a"), tmp_path_factory.mktemp("tr_b")
    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        assert main(tr_args(toy_data, a, f"n_epoch={EPOCHS}")) == 0
        assert main(tr_args(toy_data, b, f"n_epoch={EPOCHS - 1}")) == 0
        resume = ["--resume", str(tr_dir(b) / "last.ckpt")]
        assert main(tr_args(toy_data, b, f"n_epoch={EPOCHS}") + resume) == 0
    finally:
        torch.set_num_threads(threads)
    return a, b


def test_resumed_run_continues_bit_for_bit(runs):
    a, b = runs
    sd_a = torch.load(tr_dir(a) / "last.ckpt", weights_only=False)["model"]
    sd_b = torch.load(tr_dir(b) / "last.ckpt", weights_only=False)["model"]
    assert list(sd_a) == list(sd_b)
    assert all(torch.equal(sd_a[k], sd_b[k]) for k in sd_a)
    assert _log(tr_dir(a)) == _log(tr_dir(b))
    assert _log(tr_dir(a), "val.log") == _log(tr_dir(b), "val.log")
    assert len(_log(tr_dir(a))) == EPOCHS


def test_training_writes_a_lighthouse_tr_detr_checkpoint_and_learns(runs):
    folder = tr_dir(runs[0])
    ckpt = torch.load(folder / "best.ckpt", weights_only=False)
    assert list(ckpt) == ["model", "optimizer", "lr_scheduler", "epoch", "opt"]
    assert type(ckpt["opt"]).__name__ == "EasyDict" and ckpt["opt"]["model_name"] == "tr_detr"
    build_model(ckpt["opt"]).load_state_dict(ckpt["model"], strict=True)
    assert "fuser.cq_attention.w4C" in ckpt["model"] and "global_rep_token" not in ckpt["model"]
    # the objective is Lighthouse's train.py one: the criterion's terms plus VTC and CTC
    first = _log(folder)[0]
    assert "loss_saliency" in first and "loss_label_neg" not in first
    assert "loss_vtc" in first and "loss_ctc" in first
    overall = [float(line.split("loss_overall ")[1].split()[0]) for line in _log(folder)]
    assert overall[-1] < overall[0], overall


def test_infer_with_eval_reproduces_validation_metrics(toy_data, runs, tmp_path):
    folder = tr_dir(runs[0])
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
    assert main([*tr_args(toy_data, results, "n_epoch=1"), "--fast"]) == 0
    folder = tr_dir(results)
    config = (folder / "config.yaml").read_text()
    assert "resident_data: true" in config and "assignment: device" in config
    (line,) = _log(folder)
    losses = dict(zip(line.split()[3::2], map(float, line.split()[4::2]), strict=True))
    assert {"loss_span", "loss_giou", "loss_label", "loss_saliency", "loss_vtc", "loss_ctc"} <= set(
        losses
    )
    assert all(torch.isfinite(torch.tensor(v)) for v in losses.values())


def test_list_shows_tr_detr(capsys):
    assert main(["list"]) == 0
    models = capsys.readouterr().out.split("baselines:")[0].split()
    assert "tr_detr" in models and "qd_detr" in models
