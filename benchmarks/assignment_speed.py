"""Time of the matching assignment per call: scipy per sample (the matcher's path today: cost
tensor to the host, then one ``linear_sum_assignment`` per layer and sample) against
``batched_assignment`` on the cost's own device, for N = 1..5 target columns.

    python benchmarks/assignment_speed.py --batch 32 --queries 10 --layers 2

Columns (ms per call, mean over ``--repeats`` after a warm-up that also builds the set tables):
``scipy`` returns the matcher's per-sample tensors; ``batched`` is ``batched_assignment`` alone;
``+matches`` adds ``assignment_matches`` for every layer (the same per-sample format). On CUDA
the batched timings end with one synchronisation, so they include the kernels' run time.
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Callable

import numpy as np
import torch
from scipy.optimize import linear_sum_assignment

from lighthouse_audio.models.assignment import assignment_matches, batched_assignment


def scipy_path(cost: torch.Tensor, sizes: list[int]) -> list[list[tuple[torch.Tensor, ...]]]:
    """What ``HungarianMatcher.match_layers`` does once the cost tensor exists."""
    host = cost.cpu().numpy()
    return [
        [
            tuple(
                torch.as_tensor(idx, dtype=torch.int64)
                for idx in linear_sum_assignment(layer[b, :, :n])
            )
            for b, n in enumerate(sizes)
        ]
        for layer in host
    ]


def batched_path(cost: torch.Tensor, sizes: list[int]) -> torch.Tensor:
    return batched_assignment(cost, sizes)


def batched_matches_path(cost: torch.Tensor, sizes: list[int]) -> list:
    return [assignment_matches(layer, sizes) for layer in batched_assignment(cost, sizes)]


def time_ms(
    fn: Callable[[torch.Tensor, list[int]], object],
    cost: torch.Tensor,
    sizes: list[int],
    repeats: int,
) -> float:
    device = cost.device
    fn(cost, sizes)  # warm-up: set tables, allocator, kernels
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    started = time.perf_counter()
    for _ in range(repeats):
        fn(cost, sizes)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return (time.perf_counter() - started) / repeats * 1e3


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--queries", type=int, default=10)
    parser.add_argument("--layers", type=int, default=2)
    parser.add_argument("--max-targets", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=200)
    parser.add_argument("--devices", default="cpu,cuda", help="comma-separated; cuda if present")
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: default)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    devices = [
        torch.device(d) for d in args.devices.split(",") if d != "cuda" or torch.cuda.is_available()
    ]
    rng = np.random.default_rng(0)
    print(
        f"B={args.batch} Q={args.queries} L={args.layers}, sizes 1..N per sample (one at N), "
        f"torch threads {torch.get_num_threads()}, load average {os.getloadavg()[0]:.1f} "
        f"on {os.cpu_count()} CPUs"
    )
    print(f"{'device':<8}{'N':>3}{'scipy':>10}{'batched':>10}{'+matches':>10}{'speed-up':>10}")
    for device in devices:
        name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
        for num_targets in range(1, args.max_targets + 1):
            cost = torch.from_numpy(
                rng.normal(size=(args.layers, args.batch, args.queries, num_targets))
            ).to(device=device, dtype=torch.float32)
            sizes = rng.integers(1, num_targets + 1, args.batch).tolist()
            sizes[0] = num_targets
            ms = [
                time_ms(fn, cost, sizes, args.repeats)
                for fn in (scipy_path, batched_path, batched_matches_path)
            ]
            print(
                f"{device.type:<8}{num_targets:>3}{ms[0]:>10.3f}{ms[1]:>10.3f}{ms[2]:>10.3f}"
                f"{ms[0] / ms[2]:>9.1f}x"
            )
        print(f"({device.type}: {name})")


if __name__ == "__main__":
    main()
