"""Recordings longer than a model's span: overlapping chunks, and merging their moments back.

A model reads at most ``span`` frames (``min(max_v_l, max_a_l)``; 75 s for Clotho-Moment's
QD-DETR). A longer recording is cut into chunks of exactly ``span`` frames, each ``stride`` frames
after the last (``span - overlap``), the final one aligned to the recording's end so every chunk
has the length the model was trained on.

Each chunk *owns* a core: the frames for which it is the most central chunk (overlaps are split
at their middle; the first and last chunks own the recording's ends). Merging then:

1. keeps a chunk's moments whose centre lies in its core (a moment cut off at a chunk's edge is
   seen whole, and owned, by its neighbour when it is at most ``overlap`` frames long);
2. maps them to absolute time (chunk start + moment) and clips them to the recording;
3. removes duplicates with score-aware temporal NMS: best first, a moment overlapping an already
   kept one by IoU >= ``nms_iou`` is dropped;
4. returns them best first.

Per-frame values (saliency, the joint prior's similarity) are stitched the same way: each frame
takes the value from the chunk that owns it.

>>> [(c.start, c.stop, c.core_start, c.core_stop) for c in plan_chunks(10, span=6, overlap=3)]
[(0, 6, 0, 5), (3, 9, 5, 7), (4, 10, 7, 10)]
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

DEFAULT_NMS_IOU = 0.5


@dataclass(frozen=True)
class Chunk:
    """Frames ``[start, stop)`` of a recording, owning frames ``[core_start, core_stop)``."""

    start: int
    stop: int
    core_start: int
    core_stop: int

    @property
    def num_frames(self) -> int:
        return self.stop - self.start


def default_overlap(span: int) -> int:
    """Half a chunk: any moment up to half the model's span is seen whole by some chunk."""
    return span // 2


def plan_chunks(num_frames: int, span: int | None, overlap: int | None = None) -> list[Chunk]:
    """Chunks covering ``num_frames``; one chunk (the whole recording) when it fits the span."""
    if num_frames <= 0:
        raise ValueError(f"cannot chunk a recording of {num_frames} frames")
    if span is None or num_frames <= span:
        return [Chunk(0, num_frames, 0, num_frames)]
    overlap = default_overlap(span) if overlap is None else overlap
    if not 0 <= overlap < span:
        raise ValueError(f"overlap must be in [0, {span}) frames, got {overlap}")
    stride = span - overlap
    starts = list(range(0, num_frames - span, stride)) + [num_frames - span]
    chunks = []
    for i, start in enumerate(starts):
        stop = start + span
        core_start = 0 if i == 0 else (start + chunks[-1].stop + 1) // 2
        if i > 0:  # the previous chunk's core ends where this one's begins
            prev = chunks[-1]
            chunks[-1] = Chunk(prev.start, prev.stop, prev.core_start, core_start)
        chunks.append(Chunk(start, stop, core_start, num_frames))
    return chunks


def temporal_iou(a: Sequence[float], b: Sequence[float]) -> float:
    """IoU of two ``[start, end]`` intervals (0 when either is empty)."""
    inter = max(0.0, min(a[1], b[1]) - max(a[0], b[0]))
    union = max(a[1], b[1]) - min(a[0], b[0])
    return inter / union if union > 0 else 0.0


def temporal_nms(
    rows: Sequence[Sequence[float]], iou: float = DEFAULT_NMS_IOU
) -> list[list[float]]:
    """``[start, end, score]`` rows, best first, without any overlapping a better one by >= iou.

    Ties in score keep their input order (a stable sort), so the result is deterministic.
    """
    kept: list[list[float]] = []
    for row in sorted(rows, key=lambda r: r[2], reverse=True):
        if all(temporal_iou(row, k) < iou for k in kept):
            kept.append(list(row))
    return kept


def merge_chunk_moments(
    chunk_rows: Sequence[Sequence[Sequence[float]]],
    chunks: Sequence[Chunk],
    clip_length: float,
    duration: float,
    nms_iou: float = DEFAULT_NMS_IOU,
) -> list[list[float]]:
    """Per-chunk ``[start, end, score]`` rows (seconds from the chunk's start) -> one ranked list
    in seconds from the recording's start (steps 1-4 of the module doc)."""
    if len(chunk_rows) != len(chunks):
        raise ValueError(f"{len(chunk_rows)} prediction lists for {len(chunks)} chunks")
    owned: list[list[float]] = []
    for rows, chunk in zip(chunk_rows, chunks, strict=True):
        offset = chunk.start * clip_length
        core = (chunk.core_start * clip_length, chunk.core_stop * clip_length)
        last = chunk.core_stop == chunks[-1].core_stop
        for start, end, score in rows:
            start, end = start + offset, end + offset
            centre = (start + end) / 2
            inside = core[0] <= centre < core[1] or (last and centre >= core[1])
            if not inside:
                continue
            start, end = min(max(start, 0.0), duration), min(max(end, 0.0), duration)
            owned.append([start, end, score])
    return temporal_nms(owned, nms_iou)


def stitch_frame_values(
    chunk_scores: Sequence[Sequence[float]], chunks: Sequence[Chunk]
) -> np.ndarray:
    """One value per frame of the recording (saliency, prior similarity), each from the chunk
    owning the frame."""
    total = chunks[-1].stop
    out = np.empty(total, dtype=np.float32)
    for scores, chunk in zip(chunk_scores, chunks, strict=True):
        if len(scores) < chunk.num_frames:
            raise ValueError(f"{len(scores)} values for a chunk of {chunk.num_frames} frames")
        lo, hi = chunk.core_start - chunk.start, chunk.core_stop - chunk.start
        out[chunk.core_start : chunk.core_stop] = np.asarray(scores[lo:hi], dtype=np.float32)
    return out
