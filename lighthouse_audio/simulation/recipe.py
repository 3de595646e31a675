"""The official Clotho-Moment recipe format: one :class:`Recipe` per 60 s background clip.

A recipe file (``recipe_valid.json``, ``recipe_test.json``) is a JSON list written with
``json.dump(..., indent=4)``::

    [{"name": "Singapore_0.0_60.0",
      "bg": {"path": ".tmp/valid/bg/Singapore/0.0_60.0.wav", "dB": -23.76},
      "fg": [{"qid": 32694, "path": ".tmp/valid/fg/TOILET FLUSH.wav",
              "caption": "A toilet flushes ...", "dB": 0.74, "duration": 7.0,
              "start_time": 41.06}]}, ...]

Times are in seconds, gains in dB, paths relative to the folder the generator ran in (the
"audio root"). :func:`save_recipes` reproduces an official file byte for byte.

>>> fg = ForegroundEvent(qid=7, path="fg/dog.wav", caption="a dog barks", db=1.5,
...                      duration=3.0, start_time=10.04)
>>> r = Recipe("rain_0.0_60.0", Background("bg/rain/0.0_60.0.wav", -20.0), [fg])
>>> Recipe.from_dict(r.to_dict()) == r
True
>>> r.queries(duration=60)[0]["relevant_windows"], r.queries(duration=60)[0]["qid"]
([[10.0, 13.0]], '00007')
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lighthouse_audio.file_io import write_text

Seconds = float

__all__ = [
    "Background",
    "ForegroundEvent",
    "Recipe",
    "RecipeError",
    "format_qid",
    "load_recipes",
    "round_time",
    "save_recipes",
]


class RecipeError(ValueError):
    """A malformed recipe; the message is one line naming the file and the entry."""


def round_time(t: Seconds) -> float:
    """A window bound as the official generator writes it: ``float(f"{t:.1f}")``.

    Formatting rounds the exact binary value to one decimal (ties to even on that value), so
    this is not ``math.floor(10 * t + 0.5) / 10``; using the same expression keeps our windows
    bit-identical to the released annotation files.
    """
    return float(f"{t:.1f}")


def format_qid(qid: int | str) -> str:
    """Official jsonl qid: integers zero-padded to 5 digits (``32694``, ``00007``)."""
    return f"{qid:05d}" if isinstance(qid, int) else str(qid)


@dataclass
class Background:
    """The background clip and its gain ``db`` (JSON key ``dB``) relative to its own level."""

    path: str
    db: float

    def to_dict(self) -> dict[str, Any]:
        return {"path": self.path, "dB": self.db}

    @classmethod
    def from_dict(cls, d: Any) -> Background:
        _check_keys(d, ("path", "dB"), "bg")
        return cls(path=_string(d, "path", "bg"), db=_number(d, "dB", "bg"))


@dataclass
class ForegroundEvent:
    """One foreground clip placed at ``start_time``; it is also one query (``caption``)."""

    qid: int | str
    path: str
    caption: str
    db: float  # gain relative to the background's power, JSON key "dB"
    duration: Seconds
    start_time: Seconds

    @property
    def end_time(self) -> Seconds:
        return self.start_time + self.duration

    def window(self) -> list[float]:
        """``[start, end]`` rounded as in the released files; the end is rounded from the
        unrounded ``start_time + duration`` (as the generator does), not from rounded parts."""
        return [round_time(self.start_time), round_time(self.end_time)]

    def to_dict(self) -> dict[str, Any]:
        return {
            "qid": self.qid,
            "path": self.path,
            "caption": self.caption,
            "dB": self.db,
            "duration": self.duration,
            "start_time": self.start_time,
        }

    @classmethod
    def from_dict(cls, d: Any, where: str = "fg") -> ForegroundEvent:
        keys = ("qid", "path", "caption", "dB", "duration", "start_time")
        _check_keys(d, keys, where)
        qid = d["qid"]
        if isinstance(qid, bool) or not isinstance(qid, (int, str)) or qid == "":
            raise RecipeError(f"{where}: qid must be an integer or a non-empty string, got {qid!r}")
        caption = _string(d, "caption", where)
        if not caption.strip():
            raise RecipeError(f"{where}: caption is empty")
        duration = _number(d, "duration", where)
        start = _number(d, "start_time", where)
        if duration <= 0:
            raise RecipeError(f"{where}: duration must be > 0 s, got {duration!r}")
        if start < 0:
            raise RecipeError(f"{where}: start_time must be >= 0 s, got {start!r}")
        # Numbers keep their JSON type (7.0 stays a float) so a save reproduces the file.
        path, db = _string(d, "path", where), _number(d, "dB", where)
        return cls(qid, path, caption, db, duration, start)


@dataclass
class Recipe:
    """How to mix one clip: its background and the foregrounds placed on it (by start time)."""

    name: str
    bg: Background
    fg: list[ForegroundEvent] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "bg": self.bg.to_dict(), "fg": [f.to_dict() for f in self.fg]}

    @classmethod
    def from_dict(cls, d: Any) -> Recipe:
        _check_keys(d, ("name", "bg", "fg"), "recipe")
        name = _string(d, "name", "recipe")
        if not name.strip():
            raise RecipeError("recipe: name is empty")
        bg = Background.from_dict(d["bg"])
        if not isinstance(d["fg"], list):
            raise RecipeError(f"recipe: fg must be a list, got {type(d['fg']).__name__}")
        fg = [ForegroundEvent.from_dict(f, f"fg[{j}]") for j, f in enumerate(d["fg"])]
        return cls(name, bg, fg)

    def queries(self, duration: Seconds) -> list[dict[str, Any]]:
        """Lighthouse jsonl lines, one per qid, in the official key order: one per foreground,
        except that events sharing a qid (a repeated sound) are one query with their windows.

        ``duration`` is the clip length written in each line (the official files say ``60``).
        """
        lines: dict[int | str, dict[str, Any]] = {}
        for f in self.fg:
            if f.qid in lines:
                lines[f.qid]["relevant_windows"].append(f.window())
                continue
            lines[f.qid] = {
                "qid": format_qid(f.qid),
                "query": f.caption,
                "duration": duration,
                "vid": self.name,
                "relevant_windows": [f.window()],
                "fg_dB": f.db,
            }
        return list(lines.values())


def load_recipes(path: str | os.PathLike) -> list[Recipe]:
    """Read and validate a recipe file; the first problem raises :class:`RecipeError` as
    ``"{path}: recipe[i] (name): fg[j]: problem"``."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise FileNotFoundError(f"{path}: no such recipe file") from None
    except OSError as e:
        raise RecipeError(f"{path}: cannot read recipe file ({e.strerror})") from e
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as e:
        raise RecipeError(f"{path}: invalid JSON: {e.msg} (line {e.lineno})") from None
    if not isinstance(raw, list):
        raise RecipeError(f"{path}: expected a JSON list of recipes, got {type(raw).__name__}")
    recipes = []
    seen: dict[str, int] = {}
    for i, d in enumerate(raw):
        label = f"recipe[{i}]" + (f" ({d['name']})" if isinstance(d, dict) and "name" in d else "")
        try:
            recipe = Recipe.from_dict(d)
        except RecipeError as e:
            raise RecipeError(f"{path}: {label}: {e}") from None
        if recipe.name in seen:
            # Names become audio file names and vids: a duplicate would overwrite a clip.
            raise RecipeError(
                f"{path}: {label}: duplicate name (first used by recipe[{seen[recipe.name]}])"
            )
        seen[recipe.name] = i
        recipes.append(recipe)
    return recipes


def save_recipes(recipes: list[Recipe], path: str | os.PathLike) -> None:
    """Write atomically (temporary file + rename) in the official layout (``indent=4``, no
    trailing newline), so loading and saving an official file gives the same bytes."""
    path = Path(path)
    text = json.dumps([r.to_dict() for r in recipes], indent=4)
    write_text(path, text)


def _check_keys(d: Any, keys: tuple[str, ...], where: str) -> None:
    if not isinstance(d, dict):
        raise RecipeError(f"{where}: expected a JSON object, got {type(d).__name__}")
    missing = [k for k in keys if k not in d]
    if missing:
        raise RecipeError(f"{where}: missing key(s) {', '.join(missing)}")
    unknown = [k for k in d if k not in keys]
    if unknown:
        # Strict: a typo such as "db" for "dB" would otherwise be silently dropped on save.
        raise RecipeError(
            f"{where}: unknown key(s) {', '.join(unknown)} (expected {', '.join(keys)})"
        )


def _string(d: dict[str, Any], key: str, where: str) -> str:
    value = d[key]
    if not isinstance(value, str):
        raise RecipeError(f"{where}: {key} must be a string, got {value!r}")
    return value


def _number(d: dict[str, Any], key: str, where: str) -> float:
    value = d[key]
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise RecipeError(f"{where}: {key} must be a finite number, got {value!r}")
    return value
