"""Model outputs -> Lighthouse submission lines, exactly as Lighthouse's evaluation writes them.

Two stages, both pinned by ``postprocess_expected*.json`` (README §8):

1. :func:`outputs_to_predictions`: foreground probability, (center, width) -> (start, end) seconds
   scaled by the clip's ``duration``, rows sorted by score (stable), every number rounded to 4
   decimals through ``f"{x:.4f}"``.
2. :class:`PostProcessorDETR`: clamp to ``[min_ts_val, max_ts_val]`` (a fixed dataset bound, not
   the clip duration) and snap to multiples of ``clip_length`` with round-half-to-even, all in
   float32.

The order matters: 4-decimal rounding happens *before* snapping, so 12.50003 s -> 12.5 -> 12.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from lighthouse_audio.spans import span_cxw_to_xx

from .prior_refine import (
    PART_OF_RECORDING,
    check_prior_refine,
    drop_repeated_windows,
    refine_windows,
)
from .prior_score import check_prior_score_mix, mix_prior_scores, prior_similarity

__all__ = [
    "DEFAULT_MAX_TS_VAL",
    "BatchPostprocessor",
    "PostProcessorDETR",
    "build_batch_postprocessor",
    "build_postprocessor",
    "outputs_to_predictions",
    "postprocess_batch",
]

DEFAULT_MAX_TS_VAL = 150.0
FOREGROUND_LABEL = 0


def _round4(x: float) -> float:
    # Lighthouse rounds through string formatting; keep it (round() differs on some halves).
    return float(f"{x:.4f}")


def outputs_to_predictions(
    outputs: Mapping[str, Tensor],
    metas: Sequence[Mapping[str, Any]],
    prior_mix: float = 0.0,
    hop: float = 1.0,
    prior_refine: float = 0.0,
) -> list[dict[str, Any]]:
    """Ranked, 4-decimal prediction lines before :class:`PostProcessorDETR`.

    Args:
        outputs: ``pred_logits [B, Q, 2]`` (class 0 = foreground) and ``pred_spans [B, Q, 2]``
            (normalised center, width).
        metas: B dicts with ``qid``, ``query``, ``vid`` and ``duration`` (seconds; the jsonl
            duration, not the feature frame count).
        prior_mix: weight of the joint prior in the score (``models/prior_score.py``); 0 is
            Lighthouse's score, the foreground probability.
        hop: seconds per frame (the config's ``clip_length``), to place frames in the windows.
        prior_refine: redraw each window around its most similar frame, over the frames at
            least this fraction as similar (``models/prior_refine.py``); 0 keeps the model's
            bounds, as Lighthouse does. Samples whose meta sets ``PART_OF_RECORDING`` (chunks)
            keep theirs: they are redrawn once merged.

    Returns:
        B dicts ``{qid, query, vid, pred_relevant_windows}``; the windows are Q rows
        ``[start, end, score]`` in seconds, by descending score, query order on exact ties
        (with ``prior_refine``, fewer where two windows were redrawn to the same bounds).
    """
    pred_spans = outputs["pred_spans"]
    if len(metas) != pred_spans.shape[0]:
        raise ValueError(
            f"outputs_to_predictions: {pred_spans.shape[0]} samples, {len(metas)} metas"
        )
    # Softmax on the outputs' device, as Lighthouse does, then one copy to the CPU.
    scores = F.softmax(outputs["pred_logits"], dim=-1)[..., FOREGROUND_LABEL].cpu()  # [B, Q]
    spans_xx = span_cxw_to_xx(pred_spans.detach().cpu())  # [B, Q, 2]
    refined = None
    if prior_mix or prior_refine:
        durations = torch.tensor([float(meta["duration"]) for meta in metas])
        windows = spans_xx * durations[:, None, None]
        scores = mix_prior_scores(scores, outputs, windows, hop, prior_mix)
        if prior_refine:
            similarity, frame_mask = prior_similarity(outputs, f"prior_refine={prior_refine}")
            redrawn = refine_windows(similarity, frame_mask, windows, hop, prior_refine)
            refined = torch.minimum(redrawn, durations[:, None, None])
    lines = []
    for i, (meta, spans, score) in enumerate(zip(metas, spans_xx, scores, strict=True)):
        # float32 tensor times the Python duration: the same float32 product as Lighthouse.
        redraw = refined is not None and not meta.get(PART_OF_RECORDING)
        windows = refined[i] if redraw else spans * meta["duration"]
        rows = torch.cat([windows, score[:, None]], dim=1).tolist()
        rows.sort(key=lambda row: row[2], reverse=True)  # stable: ties keep query order
        rows = [[_round4(x) for x in row] for row in rows]
        lines.append(
            {
                "qid": meta["qid"],
                "query": meta["query"],
                "vid": meta["vid"],
                "pred_relevant_windows": drop_repeated_windows(rows) if redraw else rows,
            }
        )
    return lines


class PostProcessorDETR:
    """Lighthouse's ``PostProcessorDETR``: clamp and snap window bounds, re-round scores.

    Args:
        clip_length: seconds per feature frame; bounds become multiples of it.
        min_ts_val, max_ts_val: clamp range in seconds (150 for most datasets, 300 for CASTELLA).
        min_w_l, max_w_l, move_window_method: accepted for config parity; unused by Lighthouse.
        process_func_names: steps in order, from ``clip_ts`` and ``round_multiple``.
    """

    def __init__(
        self,
        clip_length: float = 2,
        min_ts_val: float = 0,
        max_ts_val: float = DEFAULT_MAX_TS_VAL,
        min_w_l: float = 2,
        max_w_l: float = 70,
        move_window_method: str = "center",
        process_func_names: Sequence[str] = ("clip_ts", "round_multiple"),
    ) -> None:
        self.clip_length = clip_length
        self.min_ts_val = min_ts_val
        self.max_ts_val = max_ts_val
        self.min_w_l = min_w_l
        self.max_w_l = max_w_l
        self.move_window_method = move_window_method
        self.process_func_names = list(process_func_names)
        self.name2func: dict[str, Callable[[Tensor], Tensor]] = {
            "clip_ts": self.clip_min_max_timestamps,
            "round_multiple": self.round_to_multiple_clip_lengths,
        }
        unknown = [n for n in self.process_func_names if n not in self.name2func]
        if unknown:
            raise ValueError(
                f"PostProcessorDETR: unknown process_func_names {unknown}; "
                f"choose from {sorted(self.name2func)}"
            )

    def settings(self) -> dict[str, Any]:
        """Constructor arguments, in the layout of the fixtures' ``postprocessor_settings``."""
        return {
            "clip_length": self.clip_length,
            "min_ts_val": self.min_ts_val,
            "max_ts_val": self.max_ts_val,
            "min_w_l": self.min_w_l,
            "max_w_l": self.max_w_l,
            "move_window_method": self.move_window_method,
            "process_func_names": list(self.process_func_names),
        }

    def clip_min_max_timestamps(self, windows: Tensor) -> Tensor:
        """``[N, 2]`` -> ``[N, 2]`` clamped to ``[min_ts_val, max_ts_val]``."""
        return torch.clamp(windows, min=self.min_ts_val, max=self.max_ts_val)

    def round_to_multiple_clip_lengths(self, windows: Tensor) -> Tensor:
        """``[N, 2]`` -> nearest multiple of ``clip_length``; torch.round: halves go to even."""
        return torch.round(windows / self.clip_length) * self.clip_length

    def __call__(self, lines: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
        """Process submission lines; returns new dicts (the input is left untouched).

        All windows of all lines go through one float32 tensor: the steps are elementwise, so
        this equals Lighthouse's per-line processing.
        """
        counts = [len(line["pred_relevant_windows"]) for line in lines]
        rows = [row for line in lines for row in line["pred_relevant_windows"]]
        table = torch.tensor(rows, dtype=torch.float32).reshape(-1, 3)  # [N, 3]
        windows = table[:, :2]
        for name in self.process_func_names:
            windows = self.name2func[name](windows)
        processed = torch.cat([windows, table[:, 2:3]], dim=1).tolist()
        out, start = [], 0
        for line, count in zip(lines, counts, strict=True):
            chunk = processed[start : start + count]
            start += count
            out.append(
                {
                    **line,
                    "pred_relevant_windows": [[s, e, _round4(score)] for s, e, score in chunk],
                }
            )
        return out


def postprocess_batch(
    outputs: Mapping[str, Tensor],
    metas: Sequence[Mapping[str, Any]],
    postprocessor: PostProcessorDETR,
    prior_mix: float = 0.0,
    prior_refine: float = 0.0,
) -> list[dict[str, Any]]:
    """Model outputs of one batch -> final submission lines (README §8 steps 2-7); ``prior_mix``
    and ``prior_refine`` as in :func:`outputs_to_predictions`, frames of the post-processor's
    ``clip_length``."""
    lines = outputs_to_predictions(
        outputs, metas, prior_mix, postprocessor.clip_length, prior_refine
    )
    return postprocessor(lines)


def _dataset_settings(dset_name: str | None) -> dict[str, float]:
    """The dataset plugin's clamp and recorded window bounds (CASTELLA: 300 s, 1..300), or the
    150 s datasets' values when the dataset is unknown."""
    defaults = {"max_ts_val": DEFAULT_MAX_TS_VAL, "min_w_l": 2, "max_w_l": 60}
    if dset_name is None:
        return defaults
    from lighthouse_audio.registry import DATASETS

    try:
        spec = DATASETS.get(dset_name)
    except KeyError:
        return defaults
    return {key: getattr(spec, key, default) for key, default in defaults.items()}


def build_postprocessor(
    opt: Mapping[str, Any], max_ts_val: float | None = None
) -> PostProcessorDETR:
    """Lighthouse's moment-retrieval post-processor for audio datasets.

    Args:
        opt: flat config; reads ``clip_length`` and ``dset_name`` (looked up in the dataset
            registry for the clamp and recorded window bounds); ``max_ts_val`` overrides the clamp.
        max_ts_val: clamp in seconds, overriding both the dataset's and the config's.
    """
    settings = _dataset_settings(opt.get("dset_name"))
    if max_ts_val is None:
        max_ts_val = opt.get("max_ts_val") or settings["max_ts_val"]
    return PostProcessorDETR(
        clip_length=opt["clip_length"],
        min_ts_val=0,
        max_ts_val=max_ts_val,
        min_w_l=settings["min_w_l"],
        max_w_l=settings["max_w_l"],
        move_window_method="left",
        process_func_names=("clip_ts", "round_multiple"),
    )


class BatchPostprocessor:
    """``(outputs, metas) -> lines``: the form ``ModelBundle.postprocessor`` expects.

    ``prior_mix`` (``models/prior_score.py``) and ``prior_refine`` (``models/prior_refine.py``)
    may be changed after construction, e.g. to score a trained model with settings tuned on
    validation data.
    """

    def __init__(
        self, postprocessor: PostProcessorDETR, prior_mix: float = 0.0, prior_refine: float = 0.0
    ) -> None:
        self.postprocessor = postprocessor
        self.prior_mix = prior_mix
        self.prior_refine = prior_refine

    def __call__(
        self, outputs: Mapping[str, Tensor], metas: Sequence[Mapping[str, Any]]
    ) -> list[dict[str, Any]]:
        return postprocess_batch(
            outputs, metas, self.postprocessor, self.prior_mix, self.prior_refine
        )


def build_batch_postprocessor(
    opt: Mapping[str, Any], max_ts_val: float | None = None
) -> BatchPostprocessor:
    """:func:`build_postprocessor` wrapped to take raw model outputs and metas, scoring with the
    config's ``prior_score_mix`` and windows redrawn with its ``prior_refine``."""
    return BatchPostprocessor(
        build_postprocessor(opt, max_ts_val), check_prior_score_mix(opt), check_prior_refine(opt)
    )
