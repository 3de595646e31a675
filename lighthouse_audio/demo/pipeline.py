"""``lighthouse demo`` end to end: real sounds -> simulated dataset -> features -> AM-DETR -> test.

1. **sounds**: a folder laid out like ``shared/sounds`` (``--sounds``), else the files of the
   shipped Debian manifest rebuilt from their packages (:mod:`.debian`, cached).
2. **split** by recording (:mod:`.split`): foregrounds by count, backgrounds by duration.
3. **simulate** each split with Clotho-Moment's Algorithm 1 on short background clips
   (10 s by default), then renumber qids so the three splits share one feature folder.
4. **features**: ``lighthouse extract --feature aisfx-minilm`` over all three splits.
5. **train** AM-DETR (``qd_detr``, dataset ``custom``) with the trainer, validating every epoch;
   with ``joint_prior``, first align a joint space on the train split (:mod:`.joint_prior`).
6. **test**: predict with the best checkpoint, score with the standalone evaluator, compare with
   random windows, draw one test recording.

Data are keyed by the sound set and settings (``workdir/data/seed{S}-{hash}``) and reused by a
second run; each run trains into a new folder (``workdir/results/qd_detr/custom/aisfx-minilm``,
then ``-2``, ``-3``...), which also receives the test predictions, metrics and picture.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf

from lighthouse_audio.audio.decode import resampled_length
from lighthouse_audio.data.splits import SPLITS, split_by_recording
from lighthouse_audio.demo.config import TRAIN_DEFAULTS, DemoConfig
from lighthouse_audio.demo.sound_set import Recording, load_sound_set
from lighthouse_audio.file_io import write_text
from lighthouse_audio.simulation.preprocess import background_windows

__all__ = [
    "FEATURE",
    "DemoResult",
    "format_metrics_table",
    "run_demo",
    "safe_name",
]

FEATURE = "aisfx-minilm"
MODEL = "qd_detr"
DATASET = "custom"
SAMPLE_RATE = 32000
DATA_VERSION = 2  # bump when the split or simulation steps change: cached data are keyed by it
# Frame k covers [k, k + 1) s, the convention the dataset's span and saliency targets assume.
# aisfx-minilm's default ("center", frame k centred on k s, as in the released CLAP features) is
# off by half a frame, which does not matter for Clotho's 15-30 s moments but does for 1-3 s
# ones. The checkpoint records it (feature_manifest), so the predictor encodes the same way.
FRAMES = "none"
QID_STRIDE = 1_000_000  # split i's qids start at i * QID_STRIDE: one text-feature folder for all
TABLE_METRICS = (
    ("R1@0.5", "MR-full-R1@0.5"),
    ("R1@0.7", "MR-full-R1@0.7"),
    ("mAP@0.5", "MR-full-mAP@0.5"),
    ("mAP@0.75", "MR-full-mAP@0.75"),
    ("mAP", "MR-full-mAP"),
)


@dataclass
class DemoResult:
    run_dir: Path
    checkpoint: Path
    metrics_path: Path
    summary_path: Path
    picture_path: Path
    predictions_path: Path
    test_jsonl: Path
    features_dir: Path
    metrics: dict[str, float]
    chance: dict[str, dict[str, float]]
    data: dict[str, Any] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)


def run_demo(cfg: DemoConfig, log: Callable[[str], None] | None = None) -> DemoResult:
    """Run the six steps (module doc); returns where everything went and the test metrics."""
    log = log or (lambda line: print(line, file=sys.stderr))
    say = print
    timings: dict[str, float] = {}
    started, cpu_started = time.perf_counter(), time.process_time()
    workdir = Path(cfg.workdir)

    def step(n: int, what: str) -> None:
        timings_key = what.split()[0]
        timings[timings_key] = time.perf_counter()
        say(f"lighthouse demo [{n}/6] {what}")

    def done(key: str) -> None:
        timings[key] = round(time.perf_counter() - timings[key], 1)

    step(1, "sounds")
    recordings, sound_root = _obtain_sounds(cfg, log)
    done("sounds")

    step(2, "split by recording")
    data_dir = workdir / "data" / _data_key(cfg, recordings, sound_root)
    plan = _split(cfg, recordings, log)
    _write_json(data_dir / "splits.json", {s: [r.key for r in rs] for s, rs in plan.items()})
    for split in SPLITS:
        fg = sum(r.role == "fg" for r in plan[split])
        bg = sum(r.role == "bg" for r in plan[split])
        say(f"  {split}: {fg} captioned clips, {bg} background recording(s)")
    done("split")

    step(3, f"simulate {cfg.clip_length:g} s clips")
    annotations = {}
    data: dict[str, Any] = {}
    for index, split in enumerate(SPLITS):
        annotations[split], data[split] = _simulate_split(
            cfg, data_dir, split, index, plan[split], log
        )
    audio_dir = _link_audio(data_dir, annotations)
    done("simulate")

    step(4, f"extract {FEATURE} features")
    features_root = data_dir / "features"
    _extract(cfg, audio_dir, list(annotations.values()), features_root / DATASET)
    done("extract")

    step(5, f"train AM-DETR ({cfg.epochs} epochs)")
    extra: list[str] = []
    if cfg.joint_prior:
        from lighthouse_audio.demo.joint_prior import align_train_split

        say("  joint-space prior: align on the train split's foregrounds")
        space = align_train_split(plan["train"], data_dir / "joint", progress=cfg.progress)
        extra.append(f"joint_prior={space}")
    opt, run_dir, state = _train(cfg, workdir, features_root, annotations, extra)
    done("train")

    step(6, "test")
    result = _test(cfg, opt, run_dir, features_root, annotations, audio_dir, log)
    done("test")
    timings["total"] = round(time.perf_counter() - started, 1)
    timings["cpu"] = round(time.process_time() - cpu_started, 1)
    result.data = data
    result.timings = timings
    summary = {
        "settings": _jsonable(asdict(cfg)),
        "sounds": str(sound_root),
        "data_dir": str(data_dir),
        "data": data,
        "epochs": cfg.epochs,
        "best_epoch": state.best_epoch,
        "best_val_mAP": state.best_score,
        "test": {"AM-DETR": result.metrics, **result.chance},
        "checkpoint": str(result.checkpoint),
        "feature": FEATURE,
        "frames": FRAMES,
        "picture": str(result.picture_path),
        "timings_s": timings,
    }
    _write_json(result.summary_path, summary)

    test = data["test"]
    say("")
    say(
        f"lighthouse demo: test set of {test['clips']} clips, {test['queries']} queries "
        f"(recordings never heard in training)"
    )
    rows = [(f"AM-DETR ({FEATURE}, {cfg.epochs} epochs)", result.metrics)]
    rows += [(f"chance: {name}", values) for name, values in result.chance.items()]
    say(format_metrics_table(rows))
    say("")
    say(f"checkpoint: {result.checkpoint}")
    say(f"metrics:    {result.metrics_path} (summary: {result.summary_path})")
    say(f"picture:    {result.picture_path}")
    say(
        f"reuse:      lighthouse infer --checkpoint {result.checkpoint} --jsonl "
        f"{result.test_jsonl} --features {result.features_dir} --out test_preds.jsonl --eval"
    )
    say(f'predictor:  QDDETRPredictor("{result.checkpoint}")  (any length; frames as trained)')
    say(f"shell:      lighthouse predict RECORDING --query TEXT --checkpoint {result.checkpoint}")
    say(f"wall time:  {timings['total']:.0f} s (CPU {timings['cpu']:.0f} s)")
    return result


def format_metrics_table(rows: Sequence[tuple[str, dict[str, float]]]) -> str:
    """A fixed-width table of R1@0.5/0.7 and mAP@0.5/0.75/avg (percent), one row per method."""
    width = max(len(name) for name, _ in rows)
    header = f"{'':<{width}}  " + "  ".join(f"{title:>8}" for title, _ in TABLE_METRICS)
    lines = [header]
    for name, values in rows:
        cells = "  ".join(f"{values[key]:>8.2f}" for _, key in TABLE_METRICS)
        lines.append(f"{name:<{width}}  {cells}")
    return "\n".join(lines)


def _obtain_sounds(cfg: DemoConfig, log: Callable[[str], None]) -> tuple[list[Recording], Path]:
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
        Recording(root / s.path, s.path, s.role, s.caption, s.label, s.duration) for s in sources
    ]
    print(f"  {len(recordings)} sounds from {', '.join(packages)} in {root}")
    return recordings, root


def _data_key(cfg: DemoConfig, recordings: Sequence[Recording], root: Path) -> str:
    """``seed{S}-{hash}`` of the sound set and every setting that shapes the data."""
    content = {
        "version": DATA_VERSION,
        "root": str(root.resolve()),
        "recordings": [(r.key, r.role, r.caption, r.duration) for r in recordings],
        "settings": [cfg.seed, cfg.clip_length, cfg.hop, cfg.avg_interval, list(cfg.clips)],
        "fractions": list(cfg.fractions),
    }
    digest = hashlib.sha256(json.dumps(content, sort_keys=True).encode()).hexdigest()[:10]
    return f"seed{cfg.seed}-{digest}"


def _split(
    cfg: DemoConfig, recordings: Sequence[Recording], log: Callable[[str], None]
) -> dict[str, list[Recording]]:
    """Foregrounds in ``cfg.fractions`` by count; backgrounds by the clips they can give, in
    proportion to the clips asked for (200 shuffles, the most even kept: see ``split``)."""
    foregrounds = [r for r in recordings if r.role == "fg"]
    windows = {}
    for r in recordings:
        if r.role != "bg":
            continue
        windows[r.key] = _available_windows([r], cfg)
        if not windows[r.key]:
            log(f"background {r.key} is shorter than {cfg.clip_length:g} s: left out")
    backgrounds = [r for r in recordings if windows.get(r.key)]

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
    if dst.is_symlink() or dst.exists():
        return
    dst.parent.mkdir(parents=True, exist_ok=True)
    try:
        dst.symlink_to(src.resolve())
    except OSError:  # no symlinks here (some filesystems): a copy does the same job
        shutil.copyfile(src, dst)


def _available_windows(recordings: Sequence[Recording], cfg: DemoConfig) -> int:
    total = 0
    for r in recordings:
        info = sf.info(os.fspath(r.path))
        num_samples = resampled_length(info.frames, info.samplerate, SAMPLE_RATE)
        total += len(background_windows(num_samples, SAMPLE_RATE, cfg.clip_length, cfg.hop))
    return total


def _simulate_split(
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
        json.dumps({"path": str(r.path.resolve()), "caption": r.caption, "key": safe_name(r.key)})
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
        available = _available_windows(backgrounds, cfg)
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


def _link_audio(data_dir: Path, annotations: dict[str, Path]) -> Path:
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


def _extract(cfg: DemoConfig, audio_dir: Path, jsonls: list[Path], out: Path) -> None:
    from lighthouse_audio.cli.main import build_parser

    argv = ["extract", "--feature", FEATURE, "--audio-dir", str(audio_dir), "--out", str(out)]
    argv += ["--frames", FRAMES]
    argv += [arg for path in jsonls for arg in ("--jsonl", str(path))]
    argv += ["--device", cfg.device] + ([] if cfg.progress else ["--no-progress"])
    args = build_parser().parse_args(argv)
    if args.func(args):
        raise RuntimeError("feature extraction failed for some recordings (see above)")


def _train(
    cfg: DemoConfig,
    workdir: Path,
    features_root: Path,
    annotations: dict[str, Path],
    extra: Sequence[str] = (),
) -> tuple[Any, Path, Any]:
    from lighthouse_audio.config import load_config
    from lighthouse_audio.devices import resolve_device
    from lighthouse_audio.engine.run_dir import claim_run_dir
    from lighthouse_audio.engine.train import train

    frames = int(np.ceil(cfg.clip_length)) + 1  # 1 s windows, FRAMES="none": N frames for N s
    device = resolve_device(cfg.device)  # the config records the device actually used
    overrides = [
        f"train_path={annotations['train']}",
        f"eval_path={annotations['val']}",
        f"features_root={features_root}",
        f"results_dir={workdir / 'results'}",
        f"device={device}",
        f"n_epoch={cfg.epochs}",
        f"seed={cfg.seed}",
        f"max_v_l={frames}",
        f"max_a_l={frames}",
        "num_workers=0",
        *TRAIN_DEFAULTS,
        *extra,
        *cfg.train_overrides,
    ]
    opt = load_config(MODEL, DATASET, FEATURE, overrides)
    run_dir = claim_run_dir(opt)
    print(f"  run folder {run_dir}")
    state = train(opt, run_dir, device, progress=cfg.progress)
    print(f"  best validation mAP {state.best_score:.2f} at epoch {state.best_epoch}")
    return opt, run_dir, state


def _test(
    cfg: DemoConfig,
    opt: Any,
    run_dir: Path,
    features_root: Path,
    annotations: dict[str, Path],
    audio_dir: Path,
    log: Callable[[str], None],
) -> DemoResult:
    from lighthouse_audio.data.loaders import build_dataset, build_feature_stores, build_loader
    from lighthouse_audio.demo.chance import chance_metrics
    from lighthouse_audio.demo.picture import write_moment_picture
    from lighthouse_audio.engine.validation import predict
    from lighthouse_audio.evaluation.metrics import eval_submission
    from lighthouse_audio.file_io import write_json, write_jsonl
    from lighthouse_audio.prediction.model import load_model

    checkpoint = run_dir / "best.ckpt"
    if not checkpoint.is_file():  # validation mAP never rose above 0: no best.ckpt
        log(f"{checkpoint} was never written (validation mAP stayed 0); testing last.ckpt")
        checkpoint = run_dir / "last.ckpt"
    loaded = load_model(checkpoint, device=str(opt.device))
    dataset = build_dataset(loaded.opt, annotations["test"], build_feature_stores(loaded.opt))
    loader = build_loader(dataset, int(opt.eval_bsz), shuffle=False)
    predictions = predict(loaded.model, loader, loaded.postprocessor, loaded.device, cfg.progress)
    ground_truth = [q.to_dict() for q in dataset.queries]
    metrics = eval_submission(predictions, ground_truth)
    predictions_path = run_dir / "test_preds.jsonl"
    write_jsonl(predictions, predictions_path)
    metrics_path = run_dir / "test_metrics.json"
    write_json(metrics, metrics_path)

    train_lines = [json.loads(x) for x in annotations["train"].read_text().splitlines() if x]
    lengths = [e - s for q in train_lines for s, e in q["relevant_windows"] if e > s]
    chance = {
        "random windows": chance_metrics(ground_truth, seed=cfg.seed),
        "random windows, train lengths": chance_metrics(ground_truth, cfg.seed, lengths=lengths),
    }

    # The test clip with the most queries (ties: the first by name) makes the picture.
    per_vid: dict[str, list[dict]] = {}
    by_qid = {p["qid"]: p for p in predictions}
    for q in ground_truth:
        per_vid.setdefault(q["vid"], []).append({**q, **by_qid[q["qid"]]})
    vid = min(per_vid, key=lambda v: (-len(per_vid[v]), v))
    picture = write_moment_picture(
        audio_dir / f"{vid}.wav",
        sorted(per_vid[vid], key=lambda q: q["relevant_windows"][0][0]),
        run_dir / "test_example.png",
        title=f"{vid} (test): true moments (green) and AM-DETR's top prediction (orange)",
    )
    return DemoResult(
        run_dir=run_dir,
        checkpoint=checkpoint,
        metrics_path=metrics_path,
        summary_path=run_dir / "demo_summary.json",
        picture_path=picture,
        predictions_path=predictions_path,
        test_jsonl=annotations["test"],
        features_dir=features_root / DATASET,
        metrics=metrics["brief"],
        chance=chance,
    )


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    return value


def _write_json(path: Path, obj: Any) -> None:
    write_text(path, json.dumps(obj, indent=2) + "\n")
