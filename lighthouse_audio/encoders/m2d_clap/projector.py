"""M2D-CLAP 2025's audio projection into the joint space: a semantic token over all patch tokens.

``sem_token`` (no positional embedding) is prepended to every patch token of every unit, one or
more 1-head transformer blocks run (LayerNorm eps 1e-5), and the semantic token, after a final
LayerNorm, is the 768-d joint-space embedding (not L2-normalised). Without positions the result
does not depend on token order, but it does depend on padding and unit boundaries.
"""

from __future__ import annotations

import torch
from torch import nn

from lighthouse_audio.encoders.m2d_clap.vit import Block

__all__ = ["SEM_MODES", "SemanticProjector"]

# The reference's "sem_mode" (max block index + 1) -> (depth, heads, mlp ratio).
SEM_MODES: dict[int, tuple[int, int, int]] = {
    1: (1, 1, 1), 2: (2, 1, 1), 3: (3, 1, 2), 4: (4, 1, 2)
}  # fmt: skip


class SemanticProjector(nn.Module):
    """Patch tokens ``(B, M, D)`` -> joint-space audio embedding ``(B, D)``.

    Key names are the checkpoint's ``backbone.audio_proj.*`` (prefix stripped).
    """

    def __init__(self, dim: int = 768, depth: int = 1, num_heads: int = 1, mlp_ratio: int = 1):
        super().__init__()
        self.sem_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.sem_blocks = nn.ModuleList(
            Block(dim, num_heads, dim * mlp_ratio, eps=1e-5) for _ in range(depth)
        )
        self.norm = nn.LayerNorm(dim)

    @classmethod
    def for_mode(cls, dim: int, sem_mode: int) -> SemanticProjector:
        """The projector a checkpoint with ``sem_mode`` blocks describes (see ``SEM_MODES``)."""
        if sem_mode not in SEM_MODES:
            raise ValueError(f"semantic-token projector with {sem_mode} blocks is not an M2D one")
        depth, heads, ratio = SEM_MODES[sem_mode]
        return cls(dim, depth, heads, ratio)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        x = torch.cat([self.sem_token.expand(tokens.shape[0], -1, -1), tokens], dim=1)
        for block in self.sem_blocks:
            x = block(x)
        return self.norm(x[:, 0])
