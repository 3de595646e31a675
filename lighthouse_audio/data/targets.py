"""Training targets for one query, exactly as Lighthouse builds them (pure functions).

Frames are ``clip_length`` seconds long and the context has ``ctx_l`` frames (after truncation).
Randomness comes from Python's global ``random`` only, in Lighthouse's order, so seeding it and
building items in the same order reproduces Lighthouse's targets bit for bit. Per item:

1. ``span_targets``: ``random.shuffle`` of the windows, only when there are more than
   ``max_windows`` of them;
2. ``positive_frame_mask``: no randomness;
3. ``saliency_labels`` on the first window *after* that shuffle: ``random.sample`` for the
   positives (only when the window covers more than one frame), then ``random.sample`` for the
   negatives (only when enough frames lie outside; ``random.sample`` checks ``k`` before drawing,
   so a failed attempt consumes nothing).
"""

from __future__ import annotations

import math
import random

import numpy as np
import torch


def temporal_endpoint_features(length: int) -> torch.Tensor:
    """TEF: float32 ``[length, 2]``, row i = ``[i/L, i/L + 1/L]`` (computed as Lighthouse does,
    start / L in float32, then the Python float 1/L added, so values match bit for bit)."""
    if length <= 0:
        raise ValueError(f"TEF length must be positive, got {length}")
    start = torch.arange(0, length, 1.0) / length
    end = start + 1.0 / length
    return torch.stack([start, end], dim=1)


def span_targets(
    windows: list[list[float]], ctx_l: int, clip_length: float, max_windows: int
) -> torch.Tensor:
    """Normalised ``[n, 2]`` (center, width) spans, n <= max_windows.

    If there are more than ``max_windows`` windows, ``windows`` is shuffled **in place** with
    ``random.shuffle`` and the first ``max_windows`` are kept. The in-place shuffle is
    Lighthouse's: the caller's list (the item's annotation) keeps the new order, and the saliency
    labels then use its new first window. Seconds are divided by ``ctx_l * clip_length`` (the
    truncated feature length, not ``duration``) and nothing is clamped, so windows that run past
    the truncated audio give values above 1.
    """
    if len(windows) > max_windows:
        random.shuffle(windows)
        windows = windows[:max_windows]
    xx = torch.tensor(windows, dtype=torch.float32).reshape(-1, 2) / (ctx_l * clip_length)
    center = (xx[:, 0] + xx[:, 1]) * 0.5
    width = xx[:, 1] - xx[:, 0]
    return torch.stack([center, width], dim=-1)


def saliency_frame_range(window: list[float], ctx_l: int, clip_length: float) -> tuple[int, int]:
    """First and last frame (inclusive) a window covers for the saliency labels: ``int(start /
    clip_length)`` to ``max(0, min(int(end / clip_length), ctx_l) - 1)``, the start moved down
    to the end when it lies past it (Lighthouse's rule; see :func:`saliency_labels`)."""
    st = int(window[0] / clip_length)
    ed = max(0, min(int(window[1] / clip_length), ctx_l) - 1)
    return min(st, ed), ed


def saliency_labels(
    first_window: list[float], ctx_l: int, clip_length: float, max_n: int = 2
) -> tuple[list[int], list[int], np.ndarray]:
    """Lighthouse's ``get_saliency_labels_sub_as_query``: ``(pos, neg, all_labels)``.

    The window covers frames ``int(start / clip_length)`` to
    ``max(0, min(int(end / clip_length), ctx_l) - 1)`` inclusive (start moved down to end if it
    lies past it). ``pos``: ``max_n`` distinct frames sampled inside, or ``[start, start]`` when
    the window is a single frame. ``neg``: ``max_n`` distinct frames sampled outside, or a copy
    of ``pos`` when fewer than ``max_n`` frames lie outside. ``all_labels``: float32 ``[ctx_l]``,
    1 inside the window, 0 elsewhere.
    """
    st, ed = saliency_frame_range(first_window, ctx_l, clip_length)
    if st != ed:
        pos = random.sample(range(st, ed + 1), k=max_n)
    else:
        # Lighthouse builds a fixed-size list of the single frame, whatever max_n is ([st, st]).
        pos = [st, st]
    neg_pool = list(range(0, st)) + list(range(ed + 1, ctx_l))
    if len(neg_pool) >= max_n:
        neg = random.sample(neg_pool, k=max_n)
    else:
        neg = pos  # Lighthouse's fallback: the pair then contributes no ranking signal
    all_labels = np.zeros(ctx_l, dtype=np.float32)
    all_labels[st : ed + 1] = 1
    return pos, neg, all_labels


def positive_frame_mask(first_window: list[float], ctx_l: int, clip_length: float) -> torch.Tensor:
    """Lighthouse's ``pos_mask`` (``src_pos_mask``, read only by TR-DETR): float32 ``[ctx_l]``,
    1 on frames ``floor(start / clip)`` .. ``ceil(end / clip) - 1`` (at least one frame).

    Two quirks kept for parity: the end uses ceil and no ``-1`` clamp, so a window ending at
    25.7 s marks frame 25 here but not in ``saliency_all_labels``; and a window reaching past
    the (truncated) context gives an all-zero mask, because Lighthouse grows the mask to hold the
    late frames, copies the original zeros back over its first ``ctx_l`` frames, then cuts it to
    ``ctx_l`` for the audio datasets.
    """
    first, last = positive_frame_range(first_window, ctx_l, clip_length)
    mask = torch.zeros(ctx_l, dtype=torch.float32)
    mask[first:last] = 1
    return mask


def positive_frame_range(
    first_window: list[float], ctx_l: int, clip_length: float
) -> tuple[int, int]:
    """The frames :func:`positive_frame_mask` marks, as ``(first, end)`` (end exclusive);
    ``(0, 0)`` when the mask is all zero (the window reaches past the context)."""
    first = math.floor(first_window[0] / clip_length)
    last = math.ceil(first_window[1] / clip_length)  # exclusive
    if first == last:
        last += 1
    if last > ctx_l:
        return 0, 0
    return max(first, 0), last
