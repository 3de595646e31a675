"""Chunk plans, merging and stitching: invariants on hand-made cases."""

import numpy as np
import pytest

from lighthouse_audio.prediction.chunks import (
    Chunk,
    merge_chunk_moments,
    plan_chunks,
    stitch_frame_values,
    temporal_nms,
)


@pytest.mark.parametrize("num_frames", [1, 19, 20, 21, 37, 75, 76, 600, 3601])
@pytest.mark.parametrize("span,overlap", [(20, None), (20, 0), (20, 19), (75, 37)])
def test_plan_covers_each_frame_once_with_full_length_chunks(num_frames, span, overlap):
    chunks = plan_chunks(num_frames, span, overlap)
    if num_frames <= span:
        assert chunks == [Chunk(0, num_frames, 0, num_frames)]
        return
    assert chunks[0].start == 0 and chunks[-1].stop == num_frames
    assert all(c.num_frames == span for c in chunks)
    owners = np.zeros(num_frames, dtype=int)
    for c in chunks:
        assert c.start <= c.core_start < c.core_stop <= c.stop
        owners[c.core_start : c.core_stop] += 1
    assert (owners == 1).all()
    step = span - (span // 2 if overlap is None else overlap)
    assert all(b.start - a.start <= step for a, b in zip(chunks, chunks[1:], strict=False))


def test_no_span_or_bad_overlap():
    assert plan_chunks(10_000, None) == [Chunk(0, 10_000, 0, 10_000)]
    for bad in (-1, 20, 25):
        with pytest.raises(ValueError, match="overlap must be in"):
            plan_chunks(50, 20, bad)
    with pytest.raises(ValueError, match="0 frames"):
        plan_chunks(0, 20)


def test_nms_keeps_the_best_of_overlapping_moments_in_order():
    rows = [[0, 10, 0.5], [1, 10, 0.9], [20, 25, 0.7], [21, 25, 0.7], [40, 41, 0.1]]
    assert temporal_nms(rows, iou=0.5) == [[1, 10, 0.9], [20, 25, 0.7], [40, 41, 0.1]]
    assert temporal_nms(rows, iou=1.01) == sorted(rows, key=lambda r: -r[2])


def test_moment_across_a_border_is_kept_once_from_the_chunk_that_sees_it_whole():
    # 60 frames, span 20, overlap 10: chunks start 0, 10, 20, 30, 40; cores split overlaps.
    chunks = plan_chunks(60, 20, 10)
    assert [(c.start, c.core_start, c.core_stop) for c in chunks] == [
        (0, 0, 15), (10, 15, 25), (20, 25, 35), (30, 35, 45), (40, 45, 60),
    ]  # fmt: skip
    event = (17.0, 23.0)  # crosses chunk 0's end (20) and the 0/1 core border (15)
    per_chunk = [
        [[17.0, 20.0, 0.60], [2.0, 3.0, 0.05]],  # chunk 0: the event cut at its edge
        [[7.0, 13.0, 0.90]],  # chunk 1 (10-30 s): the whole event
        [[0.0, 3.0, 0.55]],  # chunk 2 (20-40 s): the event's tail at its start edge
        [],
        [[19.0, 20.0, 0.30]],  # last chunk owns the recording's end
    ]
    merged = merge_chunk_moments(per_chunk, chunks, clip_length=1.0, duration=59.5)
    assert merged == [[17.0, 23.0, 0.90], [59.0, 59.5, 0.30], [2.0, 3.0, 0.05]]
    assert [m for m in merged if m[0] < event[1] and m[1] > event[0]] == [[17.0, 23.0, 0.90]]


def test_merge_checks_its_inputs():
    with pytest.raises(ValueError, match="2 prediction lists for 1 chunks"):
        merge_chunk_moments([[], []], [Chunk(0, 5, 0, 5)], 1.0, 5.0)


def test_saliency_comes_from_the_owning_chunk():
    chunks = plan_chunks(10, span=6, overlap=3)
    scores = [np.full(6, float(i)) for i in range(len(chunks))]
    stitched = stitch_frame_values(scores, chunks)
    np.testing.assert_array_equal(stitched, [0, 0, 0, 0, 0, 1, 1, 2, 2, 2])
    with pytest.raises(ValueError, match="3 values for a chunk of 6 frames"):
        stitch_frame_values([np.zeros(3)] * 3, chunks)
