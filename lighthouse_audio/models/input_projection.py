"""How Lighthouse's DETR models read their inputs: the context width and the projection blocks.

Every Lighthouse moment-retrieval model but UVCOM projects the text and the ``[TEF | audio]``
context with the same stack of :class:`LinearLayer` blocks (``input_txt_proj.*`` /
``input_vid_proj.*`` in its checkpoints).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch.nn.functional as F
from torch import Tensor, nn

from .dropout import Dropout

__all__ = ["LinearLayer", "context_dim", "input_projection"]


class LinearLayer(nn.Module):
    """LayerNorm -> Dropout -> Linear, optionally followed by ReLU (an input projection block)."""

    def __init__(self, in_dim: int, out_dim: int, dropout: float, relu: bool) -> None:
        super().__init__()
        self.relu = relu
        self.LayerNorm = nn.LayerNorm(in_dim)  # noqa: N815 (checkpoint key name)
        self.net = nn.Sequential(Dropout(dropout), nn.Linear(in_dim, out_dim))

    def forward(self, x: Tensor) -> Tensor:
        """``[..., in_dim]`` -> ``[..., out_dim]``."""
        x = self.net(self.LayerNorm(x))
        return F.relu(x) if self.relu else x


def input_projection(in_dim: int, hidden_dim: int, n_blocks: int, dropout: float) -> nn.Sequential:
    """``n_blocks`` LinearLayers, ReLU after all but the last."""
    blocks = [
        LinearLayer(in_dim if i == 0 else hidden_dim, hidden_dim, dropout, relu=i < n_blocks - 1)
        for i in range(3)
    ]
    # Lighthouse always builds three blocks and keeps the first n_blocks; building the unused
    # ones too keeps the random initialisation identical for a given seed.
    return nn.Sequential(*blocks[:n_blocks])


def context_dim(opt: Mapping[str, Any]) -> int:
    """Width of the model's "video" input: the TEF/video features, plus audio in audio modes.

    In ``audio_tef`` mode ``v_feat_dim`` is 2 (the TEF) and the audio frames are appended after
    it, e.g. 2 + 768 = 770 for CLAP.
    """
    ctx_mode = opt.get("ctx_mode", "")
    dim = opt.get("v_feat_dim") or 0
    if "audio" in ctx_mode:
        if not opt.get("a_feat_dim"):
            raise ValueError(f"ctx_mode {ctx_mode!r} needs a_feat_dim > 0")
        dim += opt["a_feat_dim"]
    if dim <= 0:
        raise ValueError(f"no context input: v_feat_dim={opt.get('v_feat_dim')}, ctx={ctx_mode!r}")
    return dim
