"""The cosine learning-rate schedule: its rates, the trainer following it, exact resumes."""

import shutil

import pytest
import torch

from lighthouse_audio.cli.main import main
from lighthouse_audio.engine.lr_schedule import LR_SCHEDULES, build_lr_scheduler, cosine_factor
from lighthouse_audio.engine.resume import resumed_config
from lighthouse_audio.engine.training_config import CHOICES, check_training_config
from tests.toy_model import run_dir, train_args

COSINE = ("lr_schedule=cosine", "warmup_epochs=1")


def test_cosine_warms_up_linearly_then_decays_towards_zero():
    factors = [cosine_factor(epoch, 10, warmup_epochs=2) for epoch in range(10)]
    assert factors[:3] == [0.5, 1.0, 1.0]
    assert all(later < earlier for earlier, later in zip(factors[2:], factors[3:], strict=False))
    assert 0 < factors[-1] < 0.05
    assert cosine_factor(4, 8) == pytest.approx(0.5)  # halfway without warm-up


def test_scheduler_steps_the_optimizer_through_the_cosine():
    weight = torch.nn.Parameter(torch.zeros(1))
    optimizer = torch.optim.AdamW([weight], lr=0.1)
    scheduler = build_lr_scheduler(optimizer, {"lr_schedule": "cosine", "n_epoch": 5,
                                               "warmup_epochs": 1, "lr_drop": 400})  # fmt: skip
    rates = []
    for _ in range(5):
        rates.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    assert rates == pytest.approx([0.1 * cosine_factor(e, 5, 1) for e in range(5)])


def test_config_names_every_schedule_and_refuses_others():
    assert CHOICES["lr_schedule"] == tuple(LR_SCHEDULES)
    with pytest.raises(ValueError, match="lr_schedule='linear': must be one of step, cosine"):
        check_training_config({"lr_schedule": "linear"})
    with pytest.raises(ValueError, match="warmup_epochs=-1"):
        check_training_config({"warmup_epochs": -1})


def test_cosine_run_uses_its_rates_and_resumes_exactly(toy_data, tmp_path, monkeypatch):
    """A run of 3 epochs, and the same run resumed from a copy of its folder taken after epoch 1
    (the cosine's length cannot change on resume, so the copy stands in for a killed run)."""
    from lighthouse_audio.engine import train as train_module

    save = train_module.save_checkpoint
    snapshot = run_dir(tmp_path / "snapshot")

    def save_and_copy_after_epoch_1(path, ckpt):
        save(path, ckpt)
        if path.name == "last.ckpt" and ckpt["epoch"] == 1 and not snapshot.exists():
            shutil.copytree(path.parent, snapshot)

    monkeypatch.setattr(train_module, "save_checkpoint", save_and_copy_after_epoch_1)
    whole = tmp_path / "whole"
    assert main(train_args(toy_data, whole, "n_epoch=3", *COSINE)) == 0
    monkeypatch.setattr(train_module, "save_checkpoint", save)
    assert main(train_args(toy_data, tmp_path / "snapshot", "n_epoch=3", *COSINE)
                + ["--resume", str(snapshot / "last.ckpt")]) == 0  # fmt: skip

    uninterrupted = torch.load(run_dir(whole) / "last.ckpt", weights_only=False)
    resumed = torch.load(snapshot / "last.ckpt", weights_only=False)
    assert resumed["epoch"] == uninterrupted["epoch"] == 2
    assert all(torch.equal(uninterrupted["model"][k], resumed["model"][k])
               for k in uninterrupted["model"])  # fmt: skip
    # after the last epoch's step the optimizer holds the rate an epoch 3 would use
    lr = uninterrupted["opt"]["lr"]
    rate = uninterrupted["optimizer"]["param_groups"][0]["lr"]
    assert rate == pytest.approx(lr * cosine_factor(3, 3, 1))
    assert rate < lr


def test_resume_keeps_a_cosine_runs_length():
    ckpt = {"opt": {"lr_schedule": "cosine", "n_epoch": 60, "device": "cpu"}}
    with pytest.raises(ValueError, match=r"n_epoch=80 .*lr_schedule=cosine spans n_epoch"):
        resumed_config(ckpt, {"n_epoch": 80})
    assert resumed_config(ckpt, {"device": "cuda"})["device"] == "cuda"
    step = {"opt": {"lr_schedule": "step", "n_epoch": 60}}
    assert resumed_config(step, {"n_epoch": 80})["n_epoch"] == 80
