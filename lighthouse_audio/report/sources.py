"""Inputs of the report: run folders, eval metrics files and sed-eval files -> table entries.

Accepted, one per argument:

- a **run folder** (``lighthouse train``, ``lighthouse demo``, ``lighthouse tune-baseline``): its
  ``config.yaml`` names the method (``model_name``), dataset (``dset_name``), encoder
  (``a_feat_types``) and, for baselines, ``window``; metrics come from ``test_metrics.json`` if
  present, else ``best_val_metrics.json`` (the split is shown in the table).
- ``METHOD/DATASET=metrics.json`` (optionally ``METHOD/DATASET/ENCODER=...``): a bare
  ``lighthouse eval`` output; the name says what it is, the split is ``test``.
- ``[METHOD=]sed.json``: a ``lighthouse sed-eval --save`` output, for Table II (method defaults
  to the file's stem).

Errors are one line naming the path.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

METHOD_NAMES = {
    "qd_detr": "AM-DETR",
    "moment_detr": "Moment-DETR",
    "cg_detr": "CG-DETR",
    "eatr": "EaTR",
    "uvcom": "UVCOM",
    "tr_detr": "TR-DETR",
    "taskweave_mr2hd": "TaskWeave (MR2HD)",
    "taskweave_hd2mr": "TaskWeave (HD2MR)",
    "sliding_window": "Sliding window",
}
"""A run's ``--model`` (its folder, ``results/<model>/<dataset>/<feature>``; else ``model_name``)
-> the method's name in the paper's tables."""

MR_METRICS = {
    "R1@0.5": "MR-full-R1@0.5",
    "R1@0.7": "MR-full-R1@0.7",
    "mAP@0.5": "MR-full-mAP@0.5",
    "mAP@0.75": "MR-full-mAP@0.75",
    "mAP avg": "MR-full-mAP",
}
"""Table I's columns -> keys of ``eval_submission``'s ``"brief"``."""


@dataclass
class MREntry:
    """One row-part of Table I: one method/encoder/window on one dataset split."""

    method: str
    dataset: str
    split: str
    metrics: dict[str, float]  # keys of MR_METRICS
    encoder: str = ""
    window: str = ""
    source: str = ""  # where the numbers come from (a path, or "paper (reported)")
    run_dir: str = ""  # the run folder it was read from, if any


@dataclass
class SEDEntry:
    """One row of Table II: micro P/R/F1 at the given and at the dev-tuned threshold."""

    method: str
    threshold: float
    scores: dict[str, float]  # precision, recall, f1
    tuned_threshold: float | None = None
    tuned_scores: dict[str, float] | None = None
    source: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path}: not valid JSON ({exc.msg} at line {exc.lineno})") from None


def _mr_metrics(brief: Any, path: Path) -> dict[str, float]:
    if not isinstance(brief, dict) or not all(key in brief for key in MR_METRICS.values()):
        raise ValueError(f"{path}: not a 'lighthouse eval' metrics file (no brief R1/mAP keys)")
    return {column: float(brief[key]) for column, key in MR_METRICS.items()}


def load_run(run_dir: Path) -> MREntry:
    """The Table I entry of a run folder (see the module doc)."""
    import yaml

    config_path = run_dir / "config.yaml"
    if not config_path.is_file():
        raise ValueError(f"{run_dir}: not a run folder (no config.yaml)")
    config = yaml.safe_load(config_path.read_text(encoding="utf-8")) or {}
    if not isinstance(config, dict) or "model_name" not in config or "dset_name" not in config:
        raise ValueError(f"{config_path}: needs model_name and dset_name")
    # The test split when the run has been tested, else its best validation epoch.
    candidates = [
        (run_dir / "test_metrics.json", "test"),
        (run_dir / "best_val_metrics.json", "val"),
    ]
    found = next(((path, split) for path, split in candidates if path.is_file()), None)
    if found is None:
        raise ValueError(f"{run_dir}: no test_metrics.json or best_val_metrics.json")
    metrics_path, split = found
    metrics = _read_json(metrics_path)
    # the run folder names the variant where one model_name has two configs (TaskWeave's)
    model_name = str(config["model_name"])
    results_parts = Path(str(config.get("results_dir", ""))).parts
    if len(results_parts) >= 3 and results_parts[-3].startswith(model_name):
        model_name = results_parts[-3]
    window = config.get("window")
    return MREntry(
        method=METHOD_NAMES.get(model_name, model_name),
        dataset=str(config["dset_name"]),
        split=split,
        metrics=_mr_metrics(
            metrics.get("brief") if isinstance(metrics, dict) else None, metrics_path
        ),
        encoder=str(config.get("a_feat_types") or ""),
        window=""
        if window is None
        else f"{window:g} s"
        if isinstance(window, int | float)
        else str(window),
        source=str(metrics_path),
        run_dir=str(run_dir),
    )


def _is_sed_result(data: Any) -> bool:
    return isinstance(data, dict) and {"precision", "recall", "f1", "counts"} <= data.keys()


def _scores(block: dict) -> dict[str, float]:
    return {key: float(block[key]) for key in ("precision", "recall", "f1")}


def load_metrics_file(path: Path, name: str | None) -> MREntry | SEDEntry:
    """A bare ``lighthouse eval`` or ``lighthouse sed-eval`` output (see the module doc)."""
    data = _read_json(path)
    if _is_sed_result(data):
        tuned = data.get("tuned")
        return SEDEntry(
            method=name or path.stem,
            threshold=float(data["threshold"]),
            scores=_scores(data),
            tuned_threshold=None if tuned is None else float(data["tuned_threshold"]),
            tuned_scores=None if tuned is None else _scores(tuned),
            source=str(path),
        )
    metrics = _mr_metrics(data.get("brief") if isinstance(data, dict) else None, path)
    parts = (name or "").split("/")
    if len(parts) not in (2, 3) or not all(parts):
        raise ValueError(
            f"{path}: a bare metrics file needs its identity, as METHOD/DATASET=PATH "
            "(or METHOD/DATASET/ENCODER=PATH)"
        )
    return MREntry(
        method=parts[0],
        dataset=parts[1],
        split="test",
        metrics=metrics,
        encoder=parts[2] if len(parts) == 3 else "",
        source=str(path),
    )


def load_sources(specs: list[str]) -> tuple[list[MREntry], list[SEDEntry]]:
    """Table I and Table II entries of the command line's arguments, in their order."""
    mr_entries: list[MREntry] = []
    sed_entries: list[SEDEntry] = []
    for spec in specs:
        name, path = None, Path(spec)
        if not path.exists() and "=" in spec:
            name, _, rest = spec.partition("=")
            path = Path(rest)
        if path.is_dir():
            entry: MREntry | SEDEntry = load_run(path)
        elif path.is_file():
            entry = load_metrics_file(path, name)
        else:
            raise FileNotFoundError(f"no such run folder or metrics file: {path}")
        (sed_entries if isinstance(entry, SEDEntry) else mr_entries).append(entry)
    return mr_entries, sed_entries
