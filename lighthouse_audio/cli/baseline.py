"""``lighthouse tune-baseline``: tune the zero-shot sliding-window baseline on a validation split.

Writes a new run folder (never an existing one) that ``lighthouse infer --checkpoint RUN`` can
predict with: ``config.yaml``, ``best_val_metrics.json``, ``val_grid.json`` and, with ``--test``,
``test_preds.jsonl`` and ``test_metrics.json``.
"""

from __future__ import annotations

import argparse
from pathlib import Path


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
        "--window", type=float, help="window seconds (default: the manifest's, else 1)"
    )
    parser.add_argument("--hop", type=float, help="hop seconds (default: the manifest's, else 1)")
    parser.add_argument(
        "--frames", choices=("center", "none"), help="frame convention (manifest's, else center)"
    )
    parser.add_argument(
        "--joint-space", type=Path, help="joint-space (or weights) file for the feature's space"
    )
    parser.add_argument(
        "--thresholds", type=float, nargs="*",
        help="threshold grid (default: 41 values between the 1st and 99th similarity percentile)",
    )  # fmt: skip
    parser.add_argument(
        "--median-lengths", type=int, nargs="*", help="odd median-filter lengths (1 3 5 7 9)"
    )
    parser.add_argument("--dataset", default="custom", help="dataset name for the run folder")
    parser.add_argument("--results-dir", type=Path, default=Path("results"))
    parser.add_argument("--no-progress", action="store_true")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from lighthouse_audio.baseline.frames import resolve_layout
    from lighthouse_audio.baseline.model import MODEL_NAME, build
    from lighthouse_audio.baseline.similarity import build_joint_space, compute_curves
    from lighthouse_audio.baseline.tune import (
        DEFAULT_MEDIAN_LENGTHS,
        PRIMARY,
        TIE_BREAK,
        check_grid,
        default_thresholds,
        grid_search,
    )
    from lighthouse_audio.config import save_config
    from lighthouse_audio.data.annotations import load_queries
    from lighthouse_audio.engine.run_dir import next_free_dir
    from lighthouse_audio.evaluation.metrics import eval_submission
    from lighthouse_audio.file_io import write_json, write_jsonl
    from lighthouse_audio.registry import DATASETS, FEATURES, check_pair

    progress = not args.no_progress
    FEATURES.get(args.feature)  # unknown names: one-line errors listing the known ones
    DATASETS.get(args.dataset)
    check_pair(args.dataset, args.feature)
    median_lengths = (
        list(DEFAULT_MEDIAN_LENGTHS) if args.median_lengths is None else args.median_lengths
    )
    # Checked before the slow part; the default thresholds come from the val similarities.
    check_grid([0.0] if args.thresholds is None else args.thresholds, median_lengths)
    audio_dir = args.features / args.feature
    if not audio_dir.is_dir():
        raise FileNotFoundError(f"{audio_dir}: no such feature folder")
    layout = resolve_layout(audio_dir, args.window, args.hop, args.frames)
    space, space_source = build_joint_space(args.feature, args.joint_space)
    val_queries = load_queries(args.val)
    test_queries = load_queries(args.test) if args.test else None

    curves = compute_curves(val_queries, args.features, args.feature, space, layout, progress)
    _report_skipped("val", curves.skipped, len(val_queries))
    if not curves.queries:
        raise ValueError(f"{args.val}: no query has feature files under {audio_dir}")
    thresholds = default_thresholds(curves) if args.thresholds is None else args.thresholds
    search = grid_search(curves, thresholds, median_lengths, progress)

    opt = {
        "model_name": MODEL_NAME,
        "dset_name": args.dataset,
        "a_feat_types": args.feature,
        "t_feat_type": args.feature,
        **layout.to_dict(),
        "threshold": search.threshold,
        "median_length": search.median_length,
        "joint_space": str(args.joint_space.resolve()) if args.joint_space else None,
        "joint_space_source": space_source,
        "thresholds": sorted({float(t) for t in thresholds}),
        "median_lengths": sorted(set(median_lengths)),
        "tune_metric": f"{PRIMARY} (ties: {TIE_BREAK})",
        "features_root": str(args.features.resolve()),
        "eval_path": str(args.val.resolve()),
        "test_path": str(args.test.resolve()) if args.test else None,
    }
    test_result = None
    if test_queries is not None:
        baseline = build(opt)
        test_result = baseline.predict_jsonl(args.test, args.features, progress=progress)
        _report_skipped("test", test_result.skipped, len(test_queries))

    # Only now, with every input validated and scored, is the run folder claimed and written.
    base = args.results_dir / MODEL_NAME / args.dataset / f"{args.feature}_w{layout.window:g}"
    run_dir = next_free_dir(base)
    run_dir.mkdir(parents=True, exist_ok=True)
    opt["results_dir"] = str(run_dir)
    save_config(opt, run_dir / "config.yaml")
    write_json(search.metrics, run_dir / "best_val_metrics.json")
    write_json(search.grid, run_dir / "val_grid.json")
    print(f"lighthouse: run folder {run_dir}")
    _print_table(search.grid, search.threshold, search.median_length)
    if test_result is not None:
        write_jsonl(test_result.predictions, run_dir / "test_preds.jsonl")
        test_metrics = eval_submission(test_result.predictions, test_result.ground_truth)
        write_json(test_metrics, run_dir / "test_metrics.json")
        brief = test_metrics["brief"]
        print(f"test: {_format_brief(brief)}")
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
