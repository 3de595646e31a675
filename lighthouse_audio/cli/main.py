"""The ``lighthouse`` command: one argparse group, one module per command family.

Each command module exposes ``add_parser(subparsers)`` and sets ``func`` on its parser; heavy
imports (torch, models) happen inside the command's ``run`` so ``lighthouse --help`` is instant.
"""

from __future__ import annotations

import argparse
import importlib
import sys

COMMAND_MODULES = (
    "lighthouse_audio.cli.list_plugins",
    "lighthouse_audio.cli.train",
    "lighthouse_audio.cli.score",
    "lighthouse_audio.cli.report",
    "lighthouse_audio.cli.infer",
    "lighthouse_audio.cli.predict",
    "lighthouse_audio.cli.models",
    "lighthouse_audio.cli.serve",
    "lighthouse_audio.cli.baseline",
    "lighthouse_audio.cli.extract",
    "lighthouse_audio.cli.simulate",
    "lighthouse_audio.cli.demo",
    "lighthouse_audio.cli.align",
)


class UserError(Exception):
    """An error caused by the user's input: printed as one line, exit status 2."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="lighthouse", description="Language-based audio moment retrieval (AM-DETR)."
    )
    subparsers = parser.add_subparsers(dest="command", required=True)
    for module_name in COMMAND_MODULES:
        importlib.import_module(module_name).add_parser(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    from lighthouse_audio.hub.download import DownloadError

    args = build_parser().parse_args(argv)
    try:
        result = args.func(args)
    except (UserError, FileNotFoundError, ValueError, KeyError) as exc:
        message = exc.args[0] if isinstance(exc, KeyError) and exc.args else exc
        print(f"lighthouse {args.command}: error: {message}", file=sys.stderr)
        return 2
    except DownloadError as exc:  # the network or the disk failed, not the user
        print(f"lighthouse {args.command}: error: {exc}", file=sys.stderr)
        return 1
    return int(result or 0)


if __name__ == "__main__":
    sys.exit(main())
