"""Positional encodings for QD-DETR's audio frames and text tokens.

Both modules mirror Lighthouse's so that checkpoints load and outputs match:
:class:`PositionEmbeddingSine` encodes audio frames, and :class:`TrainablePositionalEncoding`
exists only because Lighthouse builds it (``txt_position_embed.*`` keys), although QD-DETR
gives text tokens all-zero positions and never calls it.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn


def sine_features(positions: Tensor, num_feats: int, temperature: float = 10000.0) -> Tensor:
    """Interleaved sin/cos features of scalar positions.

    Feature ``k`` uses the frequency ``temperature ** (2 * (k // 2) / num_feats)``; even ``k``
    take the sine and odd ``k`` the cosine, exactly as DETR interleaves them.

    Args:
        positions: ``[...]`` float positions (already scaled, e.g. to ``[0, 2*pi]``).
        num_feats: number of output features (even).
        temperature: base of the geometric frequency ladder.

    Returns:
        ``[..., num_feats]`` float32 features.
    """
    dim_t = torch.arange(num_feats, dtype=torch.float32, device=positions.device)
    dim_t = temperature ** (2 * torch.div(dim_t, 2, rounding_mode="floor") / num_feats)
    angles = positions[..., None] / dim_t
    # Stack (sin of even, cos of odd) then flatten: sin0, cos1, sin2, cos3, ...
    return torch.stack((angles[..., 0::2].sin(), angles[..., 1::2].cos()), dim=-1).flatten(-2)


class PositionEmbeddingSine(nn.Module):
    """1-D sine position embedding over the valid (unpadded) frames of each sequence.

    With ``normalize=True`` position ``i`` becomes ``count_valid(0..i) / (count_valid(all) + 1e-6)
    * scale``, so every clip spans ``(0, scale]`` whatever its length; padded frames (after the
    last valid one) repeat the last valid position.
    """

    def __init__(
        self,
        num_pos_feats: int = 256,
        temperature: float = 10000.0,
        normalize: bool = True,
        scale: float | None = None,
    ) -> None:
        super().__init__()
        if scale is not None and not normalize:
            raise ValueError("a position scale needs normalize=True")
        self.num_pos_feats = num_pos_feats
        self.temperature = temperature
        self.normalize = normalize
        self.scale = 2 * math.pi if scale is None else scale

    def forward(self, x: Tensor, mask: Tensor) -> Tensor:
        """Embed positions.

        Args:
            x: ``[batch, length, dim]`` features; only its device is used.
            mask: ``[batch, length]``, 1 (or True) on valid frames, 0 on padding.

        Returns:
            ``[batch, length, num_pos_feats]`` float32 position embedding.
        """
        positions = mask.cumsum(1, dtype=torch.float32)
        if self.normalize:
            positions = positions / (positions[:, -1:] + 1e-6) * self.scale
        return sine_features(positions.to(x.device), self.num_pos_feats, self.temperature)


class TrainablePositionalEncoding(nn.Module):
    """Learned absolute positions added to the features, then LayerNorm and dropout.

    QD-DETR builds this for text (``txt_position_embed``) but does not use it by default; it is
    kept so Lighthouse checkpoints load with ``strict=True``.
    """

    def __init__(self, max_position_embeddings: int, hidden_size: int, dropout: float = 0.1):
        super().__init__()
        self.position_embeddings = nn.Embedding(max_position_embeddings, hidden_size)
        self.LayerNorm = nn.LayerNorm(hidden_size)  # noqa: N815 (checkpoint key name)
        self.dropout = nn.Dropout(dropout)

    def forward(self, input_feat: Tensor) -> Tensor:
        """``[batch, length, hidden]`` -> ``[batch, length, hidden]``."""
        position_ids = torch.arange(input_feat.shape[1], device=input_feat.device)
        embeddings = self.LayerNorm(input_feat + self.position_embeddings(position_ids))
        return self.dropout(embeddings)
