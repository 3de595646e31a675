"""UVCOM's training losses: QD-DETR's criterion plus ``loss_sim`` (fixtures README §6.4).

``loss_sim = -(inter / 2 + intra / 2)``:

- inter: the clip-text matrix ``VLA_Sim [B, B]`` as a contrastive task both ways, the mean of
  its log-softmax diagonal over rows and over columns, averaged;
- intra: the log-softmax of ``CTA_Sim`` over *all* frames (padding included) on the frames of
  the first target window, averaged over every ``B x Lv`` cell.

The saliency hinge differs from QD-DETR's only where a negative frame index is -1 (Lighthouse's
"no negative" for Charades): that score counts as 0.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import Tensor

from lighthouse_audio.spans import span_cxw_to_xx

from .criterion import LOSS_NAMES, SetCriterion, build_weight_dict
from .matcher import build_matcher

__all__ = ["UVCOMCriterion", "build_uvcom_criterion", "first_window_frames", "similarity_loss"]


def _python_slice_bound(index: Tensor, length: int) -> Tensor:
    """Where Python's ``seq[index]`` slice bound lands for a sequence of ``length``."""
    wrapped = torch.where(index < 0, index + length, index)
    return wrapped.clamp(min=0, max=length)


def first_window_frames(span_labels: Sequence[Mapping[str, Tensor]], valid: Tensor) -> Tensor:
    """UVCOM's clip-level labels: 1 on frames ``int(s n) <= t < int(e n)`` of each sample's
    **first** target window, ``n`` its number of valid frames (``[B, Lv]`` float).

    Lighthouse computes ``xx * n * 2 / 2`` in float32 (the doubling is exact), truncates toward
    zero and assigns through a Python slice; the same rounding and slice rules are kept here. A
    sample without a window (where Lighthouse would fail) gets no positive frame.
    """
    batch, length = valid.shape
    labels = torch.zeros(batch, length, dtype=torch.float32, device=valid.device)
    has_window = [len(t["spans"]) > 0 for t in span_labels]
    if not any(has_window):
        return labels
    first = torch.stack(
        [
            t["spans"][0] if ok else t["spans"].new_zeros(2)
            for t, ok in zip(span_labels, has_window, strict=True)
        ]
    ).to(valid.device)  # [B, 2] cxw
    count = valid.sum(dim=1)  # [B] valid frames (int)
    bounds = (span_cxw_to_xx(first) * count[:, None].to(first.dtype) * 2 / 2).to(torch.int64)
    start = _python_slice_bound(bounds[:, 0], length)
    end = _python_slice_bound(bounds[:, 1], length)
    frames = torch.arange(length, device=valid.device)
    inside = (frames >= start[:, None]) & (frames < end[:, None])
    inside &= torch.tensor(has_window, device=valid.device)[:, None]
    return labels.masked_fill(inside, 1.0)


def similarity_loss(sim: Mapping[str, Any], span_labels: Sequence[Mapping[str, Tensor]]) -> Tensor:
    """``loss_sim`` from the model's ``sim`` output (see the module docstring)."""
    inter_sim = sim["VLA_Sim"]  # [B, B]
    clip_sim, valid = sim["CTA_Sim"]  # [B, Lv], [B, Lv] bool
    eye = torch.eye(inter_sim.shape[0], device=inter_sim.device, dtype=inter_sim.dtype)
    rows = (eye * inter_sim.log_softmax(dim=-1)).mean(0).sum()
    cols = (eye * inter_sim.transpose(0, 1).log_softmax(dim=-1)).mean(0).sum()
    inter = (rows + cols) / 2
    labels = first_window_frames(span_labels, valid).to(clip_sim.dtype)
    intra = (clip_sim.log_softmax(dim=-1) * labels * valid.to(clip_sim.dtype)).mean(0).mean()
    return -(0.5 * inter + intra * 0.5)


class UVCOMCriterion(SetCriterion):
    """:class:`SetCriterion` (spans, labels, QD-DETR's three saliency terms) plus ``loss_sim``.

    Args:
        use_similarity: add ``loss_sim`` (Lighthouse: when ``sim_loss_coef`` is not 0).
        Others: see :class:`SetCriterion`.
    """

    def __init__(self, *args: Any, use_similarity: bool = True, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.use_similarity = use_similarity

    def _hinge(self, outputs: Mapping[str, Any], targets: Mapping[str, Any]) -> Tensor:
        """QD-DETR's hinge, with Lighthouse-UVCOM's indexing: a negative index of -1 scores 0
        and other indices follow Python's (negative ones count from the end)."""
        scores = outputs["saliency_scores"]  # [B, L]
        length = scores.shape[1]
        pos_idx = targets["saliency_pos_labels"].to(scores.device)  # [B, P]
        neg_idx = targets["saliency_neg_labels"].to(scores.device)  # [B, P]
        pos_scores = scores.gather(1, pos_idx % length)
        neg_scores = scores.gather(1, neg_idx % length).masked_fill(neg_idx == -1, 0.0)
        num_pairs = pos_idx.shape[1]
        return (
            torch.clamp(self.saliency_margin + neg_scores - pos_scores, min=0).sum()
            / (len(pos_scores) * num_pairs)
            * 2
        )

    def forward(self, outputs: Mapping[str, Any], targets: Mapping[str, Any]) -> dict[str, Tensor]:
        """:meth:`SetCriterion.forward`'s losses, with ``loss_sim`` after ``loss_saliency`` (the
        order Lighthouse logs them in); ``outputs["sim"]`` as :meth:`CIM.similarity` gives it."""
        losses = super().forward(outputs, targets)
        if not self.use_similarity:
            return losses
        loss_sim = similarity_loss(outputs["sim"], targets["span_labels"])
        ordered: dict[str, Tensor] = {}
        for key, value in losses.items():
            ordered[key] = value
            if key == "loss_saliency":
                ordered["loss_sim"] = loss_sim
        ordered.setdefault("loss_sim", loss_sim)
        return ordered


def build_uvcom_criterion(opt: Mapping[str, Any]) -> UVCOMCriterion:
    """UVCOM's criterion from Lighthouse's flat config keys: QD-DETR's weights, then
    ``loss_sim`` weighted by ``sim_loss_coef`` (absent when that is 0, as in Lighthouse)."""
    weight_dict = build_weight_dict(opt)
    use_similarity = float(opt.get("sim_loss_coef", 1)) != 0
    if use_similarity:
        weight_dict["loss_sim"] = float(opt["sim_loss_coef"])
    return UVCOMCriterion(
        matcher=build_matcher(opt),
        weight_dict=weight_dict,
        eos_coef=opt["eos_coef"],
        losses=list(LOSS_NAMES),
        span_loss_type=opt.get("span_loss_type", "l1"),
        max_v_l=opt.get("max_v_l", 75),
        saliency_margin=opt["saliency_margin"],
        use_similarity=use_similarity,
    )
