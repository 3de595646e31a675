"""``M2DClapEncoder``: the ``m2d-clap`` features from recordings and queries, and its builder."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from lighthouse_audio.encoders.base import AudioTextEncoder
from lighthouse_audio.encoders.m2d_clap.audio import M2DClapAudio
from lighthouse_audio.encoders.m2d_clap.frontend import SAMPLE_RATE
from lighthouse_audio.encoders.m2d_clap.text import (
    build_bert,
    cls_embeddings,
    load_bert_tokenizer,
    token_states,
)
from lighthouse_audio.encoders.m2d_clap.weights import (
    build_projector,
    build_vit,
    find_bert_vocab,
    find_m2d_clap_weights,
    model_config,
    read_checkpoint,
    split_state_dict,
)

__all__ = ["M2DClapEncoder", "build_m2d_clap_encoder"]


def _sha256_prefix(path: Path, length: int = 16) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()[:length]


class M2DClapEncoder(AudioTextEncoder):
    """M2D-CLAP 2025: 768-d joint-space audio per 1 s window, BERT token states (768).

    Audio: each window through the log-mel, the ViT (units of 10.01 s) and the semantic-token
    projector: ``encode_clap_audio`` of the reference runtime, what the AMR systems store per
    second (``frames="none"``: whole seconds only, as they cut them). Text: BERT's token states,
    each query truncated to 32 tokens. Joint space: the audio rows as they are and [CLS].
    Build with :func:`build_m2d_clap_encoder`; inputs run in batches of ``batch_size`` under
    ``torch.inference_mode`` with every module in eval mode.
    """

    name = "m2d-clap"
    sample_rate = SAMPLE_RATE
    audio_dim = 768
    text_dim = 768
    text_mode = "tokens"
    window = 1.0
    hop = 1.0
    frames = "none"

    def __init__(
        self,
        audio: M2DClapAudio,
        text: Any = None,
        tokenizer: Any = None,
        weights_path: Path | None = None,
        batch_size: int = 64,
    ) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.audio = audio.eval()
        self.text = text.eval() if text is not None else None
        # The released model is 768/768 (the class attributes); a checkpoint of another width
        # (the tests' tiny one) reports its own.
        self.audio_dim = int(audio.vit.cls_token.shape[-1])
        if text is not None:
            self.text_dim = int(text.config.hidden_size)
        self.tokenizer = tokenizer
        self.weights_path = weights_path
        self.batch_size = batch_size
        self.device = torch.device("cpu")
        self._weights_id: str | None = None

    def to(self, device: str | torch.device) -> M2DClapEncoder:
        super().to(device)
        self.audio.to(self.device)
        if self.text is not None:
            self.text.to(self.device)
        return self

    def weights_id(self) -> str:
        """First 16 hex digits of the checkpoint's sha256 (hashed once, on first call)."""
        if self._weights_id is None:
            path = self.weights_path
            self._weights_id = _sha256_prefix(path) if path is not None else "unknown"
        return self._weights_id

    # ------------------------------------------------------------------ audio

    @torch.inference_mode()
    def _run(self, windows: np.ndarray, step: Any, dim: int) -> np.ndarray:
        array = np.asarray(windows, dtype=np.float32)
        if array.ndim != 2:
            raise ValueError(f"expected windows (num_windows, num_samples), got {array.shape}")
        outputs = [np.zeros((0, dim), dtype=np.float32)]
        for start in range(0, array.shape[0], self.batch_size):
            chunk = torch.from_numpy(np.ascontiguousarray(array[start : start + self.batch_size]))
            outputs.append(step(chunk.to(self.device)).float().cpu().numpy())
        return np.concatenate(outputs)

    def encode_audio_windows(self, windows: np.ndarray) -> np.ndarray:
        """``(num_windows, num_samples)`` at 16 kHz -> joint-space ``(num_windows, 768)``.

        Any window longer than 200 samples works; 1 s windows are what the AMR systems use.
        """
        return self._run(windows, self.audio.embed, self.audio_dim)

    def encode_audio_pooled(self, windows: np.ndarray) -> np.ndarray:
        """The same vectors as :meth:`encode_audio_windows`: they already are the joint space."""
        return self.encode_audio_windows(windows)

    @torch.inference_mode()
    def encode_audio_frames(self, waveform: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """One recording ``(num_samples,)`` at 16 kHz -> per-frame encoder outputs
        ``(T', 768)`` (about 6.25 frames/s: each patch column averaged over frequency) and
        their times ``(T',)`` in seconds, spread evenly over the recording as the reference
        does. Not projected: these are M2D features, not the joint space."""
        signal = torch.as_tensor(np.asarray(waveform, dtype=np.float32)).reshape(1, -1)
        frames, times_ms = self.audio.frames(signal.to(self.device))
        return frames[0].float().cpu().numpy(), times_ms.numpy().astype(np.float64) / 1000

    # ------------------------------------------------------------------ text

    def _require_text(self) -> None:
        if self.text is None or self.tokenizer is None:
            raise RuntimeError("this M2D-CLAP encoder was built without its text side (text=False)")

    def encode_text(self, texts: Sequence[str]) -> list[np.ndarray]:
        """One float32 ``(num_tokens <= 32, 768)`` per text: BERT's last hidden states,
        [CLS] and [SEP] included (the AMR systems' ``last_hidden_state``)."""
        self._require_text()
        return token_states(self.text, self.tokenizer, texts, self.batch_size, self.device)

    def encode_text_pooled(self, texts: Sequence[str]) -> np.ndarray:
        """``(num_texts, 768)``: [CLS] of the untruncated text, in the audio's joint space
        (cosine similarity; not normalised)."""
        self._require_text()
        return cls_embeddings(self.text, self.tokenizer, texts, self.batch_size, self.device)


def build_m2d_clap_encoder(
    weights: str | os.PathLike | None = None,
    tokenizer: str | os.PathLike | None = None,
    model_name: str | None = None,
    device: str | torch.device | None = None,
    batch_size: int = 64,
    text: bool = True,
) -> M2DClapEncoder:
    """Load M2D-CLAP 2025 (see :func:`find_m2d_clap_weights`, :func:`find_bert_vocab`).

    ``model_name`` replaces the checkpoint's folder name as its configuration (for a file
    renamed or moved out of ``m2d_clap_vit_base-80x1001p16x16p16kpBpTI-2025/``); ``text=False``
    skips BERT and the tokenizer (audio only).
    """
    path = find_m2d_clap_weights(weights)
    config = model_config(path, model_name)
    if text and not (config.text_encoder == "bert" and config.text_weights_included):
        raise ValueError(
            f"{path}: '{model_name or path.parent.name}' does not carry its BERT text encoder "
            "(extras B and TI); only M2D-CLAP 2025 does (or pass text=False for audio only)"
        )
    vocab = find_bert_vocab(tokenizer) if text else None  # before the big load: fail fast
    parts = split_state_dict(read_checkpoint(path))
    vit = build_vit(parts.vit, config, path)
    projector = build_projector(parts.projector, vit.cls_token.shape[-1], path)
    if projector is None:
        raise ValueError(
            f"{path} has no semantic-token audio projector (backbone.audio_proj.sem_token): the "
            "m2d-clap feature needs M2D-CLAP 2025"
        )
    bert = build_bert(parts.text, path) if text else None
    encoder = M2DClapEncoder(
        M2DClapAudio(vit, projector),
        bert,
        load_bert_tokenizer(vocab) if vocab is not None else None,
        weights_path=path,
        batch_size=batch_size,
    )
    return encoder.to(device) if device is not None else encoder
