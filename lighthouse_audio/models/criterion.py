"""QD-DETR and Moment-DETR training losses (Lighthouse's ``SetCriterion``), DETR-style.

Two steps: Hungarian-match predictions to target moments (final and every aux decoder layer),
then compute each requested loss by name:

- ``spans``    -> ``loss_span`` (L1 on matched cxw) and ``loss_giou`` (1 - GIoU on matched xx);
- ``labels``   -> ``loss_label`` (weighted CE, plain mean over all queries) and ``class_error``;
- ``saliency`` -> ``loss_saliency``, final layer only: the sum of the ``saliency_terms`` (QD-DETR:
  hinge + rank-contrastive + negative-pair; Moment-DETR: the hinge alone).

Not in Lighthouse: when the model decodes its negative pairs (``pred_logits_neg``, config
``neg_label_loss_coef`` > 0), ``loss_label_neg`` is the CE of every negative query against
"background": the query's sound is absent, so no moment should be confident.

Aux layers get the same span/label losses with a ``_{i}`` suffix. Every formula follows Lighthouse
operation for operation: the parity fixtures pin them to a relative 1e-5.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from lighthouse_audio.models.matcher import (
    FOREGROUND_LABEL,
    HungarianMatcher,
    Match,
    build_matcher,
    padded_targets,
)
from lighthouse_audio.spans import paired_generalized_temporal_iou, span_cxw_to_xx

__all__ = [
    "SALIENCY_TERMS",
    "LayerMatches",
    "SetCriterion",
    "build_criterion",
    "build_weight_dict",
]

BACKGROUND_LABEL = 1
LOSS_NAMES = ("spans", "labels", "saliency")
# The parts of loss_saliency, in the order Lighthouse adds them (README §7).
SALIENCY_TERMS = ("hinge", "rank_contrastive", "negative_pair")


class LayerMatches(NamedTuple):
    """Matches used for one criterion call: the final layer's, then one list per aux layer."""

    main: list[Match]
    aux: list[list[Match]]


def _permutation_idx(indices: Sequence[Match], device: torch.device) -> tuple[Tensor, Tensor]:
    """Flatten per-sample matches into ``(batch_idx, pred_idx)``, each ``[num_matched]``."""
    batch_idx = torch.cat([torch.full_like(src, i) for i, (src, _) in enumerate(indices)])
    pred_idx = torch.cat([src for src, _ in indices])
    return batch_idx.to(device), pred_idx.to(device)


class SetCriterion(nn.Module):
    """Matching plus QD-DETR (or Moment-DETR) losses.

    Args:
        matcher: assigns predictions to targets (see :class:`HungarianMatcher`).
        weight_dict: ``loss_* -> weight``; only used by the training loop, kept here as DETR does.
        eos_coef: CE weight of the background class (foreground weighs 1).
        losses: names from ``spans``, ``labels``, ``saliency``.
        span_loss_type: only ``"l1"``.
        max_v_l: kept for Lighthouse signature parity.
        saliency_margin: hinge margin between positive and negative clip scores.
        rank_tau: temperature of the rank-contrastive softmax.
        rank_levels: saliency label levels r = 1..rank_levels treated as rank thresholds.
        rank_divisor: Lighthouse divides the rank-contrastive sum by 12 (not by rank_levels).
        saliency_terms: what ``loss_saliency`` sums, from :data:`SALIENCY_TERMS` (added in that
            order whatever the order given); Moment-DETR's is ``("hinge",)``.
    """

    def __init__(
        self,
        matcher: HungarianMatcher,
        weight_dict: Mapping[str, float],
        eos_coef: float,
        losses: Sequence[str],
        span_loss_type: str = "l1",
        max_v_l: int = 75,
        saliency_margin: float = 1.0,
        rank_tau: float = 0.5,
        rank_levels: int = 11,
        rank_divisor: float = 12.0,
        saliency_terms: Sequence[str] = SALIENCY_TERMS,
    ) -> None:
        super().__init__()
        unknown = [name for name in losses if name not in LOSS_NAMES]
        if unknown:
            raise ValueError(f"SetCriterion: unknown losses {unknown}; choose from {LOSS_NAMES}")
        unknown = [name for name in saliency_terms if name not in SALIENCY_TERMS]
        if unknown or not saliency_terms:
            raise ValueError(
                f"SetCriterion: saliency_terms {list(saliency_terms)}; choose one or more of "
                f"{SALIENCY_TERMS}"
            )
        if span_loss_type != "l1":
            raise ValueError(f"SetCriterion: span_loss_type {span_loss_type!r}; only 'l1'")
        self.matcher = matcher
        self.weight_dict = dict(weight_dict)
        self.eos_coef = eos_coef
        self.losses = list(losses)
        self.span_loss_type = span_loss_type
        self.max_v_l = max_v_l
        self.saliency_margin = saliency_margin
        self.rank_tau = rank_tau
        self.rank_levels = rank_levels
        self.rank_divisor = rank_divisor
        self.saliency_terms = tuple(t for t in SALIENCY_TERMS if t in saliency_terms)
        class_weight = torch.ones(2)
        class_weight[BACKGROUND_LABEL] = eos_coef
        self.register_buffer("class_weight", class_weight)
        # Matches of the latest forward call, for logging and tests.
        self.last_matches: LayerMatches | None = None

    # ----------------------------------------------------------------------------- losses

    def loss_spans(
        self, outputs: Mapping[str, Any], targets: Mapping[str, Any], indices: Sequence[Match]
    ) -> dict[str, Tensor]:
        """``loss_span``: mean |pred - target| over matched cxw numbers (2 per match);
        ``loss_giou``: mean (1 - GIoU) over matched pairs."""
        pred_spans = outputs["pred_spans"]  # [B, Q, 2]
        batch_idx, pred_idx = _permutation_idx(indices, pred_spans.device)
        tgt_padded, _ = padded_targets(targets, pred_spans.device, pred_spans.dtype)
        tgt_idx = torch.cat([tgt for _, tgt in indices]).to(pred_spans.device)
        src = pred_spans[batch_idx, pred_idx]  # [num_matched, 2]
        tgt = tgt_padded[batch_idx, tgt_idx]  # [num_matched, 2]
        if src.shape[0] == 0:
            # Lighthouse would return NaN (mean of nothing); a zero keeps training going.
            zero = pred_spans.sum() * 0
            return {"loss_span": zero, "loss_giou": zero}
        loss_span = F.l1_loss(src, tgt, reduction="none")
        loss_giou = 1 - paired_generalized_temporal_iou(span_cxw_to_xx(src), span_cxw_to_xx(tgt))
        return {"loss_span": loss_span.mean(), "loss_giou": loss_giou.mean()}

    def loss_labels(
        self, outputs: Mapping[str, Any], targets: Mapping[str, Any], indices: Sequence[Match]
    ) -> dict[str, Tensor]:
        """``loss_label``: class-weighted CE over all B x Q queries (matched -> foreground),
        averaged with a plain mean (not divided by the weight sum, unlike ``reduction="mean"``).
        ``class_error``: 100 - top-1 accuracy (%) of matched queries; logged only."""
        logits = outputs["pred_logits"]  # [B, Q, 2]
        batch_idx, pred_idx = _permutation_idx(indices, logits.device)
        target_classes = torch.full(
            logits.shape[:2], BACKGROUND_LABEL, dtype=torch.int64, device=logits.device
        )
        target_classes[batch_idx, pred_idx] = FOREGROUND_LABEL
        loss_ce = F.cross_entropy(
            logits.transpose(1, 2), target_classes, self.class_weight, reduction="none"
        )
        return {
            "loss_label": loss_ce.mean(),
            "class_error": self._class_error(logits[batch_idx, pred_idx]),
        }

    @staticmethod
    def loss_absent(logits: Tensor) -> Tensor:
        """Mean CE of ``[B, Q, 2]`` logits against background: pairs whose sound is absent."""
        target = torch.full(logits.shape[:2], BACKGROUND_LABEL, device=logits.device)
        return F.cross_entropy(logits.transpose(1, 2), target)

    @staticmethod
    @torch.no_grad()
    def _class_error(matched_logits: Tensor) -> Tensor:
        num_matched = matched_logits.shape[0]
        if num_matched == 0:
            # Undefined (Lighthouse divides by zero); nothing matched, so nothing misclassified.
            return matched_logits.new_zeros(())
        top1 = matched_logits.topk(1, dim=1).indices.squeeze(1)
        accuracy = (top1 == FOREGROUND_LABEL).float().sum() * (100.0 / num_matched)
        return 100 - accuracy

    def loss_saliency(
        self, outputs: Mapping[str, Any], targets: Mapping[str, Any], indices: Sequence[Match]
    ) -> dict[str, Tensor]:
        """``loss_saliency``: the sum of ``saliency_terms`` (README §7), in Lighthouse's order
        hinge + rank-contrastive + negative-pair, so the float32 sum rounds as Lighthouse's."""
        scores = outputs["saliency_scores"]  # [B, L], padding included
        if "saliency_pos_labels" not in targets:
            return {"loss_saliency": scores.new_zeros(())}
        terms = {
            "hinge": self._hinge,
            "rank_contrastive": self._rank_contrastive_term,
            "negative_pair": self._negative_pair,
        }
        parts = [terms[name](outputs, targets) for name in self.saliency_terms]
        return {"loss_saliency": sum(parts[1:], start=parts[0])}  # ((a + b) + c), left to right

    def _hinge(self, outputs: Mapping[str, Any], targets: Mapping[str, Any]) -> Tensor:
        """Margin ranking on the sampled (positive, negative) frame pairs ``[B, P]``; un-masked
        scores, as in Lighthouse."""
        scores = outputs["saliency_scores"]
        pos_idx = targets["saliency_pos_labels"].to(scores.device)  # [B, P]
        neg_idx = targets["saliency_neg_labels"].to(scores.device)  # [B, P]
        pos_scores = scores.gather(1, pos_idx)
        neg_scores = scores.gather(1, neg_idx)
        num_pairs = pos_idx.shape[1]
        return (
            torch.clamp(self.saliency_margin + neg_scores - pos_scores, min=0).sum()
            / (len(pos_scores) * num_pairs)
            * 2  # Lighthouse's "* 2 to keep the loss the same scale"
        )

    def _negative_pair(self, outputs: Mapping[str, Any], targets: Mapping[str, Any]) -> Tensor:
        """A clip scored against an unrelated query should look irrelevant: per sample, the sum
        over valid frames of ``-log(1 - sigmoid(saliency_scores_neg))``, averaged."""
        scores_neg = outputs["saliency_scores_neg"]  # [B, L], text of another sample
        mask = outputs["video_mask"].to(scores_neg.dtype)  # [B, L], 1 = valid frame
        # Written as -log(1 - sigmoid(x)) rather than softplus(x) to keep Lighthouse's float32
        # rounding (the two differ by up to ~1e-4 relative for large scores).
        return (-torch.log(1.0 - torch.sigmoid(scores_neg)) * mask).sum(dim=1).mean()

    def _rank_contrastive_term(
        self, outputs: Mapping[str, Any], targets: Mapping[str, Any]
    ) -> Tensor:
        scores = outputs["saliency_scores"]
        mask = outputs["video_mask"].to(scores.dtype)
        labels = targets["saliency_all_labels"].to(scores.device)  # [B, L]
        return self._rank_contrastive(scores, outputs["saliency_scores_neg"], mask, labels)

    def _rank_contrastive(
        self, scores: Tensor, scores_neg: Tensor, mask: Tensor, labels: Tensor
    ) -> Tensor:
        """Supervised-contrastive ranking over [positive-query frames | negative-query frames].

        For each level r, frames with label >= r are positives against every other frame of the
        row (negative-query frames have label 0). Lighthouse loops over r and skips levels with
        no positive; a level without positives contributes exactly 0 here, so all levels are
        computed in one batched pass with no host sync.
        """
        scores = torch.cat([scores, scores_neg], dim=1)  # [B, 2L]
        labels = torch.cat([labels, torch.zeros_like(labels)], dim=1).to(scores.dtype)  # [B, 2L]
        mask = mask.repeat(1, 2)  # [B, 2L]
        scores = mask * scores + (1.0 - mask) * -1e3

        # Labels above 100 are "dropped" from the softmax in Lighthouse; never true for 0/1 labels.
        keep = ~(labels > 100)
        logits = scores * keep / self.rank_tau + ~keep * -1e3
        logits = logits - logits.max(dim=1, keepdim=True).values  # numerical stability
        log_prob = logits - torch.log(logits.exp().sum(1, keepdim=True) + 1e-6)  # [B, 2L]

        levels = torch.arange(1, self.rank_levels + 1, device=scores.device, dtype=scores.dtype)
        pos = labels.unsqueeze(0) >= levels[:, None, None]  # [R, B, 2L]
        mean_log_prob_pos = (pos * log_prob * mask).sum(-1) / (pos.sum(-1) + 1e-6)  # [R, B]
        row_has_pos = pos.any(-1)  # [R, B]
        loss = -mean_log_prob_pos * row_has_pos  # [R, B]
        return loss.mean(dim=1).sum() / self.rank_divisor

    def get_loss(
        self,
        name: str,
        outputs: Mapping[str, Any],
        targets: Mapping[str, Any],
        indices: Sequence[Match],
    ) -> dict[str, Tensor]:
        loss_map = {
            "spans": self.loss_spans,
            "labels": self.loss_labels,
            "saliency": self.loss_saliency,
        }
        if name not in loss_map:
            raise ValueError(f"SetCriterion: unknown loss {name!r}; choose from {list(loss_map)}")
        return loss_map[name](outputs, targets, indices)

    # ----------------------------------------------------------------------------- driver

    def match(self, outputs: Mapping[str, Any], targets: Mapping[str, Any]) -> LayerMatches:
        """Hungarian matches for the final layer and every aux layer (one device sync)."""
        aux_outputs = list(outputs.get("aux_outputs", []))
        layers = [outputs, *aux_outputs]
        if hasattr(self.matcher, "match_layers"):
            per_layer = self.matcher.match_layers(layers, targets)
        else:  # any DETR-style matcher callable
            per_layer = [self.matcher(layer, targets) for layer in layers]
        return LayerMatches(main=per_layer[0], aux=per_layer[1:])

    def forward(self, outputs: Mapping[str, Any], targets: Mapping[str, Any]) -> dict[str, Tensor]:
        """Compute every requested loss.

        Args:
            outputs: model outputs: ``pred_logits [B, Q, 2]``, ``pred_spans [B, Q, 2]`` (cxw,
                sigmoid), ``saliency_scores [B, L]``, and optionally ``aux_outputs`` (list of
                dicts with ``pred_logits``/``pred_spans``); the rank-contrastive and
                negative-pair terms also read ``saliency_scores_neg [B, L]`` and
                ``video_mask [B, L]``.
            targets: ``span_labels`` (B dicts with ``spans [n_i, 2]`` normalised cxw),
                ``saliency_pos_labels [B, P]``, ``saliency_neg_labels [B, P]`` (int64 frame
                indices) and ``saliency_all_labels [B, L]``.

        Returns:
            ``loss_span, loss_giou, loss_label, class_error, loss_saliency`` and, per aux
            layer i, ``loss_span_i, loss_giou_i, loss_label_i, class_error_i``. The matches used
            are left in ``self.last_matches``.
        """
        matches = self.match(outputs, targets)
        self.last_matches = matches
        losses: dict[str, Tensor] = {}
        for name in self.losses:
            losses.update(self.get_loss(name, outputs, targets, matches.main))
        if "pred_logits_neg" in outputs:
            losses["loss_label_neg"] = self.loss_absent(outputs["pred_logits_neg"])
        aux_layers = zip(outputs.get("aux_outputs", []), matches.aux, strict=True)
        for i, (aux, indices) in enumerate(aux_layers):
            for name in self.losses:
                if name == "saliency":  # saliency comes from the encoder: final outputs only
                    continue
                aux_losses = self.get_loss(name, aux, targets, indices)
                losses.update({f"{k}_{i}": v for k, v in aux_losses.items()})
        return losses


def build_weight_dict(opt: Mapping[str, Any]) -> dict[str, float]:
    """Lighthouse's loss weights: main losses, then span/giou/label per aux decoder layer."""
    weight_dict = {
        "loss_span": float(opt["span_loss_coef"]),
        "loss_giou": float(opt["giou_loss_coef"]),
        "loss_label": float(opt["label_loss_coef"]),
        "loss_saliency": float(opt["lw_saliency"]),
    }
    if float(opt.get("neg_label_loss_coef") or 0) > 0:
        weight_dict["loss_label_neg"] = float(opt["neg_label_loss_coef"])
    if opt.get("aux_loss", True):
        main = dict(weight_dict)
        for i in range(opt["dec_layers"] - 1):
            per_layer = {
                k: v for k, v in main.items() if k not in ("loss_saliency", "loss_label_neg")
            }
            weight_dict.update({f"{k}_{i}": v for k, v in per_layer.items()})
    return weight_dict


def build_criterion(
    opt: Mapping[str, Any], saliency_terms: Sequence[str] = SALIENCY_TERMS
) -> SetCriterion:
    """Criterion (with its matcher) from Lighthouse's flat config keys; ``saliency_terms`` is
    the model's choice (see :class:`SetCriterion`), not a config key."""
    return SetCriterion(
        matcher=build_matcher(opt),
        weight_dict=build_weight_dict(opt),
        eos_coef=opt["eos_coef"],
        losses=list(LOSS_NAMES),
        span_loss_type=opt.get("span_loss_type", "l1"),
        max_v_l=opt.get("max_v_l", 75),
        saliency_margin=opt["saliency_margin"],
        saliency_terms=saliency_terms,
    )
