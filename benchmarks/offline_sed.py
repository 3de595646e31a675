"""Zero-shot sound event detection on the offline real-audio benchmark (the paper's Table II).

The AMR paper uses moment retrieval models as zero-shot sound event detectors: every event class
name is a query, and the predicted moments are scored frame by frame (``lighthouse sed-eval``).
Here the benchmark's simulated val and test clips are relabelled by sound class: one query per
(clip, class present), whose windows are all the placements of that class's sounds, and whose
text is the class name (``animal/horse_hooves`` -> ``horse hooves``). No method saw these class
names as queries in training (AM-DETR was trained on captions).

    python benchmarks/offline_sed.py --data benchmarks/.cache/offline_amr/data/seed0-XXXX \\
        --run AM-DETR=RUN_DIR --run "Sliding window 1 s"=BASELINE_RUN --out DIR

Each run is a trained AM-DETR run folder (``best.ckpt``) or a tuned sliding-window run folder;
its features root is read from the run's ``config.yaml`` (``RUN@ROOT`` to give another). The
class queries' text features are added to each features root with ``lighthouse extract``, every
method predicts val and test, the SED threshold is tuned on val (best micro F1) and applied to
test, and ``lighthouse report`` writes Table II into ``DIR/report``.
"""

from __future__ import annotations

import argparse
import json
from collections import defaultdict
from pathlib import Path
from typing import Any

import yaml

from lighthouse_audio.cli.main import main as lighthouse
from lighthouse_audio.data.feature_manifest import read_manifest
from lighthouse_audio.demo.data import safe_name
from lighthouse_audio.demo.settings import FEATURE
from lighthouse_audio.file_io import load_jsonl, write_jsonl

HERE = Path(__file__).resolve().parent
DEFAULT_SOUNDS = HERE.parents[1] / "shared" / "sounds"
SPLITS = ("val", "test")
QID_BASE = 9_000_000  # class queries' qids: far from the benchmark's caption qids
QID_SPLIT_STRIDE = 100_000


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, required=True, help="a benchmark/demo data folder")
    parser.add_argument("--sounds", type=Path, default=DEFAULT_SOUNDS, help="labels' manifest")
    parser.add_argument(
        "--run", action="append", required=True, metavar="LABEL=RUN[@ROOT]",
        help="a method: its name in the table, its run folder, optionally its features root",
    )  # fmt: skip
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--thresholds", default="0:1:0.02", help="tuning grid (sed-eval syntax)")
    return parser.parse_args()


def class_text(label: str) -> str:
    """``animal/horse_hooves`` -> ``horse hooves``: what a user would type for the class."""
    return label.rsplit("/", 1)[-1].replace("_", " ")


def load_labels(sounds: Path) -> dict[str, str]:
    """Simulation key of each foreground (as the benchmark names its sources) -> class label."""
    labels = {}
    for line in load_jsonl(sounds / "manifest.jsonl"):
        if line.get("role") == "fg" and line.get("label"):
            labels[safe_name(line["path"])] = line["label"]
    return labels


def class_queries(split_dir: Path, labels: dict[str, str], first_qid: int) -> list[dict]:
    """One query per (clip, class present) from a simulated split's recipes and annotations."""
    windows = {int(line["qid"]): line for line in load_jsonl(split_dir / "annotations.jsonl")}
    grouped: dict[tuple[str, str], list[list[float]]] = defaultdict(list)
    durations = {}
    for recipe in json.loads((split_dir / "recipes.json").read_text()):
        for fg in recipe["fg"]:
            key = Path(fg["path"]).stem
            if key not in labels:
                raise SystemExit(f"{split_dir}: foreground {key} has no label in the manifest")
            line = windows[int(fg["qid"])]
            grouped[(line["vid"], labels[key])].extend(line["relevant_windows"])
            durations[line["vid"]] = line["duration"]
    queries = []
    for i, ((vid, label), spans) in enumerate(sorted(grouped.items())):
        queries.append({
            "qid": first_qid + i, "query": class_text(label), "duration": durations[vid],
            "vid": vid, "relevant_windows": sorted(spans), "label": label,
        })  # fmt: skip
    return queries


def run_config(run: Path) -> dict[str, Any]:
    return yaml.safe_load((run / "config.yaml").read_text())


def features_root(run: Path, given: str | None) -> Path:
    if given:
        return Path(given)
    opt = run_config(run)
    if opt.get("a_feat_dirs"):  # AM-DETR runs: ROOT/FEATURE is the audio folder
        return Path(opt["a_feat_dirs"][0]).parent
    return Path(opt["features_root"])


def checkpoint(run: Path) -> Path:
    return run / "best.ckpt" if (run / "best.ckpt").is_file() else run


def call(argv: list[str]) -> None:
    code = lighthouse(argv)
    if code:
        raise SystemExit(f"lighthouse {' '.join(argv)}: exit status {code}")


def add_text_features(root: Path, audio_dir: Path, jsonls: list[Path]) -> None:
    """Text features for the class queries, with the root's own layout (its manifest must match)."""
    manifest = read_manifest(root / FEATURE)
    layout = []
    if manifest is not None:
        layout = ["--window", str(manifest.window), "--hop", str(manifest.hop)]
        layout += ["--frames", manifest.frames]
    argv = ["extract", "--feature", FEATURE, "--audio-dir", str(audio_dir), "--out", str(root)]
    argv += layout + ["--no-progress"] + [arg for path in jsonls for arg in ("--jsonl", str(path))]
    call(argv)


def main() -> None:
    args = parse_args()
    labels = load_labels(args.sounds)
    gt = {
        split: write_jsonl(
            class_queries(args.data / "simulated" / split, labels, QID_BASE + i * QID_SPLIT_STRIDE),
            args.out / f"sed_{split}.jsonl",
        )
        for i, split in enumerate(SPLITS)
    }
    for split, path in gt.items():
        lines = load_jsonl(path)
        print(f"{split}: {len(lines)} class queries, {len({x['label'] for x in lines})} classes")

    sed_files = []
    for spec in args.run:
        label, _, target = spec.partition("=")
        run_text, _, root_text = target.partition("@")
        run = Path(run_text)
        root = features_root(run, root_text or None)
        add_text_features(root, args.data / "audio", list(gt.values()))
        preds = {}
        for split in SPLITS:
            preds[split] = args.out / "preds" / f"{safe_name(label)}_{split}.jsonl"
            call([
                "infer", "--checkpoint", str(checkpoint(run)), "--jsonl", str(gt[split]),
                "--features", str(root), "--out", str(preds[split]),
            ])  # fmt: skip
        sed_file = args.out / "sed" / f"{safe_name(label)}.json"
        sed_file.parent.mkdir(parents=True, exist_ok=True)
        call([
            "sed-eval", "--submission", str(preds["test"]), "--gt", str(gt["test"]),
            "--tune-submission", str(preds["val"]), "--tune-gt", str(gt["val"]),
            "--thresholds", args.thresholds, "--save", str(sed_file),
        ])  # fmt: skip
        sed_files.append(f"{label}={sed_file}")
    call(["report", *sed_files, "--out", str(args.out / "report"), "--force"])


if __name__ == "__main__":
    main()
