"""TR-DETR (Sun et al., AAAI 2024) for audio moment retrieval, compatible with Lighthouse.

The network loads Lighthouse's TR-DETR checkpoints with ``strict=True`` and reproduces its
eval-mode outputs. It is QD-DETR's transformer (``models/transformer.py``) without the global
token and without a negative pass, plus TR-DETR's "task reciprocity":

    frames, text --input projections--> vid_ed, txt_ed (kept for the VTC/CTC losses)
    vid_ed, txt_ed --query fusion (models/query_fusion.py)--> frames
    frames --T2V cross-attention--> t2v --self-attention encoder--> memory
    HD2MR: memory <- encoder(memory + t2v * softmax(saliency(memory)))   (the same encoder again)
    memory --DAB decoder--> spans and logits
    MR2HD: GRU over vid_ed inside the top-scored span -> per-frame weight; memory * (1 + weight)
           -> saliency_scores

Lighthouse's quirks are kept where they define results: the pooled ``*_cls_ed`` vectors and
the HD2MR softmax include padded frames/tokens, and MR2HD floors the top span to frames of the
*padded* length and slices with Python's rules (a negative start wraps around; an empty slice
gives an all-zero GRU input).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from lighthouse_audio.registry import MODELS
from lighthouse_audio.spans import span_cxw_to_xx

from .attention import t2v_attention_mask
from .bundle import ModelBundle
from .input_projection import input_projection
from .layers import MLP, aux_outputs, inverse_sigmoid
from .options import ContextDETRConfig, check_dims, detr_arguments, refuse_options
from .position_encoding import PositionEmbeddingSine, TrainablePositionalEncoding
from .postprocess import build_batch_postprocessor
from .query_fusion import GRUSummary, QueryFusion
from .tr_detr_criterion import build_tr_detr_criterion
from .transformer import Transformer

# Not in Lighthouse's outputs: the CTC loss needs the text mask, which Lighthouse's train.py
# takes from the model inputs; here the model-agnostic training loop hands the criterion only
# the outputs, so the forward returns it (last, after Lighthouse's keys).
TEXT_MASK_KEY = "src_txt_mask"


class TRDETR(nn.Module):
    """Task-reciprocal DETR: query fusion, text-to-audio encoder, HD2MR, span decoder, MR2HD.

    Args:
        txt_dim: text feature width (768 for CLAP).
        vid_dim: width of the "video" context; in ``audio_tef`` mode the 2-d TEF plus the audio
            width (TEF first), since ``src_aud`` is appended to ``src_vid``.
        hidden_dim: model width; Lighthouse's decoder only works with 256.
        nheads, enc_layers, dec_layers, dim_feedforward, dropout: transformer settings.
        num_queries: number of span queries.
        n_input_proj: input projection blocks (1 to 3).
        input_dropout: dropout inside the input projections.
        aux_loss: also return every earlier decoder layer's predictions in ``aux_outputs``.
        max_q_l: size of the (unused) learned text position table.
        clip_length: seconds per frame (MR2HD turns the top span into frames with it).
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
        max_q_l: int = 32,
        clip_length: float = 1.0,
    ) -> None:
        super().__init__()
        check_dims(hidden_dim, nheads, n_input_proj, fixed_width="TR-DETR")
        if clip_length <= 0:
            raise ValueError(f"clip_length must be positive, got {clip_length}")
        self.hidden_dim = hidden_dim
        self.num_queries = num_queries
        self.aux_loss = aux_loss
        self.clip_length = clip_length

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
        self.fuser = QueryFusion(hidden_dim)
        self.gru_extractor = GRUSummary(hidden_dim)

    def forward(
        self,
        src_txt: Tensor,
        src_txt_mask: Tensor,
        src_vid: Tensor,
        src_vid_mask: Tensor,
        src_aud: Tensor | None = None,
        src_aud_mask: Tensor | None = None,
    ) -> dict[str, Any]:
        """Predict spans and frame saliency.

        Args:
            src_txt: ``[B, Lt, txt_dim]`` text tokens; src_txt_mask: ``[B, Lt]``, 1 valid, 0 pad.
            src_vid: ``[B, Lv, Dv]`` context (the TEF in ``audio_tef`` mode);
                src_vid_mask: ``[B, Lv]``, 1 valid, 0 pad. This is the only context mask used.
            src_aud: ``[B, Lv, Da]`` audio frames, appended to ``src_vid`` (``Dv + Da == vid_dim``).
            src_aud_mask: accepted for Lighthouse's call signature and ignored, as in Lighthouse.

        Returns:
            A dict, in this key order:
            - ``pred_logits``: ``[B, Q, 2]``, class 0 = foreground.
            - ``pred_spans``: ``[B, Q, 2]`` normalised (center, width) after a sigmoid.
            - ``saliency_scores``: ``[B, Lv]`` (MR2HD) for every frame, padding included.
            - ``video_mask``: ``src_vid_mask`` unchanged.
            - ``aux_outputs`` (if ``aux_loss``): ``dec_layers - 1`` dicts with ``pred_logits`` and
              ``pred_spans`` of the earlier decoder layers.
            - ``src_txt_ed`` ``[B, Lt, d]``, ``src_vid_ed`` ``[B, Lv, d]``: the projected inputs;
              ``src_vid_cls_ed``, ``src_txt_cls_ed`` ``[B, d]``: their means over all positions,
              padding included (for the VTC/CTC losses).
            - ``src_txt_mask``: the text mask, for the CTC loss (not a Lighthouse output).
        """
        if src_txt.shape[1] == 0:
            raise ValueError("TR-DETR needs at least one text token per batch, got Lt == 0")
        if src_aud is not None:
            src_vid = torch.cat((src_vid, src_aud), dim=2)

        vid_ed = self.input_vid_proj(src_vid)  # [B, Lv, d]
        txt_ed = self.input_txt_proj(src_txt)  # [B, Lt, d]
        vid = self.fuser(vid_ed, txt_ed, src_vid_mask, src_txt_mask)
        vid_pos = self.position_embed(vid, src_vid_mask)
        vid_pad = ~src_vid_mask.bool()
        txt_pad = ~src_txt_mask.bool()

        transformer = self.transformer
        blocked = t2v_attention_mask(vid_pad, txt_pad, transformer.nhead)
        t2v = transformer.t2v_encoder(vid, vid_pos, txt_ed, blocked)  # text dropped after
        memory = transformer.encoder(t2v, vid_pos, vid_pad)
        memory = self.hd2mr(memory, t2v, vid_pos, vid_pad)
        hs, references = transformer.decode(memory, vid_pos, vid_pad, self.query_embed.weight)

        outputs_class = self.class_embed(hs)  # [layers, B, Q, 2]
        outputs_coord = (self.span_embed(hs) + inverse_sigmoid(references)).sigmoid()
        out: dict[str, Any] = {
            "pred_logits": outputs_class[-1],
            "pred_spans": outputs_coord[-1],
            "saliency_scores": self.mr2hd(outputs_class[-1], outputs_coord[-1], memory, vid_ed),
            "video_mask": src_vid_mask,
        }
        if self.aux_loss:
            out["aux_outputs"] = aux_outputs(outputs_class, outputs_coord)
        out["src_txt_ed"] = txt_ed
        out["src_vid_ed"] = vid_ed
        out["src_vid_cls_ed"] = vid_ed.mean(1)  # padding included, as in Lighthouse
        out["src_txt_cls_ed"] = txt_ed.mean(1)
        out[TEXT_MASK_KEY] = src_txt_mask
        return out

    def saliency(self, memory: Tensor) -> Tensor:
        """``[B, Lv, d]`` -> ``[B, Lv]``: the sum over features of ``saliency_proj1`` / sqrt(d)
        (a sum, not a dot product with a global token as in QD-DETR)."""
        return torch.sum(self.saliency_proj1(memory), dim=-1) / math.sqrt(self.hidden_dim)

    def hd2mr(self, memory: Tensor, t2v: Tensor, vid_pos: Tensor, vid_pad: Tensor) -> Tensor:
        """Highlight scores re-weight the T2V frames, then the encoder runs again.

        The softmax covers every padded frame too (Lighthouse's)."""
        weight = torch.softmax(self.saliency(memory), dim=-1)  # [B, Lv]
        return self.transformer.encoder(memory + t2v * weight.unsqueeze(-1), vid_pos, vid_pad)

    def mr2hd(self, logits: Tensor, spans: Tensor, memory: Tensor, vid_ed: Tensor) -> Tensor:
        """Saliency from the memory re-weighted by the top-scored moment's content.

        The most confident query's span, times the *padded* length in seconds, floored to frames
        ``[start, end]``, selects ``vid_ed[i, start:end + 1]`` by Python's slice rules (as
        Lighthouse; a negative start counts from the end, an end past Lv is cut), zero-padded to
        Lv. A GRU summarises it; its dot product with every projected frame weights the memory.
        """
        length = memory.shape[1]
        prob = F.softmax(logits, -1)[..., 0]  # [B, Q] foreground probability
        top = torch.sort(prob, dim=-1, descending=True).indices[:, 0]
        frames = torch.floor(span_cxw_to_xx(spans) * (length * self.clip_length) / self.clip_length)
        bounds = frames[torch.arange(len(frames), device=frames.device), top].tolist()
        pieces = []
        for i, (start, end) in enumerate(bounds):
            piece = vid_ed[i, int(start) : int(end) + 1]
            pieces.append(F.pad(piece, (0, 0, 0, length - piece.shape[0])))
        summary = self.gru_extractor(torch.stack(pieces))  # [B, d]
        weight = torch.matmul(summary.unsqueeze(1), vid_ed.transpose(1, 2)).squeeze(1)  # [B, Lv]
        return self.saliency(memory * weight.unsqueeze(-1) + memory)


@dataclass(frozen=True, kw_only=True)
class TRDETRConfig(ContextDETRConfig):
    """The config keys the network and its objective read (see :class:`~.options.DETRConfig`)."""

    model: ClassVar[str] = "tr_detr"
    fixed_width: ClassVar[str | None] = "TR-DETR"

    clip_length: float = 1.0
    VTC_loss_coef: float = 0.3  # noqa: N815 (Lighthouse's key)
    CTC_loss_coef: float = 0.5  # noqa: N815

    def check(self) -> None:
        super().check()
        for name in ("VTC_loss_coef", "CTC_loss_coef"):
            if float(getattr(self, name)) < 0:
                raise ValueError(f"{name} must be at least 0, got {getattr(self, name)}")
        if float(self.clip_length) <= 0:
            raise ValueError(f"clip_length must be positive, got {self.clip_length}")


def build_model(opt: Mapping[str, Any]) -> TRDETR:
    """Build TR-DETR from Lighthouse's flat config keys (an EasyDict or a plain dict)."""
    cfg = TRDETRConfig.from_opt(opt)
    return TRDETR(
        txt_dim=cfg.t_feat_dim,
        vid_dim=cfg.context_dim,
        **detr_arguments(cfg),
        clip_length=cfg.clip_length,
    )


@MODELS.register(name="tr_detr")
def build(opt: Mapping[str, Any]) -> ModelBundle:
    """TR-DETR with its criterion (focal label loss, hinge + rank-contrastive saliency, and the
    VTC/CTC terms of Lighthouse's training objective) and Lighthouse's evaluation
    post-processing.

    The network's keys are :class:`TRDETRConfig`; the matcher's and losses' are read by
    ``build_tr_detr_criterion``, the clamp by ``build_batch_postprocessor``."""
    refuse_options(opt, "tr_detr")
    return ModelBundle(
        model=build_model(opt),
        criterion=build_tr_detr_criterion(opt),
        postprocessor=build_batch_postprocessor(opt),
    )
