"""From a config to DataLoaders: feature stores, validated annotations, batching."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, NamedTuple

import torch
from torch.utils.data import DataLoader

from lighthouse_audio.data.annotations import load_queries
from lighthouse_audio.data.collate import collate
from lighthouse_audio.data.dataset import MomentDataset
from lighthouse_audio.data.feature_manifest import check_against_config
from lighthouse_audio.data.feature_store import FeatureStore


class FeatureStores(NamedTuple):
    audio: FeatureStore
    text: FeatureStore


def build_feature_stores(
    opt: Mapping[str, Any],
    audio_dir: str | Path | None = None,
    text_dir: str | Path | None = None,
    whole_recordings: bool = False,
) -> FeatureStores:
    """Stores for the config's feature folders (or the given ones), checked against its dims.

    Audio is read up to ``max_a_l`` frames (all a model can use at once), or whole with
    ``whole_recordings`` (for chunked prediction of long recordings).
    """
    audio_dir = audio_dir or opt["a_feat_dirs"][0]
    text_dir = text_dir or opt["t_feat_dir"]
    check_against_config(Path(audio_dir), opt)
    max_audio = None if whole_recordings else opt["max_a_l"]
    audio = FeatureStore(audio_dir, "features", max_len=max_audio, dim=opt["a_feat_dim"])
    text = FeatureStore(
        text_dir, "last_hidden_state", max_len=opt["max_q_l"], dim=opt["t_feat_dim"]
    )
    return FeatureStores(audio, text)


def build_dataset(
    opt: Mapping[str, Any],
    annotation_path: str | Path,
    stores: FeatureStores,
    load_labels: bool = True,
    require_windows: bool = True,
    saliency_clip: str = "clip_length",
) -> MomentDataset:
    """The annotations at ``annotation_path`` over ``stores``; ``saliency_clip``: see
    ``MomentDataset`` (a model's ``dataset_options``, models/training_inputs.py)."""
    queries = load_queries(
        annotation_path, require_windows=require_windows, has_features=stores.audio.exists
    )
    return MomentDataset(
        queries,
        stores.audio,
        stores.text,
        max_q_l=opt["max_q_l"],
        max_v_l=opt["max_v_l"],
        max_a_l=opt["max_a_l"],
        max_windows=opt["max_windows"],
        clip_length=opt["clip_length"],
        load_labels=load_labels,
        saliency_clip=saliency_clip,
    )


def build_loader(
    dataset: MomentDataset,
    batch_size: int,
    shuffle: bool,
    num_workers: int = 0,
    generator: torch.Generator | None = None,
) -> DataLoader:
    return DataLoader(
        dataset,
        batch_size=batch_size,
        shuffle=shuffle,
        num_workers=num_workers,
        collate_fn=collate,
        generator=generator,
        persistent_workers=num_workers > 0,
    )
