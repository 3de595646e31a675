"""``lighthouse demo``: real recorded sounds -> simulated dataset -> AM-DETR -> test metrics.

    lighthouse demo                                  # sounds rebuilt from Debian packages
    lighthouse demo --sounds shared/sounds --workdir demo --epochs 30 --seed 1

Offline apart from Debian's package mirrors (``apt-get download``); ~10 minutes on 2 CPU cores.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from lighthouse_audio.cli.arguments import POSITIVE, SEED, count


def _clips(text: str) -> tuple[int, int, int]:
    parts = text.split(",")
    if len(parts) != 3 or not all(p.strip().isdigit() and int(p) > 0 for p in parts):
        raise argparse.ArgumentTypeError(
            f"expected three positive counts TRAIN,VAL,TEST, got {text!r}"
        )
    return tuple(int(p) for p in parts)  # type: ignore[return-value]


def _pair(text: str) -> tuple[int, int]:
    parts = text.split(",")
    if len(parts) != 2 or not all(p.strip().isdigit() and int(p) > 0 for p in parts):
        raise argparse.ArgumentTypeError(f"expected two positive counts VAL,TEST, got {text!r}")
    return int(parts[0]), int(parts[1])


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    from lighthouse_audio.demo.config import DemoConfig  # dataclasses only: cheap

    d = DemoConfig()
    parser = subparsers.add_parser(
        "demo",
        help="end-to-end demo on real recorded sounds (offline, CPU, ~10 min)",
        description="Rebuild a small set of captioned real sounds (from Debian packages, or "
        "--sounds), split it by recording, simulate short training clips and 60 s val/test "
        "recordings, extract aisfx-minilm features, train AM-DETR, then report test R1/mAP on "
        "the whole test recordings against the tuned sliding-window baseline and chance, and "
        "draw one test recording. Data are cached in WORKDIR/data; every run trains into a new "
        "folder under WORKDIR/results.",
    )
    parser.add_argument(
        "--sounds", type=Path, help="folder laid out like shared/sounds (with manifest.jsonl); "
        "default: rebuild the sounds from Debian packages with apt-get",
    )  # fmt: skip
    parser.add_argument(
        "--workdir", type=Path, default=d.workdir,
        help=f"where data, runs and results go (default: ./{d.workdir})",
    )  # fmt: skip
    parser.add_argument("--epochs", type=count(), default=d.epochs, help=f"default {d.epochs}")
    parser.add_argument("--seed", type=SEED, default=d.seed, help="split, simulation, training")
    parser.add_argument(
        "--clips", type=_clips, default=d.clips, metavar="TRAIN,VAL,TEST",
        help="training clips to simulate per split, at most; VAL only counts with "
        "--no-pick-on-recordings, TEST only with --test-length 0 "
        f"(default {','.join(map(str, d.clips))})",
    )  # fmt: skip
    parser.add_argument(
        "--clip-length", type=POSITIVE, default=d.clip_length,
        help=f"training clips, s (default {d.clip_length:g})",
    )  # fmt: skip
    parser.add_argument(
        "--avg-interval", type=POSITIVE, default=d.avg_interval,
        help=f"mean gap before each sound in training clips, s (default {d.avg_interval:g})",
    )  # fmt: skip
    parser.add_argument(
        "--test-length", type=count(0), default=d.test_length,
        help="val and test recordings, s: several events each, predicted whole (in chunks); "
        f"0: clips like the training ones (default {d.test_length:g})",
    )  # fmt: skip
    parser.add_argument(
        "--test-recordings", type=_pair, default=d.test_clips[1:], metavar="VAL,TEST",
        help="val and test recordings to simulate, at most "
        f"(default {','.join(map(str, d.test_clips[1:]))})",
    )  # fmt: skip
    parser.add_argument(
        "--packages", help="comma-separated Debian packages to take sounds from "
        "(default: the small ones; see lighthouse_audio/demo/debian_packages.json)",
    )  # fmt: skip
    parser.add_argument(
        "--cache-dir", type=Path, help="downloaded packages and rebuilt sounds "
        "(default: $LIGHTHOUSE_AUDIO_CACHE or ~/.cache/lighthouse-audio)",
    )  # fmt: skip
    parser.add_argument(
        "--joint-prior", action=argparse.BooleanOptionalAction, default=d.joint_prior,
        help="align a joint space on the train split and give AM-DETR its frame-query "
        f"similarity (joint_prior; docs/RESULTS.md; default: {'on' if d.joint_prior else 'off'})",
    )  # fmt: skip
    parser.add_argument(
        "--pick-on-recordings", action=argparse.BooleanOptionalAction,
        default=d.pick_on_recordings,
        help="pick the epoch on the val recordings, predicted whole in chunks as the test ones "
        "(eval_whole_recordings), instead of on short val clips like the training ones "
        f"(default: {'on' if d.pick_on_recordings else 'off'})",
    )  # fmt: skip
    parser.add_argument(
        "--prior-folds", type=count(0), default=d.prior_folds,
        help="train AM-DETR with its prior cross-fitted over this many folds of the train "
        f"sounds (joint_prior_folds; 0: the full space throughout; default {d.prior_folds})",
    )  # fmt: skip
    parser.add_argument("--device", default=d.device, help="cpu, cuda, cuda:N or auto")
    parser.add_argument("--threads", type=count(), help="torch CPU threads (default: torch's)")
    parser.add_argument("--no-progress", action="store_true", help="hide progress bars")
    parser.add_argument("overrides", nargs="*", metavar="key=value",
                        help="extra training config overrides (e.g. lr=0.0002)")  # fmt: skip
    parser.set_defaults(
        func=run, resume_hint="the same command (its data are cached in WORKDIR/data)"
    )


def run(args: argparse.Namespace) -> int:
    from lighthouse_audio.cli.errors import UserError
    from lighthouse_audio.demo.config import DemoConfig
    from lighthouse_audio.demo.debian import DebianError
    from lighthouse_audio.demo.run import run_demo

    if args.epochs < 1:
        raise ValueError(f"--epochs must be >= 1, got {args.epochs}")
    if args.clip_length < 2:
        raise ValueError(f"--clip-length must be >= 2 s, got {args.clip_length}")
    if args.prior_folds == 1:
        raise ValueError("--prior-folds must be 0 (no cross-fitting) or at least 2, got 1")
    if args.sounds is not None and args.packages:
        raise ValueError("--packages picks Debian packages to rebuild from: drop it with --sounds")
    if args.threads is not None:
        import torch

        torch.set_num_threads(args.threads)
    if args.test_length and args.test_length < args.clip_length:
        raise ValueError(
            f"--test-length {args.test_length} is shorter than the training clips "
            f"(--clip-length {args.clip_length:g})"
        )
    defaults = DemoConfig()
    packages = None
    if args.packages:
        packages = tuple(p.strip() for p in args.packages.split(",") if p.strip())
    cfg = DemoConfig(
        workdir=args.workdir,
        sounds=args.sounds,
        packages=packages,
        cache_dir=args.cache_dir,
        seed=args.seed,
        epochs=args.epochs,
        clip_length=args.clip_length,
        avg_interval=args.avg_interval,
        clips=args.clips,
        test_length=float(args.test_length) or None,
        test_clips=(defaults.test_clips[0], *args.test_recordings),
        device=args.device,
        train_overrides=tuple(args.overrides),
        joint_prior=args.joint_prior,
        prior_folds=args.prior_folds,
        pick_on_recordings=args.pick_on_recordings,
        progress=not args.no_progress,
    )
    try:
        run_demo(cfg)
    except DebianError as exc:
        raise UserError(str(exc)) from None
    return 0
