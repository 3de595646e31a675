"""``lighthouse eval`` and ``lighthouse sed-eval``: score a submission jsonl against annotations.

``eval`` reproduces Lighthouse's ``standalone_eval`` (moment retrieval: R1 and mAP at IoU
0.5..0.95); ``sed-eval`` reproduces the AMR wrapper's zero-shot SED evaluation (micro P/R/F1).
"""

from __future__ import annotations

import argparse
from pathlib import Path


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "eval",
        help="moment-retrieval metrics (R1, mAP) of a submission jsonl",
        description="Lighthouse's standalone_eval: prints the metrics as JSON and saves them.",
    )
    parser.add_argument("--submission", type=Path, required=True, help="predictions jsonl")
    parser.add_argument("--gt", type=Path, required=True, help="annotations jsonl (*_release)")
    parser.add_argument("--save", type=Path, help="write the metrics JSON here")
    parser.set_defaults(func=run)

    parser = subparsers.add_parser(
        "sed-eval",
        help="zero-shot sound event detection metric (micro P/R/F1) of a submission jsonl",
        description="The AMR wrapper's zero-shot SED evaluation over (label, frame) cells.",
    )
    parser.add_argument("--submission", type=Path, required=True, help="predictions jsonl")
    parser.add_argument("--gt", type=Path, required=True, help="reference jsonl (e.g. TUT2017)")
    parser.add_argument(
        "--threshold", type=float, default=0.5, help="a window counts if score > this (0.5)"
    )
    parser.add_argument(
        "--label-resolution", type=float, default=1.0, help="matrix frames per second (1)"
    )
    parser.add_argument("--save", type=Path, help="write precision/recall/f1 and counts here")
    parser.set_defaults(func=run_sed)


def _load(args: argparse.Namespace) -> tuple[list[dict], list[dict]]:
    from lighthouse_audio.evaluation.io import load_jsonl

    return load_jsonl(args.submission), load_jsonl(args.gt)


def run(args: argparse.Namespace) -> int:
    import json

    from lighthouse_audio.evaluation.io import save_json
    from lighthouse_audio.evaluation.metrics import eval_submission

    submission, ground_truth = _load(args)
    try:
        metrics = eval_submission(submission, ground_truth)
    except ValueError as exc:
        raise ValueError(f"{args.submission} vs {args.gt}: {exc}") from None
    if args.save:  # saved first, so a closed stdout cannot lose the result
        save_json(metrics, args.save)
    print(json.dumps(metrics, indent=4))
    return 0


def run_sed(args: argparse.Namespace) -> int:
    from lighthouse_audio.evaluation.io import save_json
    from lighthouse_audio.evaluation.sed import format_sed_stdout, sed_evaluate

    submission, reference = _load(args)
    try:
        result = sed_evaluate(reference, submission, args.threshold, args.label_resolution)
    except ValueError as exc:
        raise ValueError(f"{args.submission} vs {args.gt}: {exc}") from None
    if args.save:
        save_json(result, args.save)
    print(format_sed_stdout(result), end="")
    return 0
