"""Small building blocks of the DETR family: an MLP head, the logit, sine span embeddings, the
earlier decoder layers' predictions."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from lighthouse_audio.models.position_encoding import sine_features

# The decoder's sine embedding of a reference span always has this many features per coordinate,
# as in Lighthouse, so the decoder only fits ``d_model == 2 * SPAN_SINE_FEATS``.
SPAN_SINE_FEATS = 128


class MLP(nn.Module):
    """``num_layers`` Linear layers with ReLU between them (none after the last)."""

    def __init__(self, input_dim: int, hidden_dim: int, output_dim: int, num_layers: int) -> None:
        super().__init__()
        dims_in = [input_dim] + [hidden_dim] * (num_layers - 1)
        dims_out = [hidden_dim] * (num_layers - 1) + [output_dim]
        self.layers = nn.ModuleList(nn.Linear(n, k) for n, k in zip(dims_in, dims_out, strict=True))

    def forward(self, x: Tensor) -> Tensor:
        """``[..., input_dim]`` -> ``[..., output_dim]``."""
        for layer in self.layers[:-1]:
            x = F.relu(layer(x))
        return self.layers[-1](x)


def inverse_sigmoid(x: Tensor, eps: float = 1e-3) -> Tensor:
    """Logit of ``x`` clamped to ``[0, 1]``, with numerator and denominator floored at ``eps``."""
    x = x.clamp(min=0, max=1)
    return torch.log(x.clamp(min=eps) / (1 - x).clamp(min=eps))


def gen_sineembed_for_position(spans: Tensor) -> Tensor:
    """Sine embedding of (center, width) spans in sigmoid space.

    Args:
        spans: ``[..., 2]`` normalised (center, width).

    Returns:
        ``[..., 2 * SPAN_SINE_FEATS]``: the center's 128 features, then the width's, each computed
        on ``2 * pi * value`` with temperature 10000.
    """
    scaled = spans * (2 * math.pi)
    return torch.cat(
        (
            sine_features(scaled[..., 0], SPAN_SINE_FEATS),
            sine_features(scaled[..., 1], SPAN_SINE_FEATS),
        ),
        dim=-1,
    )


def aux_outputs(logits: Tensor, spans: Tensor) -> list[dict[str, Tensor]]:
    """The predictions of every decoder layer but the last (``aux_outputs``, for the auxiliary
    losses): ``[layers, B, Q, 2]`` logits and spans -> ``layers - 1`` dicts with ``pred_logits``
    and ``pred_spans``, ``[B, Q, 2]`` each."""
    return [
        {"pred_logits": layer_logits, "pred_spans": layer_spans}
        for layer_logits, layer_spans in zip(logits[:-1], spans[:-1], strict=True)
    ]
