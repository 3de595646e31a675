"""``lighthouse train --domain audio --model qd_detr --dataset clotho-moment --feature clap``."""

from __future__ import annotations

import argparse
from pathlib import Path


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "train",
        help="train a model on Lighthouse-layout features",
        description="Train with Lighthouse's layered configs; key=value arguments override keys.",
    )
    parser.add_argument("--domain", default="audio", help="feature domain (default: audio)")
    parser.add_argument("--model", default="qd_detr")
    parser.add_argument("--dataset", required=True)
    parser.add_argument("--feature", default="clap")
    parser.add_argument(
        "--config-root", type=Path, help="config tree (default: the project's configs/)"
    )
    parser.add_argument(
        "--features-root", help="root of features/<dataset>/<feature> (default: features)"
    )
    parser.add_argument(
        "--device", help="cpu, cuda or cuda:N (default: the config's, CPU if no CUDA)"
    )
    parser.add_argument(
        "--resume", type=Path, help="continue a run from its last.ckpt or best.ckpt"
    )
    parser.add_argument(
        "--init-from", type=Path, help="fine-tune: start from a checkpoint's weights"
    )
    parser.add_argument("--no-progress", action="store_true", help="hide progress bars")
    parser.add_argument("overrides", nargs="*", metavar="key=value", help="config overrides")
    parser.set_defaults(func=run)


def check_domain(domain: str, feature: str) -> None:
    from lighthouse_audio.registry import FEATURES

    feature_domain = FEATURES.get(feature).domain
    if feature_domain != domain:
        raise ValueError(
            f"feature '{feature}' belongs to domain '{feature_domain}', not '{domain}'"
        )


def run(args: argparse.Namespace) -> int:
    from lighthouse_audio.config import load_config
    from lighthouse_audio.devices import resolve_device
    from lighthouse_audio.engine.run_dir import claim_run_dir
    from lighthouse_audio.engine.train import train
    from lighthouse_audio.registry import BASELINES, MODELS, check_pair

    if args.model in BASELINES:  # zero-shot baselines say what to run instead
        raise ValueError(f"{args.model} is not trained; use {BASELINES.get(args.model).tuned_by}")
    MODELS.get(args.model)  # an unknown name: one line listing the known ones
    check_domain(args.domain, args.feature)
    check_pair(args.dataset, args.feature)
    overrides = list(args.overrides)
    if args.features_root:
        overrides.append(f"features_root={args.features_root}")
    if args.device:
        overrides.append(f"device={args.device}")
    opt = load_config(args.model, args.dataset, args.feature, overrides, root=args.config_root)
    if not opt.get("train_path"):
        raise ValueError(f"dataset '{args.dataset}' has no train_path: it is evaluation-only")
    device = resolve_device(str(opt.device))
    run_dir = claim_run_dir(opt, resume_from=args.resume)
    print(f"lighthouse: run folder {run_dir}")
    state = train(
        opt, run_dir, device, resume=args.resume, init_from=args.init_from,
        progress=not args.no_progress,
    )  # fmt: skip
    print(f"lighthouse: best MR-full-mAP {state.best_score:.2f} at epoch {state.best_epoch}")
    print(f"lighthouse: best checkpoint {opt.ckpt_filepath}")
    return 0
