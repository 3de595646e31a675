"""``lighthouse train --domain audio --model qd_detr --dataset clotho-moment --feature clap``."""

from __future__ import annotations

import argparse
import os
from pathlib import Path


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "train",
        help="train a model on Lighthouse-layout features",
        description="Train with Lighthouse's layered configs; key=value arguments override keys.",
    )
    parser.add_argument("--domain", default="audio", help="feature domain (default: audio)")
    parser.add_argument("--model", help=f"default {DEFAULT_MODEL}")
    parser.add_argument("--dataset", help="required unless --resume")
    parser.add_argument("--feature", help=f"default {DEFAULT_FEATURE}")
    parser.add_argument(
        "--config-root", type=Path, help="config tree (default: the one shipped with the package)"
    )
    parser.add_argument(
        "--features-root", help="root of features/<dataset>/<feature> (default: features)"
    )
    parser.add_argument(
        "--device", help="cpu, cuda, cuda:N or auto (default: the config's, CPU if no CUDA)"
    )
    parser.add_argument(
        "--resume",
        type=Path,
        help="continue a run from its last.ckpt, with the run's config (key=value may change "
        "only n_epoch, max_es_cnt, device, num_workers, eval_bsz)",
    )
    parser.add_argument(
        "--init-from", type=Path, help="fine-tune: start from a checkpoint's weights"
    )
    parser.add_argument("--no-progress", action="store_true", help="hide progress bars")
    parser.add_argument("overrides", nargs="*", metavar="key=value", help="config overrides")
    parser.set_defaults(func=run)


DEFAULT_MODEL, DEFAULT_FEATURE = "qd_detr", "clap"


def check_domain(domain: str, feature: str) -> None:
    from lighthouse_audio.registry import FEATURES

    feature_domain = FEATURES.get(feature).domain
    if feature_domain != domain:
        raise ValueError(
            f"feature '{feature}' belongs to domain '{feature_domain}', not '{domain}'"
        )


def run(args: argparse.Namespace) -> int:
    from lighthouse_audio.devices import resolve_device
    from lighthouse_audio.engine.run_dir import claim_run_dir
    from lighthouse_audio.engine.train import train
    from lighthouse_audio.engine.training_config import check_training_config

    overrides = list(args.overrides)
    if args.features_root:
        overrides.append(f"features_root={args.features_root}")
    if args.device:
        overrides.append(f"device={args.device}")
    opt = resumed_run_config(args, overrides) if args.resume else new_run_config(args, overrides)
    check_training_config(opt)  # before anything is printed or written
    device = resolve_device(str(opt.device))
    run_dir = claim_run_dir(opt, resume_from=args.resume)
    last = run_dir / "last.ckpt"
    args.resume_hint = lambda: (  # read by cli.main on Ctrl-C
        f"lighthouse train --resume {last}" if last.exists() else None
    )
    state = train(
        opt, run_dir, device, resume=args.resume, init_from=args.init_from,
        progress=not args.no_progress,
        announce=lambda folder: print(f"lighthouse: run folder {folder}"),
    )  # fmt: skip
    best = Path(opt.ckpt_filepath)
    if best.exists() and state.best_epoch >= 0:
        print(f"lighthouse: best MR-full-mAP {state.best_score:.2f} at epoch {state.best_epoch}")
        print(f"lighthouse: best checkpoint {best}")
    else:
        print(f"lighthouse: no epoch scored above MR-full-mAP 0, so no {best.name} was written")
    print(f"lighthouse: last checkpoint {last} (resume: lighthouse train --resume {last})")
    return 0


def new_run_config(args: argparse.Namespace, overrides: list[str]):
    from lighthouse_audio.config import load_config
    from lighthouse_audio.registry import BASELINES, MODELS, check_pair

    if not args.dataset:
        raise ValueError("--dataset is required (or --resume a run's last.ckpt)")
    model, feature = args.model or DEFAULT_MODEL, args.feature or DEFAULT_FEATURE
    if model in BASELINES:  # zero-shot baselines say what to run instead
        raise ValueError(f"{model} is not trained; use {BASELINES.get(model).tuned_by}")
    MODELS.get(model)  # an unknown name: one line listing the known ones
    check_domain(args.domain, feature)
    check_pair(args.dataset, feature)
    opt = load_config(model, args.dataset, feature, overrides, root=args.config_root)
    if not opt.get("train_path"):
        raise ValueError(f"dataset '{args.dataset}' has no train_path: it is evaluation-only")
    return opt


def resumed_run_config(args: argparse.Namespace, overrides: list[str]):
    """The run's own config from its last.ckpt, with the (safe) overrides applied."""
    from easydict import EasyDict

    from lighthouse_audio.config import apply_overrides, parse_override
    from lighthouse_audio.engine.checkpoint import load_checkpoint
    from lighthouse_audio.engine.resume import check_resumable, resumed_config

    ckpt = load_checkpoint(args.resume)
    check_resumable(ckpt, args.resume)
    saved = dict(ckpt["opt"])
    identity = (("model", "model_name"), ("dataset", "dset_name"), ("feature", "a_feat_types"))
    for flag, key in identity:
        given = getattr(args, flag)
        if given is not None and given != saved.get(key):
            raise ValueError(
                f"--resume: --{flag} {given} differs from the run's {saved.get(key)}; "
                "a resumed run keeps its model, dataset and feature"
            )
    requested = apply_overrides(dict(saved), overrides)  # typed like the run's own values
    wanted = {key: requested[key] for key in (parse_override(text)[0] for text in overrides)}
    if "results_dir" in wanted:  # the base of the folder the run lies in: nothing changes
        base = str(wanted["results_dir"])
        derived = os.path.join(base, saved["model_name"], saved["dset_name"], saved["a_feat_types"])
        if os.path.abspath(derived) == os.path.abspath(args.resume.parent):
            del wanted["results_dir"]
    return EasyDict(resumed_config(ckpt, wanted))
