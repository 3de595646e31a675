"""The demo's zero-shot reference: the 1 s sliding-window baseline, tuned on val, scored on test.

What AM-DETR has to beat (the paper's baseline): each 1 s frame's similarity to the query in a
joint space, thresholded and median-filtered, tuned on the validation split
(``lighthouse tune-baseline``). The joint space is aligned on the train split's captioned sounds
only (raw rows, as the baseline reads them), so the test sounds stay unheard by both methods.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from lighthouse_audio.demo.joint_prior import align_train_split
from lighthouse_audio.demo.settings import DATASET, FEATURE
from lighthouse_audio.demo.sound_set import Recording

__all__ = ["BASELINE_NAME", "tuned_baseline"]

BASELINE_NAME = "sliding window 1 s (tuned on val)"


def tuned_baseline(
    train: Sequence[Recording],
    data_dir: Path,
    features_root: Path,
    annotations: dict[str, Path],
    results_dir: Path,
    heldout: float = 0.0,
    progress: bool = True,
) -> dict[str, Any]:
    """Align, tune on ``annotations['val']``, score ``annotations['test']``.

    Returns ``{"run": folder, "threshold", "median_length", "test": brief metrics}``; the run
    folder (``results_dir/sliding_window/custom/aisfx-minilm_w1[-N]``) also works with
    ``lighthouse infer --checkpoint RUN``.
    """
    from lighthouse_audio.baseline.tuned_run import tune_run

    space = align_train_split(train, data_dir / "joint", input_norm=False, heldout=heldout,
                              progress=progress)  # fmt: skip
    run = tune_run(
        FEATURE,
        features_root / DATASET,
        annotations["val"],
        annotations["test"],
        dataset=DATASET,
        results_dir=results_dir,
        joint_space=space,
        progress=progress,
    )
    if run.test_metrics is None:  # tune_run scores a test split whenever it is given one
        raise RuntimeError(f"{run.run_dir}: the baseline run has no test metrics")
    return {
        "run": str(run.run_dir),
        "threshold": run.search.threshold,
        "median_length": run.search.median_length,
        "test": run.test_metrics["brief"],
    }
