"""Predict moments in your own recordings with a trained checkpoint (Lighthouse's predictor API).

>>> model = QDDETRPredictor("best.ckpt", device="cpu", feature_name="clap")  # doctest: +SKIP
>>> audio = model.encode_audio("recording.wav")  # doctest: +SKIP
>>> model.predict("spectators cheer in a stadium", audio)["pred_relevant_windows"][0]  # +SKIP
[12.0, 19.0, 0.8731]

Audio is cut and encoded exactly as ``lighthouse extract`` does (same encoder, window, hop and
frame convention), then normalised, truncated and fed to the model as the training data were.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from lighthouse_audio.audio.io import audio_info
from lighthouse_audio.data.features import l2_normalize_rows
from lighthouse_audio.data.targets import temporal_endpoint_features
from lighthouse_audio.engine.checkpoint import load_checkpoint, load_model_weights
from lighthouse_audio.extraction.pipeline import encode_recording
from lighthouse_audio.models.bundle import build_model_bundle
from lighthouse_audio.registry import FEATURES


class MomentPredictor:
    """A trained moment-retrieval model plus the encoder its features came from."""

    model_name: str | None = None  # subclasses pin the model they accept

    def __init__(
        self,
        ckpt_path: str | Path,
        device: str = "cpu",
        feature_name: str | None = None,
        frames: str | None = None,
        **encoder_options: Any,
    ) -> None:
        import lighthouse_audio.builtins  # noqa: F401 - registers built-in plugins

        ckpt_path = Path(ckpt_path)
        ckpt = load_checkpoint(ckpt_path)
        if "opt" not in ckpt:
            raise ValueError(f"{ckpt_path}: checkpoint carries no 'opt' config")
        self.opt = ckpt["opt"]
        if self.model_name and self.opt.get("model_name") != self.model_name:
            raise ValueError(
                f"{ckpt_path}: a '{self.opt.get('model_name')}' checkpoint, not '{self.model_name}'"
            )
        self.device = torch.device(device)
        self.model, _, self.postprocessor = build_model_bundle(self.opt)
        load_model_weights(self.model, ckpt["model"], ckpt_path)
        self.model.to(self.device).eval()

        self.feature_name = feature_name or self.opt.get("a_feat_types")
        spec = FEATURES.get(self.feature_name)
        if spec.encoder is None:
            raise ValueError(f"feature '{self.feature_name}' has no encoder to compute it")
        self.encoder = spec.encoder(**encoder_options).to(self.device)
        dims = (self.encoder.audio_dim, self.encoder.text_dim)
        expected = (self.opt["a_feat_dim"], self.opt["t_feat_dim"])
        if dims != expected:
            raise ValueError(
                f"{ckpt_path}: model expects audio/text dims {expected}, "
                f"encoder '{self.feature_name}' gives {dims}"
            )
        self.frames = frames or self.encoder.frames

    def encode_audio(self, path: str | Path, batch_size: int = 64) -> dict[str, Any]:
        """``{"audio_feats" (L, D) normalised, "frame_times" (L, 2), "duration", "path"}``."""
        clip_length = float(self.opt["clip_length"])
        features, times = encode_recording(
            self.encoder, Path(path), self.encoder.window, clip_length, self.frames, batch_size
        )
        max_len = min(int(self.opt["max_a_l"]), int(self.opt["max_v_l"]))
        if len(features) > max_len:
            # The model has position embeddings for max_v_l frames only, as in Lighthouse.
            features, times = features[:max_len], times[:max_len]
        # Predictions are scaled by the recording's duration, as Lighthouse scales by the jsonl's.
        duration = min(audio_info(path).duration, len(features) * clip_length)
        return {
            "audio_feats": torch.from_numpy(l2_normalize_rows(features)),
            "frame_times": times,
            "duration": duration,
            "path": str(path),
        }

    @torch.inference_mode()
    def predict(self, query: str, inputs: dict[str, Any]) -> dict[str, Any]:
        """Moments for ``query`` in an encoded recording: ``pred_relevant_windows``
        (``[start, end, score]``, seconds, best first) and per-frame ``pred_saliency_scores``."""
        if not query or not query.strip():
            raise ValueError("empty query: describe the sound to look for")
        text = self.encoder.encode_text([query])[0][: int(self.opt["max_q_l"])]
        text = torch.from_numpy(l2_normalize_rows(np.asarray(text, dtype=np.float32)))
        audio = inputs["audio_feats"]
        length = audio.shape[0]
        model_inputs = {
            "src_txt": text[None],
            "src_txt_mask": torch.ones(1, text.shape[0]),
            "src_vid": temporal_endpoint_features(length)[None],
            "src_vid_mask": torch.ones(1, length),
            "src_aud": audio[None],
            "src_aud_mask": torch.ones(1, length),
        }
        model_inputs = {k: v.to(self.device) for k, v in model_inputs.items()}
        outputs = self.model(**model_inputs)
        meta = {
            "qid": 0,
            "query": query,
            "vid": inputs.get("path", ""),
            "duration": inputs["duration"],
        }
        line = self.postprocessor(outputs, [meta])[0]
        return {
            "query": query,
            "pred_relevant_windows": line["pred_relevant_windows"],
            "pred_saliency_scores": outputs["saliency_scores"][0, :length].cpu().tolist(),
        }


class QDDETRPredictor(MomentPredictor):
    """Lighthouse's ``QDDETRPredictor(ckpt, device, feature_name)`` for AM-DETR checkpoints."""

    model_name = "qd_detr"
