"""Recipe format: the official files round-trip exactly; malformed entries name file and entry."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lighthouse_audio.simulation.recipe import (
    ForegroundEvent,
    Recipe,
    RecipeError,
    format_qid,
    load_recipes,
    round_time,
    save_recipes,
)

from .conftest import RECIPES_DIR, SPLITS, need


@pytest.fixture(scope="module", params=sorted(SPLITS))
def official(request) -> tuple[Path, list[Recipe]]:
    path = need(RECIPES_DIR / f"recipe_{request.param}.json")
    return path, load_recipes(path)


def test_official_round_trip_is_exact(official, tmp_path):
    path, recipes = official
    out = tmp_path / "recipe.json"
    save_recipes(recipes, out)
    assert out.read_bytes() == path.read_bytes()  # same bytes, not only same JSON
    assert json.loads(out.read_text()) == json.loads(path.read_text())
    assert load_recipes(out) == recipes
    assert not list(tmp_path.glob(".*.tmp"))  # the atomic write cleaned up


def test_official_types_are_kept(official):
    _, recipes = official
    event = next(f for r in recipes for f in r.fg)
    assert isinstance(event.qid, int) and isinstance(event.duration, float)


def _one() -> dict:
    return {
        "name": "rain_0.0_60.0",
        "bg": {"path": "bg/rain/0.0_60.0.wav", "dB": -20.0},
        "fg": [
            {
                "qid": 3,
                "path": "fg/dog.wav",
                "caption": "a dog barks",
                "dB": 1.0,
                "duration": 4.0,
                "start_time": 12.25,
            },
        ],
    }


def test_queries_follow_the_official_format():
    recipe = Recipe.from_dict(_one())
    assert recipe.queries(60) == [
        {
            "qid": "00003",
            "query": "a dog barks",
            "duration": 60,
            "vid": "rain_0.0_60.0",
            "relevant_windows": [[12.2, 16.2]],
            "fg_dB": 1.0,
        },
    ]
    assert list(recipe.queries(60)[0]) == [
        "qid",
        "query",
        "duration",
        "vid",
        "relevant_windows",
        "fg_dB",
    ]


def test_rounding_is_the_generators_format_rounding():
    # 12.25 is exact in binary: formatting rounds half to even (12.2), unlike floor(x + 0.5).
    assert round_time(12.25) == 12.2 and round_time(12.35) == 12.3  # 12.35 is 12.3499...
    assert round_time(41.05612895054937) == 41.1
    # The end is rounded from the unrounded sum, not from rounded parts.
    e = ForegroundEvent(0, "p", "c", 0.0, duration=7.0, start_time=0.04999)
    assert e.window() == [0.0, 7.0]
    assert format_qid(7) == "00007" and format_qid(123456) == "123456" and format_qid("q") == "q"


@pytest.mark.parametrize(
    "edit, message",
    [
        (lambda d: d.pop("bg"), "recipe[1] (rain_0.0_60.0): recipe: missing key(s) bg"),
        (lambda d: d["bg"].update(db=1), "unknown key(s) db"),
        (lambda d: d["bg"].update(dB="loud"), "bg: dB must be a finite number"),
        (lambda d: d["fg"][0].pop("caption"), "fg[0]: missing key(s) caption"),
        (lambda d: d["fg"][0].update(caption="  "), "fg[0]: caption is empty"),
        (lambda d: d["fg"][0].update(duration=0), "fg[0]: duration must be > 0"),
        (lambda d: d["fg"][0].update(start_time=-1), "fg[0]: start_time must be >= 0"),
        (lambda d: d["fg"][0].update(qid=True), "fg[0]: qid must be"),
        (lambda d: d.update(fg={}), "fg must be a list"),
        (lambda d: d.update(name="other"), "duplicate name (first used by recipe[0])"),
    ],
)
def test_bad_entries_name_file_and_entry(tmp_path, edit, message):
    first, second = _one(), _one()
    first["name"] = "other"
    edit(second)
    path = tmp_path / "r.json"
    path.write_text(json.dumps([first, second]))
    with pytest.raises(RecipeError) as err:
        load_recipes(path)
    text = str(err.value)
    assert text.startswith(f"{path}: recipe[1]") and message in text and "\n" not in text


def test_bad_files(tmp_path):
    with pytest.raises(FileNotFoundError, match="no such recipe file"):
        load_recipes(tmp_path / "missing.json")
    (tmp_path / "a.json").write_text("{not json")
    with pytest.raises(RecipeError, match=r"a.json: invalid JSON"):
        load_recipes(tmp_path / "a.json")
    (tmp_path / "b.json").write_text("{}")
    with pytest.raises(RecipeError, match="expected a JSON list"):
        load_recipes(tmp_path / "b.json")
