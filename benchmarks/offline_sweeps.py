"""Seed sweeps on the offline real-audio benchmark's data, each seed scored on its test split.

Shared by ``fast_path_equivalence.py`` (one model, plain against fast path) and
``all_models.py`` (every model, one path): the data are ``offline_amr.py``'s (``../shared/sounds``
split by recording, 10 s clips, ``aisfx-minilm`` features; the same cache folder, so they are
made once), training is ``lighthouse train --seeds`` with the benchmark's settings
(``TRAIN_DEFAULTS``: ``bsz=8 lr=3e-4 input_dropout=0.1``), and each seed's best checkpoint (by
val mAP) is scored with ``lighthouse infer --eval``. A finished sweep is reused; an interrupted
one is resumed (``--resume-sweep``).
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

METRICS = ("MR-full-R1@0.5", "MR-full-R1@0.7", "MR-full-mAP@0.5", "MR-full-mAP@0.75", "MR-full-mAP")


def cli(*args: Any) -> None:
    subprocess.run([sys.executable, "-m", "lighthouse_audio", *map(str, args)], check=True)


def prepare(workdir: Path, sounds: Path):
    """The offline benchmark's data, made (or reused) by the demo's data steps."""
    from lighthouse_audio.demo.config import DemoConfig
    from lighthouse_audio.demo.data import obtain_sounds, plan_data, prepare_data

    cfg = DemoConfig(
        workdir=workdir.resolve(), sounds=sounds.resolve(), seed=0, repeat_prob=0.0,
        clips=(1000, 150, 300), test_length=None, recipe=(), progress=False,
    )  # fmt: skip
    recordings, root = obtain_sounds(cfg, print)
    data_dir, plan = plan_data(cfg, recordings, root, print)
    return prepare_data(cfg, data_dir, plan, print)


def sweep_and_test(
    data, results_dir: Path, model: str, seeds: str, epochs: int, concurrent: int,
    overrides: Sequence[str] = (),
) -> dict[str, dict]:  # fmt: skip
    """Train ``model`` for every seed into ``results_dir`` (or reuse/resume that sweep), score
    each seed's best checkpoint on test; ``{seed: {"val": brief, "test": brief}}``."""
    from lighthouse_audio.demo.config import TRAIN_DEFAULTS

    features = data.train_features
    sweep = results_dir / model / "custom" / "aisfx-minilm-seeds"
    if (sweep / "sweep.json").is_file() and not (sweep / "summary.json").is_file():
        cli("train", "--resume-sweep", sweep, "--concurrent", concurrent, "--no-progress")
    elif not (sweep / "summary.json").is_file():
        cli("train", "--model", model, "--dataset", "custom", "--feature", "aisfx-minilm",
            "--no-progress", "--seeds", seeds, "--concurrent", concurrent,
            "--features-root", features, f"train_path={data.train['train']}",
            f"eval_path={data.train['val']}", f"results_dir={results_dir}",
            f"n_epoch={epochs}", "max_v_l=11", "max_a_l=11", "num_workers=0",
            *TRAIN_DEFAULTS, *overrides)  # fmt: skip
    rows = {}
    for seed in seeds.split(","):
        run = sweep / f"seed{seed}"
        test = run / "test_preds.jsonl"
        if not test.with_suffix(".metrics.json").is_file():
            cli("infer", "--checkpoint", run / "best.ckpt", "--jsonl", data.test["test"],
                "--features", features / "custom", "--out", test, "--eval",
                "--no-progress")  # fmt: skip
        rows[seed] = {
            "val": json.loads((run / "best_val_metrics.json").read_text())["brief"],
            "test": json.loads(test.with_suffix(".metrics.json").read_text())["brief"],
        }
    return rows


def finished_rows(results_dir: Path, model: str, seeds: str) -> dict[str, dict] | None:
    """``sweep_and_test``'s rows for a sweep already trained and tested, without running
    anything; None while any part is missing (e.g. another process is still training it)."""
    sweep = results_dir / model / "custom" / "aisfx-minilm-seeds"
    if not (sweep / "summary.json").is_file():
        return None
    rows = {}
    for seed in seeds.split(","):
        test = sweep / f"seed{seed}" / "test_preds.metrics.json"
        if not test.is_file():
            return None
        rows[seed] = {
            "val": json.loads((test.parent / "best_val_metrics.json").read_text())["brief"],
            "test": json.loads(test.read_text())["brief"],
        }
    return rows


def mean_sd(values: list[float]) -> str:
    sd = statistics.stdev(values) if len(values) > 1 else float("nan")
    return f"{statistics.mean(values):.2f} ± {sd:.2f}"


def table(results: dict[str, dict[str, dict]], label: str, splits: Sequence[str]) -> str:
    """Markdown: a row per (entry, split), mean ± sample sd over seeds of every metric."""
    head = " | ".join(m.removeprefix("MR-full-") for m in METRICS)
    lines = [f"| {label} | split | seeds | {head} |", "|---|---|---:|" + "---:|" * len(METRICS)]
    for name, rows in results.items():
        for split in splits:
            cells = [mean_sd([r[split][m] for r in rows.values()]) for m in METRICS]
            lines.append(f"| {name} | {split} | {len(rows)} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def write_results(out: Path, stem: str, results: dict, text: str) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{stem}.json").write_text(json.dumps(results, indent=2) + "\n")
    (out / f"{stem}.md").write_text(text + "\n")
    print(f"wrote {out / stem}.json and {stem}.md")
