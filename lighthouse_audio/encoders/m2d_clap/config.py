"""An M2D model's configuration, read off its folder name as the reference loader does.

M2D releases put each checkpoint in a folder named ``<model>-<params>[-anything]``; ``<params>``
split on ``p`` gives the input unit (``80x1001``: mel bins x frames), the patch size
(``16x16``), the sample rate (``16k``, the default when absent) and extras: ``B`` (text encoder
BERT-base), ``TI`` (text-encoder weights included in the file), ``A`` (GTE-base), ``N``
(NV-Embed-v2).

>>> config = parse_model_name("m2d_clap_vit_base-80x1001p16x16p16kpBpTI-2025")
>>> config.num_mels, config.unit_frames, config.patch_size, config.sample_rate, config.extras
(80, 1001, (16, 16), 16000, ('B', 'TI'))
>>> config.grid, config.text_encoder, config.text_weights_included
((5, 62), 'bert', True)
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["CHECKPOINT_FILE", "MODEL_NAME", "M2DConfig", "parse_model_name"]

MODEL_NAME = "m2d_clap_vit_base-80x1001p16x16p16kpBpTI-2025"  # M2D-CLAP 2025, release v0.5.0
CHECKPOINT_FILE = "checkpoint-30.pth"

_SIZE = re.compile(r"^(\d+)x(\d+)$")
_RATE = re.compile(r"^(\d+)k$")
_TEXT_ENCODERS = {"B": "bert", "A": "gte", "N": "nv-embed"}


@dataclass(frozen=True)
class M2DConfig:
    """What an M2D folder name says.

    Args:
        model: the model class part (``m2d_clap_vit_base``).
        num_mels / unit_frames: the encoder's input unit, mel bins x log-mel frames.
        patch_size: (frequency, time) patch size in bins and frames.
        sample_rate: Hz.
        extras: the remaining ``p``-separated parts, in order.
    """

    model: str
    num_mels: int
    unit_frames: int
    patch_size: tuple[int, int]
    sample_rate: int
    extras: tuple[str, ...] = ()

    @property
    def grid(self) -> tuple[int, int]:
        """Patches per unit: (frequency rows, time columns), e.g. (5, 62)."""
        return self.num_mels // self.patch_size[0], self.unit_frames // self.patch_size[1]

    @property
    def text_encoder(self) -> str:
        """``bert`` (B), ``nv-embed`` (N) or ``gte`` (A, and the default with no extra)."""
        found = [_TEXT_ENCODERS[extra] for extra in self.extras if extra in _TEXT_ENCODERS]
        return found[0] if found else "gte"

    @property
    def text_weights_included(self) -> bool:
        """``TI``: the checkpoint carries its fine-tuned text encoder."""
        return "TI" in self.extras


def parse_model_name(name: str) -> M2DConfig:
    """``<model>-<F>x<T>p<f>x<t>[p<rate>k[p<extra>...]][-anything]`` -> :class:`M2DConfig`.

    As in the reference loader, the third ``p`` part, when present, is the sample rate.
    Raises a one-line ``ValueError`` naming ``name`` when it does not have that form.
    """
    parts = name.split("-")
    params = parts[1].split("p") if len(parts) >= 2 else []
    sizes = [_SIZE.match(part) for part in params[:2]]
    rate = _RATE.match(params[2]) if len(params) > 2 else None
    if len(sizes) < 2 or not all(sizes) or not parts[0] or (len(params) > 2 and rate is None):
        raise ValueError(
            f"'{name}' is not an M2D model name (expected <model>-<mels>x<frames>p<patch>x<patch>"
            f"[p<rate>k[p<extra>...]][-...], e.g. {MODEL_NAME})"
        )
    num_mels, unit_frames = (int(v) for v in sizes[0].groups())  # type: ignore[union-attr]
    patch = (int(sizes[1].group(1)), int(sizes[1].group(2)))  # type: ignore[union-attr]
    if min(num_mels, unit_frames, *patch) < 1 or num_mels < patch[0] or unit_frames < patch[1]:
        raise ValueError(f"'{name}': input {num_mels}x{unit_frames} and patch {patch} do not fit")
    return M2DConfig(
        model=parts[0],
        num_mels=num_mels,
        unit_frames=unit_frames,
        patch_size=patch,
        sample_rate=int(rate.group(1)) * 1000 if rate else 16000,
        extras=tuple(params[3:]),
    )
