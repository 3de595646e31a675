"""Batching: Lighthouse's ``start_end_collate`` + ``prepare_batch_inputs`` in one step.

``collate(batch) -> (metas, model_inputs, targets)``:

- ``model_inputs`` (keyword arguments of the model's forward), zero-padded to the batch maximum:
  ``src_txt`` [B, Lt, Dt], ``src_txt_mask`` [B, Lt], ``src_vid`` [B, Lv, 2] (TEF),
  ``src_vid_mask`` [B, Lv], ``src_aud`` [B, Lv, Da], ``src_aud_mask`` [B, Lv] (equal to
  ``src_vid_mask``; the model ignores it). Masks are float32, 1 = valid, 0 = padding.
- ``targets`` (``None`` when the items carry none): ``span_labels`` list of B
  ``{"spans": [n_i, 2]}``; ``saliency_pos_labels``, ``saliency_neg_labels`` int64 [B, 2];
  ``saliency_all_labels`` float32 [B, Lv]; ``src_pos_mask`` float32 [B, Lv]. The last two are
  zero-padded.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

MODEL_INPUT_KEYS = ("src_txt", "src_txt_mask", "src_vid", "src_vid_mask", "src_aud", "src_aud_mask")


def _pad(seqs: Sequence[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """Stack ``[L_i, D]`` tensors into zero-padded ``[B, max L, D]`` float32 plus the mask."""
    lengths = [s.shape[0] for s in seqs]
    max_len = max(lengths)
    # One uninitialised allocation, then each row written exactly once (data, then zeros for
    # the padding tail): cheaper than zero-filling the whole batch and overwriting most of it.
    out = torch.empty((len(seqs), max_len, *seqs[0].shape[1:]), dtype=torch.float32)
    for i, (s, n) in enumerate(zip(seqs, lengths, strict=True)):
        out[i, :n] = s
        out[i, n:] = 0
    mask = (torch.arange(max_len) < torch.tensor(lengths)[:, None]).to(torch.float32)
    return out, mask


def collate(
    batch: Sequence[dict[str, Any]],
) -> tuple[list[dict], dict[str, torch.Tensor], dict[str, Any] | None]:
    """Collate ``MomentDataset`` items; see the module docstring for the layout."""
    if not batch:
        raise ValueError("cannot collate an empty batch")
    metas = [e["meta"] for e in batch]
    inputs = [e["model_inputs"] for e in batch]

    src_txt, src_txt_mask = _pad([x["query_feat"] for x in inputs])
    src_vid, src_vid_mask = _pad([x["video_feat"] for x in inputs])
    src_aud, src_aud_mask = _pad([x["audio_feat"] for x in inputs])
    if src_aud.shape[1] != src_vid.shape[1] or not torch.equal(src_aud_mask, src_vid_mask):
        raise ValueError("audio_feat and video_feat (TEF) lengths differ within an item")
    model_inputs = {
        "src_txt": src_txt,
        "src_txt_mask": src_txt_mask,
        "src_vid": src_vid,
        "src_vid_mask": src_vid_mask,
        "src_aud": src_aud,
        "src_aud_mask": src_aud_mask,
    }

    with_targets = ["targets" in e for e in batch]
    if not any(with_targets):
        return metas, model_inputs, None
    if not all(with_targets):
        raise ValueError(f"{with_targets.count(False)} of {len(batch)} items have no targets")
    tgts = [e["targets"] for e in batch]
    num_ctx = src_vid.shape[1]
    all_labels = np.zeros((len(batch), num_ctx), dtype=np.float32)
    pos_mask = torch.zeros((len(batch), num_ctx), dtype=torch.float32)
    for i, t in enumerate(tgts):
        all_labels[i, : len(t["saliency_all_labels"])] = t["saliency_all_labels"]
        pos_mask[i, : len(t["src_pos_mask"])] = t["src_pos_mask"]
    targets = {
        "span_labels": [{"spans": t["span_labels"]} for t in tgts],
        "saliency_pos_labels": torch.tensor(
            [t["saliency_pos_labels"] for t in tgts], dtype=torch.int64
        ),
        "saliency_neg_labels": torch.tensor(
            [t["saliency_neg_labels"] for t in tgts], dtype=torch.int64
        ),
        "saliency_all_labels": torch.from_numpy(all_labels),
        "src_pos_mask": pos_mask,
    }
    return metas, model_inputs, targets


def move_to_device(
    model_inputs: dict[str, torch.Tensor],
    targets: dict[str, Any] | None,
    device: torch.device | str,
    non_blocking: bool = False,
) -> tuple[dict[str, torch.Tensor], dict[str, Any] | None]:
    """Copy a collated batch to ``device`` (``non_blocking`` only helps with pinned memory)."""
    inputs = {k: v.to(device, non_blocking=non_blocking) for k, v in model_inputs.items()}
    if targets is None:
        return inputs, None
    moved: dict[str, Any] = {}
    for k, v in targets.items():
        if k == "span_labels":
            moved[k] = [{"spans": e["spans"].to(device, non_blocking=non_blocking)} for e in v]
        elif isinstance(v, torch.Tensor):
            moved[k] = v.to(device, non_blocking=non_blocking)
        else:
            moved[k] = v
    return inputs, moved
