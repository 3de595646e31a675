"""Where a training run's batches come from: the plain loader or the device-resident split.

The loop asks for one thing per epoch, an iterable of ``(metas, model_inputs, targets)``; this
module decides how it is made. ``resident_data`` (config) keeps the split on the device
(``data.device_split``); otherwise items go through ``MomentDataset`` and a ``DataLoader``, as in
Lighthouse. Under data parallelism each rank takes every N-th query of one shared permutation,
which both paths draw exactly as a shuffled ``DataLoader`` does.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader

from lighthouse_audio.data.collate import collate
from lighthouse_audio.data.dataset import MomentDataset
from lighthouse_audio.data.device_split import DeviceBatches, DeviceSplit, epoch_order, shard
from lighthouse_audio.data.loaders import build_loader
from lighthouse_audio.engine.distributed import Distributed

__all__ = ["EpochData", "FEATURE_DTYPES"]

FEATURE_DTYPES = {"float32": torch.float32, "float16": torch.float16}
Batch = tuple[list[dict], dict[str, torch.Tensor], dict[str, Any] | None]


class EpochData:
    """A split and how to batch it for this run (one per split: train, val)."""

    def __init__(
        self,
        dataset: MomentDataset,
        opt: Mapping[str, Any],
        device: torch.device,
        world: Distributed,
        num_workers: int = 0,
    ) -> None:
        self.dataset, self.device, self.world, self.num_workers = (
            dataset,
            device,
            world,
            num_workers,
        )
        self.split: DeviceSplit | None = None
        if opt.get("resident_data"):
            self.split = DeviceSplit.from_dataset(
                dataset, device, FEATURE_DTYPES[str(opt.get("feature_dtype", "float32"))],
                static_shapes=bool(opt.get("static_shapes")),
            )  # fmt: skip

    def __len__(self) -> int:
        return len(self.dataset)

    def training(self, batch_size: int, seed: int) -> Iterable[Batch]:
        """One epoch, shuffled by ``seed`` (this rank's share under data parallelism)."""
        order = torch.Generator().manual_seed(seed)
        if self.split is None and not self.world.enabled:  # Lighthouse's loader, unchanged
            return build_loader(self.dataset, batch_size, shuffle=True,
                                num_workers=self.num_workers, generator=order)  # fmt: skip
        indices = epoch_order(len(self.dataset), True, order)
        indices = shard(indices, self.world.rank, self.world.world_size)
        if self.split is None:
            return self._loader(batch_size, indices.tolist())
        # The targets' random parts are drawn on the device, from a seed of each rank's own
        # (the permutation above is shared by all ranks).
        targets = torch.Generator(device=self.device)
        targets.manual_seed(seed * self.world.world_size + self.world.rank)
        return DeviceBatches(self.split, batch_size, indices, targets)

    def evaluation(self, batch_size: int) -> tuple[Iterable[Batch], list[int]]:
        """The split in order (this rank's every N-th query) and those queries' positions."""
        positions = list(range(self.world.rank, len(self.dataset), self.world.world_size))
        if self.split is not None:
            return DeviceBatches(self.split, batch_size, np.asarray(positions)), positions
        if not self.world.enabled:
            return build_loader(self.dataset, batch_size, shuffle=False,
                                num_workers=self.num_workers), positions  # fmt: skip
        return self._loader(batch_size, positions), positions

    def _loader(self, batch_size: int, indices: list[int]) -> DataLoader:
        return DataLoader(self.dataset, batch_size=batch_size, sampler=indices,
                          num_workers=self.num_workers, collate_fn=collate)  # fmt: skip
