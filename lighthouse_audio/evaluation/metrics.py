"""Moment-retrieval metrics, numerically identical to Lighthouse's ``standalone_eval``.

``eval_submission`` returns ``{"brief": {...}, "full": {"MR-mAP": {...}, "MR-R1": {...}}}`` with the
same keys, order and 2-decimal values as Lighthouse. The semantics it keeps (fixture README §9):

- The qid sets of submission and GT must be equal (Python equality, so ``1`` and ``"1"`` differ).
- GT windows whose length is outside (0, 1500] are dropped; a query left without GT is dropped
  from both sides.
- mAP: per query, the **first 10 windows in list order**, then a stable sort by descending score;
  greedy matching per IoU threshold, trying GT windows in descending IoU order (ties: higher GT
  index first); VOC-style interpolated AP with recall divided by the number of GT windows.
- R1: the **first listed window** regardless of score, against the GT window of highest true IoU
  (first on ties), scored with Lighthouse's paired IoU ``intersection / (max end - min start)``.

Everything is vectorised over queries (padding to the longest list): 5,000 queries take a fraction
of a second on one core, against seconds for Lighthouse's per-query loop on 8 processes. Per-query
AP sums and the means use the same numpy reductions on arrays of the same length as Lighthouse, so
values agree to the last bit (the query order of the mean is the submission order; Lighthouse's
pool returns queries in completion order, which can only move the last bit).
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

IOU_THRESHOLDS: tuple[float, ...] = tuple(float(f"{t:.2f}") for t in np.linspace(0.5, 0.95, 10))
"""0.5, 0.55, ..., 0.95; ``str(t)`` gives the metric keys ``"0.5"``, ``"0.55"``, ..."""

MAX_PRED_WINDOWS = 10
"""mAP uses only the first this many windows of each submission line, in list order."""

LENGTH_RANGE = (0, 1500)
"""GT windows are kept when ``LENGTH_RANGE[0] < end - start <= LENGTH_RANGE[1]`` ("full" range)."""


@dataclass
class _Prepared:
    """Submission and GT after the qid check and the length filter, padded per query.

    Query order is ``qids`` (first appearance in the submission); ``*_valid`` masks the padding.
    """

    qids: list[Hashable]
    ap_pred: np.ndarray  # [Q, P, 3] [start, end, score]: first 10 windows of each line, joined
    ap_pred_valid: np.ndarray  # [Q, P]
    ap_gt: np.ndarray  # [Q, G, 2] in-range windows of every GT line with this qid
    ap_gt_valid: np.ndarray  # [Q, G]
    r1_top: np.ndarray  # [Q, 2] first window of the last submission line with this qid
    r1_gt: np.ndarray  # [Q, G', 2] in-range windows of the last GT line with this qid
    r1_gt_valid: np.ndarray  # [Q, G']
    num_gt_lines: int
    num_gt_lines_in_range: int


def _describe_qids(qids: set, limit: int = 3) -> str:
    shown = sorted(qids, key=repr)[:limit]
    types = sorted({type(q).__name__ for q in qids})
    more = ", ..." if len(qids) > limit else ""
    return f"{', '.join(repr(q) for q in shown)}{more} ({'/'.join(types)})"


def _check_qids(
    submission: Sequence[dict], ground_truth: Sequence[dict], match_number: bool
) -> tuple[list[dict], list[dict]]:
    for source, records in (("submission", submission), ("ground truth", ground_truth)):
        for index, record in enumerate(records):
            if "qid" not in record:
                raise ValueError(f"{source} line {index + 1} has no 'qid'")
    pred_qids = {d["qid"] for d in submission}
    gt_qids = {d["qid"] for d in ground_truth}
    if match_number:
        if pred_qids != gt_qids:
            parts = []
            if pred_qids - gt_qids:
                only = pred_qids - gt_qids
                parts.append(f"{len(only)} only in submission: {_describe_qids(only)}")
            if gt_qids - pred_qids:
                only = gt_qids - pred_qids
                parts.append(f"{len(only)} only in ground truth: {_describe_qids(only)}")
            if {str(q) for q in pred_qids} == {str(q) for q in gt_qids}:
                parts.append("they differ only in type (e.g. 1 vs '1')")
            raise ValueError(
                "qids in submission and ground truth must match (type included: 1 != '1'); "
                + "; ".join(parts)
            )
        return list(submission), list(ground_truth)
    shared = pred_qids & gt_qids
    if not shared:
        raise ValueError("submission and ground truth have no qid in common")
    return (
        [d for d in submission if d["qid"] in shared],
        [d for d in ground_truth if d["qid"] in shared],
    )


def _get_windows(record: dict, key: str, source: str) -> list:
    try:
        windows = record[key]
    except KeyError:
        raise ValueError(f"{source} line for qid {record['qid']!r} has no '{key}'") from None
    if not isinstance(windows, list | tuple):
        raise ValueError(f"{source} line for qid {record['qid']!r}: '{key}' must be a list")
    return windows


def _bad_windows(qid: Hashable, key: str, width: int, source: str) -> ValueError:
    return ValueError(
        f"{source} line for qid {qid!r}: '{key}' must be a list of windows with "
        f"{width} numbers ({'[start, end, score]' if width == 3 else '[start, end]'})"
    )


def _as_rows(windows: list, width: int) -> np.ndarray | None:
    """Windows -> [N, width] float64 (extra elements ignored, as Lighthouse does); None if bad."""
    if len(windows) == 0:
        return np.zeros((0, width), dtype=np.float64)
    try:
        rows = np.array(windows, dtype=np.float64)
        if rows.ndim != 2 or rows.shape[1] < width:  # maybe ragged: slice each window
            rows = np.array([w[:width] for w in windows], dtype=np.float64)
    except (TypeError, ValueError, IndexError):
        return None
    if rows.ndim != 2 or rows.shape[1] < width:
        return None
    return rows[:, :width]


def _padded(
    qids: list[Hashable], windows: dict[Hashable, list], width: int, key: str, source: str
) -> tuple[np.ndarray, np.ndarray]:
    """Per-query window lists -> ([Q, N, width] float64 zero-padded, [Q, N] validity mask)."""
    counts = np.array([len(windows[q]) for q in qids], dtype=np.int64)
    flat = _as_rows([w for q in qids for w in windows[q]], width)
    if flat is None:
        for q in qids:  # find the culprit for the message
            if _as_rows(windows[q], width) is None:
                raise _bad_windows(q, key, width, source)
        raise _bad_windows(qids[0], key, width, source)
    offsets = np.cumsum(counts) - counts
    query_index = np.repeat(np.arange(len(qids)), counts)
    position = np.arange(len(flat)) - np.repeat(offsets, counts)
    padded = np.zeros((len(qids), int(counts.max(initial=0)), width), dtype=np.float64)
    valid = np.zeros(padded.shape[:2], dtype=bool)
    padded[query_index, position] = flat
    valid[query_index, position] = True
    return padded, valid


def _in_range(window: Sequence) -> bool:
    min_len, max_len = LENGTH_RANGE
    return min_len < window[1] - window[0] <= max_len


def _prepare(
    submission: Sequence[dict], ground_truth: Sequence[dict], match_number: bool
) -> _Prepared:
    submission, ground_truth = _check_qids(submission, ground_truth, match_number)

    gt_joined: dict[Hashable, list] = {}
    gt_last: dict[Hashable, list] = {}
    num_gt_lines_in_range = 0
    for d in ground_truth:
        try:
            windows = [
                w for w in _get_windows(d, "relevant_windows", "ground truth") if _in_range(w)
            ]
        except (TypeError, IndexError):
            raise _bad_windows(d["qid"], "relevant_windows", 2, "ground truth") from None
        if not windows:
            continue  # the query leaves the evaluation entirely
        num_gt_lines_in_range += 1
        gt_joined.setdefault(d["qid"], []).extend(windows)
        gt_last[d["qid"]] = windows

    pred_joined: dict[Hashable, list] = {}
    top: dict[Hashable, list] = {}
    for d in submission:
        if d["qid"] not in gt_last:
            continue
        windows = _get_windows(d, "pred_relevant_windows", "submission")
        if len(windows) == 0:
            raise ValueError(
                f"submission line for qid {d['qid']!r} has an empty 'pred_relevant_windows' "
                "(Lighthouse's R1 needs at least one window per query)"
            )
        pred_joined.setdefault(d["qid"], []).extend(windows[:MAX_PRED_WINDOWS])
        top[d["qid"]] = [windows[0]]

    qids = list(pred_joined)
    ap_pred, ap_pred_valid = _padded(qids, pred_joined, 3, "pred_relevant_windows", "submission")
    ap_gt, ap_gt_valid = _padded(qids, gt_joined, 2, "relevant_windows", "ground truth")
    r1_top, _ = _padded(qids, top, 2, "pred_relevant_windows", "submission")
    r1_gt, r1_gt_valid = _padded(qids, gt_last, 2, "relevant_windows", "ground truth")
    return _Prepared(
        qids=qids,
        ap_pred=ap_pred,
        ap_pred_valid=ap_pred_valid,
        ap_gt=ap_gt,
        ap_gt_valid=ap_gt_valid,
        r1_top=r1_top[:, 0] if len(qids) else np.zeros((0, 2)),
        r1_gt=r1_gt,
        r1_gt_valid=r1_gt_valid,
        num_gt_lines=len(ground_truth),
        num_gt_lines_in_range=num_gt_lines_in_range,
    )


def _cross_iou(spans1: np.ndarray, spans2: np.ndarray) -> np.ndarray:
    """True interval IoU of every pair: spans1 [..., N, 2] x spans2 [..., M, 2] -> [..., N, M].

    Same operations in the same order as Lighthouse's ``compute_temporal_iou_batch_cross``.
    """
    areas1 = spans1[..., 1] - spans1[..., 0]
    areas2 = spans2[..., 1] - spans2[..., 0]
    left = np.maximum(spans1[..., :, None, 0], spans2[..., None, :, 0])
    right = np.minimum(spans1[..., :, None, 1], spans2[..., None, :, 1])
    inter = np.clip(right - left, 0, None)
    union = areas1[..., :, None] + areas2[..., None, :] - inter
    with np.errstate(divide="ignore", invalid="ignore"):
        return inter / union


def _paired_iou(pred: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """Lighthouse's R1 IoU of row-aligned windows [N, 2]: intersection / (max end - min start).

    That "union" is the hull of both windows: equal to the true union when they overlap, and 0
    is returned where it is 0.
    """
    intersection = np.maximum(
        0, np.minimum(pred[:, 1], gt[:, 1]) - np.maximum(pred[:, 0], gt[:, 0])
    )
    hull = np.maximum(pred[:, 1], gt[:, 1]) - np.minimum(pred[:, 0], gt[:, 0])
    return np.divide(intersection, hull, out=np.zeros_like(intersection), where=hull != 0)


def _sum_last_axis_selected(values: np.ndarray, selected: np.ndarray) -> np.ndarray:
    """Per row, ``np.sum(values[row][selected[row]])``, with numpy's own summation order.

    numpy's pairwise summation depends on how many elements are summed, so rows are grouped by
    their selection count and each group is summed over exactly that many (compacted) elements.
    """
    flat_values = values.reshape(-1, values.shape[-1])
    flat_selected = selected.reshape(-1, selected.shape[-1])
    order = np.argsort(~flat_selected, axis=-1, kind="stable")  # selected first, in order
    compacted = np.take_along_axis(flat_values, order, axis=-1)
    counts = flat_selected.sum(-1)
    sums = np.zeros(len(flat_values), dtype=np.float64)
    for count in np.unique(counts):
        rows = counts == count
        sums[rows] = np.sum(compacted[rows, :count], axis=-1)
    return sums.reshape(values.shape[:-1])


def _prepared_average_precision(prepared: Any) -> np.ndarray:
    """AP at every IoU threshold for each prepared query."""
    return _average_precision(
        prepared.ap_pred, prepared.ap_pred_valid, prepared.ap_gt, prepared.ap_gt_valid,
        IOU_THRESHOLDS,
    )  # fmt: skip


def _average_precision(
    pred: np.ndarray,
    pred_valid: np.ndarray,
    gt: np.ndarray,
    gt_valid: np.ndarray,
    thresholds: Sequence[float],
) -> np.ndarray:
    """Per-query, per-threshold VOC interpolated AP as in Lighthouse (MMAction2's detection AP).

    Args:
        pred: [Q, P, 3] windows [start, end, score] in submission order, padded at the end.
        pred_valid: [Q, P], at least one True per query.
        gt: [Q, G, 2] GT windows, padded at the end.
        gt_valid: [Q, G], at least one True per query.
        thresholds: T IoU thresholds.

    Returns:
        [Q, T] float64 average precisions.
    """
    thresholds = np.asarray(thresholds, dtype=np.float64)
    num_thr = len(thresholds)
    num_queries, num_preds = pred_valid.shape
    num_gts = gt_valid.sum(-1)  # [Q]

    # Stable sort by descending score; padding goes last.
    sort_key = np.where(pred_valid, -pred[..., 2], np.inf)
    pred_order = np.argsort(sort_key, axis=-1, kind="stable")
    pred = np.take_along_axis(pred, pred_order[..., None], axis=1)
    pred_valid = np.take_along_axis(pred_valid, pred_order, axis=1)

    iou = _cross_iou(pred[..., :2], gt)  # [Q, P, G]
    iou = np.where(gt_valid[:, None, :], iou, -np.inf)  # padded GT: below every threshold
    # GT windows in descending IoU order: Lighthouse walks ``argsort()[::-1]``, so equal IoUs
    # are tried from the higher GT index (NaN, from a 0/0 IoU, sorts as the largest).
    gt_rank = np.argsort(iou, axis=-1, kind="stable")[..., ::-1]
    ranked_iou = np.take_along_axis(iou, gt_rank, axis=-1)

    rows = np.arange(num_queries)
    locked = np.zeros((num_queries, num_thr, gt.shape[1]), dtype=bool)
    tp = np.zeros((num_queries, num_thr, num_preds), dtype=bool)
    fp = np.zeros((num_queries, num_thr, num_preds), dtype=bool)
    for k in range(num_preds):
        # Padded predictions are neither TP nor FP: cumulative counts stay flat over them.
        done = np.repeat(~pred_valid[:, k, None], num_thr, axis=1)  # [Q, T]
        for r in range(gt.shape[1]):
            if done.all():
                break
            gt_index = gt_rank[:, k, r]
            below = ranked_iou[:, k, r, None] < thresholds  # [Q, T]; NaN is never below
            active = ~done
            fp[:, :, k] |= active & below
            take = active & ~below & ~locked[rows, :, gt_index]
            tp[:, :, k] |= take
            locked[rows, :, gt_index] |= take
            done |= below | take
        fp[:, :, k] |= ~done  # every GT window already matched at this threshold

    tp_cumsum = np.cumsum(tp, axis=-1, dtype=np.float64)  # integer-valued, hence exact
    fp_cumsum = np.cumsum(fp, axis=-1, dtype=np.float64)
    recall = tp_cumsum / num_gts[:, None, None].astype(float)
    with np.errstate(divide="ignore", invalid="ignore"):
        precision = tp_cumsum / (tp_cumsum + fp_cumsum)

    # VOC interpolation: (0, 0) in front, (recall 1, precision 0) at the end, precision made
    # non-increasing from the right, summed where recall changes. Padded positions repeat the
    # last real point, so they neither change the running maximum nor count as a recall change.
    zeros = np.zeros((num_queries, num_thr, 1))
    mprecision = np.concatenate([zeros, precision, zeros], axis=-1)
    mrecall = np.concatenate([zeros, recall, np.ones_like(zeros)], axis=-1)
    mprecision = np.maximum.accumulate(mprecision[..., ::-1], axis=-1)[..., ::-1]
    changed = mrecall[..., 1:] != mrecall[..., :-1]
    terms = (mrecall[..., 1:] - mrecall[..., :-1]) * mprecision[..., 1:]
    return _sum_last_axis_selected(terms, changed)


def _r1_ious(prepared: _Prepared) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """R1 per query: (top windows [Q, 2], chosen GT index [Q], Lighthouse IoU [Q])."""
    top, gt = prepared.r1_top, prepared.r1_gt
    iou = _cross_iou(top[:, None, :], gt)[:, 0, :]  # [Q, G]
    iou = np.where(prepared.r1_gt_valid, iou, -np.inf)
    gt_index = np.argmax(iou, axis=-1)  # first maximum (first NaN, like np.argmax)
    chosen = gt[np.arange(len(top)), gt_index]
    return top, gt_index, _paired_iou(top, chosen)


def _format(value: float) -> float:
    return float(f"{100 * value:.2f}")


def eval_moment_retrieval(
    submission: Sequence[dict],
    ground_truth: Sequence[dict],
    verbose: bool = False,
    match_number: bool = True,
) -> dict[str, dict[str, float]]:
    """``{"MR-mAP": {"0.5": .., ..., "0.95": .., "average": ..}, "MR-R1": {"0.5": .., ...}}``."""
    start_time = time.time()
    prepared = _prepare(submission, ground_truth, match_number)
    if verbose:
        kept, total = prepared.num_gt_lines_in_range, prepared.num_gt_lines
        print(f"full: {list(LENGTH_RANGE)}, {kept}/{total}={100 * kept / total:.2f} examples.")
    if not prepared.qids:
        raise ValueError(f"no query has a GT window with length in {LENGTH_RANGE}")
    left_out = prepared.num_gt_lines - prepared.num_gt_lines_in_range
    if left_out:  # Lighthouse drops them silently; say so, the scores cover fewer queries
        warnings.warn(
            f"{left_out} of {prepared.num_gt_lines} queries have no ground-truth window of length "
            f"in ({LENGTH_RANGE[0]}, {LENGTH_RANGE[1]}] s and are left out of the scores, as "
            "Lighthouse's evaluation does",
            stacklevel=2,
        )

    ap = _prepared_average_precision(prepared)
    ap_per_threshold = np.ascontiguousarray(ap).mean(0)
    mr_map = {str(t): _format(v) for t, v in zip(IOU_THRESHOLDS, ap_per_threshold, strict=True)}
    mr_map["average"] = _format(np.mean(ap_per_threshold))

    _, _, r1_iou = _r1_ious(prepared)
    mr_r1 = {str(t): _format(np.mean(r1_iou >= t)) for t in IOU_THRESHOLDS}
    if verbose:
        print(f"[eval_moment_retrieval] [full] {time.time() - start_time:.2f} seconds")
    return {"MR-mAP": mr_map, "MR-R1": mr_r1}


def eval_submission(
    submission: Sequence[dict],
    ground_truth: Sequence[dict],
    verbose: bool = False,
    match_number: bool = True,
) -> dict[str, Any]:
    """Lighthouse's ``standalone_eval.eval.eval_submission`` for moment retrieval.

    Args:
        submission: lines ``{"qid", "pred_relevant_windows": [[start, end, score], ...], ...}``.
        ground_truth: lines ``{"qid", "relevant_windows": [[start, end], ...], ...}``.
        verbose: print Lighthouse's progress lines.
        match_number: require equal qid sets (else evaluate only the shared qids).

    Returns:
        ``{"brief": {"MR-full-R1@0.5", "MR-full-R1@0.7", "MR-full-mAP", "MR-full-mAP@0.5",
        "MR-full-mAP@0.75"}, "full": {"MR-mAP": {...}, "MR-R1": {...}}}``, values in percent
        with 2 decimals.

    Raises:
        ValueError: qid sets differ, a line lacks its windows, or a prediction list is empty.

    >>> gt = [{"qid": 1, "relevant_windows": [[2, 6]]}]
    >>> pred = [{"qid": 1, "pred_relevant_windows": [[2, 6, 0.9], [0, 10, 0.5]]}]
    >>> eval_submission(pred, gt)["brief"]["MR-full-mAP"]
    100.0
    """
    full = eval_moment_retrieval(submission, ground_truth, verbose, match_number)
    brief = {
        "MR-full-mAP": full["MR-mAP"]["average"],
        "MR-full-mAP@0.5": full["MR-mAP"]["0.5"],
        "MR-full-mAP@0.75": full["MR-mAP"]["0.75"],
        "MR-full-R1@0.5": full["MR-R1"]["0.5"],
        "MR-full-R1@0.7": full["MR-R1"]["0.7"],
    }
    return {"brief": dict(sorted(brief.items())), "full": full}


def per_query_details(
    submission: Sequence[dict], ground_truth: Sequence[dict], match_number: bool = True
) -> dict[str, Any]:
    """Per-query breakdown for debugging, in the layout of the ``eval_perquery_*.json`` fixtures.

    Returns:
        ``{"thresholds": [0.5, ...], "per_query": {qid: {"ap": [T floats], "r1_top_window":
        [start, end], "r1_gt_index": int, "r1_iou": float}}}``; qids keep their type (the
        fixture files, being JSON, have them as strings). Averaging ``ap`` and thresholding
        ``r1_iou`` over queries gives ``eval_submission``'s numbers.
    """
    prepared = _prepare(submission, ground_truth, match_number)
    qids = prepared.qids
    if not qids:
        return {"thresholds": list(IOU_THRESHOLDS), "per_query": {}}
    ap = _prepared_average_precision(prepared)
    top, gt_index, r1_iou = _r1_ious(prepared)
    per_query = {
        qid: {
            "ap": ap[i].tolist(),
            "r1_top_window": top[i].tolist(),
            "r1_gt_index": int(gt_index[i]),
            "r1_iou": float(r1_iou[i]),
        }
        for i, qid in enumerate(qids)
    }
    return {"thresholds": list(IOU_THRESHOLDS), "per_query": per_query}
