"""Window bounds redrawn from the joint prior: the model says where, the frames say how long.

AM-DETR trained on a few hundred captions finds the right event far more often than the
sliding-window baseline, but its (center, width) regression lands the bounds less exactly than
the baseline's 1 s frames on 1-3 s sounds (docs/RESULTS.md: R1@0.7 behind the baseline on some
splits while R1@0.5 is ahead). The joint prior it carries (``models/joint_prior.py``) scores every
frame against the query on one scale, so each window can be redrawn around its most similar
frame:

1. the *peak*: the frame with the highest similarity among those whose centre lies inside the
   window (a window too short to hold a centre takes the frame under its middle), as
   ``prior_score_mix`` reads it (``models/prior_score.py``);
2. the new window spans the consecutive frames around the peak whose similarity is at least
   ``ratio`` times the peak's, over frame edges: ``[first * hop, (last + 1) * hop]``. It may reach
   past the model's window: the frames, not the regression, say where the sound ends.

A window whose peak similarity is not positive keeps its bounds (the prior has nothing to say
there), and so does every window with ``ratio = 0`` (the config key ``prior_refine``; off, as in
Lighthouse). Scores are untouched: they judge the model's window. Two windows redrawn to the
same bounds keep the better-scored one (:func:`drop_repeated_windows`).

A recording longer than the model's span is predicted in chunks (``prediction/chunks.py``); a
chunk's frames would cut a sound at its edge, so its items carry ``PART_OF_RECORDING`` in their
meta, the post-processor leaves their bounds alone, and the merged moments are redrawn over the
whole recording's frames (:func:`refine_rows`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import torch
from torch import Tensor

from .prior_score import check_prior_fraction, window_peak

__all__ = [
    "PART_OF_RECORDING",
    "REFINE_RATIOS",
    "check_prior_refine",
    "drop_repeated_windows",
    "refine_rows",
    "refine_windows",
]

PART_OF_RECORDING = "part_of_recording"  # meta flag: redraw after the chunks are merged
# the ratios tuned over on validation data (``lighthouse demo``); 0: the model's own bounds
REFINE_RATIOS = (0.0, 0.3, 0.4, 0.5, 0.6)


def refine_windows(
    similarity: Tensor, frame_mask: Tensor, windows: Tensor, hop: float, ratio: float
) -> Tensor:
    """Windows ``[B, Q, 2]`` (seconds) redrawn around their peak frame (module doc).

    Args:
        similarity: ``[B, L]`` query-frame cosine similarity.
        frame_mask: ``[B, L]``, 1 for real frames, 0 for padding.
        windows: ``[B, Q, 2]`` (start, end) in seconds.
        hop: seconds per frame.
        ratio: frames at least ``ratio`` x the peak's similarity join the window.
    """
    peak, peak_index = window_peak(similarity, frame_mask, windows, hop)  # [B, Q]
    frames = torch.arange(similarity.shape[1], device=similarity.device)  # [L]
    # a frame stops the growth when it falls below the threshold or is padding
    below = similarity[:, None] < ratio * peak[..., None]  # [B, Q, L]
    stops = below | ~frame_mask.bool()[:, None]
    centre = peak_index[..., None]  # [B, Q, 1]
    left = torch.where(stops & (frames < centre), frames, -1).max(-1).values + 1
    right = torch.where(stops & (frames > centre), frames, similarity.shape[1]).min(-1).values
    redrawn = torch.stack([left, right], dim=-1).to(windows.dtype) * hop
    keep = (peak <= 0)[..., None] | (ratio <= 0)
    return torch.where(keep, windows, redrawn)


def refine_rows(
    rows: list[list[float]], similarity: np.ndarray, hop: float, ratio: float, duration: float
) -> list[list[float]]:
    """One recording's ranked ``[start, end, score]`` rows redrawn over its ``[L]`` frame
    similarities, bounds within ``[0, duration]``, repeats dropped."""
    if not rows or ratio <= 0:
        return rows
    table = torch.tensor(rows, dtype=torch.float32)  # [N, 3]
    frames = torch.from_numpy(np.asarray(similarity, dtype=np.float32))[None]  # [1, L]
    redrawn = refine_windows(frames, torch.ones_like(frames), table[None, :, :2], hop, ratio)[0]
    redrawn = redrawn.clamp(0, duration)
    bounds = redrawn.tolist()
    refined = [[start, end, row[2]] for (start, end), row in zip(bounds, rows, strict=True)]
    return drop_repeated_windows(refined)


def drop_repeated_windows(rows: list[list[float]]) -> list[list[float]]:
    """Rows ``[start, end, score]`` best first, without later repeats of the same bounds."""
    seen: set[tuple[float, float]] = set()
    kept = []
    for row in rows:
        bounds = (row[0], row[1])
        if bounds not in seen:
            seen.add(bounds)
            kept.append(row)
    return kept


def check_prior_refine(opt: Mapping[str, Any]) -> float:
    """The config's ``prior_refine`` as a float in [0, 1], refused without a joint prior."""
    return check_prior_fraction(opt, "prior_refine", "refine with")
