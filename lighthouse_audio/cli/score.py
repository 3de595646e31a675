"""``lighthouse eval`` and ``lighthouse sed-eval``: score a submission jsonl against annotations.

``eval`` reproduces Lighthouse's ``standalone_eval`` (moment retrieval: R1 and mAP at IoU
0.5..0.95); ``sed-eval`` reproduces the AMR wrapper's zero-shot SED evaluation (micro P/R/F1).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from lighthouse_audio.cli.arguments import NON_NEGATIVE, POSITIVE, SCORE

SED_KEY = ("vid", "query")  # SED predictions are per clip and label


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
        "--threshold", type=SCORE, default=0.5, help="a window counts if score > this (0.5)"
    )
    parser.add_argument(
        "--label-resolution", type=POSITIVE, default=1.0, help="matrix frames per second (1)"
    )
    parser.add_argument("--save", type=Path, help="write precision/recall/f1 and counts here")
    tune = parser.add_argument_group(
        "threshold tuning", "pick the threshold with the best micro F1 on a dev split"
    )
    tune.add_argument("--tune-submission", type=Path, help="dev predictions jsonl")
    tune.add_argument("--tune-gt", type=Path, help="dev reference jsonl")
    tune.add_argument(
        "--thresholds",
        default="0:1:0.05",
        help="START:STOP:STEP (STOP included) or a comma list (0:1:0.05); ties: the lowest",
    )
    events = parser.add_argument_group("event- and segment-based scores (sed_eval definitions)")
    events.add_argument(
        "--no-event-metrics",
        dest="event_metrics",
        action="store_false",
        help="skip the event-based and segment-based scores",
    )
    events.add_argument("--t-collar", type=NON_NEGATIVE, default=0.2, help="onset collar, s (0.2)")
    events.add_argument(
        "--percentage-of-length",
        type=NON_NEGATIVE,
        default=0.2,
        help="offset collar as a fraction of the reference length (0.2)",
    )
    events.add_argument("--segment-length", type=POSITIVE, default=1.0, help="segment, s (1)")
    parser.set_defaults(func=run_sed)


def load_ground_truth(path: Path, windows_required: bool = True) -> list[dict]:
    """Annotations through the one validation every command uses (``data.annotations``)."""
    from lighthouse_audio.data.annotations import load_queries

    lines = [q.to_dict() for q in load_queries(path, require_windows=windows_required)]
    for line in lines:
        line.setdefault("relevant_windows", [])  # SED: a clip and label with no event
    return lines


def load_submission(path: Path, key: tuple[str, ...] = ("qid",)) -> list[dict]:
    from lighthouse_audio.data.predictions import load_predictions

    return load_predictions(path, key=key)


def run(args: argparse.Namespace) -> int:
    import json

    from lighthouse_audio.evaluation.metrics import eval_submission
    from lighthouse_audio.file_io import write_json

    ground_truth = load_ground_truth(args.gt)
    submission = load_submission(args.submission)
    try:
        metrics = eval_submission(submission, ground_truth)
    except ValueError as exc:
        raise ValueError(f"{args.submission} vs {args.gt}: {exc}") from None
    if args.save:  # saved first, so a closed stdout cannot lose the result
        write_json(metrics, args.save)
    print(json.dumps(metrics, indent=4))
    return 0


def run_sed(args: argparse.Namespace) -> int:
    """Untuned result at ``--threshold`` (top-level keys, the wrapper's stdout), then optionally
    the dev-tuned result under ``"tuned"`` and the event/segment scores (summary on stderr)."""
    import sys

    from lighthouse_audio.evaluation.sed import format_sed_stdout, parse_thresholds
    from lighthouse_audio.evaluation.sed_report import DevSplit, EventOptions, evaluate_sed, summary
    from lighthouse_audio.file_io import write_json

    if (args.tune_submission is None) != (args.tune_gt is None):
        raise ValueError("--tune-submission and --tune-gt go together")
    thresholds = parse_thresholds(args.thresholds)  # checked before any file is read
    reference = load_ground_truth(args.gt, windows_required=False)
    submission = load_submission(args.submission, SED_KEY)
    dev = None
    if args.tune_submission is not None:
        dev = DevSplit(
            load_ground_truth(args.tune_gt, windows_required=False),
            load_submission(args.tune_submission, SED_KEY),
            source=f"{args.tune_submission} vs {args.tune_gt}",
            paths=(str(args.tune_submission), str(args.tune_gt)),
        )  # fmt: skip
    events = (
        EventOptions(args.t_collar, args.percentage_of_length, args.segment_length)
        if args.event_metrics
        else None
    )
    result = evaluate_sed(
        reference, submission, args.threshold, args.label_resolution, events, dev, thresholds,
        source=f"{args.submission} vs {args.gt}",
    )  # fmt: skip
    if args.save:
        write_json(result, args.save)
    # stdout stays the wrapper's three lines for --threshold, so scripts parsing it keep working.
    print(format_sed_stdout(result), end="")
    sys.stderr.write(summary(result))
    return 0
