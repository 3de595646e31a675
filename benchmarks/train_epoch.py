"""Epoch and validation time of AM-DETR training, the plain path against the fast path.

Clotho-Moment-shaped synthetic data held in memory (no disk: 32,694 training and 4,918
validation queries by default, 60 frames of 768-d audio each, 15-32 tokens of 768-d text, one
window of 4-20 s), fed through the trainer's own pieces: ``engine.batches.EpochData`` (the plain
``DataLoader`` or the device-resident split), ``engine.train.train_one_epoch`` and the
validation pass (``engine.validation.predict`` + the standalone evaluator), at Clotho-Moment's
config (batch 32, lr 1e-4).

    python benchmarks/train_epoch.py --device cuda                      # every variant
    python benchmarks/train_epoch.py --device cpu --num-train 512 --num-val 256 --variants fast
    python benchmarks/train_epoch.py --device cpu --models moment_detr cg_detr --variants plain

Variants: ``plain`` (Lighthouse's way: DataLoader + collate + scipy matching on the host),
``fast`` (``resident_data=true assignment=device``), ``fast-static`` (+ ``static_shapes``),
``fast-compile`` (+ ``static_shapes compile_model``), ``fast-bf16`` (+ ``amp=bf16``, which changes
results slightly). For each: milliseconds per training step (median over the timed epoch's
steps is not available without syncs, so: epoch seconds / steps), one training epoch, one
validation pass, the epoch scaled to Clotho-Moment's 32,694 queries (when fewer were timed) and
100 such epochs + validation, and the ratio to Lighthouse's 88 s epoch on an H200 (QD-DETR's).
``--models`` times any registered model the same way; a variant a model refuses (e.g.
``static_shapes`` for models whose outputs depend on the padded length) is reported as refused.
"""

from __future__ import annotations

import argparse
import itertools
import json
import time
from pathlib import Path

import numpy as np
import torch

from lighthouse_audio.config import load_config
from lighthouse_audio.data.annotations import MomentQuery
from lighthouse_audio.data.dataset import MomentDataset
from lighthouse_audio.data.feature_store import FeatureStore, l2_normalize_rows
from lighthouse_audio.data.layout import text_name
from lighthouse_audio.engine.batches import EpochData
from lighthouse_audio.engine.distributed import Distributed
from lighthouse_audio.engine.train import AMP_DTYPES, seed_everything, train_one_epoch
from lighthouse_audio.engine.validation import predict
from lighthouse_audio.evaluation.metrics import eval_submission
from lighthouse_audio.models.bundle import build_model_bundle
from lighthouse_audio.registry import MODELS

VARIANTS = {
    "plain": [],
    "fast": ["resident_data=true", "assignment=device"],
    "fast-static": ["resident_data=true", "assignment=device", "static_shapes=true"],
    "fast-compile": [
        "resident_data=true",
        "assignment=device",
        "static_shapes=true",
        "compile_model=true",
    ],  # fmt: skip
    "fast-bf16": ["resident_data=true", "assignment=device", "amp=bf16"],
}
LIGHTHOUSE_H200_EPOCH_S = 88.0  # Lighthouse's own train.py, full Clotho-Moment, one H200 (issue)
CLOTHO_MOMENT_TRAIN_QUERIES = 32694


def in_memory_split(
    num: int, seed: int, offset: int, frames: int, dim: int, opt, windows: tuple[int, int] = (1, 1)
) -> MomentDataset:
    """A ``MomentDataset`` over feature stores filled in memory (what the stores would read),
    ``windows`` (least, most) disjoint windows per query, on a 4 s grid."""
    rng = np.random.default_rng(seed)
    audio = FeatureStore("/nonexistent", "features", max_len=opt.max_a_l, dim=dim)
    text = FeatureStore("/nonexistent", "last_hidden_state", max_len=opt.max_q_l, dim=dim)
    queries = []
    for i in range(num):
        qid, vid = offset + i, f"v{offset + i}"
        count = int(rng.integers(windows[0], windows[1] + 1))
        edges = np.sort(rng.choice(np.arange(0, frames + 1, 4), 2 * count, replace=False))
        window = [[int(a), int(b)] for a, b in edges.reshape(-1, 2)]
        tokens = int(rng.integers(15, 33))
        audio._arrays[vid] = l2_normalize_rows(rng.standard_normal((frames, dim), np.float32))
        text._arrays[text_name(qid)] = l2_normalize_rows(
            rng.standard_normal((tokens, dim), np.float32)
        )
        queries.append(MomentQuery(qid, f"query {qid}", float(frames), vid, window))
    return MomentDataset(queries, audio, text, max_q_l=opt.max_q_l, max_v_l=opt.max_v_l,
                         max_a_l=opt.max_a_l, max_windows=opt.max_windows,
                         clip_length=opt.clip_length)  # fmt: skip


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def measure(model_name: str, variant: str, args, device: torch.device, train_set, val_set) -> dict:
    overrides = [*VARIANTS[variant], *args.overrides]
    opt = load_config(model_name, "clotho-moment", "clap", overrides)
    seed_everything(0)
    model, criterion, postprocessor = build_model_bundle(opt)
    model.to(device)
    criterion.to(device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=opt.lr, weight_decay=opt.wd)
    world = Distributed()
    t0 = time.perf_counter()
    train_data = EpochData(train_set, opt, device, world)
    val_data = EpochData(val_set, opt, device, world)
    sync(device)
    setup_s = time.perf_counter() - t0
    step_model = torch.compile(model) if opt.compile_model else model
    amp = AMP_DTYPES[opt.amp]
    ground_truth = [q.to_dict() for q in val_set.queries]

    def epoch(seed: int) -> float:
        sync(device)
        start = time.perf_counter()
        train_one_epoch(step_model, criterion, train_data.training(opt.bsz, seed), optimizer,
                        device, opt.grad_clip, progress=False, amp_dtype=amp)  # fmt: skip
        sync(device)
        return time.perf_counter() - start

    def validation() -> float:
        sync(device)
        start = time.perf_counter()
        batches, _ = val_data.evaluation(opt.eval_bsz)
        with torch.autocast(device.type, dtype=amp, enabled=amp is not None):
            predictions = predict(model, batches, postprocessor, device, progress=False)
        eval_submission(predictions, ground_truth)
        return time.perf_counter() - start

    warm = epoch(0)  # compilation, caches, the allocator
    epochs = [epoch(1 + i) for i in range(args.epochs)]
    validation()
    val_s = min(validation() for _ in range(2))
    epoch_s = float(np.median(epochs))
    steps = -(-len(train_set) // opt.bsz)
    full_epoch_s = epoch_s * CLOTHO_MOMENT_TRAIN_QUERIES / len(train_set)
    return {
        "model": model_name,
        "variant": variant,
        "setup_s": round(setup_s, 2),
        "first_epoch_s": round(warm, 2),
        "epoch_s": round(epoch_s, 2),
        "ms_per_step": round(1000 * epoch_s / steps, 2),
        "val_pass_s": round(val_s, 3),
        "epoch_s_at_full_size": round(full_epoch_s, 2),
        "hundred_epochs_with_val_min": round(100 * (full_epoch_s + val_s) / 60, 1),
        "vs_lighthouse_h200_epoch": round(LIGHTHOUSE_H200_EPOCH_S / full_epoch_s, 1),
        "peak_gpu_memory_gb": (
            round(torch.cuda.max_memory_allocated(device) / 1e9, 2)
            if device.type == "cuda"
            else None
        ),  # fmt: skip
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--num-train", type=int, default=32694)
    parser.add_argument("--num-val", type=int, default=4918)
    parser.add_argument("--epochs", type=int, default=2, help="timed epochs after a warm-up one")
    parser.add_argument("--models", nargs="+", default=["qd_detr"], choices=MODELS.names())
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    parser.add_argument("--threads", type=int, default=0)
    parser.add_argument("--tf32", action="store_true",
                        help="TF32 matmuls on CUDA (faster, changes results slightly)")  # fmt: skip
    parser.add_argument("--json", type=Path, help="write the results here")
    parser.add_argument("overrides", nargs="*", metavar="key=value", help="config overrides")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = args.tf32  # off: float32 as the CPU computes it
    opt = load_config("qd_detr", "clotho-moment", "clap", list(args.overrides))
    train_set = in_memory_split(args.num_train, 1, 0, 60, 768, opt)
    val_set = in_memory_split(args.num_val, 2, args.num_train, 60, 768, opt)
    rows = []
    for model_name, variant in itertools.product(args.models, args.variants):
        try:
            row = measure(model_name, variant, args, device, train_set, val_set)
        except ValueError as refusal:  # a setting this model does not take
            row = {"model": model_name, "variant": variant, "refused": str(refusal)}
        print(json.dumps(row), flush=True)
        rows.append(row)
    result = {"device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
              "torch": torch.__version__, "tf32": args.tf32, "num_train": args.num_train,
              "num_val": args.num_val, "rows": rows}  # fmt: skip
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
