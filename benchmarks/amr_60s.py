"""The 60 s real-audio benchmark: AM-DETR against the tuned 1 s sliding-window baseline and chance
on recordings of Clotho-Moment's length, several events each, some queries with two windows.

1. **sounds**: a folder laid out like ``shared/sounds`` (``--sounds``; default: the sound set
   rebuilt from every Debian package the project lists, with their paraphrase captions);
2. **split by recording** with the 60 s settings (backgrounds shorter than 60 s are left out);
3. **simulate** val and test as 60 s recordings (mean gap 5 s, so about six events each; a
   placed sound is placed again with probability 0.15: one query, two windows); the model's
   train (and its own val) split as ``--train-clip`` s clips of the same recordings;
4. **features** ``aisfx-minilm`` (1 s windows, frames ``none``);
5. **baseline**: ``offline_baseline.py``'s 1 s window through a joint space aligned on the train
   split only, threshold and median filter tuned on the 60 s val split, scored on 60 s test;
6. **AM-DETR** (+ joint prior aligned on the train split's clips and, as hard negatives, its
   training clips' moments, cross-fitted over 4 folds of the train sounds while training: the
   demo's settings) trained once per seed in ``--seeds``, the
   best epoch by val mAP (on the training clips' val split); its score mix
   (``prior_score_mix``: the joint prior's weight in moment scores) chosen from
   ``SCORE_MIXES`` on the 60 s val split, then ``lighthouse infer`` on the 60 s test split
   (recordings longer than the model's span are predicted in overlapping chunks);
7. **table**: mean and spread over seeds next to the baseline and chance
   (``WORKDIR/amr60_results.json``, ``WORKDIR/amr60_table.md``).

    python benchmarks/amr_60s.py                            # train on 10 s clips, seeds 0 1 2
    python benchmarks/amr_60s.py --train-clip 60 --seeds 0  # train on the 60 s recordings
    python benchmarks/amr_60s.py --name lr_drop15 lr_drop=15  # a recipe variant (trainer keys)

Every step is cached in ``benchmarks/.cache/amr60``; a finished seed is reused unless
``--retrain``. Results and the commands behind them: docs/RESULTS.md.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from offline_baseline import cli, run_baselines

HERE = Path(__file__).resolve().parent
METRICS = ("MR-full-R1@0.5", "MR-full-R1@0.7", "MR-full-mAP@0.5", "MR-full-mAP@0.75", "MR-full-mAP")
TITLES = ("R1@0.5", "R1@0.7", "mAP@0.5", "mAP@0.75", "mAP avg")


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sounds", type=Path, help="shared/sounds-like folder (default: Debian)")
    parser.add_argument("--workdir", type=Path, default=HERE / ".cache" / "amr60")
    parser.add_argument("--train-clip", type=float, default=10.0, help="s (default 10)")
    parser.add_argument("--train-gap", type=float,
                        help="mean gap in training clips, s (default: 4 s per 10 s)")  # fmt: skip
    parser.add_argument("--seeds", default="0,1,2", help="training seeds (default 0,1,2)")
    parser.add_argument("--data-seed", type=int, default=0)
    parser.add_argument("--epochs", type=int, default=25)
    parser.add_argument("--name", default="moments-prior",
                        help="recipe name for the table and run folders (the clip-only prior's "
                        "runs were named joint-prior)")  # fmt: skip
    parser.add_argument("--plain", action="store_true", help="AM-DETR without the joint prior")
    parser.add_argument("--clip-only-prior", action="store_true",
                        help="the recipe before 2026-12-05: the prior aligned on captioned "
                        "clips only (no moments), both spaces with 20%% of the clips held "
                        "out; with --prior-folds 0")  # fmt: skip
    parser.add_argument("--prior-folds", type=int, default=4,
                        help="cross-fit the prior while training over this many folds of the "
                        "train sounds, as the demo does (0: the full space)")  # fmt: skip
    parser.add_argument("--retrain", action="store_true")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--no-progress", action="store_true")
    parser.add_argument("overrides", nargs="*", metavar="key=value", help="trainer overrides")
    return parser.parse_args()


def obtain_sounds(args: argparse.Namespace, cache: Path) -> Path:
    if args.sounds is not None:
        return args.sounds.resolve()
    from lighthouse_audio.demo.debian import rebuild_sound_set
    from lighthouse_audio.demo.debian_sources import load_packages

    out = cache / "sounds-all"
    rebuild_sound_set(out, list(load_packages()), cache, progress=not args.no_progress)
    return out


def build_data(args: argparse.Namespace, sounds: Path) -> dict[str, Any]:
    """The 60 s val/test data (and 60 s train), the short train data, features, the joint space:
    the demo's data steps (``lighthouse_audio.demo.data``) with this benchmark's settings."""
    from lighthouse_audio.demo.config import DemoConfig
    from lighthouse_audio.demo.data import plan_data, prepare_data
    from lighthouse_audio.demo.joint_prior import align_train_split
    from lighthouse_audio.demo.sound_set import load_sound_set

    gap = args.train_gap or 4.0 * args.train_clip / 10  # the demo's 4 s in 10 s, scaled
    cfg = DemoConfig(
        workdir=args.workdir, sounds=sounds, seed=args.data_seed, clip_length=args.train_clip,
        hop=0.5, avg_interval=gap, repeat_prob=0.15, clips=(1000, 150, 0), test_length=60.0,
        test_hop=1.0, test_avg_interval=5.0, test_repeat_prob=0.15, test_clips=(300, 50, 100),
        recipe=(), progress=not args.no_progress,  # the recipe comes in args.overrides
    )  # fmt: skip
    data_dir, plan = plan_data(cfg, load_sound_set(sounds), sounds, print)
    data = prepare_data(cfg, data_dir, plan, print)
    for split, stats in data.stats.items():
        print(f"  {split}: {json.dumps(stats)}")
    moments = (data.train["train"], data.train_features / "custom")
    moments = None if args.clip_only_prior else moments
    space = align_train_split(plan["train"], data_dir / "joint", moments=moments,
                              heldout=heldout(args), progress=cfg.progress)  # fmt: skip
    folds = None
    if args.prior_folds and not args.plain:
        from lighthouse_audio.demo.joint_prior import cross_fitted_folds

        if moments is None:
            raise SystemExit("--prior-folds needs the moments prior (drop --clip-only-prior)")
        folds = cross_fitted_folds(plan["train"], data_dir / "joint", moments, args.prior_folds,
                                   args.data_seed, heldout(args), cfg.progress)  # fmt: skip
    return {"data_dir": data_dir, "train_cfg": cfg, "train_features": data.train_features,
            "annotations": {**data.train, "test": data.test["test"]},
            "recordings_60s": data.test, "joint_space": space, "prior_folds": folds}  # fmt: skip


def train_and_test(args: argparse.Namespace, data: dict[str, Any], seed: int) -> dict[str, Any]:
    """One seed of the recipe: trained (or reused), its score mix tuned on the 60 s val split,
    and scored on the 60 s test split."""
    from lighthouse_audio.demo.training import train_model
    from lighthouse_audio.models.prior_score import SCORE_MIXES

    out = args.workdir / "runs" / f"{args.name}-{train_tag(args)}" / f"seed{seed}"
    done = out / "test_metrics.json"
    if done.is_file() and not args.retrain:
        result = json.loads(done.read_text())
        if "mix" in result or args.plain:
            print(f"AM-DETR seed {seed}: reusing {out}")
            return result
        print(f"AM-DETR seed {seed}: reusing the model in {out}, tuning its score mix")
        run_dir = Path(result["run"])
    elif (finished := finished_training(out)) is not None:  # trained, stopped before testing
        run_dir, state = finished
        print(f"AM-DETR seed {seed}: reusing the trained model in {run_dir}")
        result = {"seed": seed, "run": str(run_dir), "best_epoch": state["best_epoch"],
                  "best_val_mAP": state["best_score"]}  # fmt: skip
    else:
        extra = [] if args.plain else [f"joint_prior={data['joint_space']}"]
        if data["prior_folds"] is not None:
            extra.append(f"joint_prior_folds={data['prior_folds']}")
        cfg = replace(data["train_cfg"], workdir=out, epochs=args.epochs,
                      train_overrides=(f"seed={seed}", *args.overrides))  # fmt: skip
        started = time.perf_counter()
        _, run_dir, state = train_model(
            cfg, out, data["train_features"], data["annotations"], extra
        )
        result = {"seed": seed, "run": str(run_dir), "best_epoch": state.best_epoch,
                  "best_val_mAP": state.best_score,
                  "train_s": round(time.perf_counter() - started, 1)}  # fmt: skip
    checkpoint = run_dir / ("best.ckpt" if (run_dir / "best.ckpt").is_file() else "last.ckpt")
    mixes = (0.0,) if args.plain else SCORE_MIXES
    result["val_mAP_by_mix"] = {
        f"{mix:g}": infer(data, checkpoint, "val", out / f"val_preds_mix{mix:g}.jsonl", mix)
        ["MR-full-mAP"] for mix in mixes
    }  # fmt: skip
    best = max(mixes, key=lambda mix: result["val_mAP_by_mix"][f"{mix:g}"])  # first on ties
    result["mix"] = best
    result["test_mix0"] = infer(data, checkpoint, "test", out / "test_preds_mix0.jsonl", 0.0)
    result["test"] = infer(data, checkpoint, "test", out / f"test_preds_mix{best:g}.jsonl", best)
    done.write_text(json.dumps(result, indent=2) + "\n")
    return result


def finished_training(out: Path) -> tuple[Path, dict[str, Any]] | None:
    """A run folder under ``out`` whose training went through its last epoch, and its state."""
    from lighthouse_audio.engine.checkpoint import load_checkpoint

    for last in sorted(out.glob("results/qd_detr/custom/*/last.ckpt")):
        ckpt = load_checkpoint(last)
        state = ckpt.get("train_state") or {}
        if state.get("epoch") == int(ckpt["opt"]["n_epoch"]) - 1:
            return last.parent, state
    return None


def infer(data: dict[str, Any], checkpoint: Path, split: str, preds: Path, mix: float) -> dict:
    """``lighthouse infer`` on a 60 s split (chunked) with score mix ``mix``: its brief metrics."""
    metrics = preds.with_suffix(".metrics.json")
    cli("infer", "--checkpoint", checkpoint, "--jsonl", data["recordings_60s"][split],
        "--features", data["data_dir"] / "features" / "custom", "--out", preds, "--eval",
        "--save-metrics", metrics, "--prior-score-mix", mix, "--no-progress")  # fmt: skip
    return json.loads(metrics.read_text())["brief"]


def heldout(args: argparse.Namespace) -> float:
    """Clips align keeps out: none now; 0.2 in the recipe before 2026-12-05 (its results)."""
    return 0.2 if args.clip_only_prior else 0.0


def train_tag(args: argparse.Namespace) -> str:
    gap = f"-gap{args.train_gap:g}" if args.train_gap else ""
    return f"train{args.train_clip:g}s{gap}"


def chance(data: dict[str, Any], seed: int) -> dict[str, float]:
    from lighthouse_audio.data.annotations import load_queries
    from lighthouse_audio.demo.chance import chance_metrics

    test = [q.to_dict() for q in load_queries(data["annotations"]["test"])]
    train = [q.to_dict() for q in load_queries(data["annotations"]["train"])]
    lengths = [e - s for q in train for s, e in q["relevant_windows"] if e > s]
    return chance_metrics(test, seed=seed, lengths=lengths)


def spread(values: list[float]) -> str:
    if len(values) == 1:
        return f"{values[0]:.2f}"
    return f"{statistics.mean(values):.2f} ± {statistics.stdev(values):.2f}"


def main() -> None:
    args = parse_args()
    import torch

    from lighthouse_audio.paths import default_cache_dir

    torch.set_num_threads(args.threads)
    args.workdir = args.workdir.resolve()
    sounds = obtain_sounds(args, default_cache_dir())
    data = build_data(args, sounds)
    baseline = run_baselines(data["data_dir"], sounds, args.workdir / "results", [1],
                             not args.no_progress, heldout(args))  # fmt: skip
    base_run = baseline["runs"][1]
    base = json.loads((base_run / "test_metrics.json").read_text())["brief"]
    seeds = [int(s) for s in args.seeds.split(",")]
    runs = [train_and_test(args, data, seed) for seed in seeds]
    mixes = ", ".join(f"{r['mix']:g}" for r in runs)
    recipe = f"AM-DETR ({args.name}, trained on {args.train_clip:g} s clips, {len(runs)} seeds)"
    rows = {
        f"{recipe}, score mix tuned on val ({mixes})": [
            [r["test"][m] for r in runs] for m in METRICS
        ],
        f"{recipe}, confidence only (mix 0)": [[r["test_mix0"][m] for r in runs] for m in METRICS],
        "sliding window 1 s (tuned on val)": [[base[m]] for m in METRICS],
        "chance (random windows, train lengths)": [
            [v] for v in (lambda c: [c[m] for m in METRICS])(chance(data, args.data_seed))
        ],
    }
    lines = ["| method | " + " | ".join(TITLES) + " |", "|---|" + "---:|" * len(TITLES)]
    lines += [f"| {name} | " + " | ".join(spread(v) for v in cols) + " |"
              for name, cols in rows.items()]  # fmt: skip
    table = "\n".join(lines)
    print("\n## 60 s benchmark, test split\n\n" + table)
    ratio = statistics.mean(r["test"]["MR-full-mAP"] for r in runs) / base["MR-full-mAP"]
    print(f"\nAM-DETR mAP avg / baseline: {ratio:.2f}x")
    results = {"sounds": str(sounds), "data_dir": str(data["data_dir"]),
               "train_features": str(data["train_features"]), "baseline_run": str(base_run),
               "baseline": base, "am_detr": runs, "rows": rows, "ratio_mAP": ratio,
               "args": {k: str(v) for k, v in vars(args).items()}}  # fmt: skip
    stem = f"amr60_{args.name}_{train_tag(args)}"
    (args.workdir / f"{stem}.json").write_text(json.dumps(results, indent=2) + "\n")
    (args.workdir / f"{stem}.md").write_text(table + "\n")
    print(f"wrote {args.workdir / stem}.json / .md")


if __name__ == "__main__":
    main()
