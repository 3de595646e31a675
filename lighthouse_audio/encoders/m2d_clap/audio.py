"""The audio side of M2D-CLAP: waveform -> log-mel -> ViT units -> tokens, frames or joint space.

:class:`M2DClapAudio` strings :class:`~.frontend.M2DLogMel`, :class:`~.vit.M2DViT` and
:class:`~.projector.SemanticProjector` together and offers the reference runtime's outputs:

* ``embed`` (``encode_clap_audio``): one joint-space vector per input, ``(B, 768)``; the
  feature the AMR systems feed QD-DETR, one per 1 s window;
* ``tokens`` (``encode`` with ``flat_features=True``): every unit's patch tokens, ``(B, M, 768)``;
* ``frames`` (``get_timestamp_embeddings``, flat): each time column averaged over the frequency
  rows, ``(B, T', 768)``, with timestamps spread evenly over the input (not the 160 ms grid);
* :func:`stacked_frames` (``flat_features=False``): the frequency rows concatenated,
  ``(B, T', 5 * 768)``, feature index ``f * 768 + d`` with ``f = 0`` the lowest band.
"""

from __future__ import annotations

import torch
from torch import nn

from lighthouse_audio.encoders.m2d_clap.frontend import SAMPLE_RATE, M2DLogMel
from lighthouse_audio.encoders.m2d_clap.projector import SemanticProjector
from lighthouse_audio.encoders.m2d_clap.vit import M2DViT

__all__ = ["M2DClapAudio", "column_means", "frame_timestamps_ms", "stacked_frames"]


def column_means(units: list[torch.Tensor], rows: int) -> torch.Tensor:
    """Per-unit tokens ``[(B, rows * t_i, D)]`` -> ``(B, sum t_i, D)``: each time column's mean
    over the frequency rows, units one after the other."""
    return torch.cat([u.reshape(u.shape[0], rows, -1, u.shape[-1]).mean(1) for u in units], 1)


def stacked_frames(units: list[torch.Tensor], rows: int) -> torch.Tensor:
    """Per-unit tokens ``[(B, rows * t_i, D)]`` -> ``(B, sum t_i, rows * D)``: each time
    column's frequency rows side by side (the non-flat "M2D feature")."""
    stacked = []
    for u in units:
        grid = u.reshape(u.shape[0], rows, -1, u.shape[-1])  # (B, rows, t, D)
        stacked.append(grid.permute(0, 2, 1, 3).reshape(u.shape[0], grid.shape[2], -1))
    return torch.cat(stacked, 1)


def frame_timestamps_ms(num_samples: int, num_frames: int) -> torch.Tensor:
    """``(num_frames,)`` ms: frame ``i`` at ``i * duration / num_frames``, the reference's
    timestamps (even over the input, ignoring the samples each unit drops)."""
    step = num_samples / SAMPLE_RATE / num_frames * 1000
    return torch.arange(num_frames, dtype=torch.float64).mul(step).float()


class M2DClapAudio(nn.Module):
    """Waveforms ``(B, num_samples)`` at 16 kHz -> the outputs listed in the module doc.

    All inputs of a batch have the same length; longer inputs than one unit (10.01 s) are
    encoded unit by unit, each unit on its own.
    """

    def __init__(self, vit: M2DViT, projector: SemanticProjector | None) -> None:
        super().__init__()
        self.logmel = M2DLogMel()
        self.vit = vit
        self.projector = projector

    def log_mel(self, waveforms: torch.Tensor) -> torch.Tensor:
        """``(B, N)`` -> natural-log mel ``(B, 1, 80, 1 + N // 160)``, not normalised."""
        return self.logmel(waveforms)

    def units(self, waveforms: torch.Tensor) -> list[torch.Tensor]:
        """``(B, N)`` -> per-unit patch tokens without CLS, ``[(B, f * t_i, D)]``."""
        return self.vit.encode(self.vit.normalize(self.log_mel(waveforms)))

    def tokens(self, waveforms: torch.Tensor) -> torch.Tensor:
        """``(B, N)`` -> all patch tokens of all units, ``(B, M, D)`` (``flat_features``)."""
        return torch.cat(self.units(waveforms), dim=1)

    def frames(self, waveforms: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(B, N)`` -> ``(frames (B, T', D), timestamps_ms (T',))``, about 6.25 frames/s."""
        frames = column_means(self.units(waveforms), self.vit.grid[0])
        return frames, frame_timestamps_ms(waveforms.shape[-1], frames.shape[1])

    def embed(self, waveforms: torch.Tensor) -> torch.Tensor:
        """``(B, N)`` -> joint-space embeddings ``(B, D)`` (``encode_clap_audio``)."""
        if self.projector is None:
            raise RuntimeError("this M2D model has no semantic-token audio projector")
        return self.projector(self.tokens(waveforms))

    def forward(self, waveforms: torch.Tensor) -> torch.Tensor:
        return self.embed(waveforms)
