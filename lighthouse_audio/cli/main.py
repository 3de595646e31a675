"""The ``lighthouse`` command: one argparse group, one module per command family.

Each command module exposes ``add_parser(subparsers)`` and sets ``func`` on its parser; heavy
imports (torch, models) happen inside the command's ``run`` so ``lighthouse --help`` is instant.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
import warnings
from argparse import Namespace
from typing import NoReturn

from lighthouse_audio.cli.errors import UserError

COMMAND_MODULES = (
    "lighthouse_audio.cli.list_plugins",
    "lighthouse_audio.cli.train",
    "lighthouse_audio.cli.score",
    "lighthouse_audio.cli.report",
    "lighthouse_audio.cli.infer",
    "lighthouse_audio.cli.submission",
    "lighthouse_audio.cli.predict",
    "lighthouse_audio.cli.models",
    "lighthouse_audio.cli.serve",
    "lighthouse_audio.cli.baseline",
    "lighthouse_audio.cli.extract",
    "lighthouse_audio.cli.simulate",
    "lighthouse_audio.cli.demo",
    "lighthouse_audio.cli.align",
)


# Exit statuses: 2 the input is wrong (usage, files, values), 1 the work failed, 130 interrupted
# (128 + SIGINT), 141 the reader of our output went away (128 + SIGPIPE, as `yes | head` gives).
EXIT_USAGE, EXIT_FAILURE, EXIT_INTERRUPTED, EXIT_BROKEN_PIPE = 2, 1, 130, 141
DEBUG_ENV = "LIGHTHOUSE_AUDIO_DEBUG"  # set to 1 to see the traceback of an unexpected error


class OneLineParser(argparse.ArgumentParser):
    """argparse, but a usage error is one line pointing to --help (exit 2), like every other
    error of the command, instead of the usage block followed by the message."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(
        prog="lighthouse", description="Language-based audio moment retrieval (AM-DETR)."
    )
    subparsers = parser.add_subparsers(dest="command", required=True)
    for module_name in COMMAND_MODULES:
        importlib.import_module(module_name).add_parser(subparsers)
    return parser


def parse_command_line(parser: argparse.ArgumentParser, argv: list[str] | None) -> Namespace:
    """Parse, letting ``key=value`` overrides sit anywhere (``train ... --resume R lr=1e-4``):
    argparse alone stops collecting a positional list at the first option after it."""
    args, extras = parser.parse_known_args(argv)
    if extras:
        command_parser = _subparsers(parser).choices[args.command]
        if hasattr(args, "overrides") and all(_is_override(extra) for extra in extras):
            args.overrides = [*(args.overrides or []), *extras]
        else:
            command_parser.error(f"unrecognized arguments: {' '.join(extras)}")
    return args


def _is_override(token: str) -> bool:
    return "=" in token and not token.startswith("-")


def _subparsers(parser: argparse.ArgumentParser) -> argparse._SubParsersAction:
    return next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))


def main(argv: list[str] | None = None) -> int:
    args = parse_command_line(build_parser(), argv)
    name = f"lighthouse {args.command}"
    if getattr(args, "no_progress", False):  # the model hub's and transformers' bars too
        os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    with warnings.catch_warnings():  # warnings as one line each, like errors; restored after
        warnings.showwarning = lambda message, *_, **__: print(
            f"{name}: warning: {' '.join(str(message).split())}", file=sys.stderr
        )
        return _run(args, name)


def _run(args: Namespace, name: str) -> int:
    from lighthouse_audio.hub.download import DownloadError

    try:
        result = args.func(args)
        sys.stdout.flush()  # a closed pipe shows here, inside the handler, not at exit
    except (UserError, FileNotFoundError, ValueError, KeyError) as exc:
        message = exc.args[0] if isinstance(exc, KeyError) and exc.args else exc
        return _fail(name, message, EXIT_USAGE)
    except DownloadError as exc:  # the network or the disk failed, not the user
        return _fail(name, exc, EXIT_FAILURE)
    except KeyboardInterrupt:
        hint = getattr(args, "resume_hint", None)  # a command's text, or a function of its state
        hint = hint() if callable(hint) else hint
        return _fail(
            name, "interrupted" + (f"; resume with: {hint}" if hint else ""), EXIT_INTERRUPTED
        )
    except BrokenPipeError:
        # The reader (`| head`) has gone: stop writing, and keep Python's exit-time flush of
        # stdout from raising again.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_BROKEN_PIPE
    except MemoryError:
        return _fail(name, "out of memory (try a smaller batch size)", EXIT_FAILURE)
    except OSError as exc:  # disk full, permissions, a device gone: the environment, one line
        return _fail(name, exc, EXIT_FAILURE)
    except Exception as exc:  # a bug or an unforeseen input: one line, the traceback on request
        if os.environ.get(DEBUG_ENV):
            raise
        text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        message = f"{type(exc).__name__}: {text}" if text else type(exc).__name__
        return _fail(name, f"{message} (set {DEBUG_ENV}=1 for the traceback)", EXIT_FAILURE)
    return int(result or 0)


def _fail(name: str, message: object, status: int) -> int:
    text = " ".join(str(message).split("\n")).strip()
    print(f"{name}: error: {text}", file=sys.stderr)
    return status


__all__ = ["UserError", "build_parser", "main"]

if __name__ == "__main__":
    sys.exit(main())
