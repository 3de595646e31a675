"""What `lighthouse predict`, its JSON lines, pictures and the browser show of a prediction."""

from lighthouse_audio.prediction.formatting import format_recording, select_moments

# Lighthouse's post-processing rounds bounds to whole frames, so a window shorter than half a
# frame comes out with start == end (66.0 - 66.0).
WINDOWS = [[10.0, 11.0, 0.9], [66.0, 66.0, 0.8], [65.0, 67.0, 0.7], [3.0, 5.0, 0.2]]


def test_windows_of_no_length_are_not_moments():
    assert select_moments(WINDOWS) == [[10.0, 11.0, 0.9], [65.0, 67.0, 0.7], [3.0, 5.0, 0.2]]


def test_top_k_counts_only_real_moments_and_min_score_still_applies():
    assert select_moments(WINDOWS, top_k=2) == [[10.0, 11.0, 0.9], [65.0, 67.0, 0.7]]
    assert select_moments(WINDOWS, top_k=5, min_score=0.5) == [[10.0, 11.0, 0.9],
                                                               [65.0, 67.0, 0.7]]  # fmt: skip


def test_the_table_never_shows_an_empty_window():
    result = {"query": "a cow moos", "pred_relevant_windows": WINDOWS}
    table = format_recording("rec.wav", 85.0, [result], 3, 0.0)
    assert "00:01:06.0 - 00:01:06.0" not in table
    assert "00:01:05.0 - 00:01:07.0" in table and "00:00:03.0 - 00:00:05.0" in table
