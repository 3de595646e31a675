"""Validation on whole recordings: what ``best.ckpt`` is picked on when training and use differ.

Lighthouse validates on each recording's first ``max_v_l`` frames. A model trained on short clips
and used on long recordings (the demo: 10 s clips, 60 s recordings) is then picked on clips like
its training data, not on what it will do: score windows across overlapping chunks of a
recording and rank them against each other. With ``eval_whole_recordings=true`` validation
predicts each ``eval_path`` recording whole, longer ones in the chunks ``lighthouse infer`` uses
(``prediction/split.py``), so the epoch kept is the one that does best on whole recordings.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn

from lighthouse_audio.data.layout import FeatureLayout
from lighthouse_audio.data.limits import LengthLimits

__all__ = ["WholeRecordingValidation", "eval_feature_dirs"]


def eval_feature_dirs(opt: Any) -> tuple[Path, Path]:
    """``(audio folder, text folder)`` of ``eval_path``'s features: under ``eval_features_root``
    when set (the layout of ``features_root``), else the training features' own folders."""
    root = opt.get("eval_features_root")
    if not root:
        return Path(opt["a_feat_dirs"][0]), Path(opt["t_feat_dir"])
    dataset_root = Path(root) / str(opt["dset_name"])
    text = FeatureLayout(dataset_root, str(opt["t_feat_type"])).text_dir
    return dataset_root / str(opt["a_feat_types"]), text


class WholeRecordingValidation:
    """``eval_path``'s queries over whole recordings; :meth:`predict` scores a model on them."""

    def __init__(self, opt: Any, postprocessor: Any, device: torch.device) -> None:
        from lighthouse_audio.data.loaders import build_dataset, build_feature_stores

        audio_dir, text_dir = eval_feature_dirs(opt)
        stores = build_feature_stores(opt, audio_dir, text_dir, whole_recordings=True)
        self.dataset = build_dataset(opt, opt["eval_path"], stores, load_labels=False)
        self.opt = opt
        self.postprocessor = postprocessor
        self.device = device
        self.ground_truth = [q.to_dict() for q in self.dataset.queries]

    def predict(self, model: nn.Module, progress: bool = False) -> list[dict]:
        """Prediction lines for every query, in ``eval_path`` order."""
        from lighthouse_audio.prediction.model import LoadedModel
        from lighthouse_audio.prediction.split import predict_dataset

        loaded = LoadedModel(
            model=model,
            postprocessor=self.postprocessor,
            opt=self.opt,
            source=Path(self.opt["eval_path"]),
            device=self.device,
            limits=LengthLimits.from_config(self.opt),
        )
        return predict_dataset(
            loaded, self.dataset, int(self.opt["eval_bsz"]), progress=progress, announce=False
        )
