"""A training config checked before anything is written, with its paths pinned.

A run refuses a value it cannot train with (``bsz=0``, ``n_epoch=0``, ``lr=-1``) while nothing is
on disk yet, in one line naming the key, so a failed start leaves no folder behind. Paths are
made absolute before the config is recorded, so the run's ``config.yaml`` and checkpoints mean
the same files whichever folder the run is later resumed or inspected from.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, MutableMapping
from typing import Any

__all__ = ["LIST_PATH_KEYS", "PATH_KEYS", "absolute_paths", "check_training_config"]

# key -> (lowest allowed value, what it counts)
WHOLE_NUMBERS: dict[str, int] = {
    "bsz": 1,
    "eval_bsz": 1,
    "n_epoch": 1,
    "lr_drop": 1,
    "eval_epoch_interval": 1,
    "num_workers": 0,
    "max_es_cnt": -1,  # -1: never stop early (Lighthouse's convention)
    "seed": 0,
    "warmup_epochs": 0,
}
POSITIVE_REALS = ("lr", "clip_length")
NON_NEGATIVE_REALS = ("wd", "grad_clip")
CHOICES = {
    "feature_dtype": ("float32", "float16"),
    "assignment": ("scipy", "device"),
    "amp": ("off", "bf16"),
    "lr_schedule": ("step", "cosine"),  # engine/lr_schedule.LR_SCHEDULES
}
BOOLEANS = ("eval_whole_recordings", "fused_adamw")
# what validation reports, hence what may pick best.ckpt (evaluation.metrics' brief keys)
SELECTION_METRICS = tuple(
    f"MR-full-{name}" for name in ("mAP", "mAP@0.5", "mAP@0.75", "R1@0.5", "R1@0.7")
)

PATH_KEYS = (
    "train_path",
    "eval_path",
    "results_dir",
    "ckpt_filepath",
    "train_log_filepath",
    "eval_log_filepath",
    "features_root",
    "eval_features_root",
    "t_feat_dir",
    "joint_prior",
)
LIST_PATH_KEYS = ("a_feat_dirs", "v_feat_dirs")


def check_training_config(opt: Mapping[str, Any]) -> None:
    """Raise ``ValueError("key=value: must be ...")`` for the first value training cannot use."""
    for key, lowest in WHOLE_NUMBERS.items():
        if key in opt and not _is_whole_at_least(opt[key], lowest):
            raise ValueError(f"{key}={opt[key]!r}: must be a whole number >= {lowest}")
    for key in POSITIVE_REALS:
        if key in opt and not (_is_real(opt[key]) and opt[key] > 0):
            raise ValueError(f"{key}={opt[key]!r}: must be a number > 0")
    for key in NON_NEGATIVE_REALS:
        if key in opt and not (_is_real(opt[key]) and opt[key] >= 0):
            raise ValueError(f"{key}={opt[key]!r}: must be a number >= 0")
    for key, allowed in CHOICES.items():
        if key in opt and opt[key] not in allowed:
            raise ValueError(f"{key}={opt[key]!r}: must be one of {', '.join(allowed)}")
    decay = opt.get("weight_average", 0.0)
    if not (_is_real(decay) and 0 <= decay < 1):
        raise ValueError(f"weight_average={decay!r}: must be a number in [0, 1) (0: off)")
    for key in BOOLEANS:
        if key in opt and not isinstance(opt[key], bool):
            raise ValueError(f"{key}={opt[key]!r}: must be true or false")
    metric = opt.get("selection_metric", SELECTION_METRICS[0])
    if metric not in SELECTION_METRICS:
        raise ValueError(
            f"selection_metric={metric!r}: must be one of {', '.join(SELECTION_METRICS)}"
        )


def absolute_paths(opt: MutableMapping[str, Any]) -> None:
    """Turn every path-valued key into an absolute path (``None`` stays ``None``)."""
    for key in PATH_KEYS:
        if opt.get(key):
            opt[key] = os.path.abspath(str(opt[key]))
    for key in LIST_PATH_KEYS:
        if opt.get(key):
            opt[key] = [os.path.abspath(str(p)) for p in opt[key]]


def _is_whole_at_least(value: Any, lowest: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= lowest


def _is_real(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
