"""``lighthouse train --domain audio --model qd_detr --dataset clotho-moment --feature clap``."""

from __future__ import annotations

import argparse
import os
import shlex
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from lighthouse_audio.engine.sweep import Sweep


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
    parser.add_argument(
        "--fast", action="store_true",
        help="features and batches on the device, matching solved there: "
        f"{' '.join(FAST_PATH)} (same losses; see README)",
    )  # fmt: skip
    parser.add_argument("--no-progress", action="store_true", help="hide progress bars")
    sweep = parser.add_argument_group("seed sweeps (mean ± std over seeds)")
    sweep.add_argument(
        "--seeds",
        metavar="1,2,3",
        help="train one run per seed into <feature>-seeds/seedN/ and summarize mean ± std",
    )
    sweep.add_argument(
        "--concurrent",
        type=int,
        metavar="K",
        help="train K seeds at once as separate processes (default 1: one after another here)",
    )
    sweep.add_argument(
        "--resume-sweep",
        type=Path,
        metavar="SWEEP_DIR",
        help="continue a sweep: keep finished seeds, resume or start the others (key=value may "
        "change only what --resume allows)",
    )
    sweep.add_argument(
        "--sweep-seed",
        type=int,
        metavar="N",
        help="with --resume-sweep: train only seed N, leave the summary (what --concurrent runs)",
    )
    parser.add_argument("overrides", nargs="*", metavar="key=value", help="config overrides")
    parser.set_defaults(func=run)


DEFAULT_MODEL, DEFAULT_FEATURE = "qd_detr", "clap"
FAST_PATH = ("resident_data=true", "assignment=device")  # engine/batches.py, models/assignment.py


def check_domain(domain: str, feature: str) -> None:
    from lighthouse_audio.registry import FEATURES

    feature_domain = FEATURES.get(feature).domain
    if feature_domain != domain:
        raise ValueError(
            f"feature '{feature}' belongs to domain '{feature_domain}', not '{domain}'"
        )


def run(args: argparse.Namespace) -> int:
    from lighthouse_audio.devices import resolve_device
    from lighthouse_audio.engine import distributed
    from lighthouse_audio.engine.run_dir import claim_run_dir, point_config_at
    from lighthouse_audio.engine.train import train
    from lighthouse_audio.engine.training_config import check_training_config

    world = distributed.current()  # torchrun's ranks, or one process
    if args.seeds is not None or args.resume_sweep is not None:
        if world.enabled:
            raise ValueError("a seed sweep runs its own processes: start it without torchrun")
        return run_sweep(args)
    if args.concurrent is not None or args.sweep_seed is not None:
        raise ValueError("--concurrent and --sweep-seed apply to --seeds or --resume-sweep")
    overrides = command_overrides(args)
    opt = resumed_run_config(args, overrides) if args.resume else new_run_config(args, overrides)
    check_training_config(opt)  # before anything is printed or written
    device = world.device(resolve_device(str(opt.device)))
    world.start(device)
    # rank 0 claims the folder (a new run's next free one) and the others follow it
    run_dir = world.share(claim_run_dir(opt, resume_from=args.resume) if world.is_main else None)
    point_config_at(opt, run_dir)
    last = run_dir / "last.ckpt"
    args.resume_hint = lambda: (  # read by cli.main on Ctrl-C
        f"lighthouse train --resume {last}" if last.exists() else None
    )
    state = train(
        opt, run_dir, device, resume=args.resume, init_from=args.init_from,
        progress=not args.no_progress,
        announce=lambda folder: print(f"lighthouse: run folder {folder}"), world=world,
    )  # fmt: skip
    if world.is_main:
        report_run(opt, state, last)
    return 0


def report_run(opt, state, last: Path) -> None:
    """What a finished run left: the best checkpoint (by which metric), the last one."""
    best = Path(opt.ckpt_filepath)
    metric = opt.get("selection_metric") or "MR-full-mAP"
    if best.exists() and state.best_epoch >= 0:
        print(f"lighthouse: best {metric} {state.best_score:.2f} at epoch {state.best_epoch}")
        print(f"lighthouse: best checkpoint {best}")
    else:
        print(f"lighthouse: no epoch scored above {metric} 0, so no {best.name} was written")
    print(f"lighthouse: last checkpoint {last} (resume: lighthouse train --resume {last})")


def command_overrides(args: argparse.Namespace) -> list[str]:
    """The key=value overrides, with what --fast, --features-root and --device stand for
    (explicit key=value come after --fast's, so they win)."""
    overrides = [*(FAST_PATH if getattr(args, "fast", False) else ()), *args.overrides]
    if args.features_root:
        overrides.append(f"features_root={args.features_root}")
    if args.device:
        overrides.append(f"device={args.device}")
    return overrides


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
    # The run folder results_dir/<model>/<dataset>/<feature> is named after --model (the model's
    # config file, e.g. taskweave_mr2hd, whose model_name is taskweave).
    run_folder = Path(str(saved.get("results_dir", ""))).parts[-3:]
    identity = (("model", "model_name"), ("dataset", "dset_name"), ("feature", "a_feat_types"))
    for flag, key in identity:
        given = getattr(args, flag)
        accepted = {saved.get(key)} | ({run_folder[0]} if flag == "model" and run_folder else set())
        if given is not None and given not in accepted:
            raise ValueError(
                f"--resume: --{flag} {given} differs from the run's {saved.get(key)}; "
                "a resumed run keeps its model, dataset and feature"
            )
    requested = apply_overrides(dict(saved), overrides)  # typed like the run's own values
    wanted = {key: requested[key] for key in (parse_override(text)[0] for text in overrides)}
    if "results_dir" in wanted:  # the base of the folder the run lies in: nothing changes
        base = str(wanted["results_dir"])
        derived = os.path.join(base, *run_folder)
        if os.path.abspath(derived) == os.path.abspath(args.resume.parent):
            del wanted["results_dir"]
    return EasyDict(resumed_config(ckpt, wanted))


# The options a sweep records in sweep.json, and a resumed sweep may not change.
SWEEP_ARGUMENTS = (
    "domain", "model", "dataset", "feature", "config_root", "features_root", "device", "init_from",
)  # fmt: skip


def run_sweep(args: argparse.Namespace) -> int:
    """``--seeds`` / ``--resume-sweep``: one run per seed, then mean ± std (engine/sweep.py)."""
    from lighthouse_audio.engine import sweep as sweeps

    concurrent = 1 if args.concurrent is None else args.concurrent
    if concurrent < 1:
        raise ValueError(f"--concurrent {concurrent}: must be 1 or more")
    if args.resume is not None:
        raise ValueError("--resume continues one run; continue a sweep with --resume-sweep")
    if args.resume_sweep is not None:
        sweep, overrides = resumed_sweep(args)
    else:
        sweep, overrides = new_sweep(args), []
    resume = shlex.join(["lighthouse", "train", "--resume-sweep", str(sweep.folder), *overrides])
    args.resume_hint = resume  # read by cli.main on Ctrl-C
    progress = not args.no_progress
    if args.sweep_seed is not None:  # one process of a --concurrent sweep
        sweeps.train_seed(sweep, args.sweep_seed, overrides, progress)
        return 0
    print(f"lighthouse: seed sweep {sweep.folder} (seeds {', '.join(map(str, sweep.seeds))})")
    failed = sweeps.run_seeds(sweep, overrides, concurrent, progress)
    updated_by = sweep_command(args) if args.resume_sweep is not None else ""
    summary = sweeps.write_summary(sweep, updated_by=updated_by)
    print(sweeps.format_table(summary))
    print(f"lighthouse: summary {sweep.folder / sweeps.SUMMARY_MD}")
    if failed:
        seeds = ", ".join(map(str, failed))
        print(f"lighthouse: seed(s) {seeds} failed (see above); once fixed, rerun: {resume}")
    return 1 if failed else 0


def new_sweep(args: argparse.Namespace) -> Sweep:
    """Check everything a run would, then claim the sweep folder and write its sweep.json."""
    from lighthouse_audio.config import parse_override
    from lighthouse_audio.devices import resolve_device
    from lighthouse_audio.engine.sweep import create_sweep, parse_seeds
    from lighthouse_audio.engine.training_config import check_training_config

    seeds = parse_seeds(args.seeds)
    if args.sweep_seed is not None:
        raise ValueError("--sweep-seed trains one seed of an existing sweep: add --resume-sweep")
    if any(parse_override(text)[0] == "seed" for text in args.overrides):
        raise ValueError("--seeds sets each run's seed: drop the seed=... override")
    if args.init_from is not None and not args.init_from.is_file():
        raise FileNotFoundError(f"--init-from {args.init_from}: no such file")
    opt = new_run_config(args, command_overrides(args))
    check_training_config(opt)
    resolve_device(str(opt.device))  # an unknown device name fails before the folder is taken
    arguments = {name: getattr(args, name) for name in SWEEP_ARGUMENTS}
    for name in ("config_root", "features_root", "init_from"):
        if arguments[name] is not None:
            arguments[name] = os.path.abspath(arguments[name])
    return create_sweep(opt, seeds, arguments, args.overrides, sweep_command(args))


def resumed_sweep(args: argparse.Namespace) -> tuple[Sweep, list[str]]:
    """The sweep in ``--resume-sweep`` and the (safe) overrides its seeds continue with."""
    from lighthouse_audio.engine.sweep import check_resume_overrides, load_sweep

    fixed = [name for name in SWEEP_ARGUMENTS if name not in ("domain", "device")]
    given = [f"--{name.replace('_', '-')}" for name in fixed if getattr(args, name) is not None]
    if args.seeds is not None:
        given.insert(0, "--seeds")
    if given:
        raise ValueError(
            f"--resume-sweep keeps the sweep's arguments (its sweep.json): drop {', '.join(given)}"
        )
    overrides = list(args.overrides) + ([f"device={args.device}"] if args.device else [])
    overrides = check_resume_overrides(overrides)
    sweep = load_sweep(args.resume_sweep)
    if args.sweep_seed is not None and args.sweep_seed not in sweep.seeds:
        raise ValueError(
            f"--sweep-seed {args.sweep_seed}: not a seed of {sweep.folder} "
            f"({', '.join(map(str, sweep.seeds))})"
        )
    return sweep, overrides


def sweep_command(args: argparse.Namespace) -> str:
    """The command line, rebuilt from ``args`` (``--no-progress`` aside), for the records."""
    parts = ["lighthouse", "train"]
    if args.resume_sweep is not None:
        parts += ["--resume-sweep", str(args.resume_sweep)]
    else:
        parts += ["--seeds", args.seeds]
    for name in (*SWEEP_ARGUMENTS, "concurrent"):
        value = getattr(args, name)
        if value is not None and not (name == "domain" and value == "audio"):
            parts += [f"--{name.replace('_', '-')}", str(value)]
    return shlex.join([*parts, *args.overrides])
