"""UVCOM (Xiao et al., CVPR 2024) for audio moment retrieval, compatible with Lighthouse.

The network loads Lighthouse's UVCOM checkpoints with ``strict=True`` and reproduces its eval-mode
outputs (fixtures README §6.4). The TEF and the audio frames have separate input projections
whose outputs are summed; the text-conditioned encoders, EM clustering, random-walk refinement,
slot attention and decoder live in :class:`~lighthouse_audio.models.uvcom_cim.CIM`. As in
QD-DETR, a second "negative" encoding with each sample's text replaced by the next sample's feeds
the saliency loss only; here it runs in the same batch as the positive one.

Lighthouse quirks kept because they define its results:

- The TEF projection's first LayerNorm sees only the two numbers ``[i/L, (i+1)/L]`` and maps every
  valid frame to the same pair (about ``+-0.90`` for ``L = 75``): the TEF branch carries the clip
  length, not the position. This is a bug in Lighthouse (position comes from the sine embedding
  alone); it is reproduced, since checkpoints were trained with it.
- Text means, EM fits, the random walk, slot attention and the clip-text softmax include padded
  positions, so outputs depend on the batch's padded lengths (as Lighthouse's evaluation batches).
- ``num_queries`` must be 30: Lighthouse builds the slots and the learned query embedding with 30
  rows whatever the config says, and any other value fails there; here it is refused at build.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import Tensor, nn

from lighthouse_audio.registry import MODELS

from .attention import t2v_attention_mask
from .bundle import ModelBundle
from .input_projection import LinearLayer, input_projection
from .layers import MLP, aux_outputs, inverse_sigmoid
from .options import (
    DerivedKeys,
    DETRConfig,
    check_config,
    check_dims,
    detr_arguments,
    refuse_options,
)
from .position_encoding import PositionEmbeddingSine, TrainablePositionalEncoding
from .postprocess import build_batch_postprocessor
from .uvcom_cim import CIM, NUM_SLOTS, Encoded
from .uvcom_criterion import build_uvcom_criterion

__all__ = ["UVCOM", "UVCOMConfig", "build", "build_model"]


def _tef_projection(
    in_dim: int, hidden_dim: int, n_input_proj: int, dropout: float
) -> nn.Sequential:
    """Lighthouse's ``input_vid_proj`` for UVCOM: always the first two of three blocks, with the
    ReLU flags of an ``n_input_proj`` stack (so with ``n_input_proj`` 1 or 3 the second block
    ends in a ReLU)."""
    blocks = [
        LinearLayer(
            in_dim if i == 0 else hidden_dim, hidden_dim, dropout, relu=i != n_input_proj - 1
        )
        for i in range(3)
    ]  # all three built, as Lighthouse does, so a seed draws the same weights
    return nn.Sequential(*blocks[:2])


class UVCOM(nn.Module):
    """UVCOM: CIM encoder-decoder, span heads and QD-DETR's saliency head.

    Args:
        txt_dim: text feature width.
        vid_dim: width of ``src_vid`` (2: the TEF in ``audio_tef`` mode).
        aud_dim: audio feature width (0: no audio input, as Lighthouse without ``a_feat_dim``).
        hidden_dim: model width; only 256 works (the decoder's sine embedding is fixed).
        nheads, enc_layers, dec_layers, dim_feedforward, dropout: transformer settings.
        num_queries: span queries; must be 30.
        n_input_proj: input projection blocks of the text and audio (1 to 3).
        input_dropout: dropout inside the input projections.
        aux_loss: also return every earlier decoder layer's predictions in ``aux_outputs``.
        max_q_l: size of the (unused) learned text position table.
        n_txt_mu, n_visual_mu, em_iter: EM centres and iterations.
        neg_choose_epoch: from this ``epoch`` on (when one is passed), negatives are the least
            similar texts of the batch instead of the next sample's (never in Lighthouse's loop,
            which passes no epoch).
    """

    def __init__(
        self,
        txt_dim: int,
        vid_dim: int,
        aud_dim: int = 0,
        hidden_dim: int = 256,
        nheads: int = 8,
        enc_layers: int = 3,
        dec_layers: int = 3,
        dim_feedforward: int = 1024,
        num_queries: int = NUM_SLOTS,
        n_input_proj: int = 2,
        input_dropout: float = 0.5,
        dropout: float = 0.1,
        aux_loss: bool = True,
        max_q_l: int = 32,
        n_txt_mu: int = 5,
        n_visual_mu: int = 30,
        em_iter: int = 5,
        neg_choose_epoch: int = 80,
    ) -> None:
        super().__init__()
        _check_dims(hidden_dim, nheads, n_input_proj, num_queries)
        self.hidden_dim = hidden_dim
        self.num_queries = num_queries
        self.aux_loss = aux_loss
        self.neg_choose_epoch = neg_choose_epoch
        # The negative pass only feeds the training loss; prediction switches it off.
        self.negative_pass = True
        self.batched_negative = True

        # Construction order = Lighthouse's (CIM, positions, then the heads), so a seed gives
        # the same initial weights.
        self.CIM = CIM(  # noqa: N815 (checkpoint key name)
            hidden_dim, nheads, enc_layers, dec_layers, dim_feedforward, dropout,
            n_txt_mu=n_txt_mu, n_visual_mu=n_visual_mu, em_iter=em_iter,
        )  # fmt: skip
        self.position_embed = PositionEmbeddingSine(hidden_dim, normalize=True)
        # Built for checkpoint compatibility only: text tokens get zero positions.
        self.txt_position_embed = TrainablePositionalEncoding(max_q_l, hidden_dim, input_dropout)
        self.span_embed = MLP(hidden_dim, hidden_dim, 2, 3)
        self.class_embed = nn.Linear(hidden_dim, 2)  # 0: foreground, 1: background
        self.query_embed = nn.Embedding(num_queries, 2)  # anchors (center, width) before sigmoid
        self.input_txt_proj = input_projection(txt_dim, hidden_dim, n_input_proj, input_dropout)
        self.input_vid_proj = _tef_projection(vid_dim, hidden_dim, n_input_proj, input_dropout)
        self.input_audio_proj = (
            input_projection(aud_dim, hidden_dim, n_input_proj, input_dropout) if aud_dim else None
        )
        self.saliency_proj1 = nn.Linear(hidden_dim, hidden_dim)
        self.saliency_proj2 = nn.Linear(hidden_dim, hidden_dim)
        self.global_rep_token = nn.Parameter(torch.randn(hidden_dim))
        self.global_rep_pos = nn.Parameter(torch.randn(hidden_dim))

    def forward(
        self,
        src_txt: Tensor,
        src_txt_mask: Tensor,
        src_vid: Tensor,
        src_vid_mask: Tensor,
        epoch: int | None = None,
        src_aud: Tensor | None = None,
        src_aud_mask: Tensor | None = None,
    ) -> dict[str, Any]:
        """Predict spans and frame saliency.

        Args:
            src_txt: ``[B, Lt, txt_dim]`` text tokens; src_txt_mask: ``[B, Lt]``, 1 valid, 0 pad.
            src_vid: ``[B, Lv, vid_dim]`` (the TEF); src_vid_mask: ``[B, Lv]``, 1 valid, 0 pad.
                This is the only frame mask used.
            epoch: Lighthouse's argument for its similarity-chosen negatives (see the class).
            src_aud: ``[B, Lv, aud_dim]`` audio frames, projected and added to the TEF's.
            src_aud_mask: accepted for Lighthouse's call signature and ignored, as in Lighthouse.

        Returns:
            A dict, in this key order:
            - ``pred_logits``: ``[B, Q, 2]``, class 0 = foreground.
            - ``pred_spans``: ``[B, Q, 2]`` normalised (center, width) after a sigmoid.
            - ``sim``: ``{"CTA_Sim": ([B, Lv], [B, Lv] bool valid), "VLA_Sim": [B, B]}``, plus
              ``negative_idx [B]`` when similarity-chosen negatives are on.
            - ``saliency_scores``: ``[B, Lv]`` for every frame, padding included.
            - ``saliency_scores_neg``: ``[B, Lv]`` for the negative texts; absent when
              ``negative_pass`` is off (prediction).
            - ``video_mask``: ``src_vid_mask`` unchanged.
            - ``aux_outputs`` (if ``aux_loss``): ``dec_layers - 1`` dicts with ``pred_logits`` and
              ``pred_spans`` of the earlier decoder layers.
        """
        if src_txt.shape[1] == 0:
            raise ValueError("UVCOM needs at least one text token per batch, got Lt == 0")
        vid = self.input_vid_proj(src_vid)  # [B, Lv, d]
        if src_aud is not None:
            if self.input_audio_proj is None:
                raise ValueError("this UVCOM was built without audio (a_feat_dim 0): no src_aud")
            vid = vid + self.input_audio_proj(src_aud)
        txt = self.input_txt_proj(src_txt)  # [B, Lt, d]
        vid_pos = self.position_embed(vid, src_vid_mask)
        vid_pad = ~src_vid_mask.bool()
        txt_pad = ~src_txt_mask.bool()
        batch = vid.shape[0]
        choose = self.negative_pass and epoch is not None and epoch >= self.neg_choose_epoch
        if self.negative_pass and self.batched_negative and not choose:
            # One CIM pass over [positive | negative] (sample i with text i+1, the last with the
            # first): 2x batch, the same per-sample results; masks are built per half.
            order = torch.roll(torch.arange(batch, device=txt.device), -1)
            both = self._encode(
                vid.repeat(2, 1, 1), vid_pos.repeat(2, 1, 1), vid_pad.repeat(2, 1),
                torch.cat((txt, txt[order])), txt_pad, txt_pad[order],
            )  # fmt: skip
            encoded = Encoded(*(t[:batch] for t in both))
            negative: Encoded | None = Encoded(*(t[batch:] for t in both))
        else:
            encoded = self._encode(vid, vid_pos, vid_pad, txt, txt_pad)
            negative = None
        sim = self.CIM.similarity(encoded, vid_pad)
        if self.negative_pass and negative is None:
            if choose:  # the least similar text of the batch (Lighthouse's neg_choose_epoch)
                order = self.CIM.least_similar_texts(encoded, sim)
                sim["negative_idx"] = order
            else:
                order = torch.roll(torch.arange(batch, device=txt.device), -1)
            negative = self._encode(vid, vid_pos, vid_pad, txt[order], txt_pad[order])
        hs, references = self.CIM.decode(encoded, vid_pos, vid_pad, self.query_embed.weight)
        outputs_class = self.class_embed(hs)  # [layers, B, Q, 2]
        outputs_coord = (self.span_embed(hs) + inverse_sigmoid(references)).sigmoid()

        out: dict[str, Any] = {
            "pred_logits": outputs_class[-1],
            "pred_spans": outputs_coord[-1],
            "sim": sim,
            "saliency_scores": self.saliency(encoded.memory_local, encoded.memory_global),
        }
        if negative is not None:
            out["saliency_scores_neg"] = self.saliency(
                negative.memory_local, negative.memory_global
            )
        out["video_mask"] = src_vid_mask
        if self.aux_loss:
            out["aux_outputs"] = aux_outputs(outputs_class, outputs_coord)
        return out

    def _encode(
        self,
        vid: Tensor,
        vid_pos: Tensor,
        vid_pad: Tensor,
        txt: Tensor,
        txt_pad: Tensor,
        txt_pad_neg: Tensor | None = None,
    ) -> Encoded:
        """:meth:`CIM.encode` with Lighthouse's attention masks. With ``txt_pad_neg`` the batch
        is ``[positive | negative]`` (``txt_pad`` and ``txt_pad_neg`` its halves' text masks):
        each half's masks are built from that half alone, as two separate passes build them
        (the head-tiling quirk of :func:`t2v_attention_mask` depends on the batch)."""
        nhead = self.CIM.nhead
        halves = [(vid_pad, txt_pad)]
        if txt_pad_neg is not None:
            half = vid_pad.shape[0] // 2
            halves = [(vid_pad[:half], txt_pad), (vid_pad[half:], txt_pad_neg)]
        t2v = torch.cat([t2v_attention_mask(v, t, nhead) for v, t in halves])
        v2t = torch.cat([t2v_attention_mask(t, v, nhead) for v, t in halves])
        return self.CIM.encode(
            vid, vid_pos, vid_pad, txt, t2v, v2t, self.global_rep_token, self.global_rep_pos
        )

    def saliency(self, memory_local: Tensor, memory_global: Tensor) -> Tensor:
        """Frame-vs-global similarity: ``[N, Lv, d]``, ``[N, d]`` -> ``[N, Lv]``."""
        frames = self.saliency_proj1(memory_local)
        query = self.saliency_proj2(memory_global).unsqueeze(1)
        return torch.sum(frames * query, dim=-1) / math.sqrt(self.hidden_dim)


def _check_dims(hidden_dim: int, nheads: int, n_input_proj: int, num_queries: int) -> None:
    check_dims(hidden_dim, nheads, n_input_proj, fixed_width="UVCOM")
    if num_queries != NUM_SLOTS:
        raise ValueError(
            f"UVCOM needs num_queries == {NUM_SLOTS}, got {num_queries}: Lighthouse builds its "
            f"slots and learned query embedding with {NUM_SLOTS} rows whatever the config says"
        )


def _v_feat_dim(opt: Mapping[str, Any]) -> int:
    """Lighthouse's width of src_vid (the TEF/video), which UVCOM always reads."""
    v_feat_dim = int(opt.get("v_feat_dim") or 0)
    if v_feat_dim <= 0:
        raise ValueError(
            f"uvcom reads the TEF/video as src_vid: v_feat_dim must be > 0, got {v_feat_dim}"
        )
    return v_feat_dim


def _a_feat_dim(opt: Mapping[str, Any]) -> int:
    """Audio gets its own projection whenever the config has an audio width, as Lighthouse
    builds it (0: none)."""
    return int(opt.get("a_feat_dim") or 0)


@dataclass(frozen=True, kw_only=True)
class UVCOMConfig(DETRConfig):
    """The config keys the network reads (see :class:`~.options.DETRConfig`); UVCOM reads the
    TEF and audio widths apart (``v_feat_dim``, ``a_feat_dim``)."""

    model: ClassVar[str] = "uvcom"
    derived_keys: ClassVar[DerivedKeys] = {
        "v_feat_dim": _v_feat_dim,
        "a_feat_dim": _a_feat_dim,
    }

    v_feat_dim: int
    a_feat_dim: int
    enc_layers: int = 3
    dec_layers: int = 3
    num_queries: int = NUM_SLOTS
    n_txt_mu: int = 5
    n_visual_mu: int = 30
    em_iter: int = 5
    neg_choose_epoch: int = 80
    cross_fusion: bool = False

    def check(self) -> None:
        check_config(
            self,
            at_least_1=("t_feat_dim", "nheads", "dec_layers", "dim_feedforward", "n_txt_mu",
                        "n_visual_mu"),
            at_least_0=("enc_layers", "em_iter"),
        )  # fmt: skip
        _check_dims(
            int(self.hidden_dim), int(self.nheads), int(self.n_input_proj), int(self.num_queries)
        )
        if self.cross_fusion:
            raise ValueError(
                "cross_fusion must be False: UVCOM's cross-fusion ablation is not implemented "
                "(Lighthouse's configs leave it off)"
            )


def build_model(opt: Mapping[str, Any]) -> UVCOM:
    """Build UVCOM from Lighthouse's flat config keys (an EasyDict or a plain dict)."""
    cfg = UVCOMConfig.from_opt(opt)
    return UVCOM(
        txt_dim=cfg.t_feat_dim,
        vid_dim=cfg.v_feat_dim,
        aud_dim=cfg.a_feat_dim,
        **detr_arguments(cfg),
        n_txt_mu=cfg.n_txt_mu,
        n_visual_mu=cfg.n_visual_mu,
        em_iter=cfg.em_iter,
        neg_choose_epoch=cfg.neg_choose_epoch,
    )


@MODELS.register(name="uvcom")
def build(opt: Mapping[str, Any]) -> ModelBundle:
    """UVCOM with its criterion (QD-DETR's losses plus ``loss_sim``) and Lighthouse's evaluation
    post-processing (all 30 windows per query are kept; the evaluator scores the first 10).

    The network's keys are :class:`UVCOMConfig`; the matcher's and losses' are read by
    ``build_uvcom_criterion``, the clamp by ``build_batch_postprocessor``."""
    refuse_options(
        opt,
        "uvcom",
        static_shapes_reason="its text means, EM clustering, slot attention and clip-text "
        "softmax include padded positions",
    )
    return ModelBundle(
        model=build_model(opt),
        criterion=build_uvcom_criterion(opt),
        postprocessor=build_batch_postprocessor(opt),
    )
