"""The contract every audio-text encoder fulfils.

Audio arrives as already-cut windows (``lighthouse_audio.audio.windows``) at the encoder's sample
rate, so an encoder only maps ``(num_windows, samples) -> (num_windows, audio_dim)``. Text is
encoded per query as tokens ``(num_tokens, text_dim)`` (what AM-DETR reads) and, where the encoder
has a shared audio-text space, as one pooled, projected vector for zero-shot similarity.
"""

from __future__ import annotations

import typing
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import torch

FrameConvention = Literal["center", "none"]

__all__ = ["AudioTextEncoder", "FeatureSpec", "FrameConvention", "TextMode"]
TextMode = Literal["tokens", "pooled"]


class AudioTextEncoder(ABC):
    """Base class; subclasses set the class attributes and implement the two ``encode_*``."""

    name: str
    sample_rate: int
    audio_dim: int
    text_dim: int
    text_mode: TextMode = "tokens"
    window: float = 1.0  # seconds
    hop: float = 1.0  # seconds
    frames: FrameConvention = "center"

    device: torch.device = torch.device("cpu")

    def to(self, device: str | torch.device) -> AudioTextEncoder:
        """Move the encoder's networks; subclasses with modules override and call super()."""
        self.device = torch.device(device)
        return self

    @abstractmethod
    def encode_audio_windows(self, windows: np.ndarray) -> np.ndarray:
        """``windows`` float32 ``(num_windows, num_samples)`` mono at ``sample_rate``
        -> float32 ``(num_windows, audio_dim)``."""

    @abstractmethod
    def encode_text(self, texts: Sequence[str]) -> list[np.ndarray]:
        """One float32 array per text: ``(num_tokens, text_dim)`` token states
        (``text_mode == "tokens"``) or ``(1, text_dim)`` (``"pooled"``)."""

    def encode_text_pooled(self, texts: Sequence[str]) -> np.ndarray:
        """``(num_texts, joint_dim)`` vectors in the space shared with ``encode_audio_pooled``.
        Only encoders with a joint audio-text space implement it."""
        raise NotImplementedError(f"encoder '{self.name}' has no shared audio-text space")

    def encode_audio_pooled(self, windows: np.ndarray) -> np.ndarray:
        """``(num_windows, joint_dim)`` audio vectors in the shared audio-text space."""
        raise NotImplementedError(f"encoder '{self.name}' has no shared audio-text space")

    def weights_id(self) -> str:
        """A short identifier of the weights in use (e.g. sha256 prefix), for feature manifests."""
        return "unknown"


@dataclass(frozen=True)
class FeatureSpec:
    """A feature plugin: an (audio, text) embedding pair that models are trained on.

    Stored in Lighthouse's layout (``features.layout.FeatureLayout``); its dims are the
    encoder's (``audio_dim``/``text_dim``) and, for Lighthouse's YAML, ``configs/feature/*.yml``.

    Args:
        name: registry key = ``a_feat_types`` = its folder and YAML file name.
        domain: what it describes ("audio"); pairs it with datasets (``registry.valid_pairs``).
        description: one line for ``lighthouse list``.
        encoder: ``encoder(**options) -> AudioTextEncoder`` that computes it (None: it can only
            be read from disk). Called only when needed, so heavy imports stay inside it.
        joint_space: ``joint_space(path=None, **options) -> JointSpace`` over the stored rows
            (``path``: weights or joint-space file), for zero-shot methods; None: none.
    """

    name: str
    domain: str
    description: str = ""
    encoder: Callable[..., AudioTextEncoder] | None = None
    joint_space: Callable[..., Any] | None = None

    def encoder_dims(self) -> tuple[int, int] | None:
        """``(audio_dim, text_dim)`` when the encoder's class fixes them (the factory is the
        class, or is annotated to return it), else None: they depend on the loaded weights."""
        cls = self.encoder
        if cls is not None and not isinstance(cls, type):
            try:
                cls = typing.get_type_hints(cls).get("return")
            except Exception:  # noqa: BLE001 - an unresolvable annotation: dims unknown
                cls = None
        dims = tuple(getattr(cls, name, None) for name in ("audio_dim", "text_dim"))
        return dims if all(isinstance(d, int) and d > 0 for d in dims) else None  # type: ignore
