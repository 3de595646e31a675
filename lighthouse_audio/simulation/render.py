"""Render recipes to audio and Lighthouse annotations (the official ``6_create_dataset.py``).

Mixing one recipe, all signals mono at ``sample_rate``::

    p_bg  = mean(bg**2)                                   # of the *unscaled* background
    mix   = 10**(bg_dB / 20) * bg
    for fg: mix[int(start_time * sr):][:len(fg)] += 10**(fg_dB / 20) * sqrt(p_bg) * fg / max|fg|
    mix   = mix / max|mix|                                # peak 1, written as 16-bit WAV

So ``fg_dB`` is the foreground's *peak* level relative to the background's RMS before its own
gain, and ``bg_dB`` only attenuates the background.

A dataset is built in a staging folder next to ``out`` (``.{out}.partial``) and renamed to
``out`` once every recipe has been tried; a crash leaves the staging folder, and running again
with the same recipes resumes (each WAV is written atomically, so a present file is complete).
Recipes that cannot be rendered (missing or unreadable files, silence, a foreground that does
not fit) are skipped, reported one line each, and listed in ``out/skipped.txt``.

Layout of ``out``: ``audio/{name}.wav``, ``recipes.json`` (the recipes as given),
``annotations.jsonl`` (one line per query of every rendered recipe, in recipe order).
"""

from __future__ import annotations

import json
import multiprocessing
import os
import sys
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import soundfile as sf

from lighthouse_audio.audio.decode import MAX_SAMPLE_RATE, MIN_SAMPLE_RATE, AudioError, load_audio
from lighthouse_audio.file_io import write_text
from lighthouse_audio.simulation.preprocess import write_audio_atomic
from lighthouse_audio.simulation.recipe import Recipe, load_recipes, save_recipes

__all__ = [
    "RenderError",
    "RenderReport",
    "map_jobs",
    "mix",
    "render_dataset",
    "render_recipe",
    "staging_dir",
]

# A foreground file may differ from its recipe duration by resampling rounding (one sample) but
# not by more than this; beyond it the annotation window would be wrong.
DURATION_SLACK = 0.05

T = TypeVar("T")
R = TypeVar("R")


class RenderError(ValueError):
    """One recipe cannot be rendered; the message is one line."""


def mix(
    background: np.ndarray,
    foregrounds: Sequence[tuple[np.ndarray, float, float]],
    bg_db: float,
    sample_rate: int,
    normalize: bool = True,
) -> np.ndarray:
    """Mix ``(signal, start_time, fg_dB)`` foregrounds onto ``background`` (formula above).

    Foregrounds that would run past the background's end are cut there (resampling can make a
    clip a sample longer than its recipe says). Raises :class:`RenderError` on silence.
    """
    bg = np.asarray(background, dtype=np.float64)
    power_bg = float(np.mean(bg**2)) if len(bg) else 0.0
    if power_bg == 0.0:
        raise RenderError("background is silent (zero power)")
    out = 10 ** (bg_db / 20) * bg
    for j, (signal, start_time, db) in enumerate(foregrounds):
        fg = np.asarray(signal, dtype=np.float64)
        peak = float(np.max(np.abs(fg))) if len(fg) else 0.0
        if peak == 0.0:
            raise RenderError(f"fg[{j}] is silent or empty")
        start = int(start_time * sample_rate)
        piece = fg[: max(0, len(out) - start)] * (10 ** (db / 20) * np.sqrt(power_bg) / peak)
        out[start : start + len(piece)] += piece
    if normalize:
        out = out / np.max(np.abs(out))
    return out.astype(np.float32)


def render_recipe(
    recipe: Recipe, audio_root: Path, out_path: Path, sample_rate: int
) -> int | float:
    """Render one recipe to ``out_path`` (16-bit WAV); returns the clip duration in seconds
    (an int when whole, as the official ``"duration": 60``). Raises :class:`RenderError`."""
    bg_path = audio_root / recipe.bg.path
    try:
        background = load_audio(bg_path, sample_rate)
    except AudioError as e:
        raise RenderError(f"background {e}") from None
    bg_seconds = len(background) / sample_rate
    foregrounds = []
    for j, event in enumerate(recipe.fg):
        fg_path = audio_root / event.path
        try:
            signal = load_audio(fg_path, sample_rate)
        except AudioError as e:
            raise RenderError(f"fg[{j}] {e}") from None
        seconds = len(signal) / sample_rate
        if abs(seconds - event.duration) > DURATION_SLACK:
            raise RenderError(
                f"fg[{j}] {fg_path}: lasts {seconds:.3f} s but the recipe says "
                f"{event.duration} s (its window would be wrong)"
            )
        if event.end_time > bg_seconds + DURATION_SLACK:
            raise RenderError(
                f"fg[{j}] {fg_path}: ends at {event.end_time:.3f} s, after the background's "
                f"end ({bg_seconds:.3f} s)"
            )
        foregrounds.append((signal, event.start_time, event.db))
    try:
        mixture = mix(background, foregrounds, recipe.bg.db, sample_rate)
    except RenderError as e:
        raise RenderError(f"{e} ({bg_path})") from None
    write_audio_atomic(out_path, mixture, sample_rate)
    return _seconds(len(mixture), sample_rate)


def _seconds(num_samples: int, sample_rate: int) -> int | float:
    seconds = num_samples / sample_rate
    return int(seconds) if seconds.is_integer() else seconds


def _render_job(job: tuple[Recipe, Path, Path, int]) -> tuple[int | float | None, str | None]:
    """Pool entry point: ``(duration, None)`` or ``(None, reason)``; never raises for bad
    input, so one broken recipe cannot stop the others."""
    recipe, audio_root, out_path, sample_rate = job
    try:
        return render_recipe(recipe, audio_root, out_path, sample_rate), None
    except (RenderError, AudioError, OSError, sf.SoundFileError) as e:
        return None, " ".join(str(e).split())


def map_jobs(
    fn: Callable[[T], R],
    items: Sequence[T],
    workers: int = 1,
    desc: str = "",
    progress: bool = True,
) -> list[R]:
    """``[fn(x) for x in items]`` over ``workers`` processes, with a tqdm bar; input order.

    ``fn`` must be a module-level function. Processes are spawned, not forked: the parent may
    hold threads (torch, OpenMP) that a forked child would inherit in a locked state.
    """
    from tqdm import tqdm

    results: list[Any] = [None] * len(items)
    bar = tqdm(total=len(items), desc=desc, disable=not progress, file=sys.stderr)
    with bar:
        if workers <= 1 or len(items) <= 1:
            for i, item in enumerate(items):
                results[i] = fn(item)
                bar.update()
            return results
        context = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
            futures = {pool.submit(fn, item): i for i, item in enumerate(items)}
            for future in as_completed(futures):
                results[futures[future]] = future.result()
                bar.update()
    return results


@dataclass
class RenderReport:
    """What a dataset run did: counts, and the skipped recipes with their reasons."""

    out: Path
    num_recipes: int = 0
    num_rendered: int = 0  # in this run
    num_reused: int = 0  # already rendered by an interrupted earlier run
    num_queries: int = 0
    skipped: list[tuple[str, str]] = field(default_factory=list)

    def summary(self) -> str:
        text = (
            f"{self.num_recipes - len(self.skipped)}/{self.num_recipes} clips "
            f"({self.num_reused} from an earlier run), {self.num_queries} queries -> {self.out}"
        )
        return text + (f"; {len(self.skipped)} skipped (see skipped.txt)" if self.skipped else "")


def staging_dir(out: Path) -> Path:
    """Where ``out`` is built before the final rename (same parent: the rename is atomic)."""
    return out.parent / f".{out.name}.partial"


def render_dataset(
    recipes: list[Recipe],
    audio_root: str | os.PathLike,
    out: str | os.PathLike,
    *,
    sample_rate: int = 32000,
    workers: int = 1,
    progress: bool = True,
    log: Callable[[str], None] | None = None,
) -> RenderReport:
    """Render every recipe into ``out`` (see the module doc). Recipe paths are relative to
    ``audio_root`` (absolute ones are used as they are).

    Raises ``ValueError`` when ``out`` exists, when a staging folder holds a different run,
    or when no recipe could be rendered; ``FileNotFoundError`` when the audio root holds none
    of the backgrounds (almost certainly a wrong ``audio_root``).
    """
    out, audio_root = Path(out), Path(audio_root)
    log = log or (lambda line: print(line, file=sys.stderr))
    if out.exists():
        raise ValueError(f"{out}: already exists; choose another output folder or remove it")
    if not MIN_SAMPLE_RATE <= sample_rate <= MAX_SAMPLE_RATE:
        raise ValueError(
            f"sample rate {sample_rate} Hz is outside [{MIN_SAMPLE_RATE}, {MAX_SAMPLE_RATE}] Hz"
        )
    _check_recipes(recipes)
    if recipes and not any((audio_root / r.bg.path).is_file() for r in recipes):
        raise FileNotFoundError(
            f"{audio_root}: holds none of the recipes' backgrounds "
            f"(e.g. {audio_root / recipes[0].bg.path}); is the audio root right?"
        )
    staging = staging_dir(out)
    staging.mkdir(parents=True, exist_ok=True)
    recipe_file = staging / "recipes.json"
    if recipe_file.exists():
        if load_recipes(recipe_file) != recipes:
            raise ValueError(
                f"{staging}: an unfinished run with different recipes is there; remove it or "
                "choose another output folder"
            )
    else:
        save_recipes(recipes, recipe_file)

    audio_dir = staging / "audio"
    report = RenderReport(out=out, num_recipes=len(recipes))
    durations: dict[str, int | float] = {}
    jobs = []
    for recipe in recipes:
        wav = audio_dir / f"{recipe.name}.wav"
        if wav.is_file():
            info = sf.info(os.fspath(wav))
            durations[recipe.name] = _seconds(info.frames, info.samplerate)
            report.num_reused += 1
        else:
            jobs.append((recipe, audio_root, wav, sample_rate))
    results = map_jobs(_render_job, jobs, workers, desc="render", progress=progress)
    for (recipe, *_), (duration, problem) in zip(jobs, results, strict=True):
        if problem is None:
            durations[recipe.name] = duration
            report.num_rendered += 1
        else:
            report.skipped.append((recipe.name, problem))
            log(f"skipped {recipe.name}: {problem}")

    if not durations:
        first = report.skipped[0] if report.skipped else ("", "no recipes")
        raise ValueError(
            f"no clip could be rendered (first problem: {first[0]}: {first[1]}); "
            f"partial output kept in {staging}"
        )
    lines = []
    for recipe in recipes:
        if recipe.name in durations:
            for query in recipe.queries(durations[recipe.name]):
                # json.dumps defaults as in the generator: lines match the released ones bytewise
                lines.append(json.dumps(query))
    report.num_queries = len(lines)
    write_text(staging / "annotations.jsonl", "".join(line + "\n" for line in lines))
    skipped_file = staging / "skipped.txt"
    if report.skipped:
        text = "".join(f"{name}: {problem}\n" for name, problem in report.skipped)
        write_text(skipped_file, text)
    else:
        skipped_file.unlink(missing_ok=True)  # a resumed run fixed what an earlier one skipped
    os.rename(staging, out)
    return report


def _check_recipes(recipes: Sequence[Recipe]) -> None:
    seen = set()
    qids: dict[int | str, int] = {}
    for i, r in enumerate(recipes):
        for f in r.fg:
            # The evaluator and the text features are keyed by qid: unique across recipes (a
            # recipe's events may share one: a repeated sound, one query with two windows).
            if qids.get(f.qid, i) != i:
                raise ValueError(
                    f"recipe[{i}] ({r.name}): qid {f.qid!r} is also in recipe[{qids[f.qid]}]"
                )
            qids[f.qid] = i
        # Names become file names under audio/: no folders, no hidden or parent entries.
        if "/" in r.name or "\\" in r.name or r.name.startswith(".") or "\0" in r.name:
            raise ValueError(f"recipe[{i}] name {r.name!r} cannot be used as a file name")
        if r.name in seen:
            raise ValueError(f"recipe[{i}] name {r.name!r} is used twice")
        seen.add(r.name)
