"""Data-parallel training: ``torchrun --nproc_per_node N -m lighthouse_audio.train ...``.

torchrun starts N copies of the trainer and tells each its place through the environment
(``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``). Every process builds the same model from the same
seed, reads the whole split, and trains on every N-th query of the epoch's shared permutation;
``DistributedDataParallel`` averages the gradients, so the ranks stay identical. What must happen
once happens on rank 0 only (claiming the run folder, logs, checkpoints, printing), and what all
ranks must agree on (the run folder, validation metrics) is shared:

- effective batch: ``N * bsz`` queries per optimizer step. The learning rate is used as given;
  the linear scaling rule (``lr * N``, from the single-process run's ``lr`` at ``bsz``) is the
  usual starting point when a run is moved to more processes.
- validation: each rank predicts every N-th query of the split, predictions are gathered to
  every rank and scored there in the split's order, so all ranks hold the same metrics (and take
  the same early-stopping decision) and they equal a single-process evaluation.
- resume: every rank loads the same ``last.ckpt``.

NCCL on CUDA (each rank on ``cuda:LOCAL_RANK``), gloo on the CPU (how the tests run it).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import torch
import torch.distributed as dist

__all__ = ["Distributed", "current"]

T = TypeVar("T")


@dataclass(frozen=True)
class Distributed:
    """Where this process stands: ``rank`` of ``world_size``, ``local_rank`` on its machine."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def device(self, requested: torch.device) -> torch.device:
        """One GPU per rank (``cuda:LOCAL_RANK``); the CPU stays the CPU."""
        if self.enabled and requested.type == "cuda":
            return torch.device("cuda", self.local_rank)
        return requested

    def start(self, device: torch.device) -> None:
        """Join the process group (once); nothing to do in a single process."""
        if not self.enabled or dist.is_initialized():
            return
        if device.type == "cuda":
            torch.cuda.set_device(device)
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")

    def share(self, value: T) -> T:
        """Rank 0's ``value`` on every rank (e.g. the run folder it claimed)."""
        if not self.enabled:
            return value
        box = [value]
        dist.broadcast_object_list(box, src=0)
        return box[0]

    def gather_in_order(self, items: Sequence[T], positions: Sequence[int]) -> list[T]:
        """Every rank's ``items`` on every rank, sorted by their ``positions`` in the split."""
        if not self.enabled:
            return [item for _, item in sorted(zip(positions, items, strict=True))]
        parts: list[Any] = [None] * self.world_size
        dist.all_gather_object(parts, list(zip(positions, items, strict=True)))
        return [item for _, item in sorted(pair for part in parts for pair in part)]

    def sum(self, values: torch.Tensor) -> torch.Tensor:
        """Elementwise sum of ``values`` over the ranks."""
        if self.enabled:
            values = values.clone()
            dist.all_reduce(values)
        return values

    def wrap(self, model: torch.nn.Module, device: torch.device) -> torch.nn.Module:
        """The model as the training step should call it: DDP across ranks, else itself."""
        if not self.enabled:
            return model
        from torch.nn.parallel import DistributedDataParallel

        # Lighthouse's QD-DETR builds parameters it never uses (the text position table), kept
        # for checkpoint compatibility: DDP must be told to expect them.
        ids = [device.index] if device.type == "cuda" else None
        return DistributedDataParallel(model, device_ids=ids, find_unused_parameters=True)

    def on_main(self, action: Callable[[], T]) -> T | None:
        return action() if self.is_main else None


def current() -> Distributed:
    """This process's place, from torchrun's environment (a single process without it)."""
    env = os.environ
    world_size = int(env.get("WORLD_SIZE", "1"))
    if world_size <= 1:
        return Distributed()
    return Distributed(int(env["RANK"]), world_size, int(env.get("LOCAL_RANK", env["RANK"])))
