"""``lighthouse demo`` end to end: real sounds -> simulated dataset -> features -> AM-DETR -> test.

1. **sounds**: a folder laid out like ``shared/sounds`` (``--sounds``), else the files of the
   shipped Debian manifest rebuilt from their packages (:mod:`.debian`, cached).
2. **split** by recording (``data.splits``): foregrounds by count, backgrounds by duration.
3. **simulate** each split with Clotho-Moment's Algorithm 1 on short background clips
   (10 s by default), then renumber qids so the three splits share one feature folder.
4. **features**: ``extraction.extract.extract_features`` (what ``lighthouse extract`` runs) with
   ``aisfx-minilm`` over all three splits.
5. **train** AM-DETR (``qd_detr``, dataset ``custom``) with the trainer, validating every epoch;
   with ``joint_prior``, first align a joint space on the train split (:mod:`.joint_prior`).
6. **test**: predict with the best checkpoint, score with the standalone evaluator, compare with
   the 1 s sliding-window baseline tuned on val (:mod:`.baseline`) and random windows, draw one
   test recording.

Data are keyed by the sound set and settings (``workdir/data/seed{S}-{hash}``) and reused by a
second run; each run trains into a new folder (``workdir/results/qd_detr/custom/aisfx-minilm``,
then ``-2``, ``-3``...), which also receives the test predictions, metrics and picture.
Steps 1-4 live in :mod:`.data`, 5-6 in :mod:`.training`; this module runs them and reports.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from lighthouse_audio.data.splits import SPLITS
from lighthouse_audio.demo.baseline import BASELINE_NAME, tuned_baseline
from lighthouse_audio.demo.config import DemoConfig
from lighthouse_audio.demo.data import (
    data_key,
    extract_features,
    jsonable,
    link_audio,
    obtain_sounds,
    simulate_split,
    split_sounds,
    write_json_file,
)
from lighthouse_audio.demo.settings import DATASET, FEATURE, FRAMES, TABLE_METRICS
from lighthouse_audio.demo.training import DemoResult, test_model, train_model

__all__ = ["DemoResult", "format_metrics_table", "run_demo"]


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
    recordings, sound_root = obtain_sounds(cfg, log)
    done("sounds")

    step(2, "split by recording")
    data_dir = workdir / "data" / data_key(cfg, recordings, sound_root)
    plan = split_sounds(cfg, recordings, log)
    write_json_file(data_dir / "splits.json", {s: [r.key for r in rs] for s, rs in plan.items()})
    for split in SPLITS:
        fg = sum(r.role == "fg" for r in plan[split])
        bg = sum(r.role == "bg" for r in plan[split])
        say(f"  {split}: {fg} captioned clips, {bg} background recording(s)")
    done("split")

    step(3, f"simulate {cfg.clip_length:g} s clips")
    annotations = {}
    data: dict[str, Any] = {}
    for index, split in enumerate(SPLITS):
        annotations[split], data[split] = simulate_split(
            cfg, data_dir, split, index, plan[split], log
        )
    audio_dir = link_audio(data_dir, annotations)
    done("simulate")

    step(4, f"extract {FEATURE} features")
    features_root = data_dir / "features"
    extract_features(cfg, audio_dir, list(annotations.values()), features_root / DATASET)
    done("extract")

    step(5, f"train AM-DETR ({cfg.epochs} epochs)")
    extra: list[str] = []
    if cfg.joint_prior:
        from lighthouse_audio.demo.joint_prior import align_train_split

        say("  joint-space prior: align on the train split's foregrounds")
        space = align_train_split(plan["train"], data_dir / "joint", progress=cfg.progress)
        extra.append(f"joint_prior={space}")
    opt, run_dir, state = train_model(cfg, workdir, features_root, annotations, extra)
    done("train")

    step(6, "test")
    result = test_model(cfg, opt, run_dir, features_root, annotations, audio_dir, log)
    say("  baseline: align a joint space on the train split, tune on val, score test")
    baseline = tuned_baseline(plan["train"], data_dir, features_root, annotations,
                              workdir / "results", progress=cfg.progress)  # fmt: skip
    done("test")
    timings["total"] = round(time.perf_counter() - started, 1)
    timings["cpu"] = round(time.process_time() - cpu_started, 1)
    result.data = data
    result.timings = timings
    summary = {
        "settings": jsonable(asdict(cfg)),
        "sounds": str(sound_root),
        "data_dir": str(data_dir),
        "data": data,
        "epochs": cfg.epochs,
        "best_epoch": state.best_epoch,
        "best_val_mAP": state.best_score,
        "test": {"AM-DETR": result.metrics, BASELINE_NAME: baseline["test"], **result.chance},
        "baseline": baseline,
        "checkpoint": str(result.checkpoint),
        "feature": FEATURE,
        "frames": FRAMES,
        "picture": str(result.picture_path),
        "timings_s": timings,
    }
    write_json_file(result.summary_path, summary)

    test = data["test"]
    say("")
    say(
        f"lighthouse demo: test set of {test['clips']} clips, {test['queries']} queries "
        f"(recordings never heard in training)"
    )
    rows = [(f"AM-DETR ({FEATURE}, {cfg.epochs} epochs)", result.metrics)]
    rows.append((BASELINE_NAME, baseline["test"]))
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
