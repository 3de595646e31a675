"""TR-DETR's losses: its criterion and the two alignment losses of its training objective.

Differences from QD-DETR's :class:`SetCriterion` (README §6.5 of the model fixtures):

- ``loss_label`` is a sigmoid focal loss (alpha 0.25, gamma 2) on the ``[B, 2, Q]`` logits
  against one-hot targets (matched -> class 0), averaged over all ``2 B Q`` numbers;
- ``loss_saliency`` = hinge + rank-contrastive on the single pass (no negative pass, so no
  negative-pair term and no negative-query frames in the contrastive softmax).

Lighthouse adds ``VTC_loss_coef * loss_vtc + CTC_loss_coef * loss_ctc`` in ``train.py``, outside
its criterion. Here the criterion returns them too (``loss_vtc``, ``loss_ctc``, weighted by those
coefficients in ``weight_dict``), so the model-agnostic training loop optimises exactly
Lighthouse's objective; the other keys and weights are Lighthouse's criterion's.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from lighthouse_audio.models.criterion import (
    BACKGROUND_LABEL,
    LOSS_NAMES,
    SetCriterion,
    _permutation_idx,
    build_weight_dict,
)
from lighthouse_audio.models.matcher import FOREGROUND_LABEL, Match, build_matcher

__all__ = [
    "ALIGNMENT_TEMPERATURE",
    "TRDETRCriterion",
    "build_tr_detr_criterion",
    "ctc_loss",
    "sigmoid_focal_loss",
    "vtc_loss",
]

ALIGNMENT_TEMPERATURE = 0.07  # Lighthouse's VTC and CTC temperature
FOCAL_ALPHA, FOCAL_GAMMA = 0.25, 2.0


def sigmoid_focal_loss(
    logits: Tensor, targets: Tensor, alpha: float = FOCAL_ALPHA, gamma: float = FOCAL_GAMMA
) -> Tensor:
    """Element-wise focal loss, torchvision 0.28's ``sigmoid_focal_loss(reduction="none")``
    operation for operation (torchvision is not a dependency of this project)."""
    p = torch.sigmoid(logits)
    ce_loss = F.binary_cross_entropy_with_logits(logits, targets, reduction="none")
    p_t = p * targets + (1 - p) * (1 - targets)
    loss = ce_loss * ((1 - p_t) ** gamma)
    if alpha >= 0:
        alpha_t = alpha * targets + (1 - alpha) * (1 - targets)
        loss = alpha_t * loss
    return loss


def vtc_loss(
    txt_cls: Tensor, vid_cls: Tensor, temperature: float = ALIGNMENT_TEMPERATURE
) -> Tensor:
    """Video-text contrastive loss: symmetric CE over the ``[B, B]`` cosine matrix / temperature
    of the pooled text ``[B, d]`` and pooled frames ``[B, d]``; sample i pairs with i."""
    sim = torch.mm(F.normalize(txt_cls, dim=1), F.normalize(vid_cls, dim=1).t())
    logits = sim / temperature
    labels = torch.arange(len(logits), device=logits.device)
    return (F.cross_entropy(logits, labels) + F.cross_entropy(logits.t(), labels)) / 2


def ctc_loss(
    vid: Tensor,
    txt: Tensor,
    pos_mask: Tensor,
    vid_mask: Tensor,
    txt_mask: Tensor,
    temperature: float = ALIGNMENT_TEMPERATURE,
) -> Tensor:
    """Clip-text contrastive loss: BCE-with-logits over all ``B x Lv`` cells of
    (unit frame . masked mean of unit tokens) x video mask / temperature against ``pos_mask``;
    padded frames count as logit 0, label 0 (as in Lighthouse).

    Args:
        vid: ``[B, Lv, d]`` projected frames; txt: ``[B, Lt, d]`` projected tokens.
        pos_mask: ``[B, L]`` frames of the first window (``src_pos_mask``).
        vid_mask: ``[B, Lv]``; txt_mask: ``[B, Lt]``, 1 valid.
    """
    vid = F.normalize(vid, dim=2)
    txt = F.normalize(txt, dim=2)
    txt_mask = txt_mask.unsqueeze(-1)
    txt_global = torch.sum(txt * txt_mask, dim=1) / torch.sum(txt_mask, dim=1)
    sim = torch.bmm(vid, txt_global.unsqueeze(-1)).squeeze(-1) * vid_mask
    logits = sim / temperature
    return F.binary_cross_entropy_with_logits(logits, _fit_length(pos_mask, logits.shape[1]))


def _fit_length(pos_mask: Tensor, length: int) -> Tensor:
    """``src_pos_mask`` cut or zero-padded to the batch's frame count. Lighthouse crashes on a
    mask longer than the batch (CASTELLA rows can run past the context); the frames past it
    have no logit, so cutting them is the only loss that can exist."""
    pos_mask = pos_mask.long().float()  # Lighthouse's labels: pos_mask.long()
    if pos_mask.shape[1] >= length:
        return pos_mask[:, :length]
    return F.pad(pos_mask, (0, length - pos_mask.shape[1]))


class TRDETRCriterion(SetCriterion):
    """:class:`SetCriterion` with TR-DETR's focal label loss, single-pass saliency loss and the
    VTC/CTC alignment losses (see the module docstring).

    The alignment losses need ``src_txt_ed``, ``src_vid_ed``, ``src_txt_cls_ed``,
    ``src_vid_cls_ed``, ``video_mask`` and ``src_txt_mask`` in the outputs and ``src_pos_mask``
    in the targets; ``alignment=False`` leaves them out (Lighthouse's criterion alone).
    """

    def __init__(self, *args: Any, alignment: bool = True, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.alignment = alignment

    def loss_labels(
        self, outputs: Mapping[str, Any], targets: Mapping[str, Any], indices: Sequence[Match]
    ) -> dict[str, Tensor]:
        """``loss_label``: mean sigmoid focal loss over ``[B, 2, Q]``; ``class_error`` as in
        :meth:`SetCriterion.loss_labels` (logged only)."""
        logits = outputs["pred_logits"]  # [B, Q, 2]
        batch_idx, pred_idx = _permutation_idx(indices, logits.device)
        target_classes = torch.full(
            logits.shape[:2], BACKGROUND_LABEL, dtype=torch.int64, device=logits.device
        )
        target_classes[batch_idx, pred_idx] = FOREGROUND_LABEL
        onehot = F.one_hot(target_classes, num_classes=2).permute(0, 2, 1).to(torch.float32)
        loss = sigmoid_focal_loss(logits.to(torch.float32).transpose(1, 2), onehot)
        return {
            "loss_label": loss.mean(),
            "class_error": self._class_error(logits[batch_idx, pred_idx]),
        }

    def loss_saliency(
        self, outputs: Mapping[str, Any], targets: Mapping[str, Any], indices: Sequence[Match]
    ) -> dict[str, Tensor]:
        """``loss_saliency``: hinge + rank-contrastive on the single pass (Lighthouse's order)."""
        scores = outputs["saliency_scores"]
        if "saliency_pos_labels" not in targets:
            return {"loss_saliency": scores.new_zeros(())}
        hinge = self._hinge(outputs, targets)
        mask = outputs["video_mask"].to(scores.dtype)
        labels = targets["saliency_all_labels"].to(scores.device)
        return {"loss_saliency": hinge + self._rank_contrastive_single(scores, mask, labels)}

    def _rank_contrastive_single(self, scores: Tensor, mask: Tensor, labels: Tensor) -> Tensor:
        """The rank-contrastive term over one pass's frames ``[B, L]`` (padding set to -1e3);
        like :meth:`SetCriterion._rank_contrastive` without the negative-query half."""
        scores = mask * scores + (1.0 - mask) * -1e3
        labels = labels.to(scores.dtype)
        keep = ~(labels > 100)
        logits = scores * keep / self.rank_tau + ~keep * -1e3
        logits = logits - logits.max(dim=1, keepdim=True).values
        log_prob = logits - torch.log(logits.exp().sum(1, keepdim=True) + 1e-6)
        levels = torch.arange(1, self.rank_levels + 1, device=scores.device, dtype=scores.dtype)
        pos = labels.unsqueeze(0) >= levels[:, None, None]  # [R, B, L]
        mean_log_prob_pos = (pos * log_prob * mask).sum(-1) / (pos.sum(-1) + 1e-6)
        loss = -mean_log_prob_pos * pos.any(-1)  # levels without positives add exactly 0
        return loss.mean(dim=1).sum() / self.rank_divisor

    def forward(self, outputs: Mapping[str, Any], targets: Mapping[str, Any]) -> dict[str, Tensor]:
        """Lighthouse's criterion losses (see :meth:`SetCriterion.forward`), then ``loss_vtc``
        and ``loss_ctc`` (when ``alignment`` and the targets carry ``src_pos_mask``)."""
        losses = super().forward(outputs, targets)
        if self.alignment and "src_pos_mask" in targets:
            losses["loss_vtc"] = vtc_loss(outputs["src_txt_cls_ed"], outputs["src_vid_cls_ed"])
            losses["loss_ctc"] = ctc_loss(
                outputs["src_vid_ed"],
                outputs["src_txt_ed"],
                targets["src_pos_mask"].to(outputs["src_vid_ed"].device),
                outputs["video_mask"],
                outputs["src_txt_mask"],
            )
        return losses


def build_tr_detr_criterion(opt: Mapping[str, Any], alignment: bool = True) -> TRDETRCriterion:
    """TR-DETR's criterion from Lighthouse's flat config keys; ``weight_dict`` is Lighthouse's
    criterion's plus ``loss_vtc: VTC_loss_coef`` and ``loss_ctc: CTC_loss_coef``."""
    weight_dict = build_weight_dict(opt)
    if alignment:
        weight_dict["loss_vtc"] = float(opt["VTC_loss_coef"])
        weight_dict["loss_ctc"] = float(opt["CTC_loss_coef"])
    return TRDETRCriterion(
        matcher=build_matcher(opt),
        weight_dict=weight_dict,
        eos_coef=opt["eos_coef"],
        losses=list(LOSS_NAMES),
        span_loss_type=opt.get("span_loss_type", "l1"),
        max_v_l=opt.get("max_v_l", 75),
        saliency_margin=opt["saliency_margin"],
        saliency_terms=("hinge", "rank_contrastive"),
        alignment=alignment,
    )
