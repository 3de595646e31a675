"""Algorithm 1 on many simulated clips: placements, gaps, gains, qids, reproducibility."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from scipy import stats

from lighthouse_audio.simulation.sampler import (
    BackgroundClip,
    ForegroundClip,
    SimulationConfig,
    sample_events,
    sample_recipes,
)

CONFIG = SimulationConfig()
T = 60.0


def _foregrounds(durations) -> list[ForegroundClip]:
    return [
        ForegroundClip(f"fg/{i}.wav", (f"sound {i} a", f"sound {i} b"), float(d))
        for i, d in enumerate(durations)
    ]


def _backgrounds(n: int) -> list[BackgroundClip]:
    return [BackgroundClip(f"bg_{i}.0_{i + 60}.0", f"bg/{i}.wav", T) for i in range(n)]


@pytest.fixture(scope="module")
def simulated():
    rng = np.random.default_rng(1234)
    fgs = _foregrounds(rng.integers(1, 31, size=200))  # Clotho-like: 1-30 whole seconds
    return fgs, sample_recipes(_backgrounds(4000), fgs, CONFIG, np.random.default_rng(0))


def test_windows_are_the_placed_clips_and_never_overlap(simulated):
    fgs, recipes = simulated
    captions = {f.path: f.captions for f in fgs}
    durations = {f.path: f.duration for f in fgs}
    for r in recipes:
        end = 0.0
        assert len({f.path for f in r.fg}) == len(r.fg)
        for f, query in zip(r.fg, r.queries(60), strict=True):
            assert f.start_time >= end and f.duration == durations[f.path]
            assert f.caption in captions[f.path]
            assert query["relevant_windows"] == [[round(f.start_time, 1), round(f.end_time, 1)]]
            assert 0 <= query["relevant_windows"][0][0] < query["relevant_windows"][0][1] <= 60
            end = f.end_time
        assert end <= T


def test_qids_run_on_across_clips(simulated):
    _, recipes = simulated
    qids = [f.qid for r in recipes for f in r.fg]
    assert qids == list(range(len(qids)))
    assert sum(not r.fg for r in recipes) > 0  # empty clips happen, as in the official data


def test_gains_are_uniform_in_range(simulated):
    _, recipes = simulated
    bg = np.array([r.bg.db for r in recipes])
    fg = np.array([f.db for r in recipes for f in r.fg])
    assert -25 <= bg.min() and bg.max() <= -15 and -5 <= fg.min() and fg.max() <= 5
    assert stats.kstest(bg, stats.uniform(-25, 10).cdf).pvalue > 1e-3
    assert stats.kstest(fg, stats.uniform(-5, 10).cdf).pvalue > 1e-3


def test_gap_draws_have_mean_30_s():
    """With one fixed duration D the censoring bound of each clip's rejected draw is known
    (g > T - last_end - D), so the censored MLE of the mean is exact: sum of kept gaps plus
    censoring bounds, over the number of kept gaps. The kept gaps alone average far less."""
    d = 5.0
    fgs = _foregrounds([d] * 50)
    rng = np.random.default_rng(7)
    kept, bounds = [], []
    for _ in range(6000):
        t = 0.0
        for e in sample_events(rng, fgs, T, CONFIG):
            kept.append(e.start_time - t)
            t = e.end_time
        bounds.append(max(T - t - d, 0.0))
    kept = np.array(kept)
    mle = (kept.sum() + sum(bounds)) / len(kept)
    assert abs(mle - 30.0) < 4 * 30.0 / np.sqrt(len(kept))
    assert kept.mean() < 20.0
    assert stats.kstest(kept, stats.expon(scale=30).cdf).pvalue < 1e-6  # truncated, not Exp(30)


def test_short_clips_make_a_poisson_process():
    """Durations ~0: placements form a Poisson process of rate 1/30 s, so the count per 60 s
    clip is Poisson(2) (mean = variance = 2)."""
    fgs = _foregrounds([1e-6] * 50)
    rng = np.random.default_rng(3)
    counts = np.array([len(sample_events(rng, fgs, T, CONFIG)) for _ in range(5000)])
    assert abs(counts.mean() - 2.0) < 0.1 and abs(counts.var() - 2.0) < 0.2


def test_every_foreground_is_used_at_most_once_and_can_run_out():
    config = dataclasses.replace(CONFIG, avg_interval=0.1)
    events = sample_events(np.random.default_rng(0), _foregrounds([1, 1, 1]), T, config)
    assert len(events) == 3  # the loop ends with the list, not at the clip's end


def test_a_foreground_that_cannot_fit_ends_the_clip():
    # Official semantics: an overrun stops the clip (it does not try the next foreground).
    fgs = _foregrounds([61.0] * 5)
    assert sample_events(np.random.default_rng(0), fgs, T, CONFIG) == []


def test_seeded_and_reproducible():
    fgs = _foregrounds(range(1, 21))
    a = sample_recipes(_backgrounds(50), fgs, CONFIG, np.random.default_rng(5), first_qid=100)
    b = sample_recipes(_backgrounds(50), fgs, CONFIG, np.random.default_rng(5), first_qid=100)
    c = sample_recipes(_backgrounds(50), fgs, CONFIG, np.random.default_rng(6), first_qid=100)
    assert a == b and a != c
    assert next(f.qid for r in a for f in r.fg) == 100


def test_config_validation_and_official_keys():
    cfg = SimulationConfig.from_dict({"sr": 16000, "clip_duration": 30, "save_dir": "x"})
    assert (cfg.sample_rate, cfg.clip_length) == (16000, 30)
    with pytest.raises(ValueError, match="unknown key.*avg_intervall"):
        SimulationConfig.from_dict({"avg_intervall": 3})
    with pytest.raises(ValueError, match="avg_interval must be > 0"):
        SimulationConfig(avg_interval=0)
    with pytest.raises(ValueError, match="no foreground"):
        sample_recipes(_backgrounds(1), [], CONFIG, np.random.default_rng(0))


def test_repeated_sounds_make_two_window_queries():
    config = dataclasses.replace(CONFIG, avg_interval=4.0, repeat_prob=0.5)
    fgs = _foregrounds(np.random.default_rng(3).integers(1, 4, size=100))
    recipes = sample_recipes(_backgrounds(500), fgs, config, np.random.default_rng(0))
    queries = [q for r in recipes for q in r.queries(60)]
    two = [q for q in queries if len(q["relevant_windows"]) == 2]
    assert not any(len(q["relevant_windows"]) > 2 for q in queries)
    # each placement is repeated with p = 0.5 unless the repeat overruns the clip
    assert 0.35 < len(two) / len(queries) < 0.5
    assert [int(q["qid"]) for q in queries] == list(range(len(queries)))  # one qid per query
    for r in recipes:
        end = 0.0
        for f in r.fg:  # still in time order and never overlapping
            assert f.start_time >= end
            end = f.end_time
        by_qid = {}
        for f in r.fg:
            by_qid.setdefault(f.qid, []).append(f)
        for events in by_qid.values():  # the same sound and caption, each with its own gain
            assert len({(e.path, e.caption) for e in events}) == 1
    first, second = two[0]["relevant_windows"]
    assert first[1] <= second[0]


def test_repeat_prob_is_checked():
    # (repeat_prob 0, the default, draws nothing extra: test_official.py checks the recipes)
    with pytest.raises(ValueError, match="repeat_prob must be in"):
        SimulationConfig(repeat_prob=1.5)
    assert SimulationConfig.from_dict({"repeat_prob": 0.2}).repeat_prob == 0.2
