"""TR-DETR's query fusion (VSLNet's context-query attention), and its GRU span summariser.

Before the transformer, TR-DETR replaces every projected audio frame with a mix of the frame and
the text ("context" = frames, "query" = text tokens):

    S = c w_C + (q w_Q)^T + (c * w_mlu) q^T                        [B, Lv, Lt] trilinear scores
    A = softmax over tokens (padded tokens -1e30), Bt = softmax over frames (padded frames -1e30)
    x = conv1x1([c, A q, c * A q, c * (A Bt^T) c])                 4d -> d
    x = relu(conv1x1([x, pool(q)]))                                2d -> d, pool: masked softmax

Parameter names (``fuser.cq_attention.w4C`` ...) and the construction order follow Lighthouse's
``VSLFuser`` so its checkpoints load with ``strict=True`` and a seed gives the same weights.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from lighthouse_audio.models.dropout import Dropout

__all__ = ["GRUSummary", "PointwiseConv", "QueryFusion"]

# Lighthouse's `mask_logits`: added to the scores of padded positions before a softmax.
MASKED_LOGIT = -1e30


def mask_logits(scores: Tensor, mask: Tensor) -> Tensor:
    """``scores + (1 - mask) * -1e30`` (mask: 1 valid, 0 pad, broadcastable)."""
    return scores + (1.0 - mask.to(torch.float32)) * MASKED_LOGIT


class PointwiseConv(nn.Module):
    """A kernel-1 ``Conv1d`` over ``[B, L, in_dim]`` rows (Lighthouse's ``Conv1D``), applied as
    the equal linear map; the ``conv1d`` submodule keeps its checkpoint keys."""

    def __init__(self, in_dim: int, out_dim: int) -> None:
        super().__init__()
        self.conv1d = nn.Conv1d(in_dim, out_dim, kernel_size=1)

    def forward(self, x: Tensor) -> Tensor:
        """``[B, L, in_dim]`` -> ``[B, L, out_dim]``."""
        return F.linear(x, self.conv1d.weight.squeeze(-1), self.conv1d.bias)


class ContextQueryAttention(nn.Module):
    """Trilinear frame-token attention, both directions; ``drop_rate`` only on the score inputs."""

    def __init__(self, dim: int, drop_rate: float = 0.1) -> None:
        super().__init__()
        w4c, w4q, w4mlu = torch.empty(dim, 1), torch.empty(dim, 1), torch.empty(1, 1, dim)
        for weight in (w4c, w4q, w4mlu):  # Lighthouse's order of random draws
            nn.init.xavier_uniform_(weight)
        self.w4C = nn.Parameter(w4c)  # noqa: N815 (checkpoint key names)
        self.w4Q = nn.Parameter(w4q)  # noqa: N815
        self.w4mlu = nn.Parameter(w4mlu)
        self.dropout = Dropout(drop_rate)
        self.cqa_linear = PointwiseConv(4 * dim, dim)

    def forward(self, context: Tensor, query: Tensor, c_mask: Tensor, q_mask: Tensor) -> Tensor:
        """``context [B, Lv, d]``, ``query [B, Lt, d]``, masks 1 valid -> ``[B, Lv, d]``."""
        score = self.trilinear(context, query)  # [B, Lv, Lt]
        c2q_weights = F.softmax(mask_logits(score, q_mask.unsqueeze(1)), dim=2)
        q2c_weights = F.softmax(mask_logits(score, c_mask.unsqueeze(2)), dim=1).transpose(1, 2)
        c2q = torch.matmul(c2q_weights, query)
        # Lighthouse's association order: (A Bt^T) first, then times the context.
        q2c = torch.matmul(torch.matmul(c2q_weights, q2c_weights), context)
        mixed = torch.cat([context, c2q, context * c2q, context * q2c], dim=2)
        return self.cqa_linear(mixed)

    def trilinear(self, context: Tensor, query: Tensor) -> Tensor:
        len_c, len_q = context.shape[1], query.shape[1]
        context = self.dropout(context)
        query = self.dropout(query)
        sub0 = torch.matmul(context, self.w4C).expand(-1, -1, len_q)
        sub1 = torch.matmul(query, self.w4Q).transpose(1, 2).expand(-1, len_c, -1)
        sub2 = torch.matmul(context * self.w4mlu, query.transpose(1, 2))
        return sub0 + sub1 + sub2


class WeightedPool(nn.Module):
    """Masked-softmax pooling of the tokens with a learned score vector (no bias)."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        weight = torch.empty(dim, 1)
        nn.init.xavier_uniform_(weight)
        self.weight = nn.Parameter(weight)

    def forward(self, x: Tensor, mask: Tensor) -> Tensor:
        """``x [B, L, d]``, ``mask [B, L]`` -> ``[B, d]``."""
        alpha = mask_logits(torch.tensordot(x, self.weight, dims=1), mask.unsqueeze(2))
        alphas = F.softmax(alpha, dim=1)  # [B, L, 1]
        return torch.matmul(x.transpose(1, 2), alphas).squeeze(2)


class ContextQueryConcat(nn.Module):
    """Append the pooled text to every frame, then a pointwise conv back to ``dim``."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.weighted_pool = WeightedPool(dim)
        self.conv1d = PointwiseConv(2 * dim, dim)

    def forward(self, context: Tensor, query: Tensor, q_mask: Tensor) -> Tensor:
        pooled = self.weighted_pool(query, q_mask)
        pooled = pooled.unsqueeze(1).expand(-1, context.shape[1], -1)
        return self.conv1d(torch.cat([context, pooled], dim=2))


class QueryFusion(nn.Module):
    """Lighthouse's ``VSLFuser``: text-conditioned frames, ``[B, Lv, d]`` -> ``[B, Lv, d]``.

    Its dropout rate is fixed at 0.1 (Lighthouse never passes the config's ``dropout``).
    """

    def __init__(self, dim: int, drop_rate: float = 0.1) -> None:
        super().__init__()
        self.cq_attention = ContextQueryAttention(dim, drop_rate)
        self.cq_concat = ContextQueryConcat(dim)

    def forward(self, vid: Tensor, txt: Tensor, vid_mask: Tensor, txt_mask: Tensor) -> Tensor:
        """``vid [B, Lv, d]``, ``txt [B, Lt, d]``, masks ``[B, L]`` (1 valid)."""
        fused = self.cq_attention(vid, txt, vid_mask, txt_mask)
        return F.relu(self.cq_concat(fused, txt, txt_mask))


class GRUSummary(nn.Module):
    """One-layer GRU over ``[B, L, d]`` (no packing: trailing zeros are read too); returns its
    last hidden state ``[B, d]`` (Lighthouse's ``GRUFeatureExtractor``)."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.gru = nn.GRU(dim, dim, num_layers=1, batch_first=True)

    def forward(self, x: Tensor) -> Tensor:
        _, hidden = self.gru(x)
        return hidden[-1]
