"""Chance level for moment retrieval: random windows, scored by the standalone evaluator.

Two baselines, both ranking ``num_windows`` random windows per query with random scores:

- ``uniform``: start and end are two uniform draws over the recording (sorted);
- ``length prior``: the length is drawn from the training set's true moment lengths (clipped to
  the recording), the start uniformly where that length fits. This knows how long moments tend to
  be, so it is the fairer bar for a model that has learned that too.

Metrics are averaged over ``repeats`` seeds, because a single random draw is noisy.

>>> gt = [{"qid": 1, "duration": 30, "relevant_windows": [[3, 6]]}]
>>> sorted(chance_metrics(gt, seed=0, repeats=2))[:2]
['MR-full-R1@0.5', 'MR-full-R1@0.7']
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from lighthouse_audio.evaluation.metrics import eval_submission

__all__ = ["chance_metrics", "random_window_predictions"]


def random_window_predictions(
    ground_truth: Sequence[dict[str, Any]],
    rng: np.random.Generator,
    num_windows: int = 10,
    lengths: Sequence[float] | None = None,
) -> list[dict[str, Any]]:
    """One prediction line per ground-truth line: ``num_windows`` random ``[start, end, score]``
    windows inside ``[0, duration]``, sorted by score (see the module doc for ``lengths``)."""
    predictions = []
    pool = np.asarray(lengths, dtype=np.float64) if lengths is not None else None
    if pool is not None and (pool.size == 0 or np.any(pool <= 0)):
        raise ValueError("lengths must be a non-empty list of positive seconds")
    for line in ground_truth:
        duration = float(line["duration"])
        if pool is None:
            bounds = np.sort(rng.uniform(0.0, duration, size=(num_windows, 2)), axis=1)
        else:
            length = np.minimum(rng.choice(pool, size=num_windows), duration)
            start = rng.uniform(0.0, 1.0, size=num_windows) * (duration - length)
            bounds = np.stack([start, start + length], axis=1)
        scores = np.sort(rng.uniform(size=num_windows))[::-1]
        windows = [
            [round(float(s), 4), round(float(e), 4), round(float(p), 4)]
            for (s, e), p in zip(bounds, scores, strict=True)
        ]
        predictions.append({"qid": line["qid"], "pred_relevant_windows": windows})
    return predictions


def chance_metrics(
    ground_truth: Sequence[dict[str, Any]],
    seed: int = 0,
    repeats: int = 10,
    num_windows: int = 10,
    lengths: Sequence[float] | None = None,
) -> dict[str, float]:
    """The evaluator's ``brief`` metrics of random windows, averaged over ``repeats`` draws."""
    rng = np.random.default_rng(seed)
    runs = [
        eval_submission(
            random_window_predictions(ground_truth, rng, num_windows, lengths), ground_truth
        )["brief"]
        for _ in range(repeats)
    ]
    return {k: round(float(np.mean([run[k] for run in runs])), 2) for k in runs[0]}
