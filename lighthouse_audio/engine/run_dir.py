"""Run folders that are never deleted or overwritten.

Lighthouse wipes ``results_dir`` at the start of a run; we never do. A new run that would land in
a folder already holding results goes to the next free ``<dir>-2``, ``<dir>-3``, ... instead, and
a resumed run continues in the folder its checkpoint came from. A folder of a run stopped before
its first epoch ended has no results and is reused: one holding only its ``config.yaml``, or one
still marked ``.first-epoch`` (written with the config, removed once ``last.ckpt`` exists), whose
log lines and best-epoch files belong to an epoch that never finished and cannot be resumed.
"""

from __future__ import annotations

import os
from collections.abc import MutableMapping
from pathlib import Path
from typing import Any

from lighthouse_audio.file_io import remove_stale_temporaries

# What a run writes before its first epoch ends. A folder holding only these is an abandoned
# start (killed or interrupted before any result existed): a new run may take it.
BEFORE_FIRST_EPOCH = ("config.yaml",)
FIRST_EPOCH_MARKER = ".first-epoch"
# What an unfinished first epoch may have written; a run that takes the folder over replaces them.
FIRST_EPOCH_FILES = ("best.ckpt", "best_val_metrics.json", "best_val_preds.jsonl")


def is_used(path: Path) -> bool:
    """True when ``path`` is a file, or a folder with results in it."""
    if not path.exists():
        return False
    if not path.is_dir():
        return True
    remove_stale_temporaries(path)
    if (path / FIRST_EPOCH_MARKER).exists() and not (path / "last.ckpt").exists():
        return False  # its run never finished an epoch
    return any(entry.name not in BEFORE_FIRST_EPOCH for entry in path.iterdir())


def start_run_folder(run_dir: Path, logs: list[Path]) -> None:
    """Mark a new run's folder until its first epoch ends, clearing what a run killed in its
    first epoch left there (``is_used`` let the new run take the folder over)."""
    from lighthouse_audio.file_io import write_text

    if (run_dir / FIRST_EPOCH_MARKER).exists():
        for name in FIRST_EPOCH_FILES:
            (run_dir / name).unlink(missing_ok=True)
        for log in logs:
            if Path(log).is_file():
                write_text(Path(log), "")
    write_text(run_dir / FIRST_EPOCH_MARKER, "")


def first_epoch_done(run_dir: Path) -> None:
    """The run has a ``last.ckpt``: its folder holds results from now on."""
    (run_dir / FIRST_EPOCH_MARKER).unlink(missing_ok=True)


def next_free_dir(base: Path) -> Path:
    """``base`` if it is absent or empty, else the first ``base-N`` (N >= 2) that is."""
    if not is_used(base):
        return base
    n = 2
    while is_used(base.with_name(f"{base.name}-{n}")):
        n += 1
    return base.with_name(f"{base.name}-{n}")


def claim_run_dir(opt: MutableMapping[str, Any], resume_from: Path | None = None) -> Path:
    """Pick the run folder and point the config's result paths into it (created by the trainer
    once its inputs are validated, so a failed start leaves nothing behind)."""
    if resume_from is not None:  # a run resumes where its last.ckpt lies
        run_dir = Path(resume_from).parent
    else:
        run_dir = next_free_dir(Path(opt["results_dir"]))
    point_config_at(opt, run_dir)
    return run_dir


def point_config_at(opt: MutableMapping[str, Any], run_dir: Path) -> None:
    """Set the config's result paths (folder, checkpoint, logs) to ``run_dir``."""
    opt["results_dir"] = str(run_dir)
    opt["ckpt_filepath"] = os.path.join(run_dir, opt["ckpt_filename"])
    opt["train_log_filepath"] = os.path.join(run_dir, opt["train_log_filename"])
    opt["eval_log_filepath"] = os.path.join(run_dir, opt["eval_log_filename"])
