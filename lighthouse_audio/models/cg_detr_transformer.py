"""CG-DETR's transformer (Lighthouse's ``cg_detr_transformer.py``), batch-first.

Parameter names, shapes and construction order follow Lighthouse's, so its checkpoints load with
``strict=True`` and a seed draws the same initial weights. What differs from QD-DETR's
(``models/transformer.py``):

- the text-to-audio layers use :class:`DummyAwareAttention` (no q/k/v projections; learned
  "dummy" keys take softmax mass but give no value) and report their attention maps;
- the global token is built per sample from learned prompts (:func:`prompt_token`) and sent
  through the same text-to-audio layers with no keys at all;
- ``memory_global`` is added to every frame of ``memory_local``;
- residual branches use per-sample drop-path (:class:`DropPath`) instead of dropout;
- the decoder's sine embedding of a reference span has ``d_model / 2`` features per coordinate,
  so any width divisible by 8 works (QD-DETR's is fixed at 2 x 128).

Data flow for one batch (``Lv`` frames, ``Lk`` = dummies + text tokens, ``Q`` queries)::

    frames [B, Lv, d] --T2V attention to [dummies | text]--> [B, Lv, d], attention [B, Lv, Lk]
    prompts + frames + attention -> global token [B, d] --T2V with no keys--> [B, d]
    [global | frames] --self-attention encoder--> memory_global [B, d], memory_local [B, Lv, d]
    memory_local + Q reference spans --decoder--> hs [layers, B, Q, d], refs [layers, B, Q, 2]
"""

from __future__ import annotations

import copy
import math
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from lighthouse_audio.models.attention import t2v_attention_mask
from lighthouse_audio.models.dropout import Dropout, dropout
from lighthouse_audio.models.layers import MLP, inverse_sigmoid
from lighthouse_audio.models.position_encoding import sine_features
from lighthouse_audio.models.transformer import (
    TransformerDecoderLayer,
    TransformerEncoder,
    TransformerEncoderLayer,
)

__all__ = [
    "CGDETRDecoder",
    "CGDETRTransformer",
    "CGEncoderLayer",
    "CGT2VEncoderLayer",
    "DropPath",
    "DummyAwareAttention",
    "Encoded",
    "prompt_token",
    "span_sine_embedding",
]


def _clones(module: nn.Module, n: int) -> nn.ModuleList:
    return nn.ModuleList(copy.deepcopy(module) for _ in range(n))


def drop_path(x: Tensor, p: float, training: bool) -> Tensor:
    """Stochastic depth: each sample's whole branch ``x[b]`` is dropped with probability ``p``
    (the kept ones scaled by ``1 / (1 - p)``)."""
    if p == 0 or not training:
        return x
    keep = 1 - p
    mask = keep + torch.rand((x.shape[0],) + (1,) * (x.ndim - 1), dtype=x.dtype, device=x.device)
    return x.div(keep) * mask.floor_()


class DropPath(nn.Module):
    """Per-sample drop-path on a batch-first residual branch (Lighthouse's ``DropPath``)."""

    def __init__(self, p: float) -> None:
        super().__init__()
        self.p = p

    def forward(self, x: Tensor) -> Tensor:
        return drop_path(x, self.p, self.training)

    def extra_repr(self) -> str:
        return f"p={self.p}"


def _with_drop_path(layer: nn.Module, p: float, names: tuple[str, ...]) -> None:
    """Swap a layer's residual-branch dropouts for drop-path (neither has parameters, so the
    state dict and the seeded initialisation are unchanged)."""
    for name in names:
        setattr(layer, name, DropPath(p))


class CGEncoderLayer(TransformerEncoderLayer):
    """Post-norm self-attention layer with a PReLU FFN; residual branches use drop-path."""

    def __init__(self, d_model: int, nhead: int, dim_feedforward: int, dropout: float) -> None:
        super().__init__(d_model, nhead, dim_feedforward, dropout)
        _with_drop_path(self, dropout, ("dropout1", "dropout2"))


class CGDecoderLayer(TransformerDecoderLayer):
    """QD-DETR's conditional decoder layer; residual branches use drop-path."""

    def __init__(self, d_model: int, nhead: int, dim_feedforward: int, dropout: float) -> None:
        super().__init__(d_model, nhead, dim_feedforward, dropout)
        _with_drop_path(self, dropout, ("dropout1", "dropout2", "dropout3"))


class DummyAwareAttention(nn.Module):
    """Multi-head attention of frames over ``[dummies | text]`` without input projections.

    Scores are raw ``(q * head_dim**-0.5) . k`` products per head; the softmax runs over every
    key, but with ``dummies`` the value sum skips the first ``num_dummies`` keys, so the mass
    the dummies take is simply lost (not renormalised) — how CG-DETR lets a frame ignore an
    unrelated query. Only ``out_proj`` is learned.
    """

    def __init__(self, embed_dim: int, num_heads: int, dropout: float = 0.0) -> None:
        super().__init__()
        if embed_dim % num_heads:
            raise ValueError(f"num_heads={num_heads} must divide {embed_dim}")
        self.num_heads = num_heads
        self.dropout = dropout
        self.out_proj = nn.Linear(embed_dim, embed_dim)
        nn.init.zeros_(self.out_proj.bias)

    def forward(
        self, query: Tensor, key: Tensor, value: Tensor, blocked: Tensor, num_dummies: int
    ) -> tuple[Tensor, Tensor]:
        """``query`` ``[B, Lq, d]``, ``key``/``value`` ``[B, Lk, d]``; ``blocked``
        ``[B, H, Lq, Lk]`` True where attention is not allowed; the first ``num_dummies`` keys
        carry no value.

        Returns the output ``[B, Lq, d]`` and the head-averaged weights ``[B, Lq, Lk]`` (before
        attention dropout).
        """
        batch, len_q, dim = query.shape
        len_k = key.shape[1]
        heads = self.num_heads
        head_dim = dim // heads
        q = query.view(batch, len_q, heads, head_dim).transpose(1, 2)
        k = key.view(batch, len_k, heads, head_dim).transpose(1, 2)
        v = value.view(batch, len_k, heads, head_dim).transpose(1, 2)
        scores = (q * q.shape[-1] ** -0.5) @ k.transpose(-2, -1)  # [B, H, Lq, Lk]
        weights = scores.masked_fill(blocked, float("-inf")).softmax(dim=-1)
        dropped = dropout(weights, self.dropout, self.training)
        out = dropped[..., num_dummies:] @ v[:, :, num_dummies:]  # [B, H, Lq, hd]
        out = self.out_proj(out.transpose(1, 2).reshape(batch, len_q, dim))
        return out, weights.sum(dim=1) / heads


class CGT2VEncoderLayer(nn.Module):
    """Frames attend to ``[dummies | text]``, then a PReLU FFN; only the frames change.

    The residual form is QD-DETR's T2V hybrid (README §6.0): the FFN reads LN1(x1) but its
    residual adds the un-normalised x1.
    """

    def __init__(self, d_model: int, nhead: int, dim_feedforward: int, dropout: float) -> None:
        super().__init__()
        # Registration order = Lighthouse's state_dict order.
        self.self_attn = DummyAwareAttention(d_model, nhead, dropout=dropout)
        self.linear1 = nn.Linear(d_model, dim_feedforward)
        self.dropout = Dropout(dropout)
        self.linear2 = nn.Linear(dim_feedforward, d_model)
        self.norm1 = nn.LayerNorm(d_model)
        self.norm2 = nn.LayerNorm(d_model)
        self.dropout1 = DropPath(dropout)
        self.dropout2 = DropPath(dropout)
        self.activation = nn.PReLU()

    def forward(
        self,
        vid: Tensor,
        vid_pos: Tensor,
        keys: Tensor,
        key_pos: Tensor,
        blocked: Tensor,
        num_dummies: int,
    ) -> tuple[Tensor, Tensor]:
        """``vid``/``vid_pos`` ``[B, Lv, d]``; ``keys``/``key_pos`` ``[B, Lk, d]`` (values are
        the keys without positions); ``blocked`` ``[B, H, Lv, Lk]``.

        Returns the new frames ``[B, Lv, d]`` and the attention ``[B, Lv, Lk]``.
        """
        attn, weights = self.self_attn(vid + vid_pos, keys + key_pos, keys, blocked, num_dummies)
        x = vid + self.dropout1(attn)
        ffn = self.linear2(self.dropout(self.activation(self.linear1(self.norm1(x)))))
        return self.norm2(x + self.dropout2(ffn)), weights


class CGT2VEncoder(nn.Module):
    """The text-to-audio layers; the attention maps are averaged over layers."""

    def __init__(self, layer: CGT2VEncoderLayer, num_layers: int) -> None:
        super().__init__()
        self.layers = _clones(layer, num_layers)

    def forward(
        self,
        vid: Tensor,
        vid_pos: Tensor,
        keys: Tensor,
        key_pos: Tensor,
        blocked: Tensor,
        num_dummies: int,
    ) -> tuple[Tensor, Tensor]:
        """See :meth:`CGT2VEncoderLayer.forward`; returns frames and mean attention."""
        total: Tensor | None = None
        for layer in self.layers:
            vid, weights = layer(vid, vid_pos, keys, key_pos, blocked, num_dummies)
            total = weights if total is None else total + weights
        if total is None:
            raise ValueError("CG-DETR needs t2v_layers >= 1")
        return vid, total / len(self.layers)


def span_sine_embedding(spans: Tensor, num_feats: int) -> Tensor:
    """Sine embedding of (center, width) spans: ``[..., 2]`` -> ``[..., 2 * num_feats]``
    (center's features, then width's; ``2 * pi * value``, temperature 10000)."""
    scaled = spans * (2 * math.pi)
    return torch.cat(
        (sine_features(scaled[..., 0], num_feats), sine_features(scaled[..., 1], num_feats)),
        dim=-1,
    )


class CGDETRDecoder(nn.Module):
    """DAB-DETR decoder (QD-DETR's, README §6.0) with a width-sized span sine embedding."""

    def __init__(self, layer: CGDecoderLayer, num_layers: int, d_model: int) -> None:
        super().__init__()
        self.layers = _clones(layer, num_layers)
        self.num_layers = num_layers
        self.sine_feats = d_model // 2
        self.norm = nn.LayerNorm(d_model)
        self.query_scale = MLP(d_model, d_model, d_model, 2)
        self.ref_point_head = MLP(d_model, d_model, d_model, 2)
        self.bbox_embed = MLP(d_model, d_model, 2, 3)
        nn.init.zeros_(self.bbox_embed.layers[-1].weight)
        nn.init.zeros_(self.bbox_embed.layers[-1].bias)
        self.ref_anchor_head = MLP(d_model, d_model, 1, 2)
        for later in self.layers[1:]:  # query positions enter cross-attention in layer 0 only
            later.ca_qpos_proj = None

    def forward(
        self,
        tgt: Tensor,
        memory: Tensor,
        memory_pad_mask: Tensor,
        pos: Tensor,
        refpoints_unsigmoid: Tensor,
    ) -> tuple[Tensor, Tensor]:
        """``tgt`` ``[B, Q, d]`` (zeros), ``memory``/``pos`` ``[B, Lv, d]``, ``memory_pad_mask``
        ``[B, Lv]`` True on padding, ``refpoints_unsigmoid`` ``[B, Q, 2]``.

        Returns ``hs`` ``[layers, B, Q, d]`` (after the final LayerNorm) and the sigmoid-space
        reference fed into each layer ``[layers, B, Q, 2]``.
        """
        output = tgt
        reference = refpoints_unsigmoid.sigmoid()
        references = [reference]
        hs = []
        for layer_id, layer in enumerate(self.layers):
            sine = span_sine_embedding(reference, self.sine_feats)
            query_pos = self.ref_point_head(sine)
            if layer_id > 0:
                sine = sine * self.query_scale(output)
            width_ratio = self.ref_anchor_head(output).sigmoid()[..., 0] / reference[..., 1]
            sine = sine * width_ratio.unsqueeze(-1)
            output = layer(output, memory, memory_pad_mask, pos, query_pos, sine)
            new_reference = (self.bbox_embed(output) + inverse_sigmoid(reference)).sigmoid()
            if layer_id != self.num_layers - 1:
                references.append(new_reference)
            reference = new_reference.detach()
            hs.append(self.norm(output))
        return torch.stack(hs), torch.stack(references)


def prompt_token(
    frames: Tensor,
    ctx: Tensor,
    attention: Tensor,
    num_frames: Tensor,
    prompts: Tensor,
    num_dummies: int,
    num_prompts: int,
) -> Tensor:
    """CG-DETR's per-sample global token before its T2V pass (README §6.2, "Global token").

    Args:
        frames: ``[B, Lv, d]`` projected frames (the T2V input); ctx: ``[B, d]`` their mean
            over valid frames.
        attention: ``[B, Lv, nd + Lt]`` T2V attention (mean over layers).
        num_frames: ``[B]`` valid frames per sample.
        prompts: ``[P, d]`` learned ``global_rep_token``.

    Returns ``[B, d]``: the top ``num_prompts`` prompts weighted by their importance-weighted
    similarity, plus ``ctx``. Padded frames count in the average (Lighthouse's ``mean``).
    """
    length = frames.shape[1]
    similarity = F.normalize(frames - ctx[:, None], dim=2) @ F.normalize(prompts, dim=1).T
    similarity = similarity.softmax(dim=-1)  # [B, Lv, P]
    importance = attention[:, :, num_dummies:].sum(2).detach()  # mass on real text, [B, Lv]
    valid = torch.arange(length, device=frames.device) < num_frames[:, None]
    importance = importance * valid
    importance = importance / importance.sum(1, keepdim=True) * length
    score = (similarity * importance[..., None]).mean(1)  # [B, P]
    top_value, top_index = score.topk(num_prompts, dim=1)
    return (top_value[..., None] * prompts[top_index]).sum(1) + ctx


class Encoded(NamedTuple):
    """One encoder pass: ``memory_local`` ``[B, Lv, d]`` (``memory_global`` added),
    ``memory_global`` ``[B, d]`` and the T2V attention ``[B, Lv, nd + Lt]``."""

    memory_local: Tensor
    memory_global: Tensor
    attention: Tensor


class CGDETRTransformer(nn.Module):
    """Moment encoder, T2V layers, self-attention encoder and DAB decoder of CG-DETR.

    Args:
        d_model, nhead, dim_feedforward, dropout: widths and regularisation.
        num_encoder_layers, num_decoder_layers, t2v_layers, moment_layers: layer counts.
    """

    def __init__(
        self,
        d_model: int = 256,
        nhead: int = 8,
        num_encoder_layers: int = 3,
        num_decoder_layers: int = 3,
        dim_feedforward: int = 1024,
        dropout: float = 0.1,
        t2v_layers: int = 2,
        moment_layers: int = 1,
    ) -> None:
        super().__init__()
        if d_model % nhead:
            raise ValueError(f"nheads={nhead} must divide hidden_dim={d_model}")
        self.d_model = d_model
        self.nhead = nhead
        # Construction order = Lighthouse's (the seed draws the same weights).
        self.mcls_encoder = TransformerEncoder(
            CGEncoderLayer(d_model, nhead, dim_feedforward, dropout), moment_layers
        )
        self.t2v_encoder = CGT2VEncoder(
            CGT2VEncoderLayer(d_model, nhead, dim_feedforward, dropout), t2v_layers
        )
        self.encoder = TransformerEncoder(
            CGEncoderLayer(d_model, nhead, dim_feedforward, dropout), num_encoder_layers
        )
        self.decoder = CGDETRDecoder(
            CGDecoderLayer(d_model, nhead, dim_feedforward, dropout), num_decoder_layers, d_model
        )
        for p in self.parameters():  # Xavier on every matrix, after cloning (Lighthouse's)
            if p.dim() > 1:
                nn.init.xavier_uniform_(p)

    def encode(
        self,
        vid: Tensor,
        vid_pos: Tensor,
        vid_pad: Tensor,
        keys: Tensor,
        key_pos: Tensor,
        key_pad: Tensor,
        ctx: Tensor,
        prompts: Tensor,
        global_pos: Tensor,
        num_dummies: int,
        num_prompts: int,
    ) -> Encoded:
        """T2V over ``[dummies | text]``, the prompt-built global token, then the encoder.

        Args:
            vid, vid_pos: ``[B, Lv, d]`` projected frames and positions; vid_pad: ``[B, Lv]``
                True on padding.
            keys, key_pos: ``[B, nd + Lt, d]`` dummy tokens and text with their positions;
                key_pad: ``[B, nd + Lt]`` True on padded text.
            ctx: ``[B, d]`` mean valid frame; prompts: ``[P, d]``; global_pos: ``[1, d]``.
        """
        batch = vid.shape[0]
        blocked = t2v_attention_mask(vid_pad, key_pad, self.nhead)  # Lighthouse's head tiling
        frames, attention = self.t2v_encoder(vid, vid_pos, keys, key_pos, blocked, num_dummies)

        num_frames = (~vid_pad).sum(1)
        token = prompt_token(vid, ctx, attention, num_frames, prompts, num_dummies, num_prompts)
        # The global token goes through the same T2V layers with no keys: attention gives zero,
        # so only out_proj's bias, the norms and the FFN act on it (as in Lighthouse).
        token_pos = global_pos.expand(batch, 1, -1)
        no_keys = token.new_zeros(batch, 0, self.d_model)
        no_block = torch.zeros(batch, self.nhead, 1, 0, dtype=torch.bool, device=vid.device)
        token, _ = self.t2v_encoder(token[:, None], token_pos, no_keys, no_keys, no_block, 0)

        src = torch.cat((token, frames), dim=1)
        pos = torch.cat((token_pos, vid_pos), dim=1)
        memory = self.encoder(src, pos, F.pad(vid_pad, (1, 0), value=False))
        memory_global = memory[:, 0]
        return Encoded(memory[:, 1:] + memory_global[:, None], memory_global, attention)

    def decode(
        self, memory_local: Tensor, vid_pos: Tensor, vid_pad: Tensor, refpoints: Tensor
    ) -> tuple[Tensor, Tensor]:
        """``Q`` span queries (``refpoints`` ``[Q, 2]`` before the sigmoid) against the frames;
        see :meth:`CGDETRDecoder.forward`."""
        batch = memory_local.shape[0]
        tgt = memory_local.new_zeros(batch, refpoints.shape[0], self.d_model)
        return self.decoder(tgt, memory_local, vid_pad, vid_pos, refpoints.expand(batch, -1, -1))

    def encode_moments(
        self, vid: Tensor, vid_pos: Tensor, keep: Tensor, token: Tensor, token_pos: Tensor
    ) -> tuple[Tensor, Tensor]:
        """The moment encoder over ``[token | frames]`` where only ``keep`` frames (``[B, Lv]``
        bool) may be attended; returns the token's output ``[B, d]`` and the frames'."""
        batch = vid.shape[0]
        src = torch.cat((token.expand(batch, 1, -1), vid), dim=1)
        pos = torch.cat((token_pos.expand(batch, 1, -1), vid_pos), dim=1)
        memory = self.mcls_encoder(src, pos, ~F.pad(keep, (1, 0), value=True))
        return memory[:, 0], memory[:, 1:]
