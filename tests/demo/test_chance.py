"""Chance level: random windows inside the recording, scored by the standalone evaluator."""

import numpy as np
import pytest

from lighthouse_audio.demo.chance import chance_metrics, random_window_predictions

GT = [
    {"qid": str(i), "duration": 30, "relevant_windows": [[s, s + 3]]}
    for i, s in enumerate(range(0, 27, 3))
]


@pytest.mark.parametrize("lengths", [None, [3.0, 50.0]])
def test_windows_inside_the_recording_sorted_by_score(lengths):
    preds = random_window_predictions(GT, np.random.default_rng(0), 10, lengths)
    assert [p["qid"] for p in preds] == [g["qid"] for g in GT]
    for p in preds:
        windows = np.asarray(p["pred_relevant_windows"])
        assert windows.shape == (10, 3)
        assert (windows[:, 0] >= 0).all() and (windows[:, 1] <= 30).all()
        assert (windows[:, 1] > windows[:, 0]).all()
        assert (np.diff(windows[:, 2]) <= 0).all()


def test_length_prior_beats_uniform_on_short_moments():
    uniform = chance_metrics(GT, seed=0, repeats=5)
    prior = chance_metrics(GT, seed=0, repeats=5, lengths=[3.0])
    assert prior["MR-full-mAP@0.5"] > uniform["MR-full-mAP@0.5"]
    assert chance_metrics(GT, seed=0, repeats=5) == uniform  # deterministic by seed


def test_bad_lengths_raise():
    with pytest.raises(ValueError, match="positive"):
        random_window_predictions(GT, np.random.default_rng(0), 10, [0.0])
