"""Train/val/test splits made by recording: a file is in exactly one split.

Captioned foreground clips and background recordings are split separately (Clotho-Moment takes
its foregrounds from Clotho's own splits and gives each split its own Walking Tours videos), so
every query of the test set describes a recording the model never heard, overlaid on an ambience
it never heard either.

The assignment is deterministic given the seed and independent of the input order: items are
sorted by ``key``, shuffled by ``numpy.random.default_rng(seed)``, the first item of the shuffled
order goes to each split in turn (so no split is empty), and every further item goes to the split
furthest below its share of the total ``weight`` (a count by default; the demo weighs backgrounds
by the clips they can give, so the splits get their share of audio, not of files).

With few, unequal items (five ambiences of 33 to 154 s) one shuffle can leave a split far below
its share, so ``tries`` shuffles are drawn from the same generator and the assignment whose worst
split gets the largest fraction of its share wins (the earliest on ties: with equal weights,
every shuffle fills the splits alike and the first one is kept).

>>> parts = split_by_recording(list("abcdefghij"), (0.6, 0.2, 0.2), seed=0, key=str)
>>> [len(parts[s]) for s in SPLITS]
[6, 2, 2]
>>> sorted(sum(parts.values(), [])) == list("abcdefghij")
True
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TypeVar

import numpy as np

__all__ = ["SPLITS", "split_by_recording"]

SPLITS = ("train", "val", "test")

T = TypeVar("T")


def split_by_recording(
    items: Sequence[T],
    fractions: Sequence[float],
    seed: int,
    key: Callable[[T], str],
    weight: Callable[[T], float] | None = None,
    names: Sequence[str] = SPLITS,
    tries: int = 1,
) -> dict[str, list[T]]:
    """``{name: items}`` with every item in exactly one split (see the module doc).

    Raises ``ValueError`` when there are fewer items than splits, when ``fractions`` and
    ``names`` differ in length, when a fraction is not positive, when two items share a key,
    or when ``tries`` < 1.
    """
    if tries < 1:
        raise ValueError(f"tries must be >= 1, got {tries}")
    if len(fractions) != len(names):
        raise ValueError(f"{len(fractions)} fractions for {len(names)} splits ({', '.join(names)})")
    if any(not f > 0 for f in fractions):
        raise ValueError(f"split fractions must be > 0, got {list(fractions)}")
    if len(items) < len(names):
        raise ValueError(
            f"{len(items)} recording(s) cannot fill {len(names)} splits ({', '.join(names)})"
        )
    ordered = sorted(items, key=key)
    keys = [key(item) for item in ordered]
    repeated = sorted({k for a, k in zip(keys, keys[1:], strict=False) if a == k})
    if repeated:
        raise ValueError(f"two recordings share the key {repeated[0]!r}")
    weights = np.asarray([weight(item) for item in ordered] if weight else [1.0] * len(ordered))
    shares = np.asarray(fractions, dtype=np.float64) / float(np.sum(fractions))
    targets = shares * float(weights.sum())
    rng = np.random.default_rng(seed)
    best, best_score = None, -np.inf
    for _ in range(tries):
        assignment = _assign(rng.permutation(len(ordered)), weights, targets)
        filled = np.bincount(assignment, weights=weights, minlength=len(names))
        score = float(np.min(filled / np.maximum(targets, 1e-12)))
        if score > best_score + 1e-9:
            best, best_score = assignment, score
    return {
        name: [item for item, split in zip(ordered, best, strict=True) if split == i]
        for i, name in enumerate(names)
    }


def _assign(order: np.ndarray, weights: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """Split index per item: one item per split first, then the split with the largest deficit
    (``np.argmax`` takes the first maximum, so ties go to the earlier split)."""
    assignment = np.zeros(len(order), dtype=np.int64)
    filled = np.zeros(len(targets))
    for rank, index in enumerate(order):
        split = rank if rank < len(targets) else int(np.argmax(targets - filled))
        assignment[index] = split
        filled[split] += weights[index]
    return assignment
