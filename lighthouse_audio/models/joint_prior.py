"""A frozen joint audio-text space inside AM-DETR: each frame's similarity to the query, as input.

QD-DETR's text-to-audio cross-attention normalises its weights over the query's tokens, so a
frame receives a mix of the query whether it matches or not. Trained on hundreds of captions
rather than Clotho-Moment's tens of thousands, the model learns to find sound events but not which
one a query names (docs/RESULTS.md). A joint space trained contrastively on captioned clips
(``lighthouse align --input-norm``) supplies exactly that: the cosine similarity of each frame
with the query, which the model adds to the frame's projected input through a learned
``Linear(1, hidden_dim)``, for the query's own text and for the negative pass's text alike.

Config: ``joint_prior=FILE`` (a joint-space file). Training records the space's head shapes in
``opt.joint_prior_heads`` (:func:`with_joint_prior_heads`, before the model is built; builders
never change the config) and its weights live in the model's state dict, so a checkpoint needs
neither the file nor the path to be loaded later.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from lighthouse_audio.joint.space import JointSpace, JointSpaceError, build_head, load_joint_space

__all__ = ["JointPrior", "build_joint_prior", "with_joint_prior_heads"]

SPEC_KEY = "joint_prior_heads"


class JointPrior(nn.Module):
    """A frozen joint space and the learned map of its similarities into the model's width.

    ``embed_frames`` and ``embed_query`` run once per batch; ``forward`` pairs them, so the
    negative pass reuses both (its queries are the positive ones, shifted).
    """

    def __init__(self, space: JointSpace, hidden_dim: int, source: str = "joint space") -> None:
        super().__init__()
        if not space.input_norm:
            raise JointSpaceError(
                f"{source}: its heads read raw rows, but AM-DETR sees L2-normalised ones: train "
                "it with `lighthouse align --input-norm`"
            )
        self.space = space.requires_grad_(False)
        self.proj = nn.Linear(1, hidden_dim)

    @torch.no_grad()
    def embed_frames(self, audio: Tensor) -> Tensor:
        """``[B, L, Da]`` -> unit ``[B, L, d]``."""
        return self.space.embed_audio(audio)

    @torch.no_grad()
    def embed_query(self, tokens: Tensor, mask: Tensor) -> Tensor:
        """``[B, T, Dt]`` padded tokens, ``[B, T]`` mask (1 = token) -> unit ``[B, d]``."""
        return self.space.embed_text(tokens, mask)

    @staticmethod
    def similarity(frames: Tensor, query: Tensor) -> Tensor:
        """Unit frames ``[B, L, d]`` and queries ``[B, d]`` -> cosine ``[B, L]``."""
        return (frames * query[:, None]).sum(-1)

    def project(self, similarity: Tensor) -> Tensor:
        """Cosine ``[B, L]`` -> ``[B, L, hidden_dim]``, what is added to the projected frames."""
        return self.proj(similarity[..., None])

    def forward(self, frames: Tensor, query: Tensor) -> Tensor:
        """Unit frames ``[B, L, d]`` and queries ``[B, d]`` -> ``[B, L, hidden_dim]``."""
        return self.project(self.similarity(frames, query))


def _load_space(path: Any, opt: Mapping[str, Any], hidden_dim: int) -> JointSpace:
    space = load_joint_space(path, feature=opt.get("a_feat_types"))
    JointPrior(space, hidden_dim, source=str(path))  # refuses raw-row spaces, with the file
    return space


def with_joint_prior_heads(opt: Mapping[str, Any]) -> Any:
    """``opt`` with ``joint_prior_heads`` recorded from its ``joint_prior`` file (a copy; ``opt``
    itself unchanged), so checkpoints saved with it rebuild the prior without the file."""
    path = opt.get("joint_prior")
    if not path or opt.get(SPEC_KEY):
        return opt
    space = _load_space(path, opt, int(opt["hidden_dim"]))
    spec = {
        "feature": space.feature,
        "heads": space.head_specs,
        "text_pooling": space.text_pooling,
        "input_norm": space.input_norm,
    }
    return type(opt)({**opt, SPEC_KEY: spec})


def build_joint_prior(opt: Mapping[str, Any], hidden_dim: int) -> JointPrior | None:
    """The prior ``opt`` asks for, or None.

    The space's weights come from the ``joint_prior`` file whenever it is there, which training
    needs (its config records the head shapes before the model is built, and heads built from
    shapes alone are random). Without the file (a checkpoint used elsewhere), or when the file no
    longer has the recorded shapes, the heads are built from the shapes and their weights come
    with the checkpoint's state dict.
    """
    path = opt.get("joint_prior")
    if not path:
        return None
    spec = opt.get(SPEC_KEY)
    space = None
    if not spec or Path(path).is_file():
        space = _load_space(path, opt, hidden_dim)
        if spec and space.head_specs != spec["heads"]:
            space = None  # another file now: the checkpoint's weights are the ones to use
    if space is None:
        space = JointSpace(
            spec["feature"],
            build_head(spec["heads"]["audio"]),
            build_head(spec["heads"]["text"]),
            spec["text_pooling"],
            head_specs=spec["heads"],
            input_norm=spec["input_norm"],
        )
    return JointPrior(space.eval(), hidden_dim, source=str(path))
