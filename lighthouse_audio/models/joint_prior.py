"""A frozen joint audio-text space inside AM-DETR: each frame's similarity to the query, as input.

QD-DETR's text-to-audio cross-attention normalises its weights over the query's tokens, so a
frame receives a mix of the query whether it matches or not. Trained on hundreds of captions
rather than Clotho-Moment's tens of thousands, the model learns to find sound events but not which
one a query names (docs/RESULTS.md). A joint space trained contrastively on captioned clips
(``lighthouse align --input-norm``) supplies exactly that: the cosine similarity of each frame
with the query, which the model adds to the frame's projected input through a learned
``Linear(1, hidden_dim)``, for the query's own text and for the negative pass's text alike.

Config: ``joint_prior=FILE`` (a joint-space file). The space's head shapes are copied into
``opt.joint_prior_heads`` when the model is built and its weights live in the model's state dict,
so a checkpoint needs neither the file nor the path to be loaded later.
"""

from __future__ import annotations

from collections.abc import MutableMapping
from typing import Any

import torch
from torch import Tensor, nn

from lighthouse_audio.joint.space import JointSpace, JointSpaceError, build_head, load_joint_space

__all__ = ["JointPrior", "build_joint_prior"]

SPEC_KEY = "joint_prior_heads"


class JointPrior(nn.Module):
    """``(audio [B, L, Da], tokens [B, T, Dt], mask [B, T]) -> [B, L, hidden_dim]``."""

    def __init__(self, space: JointSpace, hidden_dim: int) -> None:
        super().__init__()
        if not space.input_norm:
            raise JointSpaceError(
                f"joint space for '{space.feature}' reads raw rows, but AM-DETR sees L2-normalised "
                "ones: train it with `lighthouse align --input-norm`"
            )
        self.space = space.requires_grad_(False)
        self.proj = nn.Linear(1, hidden_dim)

    def similarity(self, audio: Tensor, tokens: Tensor, mask: Tensor) -> Tensor:
        """Cosine similarity of every frame with its sample's query: ``[B, L]``."""
        with torch.no_grad():
            frames = self.space.embed_audio(audio)  # [B, L, d]
            query = self.space.embed_text(tokens, mask)  # [B, d]
            return (frames * query[:, None]).sum(-1)

    def forward(self, audio: Tensor, tokens: Tensor, mask: Tensor) -> Tensor:
        return self.proj(self.similarity(audio, tokens, mask)[..., None])


def build_joint_prior(opt: MutableMapping[str, Any], hidden_dim: int) -> JointPrior | None:
    """The prior ``opt`` asks for, or None. A first build reads ``opt.joint_prior`` (a file) and
    records its head shapes in ``opt.joint_prior_heads``; later builds (from a checkpoint's opt)
    make empty heads from those shapes for the checkpoint's weights to fill."""
    path = opt.get("joint_prior")
    if not path:
        return None
    spec = opt.get(SPEC_KEY)
    if spec:
        space = JointSpace(
            spec["feature"],
            build_head(spec["heads"]["audio"]),
            build_head(spec["heads"]["text"]),
            spec["text_pooling"],
            head_specs=spec["heads"],
            input_norm=spec["input_norm"],
        )
    else:
        space = load_joint_space(path, feature=opt.get("a_feat_types"))
        opt[SPEC_KEY] = {
            "feature": space.feature,
            "heads": space.head_specs,
            "text_pooling": space.text_pooling,
            "input_norm": space.input_norm,
        }
    return JointPrior(space.eval(), hidden_dim)
