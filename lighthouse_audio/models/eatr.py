"""EaTR (Jang et al., ICCV 2023: event-aware video-text retrieval) for audio moment retrieval,
compatible with Lighthouse.

The network loads Lighthouse's EaTR checkpoints with ``strict=True`` and reproduces its eval-mode
outputs. Projected audio frames and text tokens are encoded together (Moment-DETR's encoder);
slot attention over the audio frames proposes ``Q`` events, whose spans become the decoder's
first reference points; a DAB-style decoder, gated by the max-pooled text in its first layer,
refines them into moments. Pseudo events found in the raw input by a self-similarity kernel
(``models/eatr_events.py``) supervise the event stage (``models/eatr_criterion.py``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import Tensor, nn

from lighthouse_audio.registry import MODELS

from .bundle import ModelBundle
from .eatr_criterion import build_eatr_criterion
from .eatr_events import pseudo_event_spans
from .eatr_transformer import EaTRTransformer
from .input_projection import input_projection
from .layers import MLP, aux_outputs, inverse_sigmoid
from .options import ContextDETRConfig, check_dims, detr_arguments, refuse_options
from .position_encoding import PositionEmbeddingSine, TrainablePositionalEncoding
from .postprocess import build_batch_postprocessor

__all__ = ["EaTR", "EaTRConfig", "build", "build_model"]


class EaTR(nn.Module):
    """Event-aware moment retrieval: events from slot attention, moments from a DAB decoder.

    Args:
        txt_dim: text feature width (768 for CLAP).
        vid_dim: width of the "video" context; in ``audio_tef`` mode the 2-d TEF plus the audio
            width (TEF first), since ``src_aud`` is appended to ``src_vid``.
        hidden_dim: model width (any even multiple of ``nheads``).
        nheads, enc_layers, dec_layers, dim_feedforward, dropout: transformer settings.
        num_queries: number of event slots = span queries.
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
        if dec_layers < 1:
            raise ValueError(f"dec_layers must be at least 1, got {dec_layers}")
        self.hidden_dim = hidden_dim
        self.num_queries = num_queries
        self.num_dec_layers = dec_layers
        self.aux_loss = aux_loss

        # Construction order = Lighthouse's (positions first here, unlike Moment-DETR), so a
        # seed gives the same initial weights.
        self.position_embed = PositionEmbeddingSine(hidden_dim, normalize=True)
        # Built for checkpoint compatibility only: text tokens get zero positions.
        txt_position_embed = TrainablePositionalEncoding(max_q_l, hidden_dim, input_dropout)
        self.transformer = EaTRTransformer(
            hidden_dim, nheads, enc_layers, dec_layers, dim_feedforward, dropout, num_queries
        )
        self.txt_position_embed = txt_position_embed  # registered after: state_dict order
        self.input_txt_proj = input_projection(txt_dim, hidden_dim, n_input_proj, input_dropout)
        self.input_vid_proj = input_projection(vid_dim, hidden_dim, n_input_proj, input_dropout)
        self.saliency_proj = nn.Linear(hidden_dim, 1)
        self.event_span_embed = MLP(hidden_dim, hidden_dim, 2, 3)
        nn.init.zeros_(self.event_span_embed.layers[-1].weight)
        nn.init.zeros_(self.event_span_embed.layers[-1].bias)
        self.moment_span_embed = MLP(hidden_dim, hidden_dim, 2, 3)
        nn.init.zeros_(self.moment_span_embed.layers[-1].weight)
        nn.init.zeros_(self.moment_span_embed.layers[-1].bias)
        self.class_embed = nn.Linear(hidden_dim, 2)  # 0: foreground, 1: background
        # The decoder refines its references with the same heads (shared modules: their
        # weights appear under both names in the state dict, as in Lighthouse).
        self.transformer.decoder.moment_span_embed = self.moment_span_embed
        self.transformer.decoder.event_span_embed = self.event_span_embed

    def forward(
        self,
        src_txt: Tensor,
        src_txt_mask: Tensor,
        src_vid: Tensor,
        src_vid_mask: Tensor,
        src_aud: Tensor | None = None,
        src_aud_mask: Tensor | None = None,
    ) -> dict[str, Any]:
        """Predict moments, events and frame saliency.

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
            - ``pseudo_event_spans``: B tensors ``[n_s, 2]`` (cxw), the event targets.
            - ``pred_event_spans``: ``[B, Q, 2]`` the slot-attention events (cxw, sigmoid).
            - ``saliency_scores``: ``[B, Lv]`` for every frame, padding included.
            - ``aux_outputs`` (if ``aux_loss``): ``dec_layers - 1`` dicts with ``pred_logits`` and
              ``pred_spans`` of the earlier decoder layers.
        """
        if src_txt.shape[1] == 0:
            raise ValueError("EaTR needs at least one text token per batch, got Lt == 0")
        if src_aud is not None:
            src_vid = torch.cat((src_vid, src_aud), dim=2)
        # From the raw [TEF | audio] input, padding included (Lighthouse's order of steps).
        pseudo_events = pseudo_event_spans(src_vid, src_vid_mask)

        vid = self.input_vid_proj(src_vid)  # [B, Lv, d]
        txt = self.input_txt_proj(src_txt)  # [B, Lt, d]
        # Max over every token, padding included, as in Lighthouse (depends on the padding).
        txt_global = txt.max(dim=1).values  # [B, d]
        num_frames = vid.shape[1]
        src = torch.cat((vid, txt), dim=1)
        pad_mask = ~torch.cat((src_vid_mask, src_txt_mask), dim=1).bool()
        pos_vid = self.position_embed(vid, src_vid_mask)
        pos = torch.cat((pos_vid, torch.zeros_like(txt)), dim=1)  # text positions are zero
        hs, memory, references = self.transformer(
            src, pad_mask, pos, vid, pos_vid, ~src_vid_mask.bool(), txt_global
        )

        event_coord = self.event_span_embed(hs[0]).sigmoid()  # from event_norm(slots)
        moments = hs[-self.num_dec_layers :]
        outputs_coord = (self.moment_span_embed(moments) + inverse_sigmoid(references)).sigmoid()
        outputs_class = self.class_embed(moments)  # [layers, B, Q, 2]
        out: dict[str, Any] = {
            "pred_logits": outputs_class[-1],
            "pred_spans": outputs_coord[-1],
            "pseudo_event_spans": pseudo_events,
            "pred_event_spans": event_coord,
            "saliency_scores": self.saliency_proj(memory[:, :num_frames]).squeeze(-1),
        }
        if self.aux_loss:
            out["aux_outputs"] = aux_outputs(outputs_class, outputs_coord)
        return out


@dataclass(frozen=True, kw_only=True)
class EaTRConfig(ContextDETRConfig):
    """The config keys the network reads (see :class:`~.options.DETRConfig`)."""

    model: ClassVar[str] = "eatr"

    event_coef: float = 3.0

    def check(self) -> None:
        super().check()
        if float(self.event_coef) < 0:
            raise ValueError(f"event_coef must be at least 0, got {self.event_coef}")


def build_model(opt: Mapping[str, Any]) -> EaTR:
    """Build EaTR from Lighthouse's flat config keys (an EasyDict or a plain dict)."""
    cfg = EaTRConfig.from_opt(opt)
    return EaTR(txt_dim=cfg.t_feat_dim, vid_dim=cfg.context_dim, **detr_arguments(cfg))


@MODELS.register(name="eatr")
def build(opt: Mapping[str, Any]) -> ModelBundle:
    """EaTR with its criterion (hinge-only saliency, event losses) and Lighthouse's evaluation
    post-processing.

    The network's keys are :class:`EaTRConfig`; the matchers' and losses' are read by
    ``build_eatr_criterion``, the clamp by ``build_batch_postprocessor``."""
    refuse_options(
        opt,
        "eatr",
        static_shapes_reason="its text max-pool, slot attention and pseudo events include "
        "padded positions",
    )
    return ModelBundle(
        model=build_model(opt),
        criterion=build_eatr_criterion(opt),
        postprocessor=build_batch_postprocessor(opt),
    )
