"""Mixing (levels, normalisation), rendering one recipe, and datasets (staging, skips, resume)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile as sf

from lighthouse_audio.data.annotations import load_queries
from lighthouse_audio.simulation.recipe import (
    Background,
    ForegroundEvent,
    Recipe,
    load_recipes,
    save_recipes,
)
from lighthouse_audio.simulation.render import (
    RenderError,
    mix,
    render_dataset,
    render_recipe,
    staging_dir,
)

from .conftest import ANNOTATIONS_DIR, RECIPES_DIR, SR, need, write_noise


def _power(x: np.ndarray) -> float:
    return float(np.mean(np.asarray(x, dtype=np.float64) ** 2))


def test_mixture_is_peak_normalised():
    rng = np.random.default_rng(0)
    bg = 0.01 * rng.standard_normal(10 * SR)
    out = mix(bg, [(rng.standard_normal(2 * SR), 3.0, 4.0)], -20.0, SR)
    assert out.dtype == np.float32 and np.max(np.abs(out)) == pytest.approx(1.0, abs=1e-7)


@pytest.mark.parametrize("fg_db, bg_db", [(-5.0, -25.0), (0.0, -20.0), (4.5, -15.0)])
def test_levels_follow_the_db_formulas(fg_db, bg_db):
    rng = np.random.default_rng(1)
    bg = 0.05 * rng.standard_normal(10 * SR)
    square = np.where(np.arange(2 * SR) % 2, 0.3, -0.3)  # peak 0.3, power 0.09
    start = 2.5
    with_fg = mix(bg, [(square, start, fg_db)], bg_db, SR, normalize=False).astype(np.float64)
    bg_only = mix(bg, [], bg_db, SR, normalize=False).astype(np.float64)
    # Background: attenuated by bg_dB relative to itself.
    assert 10 * np.log10(_power(bg_only) / _power(bg)) == pytest.approx(bg_db, abs=1e-4)
    # Foreground: peak-normalised (power 1 for a square wave), then fg_dB relative to the
    # unscaled background's power.
    fg_part = (with_fg - bg_only)[int(start * SR) : int(start * SR) + len(square)]
    assert 10 * np.log10(_power(fg_part) / _power(bg)) == pytest.approx(fg_db, abs=1e-3)
    assert not np.any((with_fg - bg_only)[: int(start * SR)])  # placed at start_time
    # Normalisation keeps the ratio.
    normed = mix(bg, [(square, start, fg_db)], bg_db, SR).astype(np.float64)
    np.testing.assert_allclose(normed, with_fg / np.max(np.abs(with_fg)), atol=1e-6)


def test_mix_refuses_silence_and_cuts_overrun():
    with pytest.raises(RenderError, match="background is silent"):
        mix(np.zeros(SR), [], -20, SR)
    with pytest.raises(RenderError, match=r"fg\[0\] is silent"):
        mix(np.ones(SR), [(np.zeros(10), 0.0, 0.0)], -20, SR)
    out = mix(np.ones(SR), [(np.ones(SR), 0.5, 0.0)], 0.0, SR, normalize=False)
    assert len(out) == SR and out[-1] == 2.0


def _tiny_corpus(root, bg_seconds=10.0):
    write_noise(root / "bg" / "a.wav", bg_seconds, seed=1)
    write_noise(root / "bg" / "silent.wav", bg_seconds, amplitude=0.0)
    write_noise(root / "fg" / "dog.wav", 2.0, amplitude=0.5, seed=2)
    write_noise(root / "fg" / "long.wav", 8.0, amplitude=0.5, seed=3)
    write_noise(root / "fg" / "quiet.wav", 2.0, amplitude=0.0)


_QIDS = iter(range(10**6))


def _recipe(name, bg="bg/a.wav", fg=(("fg/dog.wav", 2.0, 1.0),)):
    events = [
        ForegroundEvent(next(_QIDS), path, "a caption", 0.5, dur, start) for path, dur, start in fg
    ]
    return Recipe(name, Background(bg, -20.0), events)


def test_render_recipe_writes_a_normalised_wav(tmp_path):
    _tiny_corpus(tmp_path)
    out = tmp_path / "o.wav"
    assert render_recipe(_recipe("x"), tmp_path, out, SR) == 10
    data, sr = sf.read(out)
    assert sr == SR and len(data) == 10 * SR
    assert sf.info(out).subtype == "PCM_16" and np.max(np.abs(data)) > 0.999


def test_dataset_skips_bad_recipes_and_reports_them(tmp_path):
    root = tmp_path / "root"
    _tiny_corpus(root)
    recipes = [
        _recipe("good", fg=(("fg/dog.wav", 2.0, 0.0), ("fg/long.wav", 8.0, 2.0))),  # ends at 10
        _recipe("empty", fg=()),
        _recipe("missing_fg", fg=(("fg/cat.wav", 2.0, 1.0),)),
        _recipe("silent_bg", bg="bg/silent.wav"),
        _recipe("silent_fg", fg=(("fg/quiet.wav", 2.0, 1.0),)),
        _recipe("overrun", fg=(("fg/long.wav", 8.0, 5.0),)),
        _recipe("wrong_duration", fg=(("fg/long.wav", 3.0, 1.0),)),
    ]
    lines = []
    report = render_dataset(
        recipes, root, tmp_path / "out", sample_rate=SR, progress=False, log=lines.append
    )
    out = tmp_path / "out"
    assert not staging_dir(out).exists()
    reasons = dict(report.skipped)
    assert set(reasons) == {"missing_fg", "silent_bg", "silent_fg", "overrun", "wrong_duration"}
    assert "cat.wav: no such file" in reasons["missing_fg"]
    assert "background is silent" in reasons["silent_bg"]
    assert "fg[0] is silent" in reasons["silent_fg"]
    assert "after the background's end" in reasons["overrun"]
    assert "recipe says 3.0 s" in reasons["wrong_duration"]
    assert len(lines) == 5 and all("\n" not in line for line in lines)
    assert (out / "skipped.txt").read_text().count("\n") == 5
    assert sorted(p.name for p in (out / "audio").iterdir()) == ["empty.wav", "good.wav"]
    queries = load_queries(out / "annotations.jsonl")
    assert [(q.vid, q.relevant_windows) for q in queries] == [
        ("good", [[0.0, 2.0]]),
        ("good", [[2.0, 10.0]]),
    ]
    assert [q.qid for q in queries] == [f"{e.qid:05d}" for e in recipes[0].fg]
    assert queries[0].duration == 10
    assert load_recipes(out / "recipes.json") == recipes


def test_dataset_errors(tmp_path):
    root = tmp_path / "root"
    _tiny_corpus(root)
    with pytest.raises(FileNotFoundError, match="holds none of the recipes' backgrounds"):
        render_dataset([_recipe("x")], tmp_path / "elsewhere", tmp_path / "o1", progress=False)
    (tmp_path / "taken").mkdir()
    with pytest.raises(ValueError, match="already exists"):
        render_dataset([_recipe("x")], root, tmp_path / "taken", progress=False)
    with pytest.raises(ValueError, match="cannot be used as a file name"):
        render_dataset([_recipe("../x")], root, tmp_path / "o2", progress=False)
    twice = [_recipe("a"), _recipe("b")]
    twice[1].fg[0].qid = twice[0].fg[0].qid
    with pytest.raises(ValueError, match=r"recipe\[1\] \(b\): qid .* also in recipe\[0\]"):
        render_dataset(twice, root, tmp_path / "o2", progress=False)
    with pytest.raises(ValueError, match="no clip could be rendered.*silent"):
        render_dataset(
            [_recipe("s", bg="bg/silent.wav")],
            root,
            tmp_path / "o3",
            sample_rate=SR,
            progress=False,
            log=lambda _: None,
        )
    assert staging_dir(tmp_path / "o3").exists() and not (tmp_path / "o3").exists()


def test_dataset_resumes_an_interrupted_run(tmp_path):
    root, out = tmp_path / "root", tmp_path / "out"
    _tiny_corpus(root)
    recipes = [_recipe("one"), _recipe("two", fg=(("fg/dog.wav", 2.0, 6.0),))]
    # What a run killed after its first clip leaves behind:
    staging = staging_dir(out)
    save_recipes(recipes, staging / "recipes.json")
    render_recipe(recipes[0], root, staging / "audio" / "one.wav", SR)
    with pytest.raises(ValueError, match="different recipes"):
        render_dataset(recipes[:1], root, out, sample_rate=SR, progress=False)
    report = render_dataset(recipes, root, out, sample_rate=SR, progress=False)
    assert (report.num_reused, report.num_rendered, report.num_queries) == (1, 1, 2)
    assert len(load_queries(out / "annotations.jsonl")) == 2


def test_official_recipe_renders_to_the_released_lines(tmp_path):
    """A few official recipes over stand-in audio at the official paths: the annotation lines
    must equal the released ones byte for byte (validation qids are unchanged)."""
    recipes = load_recipes(need(RECIPES_DIR / "recipe_valid.json"))
    subset = [r for r in recipes if len(r.fg) >= 2][:2] + [next(r for r in recipes if not r.fg)]
    for k, r in enumerate(subset):
        write_noise(tmp_path / r.bg.path, 60.0, seed=k)
        for f in r.fg:
            write_noise(tmp_path / f.path, f.duration, amplitude=0.5, seed=int(f.qid))
    save_recipes(subset, tmp_path / "recipe.json")
    report = render_dataset(
        load_recipes(tmp_path / "recipe.json"),
        tmp_path,
        tmp_path / "out",
        sample_rate=SR,
        progress=False,
    )
    assert not report.skipped and report.num_recipes == 3
    ours = (tmp_path / "out" / "annotations.jsonl").read_text().splitlines()
    released = {
        json.loads(line)["qid"]: line
        for line in need(ANNOTATIONS_DIR / "clotho_moment_val_release.jsonl")
        .read_text()
        .splitlines()
    }
    assert ours == [released[f"{f.qid:05d}"] for r in subset for f in r.fg]
    assert (tmp_path / "out" / "recipes.json").read_bytes() == (
        tmp_path / "recipe.json"
    ).read_bytes()
