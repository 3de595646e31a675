"""``lighthouse serve --checkpoint PATH_OR_NAME``: the web app on http://127.0.0.1:7860."""

from __future__ import annotations

import argparse
from pathlib import Path

from lighthouse_audio.cli.arguments import PORT, POSITIVE, count


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    from lighthouse_audio.web.app import ServeConfig  # a dataclass only: cheap

    d = ServeConfig.__dataclass_fields__
    parser = subparsers.add_parser(
        "serve",
        help="web app: upload a recording, type queries, see and play the moments",
        description="Serves a Gradio app. It binds 127.0.0.1 (this machine only) unless "
        "--host says otherwise; uploads are limited in size and duration; several users can "
        "use it at once. Needs the 'web' extra: pip install 'lighthouse-audio[web]'.",
    )
    parser.add_argument("--checkpoint", required=True, help="a .ckpt, hf://... or a model name")
    parser.add_argument("--feature", help="feature/encoder (default: the checkpoint's)")
    parser.add_argument(
        "--host",
        default=d["host"].default,
        help="interface to bind (default 127.0.0.1; 0.0.0.0 exposes it)",
    )
    parser.add_argument("--port", type=PORT, default=d["port"].default)
    parser.add_argument(
        "--recordings", type=Path, help="a folder of recordings users may choose from by name"
    )
    parser.add_argument("--max-upload-mb", type=POSITIVE, default=d["max_upload_mb"].default)
    parser.add_argument(
        "--max-duration",
        type=POSITIVE,
        default=d["max_duration"].default,
        help="longest recording accepted, in seconds",
    )
    parser.add_argument(
        "--concurrency", type=count(), default=d["concurrency"].default, help="requests run at once"
    )
    parser.add_argument("--device", default="cpu", help="cpu, cuda, cuda:N or auto")
    parser.add_argument("--weights", help="encoder weights (file, hub id or name)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    try:
        import gradio  # noqa: F401
    except ImportError:
        raise ValueError(
            "lighthouse serve needs Gradio: pip install 'lighthouse-audio[web]'"
        ) from None
    from lighthouse_audio.predictor import MomentPredictor
    from lighthouse_audio.web.app import ServeConfig, launch

    for name in ("max_upload_mb", "max_duration", "concurrency"):
        if getattr(args, name) <= 0:
            raise ValueError(f"--{name.replace('_', '-')} must be positive")
    options = {"weights": args.weights} if args.weights else {}
    predictor = MomentPredictor(
        args.checkpoint, device=args.device, feature_name=args.feature, **options
    )
    config = ServeConfig(
        host=args.host, port=args.port, recordings=args.recordings,
        max_upload_mb=args.max_upload_mb, max_duration=args.max_duration,
        concurrency=args.concurrency,
    )  # fmt: skip
    if args.host not in ("127.0.0.1", "localhost", "::1"):
        print(f"lighthouse serve: listening on {args.host}: reachable from other machines")
    print(f"lighthouse serve: http://{args.host}:{args.port} (Ctrl-C to stop)")
    launch(predictor, config, block=True)
    return 0
