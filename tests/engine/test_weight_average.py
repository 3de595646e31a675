"""The weight average (weight_average): its update rule, and a run that validates and keeps it."""

from __future__ import annotations

import json

import pytest
import torch
from torch import nn

from lighthouse_audio.cli.main import main
from lighthouse_audio.engine.weight_average import WeightAverage
from tests.toy_model import run_dir, train_args


def assert_best_checkpoint_predicts_what_validation_scored(toy_data, run, tmp_path):
    """``lighthouse infer`` with ``best.ckpt`` on val gives ``best_val_metrics.json`` exactly:
    the weights validation scored (the average, when there is one) are the ones kept."""
    feats = toy_data / "features" / "custom"
    out = tmp_path / "preds.jsonl"
    assert main(["infer", "--checkpoint", str(run / "best.ckpt"), "--jsonl",
                 str(feats / "val.jsonl"), "--features", str(feats), "--out", str(out),
                 "--eval", "--no-progress"]) == 0  # fmt: skip
    assert json.loads(out.with_suffix(".metrics.json").read_text()) == json.loads(
        (run / "best_val_metrics.json").read_text()
    )


def test_update_is_a_moving_average_with_a_short_memory_at_first():
    model = nn.Sequential(nn.Linear(3, 2), nn.BatchNorm1d(2))
    average = WeightAverage(model, decay=0.9)
    start = [p.detach().clone() for p in model.parameters()]
    for step in range(1, 4):
        with torch.no_grad():
            for p in model.parameters():
                p.add_(1.0)
            model[1].running_mean.fill_(float(step))
        expected_decay = min(0.9, (1 + step) / (10 + step))
        before = [p.clone() for p in average.model.parameters()]
        average.update()
        for old, new, raw in zip(before, average.model.parameters(), model.parameters(),
                                 strict=True):  # fmt: skip
            torch.testing.assert_close(new, expected_decay * old + (1 - expected_decay) * raw)
        # buffers follow the model as they are
        assert torch.equal(average.model[1].running_mean, model[1].running_mean)
    moved = zip(start, average.model.parameters(), strict=True)
    assert not any(torch.equal(a, b) for a, b in moved)
    assert all(not p.requires_grad for p in average.model.parameters())

    copy = WeightAverage(model, decay=0.9)
    copy.load_state_dict(average.state_dict())
    assert copy.updates == 3
    pairs = zip(copy.model.parameters(), average.model.parameters(), strict=True)
    assert all(torch.equal(a, b) for a, b in pairs)


def test_lighthouse_configs_leave_it_off():
    """Lighthouse's base.yml carries its own model_ema: False / ema_decay: 0.9; neither may
    switch this average on."""
    from lighthouse_audio.config import load_config

    opt = load_config("qd_detr", "clotho-moment", "clap", [])
    assert opt.ema_decay == 0.9 and opt.model_ema is False  # Lighthouse's, off in base.yml
    assert opt.weight_average == 0


@pytest.mark.parametrize("decay", [0.0 - 1e-9, 1.0])
def test_decay_must_lie_inside_zero_and_one(decay):
    with pytest.raises(ValueError, match="weight_average"):
        WeightAverage(nn.Linear(1, 1), decay)


def test_a_run_validates_keeps_and_resumes_the_average(toy_data, tmp_path, capsys):
    a, b = tmp_path / "a", tmp_path / "b"
    assert main(train_args(toy_data, a, "n_epoch=3", "weight_average=0.9")) == 0
    last = torch.load(run_dir(a) / "last.ckpt", weights_only=False)
    best = torch.load(run_dir(a) / "best.ckpt", weights_only=False)
    averaged = last["weight_average"]
    assert set(averaged) == {"model", "updates"}
    assert not all(torch.equal(last["model"][k], averaged["model"][k]) for k in last["model"])
    if best["epoch"] == last["epoch"]:  # best.ckpt holds the average, not the raw weights
        assert all(torch.equal(best["model"][k], averaged["model"][k]) for k in best["model"])

    assert_best_checkpoint_predicts_what_validation_scored(toy_data, run_dir(a), tmp_path)

    # 2 epochs, then resumed to 3: the same average as 3 in one go
    assert main(train_args(toy_data, b, "n_epoch=2", "weight_average=0.9")) == 0
    resume = ["--resume", str(run_dir(b) / "last.ckpt"), "n_epoch=3"]
    assert main(train_args(toy_data, b, "n_epoch=2", "weight_average=0.9") + resume) == 0
    resumed = torch.load(run_dir(b) / "last.ckpt", weights_only=False)["weight_average"]
    assert resumed["updates"] == averaged["updates"]
    assert all(torch.equal(resumed["model"][k], averaged["model"][k]) for k in resumed["model"])

    capsys.readouterr()
    assert main(train_args(toy_data, tmp_path / "c", "weight_average=1.5")) == 2
    assert "weight_average=1.5: must be a number in [0, 1)" in capsys.readouterr().err


def test_lighthouse_model_ema_is_a_fixed_decay_average_per_epoch(toy_data, tmp_path, capsys):
    """Lighthouse's model_ema (on in its TaskWeave configs): decay ema_decay from the first
    update, one update per epoch after the LR step, validated and resumed; refused beside
    weight_average."""
    from lighthouse_audio.config import load_config
    from lighthouse_audio.engine.weight_average import lighthouse_average

    model = nn.Linear(2, 2)
    average = lighthouse_average(model, {"model_ema": True, "ema_decay": 0.9})
    before = model.weight.detach().clone()
    with torch.no_grad():
        model.weight.add_(1.0)
    average.update()
    torch.testing.assert_close(average.model.weight, 0.9 * before + 0.1 * model.weight)
    assert lighthouse_average(model, {"model_ema": False, "ema_decay": 0.9}) is None
    assert load_config("taskweave_mr2hd", "clotho-moment", "clap", []).model_ema is True

    a, b = tmp_path / "a", tmp_path / "b"
    args = ("model_ema=true", "ema_decay=0.5")
    assert main(train_args(toy_data, a, "n_epoch=3", *args)) == 0
    last = torch.load(run_dir(a) / "last.ckpt", weights_only=False)
    assert last["model_ema"]["updates"] == 3 and "weight_average" not in last
    assert_best_checkpoint_predicts_what_validation_scored(toy_data, run_dir(a), tmp_path)
    assert main(train_args(toy_data, b, "n_epoch=2", *args)) == 0
    resume = ["--resume", str(run_dir(b) / "last.ckpt"), "n_epoch=3"]
    assert main(train_args(toy_data, b, "n_epoch=2", *args) + resume) == 0
    resumed = torch.load(run_dir(b) / "last.ckpt", weights_only=False)["model_ema"]
    assert all(torch.equal(resumed["model"][k], last["model_ema"]["model"][k])
               for k in resumed["model"])  # fmt: skip

    capsys.readouterr()
    both = ("model_ema=true", "weight_average=0.9")
    assert main(train_args(toy_data, tmp_path / "c", *both)) == 2
    assert "set model_ema=false to use weight_average" in capsys.readouterr().err
