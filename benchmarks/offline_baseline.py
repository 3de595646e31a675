"""The sliding-window baseline on the offline real-audio benchmark's data (``offline_amr.py``).

Zero-shot, as in the AMR paper, through an ``aisfx-minilm`` joint space that ``lighthouse align``
trains on the benchmark's TRAIN-split foreground clips only (val and test clips never reach it):

1. align on the train split's captioned clips (``demo.joint_prior.align_train_split``, raw rows:
   ``recording`` = the sound's path, so align's own held-out part is split by recording too);
2. features per window: 1 s reuses the AM-DETR features (1 s windows, frames ``none``); 4 s and
   7 s get their own ``lighthouse extract --window W --hop 1 --frames center`` root for the val
   and test clips (``center`` centres frame k on k s, so long windows still cover the clip's
   edges; ``none`` would leave the first and last (W-1)/2 s without a frame);
3. ``lighthouse tune-baseline`` per window: tune on val, score test.

Every step is cached under ``DATA_DIR/baseline`` and ``WORKDIR/results``; the wall time of a step
is recorded when it actually runs (``DATA_DIR/baseline/timings.json``). Normally run through
``offline_amr.py``; alone (the data must exist):

    python benchmarks/offline_baseline.py --data-dir benchmarks/.cache/offline_amr/data/seed0-...
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
DEFAULT_SOUNDS = HERE.parent.parent / "shared" / "sounds"
FEATURE = "aisfx-minilm"
WINDOWS = (1, 4, 7)


def cli(*argv: object) -> None:
    """Run one ``lighthouse`` subcommand in this process; a non-zero status is an error."""
    from lighthouse_audio.cli.main import build_parser

    args = build_parser().parse_args([str(a) for a in argv])
    if args.func(args):
        raise RuntimeError(f"lighthouse {' '.join(map(str, argv))} failed (see above)")


def _quiet(progress: bool) -> list[str]:
    return [] if progress else ["--no-progress"]


class Timings:
    """Per-step wall times, kept in a JSON file so a rerun that reuses a step still reports the
    time the step took when it ran."""

    def __init__(self, path: Path) -> None:
        self.path = path

    @property
    def values(self) -> dict[str, float]:
        return json.loads(self.path.read_text()) if self.path.is_file() else {}

    def record(self, step: str, started: float) -> None:
        values = {**self.values, step: round(time.perf_counter() - started, 1)}
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.path.write_text(json.dumps(values, indent=2) + "\n")


def train_recordings(data_dir: Path, sounds: Path) -> list[Any]:
    """The train split's recordings, from ``splits.json`` and the sound set's manifest."""
    from lighthouse_audio.demo.sound_set import load_sound_set

    train = set(json.loads((data_dir / "splits.json").read_text())["train"])
    return [r for r in load_sound_set(sounds.resolve()) if r.key in train]


def align(
    data_dir: Path, sounds: Path, work: Path, timings: Timings, progress: bool, heldout: float
) -> Path:
    """The raw-row joint space of the train split (trained unless one fits); its path."""
    from lighthouse_audio.demo.joint_prior import align_train_split

    space = work / f"{FEATURE}-joint-train.pt"
    before = space.stat().st_mtime_ns if space.is_file() else None
    started = time.perf_counter()
    align_train_split(train_recordings(data_dir, sounds), work, input_norm=False,
                      heldout=heldout, progress=progress)  # fmt: skip
    if space.stat().st_mtime_ns != before:
        timings.record("align", started)
    return space


def features(data_dir: Path, window: int, timings: Timings, progress: bool) -> Path:
    """The features root for ``window`` s windows (extracted for val and test if needed)."""
    if window == 1:
        return data_dir / "features" / "custom"  # AM-DETR's: 1 s windows, 1 s hop, frames none
    root = data_dir / "features" / f"baseline-w{window}"
    annotations = data_dir / "annotations"
    started = time.perf_counter()
    done = (root / FEATURE / "manifest.json").is_file()
    cli("extract", "--feature", FEATURE, "--audio-dir", data_dir / "audio", "--out", root,
        "--window", window, "--hop", 1, "--frames", "center", "--device", "cpu",
        "--jsonl", annotations / "val.jsonl", "--jsonl", annotations / "test.jsonl",
        *_quiet(progress))  # fmt: skip
    if not done:
        timings.record(f"extract w{window}", started)
    return root


def tune(
    root: Path, window: int, space: Path, data_dir: Path, results: Path, timings: Timings,
    progress: bool,
) -> Path:  # fmt: skip
    """A finished ``tune-baseline`` run for these inputs (made if there is none)."""
    import yaml

    val, test = (data_dir / "annotations" / f"{s}.jsonl" for s in ("val", "test"))
    wanted = {
        "features_root": str(root.resolve()),
        "eval_path": str(val.resolve()),
        "test_path": str(test.resolve()),
        "joint_space": str(space.resolve()),
    }
    base = results / "sliding_window" / "custom" / f"{FEATURE}_w{window}"
    for run in sorted(base.parent.glob(f"{base.name}*")):
        config = yaml.safe_load((run / "config.yaml").read_text()) if run.is_dir() else None
        if (
            config
            and all(config.get(k) == v for k, v in wanted.items())
            and (run / "test_metrics.json").is_file()
            and (run / "config.yaml").stat().st_mtime > space.stat().st_mtime
        ):
            print(f"  reusing {run}")
            return run
    before = set(base.parent.glob(f"{base.name}*"))
    started = time.perf_counter()
    cli("tune-baseline", "--feature", FEATURE, "--features", root, "--val", val, "--test", test,
        "--joint-space", space, "--results-dir", results, *_quiet(progress))  # fmt: skip
    timings.record(f"tune w{window}", started)
    (run,) = set(base.parent.glob(f"{base.name}*")) - before
    return run


def run_baselines(
    data_dir: Path,
    sounds: Path,
    results: Path,
    windows: Sequence[int] = WINDOWS,
    progress: bool = True,
    heldout: float = 0.2,
) -> dict[str, Any]:
    """Align, extract and tune (module doc); the run folders, alignment scores and timings.
    ``heldout``: clips align keeps out to report recall (0.2: the recorded offline results')."""
    work = data_dir / "baseline"
    timings = Timings(work / "timings.json")
    from lighthouse_audio.joint.space import load_joint_space

    print("baseline [1/3] align on the train split's foregrounds")
    space = align(data_dir, sounds, work, timings, progress, heldout)
    meta = load_joint_space(space).meta
    runs = {}
    for window in windows:
        print(f"baseline [2/3] {window} s window features")
        root = features(data_dir, window, timings, progress)
        print(f"baseline [3/3] tune the {window} s window on val, score test")
        runs[window] = tune(root, window, space, data_dir, results, timings, progress)
    alignment = {
        key: meta[key]
        for key in ("num_train_clips", "num_heldout_clips", "num_train_captions", "recall")
    }
    return {"runs": runs, "align": alignment, "joint_space": space, "timings": timings.values}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", type=Path, required=True, help="offline_amr's data folder")
    parser.add_argument("--sounds", type=Path, default=DEFAULT_SOUNDS)
    parser.add_argument("--workdir", type=Path, default=HERE / ".cache" / "offline_amr")
    parser.add_argument("--windows", type=int, nargs="+", default=list(WINDOWS))
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads (default 2)")
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args()
    import torch

    torch.set_num_threads(args.threads)
    out = run_baselines(args.data_dir, args.sounds, args.workdir / "results", args.windows,
                        progress=not args.no_progress)  # fmt: skip
    print(json.dumps({**out, "runs": {w: str(r) for w, r in out["runs"].items()},
                      "joint_space": str(out["joint_space"])}, indent=2))  # fmt: skip


if __name__ == "__main__":
    main()
