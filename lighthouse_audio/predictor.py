"""Predict moments in your own recordings with a trained checkpoint (Lighthouse's predictor API).

>>> model = QDDETRPredictor("clap_qd_detr_clotho-moment", device="cpu", feature_name="clap")
>>> audio = model.encode_audio("recording.wav")  # doctest: +SKIP
>>> model.predict("spectators cheer in a stadium", audio)["pred_relevant_windows"][0]
[12.0, 19.0, 0.8731]  # doctest: +SKIP
>>> model.predict(["a dog barks", "a door slams"], audio)  # one forward pass for both
[{...}, {...]  # doctest: +SKIP

The checkpoint is a path or a ``lighthouse models`` name (downloaded on first use). Audio is cut
and encoded as the training features were: window, hop and frame convention come from the
feature manifest the checkpoint records, else from the encoder's defaults (Lighthouse's own
checkpoints: the released centre-padded 1 s windows). Recordings of any length work: longer than
the model's span, they are predicted in overlapping chunks and merged (``prediction.chunks``).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from lighthouse_audio.audio.decode import audio_info
from lighthouse_audio.data.feature_store import l2_normalize_rows
from lighthouse_audio.encoders.base import AudioTextEncoder
from lighthouse_audio.extraction.extract import encode_recording
from lighthouse_audio.prediction.chunks import DEFAULT_NMS_IOU
from lighthouse_audio.prediction.model import LoadedModel, load_model
from lighthouse_audio.prediction.queries import check_queries
from lighthouse_audio.prediction.run import DEFAULT_BATCH_SIZE, EncodedAudio, predict_queries
from lighthouse_audio.registry import FEATURES

__all__ = [
    "CGDETRPredictor",
    "EaTRPredictor",
    "EncodedAudio",
    "MomentDETRPredictor",
    "MomentPredictor",
    "QDDETRPredictor",
    "TaskWeavePredictor",
    "TRDETRPredictor",
    "UVCOMPredictor",
    "build_encoder",
]


def build_encoder(
    loaded: LoadedModel, feature_name: str | None = None, **encoder_options: Any
) -> AudioTextEncoder:
    """The encoder that makes the checkpoint's features, checked against it (dims, weights)."""

    name = feature_name or loaded.feature_name
    spec = FEATURES.get(name)
    if spec.encoder is None:
        raise ValueError(f"feature '{name}' has no encoder to compute it")
    encoder = spec.encoder(**encoder_options).to(loaded.device)
    dims = (encoder.audio_dim, encoder.text_dim)
    expected = (int(loaded.opt["a_feat_dim"]), int(loaded.opt["t_feat_dim"]))
    if dims != expected:
        raise ValueError(
            f"{loaded.source}: model expects audio/text dims {expected}, "
            f"encoder '{name}' gives {dims}"
        )
    manifest = loaded.feature_manifest
    if manifest is not None:
        if manifest.feature != name:
            raise ValueError(
                f"{loaded.source}: trained on '{manifest.feature}' features, not '{name}'"
            )
        if manifest.weights_id not in ("unknown", encoder.weights_id()):
            raise ValueError(
                f"{loaded.source}: trained on features from weights {manifest.weights_id}, but "
                f"the '{name}' encoder has weights {encoder.weights_id()}"
            )
    return encoder


class MomentPredictor:
    """A trained moment-retrieval model plus the encoder its features came from.

    Args:
        ckpt_path: checkpoint path, ``hf://OWNER/REPO/FILE`` or a ``lighthouse models`` name.
        device: ``cpu``, ``cuda``, ``cuda:N`` or ``auto``.
        feature_name: the feature (encoder) to use; default: the checkpoint's.
        frames: frame convention override (``center``/``none``); default: what the checkpoint
            records, else the encoder's.
        truncate: Lighthouse's behaviour for long recordings (only the first ``span`` frames)
            instead of chunked prediction.
        overlap: frames shared by neighbouring chunks (default: half the span).
        prior_score_mix: weight of the joint prior in moment scores instead of the checkpoint's
            (``models/prior_score.py``).
        prior_refine: redraw windows around their most similar frame with this ratio instead of
            the checkpoint's (``models/prior_refine.py``).
        encoder_options: passed to the encoder (e.g. ``weights=...``).
    """

    model_name: str | None = None  # subclasses pin the model they accept

    def __init__(
        self,
        ckpt_path: str | os.PathLike,
        device: str = "cpu",
        feature_name: str | None = None,
        frames: str | None = None,
        truncate: bool = False,
        overlap: int | None = None,
        batch_size: int = DEFAULT_BATCH_SIZE,
        nms_iou: float = DEFAULT_NMS_IOU,
        prior_score_mix: float | None = None,
        prior_refine: float | None = None,
        **encoder_options: Any,
    ) -> None:
        self.loaded = load_model(
            ckpt_path, device=device, model_name=self.model_name,
            prior_score_mix=prior_score_mix, prior_refine=prior_refine,
        )  # fmt: skip
        self.opt = self.loaded.opt
        self.device = self.loaded.device
        self.encoder = build_encoder(self.loaded, feature_name, **encoder_options)
        manifest = self.loaded.feature_manifest
        self.frames = frames or (manifest.frames if manifest else self.encoder.frames)
        self.window = manifest.window if manifest else self.encoder.window
        self.truncate = truncate
        self.overlap = overlap
        self.batch_size = batch_size
        self.nms_iou = nms_iou

    @property
    def model(self) -> torch.nn.Module:
        return self.loaded.model

    def encode_audio(self, path: str | os.PathLike, batch_size: int = 64) -> EncodedAudio:
        """Encode a whole recording (any length): features, frame times and duration."""
        path = Path(path)
        features, times = encode_recording(
            self.encoder, path, self.window, self.loaded.clip_length, self.frames, batch_size
        )
        # Predictions are scaled to the seconds the model saw (Lighthouse scales by the
        # annotation's duration, which the frames cover).
        seen = len(features)
        if self.truncate and self.loaded.span is not None:
            seen = min(seen, self.loaded.span)
        duration = min(audio_info(path).duration, seen * self.loaded.clip_length)
        return EncodedAudio(
            features=torch.from_numpy(l2_normalize_rows(features)),
            duration=duration,
            name=str(path),
            frame_times=times,
        )

    def encode_text(self, queries: Sequence[str]) -> list[torch.Tensor]:
        """L2-normalised token rows of each query (as the text features were stored)."""
        states = self.encoder.encode_text(list(queries))
        return [
            torch.from_numpy(l2_normalize_rows(np.asarray(s, dtype=np.float32))) for s in states
        ]

    def predict(
        self, query: str | Sequence[str], inputs: EncodedAudio | Mapping[str, Any]
    ) -> dict[str, Any] | list[dict[str, Any]]:
        """Moments for one query (a dict) or several (a list, one forward pass for all).

        Each result: ``query``; ``pred_relevant_windows``, ``[start, end, score]`` in seconds,
        best first; ``pred_saliency_scores``, one per frame of the recording.
        """
        single = isinstance(query, str)
        queries = check_queries([query] if single else list(query))
        audio = inputs if isinstance(inputs, EncodedAudio) else _from_mapping(inputs)
        results = predict_queries(
            self.loaded, audio, queries, self.encode_text(queries), batch_size=self.batch_size,
            truncate=self.truncate, overlap=self.overlap, nms_iou=self.nms_iou,
        )  # fmt: skip
        return results[0] if single else results


def _from_mapping(inputs: Mapping[str, Any]) -> EncodedAudio:
    """Lighthouse-style ``{"audio_feats", "duration"}`` inputs."""
    feats = inputs["audio_feats"]
    feats = feats if isinstance(feats, torch.Tensor) else torch.as_tensor(np.asarray(feats))
    return EncodedAudio(
        features=feats.float(),
        duration=float(inputs["duration"]),
        name=str(inputs.get("path", "")),
        frame_times=inputs.get("frame_times"),
    )


class QDDETRPredictor(MomentPredictor):
    """Lighthouse's ``QDDETRPredictor(ckpt, device, feature_name)`` for AM-DETR checkpoints."""

    model_name = "qd_detr"


class EaTRPredictor(MomentPredictor):
    """Lighthouse's ``EaTRPredictor(ckpt, device, feature_name)`` for EaTR checkpoints."""

    model_name = "eatr"


class CGDETRPredictor(MomentPredictor):
    """Lighthouse's ``CGDETRPredictor(ckpt, device, feature_name)`` for CG-DETR checkpoints
    (predicts without the training-only negative pass, as Lighthouse's predictor does)."""

    model_name = "cg_detr"


class MomentDETRPredictor(MomentPredictor):
    """Lighthouse's ``MomentDETRPredictor(ckpt, device, feature_name)`` for Moment-DETR
    checkpoints."""

    model_name = "moment_detr"


class TRDETRPredictor(MomentPredictor):
    """Lighthouse's ``TRDETRPredictor(ckpt, device, feature_name)`` for TR-DETR checkpoints."""

    model_name = "tr_detr"


class TaskWeavePredictor(MomentPredictor):
    """Lighthouse's ``TaskWeavePredictor(ckpt, device, feature_name)`` for TaskWeave checkpoints
    of either variant (both record ``model_name: taskweave``; ``mr2hd`` says which). Predicts
    with the inference branch (no epoch), as Lighthouse's predictor passes ``epoch_i=None``."""

    model_name = "taskweave"


class UVCOMPredictor(MomentPredictor):
    """Lighthouse's ``UVCOMPredictor(ckpt, device, feature_name)`` for UVCOM checkpoints (30
    windows per query; predicts without the training-only negative pass)."""

    model_name = "uvcom"
