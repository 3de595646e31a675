"""Training and evaluation throughput of AM-DETR (QD-DETR) on Clotho-Moment-shaped features.

Writes synthetic features in Lighthouse's layout once (cached), then times real training steps
through the same loader, collate, model, criterion and optimizer the trainer uses, split into:
data (loader + collation + host->device), matching (Hungarian matcher inside the criterion) and
the model step (forward, losses, backward, clip, optimizer).

    python benchmarks/train_throughput.py                 # CPU, full-size train set
    python benchmarks/train_throughput.py --num-train 2048 --steps 30
    python benchmarks/train_throughput.py --device cuda
    python benchmarks/train_throughput.py --num-train 2048 --steps 20 --joint-prior
    python benchmarks/train_throughput.py --num-train 2048 --steps 20 neg_label_loss_coef=4

``--joint-prior`` adds AM-DETR's joint-space prior (``joint_prior=FILE``) with heads of the shape
``lighthouse align`` makes (MLP 768 -> 256 -> 128, random weights: the cost does not depend on
them), to measure what it adds to a step.

Reference (Lighthouse's own train.py on 2 CPU cores, batch 32): 0.83 s per iteration, of which
0.78 s is the model step itself. That host is not this one, so ``--compare`` also times, on the
same machine and interleaved step by step, the model computed Lighthouse's way (torch's
dropout, the negative-text pass as a second transformer pass): same weights, same results.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from lighthouse_audio.config import load_config
from lighthouse_audio.data.collate import move_to_device
from lighthouse_audio.data.loaders import build_dataset, build_feature_stores, build_loader
from lighthouse_audio.engine.validation import predict
from lighthouse_audio.models.bundle import build_model_bundle
from lighthouse_audio.testing.synthetic import SyntheticSpec, write_split

LIGHTHOUSE_STEP_S = 0.83
LIGHTHOUSE_MODEL_STEP_S = 0.78


def ensure_features(cache: Path, num_train: int, num_val: int) -> tuple[Path, Path]:
    root = cache / f"clotho-moment-shaped-{num_train}-{num_val}"
    done = root / "DONE"
    if not done.exists():
        print(f"writing synthetic features to {root} (once)")
        write_split(root / "features" / "clotho-moment", "train", SyntheticSpec(num_train), seed=1)
        write_split(
            root / "features" / "clotho-moment", "val", SyntheticSpec(num_val), seed=2,
            qid_offset=num_train,
        )  # fmt: skip
        done.touch()
    base = root / "features" / "clotho-moment"
    return base / "train.jsonl", base / "val.jsonl"


def ensure_joint_space(cache: Path) -> Path:
    """A random input-normalised ``clap`` joint space with align's default head shapes."""
    from lighthouse_audio.align.train import HeadsConfig, head_specs
    from lighthouse_audio.joint.space import JointSpace, build_head, save_joint_space

    path = cache / "joint-prior-clap-random.pt"
    if not path.is_file():
        torch.manual_seed(0)
        specs = head_specs(HeadsConfig(), 768, 768)
        space = JointSpace("clap", build_head(specs["audio"]), build_head(specs["text"]), "mean",
                           specs, input_norm=True)  # fmt: skip
        save_joint_space(path, space)
    return path


class TimedMatcher(torch.nn.Module):
    """Wraps the criterion's matcher to accumulate its wall time."""

    def __init__(self, matcher: torch.nn.Module) -> None:
        super().__init__()
        self.matcher = matcher
        self.seconds = 0.0

    def forward(self, *args, **kwargs):
        t0 = time.perf_counter()
        result = self.matcher(*args, **kwargs)
        self.seconds += time.perf_counter() - t0
        return result


@contextlib.contextmanager
def lighthouse_style(model: torch.nn.Module):
    """Compute the step as Lighthouse does: torch's dropout, two transformer passes."""
    from lighthouse_audio.models import transformer

    fast_dropout, batched = transformer.dropout, model.batched_negative
    transformer.dropout = lambda x, p, training=True: F.dropout(x, p, training)
    model.batched_negative = False
    try:
        yield
    finally:
        transformer.dropout, model.batched_negative = fast_dropout, batched


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--num-train", type=int, default=32694)
    parser.add_argument("--num-val", type=int, default=512)
    parser.add_argument("--steps", type=int, default=40, help="timed training steps")
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch default)")
    parser.add_argument("--cache", type=Path, default=Path(__file__).parent / ".cache")
    parser.add_argument("--json", type=Path, help="write the results here")
    parser.add_argument(
        "--compare", action="store_true", help="also time Lighthouse's way of computing the step"
    )
    parser.add_argument("--joint-prior", action="store_true", help="with the joint-space prior")
    parser.add_argument("overrides", nargs="*", metavar="key=value",
                        help="config overrides, e.g. neg_label_loss_coef=4")  # fmt: skip
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)

    train_path, val_path = ensure_features(args.cache, args.num_train, args.num_val)
    features_root = train_path.parents[1]
    overrides = [f"features_root={features_root}", f"train_path={train_path}",
                 f"eval_path={val_path}"]  # fmt: skip
    if args.joint_prior:
        overrides.append(f"joint_prior={ensure_joint_space(args.cache)}")
    overrides += args.overrides
    opt = load_config("qd_detr", "clotho-moment", "clap", overrides)
    torch.manual_seed(0)
    model, criterion, postprocessor = build_model_bundle(opt)
    model.to(device)
    criterion.to(device)
    criterion.matcher = timed = TimedMatcher(criterion.matcher)
    params = [p for p in model.parameters() if p.requires_grad]  # as the trainer: prior frozen
    optimizer = torch.optim.AdamW(params, lr=opt.lr, weight_decay=opt.wd)
    stores = build_feature_stores(opt)
    train_set = build_dataset(opt, train_path, stores)
    loader = build_loader(
        train_set, opt.bsz, shuffle=True, generator=torch.Generator().manual_seed(0)
    )

    model.train()
    batches = iter(loader)

    def train_step() -> tuple[float, float]:
        """One real step; returns (data seconds, model seconds incl. matching)."""
        t0 = time.perf_counter()
        _, inputs, targets = next(batches)
        inputs, targets = move_to_device(inputs, targets, device)
        sync(device)
        t1 = time.perf_counter()
        outputs = model(**inputs)
        loss_dict = criterion(outputs, targets)
        weights = criterion.weight_dict
        loss = sum(loss_dict[k] * weights[k] for k in loss_dict if k in weights)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), opt.grad_clip)
        optimizer.step()
        sync(device)
        return t1 - t0, time.perf_counter() - t1

    for _ in range(args.warmup):
        train_step()
    data_s = model_s = reference_s = 0.0
    matcher_before = timed.seconds
    for _ in range(args.steps):
        d, m = train_step()
        data_s, model_s = data_s + d, model_s + m
        if args.compare:  # interleaved, so both see the same machine load
            with lighthouse_style(model):
                reference_s += sum(train_step())
    matcher_s = timed.seconds - matcher_before
    if args.compare:  # the reference steps ran the matcher too
        matcher_s /= 2
    step_s = (data_s + model_s) / args.steps

    val_set = build_dataset(opt, val_path, stores)
    val_loader = build_loader(val_set, opt.eval_bsz, shuffle=False)
    predict(model, val_loader, postprocessor, device, progress=False)  # warm the store
    t0 = time.perf_counter()
    predict(model, val_loader, postprocessor, device, progress=False)
    sync(device)
    eval_s = time.perf_counter() - t0

    results = {
        "device": str(device),
        "torch_threads": torch.get_num_threads(),
        "batch_size": opt.bsz,
        "joint_prior": args.joint_prior,
        "num_train": args.num_train,
        "steps": args.steps,
        "ms_per_step": 1000 * step_s,
        "ms_per_model_step_incl_matching": 1000 * model_s / args.steps,
        "ms_data_per_step": 1000 * data_s / args.steps,
        "ms_matching_per_step": 1000 * matcher_s / args.steps,
        "share_outside_model": (data_s + matcher_s) / (data_s + model_s),
        "train_queries_per_s": opt.bsz / step_s,
        "eval_queries_per_s": len(val_set) / eval_s,
        "speedup_vs_lighthouse_reported_0.83s": LIGHTHOUSE_STEP_S / step_s,
    }
    if args.compare:
        results["ms_per_step_lighthouse_way_same_machine"] = 1000 * reference_s / args.steps
        results["speedup_vs_lighthouse_way_same_machine"] = reference_s / (data_s + model_s)
    print(json.dumps(results, indent=2))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
