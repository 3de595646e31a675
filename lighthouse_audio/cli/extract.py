"""``lighthouse extract --feature F --audio-dir DIR [--jsonl ANN.jsonl] --out ROOT``."""

from __future__ import annotations

import argparse
from pathlib import Path


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
    parser.add_argument("--window", type=float, help="seconds (default: the encoder's)")
    parser.add_argument("--hop", type=float, help="seconds (default: the encoder's)")
    parser.add_argument("--frames", choices=("center", "none"), help="default: the encoder's")
    parser.add_argument("--device", default="auto", help="cpu, cuda, cuda:N or auto")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--weights", help="encoder weights (file, folder or hub id)")
    parser.add_argument("--option", action="append", default=[], metavar="key=value",
                        help="extra encoder option (repeatable)")  # fmt: skip
    parser.add_argument("--no-progress", action="store_true")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import lighthouse_audio
    from lighthouse_audio.config import parse_override
    from lighthouse_audio.data.annotations import load_queries
    from lighthouse_audio.data.layout import FeatureLayout
    from lighthouse_audio.devices import resolve_device
    from lighthouse_audio.extraction.extract import extract_audio, extract_text, recordings_by_vid
    from lighthouse_audio.extraction.feature_manifest import (
        FeatureManifest,
        differences,
        read_manifest,
        write_manifest,
    )
    from lighthouse_audio.registry import FEATURES

    spec = FEATURES.get(args.feature)
    if spec.encoder is None:
        raise ValueError(f"feature '{args.feature}' has no encoder: it can only be read from disk")
    options = dict(parse_override(text) for text in args.option)
    if args.weights:
        options["weights"] = args.weights
    encoder = spec.encoder(**options).to(resolve_device(args.device))
    window = args.window or encoder.window
    hop = args.hop or encoder.hop
    frames = args.frames or encoder.frames

    audio_out = FeatureLayout(args.out, args.feature).audio_dir
    manifest = FeatureManifest(
        feature=args.feature, weights_id=encoder.weights_id(), sample_rate=encoder.sample_rate,
        window=window, hop=hop, frames=frames, audio_dim=encoder.audio_dim,
        text_dim=encoder.text_dim, text_mode=encoder.text_mode,
        package_version=lighthouse_audio.__version__,
    )  # fmt: skip
    existing = read_manifest(audio_out)
    if existing is not None and differences(existing, manifest):
        raise ValueError(
            f"{audio_out}: holds features made differently "
            f"({'; '.join(differences(existing, manifest))}); choose another --out"
        )
    audio_out.mkdir(parents=True, exist_ok=True)
    write_manifest(audio_out, manifest)

    files = recordings_by_vid(args.audio_dir)
    queries = [q for path in args.jsonl for q in load_queries(path, require_windows=False)]
    if queries:
        wanted = dict.fromkeys(q.vid for q in queries)
        missing = [vid for vid in wanted if vid not in files]
        recordings = {vid: files[vid] for vid in wanted if vid in files}
    else:
        missing, recordings = [], files
    print(f"lighthouse: {len(recordings)} recordings, {len(queries)} queries -> {args.out}")
    progress = not args.no_progress
    report = extract_audio(
        encoder, recordings, audio_out, window, hop, frames, args.batch_size, progress
    )
    report.failed.extend(
        (vid, f"no audio file for this vid in {args.audio_dir}") for vid in missing
    )
    print(report.summary("audio"))
    if queries:
        text_out = FeatureLayout(args.out, args.feature).text_dir
        text_report = extract_text(
            encoder, [(q.qid, q.query) for q in queries], text_out, args.batch_size, progress
        )
        print(text_report.summary("text"))
        report.failed.extend(text_report.failed)
    return 1 if report.failed else 0
