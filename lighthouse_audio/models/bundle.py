"""What every model builder returns, so the training loop never needs to know the model."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NamedTuple

from torch import nn

from lighthouse_audio.registry import MODELS


class ModelBundle(NamedTuple):
    """``model(**inputs) -> outputs``; ``criterion(outputs, targets) -> losses`` (with
    ``criterion.weight_dict``); ``postprocessor(outputs, metas) -> prediction lines``."""

    model: nn.Module
    criterion: nn.Module
    postprocessor: Any


def build_model_bundle(opt: Mapping[str, Any]) -> ModelBundle:
    """The single way from a config to a model: look up ``opt.model_name`` in ``MODELS``."""

    return MODELS.get(opt["model_name"])(opt)
