"""QD-DETR's transformer: text-to-audio cross encoder, self-attention encoder, DAB-style decoder.

Parameter names, shapes and registration order follow Lighthouse's ``qd_detr_transformer.py`` so
its checkpoints load with ``strict=True``; the module construction order also follows it, so the
same seed draws the same initial weights. Unlike Lighthouse, everything here is batch-first
(``[batch, length, dim]``), attention runs through :func:`torch.nn.functional.
scaled_dot_product_attention` (outside CPU training) and dropout uses a faster CPU random source
(:func:`dropout`); eval-mode outputs differ only by float rounding.

Data flow for one batch (``Lv`` audio frames, ``Lt`` text tokens, ``Q`` queries)::

    audio [B, Lv, d] --T2V cross-attention to text--> [B, Lv, d]
    [global token | audio] [B, 1+Lv, d] --self-attention encoder--> memory
    memory[:, 1:] + Q reference spans --decoder--> hs [layers, B, Q, d], refs [layers, B, Q, 2]
"""

from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from lighthouse_audio.models.attention import MultiheadAttention, ProjectedInputAttention
from lighthouse_audio.models.dropout import Dropout
from lighthouse_audio.models.layers import (
    MLP,
    SPAN_SINE_FEATS,
    gen_sineembed_for_position,
    inverse_sigmoid,
)

# Feed-forward activations: QD-DETR's learned single-slope PReLU (``activation.weight``) or
# DETR's ReLU (Moment-DETR), which has no parameter.
ACTIVATIONS: dict[str, type[nn.Module]] = {"prelu": nn.PReLU, "relu": nn.ReLU}


class _AttentionFeedForward(nn.Module):
    """An attention block and a feed-forward block (PReLU, or ReLU with ``activation="relu"``):
    the modules both encoder layers hold, registered in Lighthouse's state_dict order."""

    def __init__(
        self,
        d_model: int,
        nhead: int,
        dim_feedforward: int,
        dropout: float,
        activation: str = "prelu",
    ) -> None:
        super().__init__()
        if activation not in ACTIVATIONS:
            raise ValueError(f"activation {activation!r}: choose from {', '.join(ACTIVATIONS)}")
        # Registration order = Lighthouse's state_dict order.
        self.self_attn = MultiheadAttention(d_model, nhead, dropout=dropout)
        self.linear1 = nn.Linear(d_model, dim_feedforward)
        self.dropout = Dropout(dropout)
        self.linear2 = nn.Linear(dim_feedforward, d_model)
        self.norm1 = nn.LayerNorm(d_model)
        self.norm2 = nn.LayerNorm(d_model)
        self.dropout1 = Dropout(dropout)
        self.dropout2 = Dropout(dropout)
        self.activation = ACTIVATIONS[activation]()


class T2VEncoderLayer(_AttentionFeedForward):
    """Audio frames attend to the text, then a PReLU feed-forward block.

    Only the audio frames change; the global token and the text pass through untouched.
    """

    def forward(self, vid: Tensor, vid_pos: Tensor, txt: Tensor, blocked: Tensor) -> Tensor:
        """Update the audio frames.

        Args:
            vid: ``[B, Lv, d]`` audio frames.
            vid_pos: ``[B, Lv, d]`` their position embedding (added to the queries).
            txt: ``[B, Lt, d]`` text tokens, keys and values (text positions are zero).
            blocked: ``[B, H, Lv, Lt]`` from :func:`t2v_attention_mask`.

        Returns:
            ``[B, Lv, d]`` updated audio frames.
        """
        attn = self.self_attn(vid + vid_pos, txt, txt, blocked)
        x = vid + self.dropout1(attn)
        # Unlike a standard post-norm layer, norm1 only feeds the FFN: the second residual adds
        # the un-normalised x (Lighthouse's wiring).
        ffn = self.linear2(self.dropout(self.activation(self.linear1(self.norm1(x)))))
        return self.norm2(x + self.dropout2(ffn))


class TransformerEncoderLayer(_AttentionFeedForward):
    """Post-norm self-attention layer with a PReLU (or ReLU) feed-forward block (DETR's encoder
    layer)."""

    def forward(self, src: Tensor, pos: Tensor, pad_mask: Tensor) -> Tensor:
        """``src``, ``pos``: ``[B, L, d]``; ``pad_mask``: ``[B, L]`` True on padding.

        Returns ``[B, L, d]``.
        """
        q = k = src + pos
        blocked = pad_mask[:, None, None, :]
        x = self.norm1(src + self.dropout1(self.self_attn(q, k, src, blocked)))
        ffn = self.linear2(self.dropout(self.activation(self.linear1(x))))
        return self.norm2(x + self.dropout2(ffn))


class TransformerEncoder(nn.Module):
    """A stack of identical layers applied in turn; extra arguments go to every layer."""

    def __init__(self, layer: nn.Module, num_layers: int) -> None:
        super().__init__()
        self.layers = _get_clones(layer, num_layers)

    def forward(self, x: Tensor, *args: Tensor) -> Tensor:
        for layer in self.layers:
            x = layer(x, *args)
        return x


class TransformerDecoderLayer(nn.Module):
    """Conditional-DETR decoder layer with separate content/position projections.

    Self-attention adds projected content and projected query position for q and k. In
    cross-attention each head's query is ``[content head | sine-embedding head]`` and each head's
    key is ``[content head | key-position head]``; in the first layer (only) the query and key
    positions are also added to the content. ``ca_qpos_proj`` is removed (set to None) in later
    layers by :class:`TransformerDecoder`, as in Lighthouse.
    """

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
        self.ca_qpos_proj: nn.Linear | None = nn.Linear(d_model, d_model)
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
        self.activation = nn.PReLU()

    def forward(
        self,
        tgt: Tensor,
        memory: Tensor,
        memory_pad_mask: Tensor,
        pos: Tensor,
        query_pos: Tensor,
        query_sine_embed: Tensor,
    ) -> Tensor:
        """One decoder step.

        Args:
            tgt: ``[B, Q, d]`` query content.
            memory: ``[B, Lv, d]`` encoded audio frames.
            memory_pad_mask: ``[B, Lv]``, True on padded frames.
            pos: ``[B, Lv, d]`` frame position embedding.
            query_pos: ``[B, Q, d]`` query position (from the reference span).
            query_sine_embed: ``[B, Q, d]`` modulated sine embedding of the reference span.

        Returns:
            ``[B, Q, d]`` updated query content.
        """
        # Self-attention among queries.
        q = self.sa_qcontent_proj(tgt) + self.sa_qpos_proj(query_pos)
        k = self.sa_kcontent_proj(tgt) + self.sa_kpos_proj(query_pos)
        v = self.sa_v_proj(tgt)
        tgt = self.norm1(tgt + self.dropout1(self.self_attn(q, k, v)))

        # Cross-attention to the audio frames.
        q = self.ca_qcontent_proj(tgt)
        k = self.ca_kcontent_proj(memory)
        v = self.ca_v_proj(memory)
        k_pos = self.ca_kpos_proj(pos)
        if self.ca_qpos_proj is not None:  # first layer only (keep_query_pos=False)
            q = q + self.ca_qpos_proj(query_pos)
            k = k + k_pos
        q = _concat_heads(q, self.ca_qpos_sine_proj(query_sine_embed), self.nhead)
        k = _concat_heads(k, k_pos, self.nhead)
        blocked = memory_pad_mask[:, None, None, :]
        tgt = self.norm2(tgt + self.dropout2(self.cross_attn(q, k, v, blocked)))

        ffn = self.linear2(self.dropout(self.activation(self.linear1(tgt))))
        return self.norm3(tgt + self.dropout3(ffn))


def _concat_heads(a: Tensor, b: Tensor, num_heads: int) -> Tensor:
    """``[B, L, d]`` x2 -> ``[B, L, 2d]`` where head ``h`` is ``[a's head h | b's head h]``."""
    batch, length, _ = a.shape
    a = a.view(batch, length, num_heads, -1)
    b = b.view(batch, length, num_heads, -1)
    return torch.cat((a, b), dim=-1).view(batch, length, -1)


class TransformerDecoder(nn.Module):
    """DAB-DETR-style decoder: queries are (center, width) anchors refined layer by layer."""

    def __init__(self, layer: TransformerDecoderLayer, num_layers: int, d_model: int) -> None:
        super().__init__()
        if d_model != 2 * SPAN_SINE_FEATS:
            raise ValueError(
                f"the decoder needs d_model == {2 * SPAN_SINE_FEATS} (its span sine embedding has "
                f"{2 * SPAN_SINE_FEATS} features, as in Lighthouse), got {d_model}"
            )
        self.layers = _get_clones(layer, num_layers)
        self.num_layers = num_layers
        self.norm = nn.LayerNorm(d_model)
        self.query_scale = MLP(d_model, d_model, d_model, 2)
        self.ref_point_head = MLP(d_model, d_model, d_model, 2)
        self.bbox_embed = MLP(d_model, d_model, 2, 3)
        nn.init.zeros_(self.bbox_embed.layers[-1].weight)
        nn.init.zeros_(self.bbox_embed.layers[-1].bias)
        self.ref_anchor_head = MLP(d_model, d_model, 1, 2)
        # Query positions enter cross-attention in the first layer only.
        for later in self.layers[1:]:
            later.ca_qpos_proj = None

    def forward(
        self,
        tgt: Tensor,
        memory: Tensor,
        memory_pad_mask: Tensor,
        pos: Tensor,
        refpoints_unsigmoid: Tensor,
    ) -> tuple[Tensor, Tensor]:
        """Decode.

        Args:
            tgt: ``[B, Q, d]`` initial query content (zeros).
            memory: ``[B, Lv, d]``; memory_pad_mask: ``[B, Lv]`` True on padding;
            pos: ``[B, Lv, d]`` frame positions.
            refpoints_unsigmoid: ``[B, Q, 2]`` initial anchors before the sigmoid.

        Returns:
            hs: ``[layers, B, Q, d]`` every layer's output after the final LayerNorm.
            references: ``[layers, B, Q, 2]`` the sigmoid-space anchor fed into each layer. Only the
            copy used to build the next layer's query is detached, so the span heads still send
            gradients into ``bbox_embed`` through these, as in Lighthouse.
        """
        output = tgt
        reference = refpoints_unsigmoid.sigmoid()
        references = [reference]
        hs = []
        for layer_id, layer in enumerate(self.layers):
            sine = gen_sineembed_for_position(reference)
            query_pos = self.ref_point_head(sine)
            if layer_id > 0:
                sine = sine * self.query_scale(output)
            # Modulate by the predicted width relative to the anchor width.
            width_ratio = self.ref_anchor_head(output).sigmoid()[..., 0] / reference[..., 1]
            sine = sine * width_ratio.unsqueeze(-1)

            output = layer(output, memory, memory_pad_mask, pos, query_pos, sine)

            new_reference = (self.bbox_embed(output) + inverse_sigmoid(reference)).sigmoid()
            if layer_id != self.num_layers - 1:
                references.append(new_reference)
            reference = new_reference.detach()
            hs.append(self.norm(output))
        return torch.stack(hs), torch.stack(references)


class Transformer(nn.Module):
    """QD-DETR's text-to-audio encoder, audio self-attention encoder and span decoder."""

    def __init__(
        self,
        d_model: int = 256,
        nhead: int = 8,
        num_encoder_layers: int = 2,
        num_decoder_layers: int = 2,
        dim_feedforward: int = 1024,
        dropout: float = 0.1,
    ) -> None:
        super().__init__()
        if d_model % nhead:
            raise ValueError(f"nheads={nhead} must divide hidden_dim={d_model}")
        self.d_model = d_model
        self.nhead = nhead
        self.t2v_encoder = TransformerEncoder(
            T2VEncoderLayer(d_model, nhead, dim_feedforward, dropout), num_encoder_layers
        )
        self.encoder = TransformerEncoder(
            TransformerEncoderLayer(d_model, nhead, dim_feedforward, dropout), num_encoder_layers
        )
        self.decoder = TransformerDecoder(
            TransformerDecoderLayer(d_model, nhead, dim_feedforward, dropout),
            num_decoder_layers,
            d_model,
        )
        # Xavier for every matrix, after cloning, so the clones differ (and bbox_embed's zeroed
        # last layer is re-drawn too), as Lighthouse does.
        for p in self.parameters():
            if p.dim() > 1:
                nn.init.xavier_uniform_(p)

    def encode(
        self,
        vid: Tensor,
        vid_pos: Tensor,
        vid_pad_mask: Tensor,
        txt: Tensor,
        t2v_blocked: Tensor,
        global_token: Tensor,
        global_pos: Tensor,
    ) -> tuple[Tensor, Tensor]:
        """Condition the audio frames on the text, then self-attend over [global | frames].

        Args:
            vid: ``[B, Lv, d]`` projected audio frames; vid_pos: ``[B, Lv, d]``;
            vid_pad_mask: ``[B, Lv]`` True on padding.
            txt: ``[B, Lt, d]`` projected text.
            t2v_blocked: ``[B, H, Lv, Lt]`` from :func:`t2v_attention_mask`.
            global_token, global_pos: ``[d]`` learned global token and its position.

        Returns:
            memory_local: ``[B, Lv, d]``; memory_global: ``[B, d]`` (the global token's output).
        """
        batch = vid.shape[0]
        vid = self.t2v_encoder(vid, vid_pos, txt, t2v_blocked)
        # Text tokens are dropped after T2V; a global token (never padded) is prepended.
        src = torch.cat((global_token.expand(batch, 1, -1), vid), dim=1)
        pos = torch.cat((global_pos.expand(batch, 1, -1), vid_pos), dim=1)
        pad_mask = F.pad(vid_pad_mask, (1, 0), value=False)
        memory = self.encoder(src, pos, pad_mask)
        return memory[:, 1:], memory[:, 0]

    def decode(
        self,
        memory_local: Tensor,
        vid_pos: Tensor,
        vid_pad_mask: Tensor,
        refpoints_unsigmoid: Tensor,
    ) -> tuple[Tensor, Tensor]:
        """Decode ``Q`` span queries against the encoded frames.

        Args:
            memory_local: ``[B, Lv, d]``; vid_pos: ``[B, Lv, d]``; vid_pad_mask: ``[B, Lv]``.
            refpoints_unsigmoid: ``[Q, 2]`` learned anchors (before the sigmoid).

        Returns:
            hs: ``[layers, B, Q, d]``; references: ``[layers, B, Q, 2]``
            (see :meth:`TransformerDecoder.forward`).
        """
        batch = memory_local.shape[0]
        tgt = memory_local.new_zeros(batch, refpoints_unsigmoid.shape[0], self.d_model)
        refpoints = refpoints_unsigmoid.expand(batch, -1, -1)
        return self.decoder(tgt, memory_local, vid_pad_mask, vid_pos, refpoints)


def _get_clones(module: nn.Module, n: int) -> nn.ModuleList:
    return nn.ModuleList(copy.deepcopy(module) for _ in range(n))
