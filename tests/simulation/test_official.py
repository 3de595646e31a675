"""The official recipes against the released annotations and against Algorithm 1's model.

Each foreground of ``recipe_{valid,test}.json`` must be exactly one line of
``clotho_moment_{val,test}_release.jsonl`` (caption, vid, window from start_time/duration,
fg_dB); and the recipes' placements must be what our reading of the generator predicts
(exponential gaps of mean 30 s once censoring is accounted for, gains in range, no overlap).
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from scipy import stats

from lighthouse_audio.simulation.recipe import load_recipes
from lighthouse_audio.simulation.sampler import SimulationConfig

from .conftest import ANNOTATIONS_DIR, RECIPES_DIR, SPLITS, need

CONFIG = SimulationConfig()


@pytest.fixture(scope="module", params=sorted(SPLITS))
def split(request):
    recipes = load_recipes(need(RECIPES_DIR / f"recipe_{request.param}.json"))
    ann_path = need(ANNOTATIONS_DIR / f"clotho_moment_{SPLITS[request.param]}_release.jsonl")
    lines = ann_path.read_text().splitlines()
    fg_index = json.loads(need(RECIPES_DIR / f"fg_{request.param}.json").read_text())
    return request.param, recipes, lines, fg_index


def test_config_defaults_are_the_official_config():
    assert SimulationConfig.from_yaml(need(RECIPES_DIR / "config.yaml")) == SimulationConfig()


def test_every_recipe_query_is_a_released_line(split):
    name, recipes, lines, _ = split
    released = [json.loads(line) for line in lines]
    by_key = {(a["vid"], a["query"]): a for a in released}
    assert len(by_key) == len(released)  # (vid, caption) identifies a line
    ours = [q for r in recipes for q in r.queries(duration=60)]
    assert len(ours) == len(released)
    for q in ours:
        a = by_key[(q["vid"], q["query"])]
        assert a["relevant_windows"] == q["relevant_windows"]  # exact floats
        assert a["fg_dB"] == q["fg_dB"] and a["duration"] == q["duration"]
    if name == "valid":
        # Validation qids were not renumbered: the lines are identical, byte for byte, in order.
        assert [json.dumps(q) for q in ours] == lines


def test_recipe_names_are_background_clip_names(split):
    _, recipes, _, _ = split
    for r in recipes:
        folder, file = r.bg.path.split("/")[-2:]
        assert r.name == f"{folder}_{file.removesuffix('.wav')}"


def test_placements_follow_algorithm_1(split):
    _, recipes, _, fg_index = split
    durations = {v["clip"]: v["duration"] for v in fg_index.values()}
    qids = [f.qid for r in recipes for f in r.fg]
    assert qids == list(range(qids[0], qids[0] + len(qids)))  # one running counter
    for r in recipes:
        end = 0.0
        for f in r.fg:
            assert f.start_time >= end  # sorted, no overlap
            assert f.duration == durations[f.path]  # trimmed whole seconds
            end = f.end_time
        assert end <= CONFIG.clip_length
        assert len({f.path for f in r.fg}) == len(r.fg)  # each foreground once per clip
    bg_db = np.array([r.bg.db for r in recipes])
    fg_db = np.array([f.db for r in recipes for f in r.fg])
    assert -25 <= bg_db.min() and bg_db.max() <= -15 and -5 <= fg_db.min() and fg_db.max() <= 5
    assert stats.kstest(bg_db, stats.uniform(-25, 10).cdf).pvalue > 1e-3
    assert stats.kstest(fg_db, stats.uniform(-5, 10).cdf).pvalue > 1e-3


def test_gaps_are_exponential_with_mean_30_once_censoring_is_modelled(split):
    """Observed gaps average ~14 s, not 30: only gaps that let the clip fit are kept, and the
    last draw of every clip is censored. The censored maximum-likelihood mean is ~30 s."""
    _, recipes, _, fg_index = split
    gaps, remaining = [], []
    for r in recipes:
        t = 0.0
        for f in r.fg:
            gaps.append(f.start_time - t)
            t = f.end_time
        remaining.append(CONFIG.clip_length - t)
    gaps, remaining = np.array(gaps), np.array(remaining)
    assert gaps.mean() < 0.6 * CONFIG.avg_interval  # the naive estimate is badly biased
    # The rejected draw g of each clip satisfies g > remaining - D, D the duration of the
    # (unknown) foreground drawn next: average its survival over the index's durations.
    durations, counts = np.unique([v["duration"] for v in fg_index.values()], return_counts=True)
    censor = np.maximum(remaining[:, None] - durations[None, :], 0.0)
    weights = counts / counts.sum()
    mus = np.linspace(20, 40, 201)
    loglik = [
        -len(gaps) * np.log(mu) - gaps.sum() / mu + np.log(np.exp(-censor / mu) @ weights).sum()
        for mu in mus
    ]
    mle = mus[int(np.argmax(loglik))]
    assert abs(mle - CONFIG.avg_interval) < 4 * CONFIG.avg_interval / np.sqrt(len(gaps))
