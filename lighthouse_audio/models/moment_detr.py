"""Moment-DETR (Lei et al., NeurIPS 2021) for audio moment retrieval, compatible with Lighthouse.

The network loads Lighthouse's Moment-DETR checkpoints with ``strict=True`` and reproduces its
eval-mode outputs. Unlike QD-DETR there is no text-to-audio stage, no global token, no reference
points and no negative pass: projected audio frames and text tokens are concatenated and encoded
together by a plain DETR transformer (``models/detr_transformer.py``), ``Q`` learned query slots
decode spans from the whole encoder output, and a linear head scores every frame's saliency.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import Tensor, nn

from lighthouse_audio.registry import MODELS

from .bundle import ModelBundle
from .criterion import build_criterion
from .detr_transformer import DETRTransformer
from .input_projection import input_projection
from .layers import MLP, aux_outputs
from .options import ContextDETRConfig, check_dims, detr_arguments, refuse_options
from .position_encoding import PositionEmbeddingSine, TrainablePositionalEncoding
from .postprocess import build_batch_postprocessor

# Moment-DETR's saliency loss is the hinge alone (QD-DETR adds rank-contrastive and
# negative-pair terms, which need a negative pass this model does not have).
SALIENCY_TERMS = ("hinge",)


class MomentDETR(nn.Module):
    """Joint audio-text DETR encoder, span decoder over learned queries, per-frame saliency.

    Args:
        txt_dim: text feature width (768 for CLAP).
        vid_dim: width of the "video" context; in ``audio_tef`` mode the 2-d TEF plus the audio
            width (TEF first), since ``src_aud`` is appended to ``src_vid``.
        hidden_dim: model width (any even multiple of ``nheads``).
        nheads, enc_layers, dec_layers, dim_feedforward, dropout: transformer settings.
        num_queries: number of span queries.
        n_input_proj: input projection blocks (1 to 3).
        input_dropout: dropout inside the input projections.
        aux_loss: also return every earlier decoder layer's predictions in ``aux_outputs``.
        max_q_l: size of the (unused) learned text position table.
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
    ) -> None:
        super().__init__()
        check_dims(hidden_dim, nheads, n_input_proj)
        self.hidden_dim = hidden_dim
        self.num_queries = num_queries
        self.aux_loss = aux_loss

        # Construction order = Lighthouse's, so a seed gives the same initial weights.
        self.transformer = DETRTransformer(
            hidden_dim, nheads, enc_layers, dec_layers, dim_feedforward, dropout
        )
        self.position_embed = PositionEmbeddingSine(hidden_dim, normalize=True)
        # Built for checkpoint compatibility only: text tokens get zero positions.
        self.txt_position_embed = TrainablePositionalEncoding(max_q_l, hidden_dim, input_dropout)
        self.span_embed = MLP(hidden_dim, hidden_dim, 2, 3)
        self.class_embed = nn.Linear(hidden_dim, 2)  # 0: foreground, 1: background
        self.query_embed = nn.Embedding(num_queries, hidden_dim)  # query positions (Q x d)
        self.input_txt_proj = input_projection(txt_dim, hidden_dim, n_input_proj, input_dropout)
        self.input_vid_proj = input_projection(vid_dim, hidden_dim, n_input_proj, input_dropout)
        self.saliency_proj = nn.Linear(hidden_dim, 1)

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
            - ``saliency_scores``: ``[B, Lv]`` for every frame, padding included.
            - ``aux_outputs`` (if ``aux_loss``): ``dec_layers - 1`` dicts with ``pred_logits`` and
              ``pred_spans`` of the earlier decoder layers.
        """
        if src_txt.shape[1] == 0:
            raise ValueError("Moment-DETR needs at least one text token per batch, got Lt == 0")
        if src_aud is not None:
            src_vid = torch.cat((src_vid, src_aud), dim=2)

        vid = self.input_vid_proj(src_vid)  # [B, Lv, d]
        txt = self.input_txt_proj(src_txt)  # [B, Lt, d]
        num_frames = vid.shape[1]
        # One sequence [audio frames; text tokens]; text positions are zero, as in Lighthouse.
        src = torch.cat((vid, txt), dim=1)
        pos = torch.cat((self.position_embed(vid, src_vid_mask), torch.zeros_like(txt)), dim=1)
        pad_mask = ~torch.cat((src_vid_mask, src_txt_mask), dim=1).bool()
        hs, memory = self.transformer(src, pos, pad_mask, self.query_embed.weight)

        outputs_class = self.class_embed(hs)  # [layers, B, Q, 2]
        outputs_coord = self.span_embed(hs).sigmoid()  # [layers, B, Q, 2]
        out: dict[str, Any] = {
            "pred_logits": outputs_class[-1],
            "pred_spans": outputs_coord[-1],
            "saliency_scores": self.saliency_proj(memory[:, :num_frames]).squeeze(-1),
        }
        if self.aux_loss:
            out["aux_outputs"] = aux_outputs(outputs_class, outputs_coord)
        return out


@dataclass(frozen=True, kw_only=True)
class MomentDETRConfig(ContextDETRConfig):
    """The config keys the network reads (see :class:`~.options.DETRConfig`)."""

    model: ClassVar[str] = "moment_detr"


def build_model(opt: Mapping[str, Any]) -> MomentDETR:
    """Build Moment-DETR from Lighthouse's flat config keys (an EasyDict or a plain dict)."""
    cfg = MomentDETRConfig.from_opt(opt)
    return MomentDETR(txt_dim=cfg.t_feat_dim, vid_dim=cfg.context_dim, **detr_arguments(cfg))


@MODELS.register(name="moment_detr")
def build(opt: Mapping[str, Any]) -> ModelBundle:
    """Moment-DETR with its criterion (hinge-only saliency loss) and Lighthouse's evaluation
    post-processing.

    The network's keys are :class:`MomentDETRConfig`; the matcher's and losses' are read by
    ``build_criterion``, the clamp by ``build_batch_postprocessor``."""
    refuse_options(opt, "moment_detr")
    return ModelBundle(
        model=build_model(opt),
        criterion=build_criterion(opt, saliency_terms=SALIENCY_TERMS),
        postprocessor=build_batch_postprocessor(opt),
    )
