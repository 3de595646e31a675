"""Algorithm 1 of "Language-based Audio Moment Retrieval": where foregrounds go, and how loud.

For each background clip of duration ``T`` (semantics of the official ``5_create_recipe.py``)::

    order <- shuffle(all foregrounds)            # each foreground at most once per clip
    t <- 0
    for fg in order:
        t <- t + gap,  gap ~ Exponential(mean avg_interval)
        draw fg's caption (uniform over its captions) and gain fg_dB ~ U(min_fg_db, max_fg_db)
        if t + fg.duration > T: stop             # the clip that would overrun is dropped
        place fg at start_time t;  t <- t + fg.duration
    bg_dB ~ U(min_bg_db, max_bg_db)

Consequences worth knowing: gaps are i.i.d. exponential *draws*, but the gaps that appear in a
recipe are only those that fit, so their mean is well below ``avg_interval`` (the last draw of
every clip is censored). Foregrounds never overlap and every placed clip ends within ``T``. qids
are consecutive over the placed clips (a running counter, not reset per clip).

Draws come from one ``numpy.random.Generator``, in the order above, so a seed fixes the recipes.

``repeat_prob`` (not in the official recipe; 0 keeps its draws unchanged) places a placed
foreground a second time, after its own exponential gap, with probability ``repeat_prob``: the
same sound twice in one recording, one query whose two windows are both placements (both events
carry the query's qid). A repeat that would overrun ends the clip, like any other placement.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np

from lighthouse_audio.simulation.recipe import Background, ForegroundEvent, Recipe

__all__ = [
    "BackgroundClip",
    "ForegroundClip",
    "SimulationConfig",
    "sample_events",
    "sample_recipes",
]

# Keys of the official config.yaml that only locate its input/output folders.
_OFFICIAL_PATH_KEYS = ("root_wwt", "root_clotho", "save_dir", "tmp_dir", "split_ratio")
# The official config's names for our fields.
_OFFICIAL_ALIASES = {"sr": "sample_rate", "clip_duration": "clip_length", "clip_interval": "hop"}


@dataclass
class SimulationConfig:
    """Every simulation parameter; defaults are the official ``config.yaml``'s values."""

    sample_rate: int = 32000  # sr: rendering rate (Hz)
    clip_length: float = 60.0  # clip_duration: background clip length (s)
    hop: float = 1.0  # clip_interval: step between background clip starts (s)
    clip_db: float = 5.0  # foreground trimming threshold below the clip's mean power (dB)
    # The official file has min_fg_db: 5, max_fg_db: -5 (swapped). The draw is
    # min + u * (max - min), so the result is U(-5, 5) either way; kept as shipped.
    min_fg_db: float = 5.0
    max_fg_db: float = -5.0
    min_bg_db: float = -25.0
    max_bg_db: float = -15.0
    avg_interval: float = 30.0  # mean of the exponential gap before each foreground (s)
    # Not in the official config: chance that a placed foreground is placed again, making a
    # query with two windows (users' recordings often hold the same sound twice).
    repeat_prob: float = 0.0

    def __post_init__(self) -> None:
        for name in ("clip_length", "hop", "avg_interval"):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and value > 0):
                raise ValueError(f"simulation config: {name} must be > 0, got {value!r}")
        if not (isinstance(self.repeat_prob, (int, float)) and 0 <= self.repeat_prob <= 1):
            raise ValueError(
                f"simulation config: repeat_prob must be in [0, 1], got {self.repeat_prob!r}"
            )
        if not (isinstance(self.sample_rate, int) and self.sample_rate > 0):
            raise ValueError(
                f"simulation config: sample_rate must be a positive int (Hz), "
                f"got {self.sample_rate!r}"
            )

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> SimulationConfig:
        """Our field names or the official ones (``sr``, ``clip_duration``, ``clip_interval``);
        the official folder keys are ignored, anything else is an error."""
        known = {f.name: f.type for f in fields(cls)}
        kwargs: dict[str, Any] = {}
        unknown = []
        for key, value in d.items():
            if key in _OFFICIAL_PATH_KEYS:
                continue
            name = _OFFICIAL_ALIASES.get(key, key)
            if name not in known:
                unknown.append(key)
                continue
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise ValueError(f"simulation config: {key} must be a number, got {value!r}")
            kwargs[name] = value
        if unknown:
            raise ValueError(
                f"simulation config: unknown key(s) {', '.join(unknown)} "
                f"(known: {', '.join(known)})"
            )
        return cls(**kwargs)

    @classmethod
    def from_yaml(cls, path: str | os.PathLike) -> SimulationConfig:
        import yaml

        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"{path}: no such simulation config")
        d = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        if not isinstance(d, dict):
            raise ValueError(f"{path}: expected a mapping of config keys")
        try:
            return cls.from_dict(d)
        except ValueError as e:
            raise ValueError(f"{path}: {e}") from None


@dataclass(frozen=True)
class ForegroundClip:
    """A trimmed foreground: its path as the recipe should hold it, captions, duration (s)."""

    path: str
    captions: tuple[str, ...]
    duration: float


@dataclass(frozen=True)
class BackgroundClip:
    """A background clip: recipe name (also the vid), path for the recipe, duration (s)."""

    name: str
    path: str
    duration: float


def _uniform(rng: np.random.Generator, low: float, high: float) -> float:
    return float(low + rng.random() * (high - low))


def sample_events(
    rng: np.random.Generator,
    foregrounds: Sequence[ForegroundClip],
    bg_duration: float,
    config: SimulationConfig,
    first_qid: int = 0,
) -> list[ForegroundEvent]:
    """Place foregrounds on one background of ``bg_duration`` seconds (see the module doc).

    qids run from ``first_qid``, one per query (a repeated foreground's two events share one)."""
    events: list[ForegroundEvent] = []
    qid = first_qid
    t = 0.0
    for index in rng.permutation(len(foregrounds)):
        fg = foregrounds[index]
        caption = None
        for again in (False, True):
            if again and not (config.repeat_prob > 0 and rng.random() < config.repeat_prob):
                break
            t += float(rng.exponential(config.avg_interval))
            if caption is None:  # a repeat keeps its query's caption
                caption = fg.captions[int(rng.integers(len(fg.captions)))]
            db = _uniform(rng, config.min_fg_db, config.max_fg_db)
            start = t
            t += fg.duration
            if t > bg_duration:
                return events
            events.append(ForegroundEvent(qid, fg.path, caption, db, fg.duration, start))
        qid += 1
    return events


def sample_recipes(
    backgrounds: Sequence[BackgroundClip],
    foregrounds: Sequence[ForegroundClip],
    config: SimulationConfig,
    rng: np.random.Generator,
    first_qid: int = 0,
) -> list[Recipe]:
    """One recipe per background clip, qids consecutive from ``first_qid``."""
    if not foregrounds:
        raise ValueError("no foreground clips to place")
    recipes = []
    qid = first_qid
    for bg in backgrounds:
        events = sample_events(rng, foregrounds, bg.duration, config, qid)
        qid += len({e.qid for e in events})
        bg_db = _uniform(rng, config.min_bg_db, config.max_bg_db)
        recipes.append(Recipe(bg.name, Background(bg.path, bg_db), events))
    return recipes
