"""Crash safety, proved: ``extract``, ``train``, ``simulate`` and ``align`` are killed with
SIGKILL at random points (no handler runs, no ``finally``), rerun as a user would, and must end
with results identical to an uninterrupted run, and no temporary file left.

The kill times are drawn from ``LIGHTHOUSE_AUDIO_CRASH_SEED`` (random when unset; a failure
prints the seed so it can be replayed).

Every run here uses one CPU thread: with two, a run's floats sometimes left the others' by the
first epoch even without a kill, on a busy machine (4 of 12 runs of ``test_train`` failed that
way, the reference or the killed run drifting; 0 of 12 at one thread, same load), and what is
tested here is resuming, not multi-threaded kernels' run-to-run equality.
"""

from __future__ import annotations

import json
import os
import random
import re
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch

from tests.conftest import SHARED
from tests.toy_model import run_dir, train_args, write_toy_data

SOUNDS = SHARED / "sounds"
CLI = [sys.executable, "-m", "lighthouse_audio"]
KILLS = 2
ONE_THREAD = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
SEED = int(os.environ.get("LIGHTHOUSE_AUDIO_CRASH_SEED") or random.SystemRandom().randrange(2**31))
TEMPORARY = re.compile(r"^\..*\.\d+\.[0-9a-f]{8}\.tmp")

pytestmark = pytest.mark.skipif(not (SOUNDS / "manifest.jsonl").is_file(), reason="needs sounds")


def run_cli(argv: list[str], cwd: Path) -> float:
    """Run to completion; returns the wall time."""
    started = time.perf_counter()
    done = subprocess.run(
        [*CLI, *argv], cwd=cwd, capture_output=True, text=True, timeout=900, env=ONE_THREAD
    )
    assert done.returncode == 0, f"{argv}: {done.stderr[-3000:]}"
    return time.perf_counter() - started


def kill_and_rerun(
    argv_for: Callable[[], list[str]],
    cwd: Path,
    reference_s: float,
    finished: Callable[[], bool] = lambda: False,
) -> int:
    """Start, SIGKILL at a random point, up to ``KILLS`` times; then run to completion, as a
    user would: unless ``finished()`` says the result is already there (a kill after the final
    rename, or a run that ended before its kill). Returns how many runs were killed mid-way."""
    rng = random.Random(SEED)
    killed = 0
    for _ in range(KILLS):
        if finished():
            break
        process = subprocess.Popen(
            [*CLI, *argv_for()],
            cwd=cwd,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            env=ONE_THREAD,
        )
        try:
            _, err = process.communicate(timeout=rng.uniform(0.25, 0.8) * reference_s)
        except subprocess.TimeoutExpired:
            process.kill()  # SIGKILL
            process.communicate()
            killed += 1
            continue
        assert process.returncode == 0, f"seed {SEED}: {err.decode()[-3000:]}"
    if not finished():
        run_cli(argv_for(), cwd)
    assert killed >= 1, f"seed {SEED}: every run finished before its kill; nothing was tested"
    return killed


def files_under(root: Path) -> dict[str, Path]:
    return {p.relative_to(root).as_posix(): p for p in sorted(root.rglob("*")) if p.is_file()}


def assert_no_temporaries(root: Path) -> None:
    left = [p for p in root.rglob("*") if TEMPORARY.match(p.name)]
    assert not left, f"seed {SEED}: temporaries left: {left}"


def assert_same_tree(reference: Path, rerun: Path, compare: Callable[[Path, Path], None]) -> None:
    want, got = files_under(reference), files_under(rerun)
    assert sorted(got) == sorted(want), f"seed {SEED}"
    for name in want:
        compare(want[name], got[name])


def same_bytes(a: Path, b: Path) -> None:
    assert a.read_bytes() == b.read_bytes(), f"seed {SEED}: {b} differs"


def same_arrays(a: Path, b: Path) -> None:
    if a.suffix != ".npz":
        return same_bytes(a, b)
    with np.load(a) as x, np.load(b) as y:
        assert x.files == y.files and all(np.array_equal(x[k], y[k]) for k in x.files), b


@pytest.fixture
def audio_and_queries(tmp_path: Path) -> tuple[Path, Path]:
    lines = [json.loads(x) for x in (SOUNDS / "manifest.jsonl").read_text().splitlines()]
    audio = tmp_path / "audio"
    audio.mkdir()
    queries = []
    for i, line in enumerate([x for x in lines if x["role"] == "fg"][:16]):
        vid = f"clip{i:02d}"
        (audio / f"{vid}{Path(line['path']).suffix}").symlink_to(SOUNDS / line["path"])
        queries.append({"qid": i, "query": line["caption"], "duration": 30, "vid": vid})
    jsonl = tmp_path / "queries.jsonl"
    jsonl.write_text("".join(json.dumps(q) + "\n" for q in queries))
    return audio, jsonl


def test_extract(tmp_path: Path, audio_and_queries) -> None:
    audio, jsonl = audio_and_queries

    def argv(out: str) -> list[str]:
        return ["extract", "--feature", "aisfx-minilm", "--audio-dir", str(audio),
                "--jsonl", str(jsonl), "--out", str(tmp_path / out), "--batch-size", "8",
                "--no-progress"]  # fmt: skip

    reference_s = run_cli(argv("reference"), tmp_path)
    kill_and_rerun(lambda: argv("rerun"), tmp_path, reference_s)
    assert_no_temporaries(tmp_path / "rerun")
    assert_same_tree(tmp_path / "reference", tmp_path / "rerun", same_arrays)


def test_train(tmp_path: Path) -> None:
    toy = write_toy_data(tmp_path / "toy")
    reference, rerun = tmp_path / "reference", tmp_path / "rerun"
    first = train_args(toy, rerun, "n_epoch=8")
    last = run_dir(rerun) / "last.ckpt"

    def argv() -> list[str]:  # what the user reruns: the printed resume command, once there is one
        return ["train", "--resume", str(last), "--no-progress"] if last.exists() else first

    reference_s = run_cli(train_args(toy, reference, "n_epoch=8"), tmp_path)
    kill_and_rerun(argv, tmp_path, reference_s)
    assert_no_temporaries(rerun)
    want, got = run_dir(reference), run_dir(rerun)
    for name in ("last.ckpt", "best.ckpt"):
        a, b = (torch.load(d / name, weights_only=False) for d in (want, got))
        assert a["epoch"] == b["epoch"], f"seed {SEED}: {name}"
        assert all(torch.equal(a["model"][k], b["model"][k]) for k in a["model"]), name
    for name in ("train.log", "val.log"):  # the same lines, timestamps aside, none repeated
        strip = [[line.split(" ", 1)[1] for line in (d / name).read_text().splitlines()]
                 for d in (want, got)]  # fmt: skip
        assert strip[0] == strip[1], f"seed {SEED}: {name}"
    for name in ("best_val_metrics.json", "best_val_preds.jsonl"):
        same_bytes(want / name, got / name)
    assert [p.name for p in got.parent.iterdir()] == ["clap"]  # no second run folder


def test_simulate(tmp_path: Path) -> None:
    lines = [json.loads(x) for x in (SOUNDS / "manifest.jsonl").read_text().splitlines()]
    fg = [x for x in lines if x["role"] == "fg"][:24]
    manifest = tmp_path / "fg.jsonl"
    entries = [{"path": str(SOUNDS / x["path"]), "caption": x["caption"]} for x in fg]
    manifest.write_text("".join(json.dumps(entry) + "\n" for entry in entries))
    backgrounds = tmp_path / "bg"
    backgrounds.mkdir()
    for x in [x for x in lines if x["role"] == "bg"][:3]:
        (backgrounds / Path(x["path"]).name).symlink_to(SOUNDS / x["path"])

    def argv(out: str) -> list[str]:
        return ["simulate", "--fg-manifest", str(manifest), "--bg-dir", str(backgrounds),
                "--out", str(tmp_path / out), "--n", "40", "--seed", "1", "--clip-length", "20",
                "--no-progress"]  # fmt: skip

    reference_s = run_cli(argv("reference"), tmp_path)
    kill_and_rerun(lambda: argv("rerun"), tmp_path, reference_s, (tmp_path / "rerun").exists)
    assert not (tmp_path / ".rerun.partial").exists()
    assert_no_temporaries(tmp_path / "rerun")

    def compare(a: Path, b: Path) -> None:
        if a.name == "simulation.json":  # records its own output folder's paths
            return
        same_bytes(a, b)

    assert_same_tree(tmp_path / "reference", tmp_path / "rerun", compare)


def test_align(tmp_path: Path) -> None:
    lines = [json.loads(x) for x in (SOUNDS / "manifest.jsonl").read_text().splitlines()]
    manifest = tmp_path / "clips.jsonl"
    manifest.write_text("".join(json.dumps({"path": str(SOUNDS / x["path"]),
                                            "caption": x["caption"]}) + "\n"
                                for x in [x for x in lines if x["role"] == "fg"][:40]))  # fmt: skip

    def argv(name: str) -> list[str]:
        return ["align", "--manifest", str(manifest), "--feature", "aisfx-minilm",
                "--out", str(tmp_path / f"{name}.pt"), "--epochs", "30",
                "--cache-dir", str(tmp_path / f"cache_{name}"), "--no-progress"]  # fmt: skip

    reference_s = run_cli(argv("reference"), tmp_path)
    kill_and_rerun(lambda: argv("rerun"), tmp_path, reference_s, (tmp_path / "rerun.pt").exists)
    assert_no_temporaries(tmp_path)
    want, got = (
        torch.load(tmp_path / f"{n}.pt", weights_only=True) for n in ("reference", "rerun")
    )
    assert want.keys() == got.keys()
    for key in want:
        assert _same_payload(want[key], got[key], skip=("created",)), f"seed {SEED}: {key}"
    assert_same_tree(tmp_path / "cache_reference", tmp_path / "cache_rerun", same_arrays)


def _same_payload(a, b, skip: tuple[str, ...]) -> bool:
    if isinstance(a, torch.Tensor):
        return isinstance(b, torch.Tensor) and torch.equal(a, b)
    if isinstance(a, dict):
        keys = set(a) - set(skip)
        return keys == set(b) - set(skip) and all(_same_payload(a[k], b[k], skip) for k in keys)
    if isinstance(a, list | tuple):
        return len(a) == len(b) and all(
            _same_payload(x, y, skip) for x, y in zip(a, b, strict=True)
        )
    return a == b
