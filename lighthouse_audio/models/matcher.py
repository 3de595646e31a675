"""Hungarian matching between predicted and ground-truth moments (DETR-style, Lighthouse costs).

The cost of pairing prediction ``q`` with target ``t`` is

    cost_span * L1(cxw_q, cxw_t) - cost_giou * GIoU(xx_q, xx_t) - cost_class * p_q(foreground)

and each sample is solved with ``scipy.optimize.linear_sum_assignment``. All cost matrices of a
batch (and, through :meth:`HungarianMatcher.match_layers`, of every decoder layer) are built in
one go on the outputs' device and copied to the CPU once; only the assignment itself loops.
With ``solver="device"`` (config ``assignment=device``) the same optimum is found on the
outputs' device for all samples and layers at once (``models/assignment.py``), with no copy.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
from scipy.optimize import linear_sum_assignment
from torch import Tensor, nn

from lighthouse_audio.models.assignment import assignment_matches, batched_assignment
from lighthouse_audio.spans import generalized_temporal_iou, span_cxw_to_xx

__all__ = ["HungarianMatcher", "Match", "build_matcher", "pad_target_spans", "padded_targets"]

Match = tuple[Tensor, Tensor]
"""Per sample: ``(pred_idx, tgt_idx)``, int64, same length, ``pred_idx`` ascending."""

FOREGROUND_LABEL = 0
SOLVERS = ("scipy", "device")  # where the assignment is solved: host (Lighthouse's) or device

# Padding for empty target slots: any valid span works (those columns are sliced away before
# the assignment); a proper one keeps NaNs out of the cost tensor.
_PAD_SPAN_CXW = (0.5, 1.0)


def _span_labels(targets: Mapping[str, Any] | Sequence[Mapping[str, Tensor]]) -> list[Tensor]:
    """Accept Lighthouse's targets dict (``span_labels``) or DETR's list of per-sample dicts."""
    span_labels = targets["span_labels"] if isinstance(targets, Mapping) else targets
    return [t["spans"] for t in span_labels]


def padded_targets(
    targets: Mapping[str, Any] | Sequence[Mapping[str, Tensor]],
    device: torch.device,
    dtype: torch.dtype,
) -> tuple[Tensor, list[int]]:
    """The targets' spans as ``pad_target_spans`` returns them; batches built on the device
    (``data.device_split``) carry them padded already (``span_padded``, ``span_sizes``)."""
    if isinstance(targets, Mapping) and "span_padded" in targets:
        return targets["span_padded"].to(device=device, dtype=dtype), list(targets["span_sizes"])
    return pad_target_spans(_span_labels(targets), device=device, dtype=dtype)


def pad_target_spans(
    spans: Sequence[Tensor], device: torch.device | None = None, dtype: torch.dtype | None = None
) -> tuple[Tensor, list[int]]:
    """Stack ragged per-sample targets ``[n_i, 2]`` into ``[batch, max_n, 2]`` plus the ``n_i``.

    Padded rows hold a dummy valid span; callers slice with the returned sizes.
    """
    sizes = [len(s) for s in spans]
    max_n = max(sizes, default=0)
    if dtype is None:
        dtype = spans[0].dtype if spans else torch.float32
    if device is None:
        device = spans[0].device if spans else torch.device("cpu")
    padded = torch.tensor(_PAD_SPAN_CXW, dtype=dtype, device=device).repeat(len(spans), max_n, 1)
    for i, s in enumerate(spans):
        padded[i, : len(s)] = s.to(device=device, dtype=dtype)
    return padded, sizes


class HungarianMatcher(nn.Module):
    """One-to-one assignment of predicted spans to target spans, per sample.

    There are usually more queries than targets: unmatched queries are trained as background.
    """

    def __init__(
        self,
        cost_class: float = 1.0,
        cost_span: float = 1.0,
        cost_giou: float = 1.0,
        span_loss_type: str = "l1",
        max_v_l: int = 75,
        solver: str = "scipy",
    ) -> None:
        super().__init__()
        if solver not in SOLVERS:
            raise ValueError(f"HungarianMatcher: solver {solver!r}; choose from {SOLVERS}")
        if cost_class == 0 and cost_span == 0 and cost_giou == 0:
            raise ValueError("HungarianMatcher: cost_class, cost_span and cost_giou are all 0")
        if span_loss_type != "l1":
            raise ValueError(f"HungarianMatcher: span_loss_type {span_loss_type!r}; only 'l1'")
        self.cost_class = cost_class
        self.cost_span = cost_span
        self.cost_giou = cost_giou
        self.span_loss_type = span_loss_type
        self.max_v_l = max_v_l  # kept for Lighthouse signature parity ("ce" spans would need it)
        self.solver = solver

    @torch.no_grad()
    def cost_matrix(self, pred_logits: Tensor, pred_spans: Tensor, tgt_spans: Tensor) -> Tensor:
        """Matching costs for a batch (optionally for several decoder layers at once).

        Args:
            pred_logits: ``[..., batch, num_queries, num_classes]``; class 0 is foreground.
            pred_spans: ``[..., batch, num_queries, 2]`` normalised (center, width).
            tgt_spans: ``[batch, max_targets, 2]`` normalised (center, width), padded.

        Returns:
            ``[..., batch, num_queries, max_targets]``. Columns past a sample's target count
            are padding.
        """
        prob_fg = pred_logits.softmax(-1)[..., FOREGROUND_LABEL]  # [..., B, Q]
        tgt_spans = tgt_spans.expand(*pred_spans.shape[:-2], *tgt_spans.shape[-2:])
        # Same terms and summation order as Lighthouse, so ties break identically.
        cost_span = torch.cdist(pred_spans, tgt_spans, p=1)
        cost_giou = -generalized_temporal_iou(span_cxw_to_xx(pred_spans), span_cxw_to_xx(tgt_spans))
        cost_class = -prob_fg.unsqueeze(-1)
        return (
            self.cost_span * cost_span + self.cost_giou * cost_giou + self.cost_class * cost_class
        )

    @torch.no_grad()
    def match_layers(
        self,
        layer_outputs: Sequence[Mapping[str, Tensor]],
        targets: Mapping[str, Any] | Sequence[Mapping[str, Tensor]],
    ) -> list[list[Match]]:
        """Match several output sets (e.g. final + aux decoder layers) with one device sync.

        Args:
            layer_outputs: dicts with ``pred_logits [B, Q, C]`` and ``pred_spans [B, Q, 2]``,
                all of the same shape.
            targets: Lighthouse targets dict (``span_labels``: B dicts with ``spans [n_i, 2]``
                cxw) or a list of B such dicts.

        Returns:
            For each output set, B matches ``(pred_idx, tgt_idx)`` of length ``min(Q, n_i)``.
        """
        if not layer_outputs:
            return []
        pred_logits = torch.stack([o["pred_logits"] for o in layer_outputs])  # [L, B, Q, C]
        pred_spans = torch.stack([o["pred_spans"] for o in layer_outputs])  # [L, B, Q, 2]
        tgt_spans, sizes = padded_targets(targets, pred_spans.device, pred_spans.dtype)
        if len(sizes) != pred_spans.shape[1]:
            raise ValueError(
                f"HungarianMatcher: {pred_spans.shape[1]} samples in outputs, "
                f"{len(sizes)} in targets"
            )
        costs = self.cost_matrix(pred_logits, pred_spans, tgt_spans)
        if self.solver == "device" and max(sizes, default=0) <= costs.shape[-2]:
            # exact, batched, no host sync (models/assignment.py); more targets than queries
            # (never in practice) stay with scipy, which matches as many as it can
            assigned = batched_assignment(costs, sizes)
            return [assignment_matches(layer, sizes) for layer in assigned]
        costs = costs.cpu().numpy()
        return [
            [self._assign(layer_costs[i, :, :n]) for i, n in enumerate(sizes)]
            for layer_costs in costs
        ]

    @staticmethod
    def _assign(cost: np.ndarray) -> Match:
        pred_idx, tgt_idx = linear_sum_assignment(cost)
        return (
            torch.as_tensor(pred_idx, dtype=torch.int64),
            torch.as_tensor(tgt_idx, dtype=torch.int64),
        )

    @torch.no_grad()
    def forward(
        self,
        outputs: Mapping[str, Tensor],
        targets: Mapping[str, Any] | Sequence[Mapping[str, Tensor]],
    ) -> list[Match]:
        """Match one output set.

        Args:
            outputs: ``pred_logits [B, Q, C]`` and ``pred_spans [B, Q, 2]`` (cxw, normalised).
            targets: see :meth:`match_layers`.

        Returns:
            B tuples ``(pred_idx int64, tgt_idx int64)``; ``pred_idx`` ascending, each of
            length ``min(Q, n_i)`` (empty when the sample has no target).
        """
        return self.match_layers([outputs], targets)[0]


def build_matcher(opt: Mapping[str, Any]) -> HungarianMatcher:
    """Matcher from Lighthouse's flat config keys."""
    return HungarianMatcher(
        cost_class=opt["set_cost_class"],
        cost_span=opt["set_cost_span"],
        cost_giou=opt["set_cost_giou"],
        span_loss_type=opt.get("span_loss_type", "l1"),
        max_v_l=opt.get("max_v_l", 75),
        solver=opt.get("assignment", "scipy"),
    )
