"""What a model needs from the training loop beyond ``collate``'s inputs (most need nothing).

A model class opts in with two class attributes, read by ``engine/train.py``:

- ``training_inputs``: names from :data:`TRAINING_INPUTS`, passed as keyword arguments to every
  training forward. CG-DETR reads ``vid`` (which neighbours make real negative pairs) and
  ``targets`` (its moment and sentence tokens are trained from the ground truth), as Lighthouse's
  training loop passes them.
- ``dataset_options``: keyword arguments for ``data.loaders.build_dataset`` (how its targets are
  drawn), e.g. CG-DETR's ``{"saliency_clip": "duration"}``.

Evaluation and prediction call the model with ``collate``'s inputs only.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from torch import nn

__all__ = ["TRAINING_INPUTS", "dataset_options", "training_inputs", "unwrap"]

TRAINING_INPUTS: dict[str, Callable[[Sequence[Mapping[str, Any]], Any], Any]] = {
    "vid": lambda metas, targets: [m["vid"] for m in metas],
    "qid": lambda metas, targets: [m["qid"] for m in metas],
    "targets": lambda metas, targets: targets,
}


def unwrap(model: nn.Module) -> nn.Module:
    """The model inside data-parallel (``module``) and ``torch.compile`` (``_orig_mod``)
    wrappers."""
    while True:
        inner = getattr(model, "module", None) or getattr(model, "_orig_mod", None)
        if not isinstance(inner, nn.Module):
            return model
        model = inner


def training_inputs(
    model: nn.Module, metas: Sequence[Mapping[str, Any]], targets: Any
) -> dict[str, Any]:
    """The extra keyword arguments ``model`` declares in ``training_inputs`` for this batch."""
    names = getattr(unwrap(model), "training_inputs", ())
    unknown = [name for name in names if name not in TRAINING_INPUTS]
    if unknown:
        raise ValueError(f"training_inputs {unknown}: choose from {', '.join(TRAINING_INPUTS)}")
    return {name: TRAINING_INPUTS[name](metas, targets) for name in names}


def dataset_options(model: nn.Module) -> dict[str, Any]:
    """The model's ``dataset_options`` (empty for most models)."""
    return dict(getattr(unwrap(model), "dataset_options", {}))
