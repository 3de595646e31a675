"""``lighthouse tune-baseline``: tune the zero-shot sliding-window baseline on a validation split.

Writes a new run folder (never an existing one) that ``lighthouse infer --checkpoint RUN`` can
predict with: ``config.yaml``, ``best_val_metrics.json``, ``val_grid.json`` and, with ``--test``,
``test_preds.jsonl`` and ``test_metrics.json``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from lighthouse_audio.cli.arguments import POSITIVE, SCORE, count


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "tune-baseline",
        help="tune the zero-shot sliding-window baseline (threshold, median filter) on a val split",
        description="Grid-search the sliding-window baseline's threshold and median-filter length "
        "on --val (MR-full-mAP, ties: R1@0.7), then optionally score --test.",
    )
    parser.add_argument("--feature", required=True, help="feature name, e.g. clap")
    parser.add_argument(
        "--features", type=Path, required=True,
        help="root holding <feature>/{vid}.npz and <feature>_text/qid{qid}.npz (raw features)",
    )  # fmt: skip
    parser.add_argument("--val", type=Path, required=True, help="validation jsonl to tune on")
    parser.add_argument("--test", type=Path, help="also predict and score this jsonl")
    parser.add_argument(
        "--window", type=POSITIVE, help="window seconds (default: the manifest's, else 1)"
    )
    parser.add_argument(
        "--hop", type=POSITIVE, help="hop seconds (default: the manifest's, else 1)"
    )
    parser.add_argument(
        "--frames", choices=("center", "none"), help="frame convention (manifest's, else center)"
    )
    parser.add_argument(
        "--joint-space", type=Path, help="joint-space (or weights) file for the feature's space"
    )
    parser.add_argument(
        "--thresholds", type=SCORE, nargs="*",
        help="threshold grid (default: 41 values between the 1st and 99th similarity percentile)",
    )  # fmt: skip
    parser.add_argument(
        "--median-lengths", type=count(), nargs="*", help="odd median-filter lengths (1 3 5 7 9)"
    )
    parser.add_argument("--dataset", default="custom", help="dataset name for the run folder")
    parser.add_argument("--results-dir", type=Path, default=Path("results"))
    parser.add_argument("--no-progress", action="store_true")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from lighthouse_audio.baseline.tuned_run import tune_run

    run = tune_run(
        args.feature, args.features, args.val, args.test, args.dataset, args.results_dir,
        args.window, args.hop, args.frames, args.joint_space, args.thresholds,
        args.median_lengths, progress=not args.no_progress,
    )  # fmt: skip
    for split, skipped in run.skipped.items():
        _report_skipped(split, skipped, run.counts[split])
    print(f"lighthouse: run folder {run.run_dir}")
    _print_table(run.search.grid, run.search.threshold, run.search.median_length)
    if run.test_metrics is not None:
        print(f"test: {_format_brief(run.test_metrics['brief'])}")
    return 0


COLUMNS = ("MR-full-mAP", "MR-full-R1@0.5", "MR-full-R1@0.7")


def _format_brief(brief: dict) -> str:
    return "  ".join(f"{k.removeprefix('MR-full-')} {brief[k]:6.2f}" for k in COLUMNS)


def _print_table(grid: list[dict], threshold: float, median_length: int, top: int = 5) -> None:
    """The best ``top`` grid points by the tuning criterion, the chosen one marked ``*``."""
    ranked = sorted(grid, key=lambda r: (-r["MR-full-mAP"], -r["MR-full-R1@0.7"]))[:top]
    print(f"val grid: {len(grid)} points, best {min(top, len(grid))}:")
    print(f"  {'threshold':>9}  {'median':>6}  " + "  ".join(f"{c[8:]:>8}" for c in COLUMNS))
    for row in ranked:
        mark = (
            "*" if (row["threshold"], row["median_length"]) == (threshold, median_length) else " "
        )
        values = "  ".join(f"{row[c]:8.2f}" for c in COLUMNS)
        print(f"{mark} {row['threshold']:9.4f}  {row['median_length']:6d}  {values}")


def _report_skipped(split: str, skipped: list[str], total: int) -> None:
    if skipped:
        print(
            f"lighthouse: {split}: skipped {len(skipped)} of {total} queries without feature "
            f"files (first: {skipped[0]})"
        )
