"""Similarity curve -> ranked moments: the AMR paper's sliding-window post-processing.

One value per feature frame (cosine similarity of the frame's audio embedding with the query's
text embedding) becomes a list of ``[start, end, score]`` moments in seconds:

1. **Threshold.** A frame is positive when ``similarity >= threshold`` (inclusive).
2. **Median filter.** The binary sequence is median-filtered with an odd ``median_length``
   (frames), zero-padded at both ends as ``scipy.signal.medfilt`` does: a frame is positive when
   at least ``(median_length + 1) // 2`` of the frames around it are, so runs shorter than that
   vanish and gaps shorter than that are filled; beyond the clip counts as negative.
   ``median_length=1`` turns the filter off.
3. **Runs.** Each maximal run of positive frames is one moment; its score is the mean *raw*
   similarity over the run's frames (including gap frames the filter filled).
4. **Seconds.** Frame ``i`` stands for the hop-long segment centred on its window's centre,
   ``[c_i - hop/2, c_i + hop/2]``; a run of frames ``i..j`` is ``[c_i - hop/2, c_j + hop/2]``,
   clipped to ``[0, duration]``. Centres follow ``lighthouse_audio.audio.windows``: ``center``
   frames are centred at ``i * hop``, ``none`` frames at ``i * hop + window / 2``.
5. **Fallback.** When no frame survives, the single best frame (highest similarity, first on
   ties) is the only moment, scored by its similarity, so every query gets a ranked list (the
   evaluator's R1 needs at least one window).

Moments are sorted by descending score (ties: earlier start first); numbers are rounded to 4
decimals like Lighthouse's predictions.

>>> sim = np.array([0.1, 0.8, 0.9, 0.2, 0.7])
>>> similarity_to_moments(sim, frame_centres(5, 1.0, 1.0, "none"), 1.0, 5.0, 0.5, 1)
[[1.0, 3.0, 0.85], [4.0, 5.0, 0.7]]
"""

from __future__ import annotations

import numpy as np

from lighthouse_audio.audio.windows import FRAME_CONVENTIONS

__all__ = ["binary_median_filter", "binary_runs", "frame_centres", "similarity_to_moments"]


def frame_centres(num_frames: int, window: float, hop: float, frames: str) -> np.ndarray:
    """float64 ``(num_frames,)`` centre times (s) of stored frames, as cut by ``audio.windows``.

    ``frame_times`` there needs the signal's sample count; stored features only know their frame
    count, and a frame's centre does not depend on the sample rate (up to sample rounding).

    >>> frame_centres(3, 4.0, 1.0, "none").tolist()
    [2.0, 3.0, 4.0]
    """
    if frames not in FRAME_CONVENTIONS:
        raise ValueError(f"frames must be one of {FRAME_CONVENTIONS}, got {frames!r}")
    if window <= 0 or hop <= 0:
        raise ValueError(f"window and hop must be > 0 s, got window {window}, hop {hop}")
    offset = 0.0 if frames == "center" else window / 2
    return np.arange(num_frames, dtype=np.float64) * hop + offset


def binary_runs(mask: np.ndarray) -> np.ndarray:
    """int ``(R, 2)``: ``[first, last]`` frame index (inclusive) of each run of True values.

    >>> binary_runs(np.array([1, 1, 0, 1], dtype=bool)).tolist()
    [[0, 1], [3, 3]]
    """
    edges = np.diff(np.concatenate([[0], mask.astype(np.int8), [0]]))
    return np.stack([np.flatnonzero(edges == 1), np.flatnonzero(edges == -1) - 1], axis=1)


def similarity_to_moments(
    similarity: np.ndarray,
    centres: np.ndarray,
    hop: float,
    duration: float,
    threshold: float,
    median_length: int,
) -> list[list[float]]:
    """``[[start, end, score], ...]`` by descending score (see the module doc for each step).

    Args:
        similarity: ``(L,)`` one value per frame.
        centres: ``(L,)`` frame centre times in seconds (:func:`frame_centres`).
        hop: seconds between frame centres; each frame stands for ``hop`` seconds.
        duration: clip length in seconds; moments are clipped to ``[0, duration]``.
        threshold: a frame is positive when ``similarity >= threshold``.
        median_length: odd median-filter length in frames (1: no filter).
    """
    similarity = np.asarray(similarity, dtype=np.float64)
    if similarity.ndim != 1 or similarity.size == 0:
        raise ValueError(f"similarity must be a non-empty 1-D array, got {similarity.shape}")
    if centres.shape != similarity.shape:
        raise ValueError(f"centres {centres.shape} != similarity {similarity.shape}")
    check_median_length(median_length)
    mask = similarity >= threshold
    if median_length > 1:
        mask = binary_median_filter(mask, median_length)
    runs = binary_runs(mask)
    if len(runs) == 0:
        best = int(np.argmax(similarity))  # first on ties
        runs = np.array([[best, best]])
    starts = np.clip(centres[runs[:, 0]] - hop / 2, 0.0, duration)
    ends = np.clip(centres[runs[:, 1]] + hop / 2, 0.0, duration)
    cumulative = np.concatenate([[0.0], np.cumsum(similarity)])
    scores = (cumulative[runs[:, 1] + 1] - cumulative[runs[:, 0]]) / (runs[:, 1] - runs[:, 0] + 1)
    # A run can fall wholly outside the clip only through frames past its end (features longer
    # than the annotated duration); drop those, and if nothing is left keep the whole clip.
    keep = ends > starts
    moments = [
        [_round4(start), _round4(end), _round4(score)]
        for start, end, score in zip(starts[keep], ends[keep], scores[keep], strict=True)
    ]
    if not moments:
        moments = [[0.0, _round4(duration), _round4(similarity.max())]]
    moments.sort(key=lambda m: (-m[2], m[0]))
    return moments


def binary_median_filter(mask: np.ndarray, length: int) -> np.ndarray:
    """Median filter of a boolean sequence, zero-padded (``scipy.signal.medfilt``'s edges).

    For 0/1 values the median of an odd window is its majority, so a moving sum does the job at
    a fraction of a general median filter's cost (tuning runs it for every query and grid point).

    >>> binary_median_filter(np.array([0, 1, 0, 1, 1, 0, 0], dtype=bool), 3).astype(int).tolist()
    [0, 0, 1, 1, 1, 0, 0]
    """
    # "full" then the centred slice: "same" would return the kernel's length for short curves.
    counts = np.convolve(mask.astype(np.int32), np.ones(length, dtype=np.int32))
    half = length // 2
    return counts[half : half + len(mask)] > half


def check_median_length(median_length: int) -> None:
    if isinstance(median_length, bool) or not isinstance(median_length, (int, np.integer)):
        raise ValueError(f"median length must be an odd integer, got {median_length!r}")
    if median_length < 1 or median_length % 2 == 0:
        raise ValueError(f"median length must be an odd integer >= 1, got {median_length}")


def _round4(x: float) -> float:
    # Lighthouse rounds through string formatting (see models.postprocess).
    return float(f"{x:.4f}")
