"""A tuned baseline run: grid search on a validation split, score a test split, write the folder.

``lighthouse tune-baseline`` is a thin caller of :func:`tune_run`. The run folder
(``RESULTS/sliding_window/DATASET/FEATURE_wWINDOW[-N]``, never an existing one) is claimed only
after every input is validated and scored, and holds ``config.yaml`` (what ``lighthouse infer
--checkpoint RUN`` rebuilds the baseline from), ``best_val_metrics.json``, ``val_grid.json`` and,
with a test split, ``test_preds.jsonl`` and ``test_metrics.json``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .frames import resolve_layout
from .model import MODEL_NAME, build
from .similarity import build_joint_space, compute_curves
from .tune import (
    DEFAULT_MEDIAN_LENGTHS,
    PRIMARY,
    TIE_BREAK,
    GridSearch,
    check_grid,
    default_thresholds,
    grid_search,
)

__all__ = ["TunedRun", "tune_run"]


@dataclass
class TunedRun:
    """Where the run went, what was chosen, and the test scores (None without a test split).
    ``skipped`` maps a split to its ``"qid: reason"`` lines (queries without feature files)."""

    run_dir: Path
    search: GridSearch
    test_metrics: dict[str, Any] | None
    skipped: dict[str, list[str]]
    counts: dict[str, int]


def tune_run(
    feature: str,
    features_root: Path,
    val: Path,
    test: Path | None = None,
    dataset: str = "custom",
    results_dir: Path = Path("results"),
    window: float | None = None,
    hop: float | None = None,
    frames: str | None = None,
    joint_space: Path | None = None,
    thresholds: Sequence[float] | None = None,
    median_lengths: Sequence[int] | None = None,
    progress: bool = True,
) -> TunedRun:
    """Tune the sliding-window baseline on ``val`` and write its run folder (module doc)."""
    from lighthouse_audio.config import save_config
    from lighthouse_audio.data.annotations import load_queries
    from lighthouse_audio.data.layout import FeatureLayout
    from lighthouse_audio.engine.run_dir import next_free_dir
    from lighthouse_audio.evaluation.metrics import eval_submission
    from lighthouse_audio.file_io import write_json, write_jsonl
    from lighthouse_audio.registry import DATASETS, FEATURES, check_pair

    FEATURES.get(feature)  # unknown names: one-line errors listing the known ones
    DATASETS.get(dataset)
    check_pair(dataset, feature)
    median_lengths = list(DEFAULT_MEDIAN_LENGTHS if median_lengths is None else median_lengths)
    # Checked before the slow part; the default thresholds come from the val similarities.
    check_grid([0.0] if thresholds is None else thresholds, median_lengths)
    audio_dir = FeatureLayout(features_root, feature).audio_dir
    if not audio_dir.is_dir():
        raise FileNotFoundError(f"{audio_dir}: no such feature folder")
    val_queries = load_queries(val)
    test_queries = load_queries(test) if test else None
    layout = resolve_layout(audio_dir, window, hop, frames)
    space, space_source = build_joint_space(feature, joint_space)  # may load weights: last

    curves = compute_curves(val_queries, features_root, feature, space, layout, progress)
    if not curves.queries:
        raise ValueError(f"{val}: no query has feature files under {audio_dir}")
    thresholds = default_thresholds(curves) if thresholds is None else list(thresholds)
    search = grid_search(curves, thresholds, median_lengths, progress)
    skipped = {"val": curves.skipped}
    counts = {"val": len(val_queries)}

    opt = {
        "model_name": MODEL_NAME,
        "dset_name": dataset,
        "a_feat_types": feature,
        "t_feat_type": feature,
        **layout.to_dict(),
        "threshold": search.threshold,
        "median_length": search.median_length,
        "joint_space": str(Path(joint_space).resolve()) if joint_space else None,
        "joint_space_source": space_source,
        "thresholds": sorted({float(t) for t in thresholds}),
        "median_lengths": sorted(set(median_lengths)),
        "tune_metric": f"{PRIMARY} (ties: {TIE_BREAK})",
        "features_root": str(Path(features_root).resolve()),
        "eval_path": str(Path(val).resolve()),
        "test_path": str(Path(test).resolve()) if test else None,
    }
    test_result = None
    if test_queries is not None:
        test_result = build(opt).predict_jsonl(test, features_root, progress=progress)
        skipped["test"], counts["test"] = test_result.skipped, len(test_queries)

    # Only now, with every input validated and scored, is the run folder claimed and written.
    base = Path(results_dir) / MODEL_NAME / dataset / f"{feature}_w{layout.window:g}"
    run_dir = next_free_dir(base)
    run_dir.mkdir(parents=True, exist_ok=True)
    opt["results_dir"] = str(run_dir)
    save_config(opt, run_dir / "config.yaml")
    write_json(search.metrics, run_dir / "best_val_metrics.json")
    write_json(search.grid, run_dir / "val_grid.json")
    test_metrics = None
    if test_result is not None:
        write_jsonl(test_result.predictions, run_dir / "test_preds.jsonl")
        test_metrics = eval_submission(test_result.predictions, test_result.ground_truth)
        write_json(test_metrics, run_dir / "test_metrics.json")
    return TunedRun(run_dir, search, test_metrics, skipped, counts)
