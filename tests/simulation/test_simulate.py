"""``simulate_dataset`` on synthetic corpora: bad inputs are skipped with one line each."""

from __future__ import annotations

import json

import numpy as np
import pytest

from lighthouse_audio.data.annotations import load_queries
from lighthouse_audio.simulation.recipe import load_recipes
from lighthouse_audio.simulation.render import staging_dir
from lighthouse_audio.simulation.sampler import SimulationConfig
from lighthouse_audio.simulation.simulate import simulate_dataset

from .conftest import SR, write_noise

CONFIG = SimulationConfig(sample_rate=SR, clip_length=10, avg_interval=2)


@pytest.fixture
def corpus(tmp_path):
    fg = tmp_path / "fg"
    for i in range(4):
        write_noise(fg / f"ok{i}.wav", 2.0, amplitude=0.5, seed=i)
    write_noise(fg / "silent.wav", 2.0, amplitude=0.0)
    write_noise(fg / "short.wav", 0.5)
    write_noise(fg / "long.wav", 12.0)
    (fg / "text.wav").write_text("not audio")
    names = [f"ok{i}" for i in range(4)] + ["silent", "short", "long", "text", "missing"]
    (tmp_path / "fg.jsonl").write_text(
        "".join(json.dumps({"path": f"fg/{n}.wav", "caption": f"sound {n}"}) + "\n" for n in names)
    )
    bg = tmp_path / "bg"
    write_noise(bg / "street.flac", 13.0, seed=9)  # 4 windows of 10 s
    write_noise(bg / "tiny.wav", 5.0)  # shorter than a clip
    write_noise(bg / "quiet.wav", 11.0, amplitude=0.0)  # 2 silent windows
    (bg / "broken.wav").write_text("not audio")
    return tmp_path


def test_simulate_skips_bad_inputs_with_one_line_each(corpus):
    lines = []
    out = corpus / "out"
    report = simulate_dataset(
        corpus / "fg.jsonl", corpus / "bg", out, CONFIG, seed=1, progress=False, log=lines.append
    )
    text = "\n".join(lines)
    for problem in (
        "silent.wav: silent",
        "short.wav: shorter than 1 s",
        "long.wav: 12 s after",
        "text.wav: not a readable audio",
        "missing.wav: no such file",
        "tiny.wav: shorter than 10 s",
        "quiet.wav: 2 silent window",
        "broken.wav: not a readable audio",
    ):
        assert problem in text, problem
    assert len(lines) == 8
    recipes = load_recipes(out / "recipes.json")
    assert [r.name for r in recipes] == [f"street_{k}.0_{k + 10}.0" for k in range(4)]
    assert {f.path for r in recipes for f in r.fg} <= {
        f"sources/fg/fg__ok{i}.flac" for i in range(4)
    }
    assert report.num_queries == len(load_queries(out / "annotations.jsonl")) > 0
    assert json.loads((out / "simulation.json").read_text())["seed"] == 1


def test_simulate_resumes_and_refuses_other_settings(corpus):
    out = corpus / "out"
    staging = staging_dir(out)
    quiet = {"progress": False, "log": lambda _: None}
    # An interrupted run: staging exists with its settings; another seed must not mix in.
    with pytest.raises(ValueError, match="no background window"):
        simulate_dataset(
            corpus / "fg.jsonl",
            corpus / "bg",
            out,
            SimulationConfig(sample_rate=SR, clip_length=60),
            **quiet,
        )
    assert staging.exists()
    with pytest.raises(ValueError, match="other inputs or settings"):
        simulate_dataset(corpus / "fg.jsonl", corpus / "bg", out, CONFIG, **quiet)
    (staging / "simulation.json").unlink()
    with pytest.raises(ValueError, match="other inputs or settings"):
        simulate_dataset(corpus / "fg.jsonl", corpus / "bg", out, CONFIG, **quiet)


def test_n_chooses_a_seeded_subset(corpus):
    quiet = {"progress": False, "log": lambda _: None}
    a = simulate_dataset(
        corpus / "fg.jsonl", corpus / "bg", corpus / "a", CONFIG, n=2, seed=5, **quiet
    )
    assert a.num_recipes == 2
    simulate_dataset(corpus / "fg.jsonl", corpus / "bg", corpus / "b", CONFIG, n=2, seed=5, **quiet)
    assert (corpus / "a" / "recipes.json").read_text() == (
        corpus / "b" / "recipes.json"
    ).read_text()


def test_audible_windows_match_a_brute_force_scan():
    from lighthouse_audio.simulation.preprocess import background_windows
    from lighthouse_audio.simulation.simulate import _audible

    rng = np.random.default_rng(0)
    for _ in range(50):
        signal = np.zeros(int(rng.integers(300, 700)), dtype=np.float32)
        signal[rng.integers(0, len(signal), size=int(rng.integers(0, 3)))] = 0.5
        windows = background_windows(len(signal), 10, clip_length=17.3, hop=0.7)
        expected = [w for w in windows if np.any(signal[w.start_sample : w.end_sample])]
        assert _audible(signal, windows, block=10) == expected
