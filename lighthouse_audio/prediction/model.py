"""A checkpoint made ready to predict: weights in the model, its post-processing, its limits.

>>> loaded = load_model("best.ckpt", device="cpu")  # doctest: +SKIP
>>> loaded.span, loaded.clip_length  # doctest: +SKIP
(75, 1.0)

``load_model`` accepts a path or a name from ``lighthouse models`` (downloaded into the cache on
first use). The checkpoint is read with the safe unpickler (nothing in it runs), its config
rebuilds the model through the registry, and the text-shifted "negative" pass that QD-DETR runs
for its training loss is switched off: it never changes the returned windows or saliency.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from lighthouse_audio.data.feature_manifest import CONFIG_KEY, FeatureManifest
from lighthouse_audio.data.limits import LengthLimits
from lighthouse_audio.devices import resolve_device
from lighthouse_audio.engine.checkpoint import CheckpointError, load_checkpoint, load_model_weights


@dataclass
class LoadedModel:
    """What prediction needs of a checkpoint. ``postprocessor(outputs, metas) -> lines``."""

    model: nn.Module
    postprocessor: Any
    opt: Any
    source: Path
    device: torch.device
    limits: LengthLimits

    @property
    def model_name(self) -> str:
        return str(self.opt["model_name"])

    @property
    def clip_length(self) -> float:
        """Seconds per frame (the features' hop)."""
        return float(self.opt["clip_length"])

    @property
    def span(self) -> int | None:
        """Frames the model reads at once (None: any number); longer recordings are chunked."""
        return self.limits.span

    @property
    def feature_name(self) -> str:
        return str(self.opt.get("a_feat_types") or "")

    @property
    def feature_manifest(self) -> FeatureManifest | None:
        """How the training features were made (encoder, weights, window, hop, frames); None for
        checkpoints that do not record it (Lighthouse's own)."""
        recorded = self.opt.get(CONFIG_KEY)
        return FeatureManifest.from_dict(recorded) if recorded else None


def _check_opt(opt: Any, source: Path, model_name: str | None) -> None:
    if not isinstance(opt, Mapping):
        raise CheckpointError(
            f"{source}: checkpoint 'opt' is a {type(opt).__name__}, not a config mapping"
        )
    if "model_name" not in opt:
        raise CheckpointError(f"{source}: checkpoint config has no model_name to rebuild from")
    if model_name is not None and opt["model_name"] != model_name:
        raise CheckpointError(f"{source}: a '{opt['model_name']}' checkpoint, not '{model_name}'")


def load_model(
    checkpoint: str | os.PathLike,
    device: str | torch.device = "cpu",
    model_name: str | None = None,
    prior_score_mix: float | None = None,
    prior_refine: float | None = None,
) -> LoadedModel:
    """Load a checkpoint (path or ``lighthouse models`` name) for prediction.

    Args:
        checkpoint: a ``.ckpt`` file, or the name of a released checkpoint.
        device: ``cpu``, ``cuda``, ``cuda:N`` or ``auto``.
        model_name: refuse checkpoints of any other model (e.g. ``"qd_detr"``).
        prior_score_mix: score with this weight of the joint prior instead of the checkpoint's
            (``models/prior_score.py``; needs a model trained with a joint prior).
        prior_refine: redraw windows with this ratio instead of the checkpoint's
            (``models/prior_refine.py``; needs a joint prior too).
    """
    from lighthouse_audio.hub import resolve_checkpoint
    from lighthouse_audio.models.bundle import build_model_bundle
    from lighthouse_audio.models.prior_refine import check_prior_refine
    from lighthouse_audio.models.prior_score import check_prior_score_mix

    source = resolve_checkpoint(checkpoint)
    ckpt = load_checkpoint(source)
    if "opt" not in ckpt:
        raise CheckpointError(f"{source}: checkpoint carries no 'opt' config to rebuild the model")
    opt = ckpt["opt"]
    _check_opt(opt, source, model_name)
    overrides = {"prior_score_mix": prior_score_mix, "prior_refine": prior_refine}
    overrides = {key: value for key, value in overrides.items() if value is not None}
    if overrides:
        opt = type(opt)({**opt, **overrides})
        try:
            check_prior_score_mix(opt)
            check_prior_refine(opt)
        except ValueError as e:
            raise CheckpointError(f"{source}: {e}") from None
    target = resolve_device(device)
    bundle = build_model_bundle(opt)
    load_model_weights(bundle.model, ckpt["model"], source)
    if hasattr(bundle.model, "negative_pass"):
        bundle.model.negative_pass = False  # training-only (tests/prediction prove it is inert)
    bundle.model.to(target).eval()
    return LoadedModel(
        model=bundle.model,
        postprocessor=bundle.postprocessor,
        opt=opt,
        source=source,
        device=target,
        limits=LengthLimits.from_config(opt),
    )
