"""Span geometry on normalised (or second-valued) 1-D windows, as pure torch functions.

Two layouts are used throughout:

- ``cxw``: ``(center, width)``, what the model predicts and the criterion regresses;
- ``xx``: ``(start, end)``, what IoU and the evaluation work on.

Every function accepts any number of leading batch dimensions. The arithmetic is written
operation for operation like Lighthouse's ``span_utils`` so that float32 results (and therefore
Hungarian matches and rounded post-processed windows) are bit-identical.

>>> span_cxw_to_xx(torch.tensor([[0.5, 1.0], [0.3, 0.2]]))
tensor([[0.0000, 1.0000],
        [0.2000, 0.4000]])
"""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = [
    "generalized_temporal_iou",
    "paired_generalized_temporal_iou",
    "span_cxw_to_xx",
    "span_xx_to_cxw",
    "temporal_iou",
]


def span_cxw_to_xx(spans_cxw: Tensor) -> Tensor:
    """``[..., 2]`` (center, width) -> ``[..., 2]`` (start, end)."""
    center, width = spans_cxw[..., 0], spans_cxw[..., 1]
    return torch.stack([center - 0.5 * width, center + 0.5 * width], dim=-1)


def span_xx_to_cxw(spans_xx: Tensor) -> Tensor:
    """``[..., 2]`` (start, end) -> ``[..., 2]`` (center, width)."""
    center = spans_xx.sum(-1) * 0.5
    width = spans_xx[..., 1] - spans_xx[..., 0]
    return torch.stack([center, width], dim=-1)


def _iou_union(spans1: Tensor, spans2: Tensor) -> tuple[Tensor, Tensor]:
    """IoU and union of two broadcastable ``[..., 2]`` xx tensors, elementwise."""
    length1 = spans1[..., 1] - spans1[..., 0]
    length2 = spans2[..., 1] - spans2[..., 0]
    left = torch.max(spans1[..., 0], spans2[..., 0])
    right = torch.min(spans1[..., 1], spans2[..., 1])
    inter = (right - left).clamp(min=0)
    union = length1 + length2 - inter
    return inter / union, union


def _giou(spans1: Tensor, spans2: Tensor) -> Tensor:
    """Generalized IoU of two broadcastable ``[..., 2]`` xx tensors, elementwise."""
    iou, union = _iou_union(spans1, spans2)
    left = torch.min(spans1[..., 0], spans2[..., 0])
    right = torch.max(spans1[..., 1], spans2[..., 1])
    enclosing = (right - left).clamp(min=0)
    return iou - (enclosing - union) / enclosing


def temporal_iou(spans1: Tensor, spans2: Tensor) -> tuple[Tensor, Tensor]:
    """Pairwise IoU between two sets of xx spans.

    Args:
        spans1: ``[..., N, 2]`` (start, end).
        spans2: ``[..., M, 2]`` (start, end); leading dims broadcast with ``spans1``'s.

    Returns:
        ``(iou, union)``, each ``[..., N, M]``. Disjoint spans have IoU 0; two zero-length
        spans have union 0 and IoU NaN, as in Lighthouse.
    """
    return _iou_union(spans1.unsqueeze(-2), spans2.unsqueeze(-3))


def generalized_temporal_iou(spans1: Tensor, spans2: Tensor) -> Tensor:
    """Pairwise generalized IoU (https://giou.stanford.edu/) between two sets of xx spans.

    Args:
        spans1: ``[..., N, 2]`` (start, end), with end >= start.
        spans2: ``[..., M, 2]`` (start, end), with end >= start.

    Returns:
        ``[..., N, M]`` in ``[-1, 1]``: IoU minus the share of the enclosing span covered by
        neither. The end >= start precondition is not checked: checking would force a
        device sync in every loss call.
    """
    return _giou(spans1.unsqueeze(-2), spans2.unsqueeze(-3))


def paired_generalized_temporal_iou(spans1: Tensor, spans2: Tensor) -> Tensor:
    """Generalized IoU of matched pairs: ``[..., N, 2]`` x ``[..., N, 2]`` -> ``[..., N]``.

    Equal to the diagonal of :func:`generalized_temporal_iou` without building the N x N matrix.
    """
    return _giou(spans1, spans2)
