"""Prediction files (submissions), validated on load like annotations are.

A line is Lighthouse's submission form::

    {"qid": "37612", "query": "...", "vid": "...", "pred_relevant_windows": [[2.0, 27.0, 0.83]]}

Scorers trust what they are given: a NaN score sorts anywhere and moves mAP, a second line for
the same qid silently replaces the first. So each line is checked (the query key present and
of the right type; windows ``[start, end, score]`` of finite numbers with ``end >= start``;
saliency scores finite) and the first problem is raised as ``path:line: problem``. An empty
file is named as such.

>>> import tempfile, pathlib
>>> path = pathlib.Path(tempfile.mkdtemp()) / "p.jsonl"
>>> _ = path.write_text('{"qid": 1, "pred_relevant_windows": [[0, 2, 0.5]]}\\n')
>>> load_predictions(path)[0]["qid"]
1
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

from lighthouse_audio.file_io import empty_file_problem, iter_jsonl

__all__ = ["PredictionError", "load_predictions"]

WINDOWS = "pred_relevant_windows"
SALIENCY = "pred_saliency_scores"


class PredictionError(ValueError):
    """A malformed prediction line, as ``path:line: problem``."""


def load_predictions(
    path: str | os.PathLike, key: tuple[str, ...] = ("qid",)
) -> list[dict[str, Any]]:
    """Read and check a predictions jsonl; lines are returned as read.

    Args:
        key: the fields that identify a line, each unique: ``("qid",)`` for moment retrieval
            (Lighthouse's evaluator matches by qid), ``("vid", "query")`` for SED, whose
            predictions are per clip and label.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such predictions file")
    lines: list[dict[str, Any]] = []
    first_line: dict[tuple[Any, ...], int] = {}
    for lineno, line in iter_jsonl(path, error=PredictionError):
        try:
            identity = _check_line(line, key)
        except PredictionError as exc:  # one line even if a key or value held a newline
            raise PredictionError(f"{path}:{lineno}: {exc}".replace("\n", "\\n")) from None
        if identity in first_line:
            shown = ", ".join(f"{k} {v!r}" for k, v in zip(key, identity, strict=True))
            raise PredictionError(
                f"{path}:{lineno}: duplicate {shown} (first on line {first_line[identity]})"
            )
        first_line[identity] = lineno
        lines.append(line)
    if not lines:
        raise PredictionError(f"{path}: no predictions ({empty_file_problem(path)})")
    return lines


def _check_line(line: dict[str, Any], key: tuple[str, ...]) -> tuple[Any, ...]:
    identity = []
    for field in key:
        if field not in line:
            raise PredictionError(f"missing field {field!r} (keys present: {', '.join(line)})")
        value = line[field]
        if field == "qid":
            if isinstance(value, bool) or not isinstance(value, str | int):
                raise PredictionError(f"qid must be a string or an integer, got {value!r}")
        elif not isinstance(value, str):
            raise PredictionError(f"{field} must be a string, got {value!r}")
        # type matters: Lighthouse's evaluator tells qid 1 from "1"
        identity.append((type(value).__name__, value))
    _check_windows(line.get(WINDOWS, _MISSING))
    if SALIENCY in line:
        _check_saliency(line[SALIENCY])
    return tuple(value for _, value in identity)


_MISSING = object()


def _check_windows(windows: Any) -> None:
    if windows is _MISSING:
        raise PredictionError(f"missing field {WINDOWS!r}")
    if not isinstance(windows, list):
        raise PredictionError(f"{WINDOWS} must be a list, got {type(windows).__name__}")
    for j, window in enumerate(windows):
        if not (isinstance(window, list) and len(window) == 3 and all(map(_is_number, window))):
            raise PredictionError(f"{WINDOWS}[{j}] must be [start, end, score], got {window!r}")
        start, end, score = window
        if not all(math.isfinite(x) for x in window):
            raise PredictionError(f"{WINDOWS}[{j}] {window!r} is not finite (NaN or inf)")
        if end < start:
            raise PredictionError(f"{WINDOWS}[{j}] {window!r} ends before it starts")


def _check_saliency(scores: Any) -> None:
    if not (isinstance(scores, list) and all(map(_is_number, scores))):
        raise PredictionError(f"{SALIENCY} must be a list of numbers")
    if not all(math.isfinite(x) for x in scores):
        raise PredictionError(f"{SALIENCY} holds a value that is not finite (NaN or inf)")


def _is_number(x: Any) -> bool:
    return isinstance(x, int | float) and not isinstance(x, bool)
