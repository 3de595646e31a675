"""DCASE 2026 Task 6 (audio moment retrieval, CASTELLA) submission rows from Lighthouse predictions.

A submission is JSON Lines, one row per query of the split's query file, in its order::

    {"qid": "--0w1YA1Hm4_1", "query": "A car horn blares", "duration": 299,
     "vid": "--0w1YA1Hm4", "pred_relevant_windows": [[27, 29], [288, 292]]}

``qid``, ``query``, ``duration`` and ``vid`` are copied from the query file; the windows are the
query's predicted ``[start, end, score]`` rows, best first, without scores, formatted by
:func:`format_window`:

1. clipped to ``[0, max_end]`` seconds (300 for CASTELLA). Not to the query's ``duration``: the
   released durations are whole seconds rounded down, and the ground truth itself runs past them
   (99 of the 1347 CASTELLA test queries, e.g. ``[[116, 300]]`` with duration 299), so the second
   after ``duration`` holds real audio;
2. rounded to the nearest whole second, halves to even (``round``; Lighthouse's post-processing
   snaps to the clip length the same way, with ``torch.round``);
3. a window that rounding left empty (``[3.2, 3.4]`` -> ``[3, 3]``) becomes the whole second that
   holds its midpoint, moved inside the limits: ``[3, 4]``; one wholly past the limit becomes the
   last second, ``[max_end - 1, max_end]``.

Then :func:`format_windows` orders the rows by score (a stable sort: Lighthouse's files are
already sorted and stay as they are), keeps only the first, best-ranked, copy of a window that
formatting made equal to a better one, and finally keeps the ``top_k`` best.

>>> format_windows([[3.2, 3.4, 0.9], [2.5, 7.5, 0.8], [2.6, 7.6, 0.7], [298.7, 305.0, 0.1]])
[[3, 4], [2, 8], [3, 8], [299, 300]]
>>> format_windows([[3.2, 3.4, 0.9], [3.6, 3.8, 0.8], [10, 20, 0.95], [40, 50, 0.5], [0, 9, 0.1]],
...                top_k=3)
[[10, 20], [3, 4], [40, 50]]
"""

from __future__ import annotations

import math
import os
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from lighthouse_audio.data.annotations import AnnotationWarning, load_queries
from lighthouse_audio.data.predictions import load_predictions
from lighthouse_audio.file_io import iter_jsonl, write_jsonl

__all__ = [
    "DEFAULT_MAX_END",
    "SUBMISSION_KEYS",
    "Located",
    "build_submission",
    "format_window",
    "format_windows",
    "read_predictions",
    "read_queries",
    "write_submission",
]

DEFAULT_MAX_END = 300  # seconds: CASTELLA's recordings are at most 300 s long
SUBMISSION_KEYS = ("qid", "query", "duration", "vid", "pred_relevant_windows")
QUERY_KEYS = SUBMISSION_KEYS[:4]

# Rows of a file with where each came from ("path:line"), for one-line errors that name it.
Located = tuple[str, Mapping[str, Any]]


def format_window(start: float, end: float, max_end: int = DEFAULT_MAX_END) -> list[int]:
    """``[start, end]`` seconds -> whole seconds inside ``[0, max_end]``, at least 1 s long.

    >>> format_window(12.4, 15.6), format_window(-3.0, 2.0), format_window(3.6, 3.8)
    ([12, 16], [0, 2], [3, 4])
    >>> format_window(299.6, 301.0), format_window(320.0, 330.0, max_end=300)
    ([299, 300], [299, 300])
    """
    if isinstance(max_end, bool) or not isinstance(max_end, int) or max_end < 1:
        raise ValueError(f"max_end={max_end!r}: must be a whole number of seconds >= 1")
    if not (math.isfinite(start) and math.isfinite(end)):
        raise ValueError(f"window [{start}, {end}] is not finite")
    if end < start:
        raise ValueError(f"window [{start}, {end}] ends before it starts")
    start, end = min(max(start, 0.0), max_end), min(max(end, 0.0), max_end)
    lo, hi = round(start), round(end)
    if hi > lo:
        return [lo, hi]
    # Empty after rounding: the second holding the midpoint, the last one if that is the limit.
    lo = min(math.floor((start + end) / 2), max_end - 1)
    return [lo, lo + 1]


def format_windows(
    windows: Sequence[Sequence[float]], max_end: int = DEFAULT_MAX_END, top_k: int | None = None
) -> list[list[int]]:
    """Predicted ``[start, end, score]`` rows -> ranked ``[start, end]`` whole seconds (see the
    module docstring): best score first (ties keep their order), duplicates after formatting
    dropped (the best-ranked copy stays), then at most ``top_k`` (None: all)."""
    if top_k is not None and (isinstance(top_k, bool) or not isinstance(top_k, int) or top_k < 1):
        raise ValueError(f"top_k={top_k!r}: must be a whole number >= 1 (or None for all)")
    for j, row in enumerate(windows):
        if len(row) != 3:
            raise ValueError(f"window {j} {list(row)!r}: expected [start, end, score]")
    ranked = sorted(windows, key=lambda row: row[2], reverse=True)  # stable
    kept: list[list[int]] = []
    seen: set[tuple[int, int]] = set()
    for start, end, _ in ranked:
        window = format_window(start, end, max_end)
        if (window[0], window[1]) not in seen:
            seen.add((window[0], window[1]))
            kept.append(window)
    return kept if top_k is None else kept[:top_k]


def build_submission(
    queries: Sequence[Located],
    predictions: Sequence[Located],
    *,
    max_end: int = DEFAULT_MAX_END,
    top_k: int | None = None,
    queries_name: str = "the query file",
    predictions_name: str = "the predictions",
) -> list[dict[str, Any]]:
    """One submission row per query, in the queries' order.

    Args:
        queries: ``(where, line)`` pairs: ``where`` names the line in errors (``"test.jsonl:3"``),
            ``line`` holds qid, query, duration and vid (other keys are ignored).
        predictions: ``(where, line)`` pairs of Lighthouse prediction lines (qid,
            pred_relevant_windows ``[[start, end, score], ...]``; query and vid when present must
            agree with the query file's).
        queries_name, predictions_name: how errors name the other side.

    Raises ``ValueError`` ``"where: problem"`` for the first of: a qid twice on either side, a
    prediction whose qid the query file lacks, a prediction whose vid or query differs from the
    query file's, a query without a prediction.
    """
    by_qid: dict[Any, tuple[str, Mapping[str, Any]]] = {}
    for where, line in queries:
        missing = [key for key in QUERY_KEYS if key not in line]
        if missing:
            raise ValueError(f"{where}: missing field(s) {', '.join(missing)}")
        _claim(by_qid, where, line)
    predicted: dict[Any, tuple[str, Mapping[str, Any]]] = {}
    for where, line in predictions:
        if "qid" not in line or "pred_relevant_windows" not in line:
            raise ValueError(f"{where}: a prediction line needs qid and pred_relevant_windows")
        qid = line["qid"]
        if _key(qid) not in by_qid:
            raise ValueError(
                f"{where}: qid {qid!r} is not in {queries_name}{_type_hint(qid, by_qid)}"
            )
        _, query = by_qid[_key(qid)]
        for field in ("vid", "query"):
            if field in line and line[field] != query[field]:
                raise ValueError(
                    f"{where}: qid {qid!r} has {field} {line[field]!r}, but {queries_name} "
                    f"gives {query[field]!r}"
                )
        _claim(predicted, where, line)
    lacking = [(where, q["qid"]) for where, q in by_qid.values() if _key(q["qid"]) not in predicted]
    if lacking:
        (where, qid), others = lacking[0], len(lacking) - 1
        more = ""
        if others:
            more = f" ({others} more {'query lacks' if others == 1 else 'queries lack'} one)"
        raise ValueError(f"{where}: qid {qid!r} has no prediction in {predictions_name}{more}")

    rows = []
    for _, query in queries:
        where, line = predicted[_key(query["qid"])]
        try:
            windows = format_windows(line["pred_relevant_windows"], max_end, top_k)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"{where}: qid {query['qid']!r}: {exc}") from None
        rows.append({key: query[key] for key in QUERY_KEYS} | {SUBMISSION_KEYS[4]: windows})
    return rows


def _key(qid: Any) -> tuple[str, Any]:
    # Lighthouse's evaluator tells qid 1 from "1", and so do we.
    return type(qid).__name__, qid


def _claim(seen: dict[Any, tuple[str, Mapping[str, Any]]], where: str, line: Mapping) -> None:
    qid = line["qid"]
    if _key(qid) in seen:
        raise ValueError(f"{where}: duplicate qid {qid!r} (first at {seen[_key(qid)][0]})")
    seen[_key(qid)] = (where, line)


def _type_hint(qid: Any, by_qid: Mapping[tuple[str, Any], Any]) -> str:
    """A near miss worth naming: the same qid as the other JSON type."""
    other = str(qid) if isinstance(qid, int) else int(qid) if qid.isdecimal() else None
    if other is not None and _key(other) in by_qid:
        return f" (it has {other!r}, a {type(other).__name__})"
    return ""


def _line_numbers(path: Path) -> list[int]:
    # The loaders read the same non-blank lines in order (and raise on any they cannot use), so
    # the k-th loaded row came from the k-th non-blank line.
    return [number for number, _ in iter_jsonl(path, objects=False)]


def read_queries(path: str | os.PathLike) -> list[Located]:
    """The rows of a query or annotation file (validated by ``load_queries``; windows are not
    needed), each with its ``path:line``."""
    path = Path(path)
    with warnings.catch_warnings():  # windows past the duration: irrelevant to a submission
        warnings.simplefilter("ignore", AnnotationWarning)
        queries = load_queries(path, require_windows=False)
    lines = _line_numbers(path)
    return [(f"{path}:{n}", q.to_dict()) for n, q in zip(lines, queries, strict=True)]


def read_predictions(path: str | os.PathLike) -> list[Located]:
    """The lines of a Lighthouse predictions file (validated by ``load_predictions``), each with
    its ``path:line``."""
    path = Path(path)
    predictions = load_predictions(path)
    lines = _line_numbers(path)
    return [(f"{path}:{n}", line) for n, line in zip(lines, predictions, strict=True)]


def write_submission(rows: Sequence[Mapping[str, Any]], path: str | os.PathLike) -> Path:
    """Write the rows as JSON Lines, whole or not at all; query text as in the query file."""
    return write_jsonl(rows, path, ensure_ascii=False)
