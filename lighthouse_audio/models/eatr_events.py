"""EaTR's pseudo events and the Hungarian matcher that pairs predicted events with them.

Pseudo events are self-supervised targets: boundaries where the frames' self-similarity changes
(a 5x5 checkerboard kernel slid along the diagonal of the cosine self-similarity matrix), and an
event between each two consecutive boundaries. Lighthouse lists the boundaries of the whole
batch in one row-major list and pairs each with the previous one; this module reproduces that,
quirks included (README §6.3 of the model fixtures):

- a pair belongs to sample ``s`` when the mean of its two sample indices equals ``s``, so the
  batch's first boundary, paired with the last sample's last boundary, lands in sample
  ``(B - 1) / 2`` when that is whole, with a negative width (with ``B = 1``: sample 0);
- the threshold is the row mean over all padded frames, and padded frames can be boundaries.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from scipy.optimize import linear_sum_assignment
from torch import Tensor, nn

from lighthouse_audio.models.matcher import Match, pad_target_spans
from lighthouse_audio.spans import generalized_temporal_iou, span_cxw_to_xx

__all__ = ["HungarianEventMatcher", "pseudo_event_spans"]

# Lighthouse's boundary kernel: high where the similarity changes across the diagonal.
_KERNEL = (
    (1.0, 1.0, 0.0, -1.0, -1.0),
    (1.0, 1.0, 0.0, -1.0, -1.0),
    (0.0, 0.0, 0.0, 0.0, 0.0),
    (-1.0, -1.0, 0.0, 1.0, 1.0),
    (-1.0, -1.0, 0.0, 1.0, 1.0),
)
_EDGE_SCORE = 100.0  # first and last valid frames are always boundaries
# Stand-in for non-finite matching costs (a degenerate negative-width pseudo event can give a
# 0/0 GIoU), where scipy (and so Lighthouse) would raise; finite costs are untouched.
_BAD_COST = 1e8


@torch.no_grad()
def pseudo_event_spans(src_vid: Tensor, src_vid_mask: Tensor) -> list[Tensor]:
    """Pseudo event targets from the raw context features.

    Args:
        src_vid: ``[B, L, D]`` raw ``[TEF | audio]`` frames, padding included.
        src_vid_mask: ``[B, L]``, 1 valid, 0 pad.

    Returns:
        B tensors ``[n_s, 2]`` of normalised (center, width), in frames divided by the sample's
        valid length; widths can be negative (see the module docstring).
    """
    batch, length, _ = src_vid.shape
    norm_vid = src_vid / (src_vid.norm(dim=2, keepdim=True) + 1e-8)
    tsm = torch.bmm(norm_vid, norm_vid.transpose(1, 2))  # [B, L, L] cosine self-similarity
    kernel = torch.tensor(_KERNEL, dtype=tsm.dtype, device=tsm.device)
    size = kernel.shape[0]
    padded = F.pad(tsm, (size // 2,) * 4)
    score = F.conv2d(padded.unsqueeze(1), kernel.view(1, 1, size, size)).squeeze(1)
    score = torch.diagonal(score, dim1=1, dim2=2)  # [B, L]
    tau = score.mean(1, keepdim=True)  # threshold: the mean over every (padded) frame
    num_valid = torch.count_nonzero(src_vid_mask, 1)  # [B]
    edges = torch.stack([torch.zeros_like(num_valid), num_valid - 1], dim=1)
    score = score.clone()
    score[torch.arange(batch, device=score.device).unsqueeze(1), edges] = _EDGE_SCORE
    # Peaks: at least both cyclic neighbours (within the padded row) and the mean.
    previous = torch.roll(score, 1, -1)
    following = torch.roll(score, -1, -1)
    is_boundary = (previous <= score) & (following <= score) & (tau <= score)

    bounds = is_boundary.nonzero()  # [K, 2] (sample, frame), row-major over the whole batch
    before = torch.roll(bounds, 1, 0)  # each boundary's predecessor (the first: the last)
    center = (bounds + before) / 2  # [K, 2] float: (mean sample index, center frame)
    width = bounds - before  # [K, 2] int
    spans = torch.cat([center, width[:, 1:]], dim=-1)  # [K, 3]
    return [spans[spans[:, 0] == i, 1:] / num_valid[i] for i in range(batch)]


class HungarianEventMatcher(nn.Module):
    """One-to-one assignment of predicted events to pseudo events, per sample.

    Cost: ``cost_span * L1(cxw) - cost_giou * GIoU(xx)``; no class term, and the GIoU accepts
    the negative widths pseudo events can have. There are often more pseudo events than
    queries, so the assignment always runs on the host (scipy), as in Lighthouse.
    """

    def __init__(self, cost_span: float = 1.0, cost_giou: float = 1.0) -> None:
        super().__init__()
        if cost_span == 0 and cost_giou == 0:
            raise ValueError("HungarianEventMatcher: cost_span and cost_giou are both 0")
        self.cost_span = cost_span
        self.cost_giou = cost_giou

    @torch.no_grad()
    def forward(self, pred_spans: Tensor, targets: Sequence[Tensor]) -> list[Match]:
        """Match.

        Args:
            pred_spans: ``[B, Q, 2]`` predicted events, normalised (center, width).
            targets: B tensors ``[n_s, 2]`` of pseudo events (cxw).

        Returns:
            B tuples ``(pred_idx int64, tgt_idx int64)``, ``pred_idx`` ascending, each of length
            ``min(Q, n_s)``.
        """
        if len(targets) != pred_spans.shape[0]:
            raise ValueError(
                f"HungarianEventMatcher: {pred_spans.shape[0]} samples in outputs, "
                f"{len(targets)} in targets"
            )
        tgt, sizes = pad_target_spans(targets, device=pred_spans.device, dtype=pred_spans.dtype)
        cost_span = torch.cdist(pred_spans, tgt, p=1)  # [B, Q, N]
        cost_giou = -generalized_temporal_iou(span_cxw_to_xx(pred_spans), span_cxw_to_xx(tgt))
        cost = self.cost_span * cost_span + self.cost_giou * cost_giou
        cost = torch.nan_to_num(cost, nan=_BAD_COST, posinf=_BAD_COST, neginf=-_BAD_COST)
        costs = cost.cpu().numpy()
        return [_assign(costs[i, :, :n]) for i, n in enumerate(sizes)]


def _assign(cost: np.ndarray) -> Match:
    pred_idx, tgt_idx = linear_sum_assignment(cost)
    return (
        torch.as_tensor(pred_idx, dtype=torch.int64),
        torch.as_tensor(tgt_idx, dtype=torch.int64),
    )
