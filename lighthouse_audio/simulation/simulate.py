"""Simulate a Clotho-Moment-style dataset from your own corpora, end to end.

1. Trim every foreground of the manifest (``preprocess.trim_foreground_file``) into
   ``sources/fg/{key}.flac``; clips that fail (unreadable, silent, under 1 s) or that are longer
   than a background clip are skipped with one line each. Trimming runs on the mono signal at
   the rendering rate (the official script trims at the file's own rate; the whole-second
   frames are the same seconds either way).
2. List every background window (``preprocess.background_windows``) of every recording, drop the
   silent ones, draw ``n`` of them (all when ``n`` is None) and cut only those, into
   ``sources/bg/{recording}/{start}_{end}.flac`` (cutting all would copy each recording ~60x).
3. Sample recipes (``sampler.sample_recipes``) and render them (``render.render_dataset``).

Everything is written in the staging folder and renamed to ``out`` at the end; recipe paths are
relative to ``out``, so ``out/recipes.json`` renders again with ``audio_root=out``, and
``out/simulation.json`` records the inputs and settings (a resumed run must match them). One
``numpy`` Generator seeded with ``seed`` makes every draw, so the same inputs and settings give
the same dataset, and an interrupted run resumes where it stopped.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import soundfile as sf

from lighthouse_audio.audio.decode import AudioError, load_audio
from lighthouse_audio.file_io import remove_stale_temporaries, write_text
from lighthouse_audio.simulation.inputs import (
    BackgroundFile,
    ForegroundEntry,
    find_backgrounds,
    load_foreground_manifest,
)
from lighthouse_audio.simulation.preprocess import (
    BackgroundWindow,
    background_windows,
    trim_foreground_file,
    write_audio_atomic,
)
from lighthouse_audio.simulation.render import RenderReport, map_jobs, render_dataset, staging_dir
from lighthouse_audio.simulation.sampler import (
    BackgroundClip,
    ForegroundClip,
    SimulationConfig,
    sample_recipes,
)

__all__ = ["simulate_dataset"]

SOURCE_SUFFIX = ".flac"  # lossless and half the size of the official 16-bit WAV intermediates


def _trim_job(job: tuple[ForegroundEntry, Path, int, float]) -> tuple[float | None, str | None]:
    entry, out_path, sample_rate, clip_db = job
    if out_path.is_file():  # written atomically by an earlier run: complete
        info = sf.info(os.fspath(out_path))
        return info.frames / info.samplerate, None
    try:
        return trim_foreground_file(entry.path, out_path, sample_rate, clip_db), None
    except (AudioError, ValueError, OSError) as e:
        return None, " ".join(str(e).split())


def _window_job(
    job: tuple[BackgroundFile, SimulationConfig],
) -> tuple[list[BackgroundWindow], int, str | None]:
    """The non-silent windows of one recording, the number of silent ones, or an error."""
    bg, config = job
    try:
        signal = load_audio(bg.path, config.sample_rate)
    except AudioError as e:
        return [], 0, " ".join(str(e).split())
    windows = background_windows(len(signal), config.sample_rate, config.clip_length, config.hop)
    kept = _audible(signal, windows, block=config.sample_rate)
    return kept, len(windows) - len(kept), None


def _audible(
    signal: np.ndarray, windows: list[BackgroundWindow], block: int
) -> list[BackgroundWindow]:
    """The windows holding a nonzero sample (a silent one would divide by zero when mixed).

    One flag per ``block`` of samples plus a prefix sum answers the blocks a window covers
    whole; only its two ragged ends are scanned. Memory stays at the signal itself, which
    matters for hour-long recordings (a float64 energy prefix sum would double it twice).
    """
    flags = [bool(np.any(signal[i : i + block])) for i in range(0, len(signal), block)]
    prefix = np.concatenate([[0], np.cumsum(flags)])
    kept = []
    for w in windows:
        first, last = -(-w.start_sample // block), w.end_sample // block  # whole blocks inside
        if first < last:
            audible = (
                prefix[last] > prefix[first]
                or np.any(signal[w.start_sample : first * block])
                or np.any(signal[last * block : w.end_sample])
            )
        else:
            audible = np.any(signal[w.start_sample : w.end_sample])
        if audible:
            kept.append(w)
    return kept


def _cut_job(job: tuple[BackgroundFile, list[BackgroundWindow], Path, int]) -> str | None:
    bg, windows, folder, sample_rate = job
    try:
        signal = load_audio(bg.path, sample_rate)
        for w in windows:
            path = folder / bg.name / f"{w.label}{SOURCE_SUFFIX}"
            if not path.is_file():
                write_audio_atomic(path, signal[w.start_sample : w.end_sample], sample_rate)
    except (AudioError, OSError) as e:
        return " ".join(str(e).split())
    return None


def simulate_dataset(
    fg_manifest: str | os.PathLike,
    bg_dir: str | os.PathLike,
    out: str | os.PathLike,
    config: SimulationConfig | None = None,
    *,
    n: int | None = None,
    seed: int = 0,
    workers: int = 1,
    progress: bool = True,
    log: Callable[[str], None] | None = None,
) -> RenderReport:
    """Build ``out`` (``audio/``, ``recipes.json``, ``annotations.jsonl``, ``sources/``) from a
    foreground manifest and a folder of background recordings. ``n``: number of background
    clips (default: every window of every recording)."""
    config = config or SimulationConfig()
    log = log or (lambda line: print(line, file=sys.stderr))
    out = Path(out)
    if out.exists():
        raise ValueError(f"{out}: already exists; choose another output folder or remove it")
    if n is not None and n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    entries = load_foreground_manifest(fg_manifest)
    backgrounds = find_backgrounds(bg_dir)

    staging = staging_dir(out)
    settings = {
        "fg_manifest": str(Path(fg_manifest).resolve()),
        "bg_dir": str(Path(bg_dir).resolve()),
        "n": n,
        "seed": seed,
        "config": config.to_dict(),
    }
    settings_file = staging / "simulation.json"
    if staging.exists():
        previous = json.loads(settings_file.read_text()) if settings_file.is_file() else None
        if previous != settings:
            raise ValueError(
                f"{staging}: an unfinished run with other inputs or settings is there; "
                "remove it or choose another output folder"
            )
        log(f"resuming the unfinished run in {staging}")
        remove_stale_temporaries(staging, recursive=True)  # writes a killed run left half-done
    staging.mkdir(parents=True, exist_ok=True)
    write_text(settings_file, json.dumps(settings, indent=2) + "\n")

    # One Generator makes every draw (window choice, then Algorithm 1), so a seed fixes all.
    rng = np.random.default_rng(seed)
    foregrounds = _prepare_foregrounds(entries, staging, config, workers, progress, log)
    clips = _prepare_backgrounds(backgrounds, staging, config, n, rng, workers, progress, log)
    recipes = sample_recipes(clips, foregrounds, config, rng)
    return render_dataset(
        recipes,
        staging,
        out,
        sample_rate=config.sample_rate,
        workers=workers,
        progress=progress,
        log=log,
    )


def _prepare_foregrounds(
    entries: list[ForegroundEntry],
    staging: Path,
    config: SimulationConfig,
    workers: int,
    progress: bool,
    log: Callable[[str], None],
) -> list[ForegroundClip]:
    jobs = [
        (
            e,
            staging / "sources" / "fg" / f"{e.key}{SOURCE_SUFFIX}",
            config.sample_rate,
            config.clip_db,
        )
        for e in entries
    ]
    results = map_jobs(_trim_job, jobs, workers, desc="trim foregrounds", progress=progress)
    foregrounds = []
    for (entry, path, *_), (duration, problem) in zip(jobs, results, strict=True):
        if problem is not None:
            log(f"skipped foreground {entry.path}: {problem}")
        elif duration > config.clip_length:
            # Kept, it would end the placement loop of any clip it is drawn for.
            log(
                f"skipped foreground {entry.path}: {duration:g} s after trimming, longer than "
                f"the {config.clip_length:g} s background clips"
            )
        else:
            rel = path.relative_to(staging).as_posix()
            foregrounds.append(ForegroundClip(rel, tuple(entry.captions), duration))
    if not foregrounds:
        raise ValueError("no usable foreground clip (every one was skipped, see above)")
    return foregrounds


def _prepare_backgrounds(
    backgrounds: list[BackgroundFile],
    staging: Path,
    config: SimulationConfig,
    n: int | None,
    rng: np.random.Generator,
    workers: int,
    progress: bool,
    log: Callable[[str], None],
) -> list[BackgroundClip]:
    jobs = [(bg, config) for bg in backgrounds]
    results = map_jobs(_window_job, jobs, workers, desc="scan backgrounds", progress=progress)
    candidates: list[tuple[int, BackgroundWindow]] = []  # (recording index, window)
    for i, (bg, result) in enumerate(zip(backgrounds, results, strict=True)):
        windows, num_silent, problem = result
        if problem is not None:
            log(f"skipped background {bg.path}: {problem}")
            continue
        if not windows and not num_silent:
            log(f"skipped background {bg.path}: shorter than {config.clip_length:g} s")
        if num_silent:
            log(f"background {bg.path}: {num_silent} silent window(s) left out")
        candidates.extend((i, w) for w in windows)
    if not candidates:
        raise ValueError(f"no background window of {config.clip_length:g} s available")
    if n is not None and n > len(candidates):
        raise ValueError(
            f"asked for {n} background clips but the recordings offer {len(candidates)} "
            f"windows of {config.clip_length:g} s every {config.hop:g} s"
        )
    if n is not None:
        chosen = rng.choice(len(candidates), size=n, replace=False)
        candidates = [candidates[k] for k in sorted(chosen)]

    folder = staging / "sources" / "bg"
    per_file: dict[int, list[BackgroundWindow]] = {}
    for i, w in candidates:
        per_file.setdefault(i, []).append(w)
    cut_jobs = [(backgrounds[i], ws, folder, config.sample_rate) for i, ws in per_file.items()]
    problems = map_jobs(_cut_job, cut_jobs, workers, desc="cut backgrounds", progress=progress)
    failed = set()
    for (bg, *_), problem in zip(cut_jobs, problems, strict=True):
        if problem is not None:
            log(f"skipped background {bg.path}: {problem}")
            failed.add(bg.name)

    clips = []
    for i, w in candidates:
        bg = backgrounds[i]
        if bg.name not in failed:
            path = folder / bg.name / f"{w.label}{SOURCE_SUFFIX}"
            clips.append(
                BackgroundClip(
                    f"{bg.name}_{w.label}",
                    path.relative_to(staging).as_posix(),
                    (w.end_sample - w.start_sample) / config.sample_rate,
                )
            )
    return clips
