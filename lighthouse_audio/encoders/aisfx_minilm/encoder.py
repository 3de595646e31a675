"""``AisfxMiniLMEncoder``: aisfx audio windows (512-d) and MiniLM token states (384-d)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from lighthouse_audio.encoders.aisfx_minilm.frontend import (
    BLOCK_FRAMES,
    MIN_FRAMES,
    SAMPLE_RATE,
    log_mel,
    mel_filterbank,
)
from lighthouse_audio.encoders.aisfx_minilm.weights import (
    PRECISIONS,
    _max_seq_length,
    aisfx_checkpoint_path,
    aisfx_minilm_weights_id,
    load_aisfx_embedding_net,
    minilm_model_dir,
)
from lighthouse_audio.encoders.base import AudioTextEncoder, TextMode
from lighthouse_audio.encoders.hf_text import text_token_states
from lighthouse_audio.encoders.loading import load_hf_pretrained


class AisfxMiniLMEncoder(AudioTextEncoder):
    """aisfx audio windows (512-d) + MiniLM token states (384-d).

    Text tokens are MiniLM's last hidden states for every token with attention mask 1, ``[CLS]``
    and ``[SEP]`` included; ``encode_text_pooled`` is the model's sentence embedding (mean over
    those tokens, L2-normalised), which lives in MiniLM's space only.
    """

    name = "aisfx-minilm"
    sample_rate = SAMPLE_RATE
    audio_dim = 512
    text_dim = 384
    window = 1.0
    hop = 1.0
    frames = "center"

    def __init__(
        self,
        *,
        text_mode: TextMode = "tokens",
        pad_to_block: bool = False,
        peak_normalize: bool = False,
        batch_size: int = 64,
        precision: str = "float32",
        aisfx_checkpoint: str | Path | None = None,
        text_model_dir: str | Path | None = None,
        device: str | torch.device = "cpu",
    ) -> None:
        if text_mode not in ("tokens", "pooled"):
            raise ValueError(f"text_mode must be 'tokens' or 'pooled', got {text_mode!r}")
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        if precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
        from transformers import AutoModel, AutoTokenizer

        self.text_mode = text_mode
        self.pad_to_block = pad_to_block
        self.peak_normalize = peak_normalize
        self.batch_size = batch_size
        self.precision = precision
        self._checkpoint = (
            Path(aisfx_checkpoint) if aisfx_checkpoint is not None else aisfx_checkpoint_path()
        )
        self._text_dir = Path(text_model_dir) if text_model_dir is not None else minilm_model_dir()
        self.audio_net = load_aisfx_embedding_net(self._checkpoint)
        self.tokenizer = load_hf_pretrained(AutoTokenizer, self._text_dir, False, "tokenizer")
        self.text_net = load_hf_pretrained(AutoModel, self._text_dir, False, "text model").eval()
        self._max_tokens = _max_seq_length(self._text_dir)
        self._filterbank = torch.from_numpy(mel_filterbank()).float()
        if precision == "int8":
            from lighthouse_audio.encoders.aisfx_minilm import int8 as aisfx_int8

            calibration = log_mel(
                torch.from_numpy(aisfx_int8.calibration_audio()), self._filterbank
            )
            self.audio_net = aisfx_int8.quantize_embedding_net(self.audio_net, calibration)
        self._weights_id: str | None = None
        self.to(device)

    def to(self, device: str | torch.device) -> AisfxMiniLMEncoder:
        if self.precision == "int8" and torch.device(device).type != "cpu":
            raise ValueError(
                f"precision='int8' runs on CPU only (--device cpu), got device {str(device)!r}"
            )
        super().to(device)
        self.audio_net.to(self.device)
        self.text_net.to(self.device)
        self._filterbank = self._filterbank.to(self.device)
        return self

    def spectrogram(self, windows: np.ndarray) -> torch.Tensor:
        """The CNN's input for ``windows``: ``(num_windows, frames, 96)`` on ``self.device``."""
        audio = torch.tensor(np.asarray(windows, dtype=np.float32), device=self.device)
        if self.peak_normalize:
            peak = audio.abs().amax(dim=-1, keepdim=True)
            audio = audio / torch.where(peak > 0, peak, torch.ones_like(peak))
        spec = log_mel(audio, self._filterbank)
        target = max(BLOCK_FRAMES if self.pad_to_block else MIN_FRAMES, spec.shape[1])
        return F.pad(spec, (0, 0, 0, target - spec.shape[1]))

    @torch.no_grad()
    def encode_audio_windows(self, windows: np.ndarray) -> np.ndarray:
        """float32 ``(num_windows, samples)`` at 44.1 kHz -> float32 ``(num_windows, 512)``."""
        windows = np.asarray(windows)
        if windows.ndim != 2:
            raise ValueError(f"windows must be (num_windows, samples), got shape {windows.shape}")
        out = np.zeros((windows.shape[0], self.audio_dim), dtype=np.float32)
        for start in range(0, windows.shape[0], self.batch_size):
            chunk = windows[start : start + self.batch_size]
            out[start : start + len(chunk)] = self.audio_net(self.spectrogram(chunk)).cpu().numpy()
        return out

    def encode_text(self, texts: Sequence[str]) -> list[np.ndarray]:
        tokens, pooled = text_token_states(
            self.text_net, self.tokenizer, texts, self._max_tokens, self.device
        )
        if self.text_mode == "pooled":
            return [vector[None] for vector in pooled]
        return tokens

    def encode_text_pooled(self, texts: Sequence[str]) -> np.ndarray:
        """MiniLM sentence embeddings ``(num_texts, 384)``, L2-normalised. Not comparable with
        audio: the shared space is the feature's ``joint_space`` (``lighthouse align``)."""
        return text_token_states(
            self.text_net, self.tokenizer, texts, self._max_tokens, self.device
        )[1]

    def encode_audio_pooled(self, windows: np.ndarray) -> np.ndarray:
        raise NotImplementedError(
            f"encoder '{self.name}' has no shared audio-text space (aisfx audio and MiniLM text "
            "are trained separately); use the feature's joint_space (lighthouse align) on "
            "encode_audio_windows, or a joint encoder like laion-clap"
        )

    def weights_id(self) -> str:
        """``aisfx<ver>+minilm<ver>-<sha256[:12]>`` over both weight files, ``-int8`` appended
        for ``precision="int8"``."""
        if self._weights_id is None:
            self._weights_id = aisfx_minilm_weights_id(
                self._checkpoint, self._text_dir, precision=self.precision
            )
        return self._weights_id


def build_aisfx_minilm_encoder(**options) -> AisfxMiniLMEncoder:
    """Factory registered with the ``aisfx-minilm`` feature; options go to the constructor.
    ``weights=`` (``lighthouse extract --weights``) is another name for ``aisfx_checkpoint=``."""
    if "weights" in options:
        if "aisfx_checkpoint" in options:
            raise ValueError("aisfx-minilm: give aisfx_checkpoint= or weights=, not both")
        options["aisfx_checkpoint"] = options.pop("weights")
    return AisfxMiniLMEncoder(**options)
