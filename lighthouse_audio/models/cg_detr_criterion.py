"""CG-DETR's training losses (Lighthouse's ``cg_detr.SetCriterion``), on top of QD-DETR's.

Span, gIoU and label losses and the matching are :class:`~.criterion.SetCriterion`'s. CG-DETR
replaces ``loss_saliency`` and adds three terms (README §6.2):

- ``loss_saliency``: a score branch (hinge + rank-contrastive + negative-pair, the last two only
  over the real-negative rows) plus ``lw_wattn`` x an attention branch on ``t2vattnvalues``
  (rank-contrastive + BCE + negative-pair + hinge);
- ``loss_ms_align``: moment/non-moment tokens against sentence tokens (two cross-entropies) and
  the moment token against every frame (BCE);
- ``loss_distill``: KL of the T2V attention map from the moment-to-text similarity;
- ``loss_orthogonal_dummy``: mean |cos| between distinct dummy tokens and between prompts.

The last three are final-layer only; ``loss_ms_align`` and ``loss_distill`` are 0 without the
training call's outputs (``memory_moment``). Every formula follows Lighthouse operation for
operation, its quirks included (each marked "Lighthouse quirk").
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from .criterion import LOSS_NAMES, SetCriterion
from .matcher import HungarianMatcher, Match, build_matcher

__all__ = [
    "CGDETRCriterion",
    "build_cg_detr_criterion",
    "build_cg_detr_weight_dict",
    "relevant_clips",
]

EXTRA_LOSSES = ("ms_align", "distill", "orthogonal_dummy")  # final layer only
RANK_TAU = 0.5
RANK_LEVELS = 11
RANK_DIVISOR = 12.0


def rank_contrastive(scores: Tensor, labels: Tensor, mask: Tensor) -> Tensor:
    """Lighthouse's rank-contrastive term over rows of ``scores`` (dim 1 is the sequence).

    Masked positions are set to -1000, then for each level r = 1..11 the frames with label >= r
    are positives of a softmax over the row (temperature 0.5); the per-row mean log-probability
    of the positives, averaged over every remaining element, summed over levels, / 12. Works on
    any ``[N, L, ...]`` layout exactly as Lighthouse's code does (see :meth:`CGDETRCriterion.
    _score_rank_terms` for the one place where that matters).
    """
    scores = mask * scores + (1.0 - mask) * -1e3
    keep = ~(labels > 100)  # labels above 100 are "dropped"; never true for 0/1 labels
    logits = scores * keep / RANK_TAU + ~keep * -1e3
    logits = logits - logits.max(dim=1, keepdim=True).values
    log_prob = logits - torch.log(logits.exp().sum(1, keepdim=True) + 1e-6)
    total = scores.new_zeros(())
    # Lighthouse skips levels without any positive; they would add exactly 0 here.
    for level in range(1, RANK_LEVELS + 1):
        pos = labels >= level
        row_has_pos = pos.sum(dim=1) > 0
        mean_log_prob_pos = (pos * log_prob * mask).sum(1) / (pos.sum(1) + 1e-6)
        total = total + (-mean_log_prob_pos * row_has_pos).mean()
    return total / RANK_DIVISOR


def hinge(scores: Tensor, pos_idx: Tensor, neg_idx: Tensor, margin: float) -> Tensor:
    """Margin ranking of the sampled (positive, negative) frame pairs ``[B, P]``."""
    pos = scores.gather(1, pos_idx.to(scores.device))
    neg = scores.gather(1, neg_idx.to(scores.device))
    return torch.clamp(margin + neg - pos, min=0).sum() / (len(pos) * pos_idx.shape[1]) * 2


class CGDETRCriterion(SetCriterion):
    """Matching plus CG-DETR's losses; see the module docstring.

    Args:
        matcher, weight_dict, eos_coef, span_loss_type, max_v_l, saliency_margin: as for
            :class:`~.criterion.SetCriterion`.
        lw_wattn: weight of the attention branch inside ``loss_saliency``.
    """

    def __init__(
        self,
        matcher: HungarianMatcher,
        weight_dict: Mapping[str, float],
        eos_coef: float,
        span_loss_type: str = "l1",
        max_v_l: int = 75,
        saliency_margin: float = 1.0,
        lw_wattn: float = 1.0,
    ) -> None:
        super().__init__(
            matcher, weight_dict, eos_coef, list(LOSS_NAMES), span_loss_type=span_loss_type,
            max_v_l=max_v_l, saliency_margin=saliency_margin,
        )  # fmt: skip
        self.lw_wattn = lw_wattn

    # ------------------------------------------------------------------------- saliency

    def loss_saliency(
        self, outputs: Mapping[str, Any], targets: Mapping[str, Any], indices: Sequence[Match]
    ) -> dict[str, Tensor]:
        """``loss_saliency`` = score branch + ``lw_wattn`` x attention branch (README §6.2)."""
        scores = outputs["saliency_scores"]
        if "saliency_pos_labels" not in targets:
            return {"loss_saliency": scores.new_zeros(())}
        mask = outputs["video_mask"].to(scores.dtype)
        labels = targets["saliency_all_labels"].to(scores.device)
        pos_idx, neg_idx = targets["saliency_pos_labels"], targets["saliency_neg_labels"]
        attention = outputs["t2vattnvalues"]
        margin = self.saliency_margin
        if outputs.get("saliency_scores_neg") is None:  # no real negative in the batch
            score_branch = hinge(scores, pos_idx, neg_idx, margin) + rank_contrastive(
                scores, labels, mask
            )
            attn_branch = (
                rank_contrastive(attention, labels, mask)
                + F.binary_cross_entropy(attention.reshape(-1), labels.clamp(0, 1).reshape(-1))
                + hinge(attention, pos_idx, neg_idx, margin)
            )
            return {"loss_saliency": score_branch + attn_branch * self.lw_wattn}

        real = outputs["real_neg_mask"]
        scores_neg = outputs["saliency_scores_neg"]
        neg_pair = (-torch.log(1.0 - torch.sigmoid(scores_neg)) * mask[real]).sum(dim=1).mean()
        rank = self._score_rank_terms(scores, scores_neg, labels, mask, real)
        score_branch = hinge(scores, pos_idx, neg_idx, margin) + rank + neg_pair

        attention_neg = outputs["t2vattnvalues_neg"]
        neg_pair_attn = (-torch.log(1.0 - attention_neg) * mask[real]).sum(dim=1).mean()
        # Lighthouse quirk: the attention branch's term for the non-negative rows is computed
        # but added to the score branch's variable after its last use, so it never counts.
        rank_attn = rank_contrastive(*_with_negatives(attention, attention_neg, labels, mask, real))
        bce = F.binary_cross_entropy(attention.reshape(-1), labels.clamp(0, 1).reshape(-1))
        attn_branch = rank_attn + bce + neg_pair_attn + hinge(attention, pos_idx, neg_idx, margin)
        return {"loss_saliency": score_branch + attn_branch * self.lw_wattn}

    @staticmethod
    def _score_rank_terms(
        scores: Tensor, scores_neg: Tensor, labels: Tensor, mask: Tensor, real: Tensor
    ) -> Tensor:
        """Rank-contrastive over [scores | scores_neg] for the real-negative rows, plus a
        separate one over their own scores for the other rows."""
        rank = rank_contrastive(*_with_negatives(scores, scores_neg, labels, mask, real))
        others = ~real
        count = int(others.sum())
        if count == 0:
            return rank
        rows = (scores[others], labels[others], mask[others])
        if count == 1:
            # Lighthouse quirk: a single such row gets an extra leading dimension ([1, 1, L]),
            # so its softmax runs over a size-1 axis and the term is about 1e-6 x positives / L.
            rows = tuple(x.unsqueeze(0) for x in rows)
        return rank + rank_contrastive(*rows)

    # ------------------------------------------------------------------------- extra losses

    def loss_ms_align(
        self, outputs: Mapping[str, Any], targets: Mapping[str, Any], indices: Sequence[Match]
    ) -> dict[str, Tensor]:
        """Moment-sentence alignment: CE of moment/non-moment tokens against sentence tokens,
        CE against dummy-sentence tokens, and BCE of the moment token against every frame."""
        moment = outputs.get("memory_moment")
        if moment is None:
            return {"loss_ms_align": outputs["pred_spans"].new_zeros(())}
        moment_n = F.normalize(moment, dim=1)
        nmoment_n = F.normalize(outputs["nmmemory_moment"], dim=1)
        sentence = F.normalize(outputs["sentence_txt"], dim=1)
        dummy = F.normalize(outputs["sentence_dummy"], dim=1)
        batch = moment.shape[0]
        eye = torch.eye(batch, device=moment.device)
        # Labels as Lighthouse takes them: the first maximum of each row of its label matrix.
        labels = torch.cat((eye, torch.zeros_like(eye)), dim=1).max(dim=1).indices
        dummy_labels = torch.cat((1 - eye, torch.ones_like(eye)), dim=1).max(dim=1).indices
        similarity = torch.cat((moment_n @ sentence.T, nmoment_n @ sentence.T), dim=1)
        loss = F.cross_entropy(similarity, labels)
        dummy_similarity = torch.cat((moment_n @ dummy.T, nmoment_n @ dummy.T), dim=1)
        loss = loss + F.cross_entropy(dummy_similarity, dummy_labels)

        frames = outputs["src_vid"]  # [B, Lv, d]: moment frames inside the GT, others outside
        inside = relevant_clips(targets).to(frames.device).clamp(0, 1)
        logit = torch.sigmoid(moment.unsqueeze(1) @ frames.transpose(1, 2))  # raw moment token
        bce = F.binary_cross_entropy(logit.reshape(-1), inside.reshape(-1), reduction="none")
        loss = loss + (bce * outputs["video_mask"].reshape(-1)).mean()
        return {"loss_ms_align": loss}

    def loss_distill(
        self, outputs: Mapping[str, Any], targets: Mapping[str, Any], indices: Sequence[Match]
    ) -> dict[str, Tensor]:
        """KL(softmax(moment-to-text similarity) || T2V attention), mean over keys, averaged
        over the frames inside the GT (the teacher is detached)."""
        similarity = outputs.get("moment2txt_similarity")
        if similarity is None:
            return {"loss_distill": outputs["pred_spans"].new_zeros(())}
        attention = outputs["cate_attn_weights"]  # [B, Lv, nd + Lt]
        moment_mask = outputs["moment_mask"].int().reshape(-1)
        batch, frames, keys = attention.shape
        teacher = similarity.softmax(dim=-1).detach().reshape(batch * frames, keys)
        student = torch.log(attention + 1e-6).reshape(batch * frames, keys)
        loss = F.kl_div(student, teacher, reduction="none").mean(1) * moment_mask
        return {"loss_distill": loss.sum() / moment_mask.sum()}

    def loss_orthogonal_dummy(
        self, outputs: Mapping[str, Any], targets: Mapping[str, Any], indices: Sequence[Match]
    ) -> dict[str, Tensor]:
        """Mean |cos| between distinct dummy tokens (per sample; skipped with one dummy) plus
        between the prompts; the diagonal counts as 0 in the mean, the second operand is
        detached."""
        dummies = outputs["dummy_tokens"]  # [B, nd, d]
        prompts = outputs["global_rep_tokens"]  # [P, d]
        loss = _mean_abs_offdiag_cos(prompts)
        if dummies.shape[1] != 1:
            loss = _mean_abs_offdiag_cos(dummies) + loss
        return {"loss_orthogonal_dummy": loss}

    def get_loss(
        self,
        name: str,
        outputs: Mapping[str, Any],
        targets: Mapping[str, Any],
        indices: Sequence[Match],
    ) -> dict[str, Tensor]:
        extra = {
            "ms_align": self.loss_ms_align,
            "distill": self.loss_distill,
            "orthogonal_dummy": self.loss_orthogonal_dummy,
        }
        if name in extra:
            return extra[name](outputs, targets, indices)
        return super().get_loss(name, outputs, targets, indices)

    def forward(self, outputs: Mapping[str, Any], targets: Mapping[str, Any]) -> dict[str, Tensor]:
        """QD-DETR's losses (span, gIoU, label per layer; saliency on the final layer) plus
        ``loss_ms_align``, ``loss_distill`` and ``loss_orthogonal_dummy``, in Lighthouse's key
        order (final layer, then the aux layers)."""
        losses = super().forward(outputs, targets)
        main = {k: v for k, v in losses.items() if not k[-1].isdigit()}
        for name in EXTRA_LOSSES:
            main.update(self.get_loss(name, outputs, targets, self.last_matches.main))
        return {**main, **{k: v for k, v in losses.items() if k[-1].isdigit()}}


def relevant_clips(targets: Mapping[str, Any]) -> Tensor:
    """``[B, Lv]`` frames inside the first window: Lighthouse's ``relevant_clips`` target, which
    is ``saliency_all_labels`` under another name (batches made here carry only the latter)."""
    clips = targets.get("relevant_clips")
    return targets["saliency_all_labels"] if clips is None else clips


def _with_negatives(
    scores: Tensor, scores_neg: Tensor, labels: Tensor, mask: Tensor, real: Tensor
) -> tuple[Tensor, Tensor, Tensor]:
    """The real-negative rows as [own scores | negative scores], labels [labels | 0], mask
    repeated: the arguments of :func:`rank_contrastive`."""
    return (
        torch.cat((scores[real], scores_neg), dim=1),
        torch.cat((labels[real], torch.zeros_like(labels[real])), dim=1),
        mask[real].repeat(1, 2),
    )


def _mean_abs_offdiag_cos(tokens: Tensor) -> Tensor:
    """``[..., n, d]``: mean over all n x n cells of |cos| with the diagonal set to 0."""
    unit = tokens / tokens.norm(dim=-1, keepdim=True)
    cos = unit @ unit.transpose(-1, -2).detach()
    off = 1 - torch.eye(cos.shape[-1], device=cos.device, dtype=cos.dtype)
    return (cos * off).abs().mean()


def build_cg_detr_weight_dict(opt: Mapping[str, Any]) -> dict[str, float]:
    """Lighthouse's CG-DETR weights; ``loss_orthogonal_dummy`` takes ``lw_distill``. The aux
    entries for ms_align/distill/orthogonal_dummy are Lighthouse's too, though never produced."""
    weight_dict = {
        "loss_span": float(opt["span_loss_coef"]),
        "loss_giou": float(opt["giou_loss_coef"]),
        "loss_label": float(opt["label_loss_coef"]),
        "loss_saliency": float(opt["lw_saliency"]),
        "loss_ms_align": float(opt["lw_ms_align"]),
        "loss_distill": float(opt["lw_distill"]),
        "loss_orthogonal_dummy": float(opt["lw_distill"]),  # Lighthouse's choice of weight
    }
    if opt.get("aux_loss", True):
        main = dict(weight_dict)
        for i in range(int(opt["dec_layers"]) - 1):
            weight_dict.update({f"{k}_{i}": v for k, v in main.items() if k != "loss_saliency"})
    return weight_dict


def build_cg_detr_criterion(opt: Mapping[str, Any]) -> CGDETRCriterion:
    """The criterion (with its matcher) from Lighthouse's flat config keys."""
    return CGDETRCriterion(
        matcher=build_matcher(opt),
        weight_dict=build_cg_detr_weight_dict(opt),
        eos_coef=opt["eos_coef"],
        span_loss_type=opt.get("span_loss_type", "l1"),
        max_v_l=opt.get("max_v_l", 75),
        saliency_margin=opt["saliency_margin"],
        lw_wattn=float(opt["lw_wattn"]),
    )
