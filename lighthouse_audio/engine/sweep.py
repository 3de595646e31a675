"""Seed sweeps: one run per seed in one folder, and the mean ± sample std of their metrics.

A sweep claims ``<results_dir>/<model>/<dataset>/<feature>-seeds`` (``-seeds-2``, ... when that
holds results; never overwritten, like run folders) and lays out::

    sweep.json              written once: seeds, arguments, overrides, command, resolved config
    seed1/, seed2/, ...     one normal run folder per seed (resumable with --resume)
    seedN/stdout.log        the output of seed N's process (--concurrent only)
    summary.json, .md       per-seed best metrics, then mean ± std; rewritten after every sweep

Every seed starts from the config resolved once at creation (``sweep.json``), so seeds started
later (a resumed sweep) train with exactly the settings of the first ones even if the YAML tree
changed in between. Resuming classifies each seed from its ``last.ckpt``: finished (the last
epoch ran, or early stopping fired) is kept, unfinished resumes through the ``--resume`` path, and
a seed without one starts in its folder (log lines of a first epoch that was interrupted before
its ``last.ckpt`` are dropped, as a resume drops those of an unfinished epoch).

The mean and the sample standard deviation (``n - 1``) are taken over the finished seeds that
wrote ``best_val_metrics.json``. One seed has no sample std: it is reported as ``None``
(``n/a`` in the table) rather than a misleading 0.
"""

from __future__ import annotations

import json
import os
import signal
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from lighthouse_audio.file_io import write_json, write_text

__all__ = [
    "SWEEP_FILE",
    "Job",
    "SeedPlan",
    "SeedResult",
    "Sweep",
    "aggregate",
    "check_resume_overrides",
    "claim_sweep_dir",
    "collect_results",
    "create_sweep",
    "format_table",
    "is_finished",
    "load_sweep",
    "parse_seeds",
    "plan_seed",
    "run_processes",
    "run_seeds",
    "summarize",
    "train_seed",
    "write_summary",
]

SWEEP_FILE, SUMMARY_JSON, SUMMARY_MD, STDOUT_LOG = (
    "sweep.json",
    "summary.json",
    "summary.md",
    "stdout.log",
)
START, RESUME, DONE = "start", "resume", "done"
# Set per seed (claim_run_dir points them into seedN/), so not in the config the seeds share.
RUN_FOLDER_KEYS = ("results_dir", "ckpt_filepath", "train_log_filepath", "eval_log_filepath")
STOP_GRACE_SECONDS = 30.0  # how long an interrupted child may take to exit before it is killed


def parse_seeds(text: str) -> list[int]:
    """``"1,2,3"`` -> ``[1, 2, 3]``; a non-integer, negative or repeated seed is a one-line
    ``ValueError``.

    >>> parse_seeds("3, 1,2")
    [3, 1, 2]
    """
    seeds: list[int] = []
    for item in text.split(","):
        item = item.strip()
        try:
            seed = int(item)
        except ValueError:
            raise ValueError(f"--seeds {text}: {item!r} is not a whole number") from None
        if seed < 0:
            raise ValueError(f"--seeds {text}: {seed} is negative (seeds are whole numbers >= 0)")
        if seed in seeds:
            raise ValueError(f"--seeds {text}: seed {seed} is given twice")
        seeds.append(seed)
    return seeds


@dataclass
class Sweep:
    """What ``sweep.json`` holds, and the folder it lies in."""

    folder: Path
    seeds: list[int]
    config: dict[str, Any]  # the resolved run config every seed starts from (absolute paths)
    arguments: dict[str, Any]  # the command's options (absolute paths), for the record
    overrides: list[str]  # key=value as given
    command: str  # the command line that made the sweep
    created: str = ""

    def seed_dir(self, seed: int) -> Path:
        return self.folder / f"seed{seed}"

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        del data["folder"]  # the folder is where the file lies; a moved sweep stays valid
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], folder: Path) -> Sweep:
        return cls(folder=Path(folder), **data)


def claim_sweep_dir(run_results_dir: str | Path) -> Path:
    """``<run folder>-seeds``, or the first free ``-seeds-N`` (the rule of run folders)."""
    from lighthouse_audio.engine.run_dir import next_free_dir

    return next_free_dir(Path(f"{run_results_dir}-seeds"))


def create_sweep(
    opt: Mapping[str, Any],
    seeds: Sequence[int],
    arguments: Mapping[str, Any],
    overrides: Sequence[str],
    command: str,
) -> Sweep:
    """Claim the sweep folder for ``opt`` (a resolved, checked run config) and write
    ``sweep.json`` into it, which marks the folder as taken."""
    from lighthouse_audio.config import to_plain
    from lighthouse_audio.engine.training_config import absolute_paths

    config = to_plain(opt)
    absolute_paths(config)  # a sweep resumed from another folder finds the same files
    folder = claim_sweep_dir(config["results_dir"])
    for key in (*RUN_FOLDER_KEYS, "seed"):  # set per seed
        config.pop(key, None)
    sweep = Sweep(
        folder=folder.absolute(),
        seeds=list(seeds),
        config=config,
        arguments=dict(arguments),
        overrides=list(overrides),
        command=command,
        created=time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    )
    folder.mkdir(parents=True, exist_ok=True)
    if (folder / SWEEP_FILE).exists():  # another sweep claimed it a moment ago
        raise FileExistsError(f"{folder / SWEEP_FILE}: already exists; start the sweep again")
    write_json(sweep.to_dict(), folder / SWEEP_FILE)
    return sweep


def load_sweep(folder: str | Path) -> Sweep:
    folder = Path(folder)
    path = folder / SWEEP_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{folder}: not a seed sweep folder (no {SWEEP_FILE})")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return Sweep.from_dict(data, folder.absolute())
    except (json.JSONDecodeError, TypeError) as exc:
        raise ValueError(f"{path}: not a sweep file ({exc})") from None


def check_resume_overrides(overrides: Iterable[str]) -> list[str]:
    """A resumed sweep may change only what a resumed run may (``resume.SAFE_TO_CHANGE``):
    every seed, resumed or started, then trains with the same settings."""
    from lighthouse_audio.config import parse_override
    from lighthouse_audio.engine.resume import SAFE_TO_CHANGE

    overrides = list(overrides)
    for text in overrides:
        key = parse_override(text)[0]
        if key not in SAFE_TO_CHANGE:
            raise ValueError(
                f"--resume-sweep: {key} cannot change (a resumed sweep may change only "
                f"{', '.join(SAFE_TO_CHANGE)}); start a new sweep with --seeds instead"
            )
    return overrides


def is_finished(train_state: Mapping[str, Any], n_epoch: int, max_es_cnt: int) -> bool:
    """True when the run recorded in ``train_state`` (``last.ckpt``) has nothing left to do:
    its last epoch ran, or it stopped early (the trainer's rule)."""
    if int(train_state["epoch"]) >= n_epoch - 1:
        return True
    return max_es_cnt != -1 and int(train_state["es_count"]) > max_es_cnt


@dataclass
class SeedPlan:
    """What one seed of a sweep needs: start, resume (from ``last``), or nothing (done)."""

    seed: int
    action: str  # START, RESUME or DONE
    run_dir: Path
    opt: dict[str, Any] = field(default_factory=dict)  # the run's config (empty when DONE)
    last: Path | None = None


def plan_seed(sweep: Sweep, seed: int, overrides: Sequence[str] = ()) -> SeedPlan:
    """Decide what seed ``seed`` needs and the config to run it with; ``overrides`` are the
    resume's (checked by :func:`check_resume_overrides`)."""
    from lighthouse_audio.config import apply_overrides, parse_override
    from lighthouse_audio.engine.checkpoint import load_checkpoint
    from lighthouse_audio.engine.resume import check_resumable, resumed_config
    from lighthouse_audio.engine.run_dir import claim_run_dir
    from lighthouse_audio.engine.training_config import check_training_config

    run_dir = sweep.seed_dir(seed)
    last = run_dir / "last.ckpt"
    if last.is_file():
        ckpt = load_checkpoint(last)
        check_resumable(ckpt, last)
        saved = dict(ckpt["opt"])
        typed = apply_overrides(dict(saved), overrides)  # typed like the run's own values
        wanted = {key: typed[key] for key in (parse_override(text)[0] for text in overrides)}
        opt = resumed_config(ckpt, wanted)
        if is_finished(ckpt["train_state"], int(opt["n_epoch"]), int(opt["max_es_cnt"])):
            return SeedPlan(seed, DONE, run_dir)
        action = RESUME
    else:  # never finished an epoch (or never began): start from the sweep's config
        opt = apply_overrides({**sweep.config, "seed": seed}, overrides)
        check_training_config(opt)
        action = START
    # The run lives in seedN/ in both cases, as a resumed run lives where its last.ckpt lies.
    claim_run_dir(opt, resume_from=last)
    return SeedPlan(seed, action, run_dir, opt, last if action == RESUME else None)


def train_seed(
    sweep: Sweep, seed: int, overrides: Sequence[str] = (), progress: bool = True
) -> SeedPlan:
    """Train (start or resume) seed ``seed`` in this process; a finished seed is left alone."""
    from easydict import EasyDict

    from lighthouse_audio.devices import resolve_device
    from lighthouse_audio.engine.resume import tidy_run_folder
    from lighthouse_audio.engine.train import train

    plan = plan_seed(sweep, seed, overrides)
    if plan.action == DONE:
        print(f"lighthouse: seed {seed} finished already ({plan.run_dir})")
        return plan
    opt = EasyDict(plan.opt)
    if plan.action == START:  # log lines of a first epoch killed before its last.ckpt
        tidy_run_folder(plan.run_dir, -1, [opt.train_log_filepath, opt.eval_log_filepath])
    init_from = sweep.arguments.get("init_from") if plan.action == START else None
    train(
        opt, plan.run_dir, resolve_device(str(opt.device)), resume=plan.last,
        init_from=Path(init_from) if init_from else None, progress=progress,
        announce=lambda folder: print(f"lighthouse: seed {seed} run folder {folder}"),
    )  # fmt: skip
    return plan


def run_seeds(
    sweep: Sweep,
    overrides: Sequence[str] = (),
    concurrent: int = 1,
    progress: bool = True,
    report: Callable[[str], None] = print,
) -> list[int]:
    """Train every seed of ``sweep`` that is not finished; returns the seeds that failed.

    One at a time (``concurrent`` 1) they train in this process: the output stays on the
    console and nothing is paid for starting Python and torch again; each run reseeds from
    (seed, epoch), so the results equal separate ``lighthouse train`` runs. With more, each
    seed is a child process (:func:`run_processes`) writing to its ``seedN/stdout.log``."""
    if concurrent > 1:
        todo = _seeds_to_run(sweep, overrides, report)
        return run_processes([seed_job(sweep, s, overrides) for s in todo], concurrent, report)
    failed = []
    for seed in sweep.seeds:
        try:
            train_seed(sweep, seed, overrides, progress)
        except Exception as exc:  # one seed's failure (data, memory, a bug) spares the others
            failed.append(seed)
            report(f"lighthouse: seed {seed} failed: {_one_line(exc)}")
    return failed


def _seeds_to_run(
    sweep: Sweep, overrides: Sequence[str], report: Callable[[str], None]
) -> list[int]:
    todo = []
    for seed in sweep.seeds:
        try:
            done = plan_seed(sweep, seed, overrides).action == DONE
        except Exception:  # e.g. an unreadable last.ckpt: the child reports it, in its log
            done = False
        if done:
            report(f"lighthouse: seed {seed} finished already ({sweep.seed_dir(seed)})")
        else:
            todo.append(seed)
    return todo


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


# --- running seeds as processes (--concurrent) ---------------------------------------------


@dataclass
class Job:
    """One child process: ``argv`` trains ``seed``, its output appended to ``log``."""

    seed: int
    argv: list[str]
    log: Path


def seed_job(sweep: Sweep, seed: int, overrides: Sequence[str]) -> Job:
    """``python -m lighthouse_audio train --resume-sweep SWEEP --sweep-seed N``: the child
    reads everything else from ``sweep.json`` and the seed's ``last.ckpt``."""
    argv = [
        sys.executable, "-m", "lighthouse_audio", "train", "--resume-sweep", str(sweep.folder),
        "--sweep-seed", str(seed), "--no-progress", *overrides,
    ]  # fmt: skip
    return Job(seed, argv, sweep.seed_dir(seed) / STDOUT_LOG)


def child_environment(concurrent: int) -> dict[str, str]:
    """Unbuffered output (the log follows the run), and CPU threads shared out: K processes
    that each take every core run slower together than one after another."""
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    env.setdefault("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // concurrent)))
    return env


def run_processes(
    jobs: Sequence[Job],
    concurrent: int,
    report: Callable[[str], None] = print,
    poll_seconds: float = 0.2,
) -> list[int]:
    """Run ``jobs`` with at most ``concurrent`` at once; returns the seeds whose process
    failed (each reported in one line with its log). On Ctrl-C every running child is sent
    SIGINT (it saves nothing half-written and exits), killed if it has not exited within
    :data:`STOP_GRACE_SECONDS`, and ``KeyboardInterrupt`` is raised again."""
    pending = list(jobs)
    running: list[tuple[Job, subprocess.Popen, Any]] = []
    failed: list[int] = []
    env = child_environment(concurrent)
    try:
        while pending or running:
            while pending and len(running) < concurrent:
                job = pending.pop(0)
                job.log.parent.mkdir(parents=True, exist_ok=True)
                log = open(job.log, "a", encoding="utf-8")  # noqa: SIM115 - closed on exit
                # Own session: a terminal's Ctrl-C reaches only us, and we stop each child once.
                process = subprocess.Popen(
                    job.argv, stdout=log, stderr=subprocess.STDOUT, env=env,
                    start_new_session=True,
                )  # fmt: skip
                running.append((job, process, log))
                report(f"lighthouse: seed {job.seed} started, log {job.log}")
            time.sleep(poll_seconds)
            for item in list(running):
                job, process, log = item
                if process.poll() is None:
                    continue
                running.remove(item)
                log.close()
                if process.returncode == 0:
                    report(f"lighthouse: seed {job.seed} done")
                else:
                    failed.append(job.seed)
                    report(
                        f"lighthouse: seed {job.seed} failed (exit status {process.returncode}), "
                        f"see {job.log}"
                    )
    except KeyboardInterrupt:
        _stop(running)
        raise
    return failed


def _stop(running: Sequence[tuple[Job, subprocess.Popen, Any]]) -> None:
    for _, process, _ in running:
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
    deadline = time.monotonic() + STOP_GRACE_SECONDS
    for _, process, log in running:
        try:
            process.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


# --- summary -------------------------------------------------------------------------------


@dataclass
class SeedResult:
    """One seed's outcome: its status and, once it validated, its best epoch and metrics."""

    seed: int
    status: str  # "finished", "unfinished" (epochs left, or failed) or "not started"
    epochs: int = 0  # epochs run
    best_epoch: int | None = None
    best_score: float | None = None  # of the selection metric, as the trainer recorded it
    metrics: dict[str, float] | None = None  # best_val_metrics.json's "brief"


def collect_results(sweep: Sweep) -> list[SeedResult]:
    """Read each seed's ``last.ckpt`` training state and ``best_val_metrics.json``."""
    from lighthouse_audio.engine.checkpoint import load_checkpoint

    results = []
    for seed in sweep.seeds:
        run_dir = sweep.seed_dir(seed)
        if not (run_dir / "last.ckpt").is_file():
            results.append(SeedResult(seed, "not started"))
            continue
        ckpt = load_checkpoint(run_dir / "last.ckpt")
        state, opt = ckpt["train_state"], ckpt["opt"]
        done = is_finished(state, int(opt["n_epoch"]), int(opt["max_es_cnt"]))
        metrics_file = run_dir / "best_val_metrics.json"
        brief = None
        if metrics_file.is_file():
            brief = json.loads(metrics_file.read_text(encoding="utf-8"))["brief"]
        validated = state["best_epoch"] >= 0
        results.append(
            SeedResult(
                seed,
                "finished" if done else "unfinished",
                epochs=int(state["epoch"]) + 1,
                best_epoch=int(state["best_epoch"]) if validated else None,
                best_score=float(state["best_score"]) if validated else None,
                metrics=brief,
            )
        )
    return results


def aggregate(values: Sequence[float]) -> tuple[float, float | None]:
    """Mean and sample standard deviation (``n - 1``); the std of one value is ``None``.

    >>> aggregate([1.0, 3.0])
    (2.0, 1.4142135623730951)
    """
    if not values:
        raise ValueError("no values to aggregate")
    std = statistics.stdev(values) if len(values) > 1 else None
    return statistics.fmean(values), std


def summarize(
    results: Sequence[SeedResult], selection_metric: str, command: str, updated_by: str = ""
) -> dict[str, Any]:
    """Per-seed results, and mean/std of every metric over the finished seeds with metrics."""
    counted = [r for r in results if r.status == "finished" and r.metrics is not None]
    names: list[str] = []
    for result in counted:  # every metric any seed reports, in the order they report them
        names += [name for name in result.metrics if name not in names]
    mean: dict[str, float] = {}
    std: dict[str, float | None] = {}
    num: dict[str, int] = {}
    for name in names:
        values = [float(r.metrics[name]) for r in counted if name in r.metrics]
        mean[name], std[name] = aggregate(values)
        num[name] = len(values)
    return {
        "command": command,
        "updated_by": updated_by,
        "selection_metric": selection_metric,
        "num_seeds": len(counted),
        "seeds": [asdict(r) for r in results],
        "mean": mean,
        "std": std,  # sample std (n - 1); None for a metric only one seed reports
        "num_values": num,
    }


def _number(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f}"


def format_table(summary: Mapping[str, Any]) -> str:
    """A Markdown table: one row per seed, then mean ± sample std."""
    names = list(summary["mean"])
    header = ["seed", "status", "epochs", "best epoch", *names]
    rows = [header, ["---:", ":---", "---:", "---:", *["---:"] * len(names)]]
    for seed in summary["seeds"]:
        metrics = seed["metrics"] or {}
        best = "" if seed["best_epoch"] is None else str(seed["best_epoch"])
        row = [str(seed["seed"]), seed["status"], str(seed["epochs"]), best]
        rows.append(row + [_number(metrics.get(name)) for name in names])
    label = f"mean ± std ({summary['num_seeds']} seeds)"
    stats = [f"{_number(summary['mean'][n])} ± {_number(summary['std'][n])}" for n in names]
    rows.append([label, "", "", "", *stats])
    return "\n".join("| " + " | ".join(row) + " |" for row in rows)


def write_summary(sweep: Sweep, updated_by: str = "") -> dict[str, Any]:
    """Collect the seeds' results and (re)write ``summary.json`` and ``summary.md``."""
    metric = sweep.config.get("selection_metric") or "MR-full-mAP"
    summary = summarize(collect_results(sweep), metric, sweep.command, updated_by)
    write_json(summary, sweep.folder / SUMMARY_JSON)
    config = sweep.config
    lines = [
        f"# Seed sweep: {config['model_name']} / {config['dset_name']} / {config['a_feat_types']}",
        "",
        f"- made by: `{sweep.command}`",
        *([f"- updated by: `{updated_by}`"] if updated_by else []),
        f"- each seed's best epoch is picked by {metric}; mean ± sample standard deviation "
        f"(n - 1) over the {summary['num_seeds']} finished seeds (one seed: std n/a)",
        "",
        format_table(summary),
        "",
    ]
    write_text(sweep.folder / SUMMARY_MD, "\n".join(lines))
    return summary
