"""EaTR's transformer: a DETR encoder, then slot attention (event stage) and a DAB decoder.

Parameter names, shapes, registration and construction order follow Lighthouse's
``eatr_transformer.py``, so its checkpoints load with ``strict=True`` and a seed draws the same
initial weights. Everything is batch-first here (Lighthouse is sequence-first).

Data flow for one batch (``L = Lv + Lt`` tokens, ``Q`` queries)::

    [audio; text] [B, L, d] --ReLU post-norm encoder--> memory [B, L, d]
    projected audio + pos --slot attention--> slots [B, Q, d] --event_span_embed--> reference 0
    slots + references --decoder over memory (layer 0 gated by the text)--> hs, references

Differences from QD-DETR's decoder (``transformer.py``): the span sine embedding has ``d_model``
features per coordinate (so any width works), ``query_scale`` also applies in the first layer,
only the center half of the sine embedding enters cross-attention, the first layer has a
text-gated fusion block, and the FFNs use ReLU.
"""

from __future__ import annotations

import copy
import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from lighthouse_audio.models.attention import MultiheadAttention, ProjectedInputAttention
from lighthouse_audio.models.dropout import Dropout
from lighthouse_audio.models.layers import MLP, inverse_sigmoid
from lighthouse_audio.models.position_encoding import sine_features
from lighthouse_audio.models.transformer import (
    TransformerEncoder,
    TransformerEncoderLayer,
    _concat_heads,
)

__all__ = [
    "EaTRDecoder",
    "EaTRDecoderFirstLayer",
    "EaTRDecoderLayer",
    "EaTRTransformer",
    "SlotAttention",
    "span_sine_embedding",
]

SLOT_ITERATIONS = 3  # Lighthouse's build_model fixes it


def span_sine_embedding(spans: Tensor, num_feats: int) -> Tensor:
    """``[..., 2]`` (center, width) -> ``[..., 2 * num_feats]``: the center's sine features, then
    the width's, each on ``2 * pi * value`` with temperature 10000."""
    scaled = spans * (2 * math.pi)
    return torch.cat(
        (sine_features(scaled[..., 0], num_feats), sine_features(scaled[..., 1], num_feats)),
        dim=-1,
    )


class SlotAttention(nn.Module):
    """Slot attention (Locatello et al., 2020) without the GRU: ``num_slots`` learned slots
    compete for the frames over ``num_iterations`` rounds.

    The softmax runs over slots, so a padded frame (all its logits at -max) gives every slot an
    equal share and still enters the weighted mean over frames, as in Lighthouse.
    """

    def __init__(
        self, num_iterations: int, num_slots: int, d_model: int, epsilon: float = 1e-8
    ) -> None:
        super().__init__()
        self.num_iterations = num_iterations
        self.num_slots = num_slots
        self.d_model = d_model
        self.epsilon = epsilon
        self.norm_inputs = nn.LayerNorm(d_model)
        self.norm_slots = nn.LayerNorm(d_model)
        self.norm_mlp = nn.LayerNorm(d_model)
        self.norm_out = nn.LayerNorm(d_model)
        # randn then xavier_normal_: both draws, as in Lighthouse (the seed stays aligned).
        self.slots = nn.Parameter(torch.randn(num_slots, d_model))
        nn.init.xavier_normal_(self.slots)
        self.project_q = nn.Linear(d_model, d_model)
        self.project_k = nn.Linear(d_model, d_model)
        self.project_v = nn.Linear(d_model, d_model)
        self.mlp = MLP(d_model, d_model, d_model, 2)

    def forward(self, inputs: Tensor, pad_mask: Tensor) -> Tensor:
        """``inputs [B, L, d]``, ``pad_mask [B, L]`` (True on padding) -> slots ``[B, Q, d]``."""
        inputs = self.norm_inputs(inputs)
        k = self.project_k(inputs)
        v = self.project_v(inputs)
        slots = self.slots.expand(inputs.shape[0], -1, -1)
        scale = self.d_model**-0.5
        blocked = pad_mask.unsqueeze(1)  # [B, 1, L]
        for _ in range(self.num_iterations):
            slots_prev = slots
            q = self.project_q(self.norm_slots(slots))
            dots = torch.einsum("bid,bjd->bij", q, k) * scale  # [B, Q, L]
            dots = dots.masked_fill(blocked, -torch.finfo(dots.dtype).max)
            attn = dots.softmax(dim=1)  # over slots
            attn = attn / (attn.sum(dim=-1, keepdim=True) + self.epsilon)  # weighted mean
            updates = torch.einsum("bjd,bij->bid", v, attn)
            slots = slots_prev + updates
            slots = slots + self.mlp(self.norm_mlp(slots))
        return self.norm_out(slots)


class _DecoderLayerBase(nn.Module):
    """Shared wiring of EaTR's decoder layers: conditional-DETR self- and cross-attention with
    separate content/position projections and a ReLU FFN. Subclasses register the modules in
    Lighthouse's order."""

    nhead: int

    def _self_attention(self, tgt: Tensor, query_pos: Tensor) -> Tensor:
        q = self.sa_qcontent_proj(tgt) + self.sa_qpos_proj(query_pos)
        k = self.sa_kcontent_proj(tgt) + self.sa_kpos_proj(query_pos)
        v = self.sa_v_proj(tgt)
        return self.norm1(tgt + self.dropout1(self.self_attn(q, k, v)))

    def _cross_attention_and_ffn(
        self,
        tgt: Tensor,
        memory: Tensor,
        blocked: Tensor,
        pos: Tensor,
        query_pos: Tensor | None,
        query_sine_embed: Tensor,
    ) -> Tensor:
        q = self.ca_qcontent_proj(tgt)
        k = self.ca_kcontent_proj(memory)
        v = self.ca_v_proj(memory)
        k_pos = self.ca_kpos_proj(pos)
        if query_pos is not None:  # first layer: positions also added to the content
            q = q + self.ca_qpos_proj(query_pos)
            k = k + k_pos
        q = _concat_heads(q, self.ca_qpos_sine_proj(query_sine_embed), self.nhead)
        k = _concat_heads(k, k_pos, self.nhead)
        tgt = self.norm2(tgt + self.dropout2(self.cross_attn(q, k, v, blocked)))
        ffn = self.linear2(self.dropout(F.relu(self.linear1(tgt))))
        return self.norm3(tgt + self.dropout3(ffn))


class EaTRDecoderLayer(_DecoderLayerBase):
    """Decoder layers 2+: no ``ca_qpos_proj`` at all (never built, unlike QD-DETR's)."""

    def __init__(self, d_model: int, nhead: int, dim_feedforward: int, dropout: float) -> None:
        super().__init__()
        self.nhead = nhead
        self.sa_qcontent_proj = nn.Linear(d_model, d_model)
        self.sa_qpos_proj = nn.Linear(d_model, d_model)
        self.sa_kcontent_proj = nn.Linear(d_model, d_model)
        self.sa_kpos_proj = nn.Linear(d_model, d_model)
        self.sa_v_proj = nn.Linear(d_model, d_model)
        self.self_attn = ProjectedInputAttention(d_model, nhead, vdim=d_model, dropout=dropout)
        self.norm1 = nn.LayerNorm(d_model)
        self.dropout1 = Dropout(dropout)
        self.ca_qcontent_proj = nn.Linear(d_model, d_model)
        self.ca_kcontent_proj = nn.Linear(d_model, d_model)
        self.ca_kpos_proj = nn.Linear(d_model, d_model)
        self.ca_v_proj = nn.Linear(d_model, d_model)
        self.ca_qpos_sine_proj = nn.Linear(d_model, d_model)
        self.cross_attn = ProjectedInputAttention(2 * d_model, nhead, vdim=d_model, dropout=dropout)
        self.linear1 = nn.Linear(d_model, dim_feedforward)
        self.dropout = Dropout(dropout)
        self.linear2 = nn.Linear(dim_feedforward, d_model)
        self.norm2 = nn.LayerNorm(d_model)
        self.norm3 = nn.LayerNorm(d_model)
        self.dropout2 = Dropout(dropout)
        self.dropout3 = Dropout(dropout)

    def forward(
        self,
        tgt: Tensor,
        memory: Tensor,
        blocked: Tensor,
        pos: Tensor,
        query_pos: Tensor,
        query_sine_embed: Tensor,
        txt_global: Tensor,
    ) -> Tensor:
        """See :meth:`EaTRDecoderFirstLayer.forward`; ``txt_global`` is unused here."""
        tgt = self._self_attention(tgt, query_pos)
        return self._cross_attention_and_ffn(tgt, memory, blocked, pos, None, query_sine_embed)


class EaTRDecoderFirstLayer(_DecoderLayerBase):
    """The first decoder layer: a text-gated fusion between self- and cross-attention, and query
    positions added to the cross-attention content."""

    def __init__(self, d_model: int, nhead: int, dim_feedforward: int, dropout: float) -> None:
        super().__init__()
        self.nhead = nhead
        self.sa_qcontent_proj = nn.Linear(d_model, d_model)
        self.sa_qpos_proj = nn.Linear(d_model, d_model)
        self.sa_kcontent_proj = nn.Linear(d_model, d_model)
        self.sa_kpos_proj = nn.Linear(d_model, d_model)
        self.sa_v_proj = nn.Linear(d_model, d_model)
        self.self_attn = ProjectedInputAttention(d_model, nhead, vdim=d_model, dropout=dropout)
        self.norm1 = nn.LayerNorm(d_model)
        self.dropout1 = Dropout(dropout)
        # Gated fusion: one head each; Lighthouse fixes their attention dropout at 0.1.
        self.gate_cross_attn = MultiheadAttention(d_model, 1, dropout=0.1)
        self.gate_self_attn = MultiheadAttention(d_model, 1, dropout=0.1)
        self.gate_dropout = Dropout(dropout)
        self.gate_norm = nn.LayerNorm(d_model)
        self.gate_linear = nn.Linear(d_model, d_model)
        self.ca_qcontent_proj = nn.Linear(d_model, d_model)
        self.ca_qpos_proj = nn.Linear(d_model, d_model)
        self.ca_kcontent_proj = nn.Linear(d_model, d_model)
        self.ca_kpos_proj = nn.Linear(d_model, d_model)
        self.ca_v_proj = nn.Linear(d_model, d_model)
        self.ca_qpos_sine_proj = nn.Linear(d_model, d_model)
        self.cross_attn = ProjectedInputAttention(2 * d_model, nhead, vdim=d_model, dropout=dropout)
        self.linear1 = nn.Linear(d_model, dim_feedforward)
        self.dropout = Dropout(dropout)
        self.linear2 = nn.Linear(dim_feedforward, d_model)
        self.norm2 = nn.LayerNorm(d_model)
        self.norm3 = nn.LayerNorm(d_model)
        self.dropout2 = Dropout(dropout)
        self.dropout3 = Dropout(dropout)

    def forward(
        self,
        tgt: Tensor,
        memory: Tensor,
        blocked: Tensor,
        pos: Tensor,
        query_pos: Tensor,
        query_sine_embed: Tensor,
        txt_global: Tensor,
    ) -> Tensor:
        """One decoder step.

        Args:
            tgt: ``[B, Q, d]`` query content; memory: ``[B, L, d]`` encoder output;
            blocked: ``[B, 1, 1, L]`` True on padded memory tokens; pos: ``[B, L, d]``.
            query_pos: ``[B, Q, d]`` from the reference spans.
            query_sine_embed: ``[B, Q, d]`` modulated center sine embedding.
            txt_global: ``[B, 1, d]`` the max-pooled text token.

        Returns:
            ``[B, Q, d]`` updated query content.
        """
        tgt = self._self_attention(tgt, query_pos)
        # With a single key, the attention output is the projected text whatever the query.
        txt = self.gate_cross_attn(tgt, txt_global, txt_global)
        gate = (tgt * txt).sigmoid()
        fused = tgt + txt
        fused = self.gate_self_attn(fused, fused, fused)
        tgt = self.gate_dropout(F.relu(self.gate_linear(gate * fused))) + tgt
        tgt = self.gate_norm(tgt)
        return self._cross_attention_and_ffn(tgt, memory, blocked, pos, query_pos, query_sine_embed)


class EaTRDecoder(nn.Module):
    """Event stage (slot attention) then ``num_layers`` DAB-style moment layers.

    ``moment_span_embed`` and ``event_span_embed`` are the model's heads, attached after
    construction (as Lighthouse does), which also places them last in this module's state dict.
    """

    moment_span_embed: MLP
    event_span_embed: MLP

    def __init__(
        self,
        slot_atten: SlotAttention,
        first_layer: EaTRDecoderFirstLayer,
        layer: EaTRDecoderLayer,
        num_layers: int,
        d_model: int,
    ) -> None:
        super().__init__()
        if num_layers < 1:
            raise ValueError(f"the decoder needs at least one layer, got dec_layers={num_layers}")
        self.slot_atten = slot_atten
        self.layers = nn.ModuleList([first_layer])
        self.layers.extend(copy.deepcopy(layer) for _ in range(num_layers - 1))
        self.num_layers = num_layers
        self.d_model = d_model
        self.norm = nn.LayerNorm(d_model)
        self.event_norm = nn.LayerNorm(d_model)
        self.ref_point_head = MLP(2 * d_model, d_model, d_model, 2)
        self.query_scale = MLP(d_model, d_model, d_model, 2)
        self.ref_anchor_head = MLP(d_model, d_model, 1, 2)

    def forward(
        self,
        memory: Tensor,
        pad_mask: Tensor,
        pos: Tensor,
        src_vid: Tensor,
        pos_vid: Tensor,
        vid_pad_mask: Tensor,
        txt_global: Tensor,
    ) -> tuple[Tensor, Tensor]:
        """Decode.

        Args:
            memory: ``[B, L, d]``; pad_mask: ``[B, L]`` True on padding; pos: ``[B, L, d]``.
            src_vid: ``[B, Lv, d]`` projected audio frames; pos_vid: ``[B, Lv, d]``;
            vid_pad_mask: ``[B, Lv]`` True on padded frames.
            txt_global: ``[B, d]`` the max-pooled projected text.

        Returns:
            hs: ``[1 + layers, B, Q, d]``: ``event_norm(slots)``, then every layer's output after
            the final LayerNorm. references: ``[layers, B, Q, 2]``, the sigmoid-space spans fed
            into each layer (only the copies that build the next query are detached).
        """
        output = self.slot_atten(src_vid + pos_vid, vid_pad_mask)  # [B, Q, d]
        reference = self.event_span_embed(output).sigmoid()
        references = [reference]
        reference = reference.detach()
        hs = [self.event_norm(output)]
        blocked = pad_mask[:, None, None, :]
        txt_global = txt_global.unsqueeze(1)  # [B, 1, d]
        for layer_id, layer in enumerate(self.layers):
            sine = span_sine_embedding(reference, self.d_model)  # [B, Q, 2d]
            query_pos = self.ref_point_head(sine)
            # Only the center half enters cross-attention, scaled by the content (every layer).
            sine = sine[..., : self.d_model] * self.query_scale(output)
            width_ratio = self.ref_anchor_head(output).sigmoid()[..., 0] / reference[..., 1]
            sine = sine * width_ratio.unsqueeze(-1)

            output = layer(output, memory, blocked, pos, query_pos, sine, txt_global)

            new_reference = (self.moment_span_embed(output) + inverse_sigmoid(reference)).sigmoid()
            if layer_id != self.num_layers - 1:
                references.append(new_reference)
            reference = new_reference.detach()
            hs.append(self.norm(output))
        return torch.stack(hs), torch.stack(references)


class EaTRTransformer(nn.Module):
    """EaTR's encoder over ``[audio; text]`` and its event/moment decoder."""

    def __init__(
        self,
        d_model: int = 256,
        nhead: int = 8,
        num_encoder_layers: int = 2,
        num_decoder_layers: int = 2,
        dim_feedforward: int = 1024,
        dropout: float = 0.1,
        num_queries: int = 10,
        num_iterations: int = SLOT_ITERATIONS,
    ) -> None:
        super().__init__()
        if nhead <= 0 or d_model % nhead:
            raise ValueError(f"nheads={nhead} must divide hidden_dim={d_model}")
        # Construction order = Lighthouse's (the seed draws the same weights).
        encoder_layer = TransformerEncoderLayer(
            d_model, nhead, dim_feedforward, dropout, activation="relu"
        )
        self.encoder = TransformerEncoder(encoder_layer, num_encoder_layers)
        slot_atten = SlotAttention(num_iterations, num_queries, d_model)
        first_layer = EaTRDecoderFirstLayer(d_model, nhead, dim_feedforward, dropout)
        # Built even with one decoder layer (then unused), as in Lighthouse.
        layer = EaTRDecoderLayer(d_model, nhead, dim_feedforward, dropout)
        self.decoder = EaTRDecoder(slot_atten, first_layer, layer, num_decoder_layers, d_model)
        # Xavier for every matrix, after cloning, so the clones differ, as Lighthouse does.
        for p in self.parameters():
            if p.dim() > 1:
                nn.init.xavier_uniform_(p)
        self.d_model = d_model
        self.nhead = nhead
        self.dec_layers = num_decoder_layers

    def forward(
        self,
        src: Tensor,
        pad_mask: Tensor,
        pos: Tensor,
        src_vid: Tensor,
        pos_vid: Tensor,
        vid_pad_mask: Tensor,
        txt_global: Tensor,
    ) -> tuple[Tensor, Tensor, Tensor]:
        """Encode ``src [B, L, d]`` (``pad_mask [B, L]`` True on padding, ``pos [B, L, d]``),
        then decode (see :meth:`EaTRDecoder.forward`).

        Returns:
            hs ``[1 + layers, B, Q, d]``, memory ``[B, L, d]``, references ``[layers, B, Q, 2]``.
        """
        memory = self.encoder(src, pos, pad_mask)
        hs, references = self.decoder(
            memory, pad_mask, pos, src_vid, pos_vid, vid_pad_mask, txt_global
        )
        return hs, memory, references
