"""``laion-clap``: LAION-CLAP (HTSAT audio + RoBERTa text) through ``transformers``.

Loads ``ClapModel`` and ``ClapProcessor`` from a local directory or a hub id such as
``laion/clap-htsat-unfused``. Offline by default (``local_files_only=True``); pass
``allow_download=True`` to let ``transformers`` fetch and cache the files.

Per 1 s window the audio tower gives a 768-d pooled output and the 512-d L2-normalised
projection into the joint space. ``audio_dim`` defaults to the projection (``audio_output=
"projected"``), so windows and ``encode_text_pooled`` queries can be compared directly and the
features stay useful for zero-shot retrieval; ``audio_output="pooled"`` keeps the 768-d
pre-projection vector instead (as the MS-CLAP ``clap`` feature does). Text tokens are the text
tower's last hidden states (768-d, tokens with attention mask 1, ``<s>``/``</s>`` included).

Each window goes through the processor as-is: LAION's feature extractor repeat-pads clips shorter
than ``max_length_s`` (10 s) to full length, as LAION-CLAP does for short sounds.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F

from lighthouse_audio.encoders.base import AudioTextEncoder, FeatureSpec, TextMode
from lighthouse_audio.encoders.hf_text import text_token_states
from lighthouse_audio.encoders.loading import hf_weights_digest, load_hf_pretrained
from lighthouse_audio.registry import FEATURES

DEFAULT_MODEL = "laion/clap-htsat-unfused"
AudioOutput = Literal["projected", "pooled"]


class LaionClapEncoder(AudioTextEncoder):
    """LAION-CLAP windows (512-d projected by default) + RoBERTa token states (768-d)."""

    name = "laion-clap"
    window = 1.0
    hop = 1.0
    frames = "center"

    def __init__(
        self,
        model: str | Path = DEFAULT_MODEL,
        *,
        audio_output: AudioOutput = "projected",
        text_mode: TextMode = "tokens",
        allow_download: bool = False,
        batch_size: int = 16,
        device: str | torch.device = "cpu",
    ) -> None:
        if audio_output not in ("projected", "pooled"):
            raise ValueError(f"audio_output must be 'projected' or 'pooled', got {audio_output!r}")
        if text_mode not in ("tokens", "pooled"):
            raise ValueError(f"text_mode must be 'tokens' or 'pooled', got {text_mode!r}")
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        from transformers import ClapModel, ClapProcessor

        self.model_name = str(model)
        self.audio_output = audio_output
        self.text_mode = text_mode
        self.batch_size = batch_size
        self.model = load_hf_pretrained(ClapModel, model, allow_download, "CLAP model").eval()
        self.processor = load_hf_pretrained(ClapProcessor, model, allow_download, "CLAP processor")
        config = self.model.config
        self.sample_rate = int(self.processor.feature_extractor.sampling_rate)
        self.joint_dim = int(config.projection_dim)
        pooled_dim = int(config.audio_config.hidden_size)
        self.audio_dim = self.joint_dim if audio_output == "projected" else pooled_dim
        self.text_dim = int(config.text_config.hidden_size)
        if text_mode == "pooled":
            self.text_dim = self.joint_dim
        self._max_tokens = min(int(self.processor.tokenizer.model_max_length), 512)
        self.to(device)

    def to(self, device: str | torch.device) -> LaionClapEncoder:
        super().to(device)
        self.model.to(self.device)
        return self

    @torch.no_grad()
    def _audio(self, windows: np.ndarray, projected: bool) -> np.ndarray:
        windows = np.asarray(windows, dtype=np.float32)
        if windows.ndim != 2:
            raise ValueError(f"windows must be (num_windows, samples), got shape {windows.shape}")
        dim = self.joint_dim if projected else int(self.model.config.audio_config.hidden_size)
        out = np.zeros((windows.shape[0], dim), dtype=np.float32)
        for start in range(0, windows.shape[0], self.batch_size):
            chunk = windows[start : start + self.batch_size]
            inputs = self.processor.feature_extractor(
                list(chunk), sampling_rate=self.sample_rate, return_tensors="pt"
            )
            pooled = self.model.audio_model(
                input_features=inputs["input_features"].to(self.device),
                is_longer=inputs.get("is_longer", None),
            ).pooler_output
            if projected:
                pooled = F.normalize(self.model.audio_projection(pooled), dim=-1)
            out[start : start + len(chunk)] = pooled.float().cpu().numpy()
        return out

    def encode_audio_windows(self, windows: np.ndarray) -> np.ndarray:
        """float32 ``(num_windows, samples)`` -> ``(num_windows, audio_dim)`` (see module doc)."""
        return self._audio(windows, projected=self.audio_output == "projected")

    def encode_audio_pooled(self, windows: np.ndarray) -> np.ndarray:
        """``(num_windows, projection_dim)`` L2-normalised joint-space audio vectors."""
        return self._audio(windows, projected=True)

    def encode_text(self, texts: Sequence[str]) -> list[np.ndarray]:
        if self.text_mode == "pooled":
            return [vector[None] for vector in self.encode_text_pooled(texts)]
        tokens, _ = text_token_states(
            self.model.text_model, self.processor.tokenizer, texts, self._max_tokens, self.device
        )
        return tokens

    @torch.no_grad()
    def encode_text_pooled(self, texts: Sequence[str]) -> np.ndarray:
        """``(num_texts, projection_dim)`` L2-normalised joint-space text vectors."""
        if isinstance(texts, str):
            raise TypeError("texts must be a sequence of strings, not one string")
        if len(texts) == 0:
            return np.zeros((0, self.joint_dim), dtype=np.float32)
        batch = self.processor.tokenizer(
            list(texts),
            padding=True,
            truncation=True,
            max_length=self._max_tokens,
            return_tensors="pt",
        )
        pooled = self.model.text_model(
            input_ids=batch["input_ids"].to(self.device),
            attention_mask=batch["attention_mask"].to(self.device),
        ).pooler_output
        projected = F.normalize(self.model.text_projection(pooled), dim=-1)
        return projected.float().cpu().numpy()

    def weights_id(self) -> str:
        """``<model name or dir>@<commit or sha256[:12] of the weights file>``."""
        return f"{Path(self.model_name).name}@{hf_weights_digest(self.model)}"


def build_laion_clap_encoder(**options) -> LaionClapEncoder:
    """Factory registered with the ``laion-clap`` feature; options go to the constructor
    (``model=`` a local directory or hub id, ``allow_download=True`` to fetch it). ``weights=``
    (``lighthouse extract --weights``) is another name for ``model=``."""
    if "weights" in options:
        if "model" in options:
            raise ValueError("laion-clap: give model= or weights=, not both")
        options["model"] = options.pop("weights")
    return LaionClapEncoder(**options)


FEATURE = FEATURES.register(
    FeatureSpec(
        name="laion-clap",
        domain="audio",
        encoder=build_laion_clap_encoder,
        description="LAION-CLAP via transformers: 512-d projected audio per 1 s window (joint "
        "space), RoBERTa token states (768-d)",
    )
)
