"""Grid search of the threshold and median-filter length on a validation split.

The criterion is MR-full-mAP; ties go to the higher MR-full-R1@0.7, then to the first point in grid
order (thresholds ascending, then median lengths ascending within a threshold). The similarity
curves are computed once by the caller; each grid point only re-runs the cheap post-processing
and the evaluator.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from tqdm import tqdm

from lighthouse_audio.evaluation.metrics import eval_submission

from .moments import check_median_length
from .predict import predict_lines
from .similarity import SimilarityCurves

__all__ = ["DEFAULT_MEDIAN_LENGTHS", "GridSearch", "default_thresholds", "grid_search"]

DEFAULT_MEDIAN_LENGTHS = (1, 3, 5, 7, 9)
PRIMARY, TIE_BREAK = "MR-full-mAP", "MR-full-R1@0.7"


@dataclass
class GridSearch:
    """The chosen point, its full metrics (``eval_submission`` layout) and every point's brief
    metrics as ``{"threshold", "median_length", **brief}`` rows in grid order."""

    threshold: float
    median_length: int
    metrics: dict[str, Any]
    grid: list[dict[str, Any]]


def default_thresholds(curves: SimilarityCurves, num: int = 41) -> list[float]:
    """``num`` thresholds spread evenly between the 1st and 99th percentile of every similarity
    in ``curves``: joint spaces differ in their similarity range, so a fixed grid would not fit
    them all (rounded to 4 decimals; duplicates dropped)."""
    values = np.concatenate(curves.curves)
    low, high = np.percentile(values, [1, 99])
    return sorted({float(f"{t:.4f}") for t in np.linspace(low, high, num)})


def check_grid(thresholds: Sequence[float], median_lengths: Sequence[int]) -> None:
    if not thresholds:
        raise ValueError("the threshold grid is empty; give at least one --thresholds value")
    if not median_lengths:
        raise ValueError("the median-length grid is empty; give at least one --median-lengths")
    bad = [t for t in thresholds if not np.isfinite(t)]
    if bad:
        raise ValueError(f"thresholds must be finite numbers, got {bad}")
    for length in median_lengths:
        check_median_length(length)


def grid_search(
    curves: SimilarityCurves,
    thresholds: Sequence[float],
    median_lengths: Sequence[int],
    progress: bool = True,
) -> GridSearch:
    """Score every (threshold, median length) on ``curves``' queries; see the module doc."""
    check_grid(thresholds, median_lengths)
    if not curves.queries:
        raise ValueError("no query to tune on: every query lacks its feature files")
    ground_truth = curves.ground_truth()
    points = [
        (t, m) for t in sorted(set(map(float, thresholds))) for m in sorted(set(median_lengths))
    ]
    best: tuple[tuple[float, float], int, dict[str, Any]] | None = None
    grid = []
    for index, (threshold, median_length) in enumerate(
        tqdm(points, desc="grid search", disable=not progress)
    ):
        metrics = eval_submission(predict_lines(curves, threshold, median_length), ground_truth)
        brief = metrics["brief"]
        grid.append({"threshold": threshold, "median_length": median_length, **brief})
        key = (brief[PRIMARY], brief[TIE_BREAK])
        if best is None or key > best[0]:
            best = (key, index, metrics)
    assert best is not None  # the grid is non-empty (check_grid)
    threshold, median_length = points[best[1]]
    return GridSearch(threshold, median_length, best[2], grid)
