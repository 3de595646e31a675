"""End to end for both TaskWeave variants through the CLI on the toy task (tests/toy_model.py):
train, resume bit for bit, the epoch-dependent branch during validation, infer --eval, the
--fast path, and the plugin listing. Short runs: the parity with Lighthouse is pinned by
tests/models/test_taskweave.py."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from lighthouse_audio.cli.main import main
from lighthouse_audio.models.taskweave import VARIANTS, build_model
from lighthouse_audio.prediction.model import load_model
from lighthouse_audio.prediction.split import predict_split
from tests.toy_model import train_args

EPOCHS = 3


def taskweave_args(variant: str, toy: Path, results: Path, *extra: str) -> list[str]:
    return [*train_args(toy, results, *extra), "--model", variant]


def run_dir(variant: str, results: Path) -> Path:
    """Named after the variant (Lighthouse's --model), not the shared model_name."""
    return results / variant / "custom" / "clap"


def _log(folder: Path, name: str = "train.log") -> list[str]:
    """Log lines without their timestamps."""
    return [line.split(" ", 1)[1] for line in (folder / name).read_text().splitlines()]


def _losses(line: str) -> dict[str, float]:
    words = line.split("[Loss] ")[1].split(" [Metrics]")[0].split()
    return dict(zip(words[::2], map(float, words[1::2]), strict=True))


@pytest.fixture(scope="module", params=sorted(VARIANTS))
def runs(request, toy_data, tmp_path_factory) -> tuple[str, Path, Path]:
    """``a``: EPOCHS epochs straight; ``b``: one epoch fewer, then resumed to EPOCHS."""
    variant = request.param
    a, b = tmp_path_factory.mktemp(f"{variant}_a"), tmp_path_factory.mktemp(f"{variant}_b")
    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        assert main(taskweave_args(variant, toy_data, a, f"n_epoch={EPOCHS}")) == 0
        assert main(taskweave_args(variant, toy_data, b, f"n_epoch={EPOCHS - 1}")) == 0
        resume = ["--resume", str(run_dir(variant, b) / "last.ckpt")]
        assert main(taskweave_args(variant, toy_data, b, f"n_epoch={EPOCHS}") + resume) == 0
    finally:
        torch.set_num_threads(threads)
    return variant, a, b


def test_resumed_run_continues_bit_for_bit(runs):
    variant, a, b = runs
    folder_a, folder_b = run_dir(variant, a), run_dir(variant, b)
    sd_a = torch.load(folder_a / "last.ckpt", weights_only=False)["model"]
    sd_b = torch.load(folder_b / "last.ckpt", weights_only=False)["model"]
    assert list(sd_a) == list(sd_b)
    assert all(torch.equal(sd_a[k], sd_b[k]) for k in sd_a)
    assert _log(folder_a) == _log(folder_b)
    assert _log(folder_a, "val.log") == _log(folder_b, "val.log")
    assert len(_log(folder_a)) == EPOCHS


def test_resume_takes_the_variant_name_and_refuses_the_other(runs, toy_data, capsys):
    """Both variants record model_name taskweave; --model names the variant the run was
    started with (its folder), so the other one is refused before anything runs."""
    variant, a, _ = runs
    other = next(name for name in VARIANTS if name != variant)
    resume = ["--resume", str(run_dir(variant, a) / "last.ckpt")]
    capsys.readouterr()
    assert main(taskweave_args(other, toy_data, a, f"n_epoch={EPOCHS}") + resume) != 0
    assert f"--model {other} differs from the run's taskweave" in capsys.readouterr().err


def test_training_writes_a_lighthouse_taskweave_checkpoint_and_minimises_its_objective(runs):
    variant, a, _ = runs
    folder = run_dir(variant, a)
    ckpt = torch.load(folder / "best.ckpt", weights_only=False)
    assert list(ckpt) == ["model", "optimizer", "lr_scheduler", "epoch", "opt"]
    opt = ckpt["opt"]
    assert type(opt).__name__ == "EasyDict" and opt["model_name"] == "taskweave"
    assert opt["mr2hd"] is VARIANTS[variant]
    build_model(opt).load_state_dict(ckpt["model"], strict=True)
    assert list(ckpt["model"])[:2] == ["hd_log_var", "mr_log_var"]
    logged = [_losses(line) for line in _log(folder)]
    # the log has Lighthouse's terms and the learned log-variances; loss_overall is TaskWeave's
    # objective (not the weighted sum of the terms)
    first = logged[0]
    assert {"loss_saliency", "loss_span_0", "hd_log_var", "mr_log_var"} <= set(first)
    mr = sum(v for k, v in first.items() if k.startswith(("loss_span", "loss_giou", "loss_label")))
    assert first["loss_overall"] != pytest.approx(mr)
    assert [line["loss_overall"] for line in logged][-1] < logged[0]["loss_overall"]
    # the log-variances moved from their initial 0
    assert ckpt["model"]["hd_log_var"].item() != 0 and ckpt["model"]["mr_log_var"].item() != 0


def test_validation_used_the_epochs_branch_and_infer_the_inference_branch(toy_data, runs, tmp_path):
    """Validation during epochs 0-99 takes the training branch (as Lighthouse's in-training
    evaluation); ``lighthouse infer`` a loaded model's inference branch (``epoch_i=None``, as
    its ``evaluate.py``). MR2HD's spans are the same in both, so infer --eval reproduces the
    validation exactly; HD2MR's are not, and the training branch reproduces them."""
    variant, a, _ = runs
    folder = run_dir(variant, a)
    feats = toy_data / "features" / "custom"
    out = tmp_path / "preds.jsonl"
    code = main([
        "infer", "--checkpoint", str(folder / "best.ckpt"), "--jsonl", str(feats / "val.jsonl"),
        "--features", str(feats), "--out", str(out), "--eval", "--no-progress",
    ])  # fmt: skip
    assert code == 0
    metrics = json.loads(out.with_suffix(".metrics.json").read_text())
    val_preds = (folder / "best_val_preds.jsonl").read_text()
    if VARIANTS[variant]:
        assert metrics == json.loads((folder / "best_val_metrics.json").read_text())
        assert out.read_text() == val_preds
    loaded = load_model(folder / "best.ckpt")
    assert loaded.model.epoch is None  # a loaded model predicts with the inference branch
    inference, _ = predict_split(loaded, feats / "val.jsonl", feats, progress=False)
    assert [json.loads(line) for line in out.read_text().splitlines()] == inference
    best_epoch = torch.load(folder / "best.ckpt", weights_only=False)["epoch"]
    loaded.model.set_epoch(best_epoch)
    training, _ = predict_split(loaded, feats / "val.jsonl", feats, progress=False)
    assert [json.loads(line) for line in val_preds.splitlines()] == training


def test_fast_path_trains_a_few_steps_and_static_shapes_are_refused(toy_data, tmp_path, capsys):
    results = tmp_path / "fast"
    args = taskweave_args("taskweave_hd2mr", toy_data, results, "n_epoch=1")
    assert main([*args, "--fast"]) == 0
    folder = run_dir("taskweave_hd2mr", results)
    config = (folder / "config.yaml").read_text()
    assert "resident_data: true" in config and "assignment: device" in config
    (line,) = _log(folder)
    losses = _losses(line)
    assert {"loss_span", "loss_giou", "loss_label", "loss_saliency", "hd_log_var"} <= set(losses)
    assert all(torch.isfinite(torch.tensor(v)) for v in losses.values())
    capsys.readouterr()
    code = main([*taskweave_args("taskweave_hd2mr", toy_data, tmp_path / "static", "n_epoch=1"),
                 "--fast", "static_shapes=true"])  # fmt: skip
    assert code != 0
    assert "static_shapes pads every batch to max_v_l" in capsys.readouterr().err


def test_list_shows_both_variants_only(capsys):
    assert main(["list"]) == 0
    models = capsys.readouterr().out.split("baselines:")[0].split()
    assert "taskweave_mr2hd" in models and "taskweave_hd2mr" in models
    assert "taskweave" not in models
