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


# The smallest sizes every part of every registered model still runs at (CPU tests stay short;
# two decoder layers, so the auxiliary losses run), and what a model's builder needs on top.
SMALL_MODEL = dict(enc_layers=1, dec_layers=2, hidden_dim=64, nheads=4, dim_feedforward=64)
# Lighthouse's conditional decoders embed each reference span into 256 sine features whatever the
# width, so those models run at hidden_dim 256 only.
FIXED_WIDTH = {"hidden_dim": 256}
MODEL_NEEDS = {
    "qd_detr": FIXED_WIDTH,
    "tr_detr": FIXED_WIDTH,
    "taskweave_mr2hd": FIXED_WIDTH,
    "taskweave_hd2mr": FIXED_WIDTH,
    "uvcom": {**FIXED_WIDTH, "num_queries": 30},  # it builds 30 slots whatever num_queries says
    "cg_detr": {"num_dummies": 8},  # of its default 45
}


def small_model(name: str) -> dict[str, int]:
    """The sizes of a small ``name`` (a registered model)."""
    return {**SMALL_MODEL, **MODEL_NEEDS.get(name, {})}


def small_model_overrides(name: str) -> list[str]:
    """:func:`small_model` as ``key=value`` overrides."""
    return [f"{key}={value}" for key, value in small_model(name).items()]
