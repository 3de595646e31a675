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
    batched as validation does, then recordings longer than the span again in chunks, unless
    ``truncate``; ``announce`` says how many were chunked."""
    from lighthouse_audio.data.loaders import build_loader
    from lighthouse_audio.engine.validation import predict

    batch_size = batch_size or int(loaded.opt.eval_bsz)
    loader = build_loader(dataset, batch_size, shuffle=False)
    predictions = predict(loaded.model, loader, loaded.postprocessor, loaded.device, progress)
    if not truncate:
        predict_long_recordings(loaded, dataset, predictions, batch_size, overlap, announce)
    return predictions


def predict_long_recordings(
    loaded: LoadedModel,
    dataset: Any,
    predictions: list[dict],
    batch_size: int,
    overlap: int | None,
    announce: bool = True,
) -> None:
    """Replace the lines of queries on recordings longer than the span by chunked predictions."""
    import torch

    from lighthouse_audio.prediction.run import EncodedAudio, plan_request, predict_requests

    span = loaded.span
    if span is None:
        return
    long = [i for i, q in enumerate(dataset.queries) if len(dataset.audio_store.get(q.vid)) > span]
    if not long:
        return
    recordings = {dataset.queries[i].vid for i in long}
    if announce:
        print(
            f"lighthouse: {len(recordings)} recording(s) longer than the model's span "
            f"({span} frames, {span * loaded.clip_length:g} s): predicted in overlapping chunks "
            "(--truncate for Lighthouse's first-span-only predictions)"
        )
    requests = []
    for i in long:
        query = dataset.queries[i]
        meta = {k: predictions[i][k] for k in ("qid", "query", "vid")} | {
            "duration": query.duration
        }
        audio = EncodedAudio(
            torch.from_numpy(dataset.audio_store.get(query.vid)), query.duration, query.vid
        )
        text = torch.from_numpy(dataset.text_store.get(dataset.text_name(query)))
        requests.append(plan_request(loaded, meta, text, audio, overlap=overlap))
    for i, result in zip(long, predict_requests(loaded, requests, batch_size), strict=True):
        predictions[i] = {k: result[k] for k in ("qid", "query", "vid", "pred_relevant_windows")}
