"""Predict an annotated split of precomputed features with a loaded checkpoint.

What ``lighthouse infer`` and the demo run: the split's queries in batches as validation does,
then every query whose recording is longer than the model's span predicted again in overlapping
chunks over the whole recording (:mod:`.run`), unless ``truncate`` keeps Lighthouse's
first-span-only predictions.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from lighthouse_audio.prediction.model import LoadedModel

__all__ = ["predict_dataset", "predict_split", "split_dataset"]


def predict_split(
    loaded: LoadedModel,
    jsonl: Path,
    features: Path,
    batch_size: int | None = None,
    *,
    truncate: bool = False,
    overlap: int | None = None,
    require_windows: bool = False,
    progress: bool = True,
) -> tuple[list[dict], list[dict]]:
    """``(predictions, ground truth)`` for ``jsonl``, features under ``features`` (the folder of
    ``<a_feat_types>/`` and ``<t_feat_type>_text/``)."""
    dataset = split_dataset(
        loaded.opt, jsonl, features, whole_recordings=not truncate, require_windows=require_windows
    )
    predictions = predict_dataset(
        loaded, dataset, batch_size, truncate=truncate, overlap=overlap, progress=progress
    )
    return predictions, [q.to_dict() for q in dataset.queries]


def split_dataset(
    opt: Any, jsonl: Path, features: Path, *, whole_recordings: bool, require_windows: bool
) -> Any:
    """The queries of ``jsonl`` over the features under ``features``, unlabelled (predicting
    needs no targets); recordings read whole with ``whole_recordings``, else their first
    ``max_a_l`` frames."""
    from lighthouse_audio.data.loaders import build_dataset, build_feature_stores

    stores = build_feature_stores(
        opt,
        audio_dir=features / str(opt.a_feat_types),
        text_dir=features / f"{opt.t_feat_type}_text",
        whole_recordings=whole_recordings,
    )
    return build_dataset(opt, jsonl, stores, load_labels=False, require_windows=require_windows)


def predict_dataset(
    loaded: LoadedModel,
    dataset: Any,
    batch_size: int | None = None,
    *,
    truncate: bool = False,
    overlap: int | None = None,
    progress: bool = True,
    announce: bool = True,
) -> list[dict]:
    """Prediction lines for every query of ``dataset`` (from :func:`split_dataset`), in order:
    queries on recordings within the span batched as validation does, longer recordings in
    overlapping chunks, unless ``truncate`` predicts every query on its first span alone;
    ``announce`` says how many were chunked."""
    from torch.utils.data import Subset

    from lighthouse_audio.data.loaders import build_loader
    from lighthouse_audio.engine.validation import predict, prediction_mode

    batch_size = batch_size or int(loaded.opt.eval_bsz)
    long = [] if truncate else long_recording_queries(loaded, dataset)
    chunked = set(long)
    batched = [i for i in range(len(dataset.queries)) if i not in chunked]
    predictions: list[dict | None] = [None] * len(dataset.queries)
    if batched:
        # A long recording's first span would be predicted only to be replaced by its chunks.
        subset = dataset if not long else Subset(dataset, batched)
        loader = build_loader(subset, batch_size, shuffle=False)
        lines = predict(loaded.model, loader, loaded.postprocessor, loaded.device, progress)
        for i, line in zip(batched, lines, strict=True):
            predictions[i] = line
    if long:
        if announce:
            recordings = {dataset.queries[i].vid for i in long}
            print(
                f"lighthouse: {len(recordings)} recording(s) longer than the model's span "
                f"({loaded.span} frames, {loaded.span * loaded.clip_length:g} s): predicted in "
                "overlapping chunks (--truncate for Lighthouse's first-span-only predictions)"
            )
        with prediction_mode(loaded.model):  # the batched pass may not have run to set it
            chunked_lines = predict_long_recordings(loaded, dataset, long, batch_size, overlap)
        for i, line in zip(long, chunked_lines, strict=True):
            predictions[i] = line
    return predictions  # type: ignore[return-value]


def long_recording_queries(loaded: LoadedModel, dataset: Any) -> list[int]:
    """Indices of the queries whose recording is longer than the model's span."""
    span = loaded.span
    if span is None:
        return []
    return [i for i, q in enumerate(dataset.queries) if len(dataset.audio_store.get(q.vid)) > span]


def predict_long_recordings(
    loaded: LoadedModel, dataset: Any, long: list[int], batch_size: int, overlap: int | None
) -> list[dict]:
    """Prediction lines of the queries ``long`` (indices into ``dataset.queries``), each over its
    whole recording in overlapping chunks."""
    import torch

    from lighthouse_audio.prediction.run import EncodedAudio, plan_request, predict_requests

    requests = []
    for i in long:
        query = dataset.queries[i]
        meta = {"qid": query.qid, "query": query.query, "vid": query.vid,
                "duration": query.duration}  # fmt: skip
        audio = EncodedAudio(
            torch.from_numpy(dataset.audio_store.get(query.vid)), query.duration, query.vid
        )
        text = torch.from_numpy(dataset.text_store.get(dataset.text_name(query)))
        requests.append(plan_request(loaded, meta, text, audio, overlap=overlap))
    return [
        {k: result[k] for k in ("qid", "query", "vid", "pred_relevant_windows")}
        for result in predict_requests(loaded, requests, batch_size)
    ]
