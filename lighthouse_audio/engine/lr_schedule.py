"""The learning-rate schedule, stepped once per epoch.

``step`` is Lighthouse's: ``StepLR(optimizer, lr_drop)`` (x0.1 every ``lr_drop`` epochs; its
configs set ``lr_drop`` past ``n_epoch``, so the rate stays constant). ``cosine`` decays from
``lr`` towards zero over ``n_epoch`` after ``warmup_epochs`` of linear warm-up: a short budget
then ends on small steps, so the last epochs settle instead of swinging (docs/RESULTS.md).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

import torch

__all__ = ["LR_SCHEDULES", "build_lr_scheduler", "cosine_factor"]


def cosine_factor(epoch: int, n_epoch: int, warmup_epochs: int = 0) -> float:
    """The multiple of ``lr`` used in epoch ``epoch`` (0-based) of ``n_epoch``: a linear ramp
    over the first ``warmup_epochs`` (1/w, 2/w, ..., 1), then half a cosine from 1 towards 0,
    never reaching 0 within the run."""
    if epoch < warmup_epochs:
        return (epoch + 1) / warmup_epochs
    decay_epochs = max(n_epoch - warmup_epochs, 1)
    return 0.5 * (1 + math.cos(math.pi * (epoch - warmup_epochs) / decay_epochs))


def _step(optimizer: torch.optim.Optimizer, opt: Mapping[str, Any]):
    return torch.optim.lr_scheduler.StepLR(optimizer, opt["lr_drop"])


def _cosine(optimizer: torch.optim.Optimizer, opt: Mapping[str, Any]):
    n_epoch, warmup = int(opt["n_epoch"]), int(opt.get("warmup_epochs", 0))
    return torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda epoch: cosine_factor(epoch, n_epoch, warmup)
    )


LR_SCHEDULES: dict[str, Callable[[torch.optim.Optimizer, Mapping[str, Any]], Any]] = {
    "step": _step,
    "cosine": _cosine,
}


def build_lr_scheduler(optimizer: torch.optim.Optimizer, opt: Mapping[str, Any]):
    """The scheduler ``opt["lr_schedule"]`` names (default ``step``, Lighthouse's)."""
    return LR_SCHEDULES[str(opt.get("lr_schedule", "step"))](optimizer, opt)
