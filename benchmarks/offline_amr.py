"""Offline real-audio benchmark: AM-DETR, the sliding-window baseline and chance, on a
moment-retrieval set simulated from real recordings.

Uses the demo (``lighthouse_audio.demo.run``) on the project's shared sound set
(``../shared/sounds``: 390 captioned foreground clips and 20 ambiences from Debian packages, or
any folder laid out like it):

1. split the recordings into train/val/test by recording (a clip is never in two splits);
2. simulate Clotho-Moment-style clips (Algorithm 1) on 10 s background windows (the demo's
   settings: ``lighthouse_audio/demo/config.py`` says why 10 s);
3. extract ``aisfx-minilm`` features (1 s windows: aisfx CNN audio, MiniLM text tokens);
4. train AM-DETR (QD-DETR) with the trainer, keeping the best epoch by validation mAP;
5. score the test split with the standalone evaluator and compare with chance (random windows,
   uniform, and with the training set's moment lengths), averaged over 10 draws;
6. the zero-shot sliding-window baseline with 1, 4 and 7 s windows through a joint space aligned
   on the train split only, tuned on val, scored on test (``offline_baseline.py``);
7. ``lighthouse report`` over the run folders and chance: ``WORKDIR/report`` (Table I + PNG).

    python benchmarks/offline_amr.py                          # 1000/150/300 clips, 25 epochs
    python benchmarks/offline_amr.py --epochs 40 --clips 400,60,120 --threads 2 --json out.json
    python benchmarks/offline_amr.py --joint-prior input_dropout=0.5   # AM-DETR + joint prior

Everything is cached in ``benchmarks/.cache/offline_amr``: a rerun with the same settings reuses
the simulated audio, features, joint space and finished runs (``--retrain``: train AM-DETR into a
new run folder). All numbers: ``WORKDIR/offline_results.json``. Results: docs/RESULTS.md.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

from offline_baseline import WINDOWS, cli, run_baselines

HERE = Path(__file__).resolve().parent
DEFAULT_SOUNDS = HERE.parent.parent / "shared" / "sounds"


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sounds", type=Path, default=DEFAULT_SOUNDS, help="shared/sounds-like")
    parser.add_argument("--workdir", type=Path, default=HERE / ".cache" / "offline_amr")
    parser.add_argument("--epochs", type=int, default=25)
    parser.add_argument("--clips", default="1000,150,300", help="background clips TRAIN,VAL,TEST")
    parser.add_argument("--clip-length", type=float, help="s (default: the demo's)")
    parser.add_argument("--avg-interval", type=float, help="mean gap, s (default: the demo's)")
    parser.add_argument("--repeat-prob", type=float, default=0.0,
                        help="chance a sound is placed again (two-window queries)")  # fmt: skip
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--windows", type=int, nargs="*", default=list(WINDOWS),
                        help="baseline windows, s (default 1 4 7; none: no baseline)")  # fmt: skip
    parser.add_argument("--retrain", action="store_true", help="train even if a run is finished")
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads (default 2)")
    parser.add_argument("--joint-prior", action="store_true",
                        help="AM-DETR given the train-split joint space's similarity")  # fmt: skip
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument("--no-progress", action="store_true")
    parser.add_argument("overrides", nargs="*", metavar="key=value", help="trainer overrides")
    return parser.parse_args()


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _settings(cfg: Any) -> dict[str, Any]:
    """The demo settings as ``demo_summary.json`` stores them, minus the progress flag."""
    settings = json.loads(json.dumps(asdict(cfg), default=str))
    settings.pop("progress")
    return settings


def finished_run(cfg: Any) -> Path | None:
    """The ``demo_summary.json`` of a finished AM-DETR run with exactly these settings."""
    wanted = _settings(cfg)
    defaults = _settings(type(cfg)())  # settings added later take their defaults in old runs
    for path in sorted((Path(cfg.workdir) / "results").glob("qd_detr/custom/*/demo_summary.json")):
        # runs older than these keys tested on short clips with the trainer defaults only
        legacy = {"test_length": None, "recipe": []}
        settings = {**defaults, **legacy, **json.loads(path.read_text())["settings"]}
        settings.pop("progress", None)
        if settings == wanted:
            return path
    return None


def write_chance(summary: dict[str, Any], out: Path) -> list[str]:
    """Chance rows as ``lighthouse report`` inputs: ``METHOD/custom=file.json`` each."""
    specs = []
    for name, brief in summary["test"].items():
        if name == "AM-DETR":
            continue
        path = out / f"{name.replace(' ', '_').replace(',', '')}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({"brief": brief}, indent=2) + "\n")
        specs.append(f"chance ({name})/custom={path}")
    return specs


def main() -> None:
    args = parse_args()
    import torch
    import yaml

    from lighthouse_audio.align.metrics import format_table
    from lighthouse_audio.demo.config import DemoConfig
    from lighthouse_audio.demo.run import format_metrics_table, run_demo

    torch.set_num_threads(args.threads)
    if not (args.sounds / "manifest.jsonl").is_file():
        raise SystemExit(f"{args.sounds}: no manifest.jsonl (pass --sounds DIR)")
    clips = tuple(int(c) for c in args.clips.split(","))
    defaults = DemoConfig()
    cfg = DemoConfig(
        workdir=args.workdir.resolve(),
        sounds=args.sounds.resolve(),
        seed=args.seed,
        epochs=args.epochs,
        clip_length=args.clip_length or defaults.clip_length,
        avg_interval=args.avg_interval or defaults.avg_interval,
        repeat_prob=args.repeat_prob,
        clips=clips,  # type: ignore[arg-type]
        test_length=None,  # val and test are clips like train's (the 60 s setting: amr_60s.py)
        recipe=(),  # the trainer settings its recorded results were trained with
        device=args.device,
        train_overrides=tuple(args.overrides),
        joint_prior=args.joint_prior,
        # the prior and spaces its recorded results were made with (docs/RESULTS.md)
        prior_folds=0,
        prior_moments=False,
        align_heldout=0.2,
        progress=not args.no_progress,
    )
    started, cpu_started = time.perf_counter(), cpu_seconds()
    summary_path = None if args.retrain else finished_run(cfg)
    if summary_path is not None:
        print(f"AM-DETR: reusing the finished run {summary_path.parent}")
    else:
        summary_path = run_demo(cfg).summary_path
    summary = json.loads(summary_path.read_text())
    run_dir, data_dir = summary_path.parent, Path(summary["data_dir"])

    baseline = run_baselines(data_dir, cfg.sounds, cfg.workdir / "results", args.windows,
                             cfg.progress)  # fmt: skip
    report = cfg.workdir / "report"
    runs = [run_dir, *baseline["runs"].values()]
    title = "Offline real-audio benchmark (shared/sounds), test split"
    cli("report", *runs, *write_chance(summary, report / "chance"), "--out", report, "--force",
        "--no-paper", "--title", title)  # fmt: skip
    wall, cpu = time.perf_counter() - started, cpu_seconds() - cpu_started

    rows = [(f"AM-DETR ({args.epochs} epochs, best by val)", summary["test"]["AM-DETR"])]
    baselines = {}
    for window, run in baseline["runs"].items():
        config = yaml.safe_load((run / "config.yaml").read_text())
        brief = json.loads((run / "test_metrics.json").read_text())["brief"]
        baselines[str(window)] = {"run": str(run), "test": brief}
        baselines[str(window)].update({k: config[k] for k in ("threshold", "median_length")})
        name = f"sliding window {window} s (thr {config['threshold']:.4f}, median "
        rows.append((name + f"{config['median_length']})", brief))
    rows += [(f"chance: {name}", v) for name, v in summary["test"].items() if name != "AM-DETR"]
    print("\n## offline AMR benchmark (test split)\n")
    print(format_metrics_table(rows))
    print("\ndata:")
    for split, stats in summary["data"].items():
        print(f"  {split}: {json.dumps(stats)}")
    print(f"best epoch {summary['best_epoch']} (val mAP {summary['best_val_mAP']:.2f})")
    align = baseline["align"]
    print(f"\njoint space: {align['num_train_clips']} train / {align['num_heldout_clips']} "
          f"held-out clips (train split only), held-out retrieval:")  # fmt: skip
    print(format_table(align["recall"]))
    print(f"\nAM-DETR stage times (s): {json.dumps(summary['timings_s'])}")
    print(f"baseline stage times (s): {json.dumps(baseline['timings'])}")
    print(f"this command: wall {wall:.0f} s, CPU {cpu:.0f} s, torch threads {args.threads}, "
          f"{os.cpu_count()} CPUs; report: {report}")  # fmt: skip
    out = {
        **summary,
        "am_detr_run": str(run_dir),
        "baseline": baselines,
        "alignment": align,
        "joint_space": str(baseline["joint_space"]),
        "baseline_timings_s": baseline["timings"],
        "report": str(report),
        "wall_s": round(wall, 1),
        "cpu_s": round(cpu, 1),
        "threads": args.threads,
    }
    for path in [cfg.workdir / "offline_results.json", *([args.json] if args.json else [])]:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(out, indent=2) + "\n")
        print(f"wrote {path}")


if __name__ == "__main__":
    main()
