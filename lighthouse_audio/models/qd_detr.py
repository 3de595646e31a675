"""QD-DETR (Moon et al., CVPR 2023) for audio moment retrieval, compatible with Lighthouse.

The network loads Lighthouse's QD-DETR checkpoints with ``strict=True`` and reproduces its
eval-mode outputs. Lighthouse runs the transformer twice per batch: once with each sample's own
text, and once with the next sample's text (the "negative" pass, used only for its encoder memory
in the saliency loss). Here both passes share one batched encoder pass and only the positive half
is decoded, which gives the same outputs faster; ``batched_negative=False`` runs them separately.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import Tensor, nn

from lighthouse_audio.registry import MODELS

from .attention import t2v_attention_mask
from .bundle import ModelBundle
from .criterion import build_criterion
from .input_projection import input_projection
from .joint_prior import JointPrior, build_joint_prior
from .layers import MLP, aux_outputs, inverse_sigmoid
from .options import ContextDETRConfig, check_dims, detr_arguments
from .position_encoding import PositionEmbeddingSine, TrainablePositionalEncoding
from .postprocess import build_batch_postprocessor
from .prior_score import PRIOR_SIMILARITY_KEY
from .transformer import Transformer


class QDDETR(nn.Module):
    """Query-dependent DETR: text-conditioned audio encoder + span decoder + saliency head.

    Args:
        txt_dim: text feature width (768 for CLAP).
        vid_dim: width of the "video" context fed to the model; in ``audio_tef`` mode this is the
            2-d TEF plus the audio width (TEF first), since ``src_aud`` is appended to ``src_vid``.
        hidden_dim: model width; Lighthouse's decoder only works with 256.
        nheads, enc_layers, dec_layers, dim_feedforward, dropout: transformer settings
            (``enc_layers`` applies to both the text-to-audio and the self-attention encoder).
        num_queries: number of span queries.
        n_input_proj: input projection blocks (1 to 3).
        input_dropout: dropout inside the input projections.
        aux_loss: also return every earlier decoder layer's predictions in ``aux_outputs``.
        max_v_l: maximum context length (kept for config compatibility).
        max_q_l: size of the (unused) learned text position table.
        span_loss_type: only ``"l1"`` (center, width regression) is supported.
        batched_negative: run the negative-text pass in the same batch as the positive one.
        decode_negative: also decode the negative pass and return its class logits
            (``pred_logits_neg``) for the absent-sound loss; off in Lighthouse's QD-DETR.
        joint_prior: a frozen joint space whose frame-query similarity is added to each projected
            frame (``models/joint_prior.py``); None is Lighthouse's QD-DETR.
    """

    def __init__(
        self,
        txt_dim: int,
        vid_dim: int,
        hidden_dim: int = 256,
        nheads: int = 8,
        enc_layers: int = 2,
        dec_layers: int = 2,
        dim_feedforward: int = 1024,
        num_queries: int = 10,
        n_input_proj: int = 2,
        input_dropout: float = 0.5,
        dropout: float = 0.1,
        aux_loss: bool = True,
        max_v_l: int = 75,
        max_q_l: int = 32,
        span_loss_type: str = "l1",
        batched_negative: bool = True,
        joint_prior: JointPrior | None = None,
        decode_negative: bool = False,
    ) -> None:
        super().__init__()
        check_dims(hidden_dim, nheads, n_input_proj, fixed_width="QD-DETR")
        if span_loss_type != "l1":
            raise ValueError(f"span_loss_type must be 'l1', got {span_loss_type!r}")
        self.hidden_dim = hidden_dim
        self.num_queries = num_queries
        self.max_v_l = max_v_l
        self.span_loss_type = span_loss_type
        self.aux_loss = aux_loss
        self.batched_negative = batched_negative
        self.decode_negative = decode_negative
        # The negative pass only feeds the training loss; prediction switches it off.
        self.negative_pass = True

        # Construction order = Lighthouse's, so a seed gives the same initial weights.
        self.transformer = Transformer(
            hidden_dim, nheads, enc_layers, dec_layers, dim_feedforward, dropout
        )
        self.position_embed = PositionEmbeddingSine(hidden_dim, normalize=True)
        # Built for checkpoint compatibility only: text tokens get zero positions.
        self.txt_position_embed = TrainablePositionalEncoding(max_q_l, hidden_dim, input_dropout)
        self.span_embed = MLP(hidden_dim, hidden_dim, 2, 3)
        self.class_embed = nn.Linear(hidden_dim, 2)  # 0: foreground, 1: background
        self.query_embed = nn.Embedding(num_queries, 2)  # anchors (center, width) before sigmoid
        self.input_txt_proj = input_projection(txt_dim, hidden_dim, n_input_proj, input_dropout)
        self.input_vid_proj = input_projection(vid_dim, hidden_dim, n_input_proj, input_dropout)
        self.saliency_proj1 = nn.Linear(hidden_dim, hidden_dim)
        self.saliency_proj2 = nn.Linear(hidden_dim, hidden_dim)
        self.global_rep_token = nn.Parameter(torch.randn(hidden_dim))
        self.global_rep_pos = nn.Parameter(torch.randn(hidden_dim))
        self.joint_prior = joint_prior  # last: without it, the state dict is Lighthouse's

    def forward(
        self,
        src_txt: Tensor,
        src_txt_mask: Tensor,
        src_vid: Tensor,
        src_vid_mask: Tensor,
        src_aud: Tensor | None = None,
        src_aud_mask: Tensor | None = None,
        qid: Sequence[Any] | None = None,
    ) -> dict[str, Any]:
        """Predict spans and frame saliency.

        Args:
            src_txt: ``[B, Lt, txt_dim]`` text tokens; src_txt_mask: ``[B, Lt]``, 1 valid, 0 pad.
            src_vid: ``[B, Lv, Dv]`` context (the TEF in ``audio_tef`` mode);
                src_vid_mask: ``[B, Lv]``, 1 valid, 0 pad. This is the only context mask used.
            src_aud: ``[B, Lv, Da]`` audio frames, appended to ``src_vid`` (``Dv + Da == vid_dim``).
            src_aud_mask: accepted for Lighthouse's call signature and ignored, as in Lighthouse.
            qid: the batch's query ids, passed in training when the joint prior has cross-fitted
                folds (``models/joint_prior.py``), which score each query in its fold's space.

        Returns:
            A dict, in this key order:
            - ``pred_logits``: ``[B, Q, 2]``, class 0 = foreground.
            - ``pred_spans``: ``[B, Q, 2]`` normalised (center, width) after a sigmoid.
            - ``saliency_scores``: ``[B, Lv]`` for every frame, padding included.
            - ``saliency_scores_neg``: ``[B, Lv]`` with sample ``i`` paired with text ``i+1``
              (the last with the first); absent when ``negative_pass`` is off (prediction).
            - ``video_mask``: ``src_vid_mask`` unchanged.
            - ``prior_similarity`` (with a joint prior): ``[B, Lv]`` query-frame cosine
              similarity, for ``prior_score_mix`` (``models/prior_score.py``).
            - ``aux_outputs`` (if ``aux_loss``): ``dec_layers - 1`` dicts with ``pred_logits`` and
              ``pred_spans`` of the earlier decoder layers.
        """
        if src_txt.shape[1] == 0:
            raise ValueError("QD-DETR needs at least one text token per batch, got Lt == 0")
        if src_aud is not None:
            src_vid = torch.cat((src_vid, src_aud), dim=2)

        vid = self.input_vid_proj(src_vid)  # [B, Lv, d]
        txt = self.input_txt_proj(src_txt)  # [B, Lt, d]
        vid_pos = self.position_embed(vid, src_vid_mask)
        vid_pad = ~src_vid_mask.bool()
        txt_pad = ~src_txt_mask.bool()
        # Negative pairs: sample i gets sample i+1's text (the last gets the first).
        txt_neg, txt_pad_neg = txt_roll(txt), txt_roll(txt_pad)
        vid_neg = vid
        prior_similarity = None
        if self.joint_prior is not None:
            if src_aud is None:
                raise ValueError("joint_prior needs audio frames (an audio ctx_mode)")
            prior = self.joint_prior
            if self.training and prior.has_folds and qid is not None:
                prior_similarity, negative = prior.routed_similarities(
                    src_aud, src_txt, src_txt_mask, qid
                )
                vid_neg = vid + prior.project(negative)
            else:
                frames = prior.embed_frames(src_aud)
                query = prior.embed_query(src_txt, src_txt_mask)
                vid_neg = vid + prior(frames, txt_roll(query))
                prior_similarity = prior.similarity(frames, query)  # also for scoring
            vid = vid + prior.project(prior_similarity)

        nhead = self.transformer.nhead
        blocked = t2v_attention_mask(vid_pad, txt_pad, nhead)
        blocked_neg = t2v_attention_mask(vid_pad, txt_pad_neg, nhead)
        globals_ = (self.global_rep_token, self.global_rep_pos)
        batch = vid.shape[0]
        # The positive half's memory is kept as encode returns it (a view) in every mode: on
        # some CPUs a linear layer rounds a view and a contiguous copy of the same values
        # differently, and Lighthouse computes the positive outputs from the view.
        neg_local = neg_global = both_local = None
        if not self.negative_pass:
            memory_local, memory_global = self.transformer.encode(
                vid, vid_pos, vid_pad, txt, blocked, *globals_
            )
        elif self.batched_negative:
            # One encoder pass over [positive | negative]; 2x batch, same per-sample results.
            both_local, both_global = self.transformer.encode(
                torch.cat((vid, vid_neg)),
                vid_pos.repeat(2, 1, 1),
                vid_pad.repeat(2, 1),
                torch.cat((txt, txt_neg)),
                torch.cat((blocked, blocked_neg)),
                *globals_,
            )
            memory_local, neg_local = both_local[:batch], both_local[batch:]
            memory_global, neg_global = both_global[:batch], both_global[batch:]
        else:
            memory_local, memory_global = self.transformer.encode(
                vid, vid_pos, vid_pad, txt, blocked, *globals_
            )
            neg_local, neg_global = self.transformer.encode(
                vid_neg, vid_pos, vid_pad, txt_neg, blocked_neg, *globals_
            )
        # Lighthouse decodes only the positive pairs. With decode_negative the negative pairs
        # are decoded too: their sound is (almost always) absent, which teaches the class head
        # that a query whose sound is not there gets no confident moment, so confidences
        # compare across the chunks of a long recording.
        decode_both = self.negative_pass and self.decode_negative
        if decode_both:
            decoded = both_local if both_local is not None else torch.cat((memory_local, neg_local))
            pos, pad = vid_pos.repeat(2, 1, 1), vid_pad.repeat(2, 1)
        else:
            decoded, pos, pad = memory_local, vid_pos, vid_pad
        hs, references = self.transformer.decode(decoded, pos, pad, self.query_embed.weight)
        if decode_both:
            logits_neg = self.class_embed(hs[-1, batch:])
            hs, references = hs[:, :batch], references[:, :batch]

        outputs_class = self.class_embed(hs)  # [layers, B, Q, 2]
        outputs_coord = (self.span_embed(hs) + inverse_sigmoid(references)).sigmoid()

        # Per half, as Lighthouse computes them: the positive scores then never depend on
        # whether the negative pass ran.
        out: dict[str, Any] = {
            "pred_logits": outputs_class[-1],
            "pred_spans": outputs_coord[-1],
            "saliency_scores": self.saliency(memory_local, memory_global),
        }
        if self.negative_pass:
            out["saliency_scores_neg"] = self.saliency(neg_local, neg_global)
        if decode_both:
            out["pred_logits_neg"] = logits_neg  # [B, Q, 2]: sample i with text i+1
        out["video_mask"] = src_vid_mask
        if prior_similarity is not None:  # for scores across recordings (models/prior_score.py)
            out[PRIOR_SIMILARITY_KEY] = prior_similarity
        if self.aux_loss:
            out["aux_outputs"] = aux_outputs(outputs_class, outputs_coord)
        return out

    def saliency(self, memory_local: Tensor, memory_global: Tensor) -> Tensor:
        """Frame-vs-global-token similarity: ``[N, Lv, d]``, ``[N, d]`` -> ``[N, Lv]``."""
        frames = self.saliency_proj1(memory_local)
        query = self.saliency_proj2(memory_global).unsqueeze(1)
        return torch.sum(frames * query, dim=-1) / math.sqrt(self.hidden_dim)


def txt_roll(x: Tensor) -> Tensor:
    """Sample i gets sample i+1's row, the last the first (the negative pairing)."""
    return x.roll(-1, dims=0)


@dataclass(frozen=True, kw_only=True)
class QDDETRConfig(ContextDETRConfig):
    """The config keys the network reads (see :class:`~.options.DETRConfig`)."""

    model: ClassVar[str] = "qd_detr"
    fixed_width: ClassVar[str | None] = "QD-DETR"

    max_v_l: int = 75


def build_model(opt: Mapping[str, Any], batched_negative: bool = True) -> QDDETR:
    """Build QD-DETR from Lighthouse's flat config keys (an EasyDict or a plain dict)."""
    cfg = QDDETRConfig.from_opt(opt)
    model = QDDETR(
        txt_dim=cfg.t_feat_dim,
        vid_dim=cfg.context_dim,
        **detr_arguments(cfg),
        max_v_l=cfg.max_v_l,
        span_loss_type=cfg.span_loss_type,
        batched_negative=batched_negative,
        joint_prior=build_joint_prior(opt, cfg.hidden_dim),
        decode_negative=float(opt.get("neg_label_loss_coef") or 0) > 0,
    )
    if model.joint_prior is not None and model.joint_prior.has_folds:
        model.training_inputs = ("qid",)  # the folds route by qid (models/training_inputs.py)
    return model


@MODELS.register(name="qd_detr")
def build(opt: Mapping[str, Any]) -> ModelBundle:
    """QD-DETR with its criterion and Lighthouse's evaluation post-processing.

    The network's keys are :class:`QDDETRConfig`; the matcher's and losses' are read by
    ``build_criterion``, the clamp by ``build_batch_postprocessor``."""
    return ModelBundle(
        model=build_model(opt),
        criterion=build_criterion(opt),
        postprocessor=build_batch_postprocessor(opt),
    )
