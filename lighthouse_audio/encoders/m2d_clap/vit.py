"""M2D's audio ViT: pre-norm transformer blocks over 16x16 log-mel patches, one unit at a time.

A normalised log-mel ``(batch, 1, F, T)`` is zero-padded on the right (the whole sequence) to a
multiple of the patch width past the last full unit, cut into units of ``unit_frames`` (1001)
frames, and each unit is encoded on its own: the stride-16 conv keeps ``unit_frames // 16`` time
columns (62, so a full unit's last 9 frames are dropped). Tokens are frequency-major
(``index = f * t + j``); the positional table ``(1, 1 + 5 * 62, D)`` is cut per frequency row to
the unit's ``t`` columns. The state dict's key names are those of the checkpoint's
``backbone.*`` (prefix stripped), without ``audio_proj.*`` (:mod:`.projector`).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["Attention", "Block", "M2DViT", "Mlp", "PatchEmbed", "split_units"]


class Attention(nn.Module):
    """Multi-head self-attention with a fused ``qkv`` (rows [q; k; v], heads contiguous within
    each) and scale ``head_dim ** -0.5``: ``(B, N, D) -> (B, N, D)``."""

    def __init__(self, dim: int, num_heads: int) -> None:
        super().__init__()
        if dim % num_heads:
            raise ValueError(f"width {dim} is not a multiple of {num_heads} heads")
        self.num_heads = num_heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch, length, dim = x.shape
        qkv = self.qkv(x).reshape(batch, length, 3, self.num_heads, dim // self.num_heads)
        q, k, v = qkv.permute(2, 0, 3, 1, 4).unbind(0)  # each (B, heads, N, head_dim)
        out = F.scaled_dot_product_attention(q, k, v)
        return self.proj(out.transpose(1, 2).reshape(batch, length, dim))


class Mlp(nn.Module):
    """``fc2(GELU(fc1 x))`` with the exact (erf) GELU."""

    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(F.gelu(self.fc1(x)))


class Block(nn.Module):
    """Pre-norm block: ``x + attn(LN1 x)``, then ``x + mlp(LN2 x)``. ``eps`` is 1e-6 in the ViT,
    torch's default 1e-5 in the semantic-token projector."""

    def __init__(self, dim: int, num_heads: int, mlp_hidden: int, eps: float) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=eps)
        self.attn = Attention(dim, num_heads)
        self.norm2 = nn.LayerNorm(dim, eps=eps)
        self.mlp = Mlp(dim, mlp_hidden)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class PatchEmbed(nn.Module):
    """``Conv2d(1, D, patch, stride=patch)``: ``(B, 1, F, T) -> (B, f * t, D)``, frequency-major,
    with ``f = F // patch[0]``, ``t = T // patch[1]`` (trailing frames that fill no patch are
    ignored)."""

    def __init__(self, dim: int, patch_size: tuple[int, int]) -> None:
        super().__init__()
        self.proj = nn.Conv2d(1, dim, kernel_size=patch_size, stride=patch_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(x).flatten(2).transpose(1, 2)


def split_units(lms: torch.Tensor, unit_frames: int, patch_width: int) -> list[torch.Tensor]:
    """Normalised log-mel ``(B, 1, F, T)`` -> the units the ViT encodes, ``(B, 1, F, <=unit)``.

    ``ceil(T / unit)`` units; the sequence is first zero-padded on the right by
    ``(w - T % unit % w) % w`` frames (``w`` the patch width) so the last unit fills whole
    patches. Zero is the normalised mean, not silence, as in the reference.
    """
    frames = lms.shape[-1]
    if frames < 1:
        raise ValueError("an empty log-mel has no units to encode")
    pad = (patch_width - frames % unit_frames % patch_width) % patch_width
    padded = F.pad(lms, (0, pad))
    count = math.ceil(frames / unit_frames)
    return [padded[..., i * unit_frames : (i + 1) * unit_frames] for i in range(count)]


class M2DViT(nn.Module):
    """The ViT encoder of M2D: ``encode`` maps a log-mel to per-unit patch tokens.

    Args:
        dim: token width (768 for ViT-Base).
        depth: number of blocks (12).
        num_heads: attention heads (12).
        mlp_hidden: MLP width (3072).
        num_mels / unit_frames / patch_size: the model's input unit and patch (80, 1001, 16x16).
        norm_stats: (mean, std) of the training log-mels, overwritten by the checkpoint's.
    """

    def __init__(
        self,
        dim: int = 768,
        depth: int = 12,
        num_heads: int = 12,
        mlp_hidden: int = 3072,
        num_mels: int = 80,
        unit_frames: int = 1001,
        patch_size: tuple[int, int] = (16, 16),
        norm_stats: tuple[float, float] = (-7.1, 4.2),
    ) -> None:
        super().__init__()
        self.num_mels = num_mels
        self.unit_frames = unit_frames
        self.patch_size = tuple(patch_size)
        self.grid = (num_mels // patch_size[0], unit_frames // patch_size[1])
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.pos_embed = nn.Parameter(torch.zeros(1, 1 + self.grid[0] * self.grid[1], dim))
        self.register_buffer("norm_stats", torch.tensor(norm_stats, dtype=torch.float32))
        self.patch_embed = PatchEmbed(dim, self.patch_size)
        self.blocks = nn.ModuleList(
            Block(dim, num_heads, mlp_hidden, eps=1e-6) for _ in range(depth)
        )
        self.norm = nn.LayerNorm(dim, eps=1e-6)

    def normalize(self, logmel: torch.Tensor) -> torch.Tensor:
        """``(logmel - mean) / std`` with the checkpoint's ``norm_stats``."""
        return (logmel - self.norm_stats[0]) / self.norm_stats[1]

    def units(self, lms: torch.Tensor) -> list[torch.Tensor]:
        """Normalised ``(B, 1, num_mels, T)`` -> units ``(B, 1, num_mels, <=unit_frames)``."""
        if lms.dim() != 4 or lms.shape[1] != 1 or lms.shape[2] != self.num_mels:
            raise ValueError(
                f"expected a log-mel (batch, 1, {self.num_mels}, frames), got {tuple(lms.shape)}"
            )
        return split_units(lms, self.unit_frames, self.patch_size[1])

    def positions(self, columns: int) -> torch.Tensor:
        """Positional embeddings of a unit with ``columns`` time columns: ``(1, f * columns, D)``,
        the first ``columns`` of every frequency row (not the first ``f * columns`` rows)."""
        rows = self.pos_embed[:, 1:].reshape(1, self.grid[0], self.grid[1], -1)
        return rows[:, :, :columns].reshape(1, self.grid[0] * columns, -1)

    def forward_unit(self, unit: torch.Tensor) -> torch.Tensor:
        """One unit ``(B, 1, F, frames)`` -> ``(B, 1 + f * t, D)`` after the final LayerNorm,
        CLS first."""
        tokens = self.patch_embed(unit)
        tokens = tokens + self.positions(unit.shape[-1] // self.patch_size[1])
        cls = (self.cls_token + self.pos_embed[:, :1]).expand(tokens.shape[0], -1, -1)
        x = torch.cat([cls, tokens], dim=1)
        for block in self.blocks:
            x = block(x)
        return self.norm(x)

    def encode(self, lms: torch.Tensor) -> list[torch.Tensor]:
        """Normalised log-mel ``(B, 1, F, T)`` -> per-unit patch tokens without CLS,
        ``[(B, f * t_i, D)]``, frequency-major within each unit."""
        return [self.forward_unit(unit)[:, 1:] for unit in self.units(lms)]
