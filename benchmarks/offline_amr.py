"""Offline real-audio benchmark: AM-DETR on a moment-retrieval set simulated from real recordings.

Uses the demo pipeline (``lighthouse_audio.demo.pipeline``) on the project's shared sound set
(``../shared/sounds``: 390 captioned foreground clips and 20 ambiences from Debian packages, or
any folder laid out like it):

1. split the recordings into train/val/test by recording (a clip is never in two splits);
2. simulate Clotho-Moment-style clips (Algorithm 1) on 10 s background windows (the demo's
   settings: ``lighthouse_audio/demo/config.py`` says why 10 s);
3. extract ``aisfx-minilm`` features (1 s windows: aisfx CNN audio, MiniLM text tokens);
4. train AM-DETR (QD-DETR) with the trainer, keeping the best epoch by validation mAP;
5. score the test split with the standalone evaluator and compare with chance (random windows,
   uniform, and with the training set's moment lengths), averaged over 10 draws.

    python benchmarks/offline_amr.py                          # 1000/150/300 clips, 25 epochs
    python benchmarks/offline_amr.py --epochs 40 --clips 400,60,120 --threads 2 --json out.json

Data and runs are cached in ``benchmarks/.cache/offline_amr`` (a rerun reuses the simulated
audio and features and trains into a new run folder). Results: docs/RESULTS.md.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import time
from pathlib import Path

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
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads (default 2)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument("--no-progress", action="store_true")
    parser.add_argument("overrides", nargs="*", metavar="key=value", help="trainer overrides")
    return parser.parse_args()


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def main() -> None:
    args = parse_args()
    import torch

    from lighthouse_audio.demo.config import DemoConfig
    from lighthouse_audio.demo.pipeline import format_metrics_table, run_demo

    torch.set_num_threads(args.threads)
    if not (args.sounds / "manifest.jsonl").is_file():
        raise SystemExit(f"{args.sounds}: no manifest.jsonl (pass --sounds DIR)")
    clips = tuple(int(c) for c in args.clips.split(","))
    defaults = DemoConfig()
    cfg = DemoConfig(
        workdir=args.workdir,
        sounds=args.sounds,
        seed=args.seed,
        epochs=args.epochs,
        clip_length=args.clip_length or defaults.clip_length,
        avg_interval=args.avg_interval or defaults.avg_interval,
        clips=clips,  # type: ignore[arg-type]
        device=args.device,
        train_overrides=tuple(args.overrides),
        progress=not args.no_progress,
    )
    started, cpu_started = time.perf_counter(), cpu_seconds()
    result = run_demo(cfg)
    wall, cpu = time.perf_counter() - started, cpu_seconds() - cpu_started
    summary = json.loads(result.summary_path.read_text())

    rows = [(f"AM-DETR ({args.epochs} epochs, best by val)", result.metrics)]
    rows += [(f"chance: {name}", values) for name, values in result.chance.items()]
    print("\n## offline AMR benchmark (test split)\n")
    print(format_metrics_table(rows))
    print("\ndata:")
    for split, stats in result.data.items():
        print(f"  {split}: {json.dumps(stats)}")
    print(f"best epoch {summary['best_epoch']} (val mAP {summary['best_val_mAP']:.2f})")
    print(f"stage times (s): {json.dumps(result.timings)}")
    print(
        f"wall {wall:.0f} s, CPU {cpu:.0f} s, torch threads {args.threads}, {os.cpu_count()} CPUs"
    )
    if args.json:
        out = {
            **summary,
            "wall_s": round(wall, 1),
            "cpu_s": round(cpu, 1),
            "threads": args.threads,
        }
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(out, indent=2) + "\n")
        print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
