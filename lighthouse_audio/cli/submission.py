"""``lighthouse submission``: a DCASE 2026 Task 6 submission file from predictions or a checkpoint.

Either ``--predictions`` (what ``lighthouse infer`` wrote) or ``--checkpoint`` with ``--features``
(predicted here as ``infer`` does), always with ``--jsonl``, the split's query file, which fixes
the rows and their order. The formatting rules are in :mod:`lighthouse_audio.prediction.submission`.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from lighthouse_audio.cli.arguments import count
from lighthouse_audio.cli.errors import UserError


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    from lighthouse_audio.prediction.submission import DEFAULT_MAX_END

    parser = subparsers.add_parser(
        "submission",
        help="write a DCASE 2026 Task 6 submission jsonl (ranked whole-second windows per query)",
        description="One row per query of --jsonl: qid, query, duration, vid, "
        "pred_relevant_windows [[start, end], ...] best first, whole seconds in [0, --max-end].",
    )
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument(
        "--predictions", type=Path, help="Lighthouse predictions jsonl (lighthouse infer --out)"
    )
    source.add_argument(
        "--checkpoint", type=Path, help="a .ckpt file (or a lighthouse models name) to predict with"
    )
    parser.add_argument(
        "--jsonl", type=Path, required=True, help="the split's query or annotation jsonl"
    )
    parser.add_argument(
        "--features", type=Path,
        help="with --checkpoint: folder of <a_feat_types>/{vid}.npz and <t_feat_type>_text/",
    )  # fmt: skip
    parser.add_argument("--out", type=Path, required=True, help="submission jsonl to write")
    parser.add_argument("--force", action="store_true", help="overwrite --out if it exists")
    parser.add_argument(
        "--top-k", type=count(), help="keep the best K windows per query (default: all)"
    )
    parser.add_argument(
        "--max-end", type=count(), default=DEFAULT_MAX_END,
        help=f"windows are clipped to [0, this] seconds (default {DEFAULT_MAX_END})",
    )  # fmt: skip
    parser.add_argument("--device", default="cpu", help="with --checkpoint: cpu, cuda[:N], auto")
    parser.add_argument("--batch-size", type=count(), help="default: the checkpoint's eval_bsz")
    parser.add_argument("--no-progress", action="store_true")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from lighthouse_audio.prediction import submission

    if args.checkpoint is not None and args.features is None:
        raise UserError("--checkpoint needs --features (the split's feature folder)")
    if args.predictions is not None and args.features is not None:
        raise UserError("--features is read only with --checkpoint, not with --predictions")
    if args.out.is_dir():
        raise UserError(f"{args.out}: is a folder; --out names the submission file")
    if args.out.exists() and not args.force:
        raise UserError(f"{args.out}: already exists (pass --force to overwrite it)")
    for flag, given in (("--jsonl", args.jsonl), ("--predictions", args.predictions)):
        # --force must not let the submission replace one of its own inputs
        if given is not None and args.out.exists() and given.exists() and args.out.samefile(given):
            raise UserError(f"{args.out}: is the {flag} file; --out must name another file")

    queries = submission.read_queries(args.jsonl)  # before any model is loaded
    if args.predictions is not None:
        predictions = submission.read_predictions(args.predictions)
        predictions_name = str(args.predictions)
    else:
        lines = predict(args)
        predictions_name = f"the predictions of {args.checkpoint}"
        predictions = [(f"{predictions_name}, row {i}", p) for i, p in enumerate(lines, 1)]
    rows = submission.build_submission(
        queries, predictions, max_end=args.max_end, top_k=args.top_k,
        queries_name=str(args.jsonl), predictions_name=predictions_name,
    )  # fmt: skip
    submission.write_submission(rows, args.out)
    num_windows = sum(len(row["pred_relevant_windows"]) for row in rows)
    print(f"lighthouse: wrote {len(rows)} queries ({num_windows} windows) to {args.out}")
    return 0


def predict(args: argparse.Namespace) -> list[dict]:
    """Predictions for ``--jsonl`` as ``lighthouse infer`` makes them (queries need no windows)."""
    from lighthouse_audio.prediction.model import load_model
    from lighthouse_audio.prediction.split import predict_split

    loaded = load_model(args.checkpoint, device=args.device)
    predictions, _ = predict_split(
        loaded, args.jsonl, args.features, args.batch_size, require_windows=False,
        progress=not args.no_progress,
    )  # fmt: skip
    return predictions
