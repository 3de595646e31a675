"""End to end for UVCOM through the CLI on the toy task (tests/toy_model.py): train,
resume bit for bit, infer --eval, the --fast path (static_shapes refused), and the plugin
listing. Short runs: the parity with Lighthouse is pinned by tests/models/test_uvcom.py."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from lighthouse_audio.cli.main import main
from lighthouse_audio.models.uvcom import build_model
from tests.toy_model import train_args

# Two epochs of a one-layer-encoder UVCOM: its fixed 1024-wide slot and similarity MLPs make a
# step several times dearer than QD-DETR's.
EPOCHS = 2


def uvcom_args(toy: Path, results: Path, *extra: str) -> list[str]:
    return [*train_args(toy, results, "enc_layers=1", *extra), "--model", "uvcom"]


def uvcom_dir(results: Path, suffix: str = "") -> Path:
    return results / "uvcom" / "custom" / f"clap{suffix}"


def _log(folder: Path, name: str = "train.log") -> list[str]:
    """Log lines without their timestamps."""
    return [line.split(" ", 1)[1] for line in (folder / name).read_text().splitlines()]


@pytest.fixture(scope="module")
def runs(toy_data, tmp_path_factory) -> tuple[Path, Path]:
    """``a``: EPOCHS epochs straight; ``b``: one epoch fewer, then resumed to EPOCHS."""
    a, b = tmp_path_factory.mktemp("uvcom_a"), tmp_path_factory.mktemp("uvcom_b")
    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        assert main(uvcom_args(toy_data, a, f"n_epoch={EPOCHS}")) == 0
        assert main(uvcom_args(toy_data, b, f"n_epoch={EPOCHS - 1}")) == 0
        resume = ["--resume", str(uvcom_dir(b) / "last.ckpt")]
        assert main(uvcom_args(toy_data, b, f"n_epoch={EPOCHS}") + resume) == 0
    finally:
        torch.set_num_threads(threads)
    return a, b


def test_resumed_run_continues_bit_for_bit(runs):
    a, b = runs
    sd_a = torch.load(uvcom_dir(a) / "last.ckpt", weights_only=False)["model"]
    sd_b = torch.load(uvcom_dir(b) / "last.ckpt", weights_only=False)["model"]
    assert list(sd_a) == list(sd_b)
    assert all(torch.equal(sd_a[k], sd_b[k]) for k in sd_a)
    assert _log(uvcom_dir(a)) == _log(uvcom_dir(b))
    assert _log(uvcom_dir(a), "val.log") == _log(uvcom_dir(b), "val.log")
    assert len(_log(uvcom_dir(a))) == EPOCHS


def test_training_writes_a_lighthouse_uvcom_checkpoint_and_learns(runs):
    folder = uvcom_dir(runs[0])
    ckpt = torch.load(folder / "best.ckpt", weights_only=False)
    assert list(ckpt) == ["model", "optimizer", "lr_scheduler", "epoch", "opt"]
    assert type(ckpt["opt"]).__name__ == "EasyDict" and ckpt["opt"]["model_name"] == "uvcom"
    build_model(ckpt["opt"]).load_state_dict(ckpt["model"], strict=True)
    assert "CIM.txt_mu" in ckpt["model"] and "input_audio_proj.0.net.1.weight" in ckpt["model"]
    # UVCOM's own term is trained and logged next to QD-DETR's
    first = _log(folder)[0]
    assert "loss_saliency" in first and "loss_sim" in first and "loss_label_neg" not in first
    # global_rep_token gets a zero gradient (overwritten before use), as in Lighthouse: AdamW
    # still keeps state for it and decays it
    state = ckpt["optimizer"]["state"]
    names = list(dict(build_model(ckpt["opt"]).named_parameters()))
    token = state[names.index("global_rep_token")]
    assert torch.count_nonzero(token["exp_avg"]) == 0
    overall = [float(line.split("loss_overall ")[1].split()[0]) for line in _log(folder)]
    assert overall[-1] < overall[0], overall


def test_infer_with_eval_reproduces_validation_metrics(toy_data, runs, tmp_path):
    folder = uvcom_dir(runs[0])
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


def test_static_shapes_is_refused_in_one_line(toy_data, tmp_path, capsys):
    """Padding every batch to the span would change UVCOM's outputs (it averages over padded
    positions), so that speed option is refused; --fast (below) does not pad and works."""
    code = main([*uvcom_args(toy_data, tmp_path / "static", "n_epoch=1"), "static_shapes=true"])
    assert code != 0
    assert "static_shapes must be false for uvcom" in capsys.readouterr().err


def test_fast_path_trains_a_few_steps(toy_data, tmp_path):
    results = tmp_path / "fast"
    assert main([*uvcom_args(toy_data, results, "n_epoch=1"), "--fast"]) == 0
    folder = uvcom_dir(results)
    config = (folder / "config.yaml").read_text()
    assert "resident_data: true" in config and "assignment: device" in config
    (line,) = _log(folder)
    losses = dict(zip(line.split()[3::2], map(float, line.split()[4::2]), strict=True))
    assert {"loss_span", "loss_giou", "loss_label", "loss_saliency", "loss_sim"} <= set(losses)
    assert all(torch.isfinite(torch.tensor(v)) for v in losses.values())


def test_list_shows_uvcom(capsys):
    assert main(["list"]) == 0
    models = capsys.readouterr().out.split("baselines:")[0].split()
    assert "uvcom" in models and "qd_detr" in models
