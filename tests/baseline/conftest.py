"""A tiny raw-feature root whose similarities are exactly 1 inside each moment and 0 outside.

Four classes, 4-d features: a query of class ``k`` has text tokens ``e_k``; its clip's frames are
``e_k`` inside the moment and ``e_{k+1}`` outside, except for a one-frame blip of ``e_k`` outside
and a one-frame dip of ``e_{k+1}`` inside. With identity heads the similarity curve is 1/0, so the
right answer is plain: any threshold in (0, 1] plus a median filter of 3.
"""

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from lighthouse_audio.data.feature_manifest import FeatureManifest, write_manifest

DIM = 4
FEATURE = "toy-joint"


def identity_space(feature: str = FEATURE):
    from lighthouse_audio.joint.space import JointSpace, build_head

    specs = {"audio": {"kind": "linear", "dim_in": DIM, "dim_out": DIM},
             "text": {"kind": "linear", "dim_in": DIM, "dim_out": DIM}}  # fmt: skip
    heads = [build_head(specs["audio"]), build_head(specs["text"])]
    with torch.no_grad():
        for head in heads:
            head.weight.copy_(torch.eye(DIM))
            head.bias.zero_()
    return JointSpace(feature, *heads, "mean", specs)


def write_split(root: Path, split: str, num_queries: int, seed: int, duration: int = 16) -> Path:
    """Raw npz files under ``root/FEATURE`` (frames ``none``: frame i is second [i, i+1]) and
    ``root/{split}.jsonl``."""
    rng = np.random.default_rng(seed)
    eye = np.eye(DIM, dtype=np.float32)
    (root / FEATURE).mkdir(parents=True, exist_ok=True)
    (root / f"{FEATURE}_text").mkdir(parents=True, exist_ok=True)
    lines = []
    for i in range(num_queries):
        qid, vid, cls = f"{split}{i}", f"{split}_clip{i}", int(rng.integers(DIM))
        width = int(rng.integers(5, 8))
        start = int(rng.integers(0, duration - width + 1))
        frames = np.tile(eye[(cls + 1) % DIM], (duration, 1))
        frames[start : start + width] = eye[cls]
        # A dip with two moment frames on each side; a blip two frames away from the moment.
        frames[start + 2] = eye[(cls + 1) % DIM]
        frames[start - 3 if start >= 4 else start + width + 2] = eye[cls]
        np.savez(root / FEATURE / f"{vid}.npz", features=frames)
        tokens = np.tile(eye[cls], (3, 1))
        np.savez(root / f"{FEATURE}_text" / f"qid{qid}.npz", last_hidden_state=tokens)
        window = [float(start), float(start + width)]
        lines.append({"qid": qid, "query": f"class {cls}", "duration": duration, "vid": vid,
                      "relevant_windows": [window]})  # fmt: skip
    path = root / f"{split}.jsonl"
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    return path


def write_layout_manifest(root: Path, window: float = 1.0, frames: str = "none") -> None:
    write_manifest(
        root / FEATURE,
        FeatureManifest(FEATURE, "identity", 16000, window, 1.0, frames, DIM, DIM, "tokens", "0"),
    )


@pytest.fixture
def joint_feature():
    """Registers the ``toy-joint`` feature (no joint-space factory) for one test."""
    from lighthouse_audio.encoders.base import FeatureSpec
    from lighthouse_audio.registry import FEATURES

    spec = FeatureSpec(FEATURE, "audio")  # read from disk only: no encoder
    FEATURES.register(spec)
    yield spec
    FEATURES.unregister(FEATURE)


@pytest.fixture
def toy_root(tmp_path) -> Path:
    root = tmp_path / "features"
    write_split(root, "val", 8, seed=1)
    write_split(root, "test", 6, seed=2)
    write_layout_manifest(root)
    return root


@pytest.fixture
def space_file(tmp_path) -> Path:
    from lighthouse_audio.joint.space import save_joint_space

    path = tmp_path / "space.pt"
    save_joint_space(path, identity_space())
    return path
