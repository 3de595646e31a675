"""Do the plain and the fast training paths train equally well? 3 seeds each, real audio.

The offline real-audio benchmark's data (``offline_amr.py``: ``../shared/sounds`` split by
recording, 10 s clips simulated from it, ``aisfx-minilm`` features; the same cache folder, so
its data are reused) and its AM-DETR settings (``bsz=8 lr=3e-4 input_dropout=0.1``), trained as
a seed sweep (``lighthouse train --seeds``) once on the plain path (Lighthouse's DataLoader,
scipy matching) and once on the fast path (``resident_data=true assignment=device``). Each
seed's best checkpoint (by val mAP) is then scored on the test split (``lighthouse infer
--eval``). Prints and writes mean ± sample sd of val and test metrics per path.

    python benchmarks/fast_path_equivalence.py --seeds 0,1,2 --concurrent 2

Same data order and initial weights per seed on both paths; the saliency frame pairs and the
matching's tie-breaks are each path's own draws, so runs differ as two seeds do, and the
question is whether the two paths' seed spreads agree.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
PATHS = {"plain": [], "fast": ["resident_data=true", "assignment=device"]}
METRICS = ("MR-full-R1@0.5", "MR-full-R1@0.7", "MR-full-mAP@0.5", "MR-full-mAP@0.75", "MR-full-mAP")


def cli(*args: str) -> None:
    subprocess.run([sys.executable, "-m", "lighthouse_audio", *map(str, args)], check=True)


def prepare(args: argparse.Namespace):
    """The offline benchmark's data, made (or reused) by the demo's data steps."""
    from lighthouse_audio.demo.config import DemoConfig
    from lighthouse_audio.demo.data import obtain_sounds, plan_data, prepare_data

    cfg = DemoConfig(
        workdir=args.workdir.resolve(), sounds=args.sounds.resolve(), seed=0, repeat_prob=0.0,
        clips=(1000, 150, 300), test_length=None, recipe=(), progress=False,
    )  # fmt: skip
    log = print
    recordings, root = obtain_sounds(cfg, log)
    data_dir, plan = plan_data(cfg, recordings, root, log)
    return prepare_data(cfg, data_dir, plan, log)


def mean_sd(values: list[float]) -> str:
    sd = statistics.stdev(values) if len(values) > 1 else float("nan")
    return f"{statistics.mean(values):.2f} ± {sd:.2f}"


def main() -> None:
    from lighthouse_audio.demo.config import TRAIN_DEFAULTS

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sounds", type=Path, default=HERE.parent.parent / "shared" / "sounds")
    parser.add_argument("--workdir", type=Path, default=HERE / ".cache" / "offline_amr")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--epochs", type=int, default=25)
    parser.add_argument("--concurrent", type=int, default=1)
    parser.add_argument("--paths", nargs="+", default=list(PATHS), choices=list(PATHS))
    parser.add_argument("--out", type=Path, help="default: WORKDIR/equivalence (finished sweeps "
                        "there are reused)")  # fmt: skip
    args = parser.parse_args()

    data = prepare(args)
    features = data.train_features
    out = args.out or args.workdir / "equivalence"
    results: dict[str, dict] = {}
    for path in args.paths:
        sweep = out / path / "qd_detr" / "custom" / "aisfx-minilm-seeds"
        if not (sweep / "summary.json").is_file():
            cli("train", "--dataset", "custom", "--feature", "aisfx-minilm", "--no-progress",
                "--seeds", args.seeds, "--concurrent", args.concurrent,
                "--features-root", features, f"train_path={data.train['train']}",
                f"eval_path={data.train['val']}", f"results_dir={out / path}",
                f"n_epoch={args.epochs}", "max_v_l=11", "max_a_l=11", "num_workers=0",
                *TRAIN_DEFAULTS, *PATHS[path])  # fmt: skip
        rows = {}
        for seed in args.seeds.split(","):
            run = sweep / f"seed{seed}"
            test = run / "test_preds.jsonl"
            if not test.with_suffix(".metrics.json").is_file():
                cli(
                    "infer",
                    "--checkpoint",
                    run / "best.ckpt",
                    "--jsonl",
                    data.test["test"],
                    "--features",
                    features / "custom",
                    "--out",
                    test,
                    "--eval",
                    "--no-progress",
                )
            rows[seed] = {
                "val": json.loads((run / "best_val_metrics.json").read_text())["brief"],
                "test": json.loads(test.with_suffix(".metrics.json").read_text())["brief"],
            }
        results[path] = rows

    lines = ["| path | split | " + " | ".join(m.removeprefix("MR-full-") for m in METRICS) + " |",
             "|---|---|" + "---:|" * len(METRICS)]  # fmt: skip
    for path, rows in results.items():
        for split in ("val", "test"):
            cells = [mean_sd([r[split][m] for r in rows.values()]) for m in METRICS]
            lines.append(f"| {path} | {split} | " + " | ".join(cells) + " |")
    table = "\n".join(lines)
    print(table)
    (out / "equivalence.json").write_text(json.dumps(results, indent=2) + "\n")
    (out / "equivalence.md").write_text(table + "\n")
    print(f"wrote {out / 'equivalence.json'} and equivalence.md")


if __name__ == "__main__":
    main()
