"""UVCOM's span decoder: QD-DETR's DAB-style decoder with two changes (fixtures README §6.4).

1. The queries start from the slot-attention output plus a learned per-query embedding
   (``span_embed``, always 30 rows in Lighthouse), not from zeros.
2. The returned references are the refined spans *after* each layer (layer 0's input anchors are
   dropped), so the span heads add their offsets to the layer's own output reference.

The layers are QD-DETR's (:class:`~lighthouse_audio.models.transformer.TransformerDecoderLayer`).
"""

from __future__ import annotations

import copy

import torch
from torch import Tensor, nn

from .layers import MLP, SPAN_SINE_FEATS, gen_sineembed_for_position, inverse_sigmoid
from .transformer import TransformerDecoderLayer

__all__ = ["UVCOMDecoder"]


class UVCOMDecoder(nn.Module):
    """DAB-DETR-style decoder over (center, width) anchors, refined layer by layer.

    Args:
        layer: the decoder layer to clone ``num_layers`` times.
        num_layers: decoder layers.
        d_model: model width; must be ``2 * SPAN_SINE_FEATS`` (256), as in Lighthouse.
        num_slots: rows of the learned per-query embedding (Lighthouse: always 30).
    """

    def __init__(
        self, layer: TransformerDecoderLayer, num_layers: int, d_model: int, num_slots: int = 30
    ) -> None:
        super().__init__()
        if d_model != 2 * SPAN_SINE_FEATS:
            raise ValueError(
                f"the decoder needs d_model == {2 * SPAN_SINE_FEATS} (its span sine embedding has "
                f"{2 * SPAN_SINE_FEATS} features, as in Lighthouse), got {d_model}"
            )
        # Registration (and construction) order = Lighthouse's.
        self.layers = nn.ModuleList(copy.deepcopy(layer) for _ in range(num_layers))
        self.num_layers = num_layers
        self.norm = nn.LayerNorm(d_model)
        self.span_embed = nn.Embedding(num_slots, d_model)
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
        """Decode.

        Args:
            tgt: ``[B, Q, d]`` initial query content (the slots); ``Q`` must equal the rows of
                ``span_embed``.
            memory: ``[B, Lv, d]``; memory_pad_mask: ``[B, Lv]`` True on padding;
            pos: ``[B, Lv, d]`` frame positions.
            refpoints_unsigmoid: ``[B, Q, 2]`` initial anchors before the sigmoid.

        Returns:
            hs: ``[layers, B, Q, d]`` every layer's output after the final LayerNorm.
            references: ``[layers, B, Q, 2]`` the sigmoid-space reference *after* each layer
            (not detached; only the copy fed to the next layer is).
        """
        num_queries, num_slots = tgt.shape[1], self.span_embed.num_embeddings
        if num_queries != num_slots:
            raise ValueError(
                f"UVCOM's decoder has {num_slots} learned query embeddings, got {num_queries} "
                "queries: num_queries must be 30, as Lighthouse builds it"
            )
        output = tgt + self.span_embed.weight
        reference = refpoints_unsigmoid.sigmoid()
        references, hs = [], []
        for layer_id, layer in enumerate(self.layers):
            sine = gen_sineembed_for_position(reference)
            query_pos = self.ref_point_head(sine)
            if layer_id > 0:
                sine = sine * self.query_scale(output)
            # Modulate by the predicted width relative to the anchor width.
            width_ratio = self.ref_anchor_head(output).sigmoid()[..., 0] / reference[..., 1]
            sine = sine * width_ratio.unsqueeze(-1)

            output = layer(output, memory, memory_pad_mask, pos, query_pos, sine)

            new_reference = (self.bbox_embed(output) + inverse_sigmoid(reference)).sigmoid()
            references.append(new_reference)
            reference = new_reference.detach()
            hs.append(self.norm(output))
        return torch.stack(hs), torch.stack(references)
