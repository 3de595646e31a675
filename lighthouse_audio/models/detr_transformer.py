"""DETR's original transformer: a post-norm encoder and a decoder of learned query slots.

This is the transformer Moment-DETR uses (Lighthouse's ``moment_transformer.py``): the encoder is
:class:`~lighthouse_audio.models.transformer.TransformerEncoderLayer` with a ReLU feed-forward
block, and the decoder is plain DETR's, without reference points. Parameter names, shapes,
registration and construction order follow Lighthouse's so its checkpoints load with
``strict=True`` and a seed draws the same initial weights. Everything is batch-first here.

Data flow for one batch (``L`` tokens, ``Q`` queries)::

    src [B, L, d] + pos --self-attention encoder--> memory [B, L, d]
    zeros [B, Q, d] + query_pos [Q, d] --decoder over memory--> hs [layers, B, Q, d]
"""

from __future__ import annotations

import copy

import torch
from torch import Tensor, nn

from lighthouse_audio.models.attention import MultiheadAttention
from lighthouse_audio.models.dropout import Dropout
from lighthouse_audio.models.transformer import TransformerEncoder, TransformerEncoderLayer

__all__ = ["DETRDecoder", "DETRDecoderLayer", "DETRTransformer"]


class DETRDecoderLayer(nn.Module):
    """DETR's post-norm decoder layer: query self-attention, cross-attention, ReLU FFN.

    Query positions are added to the queries and keys of both attentions (not to the values);
    memory positions to the cross-attention keys only.
    """

    def __init__(self, d_model: int, nhead: int, dim_feedforward: int, dropout: float) -> None:
        super().__init__()
        # Registration order = Lighthouse's state_dict order.
        self.self_attn = MultiheadAttention(d_model, nhead, dropout=dropout)
        self.multihead_attn = MultiheadAttention(d_model, nhead, dropout=dropout)
        self.linear1 = nn.Linear(d_model, dim_feedforward)
        self.dropout = Dropout(dropout)
        self.linear2 = nn.Linear(dim_feedforward, d_model)
        self.norm1 = nn.LayerNorm(d_model)
        self.norm2 = nn.LayerNorm(d_model)
        self.norm3 = nn.LayerNorm(d_model)
        self.dropout1 = Dropout(dropout)
        self.dropout2 = Dropout(dropout)
        self.dropout3 = Dropout(dropout)
        self.activation = nn.ReLU()

    def forward(
        self, tgt: Tensor, query_pos: Tensor, memory: Tensor, pos: Tensor, blocked: Tensor
    ) -> Tensor:
        """One decoder step.

        Args:
            tgt: ``[B, Q, d]`` query content; query_pos: ``[B, Q, d]`` learned query positions.
            memory: ``[B, L, d]`` encoder output; pos: ``[B, L, d]`` its positions.
            blocked: ``[B, 1, 1, L]``, True on padded memory tokens.

        Returns:
            ``[B, Q, d]`` updated query content.
        """
        q = k = tgt + query_pos
        tgt = self.norm1(tgt + self.dropout1(self.self_attn(q, k, tgt)))
        attn = self.multihead_attn(tgt + query_pos, memory + pos, memory, blocked)
        tgt = self.norm2(tgt + self.dropout2(attn))
        ffn = self.linear2(self.dropout(self.activation(self.linear1(tgt))))
        return self.norm3(tgt + self.dropout3(ffn))


class DETRDecoder(nn.Module):
    """A stack of :class:`DETRDecoderLayer` whose every output goes through one final LayerNorm."""

    def __init__(self, layer: DETRDecoderLayer, num_layers: int, d_model: int) -> None:
        super().__init__()
        if num_layers < 1:
            raise ValueError(f"the decoder needs at least one layer, got dec_layers={num_layers}")
        self.layers = nn.ModuleList(copy.deepcopy(layer) for _ in range(num_layers))
        self.norm = nn.LayerNorm(d_model)

    def forward(
        self, tgt: Tensor, query_pos: Tensor, memory: Tensor, pos: Tensor, pad_mask: Tensor
    ) -> Tensor:
        """Decode.

        Args:
            tgt: ``[B, Q, d]`` initial query content (zeros); query_pos: ``[B, Q, d]``.
            memory: ``[B, L, d]``; pos: ``[B, L, d]``; pad_mask: ``[B, L]`` True on padding.

        Returns:
            hs: ``[layers, B, Q, d]``, every layer's output after the shared final LayerNorm (the
            running output itself is never normalised by it).
        """
        blocked = pad_mask[:, None, None, :]
        hs = []
        for layer in self.layers:
            tgt = layer(tgt, query_pos, memory, pos, blocked)
            hs.append(self.norm(tgt))
        return torch.stack(hs)


class DETRTransformer(nn.Module):
    """Moment-DETR's transformer: a ReLU post-norm encoder over all tokens, then a DETR decoder
    of ``Q`` learned query slots over the whole encoder output."""

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
        if nhead <= 0 or d_model % nhead:
            raise ValueError(f"nheads={nhead} must divide hidden_dim={d_model}")
        self.d_model = d_model
        self.nhead = nhead
        encoder_layer = TransformerEncoderLayer(
            d_model, nhead, dim_feedforward, dropout, activation="relu"
        )
        self.encoder = TransformerEncoder(encoder_layer, num_encoder_layers)
        decoder_layer = DETRDecoderLayer(d_model, nhead, dim_feedforward, dropout)
        self.decoder = DETRDecoder(decoder_layer, num_decoder_layers, d_model)
        # Xavier for every matrix, after cloning, so the clones differ, as Lighthouse does.
        for p in self.parameters():
            if p.dim() > 1:
                nn.init.xavier_uniform_(p)

    def forward(
        self, src: Tensor, pos: Tensor, pad_mask: Tensor, query_embed: Tensor
    ) -> tuple[Tensor, Tensor]:
        """Encode the tokens, then decode the query slots against them.

        Args:
            src: ``[B, L, d]`` tokens; pos: ``[B, L, d]`` their positions (added to the encoder's
                queries and keys and to the cross-attention keys).
            pad_mask: ``[B, L]``, True on padded tokens (never attended).
            query_embed: ``[Q, d]`` learned query positions; the query content starts at zero.

        Returns:
            hs: ``[layers, B, Q, d]`` (see :meth:`DETRDecoder.forward`); memory: ``[B, L, d]``.
        """
        memory = self.encoder(src, pos, pad_mask)
        query_pos = query_embed.expand(src.shape[0], -1, -1)
        tgt = torch.zeros_like(query_pos)
        return self.decoder(tgt, query_pos, memory, pos, pad_mask), memory
