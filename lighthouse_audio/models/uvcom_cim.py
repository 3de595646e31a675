"""UVCOM's "comprehensive integration module" (CIM): Lighthouse's ``CIM.py``, batch-first.

Parameter names, shapes, registration and construction order follow Lighthouse, so its
checkpoints load with ``strict=True`` and a seed draws the same initial weights. Data flow for
``[global | frames (Lv) | text (Lt)]`` (fixtures README §6.4)::

    frames --T2V (text keys)--> video          text --V2T (frame keys)--> text'
    text' --EM--> text centres; video --EM--> video centres; mean(feature_proj(text')) = txt_seq
    video + conv(video) --random walk to the text centres--> added to video
    [best video centre | video] --GKA encoder--> memory_global, memory_local
    slots(txt_seq, memory_local) + query embedding --decoder--> hs, references
"""

from __future__ import annotations

from typing import Any, NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .layers import MLP
from .transformer import (
    T2VEncoderLayer,
    TransformerDecoderLayer,
    TransformerEncoder,
    TransformerEncoderLayer,
    _AttentionFeedForward,
)
from .uvcom_clustering import SlotAttention, em_rbf, random_walk_refine
from .uvcom_decoder import UVCOMDecoder

__all__ = ["CIM", "Encoded", "V2TEncoderLayer"]

# Lighthouse builds these with fixed sizes, whatever the config says.
NUM_SLOTS = 30  # slot attention and the decoder's learned query embedding
SLOT_ITERATIONS = 5
SIM_HIDDEN = 1024  # width of the similarity heads' hidden layers


class V2TEncoderLayer(_AttentionFeedForward):
    """Text tokens attend to the frames (the mirror of :class:`T2VEncoderLayer`), then the same
    hybrid residual feed-forward block; only the text changes."""

    def forward(self, txt: Tensor, vid: Tensor, vid_pos: Tensor, blocked: Tensor) -> Tensor:
        """``txt [B, Lt, d]`` (text positions are zero), ``vid``/``vid_pos [B, Lv, d]``,
        ``blocked [B, H, Lt, Lv]`` (:func:`~lighthouse_audio.models.attention.t2v_attention_mask`
        with the roles swapped). Returns ``[B, Lt, d]``."""
        attn = self.self_attn(txt, vid + vid_pos, vid, blocked)
        x = txt + self.dropout1(attn)
        ffn = self.linear2(self.dropout(self.activation(self.linear1(self.norm1(x)))))
        return self.norm2(x + self.dropout2(ffn))


class Encoded(NamedTuple):
    """One CIM encoding of a batch (``[B, ...]`` each)."""

    memory_local: Tensor  # [B, Lv, d] GKA output for the frames
    memory_global: Tensor  # [B, d] GKA output for the global token
    txt_seq: Tensor  # [B, d] mean of the projected V2T text, padding included
    video: Tensor  # [B, Lv, d] the GKA input frames (for the clip-text similarity)


class CIM(nn.Module):
    """Encoders, clustering, slot attention and decoder of UVCOM.

    Args:
        d_model: model width (256: the decoder's sine embedding is fixed).
        nhead, num_encoder_layers, num_decoder_layers, dim_feedforward, dropout: transformer
            settings; ``num_encoder_layers`` applies to the T2V, V2T and GKA stacks alike.
        n_txt_mu, n_visual_mu: text and video EM centres.
        em_iter: EM iterations.
    """

    def __init__(
        self,
        d_model: int = 256,
        nhead: int = 8,
        num_encoder_layers: int = 3,
        num_decoder_layers: int = 3,
        dim_feedforward: int = 1024,
        dropout: float = 0.1,
        n_txt_mu: int = 5,
        n_visual_mu: int = 30,
        em_iter: int = 5,
    ) -> None:
        super().__init__()
        if d_model % nhead:
            raise ValueError(f"nheads={nhead} must divide hidden_dim={d_model}")
        self.d_model = d_model
        self.nhead = nhead
        self.em_iter = em_iter
        # Construction order = Lighthouse's (it decides which random numbers each part draws).
        self.t2v_encoder = TransformerEncoder(
            T2VEncoderLayer(d_model, nhead, dim_feedforward, dropout), num_encoder_layers
        )
        self.processer_for_tgt = SlotAttention(SLOT_ITERATIONS, d_model)
        self.v2t_encoder = TransformerEncoder(
            V2TEncoderLayer(d_model, nhead, dim_feedforward, dropout), num_encoder_layers
        )
        self.GKA_Module = TransformerEncoder(  # noqa: N815 (checkpoint key name)
            TransformerEncoderLayer(d_model, nhead, dim_feedforward, dropout), num_encoder_layers
        )
        self.decoder = UVCOMDecoder(
            TransformerDecoderLayer(d_model, nhead, dim_feedforward, dropout),
            num_decoder_layers,
            d_model,
            NUM_SLOTS,
        )
        self.feature_proj = nn.Sequential(nn.Linear(d_model, d_model), nn.LayerNorm(d_model))
        self.conv_local = nn.Sequential(
            nn.Conv1d(d_model, d_model, kernel_size=1),
            nn.Conv1d(d_model, d_model, kernel_size=3, padding=1),
            nn.Conv1d(d_model, d_model, kernel_size=1),
        )
        self.txt_mu = nn.Parameter(torch.randn(n_txt_mu, d_model))
        self.vid_mu = nn.Parameter(torch.randn(n_visual_mu, d_model))
        self.sim_vid = MLP(d_model, SIM_HIDDEN, d_model, 3)
        self.sim_txt = MLP(d_model, SIM_HIDDEN, d_model, 3)
        for p in self.parameters():
            if p.dim() > 1:
                nn.init.xavier_uniform_(p)

    def encode(
        self,
        vid: Tensor,
        vid_pos: Tensor,
        vid_pad: Tensor,
        txt: Tensor,
        t2v_blocked: Tensor,
        v2t_blocked: Tensor,
        global_token: Tensor,
        global_pos: Tensor,
    ) -> Encoded:
        """Everything up to the GKA encoder (what the saliency heads and the decoder read).

        Args:
            vid: ``[B, Lv, d]`` projected frames; vid_pos: ``[B, Lv, d]``; vid_pad: ``[B, Lv]``
                True on padding.
            txt: ``[B, Lt, d]`` projected text (positions zero).
            t2v_blocked: ``[B, H, Lv, Lt]``; v2t_blocked: ``[B, H, Lt, Lv]``
                (:func:`~lighthouse_audio.models.attention.t2v_attention_mask`).
            global_token, global_pos: ``[d]`` learned global token and its position.
        """
        batch = vid.shape[0]
        video = self.t2v_encoder(vid, vid_pos, txt, t2v_blocked)
        text = self.v2t_encoder(txt, vid, vid_pos, v2t_blocked)  # on the original frames
        txt_seq = self.feature_proj(text).mean(1)  # padded tokens included (Lighthouse)

        txt_centres = em_rbf(self.txt_mu.expand(batch, -1, -1), text, self.em_iter)
        vid_centres = em_rbf(self.vid_mu.expand(batch, -1, -1), video, self.em_iter)

        # Local context: 1-3-1 convolutions over the valid frames, no activations.
        valid = (~vid_pad).to(video.dtype)[..., None]
        local = video + self.conv_local((video * valid).transpose(1, 2)).transpose(1, 2)

        # The global token is replaced by the video centre closest (mean cosine) to the text
        # centres. Lighthouse overwrites the token in place, so the learned global_rep_token
        # reaches no output but gets a zero gradient; `+ 0 * token` keeps that (AdamW then
        # still decays it, as in Lighthouse).
        closeness = (
            F.normalize(vid_centres, p=2, dim=-1)
            @ F.normalize(txt_centres, p=2, dim=-1).transpose(1, 2)
        ).mean(-1)  # [B, n_visual_mu]
        best = closeness.argmax(dim=1)
        chosen = vid_centres[torch.arange(batch, device=vid.device), best]  # [B, d]
        chosen = chosen + 0 * global_token

        video = video + random_walk_refine(local, txt_centres)
        src = torch.cat((chosen[:, None], video), dim=1)
        pos = torch.cat((global_pos.expand(batch, 1, -1), vid_pos), dim=1)
        memory = self.GKA_Module(src, pos, F.pad(vid_pad, (1, 0), value=False))
        return Encoded(memory[:, 1:], memory[:, 0], txt_seq, video)

    def decode(
        self,
        encoded: Encoded,
        vid_pos: Tensor,
        vid_pad: Tensor,
        refpoints_unsigmoid: Tensor,
    ) -> tuple[Tensor, Tensor]:
        """Slots from the text summary over the frames, then the span decoder.

        Args:
            encoded: from :meth:`encode`; vid_pos: ``[B, Lv, d]``; vid_pad: ``[B, Lv]``.
            refpoints_unsigmoid: ``[Q, 2]`` learned anchors (before the sigmoid).

        Returns:
            hs ``[layers, B, Q, d]``; references ``[layers, B, Q, 2]`` (after each layer).
        """
        batch, num_queries = vid_pos.shape[0], refpoints_unsigmoid.shape[0]
        slots = encoded.txt_seq[:, None].expand(-1, num_queries, -1)
        tgt = self.processer_for_tgt(encoded.memory_local, vid_pad, slots)
        refpoints = refpoints_unsigmoid.expand(batch, -1, -1)
        return self.decoder(tgt, encoded.memory_local, vid_pad, vid_pos, refpoints)

    def similarity(self, encoded: Encoded, vid_pad: Tensor) -> dict[str, Any]:
        """UVCOM's ``sim`` output, in Lighthouse's key order.

        ``CTA_Sim``: ``([B, Lv] text-vs-frame cosine of the similarity heads, [B, Lv] bool valid
        frames)``; ``VLA_Sim``: ``[B, B]`` clip-vs-text cosine (global memory vs text summary).
        """
        txt = F.normalize(self.sim_txt(encoded.txt_seq), p=2, dim=-1)  # [B, d]
        clip = F.normalize(self.sim_vid(encoded.memory_global), p=2, dim=-1)  # [B, d]
        frames = F.normalize(self.sim_vid(encoded.video), p=2, dim=-1)  # [B, Lv, d]
        per_frame = (txt[:, None] @ frames.transpose(1, 2)).squeeze(1)  # [B, Lv]
        return {"CTA_Sim": (per_frame, ~vid_pad), "VLA_Sim": clip @ txt.transpose(0, 1)}

    def least_similar_texts(self, encoded: Encoded, sim: dict[str, Any]) -> Tensor:
        """For each clip, the batch text it matches least (Lighthouse's ``negative_idx``): the
        argmin of the mean of the softmaxed clip-text matrix and of the softmaxed frame-text
        cosines averaged over all frames (padding included). ``[B]`` int64."""
        txt = F.normalize(self.sim_txt(encoded.txt_seq), p=2, dim=-1)  # [B, d]
        frames = F.normalize(self.sim_vid(encoded.video), p=2, dim=-1)  # [B, Lv, d]
        per_frame = (frames @ txt.transpose(0, 1)).mean(dim=1).softmax(dim=-1)  # [B, B]
        chosen = (sim["VLA_Sim"].softmax(dim=-1) + per_frame) / 2
        return chosen.argmin(dim=1)
