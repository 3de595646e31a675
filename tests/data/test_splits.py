"""Splits by recording: every recording in exactly one split, deterministic by seed."""

import pytest

from lighthouse_audio.data.splits import SPLITS, split_by_recording

KEYS = [f"fg/clip_{i:03d}.flac" for i in range(50)]


def split(items, seed=0, **kwargs):
    return split_by_recording(items, (0.7, 0.1, 0.2), seed, key=str, **kwargs)


def test_every_recording_in_exactly_one_split():
    parts = split(KEYS)
    assigned = [k for s in SPLITS for k in parts[s]]
    assert sorted(assigned) == sorted(KEYS)
    assert len(set(assigned)) == len(assigned)
    assert [len(parts[s]) for s in SPLITS] == [35, 5, 10]


def test_deterministic_by_seed_and_independent_of_input_order():
    assert split(KEYS, seed=3) == split(list(reversed(KEYS)), seed=3)
    assert split(KEYS, seed=3) != split(KEYS, seed=4)


def test_no_split_is_empty_even_with_tiny_fractions():
    parts = split_by_recording(list("abc"), (0.98, 0.01, 0.01), seed=0, key=str)
    assert all(len(parts[s]) == 1 for s in SPLITS)


def test_weights_balance_audio_not_files():
    durations = {"long": 150.0, "a": 10.0, "b": 10.0, "c": 10.0, "d": 10.0, "e": 10.0}
    parts = split_by_recording(
        list(durations), (0.5, 0.25, 0.25), seed=1, key=str, weight=durations.get, tries=50
    )
    totals = {s: sum(durations[k] for k in parts[s]) for s in SPLITS}
    # the long recording goes to the largest share; the short ones fill the others
    assert "long" in parts["train"]
    assert totals["val"] >= 10 and totals["test"] >= 10


def test_more_tries_never_worse():
    weights = {"w1": 124.0, "w2": 85.0, "w3": 77.0, "w4": 11.0, "w5": 4.0}
    shares = (160, 30, 50)

    def worst_ratio(parts):
        total = sum(weights.values())
        return min(
            sum(weights[k] for k in parts[s]) / (total * share / sum(shares))
            for s, share in zip(SPLITS, shares, strict=True)
        )

    one = split_by_recording(list(weights), shares, 0, key=str, weight=weights.get)
    many = split_by_recording(list(weights), shares, 0, key=str, weight=weights.get, tries=200)
    assert worst_ratio(many) >= worst_ratio(one)
    # the best split of these five: train gets the longest plus the two shortest
    assert sorted(many["train"]) == ["w1", "w4", "w5"]


@pytest.mark.parametrize(
    "items, fractions, match",
    [
        (list("ab"), (0.7, 0.1, 0.2), "cannot fill 3 splits"),
        (list("abcd"), (0.5, 0.5), "2 fractions for 3 splits"),
        (list("abcd"), (0.7, 0.0, 0.3), "must be > 0"),
        (["a", "a", "b"], (0.7, 0.1, 0.2), "share the key 'a'"),
    ],
)
def test_bad_input_raises(items, fractions, match):
    with pytest.raises(ValueError, match=match):
        split_by_recording(items, fractions, 0, key=str)
