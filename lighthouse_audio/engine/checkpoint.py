"""Checkpoints in Lighthouse's format, written atomically and read with clear errors.

Lighthouse's checkpoint is ``{"model", "optimizer", "lr_scheduler", "epoch", "opt"}`` with ``opt``
a pickled EasyDict. We write exactly that to ``best.ckpt`` so Lighthouse can load our models, and
add a ``train_state`` entry (best score, early-stop count) only to ``last.ckpt``, which exists so
an interrupted run can resume.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from easydict import EasyDict
from torch import nn

from lighthouse_audio.engine import safe_unpickler
from lighthouse_audio.file_io import save_torch

LIGHTHOUSE_KEYS = ("model", "optimizer", "lr_scheduler", "epoch", "opt")


class CheckpointError(ValueError):
    """A checkpoint that cannot be used: unreadable, not Lighthouse's format, or another model."""


def save_checkpoint(path: Path, payload: Mapping[str, Any]) -> None:
    """Write ``payload`` to ``path`` via a temporary file + rename: never a half-written file."""
    save_torch(dict(payload), path)


def load_checkpoint(path: Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Read a Lighthouse-format checkpoint without running code from it.

    The file is unpickled with :mod:`.safe_unpickler` (tensors, state dicts, EasyDict, numpy
    arrays only), so a checkpoint from the internet cannot execute anything on load; one that
    tries is refused with a :class:`CheckpointError` naming the file and what it asked for.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: checkpoint not found")
    try:
        # weights_only must be off for torch to accept a pickle_module; the allow-list in
        # safe_unpickler is what keeps the load from running code.
        ckpt = torch.load(
            path, map_location=map_location, pickle_module=safe_unpickler, weights_only=False
        )
    except safe_unpickler.UnsafeCheckpointError as exc:
        raise CheckpointError(f"{path}: unsafe checkpoint: {exc}") from None
    except Exception as exc:  # a damaged file fails in zipfile, pickle, torch or numpy, any way
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CheckpointError(f"{path}: not a readable torch checkpoint ({first_line})") from None
    if not isinstance(ckpt, dict) or "model" not in ckpt:
        keys = sorted(ckpt) if isinstance(ckpt, dict) else type(ckpt).__name__
        raise CheckpointError(
            f"{path}: not a Lighthouse checkpoint (expected a 'model' entry, got {keys})"
        )
    if "opt" in ckpt and isinstance(ckpt["opt"], Mapping) and not isinstance(ckpt["opt"], EasyDict):
        ckpt["opt"] = EasyDict(ckpt["opt"])
    return ckpt


def load_model_weights(
    model: nn.Module, state_dict: Mapping[str, torch.Tensor], source: Path
) -> None:
    """Strict load that says what differs (first few keys/shapes) in one line."""
    own = model.state_dict()
    missing = [k for k in own if k not in state_dict]
    unexpected = [k for k in state_dict if k not in own]
    mismatched = [
        f"{k} {tuple(state_dict[k].shape)} vs model {tuple(own[k].shape)}"
        for k in own
        if k in state_dict and tuple(state_dict[k].shape) != tuple(own[k].shape)
    ]
    problems = []
    if mismatched:
        problems.append(f"shape mismatch: {'; '.join(mismatched[:3])}")
    if missing:
        problems.append(f"missing keys: {', '.join(missing[:3])}")
    if unexpected:
        problems.append(f"unexpected keys: {', '.join(unexpected[:3])}")
    if problems:
        total = len(mismatched) + len(missing) + len(unexpected)
        raise CheckpointError(
            f"{source}: checkpoint does not fit this model "
            f"({total} differences; {' | '.join(problems)})"
        )
    model.load_state_dict(state_dict, strict=True)
