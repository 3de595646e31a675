"""Moment-annotated recordings as hard negatives for a joint space (``align --recordings``).

Captioned clips teach the heads which caption goes with which sound, but never ask them to tell a
query's sound from the *other* events of the same recording, which is where most wrong top
predictions land (docs/RESULTS.md). A moment-retrieval training split asks exactly that: for a
query, the frames inside its windows against every other frame of its recording. Those frames
also carry the recording's background mixed in, as the frames of a test recording do.

Each :class:`RecordingQuery` holds a recording's stored frames, the query's token states and which
frames lie inside its windows (frame centre within a window). Queries whose recording has no
frame inside, or no frame outside, teach nothing here and are skipped, as are queries whose
feature files are missing or unreadable (reported, one line each kind).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from lighthouse_audio.data.annotations import load_queries
from lighthouse_audio.data.feature_store import FeatureError
from lighthouse_audio.data.layout import AUDIO_KEY, TEXT_KEY, FeatureLayout

__all__ = ["RecordingQuery", "load_recording_queries"]


@dataclass(frozen=True)
class RecordingQuery:
    """``frames`` ``(L, audio_dim)`` and ``tokens`` ``(T, text_dim)`` as stored; ``inside``
    ``(L,)`` bool, True for the frames within the query's windows."""

    qid: str
    frames: np.ndarray
    tokens: np.ndarray
    inside: np.ndarray


def load_recording_queries(
    annotations: str | os.PathLike,
    features_root: str | os.PathLike,
    feature: str,
    log: Callable[[str], None] = print,
) -> list[RecordingQuery]:
    """The queries of ``annotations`` (Lighthouse JSONL with ``relevant_windows``) with the stored
    features under ``features_root`` (``{feature}/{vid}.npz``, ``{feature}_text/qid{qid}.npz``).

    A malformed annotation file raises its one-line :class:`AnnotationError`; missing or
    unreadable feature files and queries without inside/outside frames are skipped and
    reported through ``log``; no usable query at all is a ``ValueError``.
    """
    from lighthouse_audio.baseline.frames import load_raw, resolve_layout

    layout = FeatureLayout(Path(features_root), feature)
    frames_layout = resolve_layout(layout.audio_dir)
    queries = load_queries(annotations)
    frames_of: dict[str, np.ndarray] = {}
    found: list[RecordingQuery] = []
    unreadable: list[str] = []
    uninformative = 0
    for q in queries:
        try:
            if q.vid not in frames_of:
                frames_of[q.vid] = load_raw(layout.audio_path(q.vid), AUDIO_KEY)
            frames = frames_of[q.vid]
            tokens = load_raw(layout.text_path(q.qid), TEXT_KEY)
        except (FileNotFoundError, FeatureError) as e:
            unreadable.append(str(e).splitlines()[0])
            continue
        centres = frames_layout.centres(len(frames))
        inside = np.zeros(len(frames), dtype=bool)
        for start, end in q.relevant_windows or []:
            inside |= (centres >= start) & (centres <= end)
        if inside.all() or not inside.any():
            uninformative += 1
            continue
        found.append(RecordingQuery(str(q.qid), frames, tokens, inside))
    if unreadable:
        log(f"{annotations}: skipped {len(unreadable)} queries without usable features "
            f"(first: {unreadable[0]})")  # fmt: skip
    if uninformative:
        log(f"{annotations}: skipped {uninformative} queries whose windows cover no frame or "
            "every frame (nothing to contrast)")  # fmt: skip
    if not found:
        raise ValueError(f"{annotations}: no query with frames inside and outside its windows")
    return found
