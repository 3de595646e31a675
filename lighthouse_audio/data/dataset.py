"""``MomentDataset``: Lighthouse's ``StartEndDataset`` in ``audio_tef`` mode.

An item is ``dict(meta, model_inputs, targets)``:

- ``meta``: the annotation line (``MomentQuery.to_dict()``), with ``relevant_windows`` in the
  item's current order (see below).
- ``model_inputs``:
  ``query_feat`` float32 ``[Lq, Dt]`` (Lq <= max_q_l), ``audio_feat`` float32 ``[Lv, Da]``,
  ``video_feat`` float32 ``[Lv, 2]``: the TEF, Lighthouse's only "video" input in this mode.
- ``targets`` (only with ``load_labels``):
  ``span_labels`` float32 ``[n, 2]`` normalised (center, width), n <= max_windows;
  ``saliency_pos_labels``, ``saliency_neg_labels``: ``max_n`` (2) frame indices each;
  ``saliency_all_labels`` float32 ``[Lv]``; ``src_pos_mask`` float32 ``[Lv]`` (TR-DETR only).

``Lv = ctx_l = min(max_v_l, audio frames after cutting to max_a_l)``: with no video stream the
context starts at ``max_v_l`` and drops to the audio length.

``saliency_clip`` says how long a frame is for the saliency labels: ``clip_length`` (Lighthouse's
``StartEndDataset``) or ``duration / ctx_l`` (``"duration"``, its ``CGDETR_StartEndDataset``;
the same when the annotation's duration equals the frame count). Span targets always use
``clip_length``.

Reproducibility: targets are drawn from Python's ``random`` in Lighthouse's order (see
``targets.py``). As in Lighthouse, a query with more than ``max_windows`` windows has its window
list shuffled *in place*, and the shuffled order persists into the next epoch's shuffle (in
Lighthouse it is the loaded annotation dict that gets shuffled). Here the dataset keeps its own
copy of each window list, so the ``MomentQuery`` objects are never modified.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch.utils.data import Dataset

from lighthouse_audio.data.annotations import MomentQuery
from lighthouse_audio.data.feature_store import FeatureStore
from lighthouse_audio.data.layout import text_name
from lighthouse_audio.data.limits import LengthLimits
from lighthouse_audio.data.targets import (
    positive_frame_mask,
    saliency_labels,
    span_targets,
    temporal_endpoint_features,
)

SALIENCY_CLIPS = ("clip_length", "duration")


def build_model_inputs(
    text: torch.Tensor, audio: torch.Tensor, limits: LengthLimits
) -> dict[str, torch.Tensor]:
    """One item's ``model_inputs`` from L2-normalised text ``[Lq, Dt]`` and audio ``[La, Da]``
    rows: text cut to ``max_q_l``, audio to the model's span, the TEF for what is kept.

    Training, ``lighthouse infer`` and the predictor all build inputs here, so they agree.
    """
    ctx_l = limits.context_length(len(audio))
    return {
        "query_feat": text[: limits.max_q_l],
        "audio_feat": audio[:ctx_l],
        "video_feat": temporal_endpoint_features(ctx_l),
    }


class MomentDataset(Dataset):
    """Queries + feature stores -> items for :func:`lighthouse_audio.data.collate.collate`."""

    def __init__(
        self,
        queries: Sequence[MomentQuery],
        audio_store: FeatureStore,
        text_store: FeatureStore,
        *,
        max_q_l: int,
        max_v_l: int,
        max_a_l: int,
        max_windows: int,
        clip_length: float,
        load_labels: bool = True,
        saliency_clip: str = "clip_length",
    ) -> None:
        self.queries = list(queries)
        self.audio_store = audio_store
        self.text_store = text_store
        self.limits = LengthLimits.from_config(
            {"max_q_l": max_q_l, "max_v_l": max_v_l, "max_a_l": max_a_l}
        )
        if max_windows <= 0:
            raise ValueError(f"max_windows must be positive, got {max_windows}")
        if clip_length <= 0:
            raise ValueError(f"clip_length must be positive, got {clip_length}")
        if saliency_clip not in SALIENCY_CLIPS:
            raise ValueError(
                f"saliency_clip {saliency_clip!r}: choose from {', '.join(SALIENCY_CLIPS)}"
            )
        self.max_windows = max_windows
        self.clip_length = clip_length
        self.saliency_clip = saliency_clip
        self.load_labels = load_labels
        if load_labels:
            unlabelled = [q.qid for q in self.queries if not q.relevant_windows]
            if unlabelled:
                raise ValueError(
                    f"load_labels=True but {len(unlabelled)} queries have no relevant_windows "
                    f"(first: qid {unlabelled[0]!r})"
                )
        # Per-item window lists that span_targets may shuffle in place (Lighthouse's state).
        self._windows = [
            [list(w) for w in q.relevant_windows] if q.relevant_windows is not None else None
            for q in self.queries
        ]

    def __len__(self) -> int:
        return len(self.queries)

    def saliency_clip_length(self, query: MomentQuery, ctx_l: int) -> float:
        """Seconds per frame for this query's saliency labels (see ``saliency_clip``)."""
        if self.saliency_clip == "duration":
            return query.duration / ctx_l  # CG-DETR's dataset: the annotation's duration
        return self.clip_length

    def text_name(self, query: MomentQuery) -> str:
        return text_name(query.qid)

    def preload(self, progress: bool = True) -> None:
        """Read every feature file now (see ``FeatureStore.preload``)."""
        self.audio_store.preload((q.vid for q in self.queries), progress=progress)
        self.text_store.preload((self.text_name(q) for q in self.queries), progress=progress)

    def __getitem__(self, index: int) -> dict[str, Any]:
        query = self.queries[index]
        windows = self._windows[index]

        text = torch.from_numpy(self.text_store.get(self.text_name(query)))
        audio = torch.from_numpy(self.audio_store.get(query.vid))
        model_inputs = build_model_inputs(text, audio, self.limits)
        ctx_l = len(model_inputs["audio_feat"])
        item: dict[str, Any] = {"meta": None, "model_inputs": model_inputs}
        if self.load_labels:
            # Order matters for `random`: span shuffle first, then the saliency samples, both on
            # the same (possibly shuffled) list, whose first window drives the frame labels.
            spans = span_targets(windows, ctx_l, self.clip_length, self.max_windows)
            first = windows[0]
            pos_mask = positive_frame_mask(first, ctx_l, self.clip_length)
            saliency_clip = self.saliency_clip_length(query, ctx_l)
            pos, neg, all_labels = saliency_labels(first, ctx_l, saliency_clip)
            item["targets"] = {
                "span_labels": spans,
                "saliency_pos_labels": pos,
                "saliency_neg_labels": neg,
                "saliency_all_labels": all_labels,
                "src_pos_mask": pos_mask,
            }
        meta = query.to_dict()
        if windows is not None:
            meta["relevant_windows"] = [list(w) for w in windows]
        item["meta"] = meta
        return item
