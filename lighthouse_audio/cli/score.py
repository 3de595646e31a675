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
    events.add_argument("--t-collar", type=float, default=0.2, help="onset collar, s (0.2)")
    events.add_argument(
        "--percentage-of-length",
        type=float,
        default=0.2,
        help="offset collar as a fraction of the reference length (0.2)",
    )
    events.add_argument("--segment-length", type=float, default=1.0, help="segment, s (1)")
    parser.set_defaults(func=run_sed)


def _load(args: argparse.Namespace) -> tuple[list[dict], list[dict]]:
    from lighthouse_audio.file_io import load_jsonl

    return load_jsonl(args.submission), load_jsonl(args.gt)


def run(args: argparse.Namespace) -> int:
    import json

    from lighthouse_audio.evaluation.metrics import eval_submission
    from lighthouse_audio.file_io import write_json

    submission, ground_truth = _load(args)
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

    from lighthouse_audio.evaluation.sed import (
        format_sed_stdout,
        parse_thresholds,
        rasterise,
        sed_result,
        tune_threshold,
    )
    from lighthouse_audio.file_io import load_jsonl, write_json

    if (args.tune_submission is None) != (args.tune_gt is None):
        raise ValueError("--tune-submission and --tune-gt go together")
    thresholds = parse_thresholds(args.thresholds)  # checked before any file is read
    submission, reference = _load(args)
    try:
        raster = rasterise(reference, submission, args.label_resolution)
    except ValueError as exc:
        raise ValueError(f"{args.submission} vs {args.gt}: {exc}") from None
    result = sed_result(raster, args.threshold)
    if args.event_metrics:
        result.update(_event_scores(args, reference, submission, args.threshold))

    if args.tune_submission is not None:
        dev_submission, dev_reference = load_jsonl(args.tune_submission), load_jsonl(args.tune_gt)
        try:
            dev_raster = rasterise(dev_reference, dev_submission, args.label_resolution)
        except ValueError as exc:
            raise ValueError(f"{args.tune_submission} vs {args.tune_gt}: {exc}") from None
        best, curve = tune_threshold(dev_raster, thresholds)
        tuned = sed_result(raster, best)
        del tuned["labels"]  # same as the untuned result's
        if args.event_metrics:
            tuned.update(_event_scores(args, reference, submission, best))
        dev_f1 = next(point["f1"] for point in curve if point["threshold"] == best)
        tuned["dev"] = {
            "submission": str(args.tune_submission),
            "gt": str(args.tune_gt),
            "f1": dev_f1,
            "curve": curve,
        }
        result["tuned_threshold"] = best
        result["tuned"] = tuned

    if args.save:
        write_json(result, args.save)
    # stdout stays the wrapper's three lines for --threshold, so scripts parsing it keep working.
    print(format_sed_stdout(result), end="")
    sys.stderr.write(_summary(result))
    return 0


def _event_scores(
    args: argparse.Namespace, reference: list[dict], submission: list[dict], threshold: float
) -> dict:
    from lighthouse_audio.evaluation.sed_events import sed_event_scores

    return sed_event_scores(
        reference,
        submission,
        threshold,
        t_collar=args.t_collar,
        percentage_of_length=args.percentage_of_length,
        segment_length=args.segment_length,
    )


def _summary(result: dict) -> str:
    """Human-readable lines for what the wrapper's stdout does not show."""
    lines = []

    def scores(name: str, block: dict) -> None:
        lines.append(
            f"{name}: P {block['precision']:.2f}, R {block['recall']:.2f}, F1 {block['f1']:.2f}"
        )

    for prefix, block in (("", result), ("tuned ", result.get("tuned"))):
        if block is None:
            continue
        if prefix:
            lines.append(
                f"tuned threshold {result['tuned_threshold']:g} (dev micro F1 "
                f"{block['dev']['f1']:.2f})"
            )
            scores(f"{prefix}frame-based (micro)", block)
        if "event_based" in block:
            event = block["event_based"]
            scores(
                f"{prefix}event-based (collar {event['t_collar']:g} s / "
                f"{100 * event['percentage_of_length']:g}% of length)",
                event,
            )
            scores(
                f"{prefix}segment-based ({block['segment_based']['segment_length']:g} s)",
                block["segment_based"],
            )
    return "".join(f"{line}\n" for line in lines)
