"""Raw stored features for zero-shot scoring: the frame layout and un-normalised arrays.

A :class:`JointSpace`'s heads are not scale-invariant, so the baseline reads the ``.npz`` files
as stored, not through :class:`~lighthouse_audio.data.feature_store.FeatureStore` (which
L2-normalises rows for AM-DETR). The frame layout (window, hop, frame convention) comes from the
feature folder's manifest when there is one, else from the caller (the released CLAP features:
1 s windows, 1 s hop, ``center``).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from lighthouse_audio.data.feature_manifest import read_manifest
from lighthouse_audio.data.feature_store import read_feature_array
from lighthouse_audio.data.layout import MANIFEST_NAME

from .moments import frame_centres

__all__ = ["FrameLayout", "load_raw", "resolve_layout"]

DEFAULT_LAYOUT = {"window": 1.0, "hop": 1.0, "frames": "center"}


@dataclass(frozen=True)
class FrameLayout:
    """How stored frames map to time: ``window`` and ``hop`` in seconds, ``frames`` convention."""

    window: float
    hop: float
    frames: str

    def centres(self, num_frames: int) -> np.ndarray:
        return frame_centres(num_frames, self.window, self.hop, self.frames)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def resolve_layout(
    audio_dir: Path,
    window: float | None = None,
    hop: float | None = None,
    frames: str | None = None,
) -> FrameLayout:
    """The folder manifest's layout; a given value that contradicts it is an error. Without a
    manifest, given values fill in over :data:`DEFAULT_LAYOUT`."""
    given = {"window": window, "hop": hop, "frames": frames}
    manifest = read_manifest(audio_dir)
    if manifest is None:
        layout = {k: v if v is not None else DEFAULT_LAYOUT[k] for k, v in given.items()}
    else:
        layout = {"window": manifest.window, "hop": manifest.hop, "frames": manifest.frames}
        clashes = [
            f"{k} {v!r} != {layout[k]!r}"
            for k, v in given.items()
            if v is not None and v != layout[k]
        ]
        if clashes:
            raise ValueError(
                f"{audio_dir / MANIFEST_NAME}: features were made with another layout "
                f"(requested vs manifest: {'; '.join(clashes)})"
            )
    result = FrameLayout(float(layout["window"]), float(layout["hop"]), str(layout["frames"]))
    result.centres(0)  # validates window, hop and frames
    return result


def load_raw(path: Path, key: str) -> np.ndarray:
    """float32 ``(L, D)`` array ``key`` of ``path``, as stored (no normalisation).

    Raises ``FileNotFoundError`` when the file is absent (callers skip such queries) and
    :class:`~lighthouse_audio.data.feature_store.FeatureError` (one line, naming the file) when it
    is unusable.
    """
    if not path.is_file():
        raise FileNotFoundError(f"{path}: feature file not found")
    return read_feature_array(path, key)
