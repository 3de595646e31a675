"""The demo's data steps: sounds, the split by recording, simulated clips, features.

Data are keyed by the sound set and every setting that shapes them
(``workdir/data/seed{S}-{hash}``, by the split and the test recordings' settings), so a second
run reuses them. Training clips shorter than the test recordings live in a folder of their own
inside it (``train{L}s-{hash}``), so several training lengths share one set of test recordings.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import soundfile as sf

from lighthouse_audio.audio.decode import resampled_length
from lighthouse_audio.data.splits import SPLITS, split_by_recording
from lighthouse_audio.demo.config import DemoConfig
from lighthouse_audio.demo.settings import (
    DATA_VERSION,
    DATASET,
    FEATURE,
    FRAMES,
    QID_STRIDE,
    SAMPLE_RATE,
)
from lighthouse_audio.demo.sound_set import Recording, load_sound_set
from lighthouse_audio.file_io import write_text
from lighthouse_audio.simulation.preprocess import background_windows


@dataclass
class DemoData:
    """Where :func:`prepare_data` put everything. ``train`` holds the annotations the model
    trains and picks its epoch on (``train``, ``val``), ``test`` those it is tested on
    (``val`` to tune scores and the baseline, ``test``); each with its features folder."""

    data_dir: Path
    train: dict[str, Path]
    train_features: Path
    test: dict[str, Path]
    test_features: Path
    audio_dir: Path  # the test recordings' audio ({vid}.wav)
    stats: dict[str, dict[str, Any]]


def plan_data(
    cfg: DemoConfig, recordings: Sequence[Recording], root: Path, log: Callable[[str], None]
) -> tuple[Path, dict[str, list[Recording]]]:
    """The data folder and the split by recording, by the test recordings' settings
    (``cfg.test_recordings()``); the split is written to ``splits.json`` there."""
    long = cfg.test_recordings()
    data_dir = Path(cfg.workdir) / "data" / data_key(long, recordings, root)
    plan = split_sounds(long, recordings, log)
    write_json_file(data_dir / "splits.json", {s: [r.key for r in rs] for s, rs in plan.items()})
    return data_dir, plan


def prepare_data(
    cfg: DemoConfig, data_dir: Path, plan: dict[str, list[Recording]], log: Callable[[str], None]
) -> DemoData:
    """Simulate (reusing what exists) and extract features for :func:`plan_data`'s split.

    Val and test follow ``cfg.test_recordings()``; training clips follow ``cfg`` (train, and
    val to pick the epoch unless ``cfg.pick_on_recordings``) unless they are as long as the
    test recordings, when the model trains on the test recordings' own train split.
    """
    long = cfg.test_recordings()
    long_splits = SPLITS if cfg.trains_on_test_recordings else ("val", "test")
    annotations, stats = {}, {}
    for index, split in enumerate(SPLITS):
        if split in long_splits:
            annotations[split], stats[split] = simulate_split(
                long, data_dir, split, index, plan[split], log
            )
    audio_dir = link_audio(data_dir, annotations)
    features = data_dir / "features"
    extract_features(cfg, audio_dir, list(annotations.values()), features / DATASET)
    test = {split: annotations[split] for split in ("val", "test")}
    if cfg.trains_on_test_recordings:
        return DemoData(data_dir, annotations, features, test, features, audio_dir, stats)

    train_dir = data_dir / f"train{cfg.clip_length:g}s-{train_clips_key(cfg)}"
    train = {}
    for index, split in enumerate(("train", "val")):
        if split == "val" and cfg.pick_on_recordings:  # the val recordings pick the epoch
            continue
        train[split], stats[f"{split} ({cfg.clip_length:g} s)"] = simulate_split(
            cfg, train_dir, split, index, plan[split], log
        )
    train_audio = link_audio(train_dir, train)
    extract_features(cfg, train_audio, list(train.values()), train_dir / "features" / DATASET)
    return DemoData(data_dir, train, train_dir / "features", test, features, audio_dir, stats)


def train_clips_key(cfg: DemoConfig) -> str:
    """A hash of the settings that shape the training clips (beyond the split)."""
    numbers = (cfg.clip_length, cfg.hop, cfg.avg_interval, cfg.repeat_prob)
    content = [*map(float, numbers), list(cfg.clips[:2])]  # 20 and 20.0 are the same clips
    return hashlib.sha256(json.dumps(content).encode()).hexdigest()[:8]


def obtain_sounds(cfg: DemoConfig, log: Callable[[str], None]) -> tuple[list[Recording], Path]:
    if cfg.sounds is not None:
        root = Path(cfg.sounds)
        return load_sound_set(root, log), root
    from lighthouse_audio.demo.debian import rebuild_sound_set
    from lighthouse_audio.demo.debian_sources import default_packages
    from lighthouse_audio.paths import default_cache_dir

    cache = Path(cfg.cache_dir) if cfg.cache_dir is not None else default_cache_dir()
    root = cache / "sounds"
    packages = cfg.packages or default_packages()
    sources = rebuild_sound_set(root, packages, cache, SAMPLE_RATE, cfg.progress, log)
    recordings = [
        Recording(root / s.path, s.path, s.role, s.caption, s.label, s.duration, s.captions or ())
        for s in sources
    ]
    print(f"  {len(recordings)} sounds from {', '.join(packages)} in {root}")
    return recordings, root


def data_key(cfg: DemoConfig, recordings: Sequence[Recording], root: Path) -> str:
    """``seed{S}-{hash}`` of the sound set and every setting that shapes the data."""
    content = {
        "version": DATA_VERSION,
        "root": str(root.resolve()),
        "recordings": [(r.key, r.role, r.all_captions, r.duration) for r in recordings],
        "settings": [cfg.seed, cfg.clip_length, cfg.hop, cfg.avg_interval, list(cfg.clips)]
        + ([cfg.repeat_prob] if cfg.repeat_prob else []),  # older keys stay valid
        "fractions": list(cfg.fractions),
    }
    digest = hashlib.sha256(json.dumps(content, sort_keys=True).encode()).hexdigest()[:10]
    return f"seed{cfg.seed}-{digest}"


def split_sounds(
    cfg: DemoConfig, recordings: Sequence[Recording], log: Callable[[str], None]
) -> dict[str, list[Recording]]:
    """Foregrounds in ``cfg.fractions`` by count; backgrounds by the clips they can give, in
    proportion to the clips asked for (200 shuffles, the most even kept: see ``split``)."""
    foregrounds = [r for r in recordings if r.role == "fg"]
    windows = {}
    for r in recordings:
        if r.role != "bg":
            continue
        windows[r.key] = available_windows([r], cfg)
        if not windows[r.key]:
            log(f"background {r.key} is shorter than {cfg.clip_length:g} s: left out")
    backgrounds = [r for r in recordings if windows.get(r.key)]
    if len(backgrounds) < len(SPLITS):  # each split needs its own
        longest = max((r.seconds() for r in recordings if r.role == "bg"), default=0.0)
        raise ValueError(
            f"{len(backgrounds)} background recording(s) of at least {cfg.clip_length:g} s, "
            f"but each of the {len(SPLITS)} splits needs its own (the longest is "
            f"{longest:.1f} s): add ambiences, or shorten --test-length (or --clip-length)"
        )

    def key(r: Recording) -> str:
        return r.key

    fg = split_by_recording(foregrounds, cfg.fractions, cfg.seed, key)
    bg = split_by_recording(
        backgrounds, cfg.clips, cfg.seed, key, weight=lambda r: windows[r.key], tries=200
    )
    return {s: fg[s] + bg[s] for s in SPLITS}


def safe_name(key: str) -> str:
    """``fg/animal/dog 1.flac`` -> ``fg__animal__dog_1`` (unique where the keys are)."""
    stem = str(Path(key).with_suffix("")).replace("/", "__").replace(os.sep, "__")
    return re.sub(r"[^A-Za-z0-9._-]+", "_", stem).strip("._") or "sound"


def _link(src: Path, dst: Path) -> None:
    if dst.is_symlink() and not dst.exists():  # its target moved (a work folder moved or copied)
        dst.unlink()
    if dst.is_symlink() or dst.exists():
        return
    dst.parent.mkdir(parents=True, exist_ok=True)
    try:
        dst.symlink_to(src.resolve())
    except OSError:  # no symlinks here (some filesystems): a copy does the same job
        shutil.copyfile(src, dst)


def available_windows(recordings: Sequence[Recording], cfg: DemoConfig) -> int:
    total = 0
    for r in recordings:
        info = sf.info(os.fspath(r.path))
        num_samples = resampled_length(info.frames, info.samplerate, SAMPLE_RATE)
        total += len(background_windows(num_samples, SAMPLE_RATE, cfg.clip_length, cfg.hop))
    return total


def simulate_split(
    cfg: DemoConfig,
    data_dir: Path,
    split: str,
    index: int,
    recordings: Sequence[Recording],
    log: Callable[[str], None],
) -> tuple[Path, dict[str, Any]]:
    """Simulate one split (reused when done) and write its annotations with split-unique qids."""
    from lighthouse_audio.simulation.sampler import SimulationConfig
    from lighthouse_audio.simulation.simulate import simulate_dataset

    inputs = data_dir / "inputs" / split
    fg_manifest = inputs / "foregrounds.jsonl"
    bg_dir = inputs / "backgrounds"
    lines = [
        json.dumps(
            {"path": str(r.path.resolve()), "captions": r.all_captions, "key": safe_name(r.key)}
        )
        for r in recordings
        if r.role == "fg"
    ]
    write_text(fg_manifest, "".join(line + "\n" for line in lines))
    backgrounds = [r for r in recordings if r.role == "bg"]
    for r in backgrounds:
        _link(r.path, bg_dir / f"{safe_name(r.key)}{r.path.suffix}")

    out = data_dir / "simulated" / split
    wanted = cfg.clips[index]
    if not (out / "annotations.jsonl").is_file():
        available = available_windows(backgrounds, cfg)
        n = min(wanted, available)
        if n < wanted:
            log(
                f"{split}: its backgrounds hold {available} clips of "
                f"{cfg.clip_length:g} s; using all"
            )
        config = SimulationConfig(
            sample_rate=SAMPLE_RATE,
            clip_length=cfg.clip_length,
            hop=cfg.hop,
            avg_interval=cfg.avg_interval,
            repeat_prob=cfg.repeat_prob,
        )
        report = simulate_dataset(
            fg_manifest, bg_dir, out, config, n=n, seed=cfg.seed * len(SPLITS) + index,
            progress=cfg.progress, log=log,
        )  # fmt: skip
        print(f"  {split}: {report.summary()}")
    else:
        print(f"  {split}: reusing {out}")

    target = data_dir / "annotations" / f"{split}.jsonl"
    queries = []
    for line in (out / "annotations.jsonl").read_text(encoding="utf-8").splitlines():
        if line.strip():
            query = json.loads(line)
            query["qid"] = str(index * QID_STRIDE + int(query["qid"]))
            queries.append(query)
    write_text(target, "".join(json.dumps(q) + "\n" for q in queries))
    stats = {
        "foreground_recordings": len(lines),
        "background_recordings": len(backgrounds),
        "background_seconds": round(sum(r.seconds() for r in backgrounds), 1),
        "clips": len({q["vid"] for q in queries}),
        "queries": len(queries),
    }
    return target, stats


def link_audio(data_dir: Path, annotations: dict[str, Path]) -> Path:
    """``data_dir/audio/{vid}.wav`` for every split (vids are unique: backgrounds are split)."""
    audio_dir = data_dir / "audio"
    owner: dict[str, str] = {}
    for split, path in annotations.items():
        for line in path.read_text(encoding="utf-8").splitlines():
            vid = json.loads(line)["vid"]
            if owner.setdefault(vid, split) != split:
                raise ValueError(f"clip {vid} is in both {owner[vid]} and {split}")
            src = data_dir / "simulated" / split / "audio" / f"{vid}.wav"
            _link(src, audio_dir / f"{vid}.wav")
    return audio_dir


def extract_features(cfg: DemoConfig, audio_dir: Path, jsonls: list[Path], out: Path) -> None:
    from lighthouse_audio.extraction.extract import build_encoder, extract_features

    encoder = build_encoder(FEATURE, cfg.device)
    audio, text = extract_features(
        encoder, FEATURE, audio_dir, out, jsonls, frames=FRAMES, progress=cfg.progress
    )
    print(audio.summary("audio"))
    print(text.summary("text") if text is not None else "text: none")
    if audio.failed or (text is not None and text.failed):
        raise RuntimeError("feature extraction failed for some recordings (see above)")


def jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    return value


def write_json_file(path: Path, obj: Any) -> None:
    write_text(path, json.dumps(obj, indent=2) + "\n")
