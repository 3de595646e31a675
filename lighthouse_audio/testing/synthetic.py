"""Synthetic features in Lighthouse's on-disk layout, for tests and benchmarks.

The toy task is separable on purpose: each query names one of ``num_classes`` sound classes; its
text tokens are noisy copies of the class prototype and the audio frames inside its window are
the prototype plus noise, while the rest of the recording is noise. A model that learns
anything scores far above chance, which is what the end-to-end tests check.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from lighthouse_audio.data.layout import AUDIO_KEY, TEXT_KEY, FeatureLayout


@dataclass(frozen=True)
class SyntheticSpec:
    num_queries: int
    duration: int = 60  # seconds = audio frames at 1 s hop
    audio_dim: int = 768
    text_dim: int = 768
    min_tokens: int = 15
    max_tokens: int = 32
    num_classes: int = 8
    signal: float = 1.0
    noise: float = 1.0
    min_window: int = 4
    max_window: int = 20


def write_split(
    root: Path,
    split: str,
    spec: SyntheticSpec,
    seed: int,
    feature: str = "clap",
    qid_offset: int = 0,
) -> Path:
    """Write ``{root}/{feature}/{vid}.npz``, ``{root}/{feature}_text/qid{qid}.npz`` (the
    Lighthouse layout, ``data.layout``) and ``{root}/{split}.jsonl``; returns the jsonl path.
    One recording per query."""
    root = Path(root)
    files = FeatureLayout(root, feature)
    rng = np.random.default_rng(seed)
    # Prototypes come from a fixed seed so every split shares the same classes.
    proto_rng = np.random.default_rng(12345)
    audio_protos = proto_rng.standard_normal((spec.num_classes, spec.audio_dim)).astype(np.float32)
    text_protos = proto_rng.standard_normal((spec.num_classes, spec.text_dim)).astype(np.float32)
    files.audio_dir.mkdir(parents=True, exist_ok=True)
    files.text_dir.mkdir(parents=True, exist_ok=True)
    lines = []
    for i in range(spec.num_queries):
        qid = qid_offset + i
        vid = f"{split}_{qid}"
        cls = int(rng.integers(spec.num_classes))
        width = int(rng.integers(spec.min_window, spec.max_window + 1))
        start = int(rng.integers(0, spec.duration - width + 1))
        audio = spec.noise * rng.standard_normal((spec.duration, spec.audio_dim)).astype(np.float32)
        audio[start : start + width] += spec.signal * audio_protos[cls]
        num_tokens = int(rng.integers(spec.min_tokens, spec.max_tokens + 1))
        noise = rng.standard_normal((num_tokens, spec.text_dim)).astype(np.float32)
        text = text_protos[cls] + 0.5 * spec.noise * noise
        np.savez(files.audio_path(vid), **{AUDIO_KEY: audio})
        np.savez(files.text_path(qid), **{TEXT_KEY: text})
        lines.append(
            {
                "qid": qid,
                "query": f"sound of class {cls}",
                "duration": spec.duration,
                "vid": vid,
                "relevant_windows": [[float(start), float(start + width)]],
            }
        )
    jsonl = root / f"{split}.jsonl"
    jsonl.write_text("\n".join(json.dumps(line) for line in lines) + "\n")
    return jsonl


def main() -> None:
    """``python -m lighthouse_audio.testing.synthetic OUT``: a toy train/val set for a quick run."""
    import argparse

    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("out", type=Path, help="features root; writes OUT/custom/{clap,clap_text}")
    parser.add_argument("--num-train", type=int, default=512)
    parser.add_argument("--num-val", type=int, default=128)
    args = parser.parse_args()
    feats = args.out / "custom"
    toy = dict(duration=30, num_classes=6, min_window=3, max_window=10, min_tokens=4, max_tokens=12)
    write_split(feats, "train", SyntheticSpec(args.num_train, **toy), seed=1)
    write_split(feats, "val", SyntheticSpec(args.num_val, **toy), seed=2, qid_offset=args.num_train)
    print(f"wrote {args.num_train} train and {args.num_val} val queries under {feats}")


if __name__ == "__main__":
    main()
