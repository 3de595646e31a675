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

**Cross-fitted folds** (``joint_prior_folds=FILE``, training only). A space aligned on the very
sounds (and, with ``align --recordings``, the very moments) the model trains on is far surer of
itself there than on unheard sounds (top-1 frame inside the window: 100 % of training queries,
about 40 % of test queries in the demo), so the model learns to trust its prior more than it
should. With folds, each training query's similarity comes from a space aligned without that
query's sound (stacking's cross-fitting); validation, test and prediction use the full space.
The folds file (:func:`write_prior_folds`) lists the fold spaces and each training qid's fold;
the fold spaces stay out of the state dict.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from lighthouse_audio.joint.space import JointSpace, JointSpaceError, build_head, load_joint_space

__all__ = [
    "JointPrior",
    "build_joint_prior",
    "read_prior_folds",
    "with_joint_prior_heads",
    "write_prior_folds",
]

SPEC_KEY = "joint_prior_heads"
FOLDS_KEY = "joint_prior_folds"
FOLDS_FORMAT = "lighthouse-audio/joint-prior-folds"


class JointPrior(nn.Module):
    """A frozen joint space and the learned map of its similarities into the model's width.

    ``embed_frames`` and ``embed_query`` run once per batch; ``forward`` pairs them, so the
    negative pass reuses both (its queries are the positive ones, shifted).
    """

    def __init__(
        self,
        space: JointSpace,
        hidden_dim: int,
        source: str = "joint space",
        folds: Sequence[JointSpace] = (),
        fold_of: Mapping[str, int] | None = None,
    ) -> None:
        super().__init__()
        for candidate in (space, *folds):
            if not candidate.input_norm:
                raise JointSpaceError(
                    f"{source}: its heads read raw rows, but AM-DETR sees L2-normalised ones: "
                    "train it with `lighthouse align --input-norm`"
                )
        self.space = space.requires_grad_(False)
        self.proj = nn.Linear(1, hidden_dim)
        # a plain list, not a ModuleList: training-only spaces stay out of the state dict
        self.folds = [fold.requires_grad_(False).eval() for fold in folds]
        self.fold_of = dict(fold_of or {})

    @property
    def has_folds(self) -> bool:
        return bool(self.folds)

    @torch.no_grad()
    def routed_similarities(
        self, audio: Tensor, tokens: Tensor, mask: Tensor, qids: Sequence[Any]
    ) -> tuple[Tensor, Tensor]:
        """Cosines ``[B, L]`` of each sample's frames with its own query and with the negative
        pass's (sample ``i + 1``'s), each query scored in the space of its fold (the full space
        for qids without one)."""
        spaces = [self.space, *self.folds]
        for space in self.folds:  # outside the module tree, so .to(device) never moved them
            space.to(audio.device)
        frames = torch.stack([s.embed_audio(audio) for s in spaces])  # [S, B, L, d]
        queries = torch.stack([s.embed_text(tokens, mask) for s in spaces])  # [S, B, d]
        which = torch.tensor(
            [self.fold_of.get(str(q), -1) + 1 for q in qids], device=audio.device
        )  # fmt: skip
        rows = torch.arange(len(which), device=audio.device)
        own = queries[which, rows]
        positive = self.similarity(frames[which, rows], own)
        shifted = which.roll(-1)  # the negative pass pairs frames i with query i + 1
        negative = self.similarity(frames[shifted, rows], own.roll(-1, dims=0))
        return positive, negative

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


def write_prior_folds(
    path: str | os.PathLike, spaces: Sequence[str | os.PathLike], fold_of: Mapping[str, int]
) -> Path:
    """Write a folds file: ``spaces[k]`` scores the training qids ``q`` with ``fold_of[q] == k``
    (spaces are stored relative to the file's folder when they lie under it)."""
    from lighthouse_audio.file_io import write_text

    path = Path(path)
    if any(not 0 <= k < len(spaces) for k in fold_of.values()):
        raise ValueError(f"{path}: fold indices must lie in [0, {len(spaces)})")

    def stored(space: str | os.PathLike) -> str:
        space, folder = Path(space).resolve(), path.resolve().parent
        return space.relative_to(folder).as_posix() if space.is_relative_to(folder) else str(space)

    payload = {"format": FOLDS_FORMAT, "spaces": [stored(s) for s in spaces],
               "qids": {str(q): int(k) for q, k in fold_of.items()}}  # fmt: skip
    write_text(path, json.dumps(payload, indent=1) + "\n")
    return path


def read_prior_folds(
    path: str | os.PathLike, feature: str | None = None
) -> tuple[list[JointSpace], dict[str, int]]:
    """The fold spaces and ``{qid: fold}`` of a folds file; one-line errors naming the file."""
    path = Path(path)
    try:
        payload = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise JointSpaceError(f"{path}: not a readable joint-prior folds file ({e})") from None
    if not isinstance(payload, dict) or payload.get("format") != FOLDS_FORMAT:
        raise JointSpaceError(f"{path}: not a joint-prior folds file")
    spaces, qids = payload.get("spaces"), payload.get("qids")
    if not isinstance(spaces, list) or not spaces or not isinstance(qids, dict):
        raise JointSpaceError(f"{path}: needs a non-empty 'spaces' list and a 'qids' map")
    bad = [q for q, k in qids.items() if not isinstance(k, int) or not 0 <= k < len(spaces)]
    if bad:
        raise JointSpaceError(f"{path}: qid {bad[0]!r} names no listed space")
    folder = path.resolve().parent
    files = []
    for name in spaces:
        file = Path(name) if Path(name).is_absolute() else (folder / name).resolve()
        if not Path(name).is_absolute() and not file.is_relative_to(folder):
            raise JointSpaceError(f"{path}: space {name!r} would leave the file's folder")
        files.append(file)
    loaded = [load_joint_space(file, feature) for file in files]
    return loaded, {str(q): k for q, k in qids.items()}


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
        if opt.get(FOLDS_KEY):
            raise ValueError("joint_prior_folds needs joint_prior (the full space) as well")
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
    folds, fold_of = [], {}
    if opt.get(FOLDS_KEY) and Path(opt[FOLDS_KEY]).is_file():  # training only: gone later is fine
        folds, fold_of = read_prior_folds(opt[FOLDS_KEY], opt.get("a_feat_types"))
    return JointPrior(space.eval(), hidden_dim, source=str(path), folds=folds, fold_of=fold_of)
