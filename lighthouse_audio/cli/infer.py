"""``lighthouse infer``: run a trained checkpoint on an annotated split of precomputed features.

``--checkpoint`` is a ``.ckpt`` file (or a ``lighthouse models`` name), or, for baselines, which
keep no weights (the tuned ``sliding_window``), a run folder or its ``config.yaml``.

A recording longer than the model's span (``min(max_v_l, max_a_l)`` frames) is predicted in
overlapping chunks and merged (``prediction.split``, ``prediction.chunks``), and ``infer`` says
so once; ``--truncate`` keeps Lighthouse's behaviour (only the first ``span`` frames).
Recordings within the span are predicted exactly as before, in the same batches. Baselines
declare a
``predict_run(opt, jsonl, features, require_windows, progress)`` in their ``BASELINES`` spec that
returns ``(predictions, ground_truth, skipped)``; ``infer`` never needs to know which one it is.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from lighthouse_audio.cli.arguments import (
    FRACTION,
    PRIOR_REFINE_HELP,
    PRIOR_SCORE_MIX_HELP,
    count,
)


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "infer", help="predict moments for a jsonl split with a trained checkpoint"
    )
    parser.add_argument(
        "--checkpoint", type=Path, required=True,
        help="a .ckpt file, or a tuned run folder / its config.yaml (models without weights)",
    )  # fmt: skip
    parser.add_argument("--jsonl", type=Path, required=True, help="Lighthouse-format annotations")
    parser.add_argument(
        "--features", type=Path, required=True,
        help="folder holding <a_feat_types>/{vid}.npz and <t_feat_type>_text/qid{qid}.npz",
    )  # fmt: skip
    parser.add_argument("--out", type=Path, required=True, help="predictions jsonl to write")
    parser.add_argument("--eval", action="store_true", help="also score against the jsonl windows")
    parser.add_argument(
        "--save-metrics", type=Path, help="metrics json (default: <out>.metrics.json)"
    )
    parser.add_argument("--device", default="cpu", help="cpu, cuda, cuda:N or auto")
    parser.add_argument("--batch-size", type=count(), help="default: the checkpoint's eval_bsz")
    parser.add_argument(
        "--truncate", action="store_true",
        help="predict only the first max_v_l frames of long recordings (Lighthouse's way)",
    )  # fmt: skip
    parser.add_argument(
        "--overlap",
        type=count(0),
        help="frames neighbouring chunks share (default: half a span)",
    )
    parser.add_argument("--prior-score-mix", type=FRACTION, metavar="W",
                        help=PRIOR_SCORE_MIX_HELP)  # fmt: skip
    parser.add_argument("--prior-refine", type=FRACTION, metavar="R", help=PRIOR_REFINE_HELP)
    parser.add_argument("--no-progress", action="store_true")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    config_path = args.checkpoint / "config.yaml" if args.checkpoint.is_dir() else args.checkpoint
    if config_path.suffix in (".yaml", ".yml"):
        return run_from_config(args, config_path)

    from lighthouse_audio.prediction.model import load_model
    from lighthouse_audio.prediction.split import predict_split

    loaded = load_model(args.checkpoint, device=args.device, prior_score_mix=args.prior_score_mix,
                        prior_refine=args.prior_refine)  # fmt: skip
    predictions, ground_truth = predict_split(
        loaded, args.jsonl, args.features, args.batch_size, truncate=args.truncate,
        overlap=args.overlap, require_windows=args.eval, progress=not args.no_progress,
    )  # fmt: skip
    write_and_score(args, predictions, ground_truth)
    return 0


def run_from_config(args: argparse.Namespace, config_path: Path) -> int:
    """A run folder without weights: the baseline's ``predict_run`` does the predicting."""
    from lighthouse_audio.config import read_yaml
    from lighthouse_audio.registry import BASELINES

    if not config_path.is_file():
        raise FileNotFoundError(f"{config_path}: no such run config")
    opt = read_yaml(config_path)
    if "model_name" not in opt:
        raise ValueError(f"{config_path}: run config has no model_name")
    if str(opt["model_name"]) not in BASELINES:
        raise ValueError(
            f"{config_path}: model '{opt['model_name']}' predicts from its checkpoint; "
            "pass the run's best.ckpt"
        )
    predict_run = BASELINES.get(str(opt["model_name"])).predict_run
    result = predict_run(
        opt, args.jsonl, args.features, require_windows=args.eval, progress=not args.no_progress
    )
    write_and_score(args, result.predictions, result.ground_truth)
    if result.skipped:
        print(
            f"lighthouse: skipped {len(result.skipped)} queries without feature files "
            f"(first: {result.skipped[0]})"
        )
    return 0


def write_and_score(
    args: argparse.Namespace, predictions: list[dict], ground_truth: list[dict]
) -> None:
    """Write the predictions; with ``--eval``, score them against ``ground_truth`` and save."""
    import json

    from lighthouse_audio.evaluation.metrics import eval_submission
    from lighthouse_audio.file_io import write_json, write_jsonl

    args.out.parent.mkdir(parents=True, exist_ok=True)
    write_jsonl(predictions, args.out)
    print(f"lighthouse: wrote {len(predictions)} predictions to {args.out}")
    if args.eval:
        metrics = eval_submission(predictions, ground_truth)
        print(json.dumps(metrics["brief"], indent=4))
        save_path = args.save_metrics or args.out.with_suffix(".metrics.json")
        write_json(metrics, save_path)
        print(f"lighthouse: wrote metrics to {save_path}")
