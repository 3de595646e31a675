"""``lighthouse simulate``: a Clotho-Moment-style dataset, from your corpora or a recipe.

    lighthouse simulate --fg-manifest fg.jsonl --bg-dir ambiences/ --out sim/ --n 1000 --seed 0
    lighthouse simulate --recipe recipe_test.json --audio-root generator_dir/ --out clotho_test/

Both write OUT/audio/{vid}.wav, OUT/recipes.json and OUT/annotations.jsonl (Lighthouse format);
the first also keeps the trimmed and cut sources in OUT/sources/ (what recipes.json points to).
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from lighthouse_audio.cli.arguments import FRACTION, POSITIVE, SEED, count

if TYPE_CHECKING:
    from lighthouse_audio.simulation.render import RenderReport


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "simulate",
        help="simulate audio moment retrieval data (Clotho-Moment's Algorithm 1)",
        description="Overlay captioned foreground clips on background clips and write audio "
        "plus Lighthouse annotations. Give --fg-manifest and --bg-dir to simulate from your "
        "own corpora, or --recipe to render an existing (e.g. official) recipe file. Output "
        "is built in .OUT.partial and renamed when done; rerunning resumes an interrupted run.",
    )
    corpus = parser.add_argument_group("simulate from corpora")
    corpus.add_argument(
        "--fg-manifest", type=Path, help="jsonl: path + caption (or captions) per foreground clip"
    )
    corpus.add_argument("--bg-dir", type=Path, help="folder of background recordings")
    corpus.add_argument(
        "--n", type=count(), help="number of background clips (default: all windows)"
    )
    corpus.add_argument("--seed", type=SEED, default=0)
    corpus.add_argument("--config", type=Path, help="simulation YAML (official config.yaml works)")
    corpus.add_argument("--clip-length", type=POSITIVE, help="background clip seconds (60)")
    corpus.add_argument("--hop", type=POSITIVE, help="seconds between background clip starts (1)")
    corpus.add_argument(
        "--avg-interval", type=POSITIVE, help="mean gap before each foreground, s (30)"
    )
    corpus.add_argument(
        "--repeat-prob",
        type=FRACTION,
        help="chance a placed sound is placed again: one query, two windows (0)",
    )
    recipe = parser.add_argument_group("render a recipe")
    recipe.add_argument("--recipe", type=Path, help="recipe json (official format)")
    recipe.add_argument(
        "--audio-root", type=Path, help="recipe paths are relative to it (default: its folder)"
    )
    parser.add_argument("--out", type=Path, required=True, help="output dataset folder (new)")
    parser.add_argument("--sample-rate", type=count(), help="Hz (default: 32000, or the config's)")
    parser.add_argument("--workers", type=count(), default=1, help="processes (default 1)")
    parser.add_argument("--no-progress", action="store_true")
    parser.set_defaults(
        func=run, resume_hint="the same command (it continues in the .OUT.partial folder)"
    )


def run(args: argparse.Namespace) -> int:
    corpus_args = [
        args.fg_manifest, args.bg_dir, args.n, args.config, args.clip_length, args.hop,
        args.avg_interval, args.repeat_prob,
    ]  # fmt: skip
    if args.workers < 1:
        raise ValueError(f"--workers must be >= 1, got {args.workers}")
    if args.recipe is not None:
        if any(a is not None for a in corpus_args):
            raise ValueError(
                "--recipe renders a recipe file: drop --fg-manifest, --bg-dir, "
                "--n, --config, --clip-length, --hop, --avg-interval and --repeat-prob"
            )
        report = _render(args)
    elif args.audio_root is not None:
        raise ValueError("--audio-root goes with --recipe (recipe paths are relative to it)")
    elif args.fg_manifest is None or args.bg_dir is None:
        raise ValueError("give --fg-manifest and --bg-dir (simulate), or --recipe (render)")
    else:
        report = _simulate(args)
    print(f"lighthouse simulate: {report.summary()}")
    return 1 if report.skipped else 0


def _simulate(args: argparse.Namespace) -> RenderReport:
    from dataclasses import replace

    from lighthouse_audio.simulation.sampler import SimulationConfig
    from lighthouse_audio.simulation.simulate import simulate_dataset

    config = SimulationConfig.from_yaml(args.config) if args.config else SimulationConfig()
    if args.clip_length is not None:
        config = replace(config, clip_length=args.clip_length)
    for name in ("hop", "avg_interval", "repeat_prob"):
        if getattr(args, name) is not None:
            config = replace(config, **{name: getattr(args, name)})
    if args.sample_rate is not None:
        config = replace(config, sample_rate=args.sample_rate)
    return simulate_dataset(
        args.fg_manifest,
        args.bg_dir,
        args.out,
        config,
        n=args.n,
        seed=args.seed,
        workers=args.workers,
        progress=not args.no_progress,
    )


def _render(args: argparse.Namespace) -> RenderReport:
    from lighthouse_audio.simulation.recipe import load_recipes
    from lighthouse_audio.simulation.render import render_dataset

    recipes = load_recipes(args.recipe)
    audio_root = args.audio_root if args.audio_root is not None else args.recipe.parent
    if not audio_root.is_dir():
        raise FileNotFoundError(f"{audio_root}: no such audio root folder")
    return render_dataset(
        recipes,
        audio_root,
        args.out,
        sample_rate=args.sample_rate or 32000,
        workers=args.workers,
        progress=not args.no_progress,
    )
