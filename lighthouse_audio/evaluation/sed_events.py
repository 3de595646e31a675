"""Event-based (collar) and segment-based SED scores of moment predictions, as sed_eval has them.

The frame metric of ``sed.py`` reproduces the AMR wrapper; these are the DCASE-style companions
of Mesaros et al. (2016), computed the way ``sed_eval`` 0.2.1 computes its *overall* (micro)
scores:

- **Event-based**: a reference and an estimated event of the same (clip, label) match when
  ``|onset difference| <= t_collar`` and ``|offset difference| <= max(t_collar,
  percentage_of_length * reference length)``; each event matches at most once and the number of
  matches is maximised (sed_eval's default ``event_matching_type="optimal"``).
  P = matches / estimated events, R = matches / reference events.
- **Segment-based**: each clip is cut into ``ceil(duration / segment_length)`` segments; a label
  is active in a segment that any of its events overlaps (onset floored, offset ceiled, as
  sed_eval's event roll). Micro P/R/F1 over all (segment, label) cells.

sed_eval itself is not a dependency: it imports ``dcase_util``, which needs ``pkg_resources``
(gone from setuptools >= 81) and librosa/numba at import time. ``tests/evaluation/
test_sed_events.py`` pins values sed_eval 0.2.1 produced and compares with sed_eval directly
whenever it is importable.

Conversion of jsonl lines to events (one event list per clip):

- Labels are the distinct reference queries (as in ``sed.py``); a clip's duration comes from its
  first reference line. Times are seconds (no frame-index quirk).
- A predicted window is an event candidate when ``score > threshold`` (strict, as ``sed.py``).
- Windows are clipped to ``[0, duration]``; those left empty (``end <= start``) are dropped.
- Overlapping or touching windows of one (clip, label) are merged into one event, on both sides:
  the OR of the frame metric. Without it, a model's overlapping top-k windows for the same
  moment would count as many false alarms.
- Scores are in percent with 2 decimals; an empty denominator gives 0 (sed_eval's
  ``empty_system_output_handling="zero_score"``, and the frame metric's ``zero_division=0``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.optimize import linear_sum_assignment

T_COLLAR = 0.2
"""Seconds of onset (and minimum offset) tolerance of the event-based score (DCASE's 200 ms)."""

PERCENTAGE_OF_LENGTH = 0.2
"""Offset tolerance as a fraction of the reference event's length (DCASE's 20 %)."""

SEGMENT_LENGTH = 1.0
"""Seconds per segment of the segment-based score."""


@dataclass(frozen=True)
class Event:
    """One sound event of a clip: ``label`` active from ``onset`` to ``offset`` (seconds)."""

    label: str
    onset: float
    offset: float


@dataclass
class EventLists:
    """Reference and estimated events per clip (``vid``), with the labels and clip durations."""

    labels: list[str]
    durations: dict[str, float]
    reference: dict[str, list[Event]]
    estimated: dict[str, list[Event]]


def _merge(label: str, windows: Sequence[tuple[float, float]], duration: float) -> list[Event]:
    """Clip to ``[0, duration]``, drop empty windows, merge overlapping or touching ones."""
    clipped = sorted(
        (max(0.0, float(s)), min(duration, float(e)))
        for s, e in windows
        if min(duration, float(e)) > max(0.0, float(s))
    )
    merged: list[list[float]] = []
    for start, end in clipped:
        if merged and start <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([start, end])
    return [Event(label, start, end) for start, end in merged]


def build_event_lists(
    ref_lines: Sequence[dict], pred_lines: Sequence[dict], threshold: float = 0.5
) -> EventLists:
    """Events per clip from reference and submission lines (conversion rules in the module doc).

    Raises:
        ValueError: a prediction names a clip or label the reference does not have.

    >>> ref = [{"query": "dog", "vid": "a", "duration": 10, "relevant_windows": [[1, 3]]}]
    >>> pred = [{"query": "dog", "vid": "a", "pred_relevant_windows": [[1, 2, .9], [2, 4, .8],
    ...                                                                [6, 12, .7], [0, 9, .1]]}]
    >>> lists = build_event_lists(ref, pred)
    >>> [(e.onset, e.offset) for e in lists.estimated["a"]]
    [(1.0, 4.0), (6.0, 10.0)]
    """
    labels: list[str] = []
    durations: dict[str, float] = {}
    ref_windows: dict[tuple[str, str], list] = {}
    for line in ref_lines:
        if line["query"] not in labels:
            labels.append(line["query"])
        durations.setdefault(line["vid"], float(line["duration"]))
        key = (line["vid"], line["query"])
        ref_windows.setdefault(key, []).extend((w[0], w[1]) for w in line["relevant_windows"])

    est_windows: dict[tuple[str, str], list] = {}
    for i, line in enumerate(pred_lines):
        if line["vid"] not in durations:
            raise ValueError(
                f"prediction line {i + 1}: vid {line['vid']!r} is not in the reference"
            )
        if line["query"] not in labels:
            raise ValueError(
                f"prediction line {i + 1}: query {line['query']!r} is not a reference label"
            )
        kept = [(w[0], w[1]) for w in line["pred_relevant_windows"] if w[2] > threshold]
        est_windows.setdefault((line["vid"], line["query"]), []).extend(kept)

    def per_clip(windows: dict[tuple[str, str], list]) -> dict[str, list[Event]]:
        events: dict[str, list[Event]] = {vid: [] for vid in durations}
        for (vid, label), spans in windows.items():
            events[vid].extend(_merge(label, spans, durations[vid]))
        return events

    return EventLists(labels, durations, per_clip(ref_windows), per_clip(est_windows))


def _scores(tp: int, n_ref: int, n_sys: int) -> dict[str, float]:
    precision = tp / n_sys if n_sys else 0.0
    recall = tp / n_ref if n_ref else 0.0
    f1 = 2 * tp / (n_ref + n_sys) if n_ref + n_sys else 0.0
    return {
        "precision": float(f"{100 * precision:.2f}"),
        "recall": float(f"{100 * recall:.2f}"),
        "f1": float(f"{100 * f1:.2f}"),
    }


def _max_matching(
    reference: list[Event], estimated: list[Event], t_collar: float, pol: float
) -> int:
    """Most reference/estimated pairs that can be matched one-to-one (sed_eval's "optimal")."""
    if not reference or not estimated:
        return 0
    ref = np.array([[e.onset, e.offset] for e in reference])  # [R, 2]
    est = np.array([[e.onset, e.offset] for e in estimated])  # [E, 2]
    onset_ok = np.abs(ref[:, :1] - est[None, :, 0]) <= t_collar
    offset_tolerance = np.maximum(t_collar, pol * (ref[:, 1] - ref[:, 0]))[:, None]
    offset_ok = np.abs(ref[:, 1:] - est[None, :, 1]) <= offset_tolerance
    hits = (onset_ok & offset_ok).astype(np.int64)  # [R, E]
    if not hits.any():
        return 0
    # A maximum-weight assignment on a 0/1 matrix is a maximum-cardinality matching.
    rows, cols = linear_sum_assignment(hits, maximize=True)
    return int(hits[rows, cols].sum())


def event_based_scores(
    events: EventLists,
    t_collar: float = T_COLLAR,
    percentage_of_length: float = PERCENTAGE_OF_LENGTH,
) -> dict[str, Any]:
    """Overall (micro) event-based P/R/F1 with onset/offset collars (see the module doc).

    Returns:
        ``{"t_collar", "percentage_of_length", "precision", "recall", "f1", "counts": {"tp",
        "fp", "fn", "n_ref", "n_sys"}}``; scores in percent, 2 decimals.
    """
    tp = n_ref = n_sys = 0
    for vid in events.durations:
        for label in events.labels:
            ref = [e for e in events.reference[vid] if e.label == label]
            est = [e for e in events.estimated[vid] if e.label == label]
            n_ref, n_sys = n_ref + len(ref), n_sys + len(est)
            tp += _max_matching(ref, est, t_collar, percentage_of_length)
    return {
        "t_collar": float(t_collar),
        "percentage_of_length": float(percentage_of_length),
        **_scores(tp, n_ref, n_sys),
        "counts": {"tp": tp, "fp": n_sys - tp, "fn": n_ref - tp, "n_ref": n_ref, "n_sys": n_sys},
    }


def _event_roll(
    clip_events: list[Event], label_index: Mapping[str, int], num_segments: int, seg: float
) -> np.ndarray:
    """[num_segments, num_labels] bool, sed_eval's ``event_list_to_event_roll`` cut to length."""
    roll = np.zeros((num_segments, len(label_index)), dtype=bool)
    for event in clip_events:
        onset = int(math.floor(event.onset / seg))
        offset = int(math.ceil(event.offset / seg))
        roll[onset:offset, label_index[event.label]] = True
    return roll


def segment_based_scores(
    events: EventLists, segment_length: float = SEGMENT_LENGTH
) -> dict[str, Any]:
    """Overall (micro) segment-based P/R/F1 over (segment, label) cells (see the module doc).

    Returns:
        ``{"segment_length", "precision", "recall", "f1", "counts": {"tp", "fp", "fn", "n_ref",
        "n_sys", "segments"}}``; scores in percent, 2 decimals.
    """
    if segment_length <= 0:
        raise ValueError(f"segment_length must be > 0, got {segment_length}")
    label_index = {label: i for i, label in enumerate(events.labels)}
    tp = n_ref = n_sys = segments = 0
    for vid, duration in events.durations.items():
        num_segments = int(math.ceil(duration / segment_length))
        ref = _event_roll(events.reference[vid], label_index, num_segments, segment_length)
        est = _event_roll(events.estimated[vid], label_index, num_segments, segment_length)
        tp += int(np.count_nonzero(ref & est))
        n_ref += int(np.count_nonzero(ref))
        n_sys += int(np.count_nonzero(est))
        segments += num_segments
    return {
        "segment_length": float(segment_length),
        **_scores(tp, n_ref, n_sys),
        "counts": {
            "tp": tp,
            "fp": n_sys - tp,
            "fn": n_ref - tp,
            "n_ref": n_ref,
            "n_sys": n_sys,
            "segments": segments,
        },
    }


def sed_event_scores(
    ref_lines: Sequence[dict],
    pred_lines: Sequence[dict],
    threshold: float = 0.5,
    t_collar: float = T_COLLAR,
    percentage_of_length: float = PERCENTAGE_OF_LENGTH,
    segment_length: float = SEGMENT_LENGTH,
) -> dict[str, dict[str, Any]]:
    """``{"event_based": ..., "segment_based": ...}`` of a submission at one threshold.

    >>> ref = [{"query": "dog", "vid": "a", "duration": 10, "relevant_windows": [[2, 6]]}]
    >>> pred = [{"query": "dog", "vid": "a", "pred_relevant_windows": [[2.1, 6.5, 0.9]]}]
    >>> r = sed_event_scores(ref, pred)
    >>> r["event_based"]["f1"], r["segment_based"]["counts"]["fp"]
    (100.0, 1)
    """
    events = build_event_lists(ref_lines, pred_lines, threshold)
    return {
        "event_based": event_based_scores(events, t_collar, percentage_of_length),
        "segment_based": segment_based_scores(events, segment_length),
    }
