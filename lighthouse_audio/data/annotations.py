"""Moment-retrieval annotations: one :class:`MomentQuery` per JSONL line, validated on load.

The files are Lighthouse's ``*_release.jsonl``::

    {"qid": "37612", "query": "someone splashes water", "duration": 60,
     "vid": "Wildlife_0.0_60.0", "relevant_windows": [[2.5, 27.5]], "fg_dB": -2.08}

Times are in seconds. ``qid`` keeps the type it has in the file (int for TUT2017 and UnAV-100,
str for Clotho-Moment and CASTELLA), because the text features are named ``qid{qid}.npz`` and the
evaluator matches predictions to ground truth by qid. Keys other than the five above (``fg_dB``)
are kept in ``extras`` so a load/save round trip loses nothing.

>>> q = MomentQuery.from_dict({"qid": 1, "query": "a dog barks", "duration": 10, "vid": "v",
...                            "relevant_windows": [[1.0, 2.5]], "fg_dB": -3.0})
>>> q.extras
{'fg_dB': -3.0}
>>> MomentQuery.from_dict(q.to_dict()) == q
True
"""

from __future__ import annotations

import math
import os
import warnings
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lighthouse_audio.file_io import empty_file_problem, iter_jsonl

Seconds = float

FIELDS = ("qid", "query", "duration", "vid", "relevant_windows")

# Absolute tolerance for window bounds: the files store times as decimal floats (37.1, 54.1), so
# a bound that is off by float rounding is not an annotation error.
TIME_SLACK = 1e-6


class AnnotationError(ValueError):
    """A malformed annotation line. ``load_queries`` prefixes the message with ``path:line:``."""


class AnnotationWarning(UserWarning):
    """Something Lighthouse accepts but that is probably an annotation mistake."""


@dataclass
class MomentQuery:
    """One text query about one audio clip, with its ground-truth moments in seconds."""

    qid: str | int
    query: str
    duration: Seconds
    vid: str
    relevant_windows: list[list[Seconds]] | None = None
    extras: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """The JSONL line (fresh lists, so callers may mutate the result)."""
        d: dict[str, Any] = {
            "qid": self.qid,
            "query": self.query,
            "duration": self.duration,
            "vid": self.vid,
        }
        if self.relevant_windows is not None:
            d["relevant_windows"] = [list(w) for w in self.relevant_windows]
        d.update(self.extras)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> MomentQuery:
        """Build from a JSONL line, validating it; raises :class:`AnnotationError`."""
        if not isinstance(d, dict):
            raise AnnotationError(f"expected a JSON object, got {type(d).__name__}")
        missing = [k for k in ("qid", "query", "duration", "vid") if k not in d]
        if missing:
            raise AnnotationError(
                f"missing field(s) {', '.join(missing)} (keys present: {', '.join(d) or 'none'})"
            )
        qid, query, duration, vid = d["qid"], d["query"], d["duration"], d["vid"]
        # bool is an int subclass; a qid or time of `true` is a broken file, not a number.
        if isinstance(qid, bool) or not isinstance(qid, (str, int)):
            raise AnnotationError(f"qid must be a string or an integer, got {qid!r}")
        if isinstance(qid, str) and not qid.strip():
            raise AnnotationError("qid is an empty string")
        if not isinstance(query, str):
            raise AnnotationError(f"query must be a string, got {type(query).__name__} {query!r}")
        if not query.strip():
            raise AnnotationError(f"query is empty for qid {qid!r}")
        if not _is_number(duration):
            raise AnnotationError(f"duration must be a number, got {duration!r}")
        if not (math.isfinite(duration) and duration > 0):
            raise AnnotationError(f"duration must be finite and > 0, got {duration!r}")
        if not isinstance(vid, str):
            raise AnnotationError(f"vid must be a string, got {type(vid).__name__} {vid!r}")
        if not vid.strip():
            raise AnnotationError("vid is an empty string")
        windows = d.get("relevant_windows")
        if windows is not None:
            windows = _check_windows(windows, duration)
        extras = {k: v for k, v in d.items() if k not in FIELDS}
        return cls(qid, query, duration, vid, windows, extras)


def _is_number(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool)


def _check_windows(windows: Any, duration: float) -> list[list[float]]:
    """Structural and bound checks. An end past ``duration`` is *not* an error here (see
    ``load_queries``): the released CASTELLA and UnAV-100 files contain such windows."""
    if not isinstance(windows, list):
        raise AnnotationError(
            f"relevant_windows must be a list of [start, end], got {type(windows).__name__}"
        )
    out = []
    for j, w in enumerate(windows):
        if not (isinstance(w, list) and len(w) == 2 and all(_is_number(t) for t in w)):
            raise AnnotationError(f"relevant_windows[{j}] must be [start, end] numbers, got {w!r}")
        start, end = w
        if not (math.isfinite(start) and math.isfinite(end)):
            raise AnnotationError(f"relevant_windows[{j}] {w!r} is not finite")
        if start < -TIME_SLACK:
            raise AnnotationError(f"relevant_windows[{j}] {w!r} starts before 0")
        if start > duration + TIME_SLACK:
            raise AnnotationError(
                f"relevant_windows[{j}] {w!r} starts after the end of the clip "
                f"(start {start} > duration {duration})"
            )
        if end <= start:
            raise AnnotationError(
                f"relevant_windows[{j}] {w!r} has end <= start ({end} <= {start})"
            )
        out.append([start, end])
    return out


def load_queries(
    path: str | os.PathLike,
    *,
    require_windows: bool = True,
    has_features: Callable[[str], bool] | None = None,
    end_tolerance: float | None = None,
) -> list[MomentQuery]:
    """Read and validate a Lighthouse JSONL annotation file.

    Every line is checked: JSON syntax, missing fields, wrong types, empty query, window bounds
    (start in [0, duration], end > start), duplicate qid, and, when ``has_features`` is given, that
    the clip's feature file exists (``has_features(vid)``). The first problem raises
    :class:`AnnotationError` with a one-line message ``"{path}:{lineno}: {problem}"``.

    Windows that end after ``duration`` are checked against ``end_tolerance`` (seconds). With the
    default ``None`` they are kept unchanged, as Lighthouse keeps them, and one
    :class:`AnnotationWarning` per file reports them: the released files have durations rounded
    down to whole seconds (CASTELLA ``[[296, 300]]`` with duration 299, UnAV-100 ``[[26, 48]]``
    with 46) and one CASTELLA train window ending at 4800 s. Pass a number to make an overshoot
    beyond it an error.

    Blank lines are skipped; line numbers still count them.
    """
    path = Path(path)
    queries: list[MomentQuery] = []
    first_line: dict[str | int, int] = {}
    feature_ok: dict[str, bool] = {}  # many queries share one clip; ask once per vid
    overshoots: list[tuple[int, float]] = []

    def fail(lineno: int, problem: str) -> AnnotationError:
        # one line even if a value carried a newline
        return AnnotationError(f"{path}:{lineno}: {problem}".replace("\n", "\\n"))

    if not path.is_file():
        raise AnnotationError(f"{path}: cannot open annotation file (no such file)")
    for lineno, d in iter_jsonl(path, error=AnnotationError, objects=False):
        try:
            q = MomentQuery.from_dict(d)
        except AnnotationError as e:
            raise fail(lineno, str(e)) from None
        if q.relevant_windows is None and require_windows:
            raise fail(lineno, f"missing field relevant_windows for qid {q.qid!r}")
        if require_windows and not q.relevant_windows:
            raise fail(lineno, f"relevant_windows is empty for qid {q.qid!r}")
        if q.qid in first_line:
            raise fail(lineno, f"duplicate qid {q.qid!r} (first on line {first_line[q.qid]})")
        first_line[q.qid] = lineno
        for w in q.relevant_windows or ():
            over = w[1] - q.duration
            if over <= TIME_SLACK:
                continue
            if end_tolerance is None:
                overshoots.append((lineno, over))
            elif over > end_tolerance + TIME_SLACK:
                raise fail(
                    lineno,
                    f"window {w!r} ends {over:g} s after the clip "
                    f"(end {w[1]} > duration {q.duration} + tolerance {end_tolerance})",
                )
        if has_features is not None:
            if q.vid not in feature_ok:
                feature_ok[q.vid] = bool(has_features(q.vid))
            if not feature_ok[q.vid]:
                raise fail(lineno, f"no feature file for vid {q.vid!r} (qid {q.qid!r})")
        queries.append(q)
    if not queries:
        raise AnnotationError(f"{path}: no annotations ({empty_file_problem(path)})")
    if overshoots:
        worst_line, worst = max(overshoots, key=lambda t: t[1])
        warnings.warn(
            f"{path}: {len(overshoots)} window(s) end after the clip duration, by up to "
            f"{worst:g} s (line {worst_line}); kept as-is, as Lighthouse does",
            AnnotationWarning,
            stacklevel=2,
        )
    return queries


def save_queries(queries: Iterable[MomentQuery], path: str | os.PathLike) -> None:
    """Write JSON Lines atomically (``file_io``): never a half-written manifest."""
    from lighthouse_audio.file_io import write_jsonl

    write_jsonl((q.to_dict() for q in queries), path, ensure_ascii=False)
