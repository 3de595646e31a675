"""EaTR's training losses: Moment-DETR's (hinge-only saliency) plus the event terms.

``loss_event_span`` (L1) and ``loss_event_giou`` (1 - GIoU) compare the slot-attention events
(``pred_event_spans``) with the pseudo events the model derived from its input
(``pseudo_event_spans``), after a second Hungarian matching (:class:`HungarianEventMatcher`).
They weigh ``event_coef`` times the span and GIoU weights, on the final outputs only.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from lighthouse_audio.models.criterion import SetCriterion, build_weight_dict
from lighthouse_audio.models.eatr_events import HungarianEventMatcher
from lighthouse_audio.models.matcher import Match, build_matcher, pad_target_spans
from lighthouse_audio.spans import paired_generalized_temporal_iou, span_cxw_to_xx

__all__ = ["EaTRCriterion", "build_eatr_criterion", "build_eatr_weight_dict"]

SALIENCY_TERMS = ("hinge",)  # EaTR has no negative pass


class EaTRCriterion(SetCriterion):
    """:class:`SetCriterion` plus the event losses (README §6.3 of the model fixtures).

    Args:
        event_matcher: pairs ``pred_event_spans`` with ``pseudo_event_spans``.
        **kwargs: :class:`SetCriterion`'s arguments.
    """

    def __init__(self, event_matcher: HungarianEventMatcher, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.event_matcher = event_matcher
        # Event matches of the latest forward call, for logging and tests.
        self.last_event_matches: list[Match] | None = None

    def loss_event_spans(
        self, outputs: Mapping[str, Any], indices: Sequence[Match]
    ) -> dict[str, Tensor]:
        """``loss_event_span``: mean |pred - pseudo| over matched cxw numbers;
        ``loss_event_giou``: mean (1 - GIoU) over matched pairs (negative widths allowed)."""
        pred = outputs["pred_event_spans"]  # [B, Q, 2]
        targets = outputs["pseudo_event_spans"]  # B x [n_s, 2]
        padded, _ = pad_target_spans(targets, device=pred.device, dtype=pred.dtype)
        batch_idx = torch.cat([torch.full_like(src, i) for i, (src, _) in enumerate(indices)])
        pred_idx = torch.cat([src for src, _ in indices])
        tgt_idx = torch.cat([tgt for _, tgt in indices])
        if pred_idx.numel() == 0:
            # Lighthouse would return NaN (mean of nothing); a zero keeps training going.
            zero = pred.sum() * 0
            return {"loss_event_span": zero, "loss_event_giou": zero}
        batch_idx, pred_idx, tgt_idx = (t.to(pred.device) for t in (batch_idx, pred_idx, tgt_idx))
        src = pred[batch_idx, pred_idx]
        tgt = padded[batch_idx, tgt_idx]
        loss_span = F.l1_loss(src, tgt, reduction="none")
        loss_giou = 1 - paired_generalized_temporal_iou(span_cxw_to_xx(src), span_cxw_to_xx(tgt))
        return {"loss_event_span": loss_span.mean(), "loss_event_giou": loss_giou.mean()}

    def forward(self, outputs: Mapping[str, Any], targets: Mapping[str, Any]) -> dict[str, Tensor]:
        """Compute every loss.

        Args:
            outputs: :class:`~lighthouse_audio.models.eatr.EaTR`'s outputs (``pred_logits``,
                ``pred_spans``, ``pseudo_event_spans``, ``pred_event_spans``,
                ``saliency_scores``, optionally ``aux_outputs``).
            targets: as for :class:`SetCriterion`.

        Returns:
            In Lighthouse's order: ``loss_span, loss_giou, loss_label, class_error,
            loss_saliency, loss_event_span, loss_event_giou`` and, per aux layer i,
            ``loss_span_i, loss_giou_i, loss_label_i, class_error_i``. The matches used are
            left in ``last_matches`` and ``last_event_matches``.
        """
        matches = self.match(outputs, targets)
        self.last_matches = matches
        event_matches = self.event_matcher(
            outputs["pred_event_spans"], outputs["pseudo_event_spans"]
        )
        self.last_event_matches = event_matches
        losses: dict[str, Tensor] = {}
        for name in self.losses:
            losses.update(self.get_loss(name, outputs, targets, matches.main))
        losses.update(self.loss_event_spans(outputs, event_matches))
        aux_layers = zip(outputs.get("aux_outputs", []), matches.aux, strict=True)
        for i, (aux, indices) in enumerate(aux_layers):
            for name in self.losses:
                if name == "saliency":  # from the encoder: final outputs only
                    continue
                aux_losses = self.get_loss(name, aux, targets, indices)
                losses.update({f"{k}_{i}": v for k, v in aux_losses.items()})
        return losses


def build_eatr_weight_dict(opt: Mapping[str, Any]) -> dict[str, float]:
    """Lighthouse's EaTR weights: the main four, the event pair (``event_coef`` times the span
    and GIoU weights), then span/giou/label per aux decoder layer."""
    base = build_weight_dict(opt)
    event_coef = float(opt["event_coef"])
    main = {k: base[k] for k in ("loss_span", "loss_giou", "loss_label", "loss_saliency")}
    events = {
        "loss_event_span": event_coef * float(opt["span_loss_coef"]),
        "loss_event_giou": event_coef * float(opt["giou_loss_coef"]),
    }
    aux = {k: v for k, v in base.items() if k not in main}
    return {**main, **events, **aux}


def build_eatr_criterion(opt: Mapping[str, Any]) -> EaTRCriterion:
    """Criterion (both matchers) from Lighthouse's flat config keys."""
    return EaTRCriterion(
        event_matcher=HungarianEventMatcher(
            cost_span=opt["set_cost_span"], cost_giou=opt["set_cost_giou"]
        ),
        matcher=build_matcher(opt),
        weight_dict=build_eatr_weight_dict(opt),
        eos_coef=opt["eos_coef"],
        losses=["spans", "labels", "saliency"],
        span_loss_type=opt.get("span_loss_type", "l1"),
        max_v_l=opt.get("max_v_l", 75),
        saliency_margin=opt["saliency_margin"],
        saliency_terms=SALIENCY_TERMS,
    )
