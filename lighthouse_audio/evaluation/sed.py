"""Zero-shot sound event detection (SED) metric of the AMR wrapper's ``zero-shot_sed_eval``.

Moment-retrieval predictions (one line per (clip, event-label query)) are rasterised into
label x frame activity matrices and scored with micro precision / recall / F1 over all cells
(fixture README §10). Quirks kept on purpose, since they define the published numbers:

- Frame ``f`` is active for a window ``[start, end]`` when ``start <= f <= end``: both ends are
  inclusive and ``f`` is a frame *index* compared with times in seconds. ``[7.0, 12.7]`` lights
  frames 7..12, ``[0, 1]`` lights two frames.
- A clip has ``ceil(duration * label_resolution)`` frames (from its first reference line), but the
  comparison above is not rescaled: a resolution of 2 makes indices up to ``2 * duration - 1``
  reachable, not a finer grid.
- A predicted window counts only if ``score > threshold`` (strict).
- Labels are the distinct reference queries in order of first appearance.

Threshold tuning (the paper tunes it on a dev split): ``rasterise`` stores, per cell, the best
score of the windows lighting it, so a cell is predicted at threshold ``t`` exactly when that score
is ``> t``; ``SedRaster.counts`` then scores a whole grid from two sorted arrays, and
``tune_threshold`` picks the grid's best micro F1 (ties: the lowest threshold).

No scikit-learn: micro scores come from the cell counts, with sklearn's ``zero_division=0``
semantics and its F1 formula ``2 TP / (2 TP + FP + FN)``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np


def _frame_activity(windows: list, num_frames: int) -> np.ndarray:
    """[num_frames] bool: frames ``f`` (indices) with ``start <= f <= end`` for some window."""
    if not windows:
        return np.zeros(num_frames, dtype=bool)
    bounds = np.array([[w[0], w[1]] for w in windows], dtype=np.float64)  # [K, 2]
    frames = np.arange(num_frames, dtype=np.float64)
    active = (frames >= bounds[:, :1]) & (frames <= bounds[:, 1:])  # [K, num_frames]
    return active.any(axis=0)


def _field(line: dict, key: str, source: str, index: int) -> Any:
    try:
        return line[key]
    except KeyError:
        raise ValueError(f"{source} line {index + 1} has no '{key}'") from None


def _reference_matrices(
    ref_lines: Sequence[dict], label_resolution: float
) -> tuple[list[str], dict[str, np.ndarray]]:
    labels: list[str] = []
    for i, line in enumerate(ref_lines):
        query = _field(line, "query", "reference", i)
        if query not in labels:
            labels.append(query)
    label_index = {label: i for i, label in enumerate(labels)}

    matrices: dict[str, np.ndarray] = {}  # vid -> [num_labels, num_frames] bool
    for i, line in enumerate(ref_lines):
        vid = _field(line, "vid", "reference", i)
        if vid not in matrices:
            duration = _field(line, "duration", "reference", i)
            num_frames = int(math.ceil(duration * label_resolution))
            matrices[vid] = np.zeros((len(labels), num_frames), dtype=bool)
        matrix = matrices[vid]
        windows = _field(line, "relevant_windows", "reference", i)
        matrix[label_index[line["query"]]] |= _frame_activity(windows, matrix.shape[1])
    return labels, matrices


def _score_activity(windows: list, num_frames: int, source: str) -> np.ndarray:
    """[num_frames] float: per frame index, the best score of the windows lighting it (-inf: none).

    A frame is active at threshold ``t`` exactly when this best score is ``> t``, so one raster
    serves every threshold. ``fmax`` ignores NaN scores, which never pass a threshold either.
    """
    scores = np.full(num_frames, -np.inf)
    if not windows:
        return scores
    try:
        rows = np.array([[w[0], w[1], w[2]] for w in windows], dtype=np.float64)  # [K, 3]
    except (TypeError, IndexError, ValueError):
        raise ValueError(
            f"{source}: 'pred_relevant_windows' must be a list of [start, end, score]"
        ) from None
    frames = np.arange(num_frames, dtype=np.float64)
    active = (frames >= rows[:, :1]) & (frames <= rows[:, 1:2])  # [K, num_frames]
    return np.fmax.reduce(np.where(active, rows[:, 2:], -np.inf), axis=0, initial=-np.inf)


def _prediction_scores(
    pred_lines: Sequence[dict],
    reference: dict[str, np.ndarray],
    labels: list[str],
) -> dict[str, np.ndarray]:
    """vid -> [num_labels, num_frames]: best score lighting each cell (``_score_activity``)."""
    label_index = {label: i for i, label in enumerate(labels)}
    matrices: dict[str, np.ndarray] = {}
    for i, line in enumerate(pred_lines):
        vid = _field(line, "vid", "prediction", i)
        query = _field(line, "query", "prediction", i)
        if vid not in reference:
            raise ValueError(f"prediction line {i + 1}: vid {vid!r} is not in the reference")
        if query not in label_index:
            raise ValueError(
                f"prediction line {i + 1}: query {query!r} is not one of the "
                f"{len(labels)} reference labels"
            )
        # The wrapper rasterises on arange(ceil(F / resolution) * resolution), which has F
        # elements whenever it runs at all (otherwise it fails on a shape mismatch); F is used.
        matrix = matrices.get(vid)
        if matrix is None:
            matrix = matrices[vid] = np.full(reference[vid].shape, -np.inf)
        windows = _field(line, "pred_relevant_windows", "prediction", i)
        row = label_index[query]
        scores = _score_activity(windows, matrix.shape[1], f"prediction line {i + 1}")
        np.fmax(matrix[row], scores, out=matrix[row])
    missing = [vid for vid in reference if vid not in matrices]
    if missing:
        raise ValueError(
            f"{len(missing)} reference clip(s) have no prediction line, e.g. vid {missing[0]!r}"
        )
    return matrices


@dataclass
class SedRaster:
    """Reference activity and best prediction scores of every (label, frame) cell, all clips joined.

    Built once by ``rasterise``; ``counts`` then scores any number of thresholds without going
    back to the jsonl lines (the threshold tuning sweeps a grid this way).
    """

    labels: list[str]
    reference: np.ndarray  # [num_labels, total_frames] bool
    scores: np.ndarray  # [num_labels, total_frames] float64, -inf where no window lights the cell
    label_resolution: float

    def counts(self, thresholds: Sequence[float]) -> np.ndarray:
        """[len(thresholds), 3] int64: TP, FP, FN of the cells with ``score > threshold``."""
        thresholds = np.asarray(thresholds, dtype=np.float64)
        # Count of scores > t = n - (number of scores <= t): one sort per class of cell.
        pos = np.sort(self.scores[self.reference])
        neg = np.sort(self.scores[~self.reference])
        tp = pos.size - np.searchsorted(pos, thresholds, side="right")
        fp = neg.size - np.searchsorted(neg, thresholds, side="right")
        return np.stack([tp, fp, pos.size - tp], axis=1).astype(np.int64)


def rasterise(
    ref_lines: Sequence[dict], pred_lines: Sequence[dict], label_resolution: float = 1.0
) -> SedRaster:
    """Rasterise references and predictions once (semantics in the module doc).

    Raises:
        ValueError: no reference line, a prediction names an unknown clip or label, or a
            reference clip has no prediction line.
    """
    if not ref_lines:
        raise ValueError("the reference has no lines")
    labels, reference = _reference_matrices(ref_lines, label_resolution)
    scores = _prediction_scores(pred_lines, reference, labels)
    return SedRaster(
        labels=labels,
        reference=np.hstack([reference[vid] for vid in reference]),
        scores=np.hstack([scores[vid] for vid in reference]),
        label_resolution=float(label_resolution),
    )


def _percent(value: float) -> float:
    return float(f"{100 * value:.2f}")


def sed_evaluate(
    ref_lines: Sequence[dict],
    pred_lines: Sequence[dict],
    threshold: float = 0.5,
    label_resolution: float = 1.0,
) -> dict[str, Any]:
    """Micro precision / recall / F1 of thresholded predictions over all (label, frame) cells.

    Args:
        ref_lines: reference jsonl lines ``{"query", "vid", "duration", "relevant_windows"}``.
        pred_lines: submission lines ``{"query", "vid", "pred_relevant_windows": [[s, e, score]]}``.
        threshold: a window counts when its score is strictly greater.
        label_resolution: frames per second of the activity matrices (see the module doc).

    Returns:
        ``{"threshold", "label_resolution", "precision", "recall", "f1", "counts": {"tp", "fp",
        "fn", "tn", "cells", "n_labels", "n_frames_total"}, "labels"}``; scores are in percent
        with 2 decimals.

    Raises:
        ValueError: a prediction names an unknown clip or label, or a reference clip has no
            prediction line.

    >>> ref = [{"query": "dog", "vid": "a", "duration": 4, "relevant_windows": [[0, 1]]}]
    >>> pred = [{"query": "dog", "vid": "a", "pred_relevant_windows": [[1, 2, 0.9]]}]
    >>> r = sed_evaluate(ref, pred)
    >>> r["counts"]["tp"], r["counts"]["fp"], r["counts"]["fn"], r["precision"]
    (1, 1, 1, 50.0)
    """
    return sed_result(rasterise(ref_lines, pred_lines, label_resolution), threshold)


def _micro_scores(tp: int, fp: int, fn: int) -> tuple[float, float, float]:
    """sklearn's micro P/R/F1 with ``zero_division=0`` (fractions, not percent)."""
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * tp / (2 * tp + fp + fn) if tp + fp + fn else 0.0
    return precision, recall, f1


def sed_result(raster: SedRaster, threshold: float) -> dict[str, Any]:
    """``sed_evaluate``'s dict for one threshold of an existing raster."""
    tp, fp, fn = (int(x) for x in raster.counts([threshold])[0])
    cells = int(raster.reference.size)
    precision, recall, f1 = _micro_scores(tp, fp, fn)
    return {
        "threshold": float(threshold),
        "label_resolution": raster.label_resolution,
        "precision": _percent(precision),
        "recall": _percent(recall),
        "f1": _percent(f1),
        "counts": {
            "tp": tp,
            "fp": fp,
            "fn": fn,
            "tn": cells - tp - fp - fn,
            "cells": cells,
            "n_labels": len(raster.labels),
            "n_frames_total": int(raster.reference.shape[1]),
        },
        "labels": raster.labels,
    }


def parse_thresholds(text: str) -> list[float]:
    """``"0:1:0.05"`` (start:stop:step, stop included) or ``"0.3,0.5,0.7"`` -> sorted thresholds.

    >>> parse_thresholds("0.1:0.3:0.1"), parse_thresholds("0.7, 0.3")
    ([0.1, 0.2, 0.3], [0.3, 0.7])
    """
    try:
        if ":" in text:
            start, stop, step = (float(x) for x in text.split(":"))
            if step <= 0 or stop < start:
                raise ValueError
            count = int(math.floor((stop - start) / step + 1e-9)) + 1
            # Rounded so that 0.15 is 0.15, not 0.15000000000000002 (keys of the saved curve).
            values = [round(start + k * step, 10) for k in range(count)]
        else:
            values = [float(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise ValueError(
            f"thresholds {text!r}: expected START:STOP:STEP with STEP > 0 and STOP >= START, "
            "or a comma-separated list of numbers"
        ) from None
    if not values:
        raise ValueError(f"thresholds {text!r}: no threshold given")
    return sorted(set(values))


def threshold_curve(raster: SedRaster, thresholds: Sequence[float]) -> list[dict[str, float]]:
    """Micro P/R/F1 (percent, 2 decimals) at each threshold, from one raster."""
    curve = []
    for threshold, (tp, fp, fn) in zip(thresholds, raster.counts(thresholds), strict=True):
        precision, recall, f1 = _micro_scores(int(tp), int(fp), int(fn))
        curve.append(
            {
                "threshold": float(threshold),
                "precision": _percent(precision),
                "recall": _percent(recall),
                "f1": _percent(f1),
            }
        )
    return curve


def tune_threshold(
    raster: SedRaster, thresholds: Sequence[float]
) -> tuple[float, list[dict[str, float]]]:
    """The threshold of ``thresholds`` with the highest micro F1 on ``raster``, and the F1 curve.

    F1 is compared exactly (from the cell counts, not the rounded percentages); among equal F1s
    the **lowest** threshold wins, so the choice does not depend on the grid's order and, on a
    plateau, keeps the most detections.

    >>> ref = [{"query": "dog", "vid": "a", "duration": 4, "relevant_windows": [[0, 1]]}]
    >>> pred = [{"query": "dog", "vid": "a", "pred_relevant_windows": [[0, 1, 0.8], [0, 3, 0.4]]}]
    >>> tune_threshold(rasterise(ref, pred), [0.3, 0.5, 0.7])[0]
    0.5
    """
    thresholds = sorted(float(t) for t in thresholds)
    if not thresholds:
        raise ValueError("no threshold to tune over")
    counts = raster.counts(thresholds)
    f1 = [_micro_scores(int(tp), int(fp), int(fn))[2] for tp, fp, fn in counts]
    best = max(range(len(thresholds)), key=lambda k: (f1[k], -k))
    return thresholds[best], threshold_curve(raster, thresholds)


def format_sed_stdout(result: dict[str, Any]) -> str:
    """The wrapper's stdout for a result of ``sed_evaluate`` (three lines, trailing newline)."""
    return (
        "Micro Average\n"
        "Precision, Recall, F1\n"
        f"{result['precision']:.2f}, {result['recall']:.2f}, {result['f1']:.2f}\n"
    )
