"""Multi-head attention with torch's parameter names, and the text-to-audio mask as Lighthouse
builds it (its head-tiling quirk included: :func:`t2v_attention_mask`)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from lighthouse_audio.models.dropout import dropout


def attend(
    q: Tensor,
    k: Tensor,
    v: Tensor,
    num_heads: int,
    blocked: Tensor | None = None,
    dropout_p: float = 0.0,
) -> Tensor:
    """Multi-head scaled dot-product attention on already-projected inputs.

    Query/key heads may be wider than value heads (the decoder's cross-attention uses 64-wide
    query/key heads and 32-wide value heads). Scores are scaled by ``1/sqrt(query head width)``.

    Args:
        q: ``[batch, Lq, num_heads * dqk]``.
        k: ``[batch, Lk, num_heads * dqk]``.
        v: ``[batch, Lk, num_heads * dv]``.
        blocked: True where a query may not attend a key; broadcastable to
            ``[batch, num_heads, Lq, Lk]`` (a key padding mask is ``pad[:, None, None, :]``).
        dropout_p: dropout on the attention weights.

    Returns:
        ``[batch, Lq, num_heads * dv]``.
    """
    batch, len_q, _ = q.shape
    len_k = k.shape[1]
    q = q.view(batch, len_q, num_heads, -1).transpose(1, 2)
    k = k.view(batch, len_k, num_heads, -1).transpose(1, 2)
    v = v.view(batch, len_k, num_heads, -1).transpose(1, 2)
    if dropout_p > 0 and q.device.type == "cpu":
        # SDPA's CPU dropout is the slow one; spell attention out to use the fast `dropout`.
        scores = (q * q.shape[-1] ** -0.5) @ k.transpose(-2, -1)
        if blocked is not None:
            scores = scores.masked_fill(blocked, float("-inf"))
        out = dropout(scores.softmax(dim=-1), dropout_p) @ v
    else:
        # SDPA's boolean mask marks what may be attended.
        allowed = None if blocked is None else ~blocked
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=allowed, dropout_p=dropout_p)
    return out.transpose(1, 2).reshape(batch, len_q, -1)


class MultiheadAttention(nn.Module):
    """Batch-first multi-head attention with ``torch.nn.MultiheadAttention``'s parameters.

    Keeps the packed ``in_proj_weight``/``in_proj_bias`` and ``out_proj`` names (and the same
    initialisation order) so Lighthouse checkpoints load unchanged.
    """

    def __init__(self, embed_dim: int, num_heads: int, dropout: float = 0.0) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.dropout = dropout
        self.in_proj_weight = nn.Parameter(torch.empty(3 * embed_dim, embed_dim))
        self.in_proj_bias = nn.Parameter(torch.empty(3 * embed_dim))
        self.out_proj = nn.Linear(embed_dim, embed_dim)
        nn.init.xavier_uniform_(self.in_proj_weight)
        nn.init.zeros_(self.in_proj_bias)
        nn.init.zeros_(self.out_proj.bias)

    def forward(
        self, query: Tensor, key: Tensor, value: Tensor, blocked: Tensor | None = None
    ) -> Tensor:
        """``[B, Lq, d]``, ``[B, Lk, d]``, ``[B, Lk, d]`` -> ``[B, Lq, d]``; ``blocked``: see
        :func:`attend`."""
        w, b = self.in_proj_weight, self.in_proj_bias
        d = w.shape[1]
        # Fuse the projections of inputs that are the same tensor (q = k in self-attention,
        # k = v in text-to-audio attention): fewer, larger matmuls.
        if query is key:
            q, k = F.linear(query, w[: 2 * d], b[: 2 * d]).chunk(2, dim=-1)
            v = F.linear(value, w[2 * d :], b[2 * d :])
        elif key is value:
            q = F.linear(query, w[:d], b[:d])
            k, v = F.linear(key, w[d:], b[d:]).chunk(2, dim=-1)
        else:
            q = F.linear(query, w[:d], b[:d])
            k = F.linear(key, w[d : 2 * d], b[d : 2 * d])
            v = F.linear(value, w[2 * d :], b[2 * d :])
        dropout_p = self.dropout if self.training else 0.0
        out = attend(q, k, v, self.num_heads, blocked, dropout_p)
        return self.out_proj(out)


class ProjectedInputAttention(nn.Module):
    """Multi-head attention whose inputs are projected by the caller; only ``out_proj`` is owned.

    This is the conditional-DETR attention: ``embed_dim`` is the query/key width (twice the model
    width in cross-attention, where content and position are concatenated per head) and ``vdim``
    the value width.
    """

    def __init__(self, embed_dim: int, num_heads: int, vdim: int, dropout: float = 0.0) -> None:
        super().__init__()
        if embed_dim % num_heads or vdim % num_heads:
            raise ValueError(f"num_heads={num_heads} must divide {embed_dim} and {vdim}")
        self.num_heads = num_heads
        self.dropout = dropout
        self.out_proj = nn.Linear(vdim, vdim)
        nn.init.zeros_(self.out_proj.bias)

    def forward(
        self, query: Tensor, key: Tensor, value: Tensor, blocked: Tensor | None = None
    ) -> Tensor:
        """``[B, Lq, embed_dim]``, ``[B, Lk, embed_dim]``, ``[B, Lk, vdim]`` -> ``[B, Lq, vdim]``.

        ``blocked``: see :func:`attend`.
        """
        dropout_p = self.dropout if self.training else 0.0
        out = attend(query, key, value, self.num_heads, blocked, dropout_p)
        return self.out_proj(out)


def t2v_attention_mask(vid_pad_mask: Tensor, txt_pad_mask: Tensor, num_heads: int) -> Tensor:
    """Which (frame, token) pairs the text-to-audio attention blocks, as Lighthouse computes it.

    Lighthouse combines the text padding mask with a per-sample "frame padded and token padded"
    mask, but tiles the latter with ``repeat(num_heads, 1, 1)`` while attention reads row
    ``b * num_heads + h``. Head ``h`` of sample ``b`` therefore gets the frame/token mask of
    sample ``j = (b * num_heads + h) % B``: its frames that are padding *in sample j* cannot see
    tokens that are padding in sample j. Valid frames are affected too, and outputs depend on the
    batch composition; checkpoints were trained with this, so it is reproduced.

    Args:
        vid_pad_mask: ``[B, Lv]`` True on padded frames.
        txt_pad_mask: ``[B, Lt]`` True on padded tokens.
        num_heads: attention heads.

    Returns:
        ``[B, num_heads, Lv, Lt]``, True where attention is blocked.
    """
    batch = vid_pad_mask.shape[0]
    both_padded = vid_pad_mask[:, :, None] & txt_pad_mask[:, None, :]  # [B, Lv, Lt]
    rows = torch.arange(batch, device=vid_pad_mask.device)[:, None] * num_heads
    source = (rows + torch.arange(num_heads, device=vid_pad_mask.device)) % batch  # [B, H]
    return txt_pad_mask[:, None, None, :] | both_padded[source]
