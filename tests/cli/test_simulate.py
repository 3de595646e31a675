"""``lighthouse simulate`` end to end on real sounds from ../shared/sounds."""

from __future__ import annotations

import argparse
import json

import numpy as np
import pytest
import soundfile as sf

from lighthouse_audio.cli import main as cli_main
from lighthouse_audio.cli import simulate
from lighthouse_audio.data.annotations import load_queries
from lighthouse_audio.simulation.recipe import load_recipes
from tests.simulation.conftest import SOUNDS_DIR, need

BACKGROUNDS = ("bg/rain/0ad__weather_rain_11.ogg", "bg/storm/ufo__ambience_thunder2.ogg")
LONG_FG = "fg/animal/uh__sheepfield.flac"  # 28 s: longer than the 20 s clips below


def _run(*argv: str) -> int:
    parser = argparse.ArgumentParser()
    simulate.add_parser(parser.add_subparsers())
    args = parser.parse_args(["simulate", *map(str, argv)])
    return args.func(args)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    sounds = need(SOUNDS_DIR / "manifest.jsonl").parent
    root = tmp_path_factory.mktemp("corpus")
    lines = [json.loads(line) for line in (sounds / "manifest.jsonl").read_text().splitlines()]
    fg = [d for d in lines if d["role"] == "fg"][:12] + [d for d in lines if d["path"] == LONG_FG]
    with open(root / "fg.jsonl", "w") as f:
        for d in fg:
            f.write(json.dumps({"path": str(sounds / d["path"]), "caption": d["caption"]}) + "\n")
    (root / "bg").mkdir()
    for rel in BACKGROUNDS:
        (root / "bg" / rel.split("/")[-1]).symlink_to(need(sounds / rel))
    (root / "config.yaml").write_text("avg_interval: 6\n")
    return root


@pytest.fixture(scope="module")
def simulated(corpus, tmp_path_factory):
    out = tmp_path_factory.mktemp("sim") / "out"
    rc = _run(
        "--fg-manifest",
        corpus / "fg.jsonl",
        "--bg-dir",
        corpus / "bg",
        "--out",
        out,
        "--n",
        4,
        "--seed",
        3,
        "--workers",
        2,
        "--clip-length",
        20,
        "--config",
        corpus / "config.yaml",
        "--no-progress",
    )
    return rc, out


def test_simulate_writes_audio_recipes_and_annotations(simulated):
    rc, out = simulated
    assert rc == 0
    recipes = load_recipes(out / "recipes.json")
    assert len(recipes) == 4
    assert sorted(p.stem for p in (out / "audio").glob("*.wav")) == sorted(r.name for r in recipes)
    queries = load_queries(out / "annotations.jsonl")
    assert len(queries) == sum(len(r.fg) for r in recipes) > 0
    assert all(q.duration == 20 and 0 <= q.relevant_windows[0][0] for q in queries)
    assert all(q.relevant_windows[0][1] <= 20 for q in queries)
    assert all(LONG_FG.split("/")[-1].split(".")[0] not in f.path for r in recipes for f in r.fg)
    for r in recipes:
        data, sr = sf.read(out / "audio" / f"{r.name}.wav")
        assert sr == 32000 and len(data) == 20 * 32000
        assert np.max(np.abs(data)) == pytest.approx(1.0, abs=1e-4)
        assert (out / r.bg.path).is_file() and all((out / f.path).is_file() for f in r.fg)


def test_recipes_json_renders_to_the_same_dataset(simulated, tmp_path):
    _, out = simulated
    assert _run("--recipe", out / "recipes.json", "--out", tmp_path / "again", "--no-progress") == 0
    again = tmp_path / "again"
    assert (again / "annotations.jsonl").read_bytes() == (out / "annotations.jsonl").read_bytes()
    for wav in (out / "audio").glob("*.wav"):
        assert (again / "audio" / wav.name).read_bytes() == wav.read_bytes()


def test_same_seed_same_recipes(simulated, corpus, tmp_path):
    _, out = simulated
    rc = _run(
        "--fg-manifest",
        corpus / "fg.jsonl",
        "--bg-dir",
        corpus / "bg",
        "--out",
        tmp_path / "o",
        "--n",
        4,
        "--seed",
        3,
        "--clip-length",
        20,
        "--config",
        corpus / "config.yaml",
        "--no-progress",
    )
    assert rc == 0
    assert (tmp_path / "o" / "recipes.json").read_bytes() == (out / "recipes.json").read_bytes()


def test_argument_errors(corpus, tmp_path):
    with pytest.raises(ValueError, match="give --fg-manifest and --bg-dir"):
        _run("--out", tmp_path / "o")
    with pytest.raises(ValueError, match="drop --fg-manifest"):
        _run("--recipe", "r.json", "--fg-manifest", "m.jsonl", "--out", tmp_path / "o")
    with pytest.raises(ValueError, match="--audio-root goes with --recipe"):
        _run("--fg-manifest", "m.jsonl", "--bg-dir", "b", "--audio-root", "r", "--out", "o")
    with pytest.raises(FileNotFoundError, match="no such recipe file"):
        _run("--recipe", tmp_path / "r.json", "--out", tmp_path / "o")
    with pytest.raises(ValueError, match="asked for 999 background clips"):
        _run(
            "--fg-manifest",
            corpus / "fg.jsonl",
            "--bg-dir",
            corpus / "bg",
            "--out",
            tmp_path / "o",
            "--n",
            999,
            "--clip-length",
            20,
            "--no-progress",
        )


def test_through_the_lighthouse_command(capsys, tmp_path, monkeypatch):
    module = "lighthouse_audio.cli.simulate"
    if module not in cli_main.COMMAND_MODULES:  # until main.py registers it
        monkeypatch.setattr(cli_main, "COMMAND_MODULES", (*cli_main.COMMAND_MODULES, module))
    assert (
        cli_main.main(
            ["simulate", "--recipe", str(tmp_path / "r.json"), "--out", str(tmp_path / "o")]
        )
        == 2
    )
    assert "lighthouse simulate: error:" in capsys.readouterr().err
