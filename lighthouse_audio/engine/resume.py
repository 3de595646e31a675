"""Resuming a run: its own config back, only safe changes, and records that stay true.

A run resumes from its ``last.ckpt`` (written after every epoch, with the training state) in the
folder that checkpoint lies in. The run's config comes back from the checkpoint; the command
line may change only the keys in :data:`SAFE_TO_CHANGE`, which alter neither the model, the
data nor the optimisation of the epochs already run. Any other difference is refused, naming the
key, so a resumed run never records an ``lr`` its optimizer does not use.

On resume the folder is tidied so the records read as one uninterrupted run: temporaries of a
killed write are removed, and log lines of an epoch that did not finish (killed after its log
line, before its checkpoint) are dropped before that epoch is run again. Each resume is appended
to ``resumes.jsonl`` with what it changed.
"""

from __future__ import annotations

import math
import os
import re
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from lighthouse_audio.engine.training_config import LIST_PATH_KEYS, PATH_KEYS
from lighthouse_audio.file_io import remove_stale_temporaries, write_text

__all__ = [
    "RESUMES_LOG",
    "SAFE_TO_CHANGE",
    "changed_keys",
    "check_resumable",
    "record_resume",
    "resumed_config",
    "safe_to_change",
    "tidy_run_folder",
]

# Keys a resumed run may change: how long to go on, where to run, how fast to feed it (the
# device-resident data path and compilation compute the same steps).
SAFE_TO_CHANGE = (
    "n_epoch", "max_es_cnt", "device", "num_workers", "eval_bsz",
    "resident_data", "feature_dtype", "static_shapes", "compile_model",
)  # fmt: skip
# A cosine schedule spans n_epoch: a new length would change the rates of the epochs already run.
FIXED_LENGTH_SCHEDULES = ("cosine",)
# Keys the trainer writes itself, or that name the resume, never compared; the run-folder paths
# follow the folder (claim_run_dir points them at where last.ckpt lies, if it was moved).
NOT_COMPARED = (
    "resume",
    "train_log_txt_formatter",
    "eval_log_txt_formatter",
    "results_dir",
    "ckpt_filepath",
    "train_log_filepath",
    "eval_log_filepath",
)
RESUMES_LOG = "resumes.jsonl"
_EPOCH = re.compile(r"\[Epoch\] (\d+)")


def check_resumable(ckpt: Mapping[str, Any], path: Path) -> None:
    """Only a ``last.ckpt`` carries what resuming needs (optimizer, scheduler, training state);
    a best or Lighthouse checkpoint is a starting point for ``--init-from`` instead."""
    if "train_state" not in ckpt or "opt" not in ckpt or not isinstance(ckpt["opt"], Mapping):
        raise ValueError(
            f"{path}: no training state to resume (only a run's last.ckpt has one); "
            f"to train on from its weights use --init-from {path}"
        )


def resumed_config(ckpt: Mapping[str, Any], overrides: Mapping[str, Any]) -> dict[str, Any]:
    """The run's config from its checkpoint with ``overrides`` applied; an override of a key
    outside :data:`SAFE_TO_CHANGE` that differs from the run's value is refused."""
    saved = dict(ckpt["opt"])
    safe = safe_to_change(saved)
    for key, value in overrides.items():
        if key in safe or _same(key, saved.get(key), value):
            saved[key] = value
            continue
        raise ValueError(_refusal(key, saved.get(key), value, saved))
    return saved


def safe_to_change(saved: Mapping[str, Any]) -> tuple[str, ...]:
    """:data:`SAFE_TO_CHANGE` for this run: without ``n_epoch`` under a fixed-length schedule."""
    if saved.get("lr_schedule", "step") in FIXED_LENGTH_SCHEDULES:
        return tuple(key for key in SAFE_TO_CHANGE if key != "n_epoch")
    return SAFE_TO_CHANGE


def changed_keys(saved: Mapping[str, Any], current: Mapping[str, Any]) -> dict[str, list[Any]]:
    """``{key: [saved, current]}`` for the safe keys that differ; raises for any other key of
    the saved config that ``current`` changes (a library caller passing its own config)."""
    changes: dict[str, list[Any]] = {}
    safe = safe_to_change(saved)
    for key in saved.keys() - set(NOT_COMPARED):
        if key not in current or _same(key, saved[key], current[key]):
            continue
        if key not in safe:
            raise ValueError(_refusal(key, saved[key], current[key], saved))
        changes[key] = [saved[key], current[key]]
    return changes


def tidy_run_folder(run_dir: Path, last_epoch: int, logs: Iterable[Path]) -> None:
    """Remove temporaries of killed writes; drop log lines of epochs after ``last_epoch``."""
    remove_stale_temporaries(run_dir)
    for log in logs:
        log = Path(log)
        if not log.is_file():
            continue
        lines = log.read_text(encoding="utf-8").splitlines(keepends=True)
        kept = [line for line in lines if _epoch_of(line) is None or _epoch_of(line) <= last_epoch]
        if kept != lines:
            write_text(log, "".join(kept))


def record_resume(
    run_dir: Path, source: Path, after_epoch: int, device: str, changes: Mapping[str, Any]
) -> None:
    """Append one line to ``resumes.jsonl``: when, from which checkpoint, what changed."""
    import json

    line = {
        "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "from": os.path.abspath(source),
        "after_epoch": after_epoch,
        "device": device,
        "changed": dict(changes),
    }
    with open(Path(run_dir) / RESUMES_LOG, "a", encoding="utf-8") as handle:
        handle.write(json.dumps(line) + "\n")


def _epoch_of(line: str) -> int | None:
    match = _EPOCH.search(line)
    return int(match.group(1)) if match else None


def _same(key: str, saved: Any, value: Any) -> bool:
    if key in PATH_KEYS and saved and value:
        return os.path.abspath(str(saved)) == os.path.abspath(str(value))
    if key in LIST_PATH_KEYS and saved and value:
        return [os.path.abspath(str(p)) for p in saved] == [os.path.abspath(str(p)) for p in value]
    if isinstance(saved, float) or isinstance(value, float):
        try:
            return math.isclose(float(saved), float(value), rel_tol=1e-12, abs_tol=0.0)
        except (TypeError, ValueError):
            return False
    return _plain(saved) == _plain(value)


def _plain(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def _refusal(key: str, saved: Any, value: Any, config: Mapping[str, Any]) -> str:
    safe = safe_to_change(config)
    why = (
        f" (lr_schedule={config.get('lr_schedule')} spans n_epoch)" if key in SAFE_TO_CHANGE
        and key not in safe else ""
    )  # fmt: skip
    return (
        f"--resume: {key}={value!r} differs from the run's {key}={saved!r}; a resumed run keeps "
        f"its config{why} (it may change only {', '.join(safe)}); start a new run, or "
        "--init-from the checkpoint, to train with other settings"
    )
