"""MS-CLAP 2023's networks: HTSAT as transformers' ``ClapAudioModel``, GPT-2, the projections."""

from __future__ import annotations

import re
from typing import Any

import torch
from torch import nn

from lighthouse_audio.encoders.clap.frontend import ClapLogMel
from lighthouse_audio.encoders.clap.weights import TEXT_PREFIX, WEIGHTS_HINT

# The 2023 HTSAT (msclap/models/config.py), as transformers' ClapAudioConfig.
HTSAT_CONFIG: dict[str, Any] = dict(
    window_size=8,
    num_mel_bins=64,
    spec_size=256,
    patch_size=4,
    patch_stride=[4, 4],
    hidden_size=768,
    patch_embeds_hidden_size=96,
    depths=[2, 2, 6, 2],
    num_attention_heads=[4, 8, 16, 32],
    enable_fusion=False,
    mlp_ratio=4.0,
    qkv_bias=True,
    layer_norm_eps=1e-5,
    hidden_act="gelu",
    drop_path_rate=0.0,
)
MAX_FRAMES = 1024  # spec_size * freq_ratio: longer log-mels take msclap's crop-and-average path
CROP_FRAMES = 689  # msclap's hard-coded eval crops (HTSAT "Change: Hard code here")
CROP_HOP = 344
GPT2_HEAD_DIM = 64  # n_head = n_embd // 64 (12 heads for GPT-2 base)
JOINT_DIM = 1024


class ClapProjection(nn.Module):
    """msclap's ``Projection``: ``LayerNorm(e1 + W2 gelu(e1))`` with ``e1 = W1 x``, bias-free
    linears, exact GELU (Dropout(0.5) only in training). ``(..., dim_in) -> (..., dim_out)``."""

    def __init__(self, dim_in: int = 768, dim_out: int = JOINT_DIM) -> None:
        super().__init__()
        self.linear1 = nn.Linear(dim_in, dim_out, bias=False)
        self.linear2 = nn.Linear(dim_out, dim_out, bias=False)
        self.layer_norm = nn.LayerNorm(dim_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        embed1 = self.linear1(x)
        return self.layer_norm(embed1 + self.linear2(nn.functional.gelu(embed1)))


class ClapAudioBranch(nn.Module):
    """Waveforms ``(batch, samples)`` at 44.1 kHz -> HTSAT embedding ``(batch, 768)``.

    ``htsat`` is a ``transformers.ClapAudioModel`` (bn0, bicubic stretch to 1024 frames, fold to
    256x256, Swin stages, mean of the final tokens = ``pooler_output``).
    """

    def __init__(self, frontend: ClapLogMel, htsat: nn.Module) -> None:
        super().__init__()
        self.frontend = frontend
        self.htsat = htsat

    def embed_logmel(self, logmel: torch.Tensor) -> torch.Tensor:
        """Log-mel ``(batch, 1, frames, 64)`` (before bn0) -> ``(batch, 768)``.

        More than 1024 frames (> ~7.43 s) takes msclap's eval path: crops of 689 frames at
        ``range(0, frames - 689 - 1, 344)``, each stretched to 1024, embeddings averaged.
        bn0 is per mel bin, so cropping before it (here) equals msclap's cropping after it.
        """
        num_frames = logmel.shape[2]
        if num_frames <= MAX_FRAMES:
            return self.htsat(input_features=logmel).pooler_output
        starts = range(0, num_frames - CROP_FRAMES - 1, CROP_HOP)
        crops = torch.cat([logmel[:, :, s : s + CROP_FRAMES] for s in starts])
        embeddings = self.htsat(input_features=crops).pooler_output
        return embeddings.view(len(starts), logmel.shape[0], -1).mean(0)

    def forward(self, waveforms: torch.Tensor) -> torch.Tensor:
        return self.embed_logmel(self.frontend(waveforms))


def build_htsat() -> nn.Module:
    """An uninitialised-weights ``ClapAudioModel`` with the 2023 HTSAT configuration."""
    from transformers import ClapAudioConfig, ClapAudioModel

    return ClapAudioModel(ClapAudioConfig(**HTSAT_CONFIG))


def gpt2_config_for(state: dict[str, torch.Tensor]) -> Any:
    """GPT-2 config read off the tensors (layers, width, vocabulary, positions), so the full
    tower and a reduced one (test weights) both load; other settings are GPT-2 defaults."""
    from transformers import GPT2Config

    if "wte.weight" not in state or "wpe.weight" not in state:
        raise ValueError(
            f"MS-CLAP 2023 checkpoint has no {TEXT_PREFIX}wte/wpe tensors; {WEIGHTS_HINT}"
        )
    vocab_size, width = state["wte.weight"].shape
    layers = {int(m[1]) for k in state if (m := re.match(r"h\.(\d+)\.", k))}
    return GPT2Config(
        vocab_size=vocab_size,
        n_positions=state["wpe.weight"].shape[0],
        n_embd=width,
        n_layer=max(layers) + 1 if layers else 0,
        n_head=width // GPT2_HEAD_DIM,
    )
