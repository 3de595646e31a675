"""``lighthouse demo`` end to end: real sounds -> simulated dataset -> features -> AM-DETR -> test.

1. **sounds**: a folder laid out like ``shared/sounds`` (``--sounds``), else the files of the
   shipped Debian manifest rebuilt from their packages (:mod:`.debian`, cached).
2. **split** by recording (``data.splits``): foregrounds by count, backgrounds by the test
   recordings they can give (those shorter than a test recording are left out).
3. **simulate** with Clotho-Moment's Algorithm 1: val and test as 60 s recordings (several events,
   some sounds twice), train and a val split for picking the epoch as short clips (10 s by
   default; qids renumbered so splits share a feature folder); then **features**
   (``extraction.extract.extract_features``, what ``lighthouse extract`` runs) with
   ``aisfx-minilm`` (:func:`.data.prepare_data`).
4. **train** AM-DETR (``qd_detr``, dataset ``custom``) on the short clips, validating every
   epoch; with ``joint_prior``, first align a joint space on the train split (:mod:`.joint_prior`).
5. **test**: with a joint prior, tune the score mix on the 60 s val recordings; predict the 60 s
   test recordings with the best checkpoint (in overlapping chunks: ``prediction.split``), score
   with the standalone evaluator, compare with the 1 s sliding-window baseline tuned on the 60 s
   val recordings (:mod:`.baseline`) and random windows, draw one test recording.

Data are keyed by the sound set and settings (``workdir/data/seed{S}-{hash}``) and reused by a
second run; each run trains into a new folder (``workdir/results/qd_detr/custom/aisfx-minilm``,
then ``-2``, ``-3``...), which also receives the test predictions, metrics and picture.
Steps 1-3 live in :mod:`.data`, 4-5 in :mod:`.training`; this module runs them and reports.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict
from pathlib import Path

from lighthouse_audio.data.splits import SPLITS
from lighthouse_audio.demo.baseline import BASELINE_NAME, tuned_baseline
from lighthouse_audio.demo.config import DemoConfig
from lighthouse_audio.demo.data import (
    jsonable,
    obtain_sounds,
    plan_data,
    prepare_data,
    write_json_file,
)
from lighthouse_audio.demo.settings import DATASET, FEATURE, FRAMES, TABLE_METRICS
from lighthouse_audio.demo.training import DemoResult, test_model, train_model

__all__ = ["DemoResult", "format_metrics_table", "run_demo"]


def run_demo(cfg: DemoConfig, log: Callable[[str], None] | None = None) -> DemoResult:
    """Run the five steps (module doc); returns where everything went and the test metrics."""
    log = log or (lambda line: print(line, file=sys.stderr))
    say = print
    timings: dict[str, float] = {}
    started, cpu_started = time.perf_counter(), time.process_time()
    workdir = Path(cfg.workdir)

    def step(n: int, what: str) -> None:
        timings_key = what.split()[0]
        timings[timings_key] = time.perf_counter()
        say(f"lighthouse demo [{n}/5] {what}")

    def done(key: str) -> None:
        timings[key] = round(time.perf_counter() - timings[key], 1)

    step(1, "sounds")
    recordings, sound_root = obtain_sounds(cfg, log)
    done("sounds")

    step(2, "split by recording")
    data_dir, plan = plan_data(cfg, recordings, sound_root, log)
    for split in SPLITS:
        fg = sum(r.role == "fg" for r in plan[split])
        bg = sum(r.role == "bg" for r in plan[split])
        say(f"  {split}: {fg} captioned clips, {bg} background recording(s)")
    done("split")

    lengths = f"{cfg.clip_length:g} s clips"
    if not cfg.trains_on_test_recordings:
        lengths = f"{cfg.clip_length:g} s training clips, {cfg.test_length:g} s test recordings"
    step(3, f"simulate {lengths}; extract {FEATURE} features")
    data = prepare_data(cfg, data_dir, plan, log)
    done("simulate")

    step(4, f"train AM-DETR ({cfg.epochs} epochs)")
    extra: list[str] = []
    if cfg.joint_prior:
        from lighthouse_audio.demo.joint_prior import align_train_split

        say("  joint-space prior: align on the train split's foregrounds and training clips")
        moments = (data.train["train"], data.train_features / DATASET)
        moments = moments if cfg.prior_moments else None
        space = align_train_split(plan["train"], data_dir / "joint", moments=moments,
                                  heldout=cfg.align_heldout, progress=cfg.progress)  # fmt: skip
        extra.append(f"joint_prior={space}")
        if cfg.prior_folds and moments is not None:
            from lighthouse_audio.demo.joint_prior import cross_fitted_folds

            say(f"  cross-fitted prior: {cfg.prior_folds} fold spaces, each without some sounds")
            folds = cross_fitted_folds(plan["train"], data_dir / "joint", moments,
                                       cfg.prior_folds, cfg.seed, cfg.align_heldout,
                                       cfg.progress)  # fmt: skip
            extra.append(f"joint_prior_folds={folds}")
    val_recordings = None
    if cfg.pick_on_recordings and not cfg.trains_on_test_recordings:
        val_recordings = (data.test["val"], data.test_features)
    opt, run_dir, state = train_model(
        cfg, workdir, data.train_features, data.train, extra, val_recordings
    )
    done("train")

    step(5, "test")
    result = test_model(cfg, opt, run_dir, data, log)
    say("  baseline: align a joint space on the train split, tune on val, score test")
    baseline = tuned_baseline(plan["train"], data_dir, data.test_features, data.test,
                              workdir / "results", cfg.align_heldout, cfg.progress)  # fmt: skip
    done("test")
    timings["total"] = round(time.perf_counter() - started, 1)
    timings["cpu"] = round(time.process_time() - cpu_started, 1)
    result.data = data.stats
    result.timings = timings
    summary = {
        "settings": jsonable(asdict(cfg)),
        "sounds": str(sound_root),
        "data_dir": str(data_dir),
        "data": data.stats,
        "epochs": cfg.epochs,
        "best_epoch": state.best_epoch,
        "best_val_mAP": state.best_score,
        "score_mix_val_mAP": result.mix_val_mAP,
        "prior_refine": result.prior_refine,
        "prior_refine_val_mAP": result.refine_val_mAP,
        "checkpoints_val_mAP": result.candidates_val_mAP,
        "kept": result.kept,
        "test": {"AM-DETR": result.metrics, BASELINE_NAME: baseline["test"], **result.chance},
        "baseline": baseline,
        "checkpoint": str(result.checkpoint),
        "feature": FEATURE,
        "frames": FRAMES,
        "picture": str(result.picture_path),
        "timings_s": timings,
    }
    write_json_file(result.summary_path, summary)

    test, length = data.stats["test"], cfg.test_recordings().clip_length
    say("")
    say(
        f"lighthouse demo: test set of {test['clips']} recordings of {length:g} s, "
        f"{test['queries']} queries (sounds and backgrounds never heard in training)"
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
