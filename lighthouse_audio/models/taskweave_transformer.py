"""TaskWeave's transformer: text-to-audio encoder, task-split streams, DAB-style span decoder.

Parameter names, shapes, registration and construction order follow Lighthouse's
``taskweave_transformer.py`` so its checkpoints load with ``strict=True`` and a seed draws the
same initial weights. Everything is batch-first here and device-agnostic: Lighthouse moves the
decoder's zero queries to the GPU unconditionally (so its TaskWeave cannot run on a CPU-only
torch); here they are made on the memory's device.

Data flow for one batch (``Lv`` audio frames, ``Lt`` text tokens, ``Q`` queries)::

    audio [B, Lv, d] --T2V cross-attention to text--> --max-pool(5)--> x
    x --mr_linear--> mr --shared encoder, max-pool--> mr_shared
    x --hd_linear--> hd --shared encoder, max-pool--> hd_shared
    mr --side conv (see MaskedConv1D)--> mr_side
    mr_memory = mr_side * mr_shared;  hd_memory = hd * hd_shared
    mr_memory + Q reference spans --decoder--> hs [layers, B, Q, d], refs [layers, B, Q, 2]
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from lighthouse_audio.models.transformer import (
    T2VEncoderLayer,
    TransformerDecoder,
    TransformerDecoderLayer,
    TransformerEncoder,
    TransformerEncoderLayer,
)

__all__ = ["ChannelLayerNorm", "MaskedConv1D", "TaskWeaveTransformer", "temporal_max_pool"]

# Lighthouse's shared encoder always has two layers, whatever ``enc_layers`` says.
SHARED_ENCODER_LAYERS = 2
MAX_POOL_KERNEL = 5


def temporal_max_pool(x: Tensor) -> Tensor:
    """Max over a 5-frame window (stride 1, padding 2): ``[B, L, d]`` -> ``[B, L, d]``.

    Padded frames take part, as in Lighthouse, so valid frames next to the padding see it."""
    pooled = F.max_pool1d(x.transpose(1, 2), MAX_POOL_KERNEL, 1, MAX_POOL_KERNEL // 2)
    return pooled.transpose(1, 2)


class MaskedConv1D(nn.Module):
    """A depthwise 1-D convolution whose output is multiplied by a frame mask.

    Lighthouse hands it the "is padding" mask (True on padded frames) where the name and the
    original ActionFormer code expect the "is valid" mask. So valid frames come out exactly zero
    and only padded frames keep their convolution. **This is a bug in Lighthouse, kept for
    parity**: its checkpoints were trained with it, and it is why ``mr_conv.conv.weight`` never
    gets a useful gradient from valid frames.
    """

    def __init__(self, channels: int, kernel_size: int = 5) -> None:
        super().__init__()
        if kernel_size % 2 != 1:
            raise ValueError(f"kernel_size must be odd, got {kernel_size}")
        self.conv = nn.Conv1d(
            channels, channels, kernel_size, padding=kernel_size // 2, groups=channels, bias=False
        )

    def forward(self, x: Tensor, mask: Tensor) -> Tensor:
        """``x``: ``[B, C, L]``; ``mask``: ``[B, 1, L]`` (bool). Returns ``conv(x) * mask``."""
        return self.conv(x) * mask.to(x.dtype)


class ChannelLayerNorm(nn.Module):
    """LayerNorm over the channels of ``[B, C, L]`` (per frame), with ``[1, C, 1]`` affine
    parameters (Lighthouse's ``LayerNorm`` in ``taskweave_transformer.py``)."""

    def __init__(self, num_channels: int, eps: float = 1e-5) -> None:
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(1, num_channels, 1))
        self.bias = nn.Parameter(torch.zeros(1, num_channels, 1))

    def forward(self, x: Tensor) -> Tensor:
        """``[B, C, L]`` -> ``[B, C, L]``."""
        centred = x - x.mean(dim=1, keepdim=True)
        variance = (centred**2).mean(dim=1, keepdim=True)
        return centred / torch.sqrt(variance + self.eps) * self.weight + self.bias


class TaskWeaveTransformer(nn.Module):
    """TaskWeave's encoders (one memory per task: moment retrieval and highlight detection) and
    its moment-retrieval decoder."""

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
        # Construction (and registration) order = Lighthouse's: a seed gives its initial weights.
        self.t2v_encoder = TransformerEncoder(
            T2VEncoderLayer(d_model, nhead, dim_feedforward, dropout), num_encoder_layers
        )
        self.shared_encoder = TransformerEncoder(
            TransformerEncoderLayer(d_model, nhead, dim_feedforward, dropout),
            SHARED_ENCODER_LAYERS,
        )
        self.mr_linear = nn.Linear(d_model, d_model)
        self.hd_linear = nn.Linear(d_model, d_model)
        self.mr_conv = MaskedConv1D(d_model, MAX_POOL_KERNEL)
        self.mr_norm = ChannelLayerNorm(d_model)
        self.mr_proj = nn.Conv1d(d_model, d_model, 1)
        self.mr_decoder = TransformerDecoder(
            TransformerDecoderLayer(d_model, nhead, dim_feedforward, dropout),
            num_decoder_layers,
            d_model,
        )
        # Xavier for every parameter with more than one dimension, after cloning, as Lighthouse
        # (this includes mr_norm's [1, C, 1] weight and bias).
        for p in self.parameters():
            if p.dim() > 1:
                nn.init.xavier_uniform_(p)

    def encode(
        self, vid: Tensor, vid_pos: Tensor, vid_pad_mask: Tensor, txt: Tensor, t2v_blocked: Tensor
    ) -> tuple[Tensor, Tensor]:
        """The two task memories.

        Args:
            vid: ``[B, Lv, d]`` projected audio frames; vid_pos: ``[B, Lv, d]``;
            vid_pad_mask: ``[B, Lv]`` True on padding.
            txt: ``[B, Lt, d]`` projected text.
            t2v_blocked: ``[B, H, Lv, Lt]`` from :func:`~.attention.t2v_attention_mask`
                (QD-DETR's text-to-audio mask, its head-tiling quirk included: the fixtures pin
                it for TaskWeave too). It depends on the batch, so a batch of two halves (the
                negative pass) gets each half's mask.

        Returns:
            mr_memory, hd_memory: ``[B, Lv, d]`` each.
        """
        vid = self.t2v_encoder(vid, vid_pos, txt, t2v_blocked)
        x = temporal_max_pool(vid)  # the text tokens are dropped after T2V
        mr = self.mr_linear(x)
        hd = self.hd_linear(x)
        mr_shared = temporal_max_pool(self.shared_encoder(mr, vid_pos, vid_pad_mask))
        hd_shared = temporal_max_pool(self.shared_encoder(hd, vid_pos, vid_pad_mask))
        side = self.mr_conv(mr.transpose(1, 2), vid_pad_mask.unsqueeze(1))  # see MaskedConv1D
        side = self.mr_proj(self.mr_norm(side)).transpose(1, 2)
        return side * mr_shared, hd * hd_shared

    def decode(
        self,
        memory: Tensor,
        vid_pos: Tensor,
        vid_pad_mask: Tensor,
        refpoints_unsigmoid: Tensor,
    ) -> tuple[Tensor, Tensor]:
        """Decode ``Q`` span queries against the moment-retrieval memory.

        Args:
            memory: ``[B, Lv, d]``; vid_pos: ``[B, Lv, d]``; vid_pad_mask: ``[B, Lv]``.
            refpoints_unsigmoid: ``[Q, 2]`` learned anchors (before the sigmoid).

        Returns:
            hs: ``[layers, B, Q, d]``; references: ``[layers, B, Q, 2]``, the sigmoid-space
            anchor fed into each layer.
        """
        batch = memory.shape[0]
        tgt = memory.new_zeros(batch, refpoints_unsigmoid.shape[0], self.d_model)
        refpoints = refpoints_unsigmoid.expand(batch, -1, -1)
        return self.mr_decoder(tgt, memory, vid_pad_mask, vid_pos, refpoints)
