"""Seed sweeps (``lighthouse train --seeds``): planning, mean ± sample std, summary files, folder
claiming, a real 2-seed sweep in-process and as concurrent processes, resuming, bad arguments.

The real sweeps use a smaller toy set and model than tests/toy_model.py's (32 training queries,
one encoder and decoder layer): they check the sweep's bookkeeping, not learning.
"""

from __future__ import annotations

import json
import shutil
import statistics
import sys
from pathlib import Path

import pytest
import yaml

from lighthouse_audio.cli.main import main
from lighthouse_audio.config import load_config
from lighthouse_audio.engine import sweep as sweeps
from lighthouse_audio.engine.sweep import SeedResult
from lighthouse_audio.testing.synthetic import SyntheticSpec, write_split
from tests.toy_model import SPEC, train_args

SMALL_MODEL = ("dim_feedforward=64", "enc_layers=1", "dec_layers=1")


@pytest.fixture(scope="module")
def small_toy(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("small_toy")
    feats = root / "features" / "custom"
    write_split(feats, "train", SyntheticSpec(32, **SPEC), seed=1)
    write_split(feats, "val", SyntheticSpec(16, **SPEC), seed=2, qid_offset=10_000)
    return root


def sweep_args(toy: Path, results: Path, *extra: str) -> list[str]:
    return train_args(toy, results, *SMALL_MODEL, *extra)


def sweep_dir(results: Path, suffix: str = "") -> Path:
    return results / "qd_detr" / "custom" / f"clap-seeds{suffix}"


def log_without_times(path: Path) -> list[str]:
    return [line.split(" ", 1)[1] for line in path.read_text().splitlines()]


def brief(folder: Path) -> dict[str, float]:
    return json.loads((folder / "best_val_metrics.json").read_text())["brief"]


@pytest.fixture(scope="module")
def two_seeds(small_toy, tmp_path_factory) -> Path:
    """A finished in-process sweep of seeds 1 and 2, 2 epochs; tests copy it to change it."""
    results = tmp_path_factory.mktemp("sweep")
    assert main(sweep_args(small_toy, results, "n_epoch=2", "--seeds", "1,2")) == 0
    return sweep_dir(results)


# --- pure parts ----------------------------------------------------------------------------


def test_parse_seeds_keeps_order():
    assert sweeps.parse_seeds("3, 1,2") == [3, 1, 2]
    assert sweeps.parse_seeds("0") == [0]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("1,1", "--seeds 1,1: seed 1 is given twice"),
        ("1,a", "--seeds 1,a: 'a' is not a whole number"),
        ("1,2.5", "--seeds 1,2.5: '2.5' is not a whole number"),
        ("1,,2", "--seeds 1,,2: '' is not a whole number"),
        ("1,-2", "--seeds 1,-2: -2 is negative (seeds are whole numbers >= 0)"),
    ],
)
def test_parse_seeds_refuses(text, message):
    with pytest.raises(ValueError) as info:
        sweeps.parse_seeds(text)
    assert str(info.value) == message


def test_aggregate_is_mean_and_sample_std():
    mean, std = sweeps.aggregate([10.0, 12.0, 17.0])
    assert mean == pytest.approx(13.0)
    # n - 1 in the denominator: ((9 + 1 + 16) / 2) ** 0.5, not the population std (26 / 3)
    assert std == pytest.approx(13**0.5)
    assert sweeps.aggregate([4.0, 4.0]) == (4.0, 0.0)


def test_one_seed_has_no_std():
    assert sweeps.aggregate([42.5]) == (42.5, None)
    with pytest.raises(ValueError):
        sweeps.aggregate([])


def test_is_finished_follows_the_trainer():
    state = {"epoch": 1, "es_count": 0}
    assert sweeps.is_finished(state, n_epoch=2, max_es_cnt=200)
    assert not sweeps.is_finished(state, n_epoch=3, max_es_cnt=200)
    stopped = {"epoch": 4, "es_count": 3}  # the trainer stops once es_count > max_es_cnt
    assert sweeps.is_finished(stopped, n_epoch=10, max_es_cnt=2)
    assert not sweeps.is_finished(stopped, n_epoch=10, max_es_cnt=3)
    assert not sweeps.is_finished(stopped, n_epoch=10, max_es_cnt=-1)  # -1: never stops early


def results_of(*values: tuple[int, str, dict | None]) -> list[SeedResult]:
    return [
        SeedResult(seed, status, epochs=3, best_epoch=2 if metrics else None, metrics=metrics)
        for seed, status, metrics in values
    ]


def test_summary_counts_only_finished_seeds_with_metrics():
    results = results_of(
        (1, "finished", {"MR-full-mAP": 10.0, "MR-full-R1@0.5": 20.0}),
        (2, "finished", {"MR-full-mAP": 14.0, "MR-full-R1@0.5": 30.0}),
        (3, "unfinished", {"MR-full-mAP": 99.0, "MR-full-R1@0.5": 99.0}),  # failed half-way
        (4, "finished", None),  # no epoch scored above 0
        (5, "not started", None),
    )
    summary = sweeps.summarize(results, "MR-full-mAP", "lighthouse train --seeds 1,2,3,4,5")
    assert summary["num_seeds"] == 2
    assert summary["mean"] == {"MR-full-mAP": 12.0, "MR-full-R1@0.5": 25.0}
    assert summary["std"]["MR-full-mAP"] == pytest.approx(statistics.stdev([10.0, 14.0]))
    assert [s["status"] for s in summary["seeds"]] == [r.status for r in results]


def test_table_has_a_row_per_seed_then_mean_and_std():
    results = results_of(
        (7, "finished", {"MR-full-mAP": 10.0}), (8, "finished", {"MR-full-mAP": 13.0})
    )
    table = sweeps.format_table(sweeps.summarize(results, "MR-full-mAP", "cmd")).splitlines()
    assert table[0] == "| seed | status | epochs | best epoch | MR-full-mAP |"
    assert table[2] == "| 7 | finished | 3 | 2 | 10.00 |"
    assert table[3] == "| 8 | finished | 3 | 2 | 13.00 |"
    assert table[4] == "| mean ± std (2 seeds) |  |  |  | 11.50 ± 2.12 |"
    single = sweeps.summarize(results[:1], "MR-full-mAP", "cmd")
    assert single["std"] == {"MR-full-mAP": None}
    assert sweeps.format_table(single).splitlines()[-1].endswith("| 10.00 ± n/a |")


def new_sweep(results: Path, seeds=(1, 2)) -> sweeps.Sweep:
    opt = load_config("qd_detr", "custom", "clap", [f"results_dir={results}"])
    return sweeps.create_sweep(opt, list(seeds), {"dataset": "custom"}, [], "lighthouse train")


def test_sweep_folders_are_claimed_never_overwritten(tmp_path):
    first = new_sweep(tmp_path)
    assert first.folder == sweep_dir(tmp_path).absolute()
    written = (first.folder / "sweep.json").read_bytes()
    second = new_sweep(tmp_path, seeds=(5,))
    assert second.folder == sweep_dir(tmp_path, "-2").absolute()
    assert (first.folder / "sweep.json").read_bytes() == written
    assert sweeps.load_sweep(second.folder).seeds == [5]
    empty = sweep_dir(tmp_path, "-3")
    empty.mkdir()  # an empty folder holds nothing to lose: it is taken
    assert new_sweep(tmp_path).folder == empty.absolute()


def test_sweep_file_keeps_the_shared_config_without_seed_and_run_paths(tmp_path):
    sweep = sweeps.load_sweep(new_sweep(tmp_path).folder)
    assert "seed" not in sweep.config and "results_dir" not in sweep.config
    assert sweep.config["train_log_filename"] == "train.log"
    assert Path(sweep.config["features_root"]).is_absolute()


def test_not_a_sweep_folder(tmp_path):
    with pytest.raises(FileNotFoundError, match="not a seed sweep folder"):
        sweeps.load_sweep(tmp_path)


def test_write_summary_files(tmp_path, monkeypatch):
    sweep = new_sweep(tmp_path, seeds=(1, 2))
    fake = results_of((1, "finished", {"MR-full-mAP": 1.0}), (2, "finished", {"MR-full-mAP": 2.0}))
    monkeypatch.setattr(sweeps, "collect_results", lambda _: fake)
    summary = sweeps.write_summary(sweep, updated_by="lighthouse train --resume-sweep X")
    assert json.loads((sweep.folder / "summary.json").read_text()) == summary
    markdown = (sweep.folder / "summary.md").read_text()
    assert "made by: `lighthouse train`" in markdown
    assert "updated by: `lighthouse train --resume-sweep X`" in markdown
    assert sweeps.format_table(summary) in markdown


def test_a_failing_seed_spares_the_others(tmp_path, monkeypatch):
    sweep = new_sweep(tmp_path, seeds=(1, 2, 3))
    trained = []

    def fake_train(sweep, seed, overrides, progress):
        if seed == 2:
            raise RuntimeError("CUDA out of memory\nsecond line")
        trained.append(seed)

    monkeypatch.setattr(sweeps, "train_seed", fake_train)
    reports: list[str] = []
    assert sweeps.run_seeds(sweep, report=reports.append) == [2]
    assert trained == [1, 3]
    assert reports == ["lighthouse: seed 2 failed: RuntimeError: CUDA out of memory second line"]


# --- processes -----------------------------------------------------------------------------


def python_job(seed: int, code: str, log: Path) -> sweeps.Job:
    return sweeps.Job(seed, [sys.executable, "-c", code], log)


def test_processes_report_failures_with_their_log(tmp_path):
    jobs = [
        python_job(1, "print('fine')", tmp_path / "seed1" / "stdout.log"),
        python_job(
            2, "import sys; print('broken'); sys.exit(3)", tmp_path / "seed2" / "stdout.log"
        ),
        python_job(3, "print('fine too')", tmp_path / "seed3" / "stdout.log"),
    ]
    reports: list[str] = []
    assert sweeps.run_processes(jobs, 2, reports.append, poll_seconds=0.05) == [2]
    assert (tmp_path / "seed2" / "stdout.log").read_text() == "broken\n"
    assert (tmp_path / "seed3" / "stdout.log").read_text() == "fine too\n"
    log = tmp_path / "seed2" / "stdout.log"
    assert f"lighthouse: seed 2 failed (exit status 3), see {log}" in reports
    assert "lighthouse: seed 3 done" in reports


def test_ctrl_c_stops_the_children(tmp_path):
    # The child takes SIGINT as Python does by default even when the suite itself was started
    # in the background of a non-interactive shell, which ignores SIGINT for it and its children
    # (the children then never stopped, were killed after the grace time and printed only "up").
    code = (
        "import signal, time\nsignal.signal(signal.SIGINT, signal.default_int_handler)\n"
        "try:\n    print('up', flush=True)\n    time.sleep(60)\n"
        "except KeyboardInterrupt:\n    print('stopped', flush=True)\n    raise SystemExit(130)"
    )
    jobs = [python_job(n, code, tmp_path / f"seed{n}.log") for n in (1, 2)]
    started: list[str] = []

    def report(line: str) -> None:  # Ctrl-C once both children are up
        started.append(line)
        logs = [job.log for job in jobs]
        if len(started) == 2 and _wait_for(lambda: all("up" in p.read_text() for p in logs)):
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        sweeps.run_processes(jobs, 2, report, poll_seconds=0.05)
    assert [job.log.read_text() for job in jobs] == ["up\nstopped\n"] * 2


def _wait_for(condition, seconds: float = 20.0) -> bool:
    import time

    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def test_ctrl_c_prints_how_to_resume_the_sweep(small_toy, tmp_path, monkeypatch, capsys):
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(sweeps, "run_seeds", interrupted)
    assert main(sweep_args(small_toy, tmp_path, "--seeds", "1,2")) == 130
    err = capsys.readouterr().err.strip()
    hint = f"lighthouse train --resume-sweep {sweep_dir(tmp_path).absolute()}"
    assert err == f"lighthouse train: error: interrupted; resume with: {hint}"


# --- real sweeps ---------------------------------------------------------------------------


def test_sweep_trains_one_run_per_seed(two_seeds, capsys):
    for seed in (1, 2):
        folder = two_seeds / f"seed{seed}"
        config = yaml.safe_load((folder / "config.yaml").read_text())
        assert config["seed"] == seed
        assert config["results_dir"] == str(folder)
        assert len((folder / "train.log").read_text().splitlines()) == 2
        assert (folder / "best.ckpt").is_file()
    # other seeds, other runs: the losses differ from the first epoch on
    log1, log2 = (log_without_times(two_seeds / f"seed{s}" / "train.log") for s in (1, 2))
    assert log1[0] != log2[0]
    record = json.loads((two_seeds / "sweep.json").read_text())
    assert record["seeds"] == [1, 2]
    assert "n_epoch=2" in record["overrides"] and record["command"].startswith(
        "lighthouse train --seeds 1,2 --dataset custom"
    )


def test_summary_mean_is_the_mean_of_the_runs(two_seeds):
    summary = json.loads((two_seeds / "summary.json").read_text())
    runs = [brief(two_seeds / f"seed{seed}") for seed in (1, 2)]
    assert summary["num_seeds"] == 2 and list(summary["mean"]) == list(runs[0])
    for name in runs[0]:
        assert summary["mean"][name] == pytest.approx((runs[0][name] + runs[1][name]) / 2)
        assert summary["std"][name] == pytest.approx(statistics.stdev([r[name] for r in runs]))
    assert [s["metrics"] for s in summary["seeds"]] == runs
    markdown = (two_seeds / "summary.md").read_text()
    assert "| mean ± std (2 seeds) |" in markdown
    assert "made by: `lighthouse train --seeds 1,2" in markdown


def test_resuming_a_finished_sweep_trains_nothing(two_seeds, tmp_path, capsys):
    sweep = shutil.copytree(two_seeds, tmp_path / "moved-sweep")  # a moved sweep still resumes
    before = (sweep / "seed1" / "last.ckpt").read_bytes()
    assert main(["train", "--resume-sweep", str(sweep), "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert f"seed 1 finished already ({sweep / 'seed1'})" in out
    assert "| mean ± std (2 seeds) |" in out  # the table, printed
    assert (sweep / "seed1" / "last.ckpt").read_bytes() == before
    assert not (sweep / "seed1" / "resumes.jsonl").exists()


def test_resume_continues_and_starts_seeds(two_seeds, small_toy, tmp_path, capsys):
    """Seed 1 stopped after 2 of 3 epochs, seed 2 never began: the resume finishes both."""
    sweep = tmp_path / "sweep"
    sweep.mkdir()
    shutil.copy(two_seeds / "sweep.json", sweep)
    shutil.copytree(two_seeds / "seed1", sweep / "seed1")
    argv = ["train", "--resume-sweep", str(sweep), "n_epoch=3", "--no-progress"]
    assert main(argv) == 0
    assert "resuming from" in capsys.readouterr().out
    resumed = log_without_times(sweep / "seed1" / "train.log")
    assert resumed[:2] == log_without_times(two_seeds / "seed1" / "train.log")
    assert len(resumed) == 3
    assert json.loads((sweep / "seed1" / "resumes.jsonl").read_text())["changed"] == {
        "n_epoch": [2, 3]
    }
    started = yaml.safe_load((sweep / "seed2" / "config.yaml").read_text())
    assert (started["seed"], started["n_epoch"]) == (2, 3)
    assert len((sweep / "seed2" / "train.log").read_text().splitlines()) == 3
    summary = json.loads((sweep / "summary.json").read_text())
    assert [(s["seed"], s["status"], s["epochs"]) for s in summary["seeds"]] == [
        (1, "finished", 3),
        (2, "finished", 3),
    ]
    assert summary["updated_by"] == f"lighthouse train --resume-sweep {sweep} n_epoch=3"
    runs = [brief(sweep / f"seed{seed}") for seed in (1, 2)]
    assert summary["mean"]["MR-full-mAP"] == pytest.approx(
        statistics.fmean(r["MR-full-mAP"] for r in runs)
    )


def test_concurrent_seeds_run_as_processes(small_toy, tmp_path, capsys):
    argv = sweep_args(small_toy, tmp_path, "n_epoch=1", "--seeds", "3,4", "--concurrent", "2")
    assert main(argv) == 0
    out = capsys.readouterr().out
    folder = sweep_dir(tmp_path)
    for seed in (3, 4):
        log = folder / f"seed{seed}" / "stdout.log"
        assert f"lighthouse: seed {seed} started, log {log.absolute()}" in out
        assert f"seed {seed} run folder" in log.read_text()  # the child's output, not ours
        assert yaml.safe_load((folder / f"seed{seed}" / "config.yaml").read_text())["seed"] == seed
    summary = json.loads((folder / "summary.json").read_text())
    assert [s["status"] for s in summary["seeds"]] == ["finished", "finished"]


# --- bad arguments -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--seeds", "1,1"], "--seeds 1,1: seed 1 is given twice"),
        (["--seeds", "1,x"], "--seeds 1,x: 'x' is not a whole number"),
        (["--seeds", "-1"], "--seeds -1: -1 is negative (seeds are whole numbers >= 0)"),
        (["--seeds", "1,2", "seed=5"], "--seeds sets each run's seed: drop the seed=... override"),
        (
            ["--seeds", "1,2", "--resume", "x/last.ckpt"],
            "--resume continues one run; continue a sweep with --resume-sweep",
        ),
        (["--seeds", "1,2", "--concurrent", "0"], "--concurrent 0: must be 1 or more"),
        (["--concurrent", "2"], "--concurrent and --sweep-seed apply to --seeds or --resume-sweep"),
        (["--seeds", "1,2", "n_epoch=0"], "n_epoch=0: must be a whole number >= 1"),
    ],
)
def test_bad_sweep_arguments_are_one_line_and_write_nothing(
    small_toy, tmp_path, capsys, extra, message
):
    results = tmp_path / "results"
    assert main(sweep_args(small_toy, results, *extra)) == 2
    assert capsys.readouterr().err.strip() == f"lighthouse train: error: {message}"
    assert not results.exists()


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["lr=0.1"], "--resume-sweep: lr cannot change (a resumed sweep may change only"),
        (["--dataset", "custom"], "--resume-sweep keeps the sweep's arguments (its sweep.json): "),
        (["--seeds", "1"], "--resume-sweep keeps the sweep's arguments (its sweep.json): drop --"),
        (["--sweep-seed", "9"], "--sweep-seed 9: not a seed of "),
    ],
)
def test_bad_resume_arguments(tmp_path, capsys, extra, message):
    sweep = new_sweep(tmp_path)
    assert main(["train", "--resume-sweep", str(sweep.folder), *extra]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"lighthouse train: error: {message}") and "\n" not in err
    assert sorted(p.name for p in sweep.folder.iterdir()) == ["sweep.json"]


def test_resume_sweep_of_a_run_folder(tmp_path, capsys):
    assert main(["train", "--resume-sweep", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert err == f"lighthouse train: error: {tmp_path}: not a seed sweep folder (no sweep.json)"
