"""``lighthouse extract --feature F --audio-dir DIR [--jsonl ANN.jsonl] --out ROOT``."""

from __future__ import annotations

import argparse
from pathlib import Path

from lighthouse_audio.cli.arguments import POSITIVE, count


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "extract",
        help="compute audio and text features in Lighthouse's layout",
        description="Writes ROOT/F/{vid}.npz (features) and ROOT/F_text/qid{qid}.npz "
        "(last_hidden_state); resumable: finished files are verified and kept.",
    )
    parser.add_argument("--feature", required=True, help="a registered feature (lighthouse list)")
    parser.add_argument("--audio-dir", type=Path, required=True)
    parser.add_argument("--jsonl", type=Path, action="append", default=[],
                        help="annotations: their vids and queries (repeatable; default: every "
                        "audio file in --audio-dir, no text)")  # fmt: skip
    parser.add_argument("--out", type=Path, required=True, help="features root")
    parser.add_argument("--window", type=POSITIVE, help="seconds (default: the encoder's)")
    parser.add_argument("--hop", type=POSITIVE, help="seconds (default: the encoder's)")
    parser.add_argument("--frames", choices=("center", "none"), help="default: the encoder's")
    parser.add_argument("--device", default="auto", help="cpu, cuda, cuda:N or auto")
    parser.add_argument("--batch-size", type=count(), default=64)
    parser.add_argument("--weights", help="encoder weights (file, folder or hub id)")
    parser.add_argument("--option", action="append", default=[], metavar="key=value",
                        help="extra encoder option (repeatable)")  # fmt: skip
    parser.add_argument("--no-progress", action="store_true")
    parser.set_defaults(
        func=run, resume_hint="the same command (finished files are verified and kept)"
    )


def run(args: argparse.Namespace) -> int:
    from lighthouse_audio.config import parse_override
    from lighthouse_audio.extraction.extract import build_encoder, extract_features
    from lighthouse_audio.registry import FEATURES

    options = dict(parse_override(text) for text in args.option)
    if args.weights:
        options["weights"] = args.weights
    FEATURES.get(args.feature)  # an unknown name fails before the folder is read

    def encoder():  # built once the folder and annotations have been checked
        return build_encoder(args.feature, args.device, **options)

    audio, text = extract_features(
        encoder, args.feature, args.audio_dir, args.out, args.jsonl, args.window, args.hop,
        args.frames, args.batch_size, progress=not args.no_progress,
    )  # fmt: skip
    print(audio.summary("audio"))
    if text is not None:
        print(text.summary("text"))
    return 1 if audio.failed or (text is not None and text.failed) else 0
