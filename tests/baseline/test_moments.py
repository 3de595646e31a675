"""Similarity curve -> moments on hand-made curves (frames ``none``: frame i is [i, i+1] s)."""

import numpy as np
import pytest

from lighthouse_audio.baseline.moments import (
    binary_median_filter,
    frame_centres,
    similarity_to_moments,
)


def moments(sim, threshold=0.5, median=1, window=1.0, hop=1.0, frames="none", duration=None):
    sim = np.asarray(sim, dtype=np.float64)
    centres = frame_centres(len(sim), window, hop, frames)
    duration = len(sim) * hop if duration is None else duration
    return similarity_to_moments(sim, centres, hop, duration, threshold, median)


def test_threshold_is_inclusive():
    sim = [0.1, 0.5, 0.5 - 1e-9, 0.6, 0.2]
    assert moments(sim, threshold=0.5) == [[3.0, 4.0, 0.6], [1.0, 2.0, 0.5]]


def test_median_filter_removes_blip_and_fills_gap():
    sim = [0.9, 0.9, 0.1, 0.9, 0.9, 0.1, 0.1, 0.8, 0.1, 0.1]
    assert moments(sim, median=1) == [[0.0, 2.0, 0.9], [3.0, 5.0, 0.9], [7.0, 8.0, 0.8]]
    # Length 3: the gap at frame 2 is filled (its score counts in the mean), the blip at 7 goes.
    assert moments(sim, median=3) == [[0.0, 5.0, 0.74]]


def test_zero_padding_removes_a_blip_at_the_edge():
    assert moments([0.9, 0.1, 0.1, 0.1, 0.2], median=3) == [[0.0, 1.0, 0.9]]  # fallback only
    assert moments([0.9, 0.9, 0.1, 0.1, 0.1], median=3) == [[0.0, 2.0, 0.9]]


def test_runs_ranked_by_mean_similarity():
    sim = [0.6, 0.6, 0.0, 0.9, 0.0, 0.7, 0.8, 0.0]
    assert moments(sim) == [[3.0, 4.0, 0.9], [5.0, 7.0, 0.75], [0.0, 2.0, 0.6]]


def test_equal_scores_keep_time_order():
    assert moments([0.7, 0.0, 0.7, 0.0, 0.7]) == [[0.0, 1.0, 0.7], [2.0, 3.0, 0.7], [4.0, 5.0, 0.7]]


def test_no_frame_passes_falls_back_to_best_frame():
    assert moments([0.1, 0.3, 0.2, 0.3], threshold=0.9) == [[1.0, 2.0, 0.3]]


def test_center_frames_are_clipped_to_the_clip():
    # 4 s at 1 s hop, "center": 5 frames centred at 0..4 s; frame 0 is [-0.5, 0.5] -> [0, 0.5].
    sim = [0.9, 0.9, 0.0, 0.0, 0.8]
    assert moments(sim, frames="center", duration=4.0) == [[0.0, 1.5, 0.9], [3.5, 4.0, 0.8]]


def test_window_4s_frames_none():
    # Frame i covers [i, i + 4] s, centred at i + 2; it stands for [i + 1.5, i + 2.5].
    sim = [0.0, 0.8, 0.8, 0.0, 0.0, 0.0, 0.0]
    assert frame_centres(3, 4.0, 1.0, "none").tolist() == [2.0, 3.0, 4.0]
    assert moments(sim, window=4.0, duration=10.0) == [[2.5, 4.5, 0.8]]
    # The same curve as "center" frames with 4 s windows: centred at i, standing for [i +- 0.5].
    assert moments(sim, window=4.0, frames="center", duration=10.0) == [[0.5, 2.5, 0.8]]


def test_half_second_hop():
    sim = [0.0, 0.9, 0.9, 0.9, 0.0]
    # 1 s windows every 0.5 s, "none": frame i is centred at 0.5 i + 0.5 and stands for +-0.25 s.
    assert moments(sim, hop=0.5, duration=3.0) == [[0.75, 2.25, 0.9]]


@pytest.mark.parametrize("median", [0, 2, -1, 1.0, True])
def test_bad_median_length(median):
    with pytest.raises(ValueError, match="median length must be an odd integer"):
        moments([0.5, 0.6], median=median)


def test_bad_frames_convention_and_empty_curve():
    with pytest.raises(ValueError, match="frames must be one of"):
        frame_centres(3, 1.0, 1.0, "left")
    with pytest.raises(ValueError, match="non-empty 1-D"):
        similarity_to_moments(np.array([]), np.array([]), 1.0, 1.0, 0.5, 1)


@pytest.mark.filterwarnings("ignore:kernel_size exceeds volume extent")
def test_binary_median_filter_matches_scipy_medfilt():
    from scipy.signal import medfilt

    rng = np.random.default_rng(0)
    for size in (1, 2, 4, 9, 30):
        for length in (1, 3, 5, 11):
            mask = rng.random(size) < 0.5
            expected = medfilt(mask.astype(float), length) > 0.5
            np.testing.assert_array_equal(binary_median_filter(mask, length), expected)
