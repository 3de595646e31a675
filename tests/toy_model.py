"""The separable toy task (synthetic features) and the AM-DETR run trained on it, shared by tests.

Settings measured for a wide margin (tests/engine/test_train_e2e.py): bsz 16, 30 epochs,
feed-forward 256, lr 5e-4 on 128 training queries of 20 frames.
"""

from __future__ import annotations

from pathlib import Path

from lighthouse_audio.testing.synthetic import SyntheticSpec, write_split

SPEC = dict(duration=20, num_classes=4, min_window=3, max_window=8, min_tokens=4, max_tokens=8)
# Enough steps (8 per epoch at bsz 16) for DETR's slow start on every seed: at 10 epochs of
# bsz 32 the same task scored R1@0.5 17-63 depending on seed and thread count.
TOY_EPOCHS = 30


def write_toy_data(root: Path) -> Path:
    """Train (128) and val (48) queries under ``root/features/custom``; returns ``root``."""
    feats = root / "features" / "custom"
    write_split(feats, "train", SyntheticSpec(128, **SPEC), seed=1)
    write_split(feats, "val", SyntheticSpec(48, **SPEC), seed=2, qid_offset=10_000)
    return root


def train_args(toy: Path, results: Path, *extra: str) -> list[str]:
    feats = toy / "features" / "custom"
    return [
        "train", "--dataset", "custom", "--feature", "clap", "--no-progress",
        "--features-root", str(toy / "features"), "--device", "cpu",
        f"train_path={feats / 'train.jsonl'}", f"eval_path={feats / 'val.jsonl'}",
        f"results_dir={results}", "bsz=16", "eval_bsz=64", "lr=0.0005", "max_v_l=20", "max_a_l=20",
        "input_dropout=0.1", "dim_feedforward=256", *extra,
    ]  # fmt: skip


def run_dir(results: Path, suffix: str = "") -> Path:
    return results / "qd_detr" / "custom" / f"clap{suffix}"
