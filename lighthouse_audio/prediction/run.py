"""Predict moments: batched forward passes over (query, chunk) items, merged per query.

The one path every caller takes (the predictor, ``lighthouse infer``, ``lighthouse predict``,
``lighthouse serve``, the demo):

1. each query's text rows and each chunk of the recording become one item through
   :func:`~lighthouse_audio.data.dataset.build_model_inputs`, exactly as training builds them;
2. items are collated (:func:`~lighthouse_audio.data.collate.collate`) ``batch_size`` at a time and
   run through the model once; the checkpoint's post-processor turns outputs into windows;
3. a query whose recording fits the model's span keeps its one line as is (Lighthouse's output,
   bit for bit); a longer one has its chunks merged (:mod:`.chunks`).

>>> loaded = load_model("best.ckpt")  # doctest: +SKIP
>>> audio = EncodedAudio(features, duration=600.0, name="night.wav")  # doctest: +SKIP
>>> predict_queries(loaded, audio, ["a dog barks"], [text_rows])[0]["pred_relevant_windows"][0]
[312.0, 318.0, 0.8123]  # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from lighthouse_audio.data.collate import collate, move_to_device
from lighthouse_audio.data.dataset import build_model_inputs
from lighthouse_audio.models.prior_refine import PART_OF_RECORDING, check_prior_refine, refine_rows
from lighthouse_audio.models.prior_score import PRIOR_SIMILARITY_KEY
from lighthouse_audio.prediction.chunks import (
    DEFAULT_NMS_IOU,
    Chunk,
    merge_chunk_moments,
    plan_chunks,
    stitch_frame_values,
)
from lighthouse_audio.prediction.model import LoadedModel

DEFAULT_BATCH_SIZE = 64


@dataclass
class EncodedAudio:
    """One recording's features as the model reads them.

    ``features``: float32 ``[frames, dim]``, rows L2-normalised (``l2_normalize_rows``);
    ``duration``: seconds the predictions are scaled to when the recording fits the model's span
    (Lighthouse scales by the annotation's duration); ``frame_times``: ``[frames, 2]`` seconds.
    """

    features: torch.Tensor
    duration: float
    name: str = ""
    frame_times: np.ndarray | None = None

    @property
    def num_frames(self) -> int:
        return int(self.features.shape[0])


@dataclass
class ChunkedRequest:
    """One query on one recording, and the chunks it is predicted over."""

    meta: dict[str, Any]
    text: torch.Tensor
    audio: EncodedAudio
    chunks: list[Chunk]


@dataclass
class ItemOutput:
    """One item's post-processed Lighthouse line (``qid, query, vid, pred_relevant_windows``) and
    its per-frame values over the frames the model read: saliency, and the joint prior's
    query-frame similarity (None without a prior)."""

    line: dict[str, Any]
    saliency: np.ndarray
    similarity: np.ndarray | None


def forward_items(
    loaded: LoadedModel, items: Iterable[dict[str, Any]], batch_size: int = DEFAULT_BATCH_SIZE
) -> Iterator[ItemOutput]:
    """One :class:`ItemOutput` for each ``{"meta", "model_inputs"}`` item, in order."""
    batch: list[dict[str, Any]] = []
    for item in items:
        batch.append(item)
        if len(batch) == batch_size:
            yield from _forward_batch(loaded, batch)
            batch = []
    if batch:
        yield from _forward_batch(loaded, batch)


@torch.inference_mode()
def _forward_batch(loaded: LoadedModel, batch: Sequence[dict[str, Any]]) -> list[ItemOutput]:
    metas, inputs, _ = collate(batch)
    inputs, _ = move_to_device(inputs, None, loaded.device)
    outputs = loaded.model(**inputs)
    lines = loaded.postprocessor(outputs, metas)
    saliency = outputs["saliency_scores"].float().cpu().numpy()
    similarity = outputs.get(PRIOR_SIMILARITY_KEY)
    if similarity is not None:
        similarity = similarity.float().cpu().numpy()
    lengths = inputs["src_vid_mask"].sum(1).long().tolist()
    return [
        ItemOutput(line, saliency[i, :n], None if similarity is None else similarity[i, :n])
        for i, (line, n) in enumerate(zip(lines, lengths, strict=True))
    ]


def plan_request(
    loaded: LoadedModel,
    meta: dict[str, Any],
    text: torch.Tensor,
    audio: EncodedAudio,
    truncate: bool = False,
    overlap: int | None = None,
) -> ChunkedRequest:
    """Chunks for one query: the whole recording when it fits the span (or ``truncate``, which
    keeps only the first ``span`` frames, as Lighthouse does), else overlapping chunks."""
    span = None if truncate else loaded.span
    chunks = plan_chunks(audio.num_frames, span, overlap)
    return ChunkedRequest(dict(meta), text, audio, chunks)


def _request_items(loaded: LoadedModel, request: ChunkedRequest) -> Iterator[dict[str, Any]]:
    if len(request.chunks) == 1:
        inputs = build_model_inputs(request.text, request.audio.features, loaded.limits)
        yield {"meta": request.meta, "model_inputs": inputs}
        return
    for chunk in request.chunks:
        # each chunk is scaled by its own length, as the model was trained (span / frames);
        # window bounds are redrawn from the prior once merged, over the whole recording
        meta = {**request.meta, "duration": chunk.num_frames * loaded.clip_length,
                PART_OF_RECORDING: True}  # fmt: skip
        features = request.audio.features[chunk.start : chunk.stop]
        yield {
            "meta": meta,
            "model_inputs": build_model_inputs(request.text, features, loaded.limits),
        }


def predict_requests(
    loaded: LoadedModel,
    requests: Sequence[ChunkedRequest],
    batch_size: int = DEFAULT_BATCH_SIZE,
    nms_iou: float = DEFAULT_NMS_IOU,
) -> list[dict[str, Any]]:
    """One result per request: its line plus ``pred_saliency_scores`` (one per frame read)."""
    items = (item for request in requests for item in _request_items(loaded, request))
    outputs = forward_items(loaded, items, batch_size)
    refine = check_prior_refine(loaded.opt)
    results = []
    for request in requests:
        parts = [next(outputs) for _ in request.chunks]
        if len(parts) == 1:
            results.append({**parts[0].line, "pred_saliency_scores": parts[0].saliency.tolist()})
            continue
        windows = merge_chunk_moments(
            [part.line["pred_relevant_windows"] for part in parts],
            request.chunks,
            loaded.clip_length,
            request.audio.duration,
            nms_iou,
        )
        if refine:
            similarity = stitch_frame_values([p.similarity for p in parts], request.chunks)
            windows = refine_rows(
                windows, similarity, loaded.clip_length, refine, request.audio.duration
            )
        saliency = stitch_frame_values([part.saliency for part in parts], request.chunks)
        results.append(
            {
                **parts[0].line,
                "pred_relevant_windows": [[round(x, 4) for x in row] for row in windows],
                "pred_saliency_scores": saliency.tolist(),
                "num_chunks": len(request.chunks),
            }
        )
    return results


def predict_queries(
    loaded: LoadedModel,
    audio: EncodedAudio,
    queries: Sequence[str],
    texts: Sequence[torch.Tensor],
    *,
    batch_size: int = DEFAULT_BATCH_SIZE,
    truncate: bool = False,
    overlap: int | None = None,
    nms_iou: float = DEFAULT_NMS_IOU,
) -> list[dict[str, Any]]:
    """Moments of each query in one encoded recording, all queries in shared forward passes.

    ``texts`` are the queries' L2-normalised token rows (``[tokens, dim]`` each). Returns one dict
    per query: ``query``, ``pred_relevant_windows`` (``[start, end, score]`` seconds, best first),
    ``pred_saliency_scores`` (one per frame), and ``num_chunks`` when the recording was chunked.
    """
    if len(queries) != len(texts):
        raise ValueError(f"{len(queries)} queries but {len(texts)} encoded texts")
    requests = [
        plan_request(
            loaded,
            {"qid": i, "query": query, "vid": audio.name, "duration": audio.duration},
            text,
            audio,
            truncate,
            overlap,
        )
        for i, (query, text) in enumerate(zip(queries, texts, strict=True))
    ]
    results = predict_requests(loaded, requests, batch_size, nms_iou)
    for result in results:
        result.pop("qid", None)
        result.pop("vid", None)
    return results
