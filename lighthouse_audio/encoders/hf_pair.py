"""``hf``: any ``transformers`` audio encoder paired with any ``transformers`` text encoder.

Audio: ``AutoFeatureExtractor`` + ``AutoModel`` (e.g. AST, wav2vec 2.0, HuBERT, BEATs-style
ports); each window's vector is the mean over time of ``last_hidden_state``
(``audio_pooling="pooler"`` takes the model's ``pooler_output`` instead, e.g. AST's [CLS]/[DIST]
average). For encoder-decoder checkpoints (Whisper) only the encoder runs. Models whose feature
extractor pads every input to a fixed length (AST: 1024 frames, Whisper: 30 s) average over that
padding too; prefer ``audio_pooling="pooler"`` or a raw-waveform model there.

Text: ``AutoTokenizer`` + ``AutoModel`` (BERT, RoBERTa, ...): last hidden states of every token with
attention mask 1, special tokens included.

Names are local directories or hub ids, loaded offline unless ``allow_download=True``. The two
models are trained separately: there is no shared audio-text space. The registered spec has
``a_feat_dim = t_feat_dim = 0``: dimensions depend on the chosen models, so they are read from the
model configs (``hidden_size`` or ``d_model``) when the encoder is built, recorded in the feature
manifest by ``lighthouse extract``, and must be written into the training config by hand.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Literal

import numpy as np
import torch

from lighthouse_audio.encoders.base import AudioTextEncoder, FeatureSpec, TextMode
from lighthouse_audio.encoders.hf_text import text_token_states
from lighthouse_audio.encoders.loading import hf_weights_digest, load_hf_pretrained
from lighthouse_audio.registry import FEATURES

AudioPooling = Literal["mean", "pooler"]


def model_width(config) -> int:
    """Output width of a transformers encoder from its config (``hidden_size`` or ``d_model``)."""
    for key in ("hidden_size", "d_model"):
        value = getattr(config, key, None)
        if isinstance(value, int) and value > 0:
            return value
    raise ValueError(f"cannot tell the output width of {type(config).__name__}: no hidden_size")


def _encoder_part(model: torch.nn.Module) -> torch.nn.Module:
    if getattr(model.config, "is_encoder_decoder", False):
        return model.get_encoder()
    return model


class HFPairEncoder(AudioTextEncoder):
    """A transformers audio encoder (pooled per window) + a transformers text encoder (tokens)."""

    name = "hf"
    window = 1.0
    hop = 1.0
    frames = "center"

    def __init__(
        self,
        audio_model: str | Path,
        text_model: str | Path,
        *,
        audio_pooling: AudioPooling = "mean",
        text_mode: TextMode = "tokens",
        max_text_tokens: int = 512,
        allow_download: bool = False,
        batch_size: int = 16,
        device: str | torch.device = "cpu",
    ) -> None:
        if audio_pooling not in ("mean", "pooler"):
            raise ValueError(f"audio_pooling must be 'mean' or 'pooler', got {audio_pooling!r}")
        if text_mode not in ("tokens", "pooled"):
            raise ValueError(f"text_mode must be 'tokens' or 'pooled', got {text_mode!r}")
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        from transformers import AutoFeatureExtractor, AutoModel, AutoTokenizer

        self.audio_model_name, self.text_model_name = str(audio_model), str(text_model)
        self.audio_pooling = audio_pooling
        self.text_mode = text_mode
        self.batch_size = batch_size
        self.feature_extractor = load_hf_pretrained(
            AutoFeatureExtractor, audio_model, allow_download, "audio feature extractor"
        )
        self.audio_net = _encoder_part(
            load_hf_pretrained(AutoModel, audio_model, allow_download, "audio model")
        ).eval()
        self.tokenizer = load_hf_pretrained(AutoTokenizer, text_model, allow_download, "tokenizer")
        self.text_net = _encoder_part(
            load_hf_pretrained(AutoModel, text_model, allow_download, "text model")
        ).eval()
        self.sample_rate = int(self.feature_extractor.sampling_rate)
        self.audio_dim = model_width(self.audio_net.config)
        self.text_dim = model_width(self.text_net.config)
        self._max_tokens = min(int(self.tokenizer.model_max_length), max_text_tokens)
        self.to(device)

    def to(self, device: str | torch.device) -> HFPairEncoder:
        super().to(device)
        self.audio_net.to(self.device)
        self.text_net.to(self.device)
        return self

    @torch.no_grad()
    def encode_audio_windows(self, windows: np.ndarray) -> np.ndarray:
        """float32 ``(num_windows, samples)`` -> float32 ``(num_windows, audio_dim)``."""
        windows = np.asarray(windows, dtype=np.float32)
        if windows.ndim != 2:
            raise ValueError(f"windows must be (num_windows, samples), got shape {windows.shape}")
        out = np.zeros((windows.shape[0], self.audio_dim), dtype=np.float32)
        for start in range(0, windows.shape[0], self.batch_size):
            chunk = windows[start : start + self.batch_size]
            inputs = self.feature_extractor(
                list(chunk), sampling_rate=self.sample_rate, return_tensors="pt"
            )
            inputs = {k: v.to(self.device) for k, v in inputs.items() if torch.is_tensor(v)}
            outputs = self.audio_net(**inputs)
            if self.audio_pooling == "pooler":
                pooled = outputs.pooler_output
            else:
                pooled = outputs.last_hidden_state.mean(dim=1)
            out[start : start + len(chunk)] = pooled.float().cpu().numpy()
        return out

    def encode_text(self, texts: Sequence[str]) -> list[np.ndarray]:
        """Token states ``(num_tokens, text_dim)``; with ``text_mode="pooled"`` the mean over
        those tokens, L2-normalised, as ``(1, text_dim)``."""
        tokens, pooled = text_token_states(
            self.text_net, self.tokenizer, texts, self._max_tokens, self.device
        )
        if self.text_mode == "pooled":
            return [vector[None] for vector in pooled]
        return tokens

    def weights_id(self) -> str:
        """``<audio name>@<digest>+<text name>@<digest>`` (hub commit or weights sha256)."""
        audio = f"{Path(self.audio_model_name).name}@{hf_weights_digest(self.audio_net)}"
        return f"{audio}+{Path(self.text_model_name).name}@{hf_weights_digest(self.text_net)}"


def build_hf_pair_encoder(**options) -> HFPairEncoder:
    """Factory registered with the ``hf`` feature: ``audio_model=`` and ``text_model=`` (local
    directories or hub ids) plus the constructor's keyword options."""
    if "weights" in options:
        raise ValueError(
            "feature 'hf' takes two models: pass audio_model=... and text_model=... "
            "(e.g. --option audio_model=DIR --option text_model=DIR), not weights"
        )
    missing = [key for key in ("audio_model", "text_model") if key not in options]
    if missing:
        needed = " and ".join(missing)
        raise ValueError(f"feature 'hf' needs {needed} (a local directory or hub id each)")
    return HFPairEncoder(**options)


FEATURE = FEATURES.register(
    FeatureSpec(
        name="hf",
        domain="audio",
        encoder=build_hf_pair_encoder,
        description="any transformers audio encoder (time-mean per 1 s window) + any transformers "
        "text encoder (token states); dims from the models' configs",
    )
)
