"""AdamW's step on AM-DETR's parameters: torch's default per-tensor loop against the fused kernel.

Builds QD-DETR with the given config (default: Lighthouse's Clotho-Moment CLAP config; the demo
trains the same model on 512-d audio and 384-d text), gives every parameter a random gradient and
times optimizer steps of the two implementations interleaved, round by round, so both see the
same load. Also checks that both land on the same weights (float rounding apart).

    python benchmarks/optimizer_step.py
    python benchmarks/optimizer_step.py --threads 1 --rounds 5 --steps 20
"""

from __future__ import annotations

import argparse
import copy
import statistics
import time

import torch

from lighthouse_audio.config import load_config
from lighthouse_audio.engine.optimizer import build_optimizer
from lighthouse_audio.models.bundle import build_model_bundle


def time_steps(optimizer: torch.optim.Optimizer, steps: int) -> float:
    started = time.perf_counter()
    for _ in range(steps):
        optimizer.step()
    return (time.perf_counter() - started) / steps * 1e3


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--steps", type=int, default=30, help="optimizer steps per round")
    parser.add_argument("overrides", nargs="*", help="key=value for the model config")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)

    opt = load_config("qd_detr", "clotho-moment", "clap", args.overrides)
    model = build_model_bundle(opt)[0]
    device = torch.device("cpu")
    grads = [torch.randn_like(p) * 1e-3 for p in model.parameters() if p.requires_grad]
    copies, optimizers = {}, {}
    for name, fused in (("per-tensor loop", False), ("fused", True)):
        copies[name] = copy.deepcopy(model)
        params = [p for p in copies[name].parameters() if p.requires_grad]
        for p, grad in zip(params, grads, strict=True):
            p.grad = grad.clone()
        optimizers[name] = build_optimizer(params, {**opt, "fused_adamw": fused}, device)
        time_steps(optimizers[name], 3)  # warm-up: the state is created on the first step
    count = sum(p.numel() for p in model.parameters() if p.requires_grad)
    tensors = sum(1 for p in model.parameters() if p.requires_grad)
    print(f"QD-DETR: {count:,} trainable parameters in {tensors} tensors, {args.threads} threads")

    times: dict[str, list[float]] = {name: [] for name in optimizers}
    for _ in range(args.rounds):
        for name, optimizer in optimizers.items():
            times[name].append(time_steps(optimizer, args.steps))
    medians = {name: statistics.median(values) for name, values in times.items()}
    for name, values in times.items():
        spread = f"{min(values):.1f}-{max(values):.1f}"
        print(f"{name:>16}: {medians[name]:6.1f} ms / step (median of {args.rounds}; {spread})")
    print(f"fused: {medians['per-tensor loop'] / medians['fused']:.2f}x faster")

    looped, fused = (list(copies[n].parameters()) for n in ("per-tensor loop", "fused"))
    gap = max((a - b).abs().max().item() for a, b in zip(looped, fused, strict=True))
    steps = 3 + args.rounds * args.steps
    print(f"largest weight difference after {steps} identical steps: {gap:.2e}")


if __name__ == "__main__":
    main()
