"""An exponential moving average of the weights, what validation and ``best.ckpt`` use when
``weight_average`` (the decay) > 0 (off by default: Lighthouse validates the raw weights).

On a few hundred training queries the raw weights swing from one epoch to the next, and so does
validation (the demo's val mAP moved by several points between neighbouring epochs), which makes
picking the best epoch a lottery. The average over the last ~``1 / (1 - decay)`` steps moves
smoothly. Early on, when there is little history, the decay is ``min(decay, (1 + t) / (10 + t))``
after ``t`` updates, so the average is not held back by the random initial weights. That warm-up
stays below 0.998 for the first ~4,500 updates, so in a shorter run (the demo's ~3,400 steps)
it governs throughout, whatever ``decay`` says: the average then weighs the steps so far like
``(step / t) ** 8``, i.e. mostly the last fifth of the run.

Lighthouse's own average (its config keys ``model_ema`` / ``ema_decay``, on in its TaskWeave
configs) is the same rule without the warm-up, updated once per epoch after the learning-rate
step: ``lighthouse_average`` builds it. Unlike Lighthouse, which validates the average but
saves the raw weights as ``best.ckpt``, runs here keep what they validated, so a checkpoint
predicts what its validation scored.
"""

from __future__ import annotations

import copy
from typing import Any

import torch
from torch import nn

__all__ = ["WeightAverage", "lighthouse_average"]


class WeightAverage:
    """``update()`` after every optimizer step; ``model`` holds the averaged weights (buffers
    are copied, not averaged). ``warmup=False``: the decay is ``decay`` from the first update
    (Lighthouse's ``model_ema``)."""

    def __init__(
        self, model: nn.Module, decay: float, warmup: bool = True, key: str = "weight_average"
    ) -> None:
        if not 0 < decay < 1:
            raise ValueError(f"{key} must be in (0, 1), got {decay}")
        self.source = model
        self.model = copy.deepcopy(model).eval().requires_grad_(False)
        self.decay = decay
        self.warmup = warmup
        self.updates = 0

    @torch.no_grad()
    def update(self) -> None:
        self.updates += 1
        decay = self.decay
        if self.warmup:
            decay = min(decay, (1 + self.updates) / (10 + self.updates))
        averaged = [p for p in self.model.parameters() if p.dtype.is_floating_point]
        current = [p.detach() for p in self.source.parameters() if p.dtype.is_floating_point]
        torch._foreach_lerp_(averaged, current, 1.0 - decay)
        for mine, theirs in zip(self.model.buffers(), self.source.buffers(), strict=True):
            mine.copy_(theirs)

    def state_dict(self) -> dict[str, Any]:
        return {"model": self.model.state_dict(), "updates": self.updates}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.model.load_state_dict(state["model"])
        self.updates = int(state["updates"])


def lighthouse_average(model: nn.Module, opt: Any) -> WeightAverage | None:
    """Lighthouse's per-epoch average when its config says ``model_ema`` (decay ``ema_decay``),
    else None; refused beside ``weight_average``, since both would average the same weights."""
    if not opt.get("model_ema"):
        return None
    if opt.get("weight_average"):
        raise ValueError(
            "model_ema (Lighthouse's per-epoch average, on in its TaskWeave configs) and "
            "weight_average both average the weights; set model_ema=false to use weight_average"
        )
    return WeightAverage(model, float(opt["ema_decay"]), warmup=False, key="ema_decay")
