"""AdamW's fused kernel: on by default, the same updates as the per-tensor loop, switchable."""

import pytest
import torch

from lighthouse_audio.cli.main import main
from lighthouse_audio.engine.optimizer import build_optimizer
from lighthouse_audio.engine.training_config import check_training_config
from tests.toy_model import run_dir, train_args

OPT = {"lr": 3e-4, "wd": 1e-4}
CPU = torch.device("cpu")


def _steps(fused: bool, steps: int = 50) -> list[torch.Tensor]:
    torch.manual_seed(0)
    weights = [torch.nn.Parameter(torch.randn(shape)) for shape in ((64, 32), (32,), (8, 8, 4))]
    optimizer = build_optimizer(weights, {**OPT, "fused_adamw": fused}, CPU)
    for _ in range(steps):
        for weight in weights:
            weight.grad = torch.randn_like(weight)
        optimizer.step()
    return [weight.detach() for weight in weights]


def test_fused_by_default_and_off_on_request():
    weight = [torch.nn.Parameter(torch.zeros(3))]
    assert build_optimizer(weight, OPT, CPU).param_groups[0]["fused"] is True
    assert not build_optimizer(weight, {**OPT, "fused_adamw": False}, CPU).param_groups[0]["fused"]
    # a device without a fused kernel gets torch's default implementation
    assert not build_optimizer(weight, OPT, torch.device("meta")).param_groups[0]["fused"]


def test_fused_updates_equal_the_per_tensor_loop_up_to_rounding():
    fused, looped = _steps(True), _steps(False)
    start = _steps(True, 0)
    moved = max((after - before).abs().max() for after, before in zip(fused, start, strict=True))
    assert moved > 1e-3  # the steps did move the weights
    for a, b in zip(fused, looped, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)


def test_config_refuses_a_non_boolean():
    with pytest.raises(ValueError, match="fused_adamw='yes': must be true or false"):
        check_training_config({"fused_adamw": "yes"})


def test_a_run_records_and_resumes_with_its_implementation(toy_data, tmp_path):
    """The optimizer state in last.ckpt says which implementation ran, and a resumed run goes on
    with it, the default notwithstanding."""
    results = tmp_path / "looped"
    assert main(train_args(toy_data, results, "n_epoch=1", "fused_adamw=false")) == 0
    last = run_dir(results) / "last.ckpt"
    assert not torch.load(last, weights_only=False)["optimizer"]["param_groups"][0]["fused"]
    assert main(train_args(toy_data, results, "n_epoch=2") + ["--resume", str(last)]) == 0
    resumed = torch.load(last, weights_only=False)
    assert resumed["epoch"] == 1
    assert not resumed["optimizer"]["param_groups"][0]["fused"]
