"""``lighthouse align (--sounds DIR | --manifest M.jsonl) [--feature F] [--out PATH]``.

Trains the projection heads of a joint audio-text space for a feature that has none (default
``aisfx-minilm``) on captioned clips, prints held-out retrieval recall against chance and writes
the space where the feature's ``joint_space`` factory finds it. An existing output is never
replaced without ``--force``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from lighthouse_audio.cli.arguments import NON_NEGATIVE, POSITIVE, SEED, count, number


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    from lighthouse_audio.align.train import HeadsConfig

    d = HeadsConfig()
    parser = subparsers.add_parser(
        "align",
        help="train a joint audio-text space (projection heads) for a feature without one",
        description="Contrastively trains an audio head and a text head on captioned clips (one "
        "sample per 1 s window), split by recording; reports held-out text->audio and "
        "audio->text recall@1/5/10 against chance and saves the space (default: "
        "$LIGHTHOUSE_AUDIO_CACHE or ~/.cache/lighthouse-audio, joint/{feature}-{weights_id}.pt).",
    )
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument(
        "--sounds",
        type=Path,
        metavar="DIR",
        help="a folder laid out like shared/sounds (manifest.jsonl; fg clips)",
    )
    source.add_argument(
        "--manifest",
        type=Path,
        metavar="M.jsonl",
        help="JSONL lines with path (relative to the file) and caption or "
        "captions; optional recording (clips of one recording stay together)",
    )
    parser.add_argument(
        "--feature",
        default="aisfx-minilm",
        help="a registered feature with an encoder (default: aisfx-minilm)",
    )
    parser.add_argument("--out", type=Path, help="joint-space file (default: see above)")
    parser.add_argument("--force", action="store_true", help="replace an existing --out file")
    parser.add_argument(
        "--heldout",
        type=number(0, highest=0.9),
        default=0.2,
        help="fraction of clips held out for evaluation (default 0.2; 0: train on all)",
    )
    parser.add_argument("--split-seed", type=SEED, default=0)
    parser.add_argument("--seed", type=SEED, default=d.seed, help="training seed")
    parser.add_argument("--head", choices=("mlp", "linear"), default=d.kind)
    parser.add_argument("--hidden-dim", type=count(), default=d.hidden_dim, help="mlp heads only")
    parser.add_argument("--dim", type=count(), default=d.dim, help="joint-space dimension")
    parser.add_argument("--epochs", type=count(), default=d.epochs)
    parser.add_argument("--batch-size", type=count(), default=d.batch_size, help="clips per step")
    parser.add_argument("--lr", type=POSITIVE, default=d.lr)
    parser.add_argument("--weight-decay", type=NON_NEGATIVE, default=d.weight_decay)
    parser.add_argument(
        "--temperature",
        type=POSITIVE,
        help="fixed InfoNCE temperature (default: learnt from 0.07)",
    )
    parser.add_argument(
        "--text-pooling",
        choices=("mean", "last"),
        default="mean",
        help="query tokens -> one vector (mean: sentence-transformers style)",
    )
    parser.add_argument(
        "--input-norm",
        action="store_true",
        help="L2-normalise rows before the heads (needed by AM-DETR's joint_prior=FILE)",
    )
    parser.add_argument(
        "--recordings",
        type=Path,
        metavar="ANN.jsonl",
        help="moment annotations (Lighthouse JSONL) of training recordings: each query's "
        "frames are also contrasted with the rest of its recording (hard negatives); needs "
        "--recording-features",
    )
    parser.add_argument(
        "--recording-features",
        type=Path,
        metavar="DIR",
        help="features root of --recordings (holding FEATURE/ and FEATURE_text/)",
    )
    parser.add_argument(
        "--recording-weight",
        type=NON_NEGATIVE,
        default=d.recording_weight,
        help=f"weight of the in-recording loss (default {d.recording_weight:g})",
    )
    parser.add_argument("--device", default="cpu", help="cpu, cuda, cuda:N (default cpu)")
    parser.add_argument(
        "--encode-batch-size", type=count(), default=64, help="windows per encoder call"
    )
    parser.add_argument(
        "--cache-dir",
        type=Path,
        help="encoded-clip cache (default: {cache}/align/{feature}-{weights_id})",
    )
    parser.add_argument("--no-cache", action="store_true", help="encode everything afresh")
    parser.add_argument("--weights", help="encoder weights (as for lighthouse extract)")
    parser.add_argument(
        "--option",
        action="append",
        default=[],
        metavar="key=value",
        help="extra encoder option (repeatable)",
    )
    parser.add_argument("--no-progress", action="store_true")
    parser.set_defaults(func=run, resume_hint="the same command (encoded clips are cached)")


def run(args: argparse.Namespace) -> int:
    import sys
    import time

    from lighthouse_audio.align.align_feature import align_feature
    from lighthouse_audio.align.metrics import format_table
    from lighthouse_audio.align.train import HeadsConfig
    from lighthouse_audio.cli.errors import UserError
    from lighthouse_audio.config import parse_override

    manifest = args.manifest if args.manifest is not None else args.sounds / "manifest.jsonl"
    options = dict(parse_override(text) for text in args.option)
    if args.weights:
        options["weights"] = args.weights
    heads = HeadsConfig(
        kind=args.head, hidden_dim=args.hidden_dim, dim=args.dim, epochs=args.epochs,
        batch_size=args.batch_size, lr=args.lr, weight_decay=args.weight_decay,
        temperature=args.temperature, seed=args.seed, recording_weight=args.recording_weight,
    )  # fmt: skip
    if (args.recordings is None) != (args.recording_features is None):
        raise UserError("--recordings and --recording-features go together")
    started = time.perf_counter()
    try:
        result = align_feature(
            manifest, args.feature, out=args.out, force=args.force, heldout=args.heldout,
            split_seed=args.split_seed, heads=heads, text_pooling=args.text_pooling,
            input_norm=args.input_norm, device=args.device, cache_dir=args.cache_dir,
            cache=not args.no_cache,
            batch_size=args.encode_batch_size, encoder_options=options,
            progress=not args.no_progress, log=lambda line: print(line, file=sys.stderr),
            recordings=args.recordings, recordings_features=args.recording_features,
        )  # fmt: skip
    except FileExistsError as e:
        raise UserError(str(e)) from None
    meta = result.space.meta
    print(
        f"lighthouse align: {args.feature} ({meta['weights_id']}): {meta['num_train_clips']} "
        f"train / {meta['num_heldout_clips']} held-out clips, {len(result.skipped)} skipped, "
        f"{heads.epochs} epochs, {time.perf_counter() - started:.0f} s"
    )
    if meta["num_recording_queries"]:
        queries = meta["num_recording_queries"]
        print(f"in-recording negatives: {queries} queries of {args.recordings}")
    if result.metrics is None:
        print("no held-out clips (--heldout 0): retrieval recall not measured")
    else:
        print(f"held-out retrieval ({result.metrics['num_clips']} clips, "
              f"{result.metrics['num_captions']} captions):")  # fmt: skip
        print(format_table(result.metrics))
    print(f"wrote {result.path}")
    return 0
