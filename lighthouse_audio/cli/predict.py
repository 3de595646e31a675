"""``lighthouse predict``: moments in your recordings, from the shell.

    lighthouse predict garden.wav --query "a dog barks" --checkpoint clap_qd_detr_clotho-moment
    lighthouse predict recordings/ --queries queries.txt --checkpoint best.ckpt --jsonl out.jsonl

Each recording is encoded once and all queries run in shared forward passes; recordings of any
length are predicted in overlapping chunks. Unreadable files are skipped and reported. Exit
status: 0 all done, 1 some recordings failed, 2 usage error (bad arguments, checkpoint, query).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from lighthouse_audio.cli.arguments import (
    FRACTION,
    PRIOR_REFINE_HELP,
    PRIOR_SCORE_MIX_HELP,
    SCORE,
    count,
)


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "predict",
        help="find the moments matching text queries in recordings (any length)",
        description="Prints each recording's top moments per query (hh:mm:ss.s); --jsonl/--json "
        "write them for scripts, --plot draws them. Exit status 0: all done, 1: some "
        "recordings failed (reported, the others are done), 2: usage error.",
    )
    parser.add_argument("inputs", nargs="+", type=Path, metavar="AUDIO_OR_DIR",
                        help="audio files, or folders searched recursively")  # fmt: skip
    parser.add_argument("--query", action="append", default=[], help="text query (repeatable)")
    parser.add_argument("--queries", type=Path, help="a file of queries, one per line")
    parser.add_argument(
        "--checkpoint", required=True,
        help="a .ckpt file, hf://OWNER/REPO/FILE, or a name from `lighthouse models`",
    )  # fmt: skip
    parser.add_argument("--feature", help="feature/encoder to use (default: the checkpoint's)")
    parser.add_argument("--top-k", type=count(), default=5, help="moments per query (default 5)")
    parser.add_argument("--min-score", type=SCORE, default=0.0, help="drop lower-scoring moments")
    out = parser.add_mutually_exclusive_group()
    out.add_argument("--jsonl", type=Path, metavar="OUT", help="JSON Lines ('-': stdout)")
    out.add_argument("--json", type=Path, metavar="OUT", help="one JSON list ('-': stdout)")
    parser.add_argument("--plot", type=Path, metavar="DIR", help="write a picture per recording")
    parser.add_argument("--device", default="cpu", help="cpu, cuda, cuda:N or auto")
    parser.add_argument("--weights", help="encoder weights (file, hub id or name)")
    parser.add_argument("--option", action="append", default=[], metavar="key=value",
                        help="extra encoder option (repeatable)")  # fmt: skip
    parser.add_argument("--batch-size", type=count(), default=64, help="items per forward pass")
    parser.add_argument(
        "--truncate",
        action="store_true",
        help="only the model's first span of each recording (Lighthouse's way)",
    )
    parser.add_argument("--overlap", type=count(0), help="frames shared by neighbouring chunks")
    parser.add_argument("--prior-score-mix", type=FRACTION, metavar="W",
                        help=PRIOR_SCORE_MIX_HELP)  # fmt: skip
    parser.add_argument("--prior-refine", type=FRACTION, metavar="R", help=PRIOR_REFINE_HELP)
    parser.add_argument("--no-progress", action="store_true")
    parser.set_defaults(func=run)


def read_queries(args: argparse.Namespace) -> list[str]:
    from lighthouse_audio.prediction.queries import check_queries

    queries = list(args.query)
    if args.queries is not None:
        try:
            text = args.queries.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise FileNotFoundError(f"{args.queries}: no such queries file") from None
        except UnicodeDecodeError as exc:
            raise ValueError(f"{args.queries}: not UTF-8 text ({exc.reason})") from None
        queries += [q.strip() for q in text.splitlines() if q.strip() and not q.startswith("#")]
        if not queries:
            raise ValueError(f"{args.queries}: no queries in the file")
    if not queries:
        raise ValueError("give at least one --query TEXT or --queries FILE")
    return check_queries(queries)


def find_recordings(inputs: list[Path]) -> list[Path]:
    """The files given, and every audio file (by extension) under the folders given."""
    from lighthouse_audio.data.layout import find_audio_files

    found: list[Path] = []
    for path in inputs:
        if path.is_dir():
            found += find_audio_files(path)
        else:
            found.append(path)  # checked when read, so a missing file is reported, not fatal
    if not found:
        raise ValueError(f"no audio files in {', '.join(map(str, inputs))}")
    return list(dict.fromkeys(found))


def _free_name(folder: Path, stem: str, taken: set[str]) -> Path:
    """``stem.png``, else ``stem-2.png``...: never one already written or on disk."""
    name, n = f"{stem}.png", 1
    while name in taken or (folder / name).exists():
        n += 1
        name = f"{stem}-{n}.png"
    taken.add(name)
    return folder / name


def _write_output(path: Path, lines: list[dict], as_json: bool) -> None:
    text = (
        json.dumps(lines, indent=1) + "\n"
        if as_json
        else "".join(json.dumps(line) + "\n" for line in lines)
    )
    if str(path) == "-":
        sys.stdout.write(text)
        return
    from lighthouse_audio.file_io import write_text

    write_text(path, text)


def run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from lighthouse_audio.audio.decode import AudioError
    from lighthouse_audio.config import parse_override
    from lighthouse_audio.prediction.formatting import format_recording, result_line
    from lighthouse_audio.predictor import MomentPredictor

    if args.top_k < 1:
        raise ValueError(f"--top-k must be at least 1, got {args.top_k}")
    queries = read_queries(args)
    recordings = find_recordings(args.inputs)
    options = dict(parse_override(text) for text in args.option)
    if args.weights:
        options["weights"] = args.weights
    predictor = MomentPredictor(
        args.checkpoint, device=args.device, feature_name=args.feature, truncate=args.truncate,
        overlap=args.overlap, batch_size=args.batch_size, prior_score_mix=args.prior_score_mix,
        prior_refine=args.prior_refine, **options,
    )  # fmt: skip
    output = args.jsonl or args.json
    to_stdout = output is not None and str(output) == "-"
    say = (lambda text: print(text, file=sys.stderr)) if to_stdout else print
    lines: list[dict] = []
    failed: list[tuple[Path, str]] = []
    plots: set[str] = set()
    show_bar = not args.no_progress and len(recordings) > 1
    for path in tqdm(recordings, desc="recordings", unit="file", disable=not show_bar):
        try:
            audio = predictor.encode_audio(path)
        except (AudioError, FileNotFoundError, ValueError) as exc:
            failed.append((path, str(exc)))
            print(f"lighthouse predict: skipped {exc}", file=sys.stderr)
            continue
        results = predictor.predict(queries, audio)
        say(format_recording(str(path), audio.duration, results, args.top_k, args.min_score))
        lines += [
            result_line(str(path), audio.duration, r, args.top_k, args.min_score) for r in results
        ]
        if args.plot is not None:
            from lighthouse_audio.prediction.plot import plot_prediction

            picture = plot_prediction(
                path, results, _free_name(args.plot, path.stem, plots),
                frame_times=audio.frame_times, top_k=min(args.top_k, 3),
                min_score=args.min_score,
            )  # fmt: skip
            say(f"  picture: {picture}")
    if output is not None:
        _write_output(output, lines, as_json=args.json is not None)
        if not to_stdout:
            say(f"lighthouse predict: wrote {len(lines)} results to {output}")
    if failed:
        print(
            f"lighthouse predict: {len(failed)} of {len(recordings)} recordings failed",
            file=sys.stderr,
        )
        return 1
    return 0
