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

No scikit-learn: micro scores come from the cell counts, with sklearn's ``zero_division=0``
semantics and its F1 formula ``2 TP / (2 TP + FP + FN)``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
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


def _prediction_matrices(
    pred_lines: Sequence[dict],
    reference: dict[str, np.ndarray],
    labels: list[str],
    threshold: float,
) -> dict[str, np.ndarray]:
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
        matrix = matrices.setdefault(vid, np.zeros_like(reference[vid]))
        windows = _field(line, "pred_relevant_windows", "prediction", i)
        try:
            kept = [w for w in windows if w[2] > threshold]
        except (TypeError, IndexError):
            raise ValueError(
                f"prediction line {i + 1}: 'pred_relevant_windows' must be a list of "
                "[start, end, score]"
            ) from None
        matrix[label_index[query]] |= _frame_activity(kept, matrix.shape[1])
    missing = [vid for vid in reference if vid not in matrices]
    if missing:
        raise ValueError(
            f"{len(missing)} reference clip(s) have no prediction line, e.g. vid {missing[0]!r}"
        )
    return matrices


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
    if not ref_lines:
        raise ValueError("the reference has no lines")
    labels, reference = _reference_matrices(ref_lines, label_resolution)
    prediction = _prediction_matrices(pred_lines, reference, labels, threshold)

    ref_cells = np.hstack([reference[vid] for vid in reference])
    pred_cells = np.hstack([prediction[vid] for vid in reference])
    tp = int(np.count_nonzero(ref_cells & pred_cells))
    fp = int(np.count_nonzero(~ref_cells & pred_cells))
    fn = int(np.count_nonzero(ref_cells & ~pred_cells))
    cells = int(ref_cells.size)

    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * tp / (2 * tp + fp + fn) if tp + fp + fn else 0.0
    return {
        "threshold": float(threshold),
        "label_resolution": float(label_resolution),
        "precision": _percent(precision),
        "recall": _percent(recall),
        "f1": _percent(f1),
        "counts": {
            "tp": tp,
            "fp": fp,
            "fn": fn,
            "tn": cells - tp - fp - fn,
            "cells": cells,
            "n_labels": len(labels),
            "n_frames_total": int(ref_cells.shape[1]),
        },
        "labels": labels,
    }


def format_sed_stdout(result: dict[str, Any]) -> str:
    """The wrapper's stdout for a result of ``sed_evaluate`` (three lines, trailing newline)."""
    return (
        "Micro Average\n"
        "Precision, Recall, F1\n"
        f"{result['precision']:.2f}, {result['recall']:.2f}, {result['f1']:.2f}\n"
    )
