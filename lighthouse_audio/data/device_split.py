"""A split held on the training device, batched there by index: the fast path's data.

The plain path (``MomentDataset`` + ``DataLoader`` + ``collate``) builds every item in Python on
the host, every epoch, and copies each batch to the device. Here a split's features are read
once (through the same ``FeatureStore``, so the same L2-normalised rows), padded into a few
tensors on the device, and a batch is a handful of gathers there:

- model inputs as ``collate`` makes them (same keys, values and masks), padded to the longest
  item of the batch (lengths are kept on the host, so this needs no device sync) or, with
  ``static_shapes``, always to the model's span and ``max_q_l`` (one shape for CUDA graphs and
  ``torch.compile``; padding is masked everywhere, so the outputs agree to rounding);
- targets drawn from the same distribution as ``data.targets`` draws them, with torch's
  generator on the device instead of Python's ``random``: a query with more than ``max_windows``
  windows keeps a uniformly random ``max_windows`` of them in random order (Lighthouse shuffles
  the list in place, so each visit sees a uniformly random order), the first of which drives
  the saliency labels; the two positive frames are an ordered pair of distinct frames drawn
  uniformly from the window (or the single frame twice), the two negative frames likewise from
  the frames outside it (or the positive pair when fewer than two lie outside).

Spans (normalised centre, width) and the saliency frame range of every window depend only on the
query, so they are computed once with the plain path's own functions; per batch only the random
choices remain.

Memory: Clotho-Moment's train split (32,694 queries, 75 x 768 audio frames, 32 x 768 text
tokens) takes about 9 GB in float32; ``dtype=torch.float16`` halves it (inputs are cast back to
float32 per batch).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor

from lighthouse_audio.data.dataset import MomentDataset
from lighthouse_audio.data.targets import (
    positive_frame_range,
    saliency_frame_range,
    span_targets,
)

__all__ = ["DeviceBatches", "DeviceSplit", "SplitArrays", "epoch_order", "shard"]

SALIENCY_PAIRS = 2  # Lighthouse's max_n: two positive and two negative frames per query


@dataclass
class SplitArrays:
    """A split as host arrays, what :class:`DeviceSplit` moves to the device (``N`` queries,
    ``V`` recordings, ``S`` frames, ``T`` tokens, ``W`` windows at most per query):

    audio ``[V, S, Da]`` and text ``[N, T, Dt]`` features, zero past each item's length;
    audio_length ``[V]`` and text_length ``[N]``, the frames and tokens the model reads;
    vid_index ``[N]``, the row of ``audio`` of each query; with labels, spans ``[N, W, 2]`` (the
    normalised centre and width of every window, as ``span_targets`` computes them),
    frame_range ``[N, W, 2]`` (every window's first and last saliency frame), pos_range
    ``[N, W, 2]`` (the frames ``src_pos_mask`` marks for it, end exclusive) and num_windows.
    """

    queries: list[dict]
    audio: Tensor
    audio_length: np.ndarray
    text: Tensor
    text_length: np.ndarray
    vid_index: np.ndarray
    max_windows: int
    spans: Tensor | None = None
    frame_range: Tensor | None = None
    pos_range: Tensor | None = None
    num_windows: np.ndarray | None = None

    @classmethod
    def from_dataset(cls, dataset: MomentDataset, dtype: torch.dtype) -> SplitArrays:
        """Everything ``dataset`` would give item by item, read once through its stores."""
        limits = dataset.limits
        vids = list(dict.fromkeys(q.vid for q in dataset.queries))
        row = {vid: i for i, vid in enumerate(vids)}
        audio = [dataset.audio_store.get(vid) for vid in vids]
        text = [dataset.text_store.get(dataset.text_name(q)) for q in dataset.queries]
        audio_length = np.array([limits.context_length(len(a)) for a in audio], dtype=np.int64)
        text_length = np.array([min(len(t), limits.max_q_l) for t in text], dtype=np.int64)
        frames = int(limits.span or audio_length.max())
        arrays = cls(
            queries=[q.to_dict() for q in dataset.queries],
            audio=_padded(
                [a[:n] for a, n in zip(audio, audio_length, strict=True)], frames, dtype
            ),  # fmt: skip
            audio_length=audio_length,
            text=_padded(
                [t[:n] for t, n in zip(text, text_length, strict=True)], limits.max_q_l, dtype
            ),  # fmt: skip
            text_length=text_length,
            vid_index=np.array([row[q.vid] for q in dataset.queries], dtype=np.int64),
            max_windows=dataset.max_windows,
        )
        if not dataset.load_labels:
            return arrays
        windows = [q.relevant_windows or [] for q in dataset.queries]
        ctx = audio_length[arrays.vid_index]
        arrays.num_windows = np.array([len(w) for w in windows], dtype=np.int64)
        most = int(arrays.num_windows.max())
        arrays.spans = torch.zeros(len(windows), most, 2)
        arrays.frame_range = torch.zeros(len(windows), most, 2, dtype=torch.int64)
        arrays.pos_range = torch.zeros(len(windows), most, 2, dtype=torch.int64)
        for i, (w, ctx_l) in enumerate(zip(windows, ctx, strict=True)):
            # the plain path's own arithmetic, one window at a time (no shuffle: <= 1 kept)
            for j, window in enumerate(w):
                clip = dataset.clip_length
                arrays.spans[i, j] = span_targets([list(window)], int(ctx_l), clip, 1)
                # saliency frames may use another clip length (CG-DETR: duration / frames)
                saliency_clip = dataset.saliency_clip_length(dataset.queries[i], int(ctx_l))
                arrays.frame_range[i, j] = torch.tensor(
                    saliency_frame_range(window, int(ctx_l), saliency_clip)
                )
                arrays.pos_range[i, j] = torch.tensor(
                    positive_frame_range(window, int(ctx_l), clip)
                )
        return arrays


class DeviceSplit:
    """A split's :class:`SplitArrays` on the device; ``batch(indices)`` builds a batch.
    ``static_shapes`` pads every batch to the span and ``max_q_l`` (the arrays' widths)."""

    def __init__(
        self, arrays: SplitArrays, device: torch.device | str, static_shapes: bool = False
    ) -> None:
        self.device = torch.device(device)
        self.queries = arrays.queries
        self.max_windows = arrays.max_windows
        self.static_shapes = static_shapes
        self.has_labels = arrays.spans is not None
        self.audio_length, self.text_length = arrays.audio_length, arrays.text_length
        self.frames, self.tokens = arrays.audio.shape[1], arrays.text.shape[1]
        self.audio = arrays.audio.to(self.device)
        self.text = arrays.text.to(self.device)
        self.vid_index_host = arrays.vid_index
        self.vid_index = torch.from_numpy(arrays.vid_index).to(self.device)
        self.audio_length_device = torch.from_numpy(arrays.audio_length).to(self.device)
        self.text_length_device = torch.from_numpy(arrays.text_length).to(self.device)
        if self.has_labels:
            self.num_windows = arrays.num_windows
            self.spans = arrays.spans.to(self.device)
            self.frame_range = arrays.frame_range.to(self.device)
            self.pos_range = arrays.pos_range.to(self.device)
            self.num_windows_device = torch.from_numpy(self.num_windows).to(self.device)

    @classmethod
    def from_dataset(
        cls,
        dataset: MomentDataset,
        device: torch.device | str,
        dtype: torch.dtype = torch.float32,
        static_shapes: bool = False,
    ) -> DeviceSplit:
        return cls(SplitArrays.from_dataset(dataset, dtype), device, static_shapes)

    def __len__(self) -> int:
        return len(self.queries)

    def batch(
        self,
        indices: Sequence[int] | np.ndarray,
        generator: torch.Generator | None = None,
        device_indices: Tensor | None = None,
    ) -> tuple[list[dict], dict[str, Tensor], dict[str, Any] | None]:
        """``(metas, model_inputs, targets)`` for these queries, as ``collate`` lays them out,
        already on the device. ``generator`` (on the device) draws the targets' random parts;
        ``device_indices``, the same indices already on the device, spares a copy per batch.
        Shapes come from the host's copy of the lengths: nothing waits for the device."""
        host_index = np.asarray(indices, dtype=np.int64)
        index = device_indices
        if index is None:
            index = torch.from_numpy(host_index).to(self.device)
        vid_host = self.vid_index_host[host_index]
        frames = self.frames if self.static_shapes else int(self.audio_length[vid_host].max())
        tokens = self.tokens if self.static_shapes else int(self.text_length[host_index].max())

        vid = self.vid_index[index]
        frame_count = self.audio_length_device[vid]
        token_count = self.text_length_device[index]
        positions = torch.arange(frames, device=self.device)
        vid_mask = (positions < frame_count[:, None]).float()
        txt_mask = (torch.arange(tokens, device=self.device) < token_count[:, None]).float()
        inputs = {
            "src_txt": self.text[index, :tokens].float(),
            "src_txt_mask": txt_mask,
            "src_vid": endpoint_features(frame_count, frames) * vid_mask[..., None],
            "src_vid_mask": vid_mask,
            "src_aud": self.audio[vid, :frames].float(),
            "src_aud_mask": vid_mask,
        }
        metas = [self.queries[i] for i in host_index]
        if not self.has_labels:
            return metas, inputs, None
        return metas, inputs, self._targets(index, host_index, frame_count, frames, generator)

    def _targets(
        self,
        index: Tensor,
        host_index: np.ndarray,
        frame_count: Tensor,
        frames: int,
        generator: torch.Generator | None,
    ) -> dict[str, Any]:
        counts = self.num_windows[host_index]
        kept = np.minimum(counts, self.max_windows)
        width = int(kept.max())
        spans, ranges = self.spans[index], self.frame_range[index]  # [B, W, 2]
        pos_ranges = self.pos_range[index]  # [B, W, 2]
        if (counts > self.max_windows).any():  # a random max_windows of them, in random order
            count = self.num_windows_device[index]
            keys = torch.rand(spans.shape[:2], device=self.device, generator=generator)
            columns = torch.arange(spans.shape[1], device=self.device)
            # queries within the limit keep their order: keys that sort as the columns do
            keys = torch.where((count > self.max_windows)[:, None], keys, columns / spans.shape[1])
            order = keys.masked_fill(columns >= count[:, None], 2.0).argsort(dim=1)
            spans = spans.gather(1, order[..., None].expand(-1, -1, 2))
            ranges = ranges.gather(1, order[..., None].expand(-1, -1, 2))
            pos_ranges = pos_ranges.gather(1, order[..., None].expand(-1, -1, 2))
        spans = spans[:, :width]
        start, end = ranges[:, 0, 0], ranges[:, 0, 1]  # the first (kept) window's frames

        positions = torch.arange(frames, device=self.device)
        inside = (positions >= start[:, None]) & (positions <= end[:, None])
        outside = ~inside & (positions < frame_count[:, None])
        pos = _distinct_pair(inside, generator)
        pos = torch.where((start == end)[:, None], start[:, None].expand(-1, 2), pos)
        neg = _distinct_pair(outside, generator)
        neg = torch.where((outside.sum(1) >= SALIENCY_PAIRS)[:, None], neg, pos)
        return {
            "span_labels": [{"spans": spans[i, :n]} for i, n in enumerate(kept)],
            "span_padded": spans,
            "span_sizes": kept.tolist(),
            "saliency_pos_labels": pos,
            "saliency_neg_labels": neg,
            "saliency_all_labels": inside.float(),
            # TR-DETR's CTC target (data.targets.positive_frame_mask), from the same window
            "src_pos_mask": (
                (positions >= pos_ranges[:, 0, :1]) & (positions < pos_ranges[:, 0, 1:])
            ).float(),
        }


class DeviceBatches:
    """Batches of a :class:`DeviceSplit` in a given ``order`` (indices), yielding what a
    ``DataLoader`` over ``collate`` yields; ``target_generator`` draws the targets' random
    parts. :func:`epoch_order` gives a shuffled ``DataLoader``'s order, :func:`shard` one
    rank's share of it."""

    def __init__(
        self,
        split: DeviceSplit,
        batch_size: int,
        order: np.ndarray,
        target_generator: torch.Generator | None = None,
    ) -> None:
        self.split, self.batch_size = split, batch_size
        self.order = np.asarray(order, dtype=np.int64)
        self.target_generator = target_generator

    def __len__(self) -> int:
        return -(-len(self.order) // self.batch_size)

    def __iter__(self) -> Iterator[tuple[list[dict], dict[str, Tensor], dict[str, Any] | None]]:
        on_device = torch.from_numpy(self.order).to(self.split.device)  # one copy per epoch
        for start in range(0, len(self.order), self.batch_size):
            end = start + self.batch_size
            yield self.split.batch(self.order[start:end], self.target_generator,
                                   on_device[start:end])  # fmt: skip


def shard(order: np.ndarray, rank: int, world_size: int) -> np.ndarray:
    """Rank ``rank``'s every ``world_size``-th item of ``order``, the order first wrapped
    around to a multiple of ``world_size`` (as ``DistributedSampler`` pads): every rank gets
    as many items, hence as many batches, which data-parallel steps need."""
    total = -(-len(order) // world_size) * world_size
    padded = np.concatenate([order, order[: total - len(order)]])
    return padded[rank::world_size]


def epoch_order(n: int, shuffle: bool, generator: torch.Generator | None = None) -> np.ndarray:
    """The order a ``DataLoader`` over ``n`` items visits them in: with ``shuffle``, it first
    draws its workers' base seed from ``generator``, then the sampler's permutation; the same
    two draws give the same order."""
    if not shuffle:
        return np.arange(n)
    torch.empty((), dtype=torch.int64).random_(generator=generator)
    return torch.randperm(n, generator=generator).numpy()


def endpoint_features(lengths: Tensor, frames: int) -> Tensor:
    """TEF rows ``[i/L, i/L + 1/L]`` for each length L, ``[B, frames, 2]`` (rows past L are
    garbage: callers mask them). Same float32 arithmetic as ``targets.temporal_endpoint_features``:
    ``i / L`` in float32, then ``1/L`` rounded from double to float32 and added."""
    length = lengths.to(torch.float32)[:, None]
    start = torch.arange(frames, device=lengths.device, dtype=torch.float32)[None] / length
    step = (1.0 / lengths.to(torch.float64)).to(torch.float32)[:, None]
    return torch.stack([start, start + step], dim=-1)


def _distinct_pair(allowed: Tensor, generator: torch.Generator | None) -> Tensor:
    """``[B, 2]``: per row, an ordered pair of distinct allowed columns drawn uniformly (the
    largest two of i.i.d. uniform keys: the first is uniform over the allowed columns, the
    second uniform over the rest, as ``random.sample(k=2)`` draws). Rows with fewer than two
    allowed columns give garbage that callers replace."""
    keys = torch.rand(allowed.shape, device=allowed.device, generator=generator)
    return keys.masked_fill(~allowed, -1.0).topk(SALIENCY_PAIRS, dim=1).indices


def _padded(rows: list[np.ndarray], length: int, dtype: torch.dtype) -> Tensor:
    """Zero-padded ``[len(rows), length, D]``."""
    out = torch.zeros(len(rows), length, rows[0].shape[1], dtype=dtype)
    for i, row in enumerate(rows):
        out[i, : len(row)] = torch.from_numpy(row)
    return out
