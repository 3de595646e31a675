"""A shared audio-text space over *stored* features, for zero-shot use (baseline, SED).

AM-DETR reads per-window audio embeddings and per-token text states. Zero-shot methods need one
vector per window and one per query in a space where cosine similarity means relevance. A
:class:`JointSpace` maps the stored, un-normalised Lighthouse-layout features into such a space:

- encoders trained jointly (MS-CLAP): the model's own projection heads, query = the EOT token;
- encoders trained apart (``aisfx-minilm``): heads trained by ``lighthouse align``, saved in a
  versioned file (:func:`save_joint_space` / :func:`load_joint_space`).

Features must be the raw ``.npz`` rows, not the L2-normalised rows the AM-DETR loader gives:
projection heads are not scale-invariant.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Literal

import torch
from torch import nn

__all__ = [
    "HEADS",
    "JointSpace",
    "JointSpaceError",
    "build_head",
    "load_joint_space",
    "save_joint_space",
]

FORMAT = "lighthouse-audio/joint-space"
VERSION = 1
TextPooling = Literal["last", "mean", "first"]
TEXT_POOLINGS: tuple[str, ...] = ("last", "mean", "first")


class JointSpaceError(ValueError):
    """A joint-space file that is missing, unreadable or for another feature."""


class LinearHead(nn.Linear):
    def __init__(self, dim_in: int, dim_out: int) -> None:
        super().__init__(dim_in, dim_out)


class MLPHead(nn.Sequential):
    """``Linear -> GELU -> Linear``: small enough to train on a few thousand captioned clips."""

    def __init__(self, dim_in: int, dim_hidden: int, dim_out: int) -> None:
        super().__init__(nn.Linear(dim_in, dim_hidden), nn.GELU(), nn.Linear(dim_hidden, dim_out))


# Head kinds a joint-space file may name; {"kind": name, **kwargs} -> HEADS[name](**kwargs).
HEADS: dict[str, Callable[..., nn.Module]] = {"linear": LinearHead, "mlp": MLPHead}


def build_head(spec: Mapping[str, Any]) -> nn.Module:
    options = dict(spec)
    kind = options.pop("kind", None)
    if kind not in HEADS:
        raise JointSpaceError(f"unknown head kind {kind!r} (known: {', '.join(sorted(HEADS))})")
    return HEADS[kind](**options)


class JointSpace(nn.Module):
    """``embed_audio`` (L, Da) -> (L, d) and ``embed_text`` (T, Dt) -> (d,), both unit-norm.

    ``text_pooling`` says how a query's token states become one vector before the text head:
    ``"last"`` (GPT-2 style: the EOT token), ``"mean"`` (sentence-transformers style) or
    ``"first"`` (BERT's [CLS], M2D-CLAP's text embedding).
    ``head_specs`` (``{"audio": {...}, "text": {...}}``) are kept so the space can be saved; spaces
    built from an encoder's own weights (MS-CLAP) leave them empty and are rebuilt, not saved.

    ``input_norm``: L2-normalise every audio row and text token before the heads. Such a space
    gives the same result on raw stored rows and on the L2-normalised rows AM-DETR's loader
    feeds the model, so a model can carry it (``joint_prior``); heads of a space without it
    expect raw rows.
    """

    def __init__(
        self,
        feature: str,
        audio_head: nn.Module,
        text_head: nn.Module,
        text_pooling: TextPooling,
        head_specs: Mapping[str, Mapping[str, Any]] | None = None,
        meta: Mapping[str, Any] | None = None,
        input_norm: bool = False,
    ) -> None:
        super().__init__()
        if text_pooling not in TEXT_POOLINGS:
            raise ValueError(f"text_pooling must be one of {TEXT_POOLINGS}, got {text_pooling!r}")
        self.feature = feature
        self.audio_head = audio_head
        self.text_head = text_head
        self.text_pooling = text_pooling
        self.head_specs = {k: dict(v) for k, v in (head_specs or {}).items()}
        self.meta = dict(meta or {})
        self.input_norm = input_norm

    def pool_text(self, tokens: torch.Tensor) -> torch.Tensor:
        """(T, Dt) or (B, T, Dt) with no padding -> (Dt,) or (B, Dt)."""
        if self.text_pooling == "first":
            return tokens[..., 0, :]
        return tokens[..., -1, :] if self.text_pooling == "last" else tokens.mean(dim=-2)

    def audio_rows(self, frames: torch.Tensor) -> torch.Tensor:
        """What the audio head reads: (..., Da) stored rows, normalised if ``input_norm``."""
        return nn.functional.normalize(frames, dim=-1) if self.input_norm else frames

    def text_rows(self, tokens: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """What the text head reads: (T, Dt) -> (Dt,), or padded (B, T, Dt) with ``mask``
        (B, T), 1 = token, -> (B, Dt)."""
        if self.input_norm:
            tokens = nn.functional.normalize(tokens, dim=-1)
        if mask is None:
            return self.pool_text(tokens)
        mask = mask.to(tokens.dtype)
        if self.text_pooling == "mean":
            return (tokens * mask[..., None]).sum(-2) / mask.sum(-1, keepdim=True).clamp(min=1)
        if self.text_pooling == "first":
            return tokens[:, 0]
        last = (mask.sum(-1).long() - 1).clamp(min=0)  # padding is at the end
        return tokens[torch.arange(len(tokens), device=tokens.device), last]

    def embed_audio(self, frames: torch.Tensor) -> torch.Tensor:
        return nn.functional.normalize(self.audio_head(self.audio_rows(frames)), dim=-1)

    def embed_text(self, tokens: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        return nn.functional.normalize(self.text_head(self.text_rows(tokens, mask)), dim=-1)

    @torch.inference_mode()
    def similarity(self, frames: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
        """Cosine similarity of each audio frame with one query: (L, Da), (T, Dt) -> (L,)."""
        return self.embed_audio(frames) @ self.embed_text(tokens)


def save_joint_space(path: str | os.PathLike, space: JointSpace) -> None:
    """Write atomically (temporary file + rename), as checkpoints are."""
    from lighthouse_audio.file_io import save_torch

    if set(space.head_specs) != {"audio", "text"}:
        raise JointSpaceError(f"{path}: only spaces with head specs can be saved")
    payload = {
        "format": FORMAT,
        "version": VERSION,
        "feature": space.feature,
        "text_pooling": space.text_pooling,
        "input_norm": space.input_norm,
        "heads": space.head_specs,
        "state_dict": {k: v.detach().cpu() for k, v in space.state_dict().items()},
        "meta": space.meta,
    }
    save_torch(payload, path)


def load_joint_space(path: str | os.PathLike, feature: str | None = None) -> JointSpace:
    """Read a file written by :func:`save_joint_space`; ``feature`` refuses other features'."""
    path = Path(path)
    if not path.is_file():
        raise JointSpaceError(f"{path}: no such joint-space file (make one with lighthouse align)")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - any unpickling failure means the same to the user
        raise JointSpaceError(f"{path}: not a readable joint-space file ({e})") from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise JointSpaceError(f"{path}: not a lighthouse-audio joint-space file")
    if payload.get("version") != VERSION:
        raise JointSpaceError(
            f"{path}: joint-space format version {payload.get('version')}, expected {VERSION}"
        )
    if feature is not None and payload["feature"] != feature:
        raise JointSpaceError(
            f"{path}: joint space for feature '{payload['feature']}', not '{feature}'"
        )
    heads = payload["heads"]
    space = JointSpace(
        payload["feature"],
        build_head(heads["audio"]),
        build_head(heads["text"]),
        payload["text_pooling"],
        head_specs=heads,
        meta=payload.get("meta"),
        input_norm=bool(payload.get("input_norm", False)),  # absent in files before the option
    )
    try:
        space.load_state_dict(payload["state_dict"])
    except RuntimeError as e:
        raise JointSpaceError(f"{path}: weights do not fit the heads it names ({e})") from None
    return space.eval()
