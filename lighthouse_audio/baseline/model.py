"""The ``sliding_window`` baseline plugin: the AMR paper's zero-shot baseline.

Baselines have their own registry (``registry.BASELINES``) and contract, :class:`BaselineSpec`:
they are tuned (``lighthouse tune-baseline``), not trained, and a tuned run folder holds only
``config.yaml``, from which ``lighthouse infer --checkpoint RUN/config.yaml`` predicts through
the spec's ``predict_run``.

Run config keys (flat, as the trainer's ``config.yaml``): ``model_name``, ``dset_name``,
``a_feat_types``, ``t_feat_type``, ``window``, ``hop``, ``frames``, ``threshold``,
``median_length``, ``joint_space`` (the joint-space file, or null for the feature's built-in
space), ``thresholds`` and ``median_lengths`` (the grid), ``tune_metric`` and the split paths.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

from lighthouse_audio.registry import BASELINES

from .frames import FrameLayout, resolve_layout
from .moments import check_median_length

__all__ = [
    "MODEL_NAME",
    "BaselineSpec",
    "SlidingWindowBaseline",
    "SplitPrediction",
    "build",
    "predict_run",
]

MODEL_NAME = "sliding_window"
REQUIRED_KEYS = ("a_feat_types", "window", "hop", "frames", "threshold", "median_length")


class SplitPrediction(NamedTuple):
    """What a ``predict_run`` hook returns: prediction lines, the annotation lines of the same
    queries (for scoring), and ``"qid: reason"`` for the queries it skipped."""

    predictions: list[dict[str, Any]]
    ground_truth: list[dict[str, Any]]
    skipped: list[str]


@dataclass(frozen=True)
class BaselineSpec:
    """A baseline plugin: tuned by a command of its own, predicted from its run config.

    ``predict_run(opt, jsonl, features, require_windows, progress) -> SplitPrediction``;
    ``tuned_by`` is what ``lighthouse train`` and ``lighthouse list`` tell users to run instead.
    """

    name: str
    description: str
    tuned_by: str
    predict_run: Callable[..., SplitPrediction]


class SlidingWindowBaseline:
    """Sliding-window similarity -> threshold -> median filter -> runs, over stored features.

    Args:
        feature: feature name (folder ``{root}/{feature}``, texts ``{root}/{feature}_text``).
        space: joint space over the raw stored features.
        layout: frame layout the features were made with.
        threshold: a frame is positive when its similarity is ``>= threshold``.
        median_length: odd median-filter length in frames.
    """

    def __init__(
        self, feature: str, space: Any, layout: FrameLayout, threshold: float, median_length: int
    ) -> None:
        check_median_length(median_length)
        self.feature = feature
        self.space = space
        self.layout = layout
        self.threshold = float(threshold)
        self.median_length = int(median_length)

    def predict_jsonl(
        self, jsonl: Path, root: Path, require_windows: bool = False, progress: bool = True
    ) -> SplitPrediction:
        """Predict every query of a Lighthouse jsonl split whose features are under ``root``."""
        from lighthouse_audio.data.annotations import load_queries

        from .predict import predict_lines
        from .similarity import compute_curves

        # The features must have the layout the baseline was tuned on.
        resolve_layout(root / self.feature, self.layout.window, self.layout.hop, self.layout.frames)
        queries = load_queries(jsonl, require_windows=require_windows)
        curves = compute_curves(queries, root, self.feature, self.space, self.layout, progress)
        if not curves.queries:
            raise ValueError(f"{jsonl}: no query has feature files under {root / self.feature}")
        predictions = predict_lines(curves, self.threshold, self.median_length)
        return SplitPrediction(predictions, curves.ground_truth(), curves.skipped)


def build(opt: Mapping[str, Any]) -> SlidingWindowBaseline:
    """The baseline a run config describes (joint space rebuilt from its recorded source)."""
    from .similarity import build_joint_space

    missing = [k for k in REQUIRED_KEYS if k not in opt]
    if missing:
        raise ValueError(f"{MODEL_NAME} config lacks {', '.join(missing)}")
    feature = str(opt["a_feat_types"])
    space, _ = build_joint_space(feature, opt.get("joint_space"))
    layout = FrameLayout(float(opt["window"]), float(opt["hop"]), str(opt["frames"]))
    return SlidingWindowBaseline(
        feature, space, layout, float(opt["threshold"]), int(opt["median_length"])
    )


def predict_run(
    opt: Mapping[str, Any],
    jsonl: Path,
    features: Path,
    require_windows: bool = False,
    progress: bool = True,
) -> SplitPrediction:
    """``lighthouse infer``'s hook for run folders that hold a config but no checkpoint."""
    return build(opt).predict_jsonl(jsonl, features, require_windows, progress)


BASELINES.register(
    BaselineSpec(
        name=MODEL_NAME,
        description="the AMR paper's zero-shot sliding-window baseline over a joint space",
        tuned_by="lighthouse tune-baseline",
        predict_run=predict_run,
    )
)
