"""``MSClap2023Encoder``: the ``clap`` features from recordings and queries, and how to build it."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from lighthouse_audio.encoders.base import AudioTextEncoder
from lighthouse_audio.encoders.clap.frontend import SAMPLE_RATE, ClapLogMel, StftImpl
from lighthouse_audio.encoders.clap.networks import (
    JOINT_DIM,
    ClapAudioBranch,
    ClapProjection,
    build_htsat,
    gpt2_config_for,
)
from lighthouse_audio.encoders.clap.tokenizer import load_gpt2_tokenizer, msclap_tokenize
from lighthouse_audio.encoders.clap.weights import (
    convert_msclap_state_dict,
    find_clap_weights,
    load_clap_weights,
    load_module,
)


def _sha256_prefix(path: Path, length: int = 16) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()[:length]


class MSClap2023Encoder(AudioTextEncoder):
    """MS-CLAP 2023: HTSAT audio (768) and GPT-2 token (768) features, 1024-d joint space.

    Build with :func:`build_clap_encoder`. Inputs are processed in batches of ``batch_size`` under
    ``torch.inference_mode`` with every module in eval mode.
    """

    name = "clap"
    sample_rate = SAMPLE_RATE
    audio_dim = 768
    text_dim = 768
    text_mode = "tokens"
    window = 1.0
    hop = 1.0
    frames = "center"

    def __init__(
        self,
        audio: ClapAudioBranch,
        audio_projection: ClapProjection,
        text: nn.Module | None = None,
        text_projection: ClapProjection | None = None,
        tokenizer: Any = None,
        weights_path: Path | None = None,
        batch_size: int = 16,
        logit_scale: float | None = None,
    ) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.audio = audio.eval()
        self.audio_projection = audio_projection.eval()
        self.text = text.eval() if text is not None else None
        self.text_projection = text_projection.eval() if text_projection is not None else None
        self.tokenizer = tokenizer
        self.weights_path = weights_path
        self.batch_size = batch_size
        self.logit_scale = logit_scale
        self.device = torch.device("cpu")
        self._weights_id: str | None = None

    def _modules(self) -> list[nn.Module]:
        found = [self.audio, self.audio_projection, self.text, self.text_projection]
        return [m for m in found if m is not None]

    def to(self, device: str | torch.device) -> MSClap2023Encoder:
        super().to(device)
        for module in self._modules():
            module.to(self.device)
        return self

    def weights_id(self) -> str:
        """First 16 hex digits of the weights file's sha256 (hashed once, on first call)."""
        if self._weights_id is None:
            self._weights_id = (
                _sha256_prefix(self.weights_path) if self.weights_path is not None else "unknown"
            )
        return self._weights_id

    # ------------------------------------------------------------------ audio

    def _windows_tensor(self, windows: np.ndarray) -> torch.Tensor:
        array = np.asarray(windows, dtype=np.float32)
        if array.ndim != 2:
            raise ValueError(f"expected windows (num_windows, num_samples), got {array.shape}")
        return torch.from_numpy(np.ascontiguousarray(array))

    @torch.inference_mode()
    def _embed(self, windows: np.ndarray, project: bool) -> np.ndarray:
        batch = self._windows_tensor(windows)
        dim = JOINT_DIM if project else self.audio_dim
        outputs = [np.zeros((0, dim), dtype=np.float32)]
        for start in range(0, batch.shape[0], self.batch_size):
            chunk = batch[start : start + self.batch_size].to(self.device)
            embedding = self.audio(chunk)
            if project:
                embedding = self.audio_projection(embedding)
            outputs.append(embedding.float().cpu().numpy())
        return np.concatenate(outputs)

    def encode_audio_windows(self, windows: np.ndarray) -> np.ndarray:
        """``(num_windows, num_samples)`` at 44.1 kHz -> HTSAT embeddings ``(num_windows, 768)``.
        Any window length works; longer than ~7.43 s takes the crop-and-average path."""
        return self._embed(windows, project=False)

    def encode_audio_pooled(self, windows: np.ndarray) -> np.ndarray:
        """``(num_windows, num_samples)`` -> projected ``(num_windows, 1024)`` (not normalised)."""
        return self._embed(windows, project=True)

    # ------------------------------------------------------------------ text

    def tokenize(self, texts: Sequence[str]) -> tuple[torch.Tensor, torch.Tensor]:
        """``(input_ids, attention_mask)`` as msclap makes them (see :func:`msclap_tokenize`)."""
        if self.tokenizer is None or self.text is None:
            raise RuntimeError(
                "this MS-CLAP encoder was built without its text branch (text=False)"
            )
        return msclap_tokenize(self.tokenizer, texts, self.text.config.n_positions)

    @torch.inference_mode()
    def _text_states(self, texts: Sequence[str]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(last_hidden (num_texts, length, 768), input_ids, attention_mask)`` on CPU."""
        input_ids, attention_mask = self.tokenize(texts)
        states = [torch.zeros((0, input_ids.shape[1], self.text_dim))]
        for start in range(0, input_ids.shape[0], self.batch_size):
            ids = input_ids[start : start + self.batch_size].to(self.device)
            mask = attention_mask[start : start + self.batch_size].to(self.device)
            hidden = self.text(input_ids=ids, attention_mask=mask).last_hidden_state
            states.append(hidden.float().cpu())
        return torch.cat(states), input_ids, attention_mask

    def encode_text(self, texts: Sequence[str]) -> list[np.ndarray]:
        """One ``(num_tokens, 768)`` float32 array per text: GPT-2's last hidden states at the
        positions where msclap's ``attention_mask == 1`` (text tokens, ``" "``, EOT)."""
        hidden, _, attention_mask = self._text_states(texts)
        return [
            states[mask.bool()].numpy() for states, mask in zip(hidden, attention_mask, strict=True)
        ]

    @torch.inference_mode()
    def encode_text_pooled(self, texts: Sequence[str]) -> np.ndarray:
        """``(num_texts, 1024)``: msclap's text projection of the hidden state at
        ``(input_ids != 0).sum(-1) - 1``. With no ``!`` in a text that is the EOT token; each
        ``!`` (id 0) shifts it one token left, as in msclap."""
        hidden, input_ids, _ = self._text_states(texts)
        if hidden.shape[0] == 0:
            return np.zeros((0, JOINT_DIM), dtype=np.float32)
        pool_index = input_ids.ne(0).sum(-1) - 1
        pooled = hidden[torch.arange(hidden.shape[0]), pool_index].to(self.device)
        return self.text_projection(pooled).float().cpu().numpy()


def build_clap_encoder(
    weights: str | os.PathLike | None = None,
    tokenizer: str | os.PathLike | None = None,
    device: str | torch.device | None = None,
    batch_size: int = 16,
    text: bool = True,
    stft: StftImpl = "fft",
) -> MSClap2023Encoder:
    """Load MS-CLAP 2023 from local files (see :func:`find_clap_weights` and
    :func:`find_gpt2_tokenizer`); ``text=False`` skips GPT-2 and the tokenizer (audio only).

    ``stft="conv"`` reproduces torchlibrosa's STFT float-for-float (see ``clap_frontend``).
    """
    from transformers import GPT2Model

    path = find_clap_weights(weights)
    gpt2_tokenizer = load_gpt2_tokenizer(tokenizer) if text else None
    parts = convert_msclap_state_dict(load_clap_weights(path))
    htsat = load_module(build_htsat, parts.audio, "HTSAT (ClapAudioModel)", path)
    audio_projection = load_module(ClapProjection, parts.audio_projection, "audio projection", path)
    audio = ClapAudioBranch(ClapLogMel(parts.mel_filterbank, stft=stft), htsat)
    gpt2 = text_projection = None
    if text:
        config = gpt2_config_for(parts.text)
        gpt2 = load_module(lambda: GPT2Model(config), parts.text, "GPT-2", path)
        text_projection = load_module(
            ClapProjection, parts.text_projection, "text projection", path
        )
    logit_scale = float(parts.logit_scale) if parts.logit_scale is not None else None
    encoder = MSClap2023Encoder(
        audio,
        audio_projection,
        gpt2,
        text_projection,
        gpt2_tokenizer,
        weights_path=path,
        batch_size=batch_size,
        logit_scale=logit_scale,
    )
    return encoder.to(device) if device is not None else encoder
