"""The predictor gives the same moments as extract -> infer on the same recording and query."""

import json
from pathlib import Path

import pytest
import torch

from lighthouse_audio.cli.main import main
from lighthouse_audio.config import load_config
from lighthouse_audio.engine.train import lighthouse_checkpoint
from lighthouse_audio.features import FeatureSpec
from lighthouse_audio.models.bundle import build_model_bundle
from lighthouse_audio.predictor import QDDETRPredictor
from lighthouse_audio.registry import FEATURES
from lighthouse_audio.testing.dummies import ToyEncoder, write_tone

pytestmark = pytest.mark.usefixtures("toy_feature")


@pytest.fixture
def checkpoint(tmp_path) -> Path:
    opt = load_config(
        "qd_detr", "custom", "clap", ["a_feat_types=toy", "t_feat_type=toy", "a_feat_dim=8",
                                      "t_feat_dim=4", "max_v_l=20", "max_a_l=20"],
    )  # fmt: skip
    torch.manual_seed(3)
    model = build_model_bundle(opt).model
    optimizer = torch.optim.AdamW(model.parameters())
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, 400)
    path = tmp_path / "toy.ckpt"
    torch.save(lighthouse_checkpoint(model, optimizer, scheduler, 0, opt), path)
    return path


def test_predictor_matches_extract_then_infer(tmp_path, checkpoint):
    audio_dir = tmp_path / "audio"
    audio_dir.mkdir()
    write_tone(audio_dir / "rec.wav", 12.0, freq=700)
    query = "a steady tone hums"
    ann = tmp_path / "ann.jsonl"
    ann.write_text(json.dumps({"qid": 1, "query": query, "duration": 12.0, "vid": "rec",
                               "relevant_windows": [[2.0, 5.0]]}))  # fmt: skip
    feats = tmp_path / "features"
    extract = ["extract", "--feature", "toy", "--audio-dir", str(audio_dir), "--jsonl", str(ann)]
    assert main([*extract, "--out", str(feats), "--no-progress"]) == 0
    out = tmp_path / "preds.jsonl"
    infer = ["infer", "--checkpoint", str(checkpoint), "--jsonl", str(ann), "--features"]
    assert main([*infer, str(feats), "--out", str(out), "--no-progress"]) == 0
    expected = json.loads(out.read_text())["pred_relevant_windows"]

    predictor = QDDETRPredictor(checkpoint, device="cpu", feature_name="toy")
    audio = predictor.encode_audio(audio_dir / "rec.wav")
    assert audio["audio_feats"].shape == (13, 8)  # 12 s, centre-padded 1 s windows
    prediction = predictor.predict(query, audio)
    assert prediction["pred_relevant_windows"] == expected
    assert len(prediction["pred_saliency_scores"]) == 13
    scores = [w[2] for w in prediction["pred_relevant_windows"]]
    assert scores == sorted(scores, reverse=True)


def test_long_recording_truncated_to_model_length(tmp_path, checkpoint):
    write_tone(tmp_path / "long.wav", 30.0)
    predictor = QDDETRPredictor(checkpoint, feature_name="toy")
    audio = predictor.encode_audio(tmp_path / "long.wav")
    assert audio["audio_feats"].shape[0] == 20 and audio["duration"] == 20.0
    windows = predictor.predict("tone", audio)["pred_relevant_windows"]
    assert all(0 <= s <= e for s, e, _ in windows)


def test_empty_query_and_wrong_encoder_are_clear_errors(tmp_path, checkpoint):
    predictor = QDDETRPredictor(checkpoint, feature_name="toy")
    write_tone(tmp_path / "a.wav", 3.0)
    with pytest.raises(ValueError, match="empty query"):
        predictor.predict("  ", predictor.encode_audio(tmp_path / "a.wav"))
    wide = FeatureSpec("toy-wide", "audio", 16, 4, encoder=lambda **kw: WideToy())
    FEATURES.add("toy-wide", wide, domain="audio")
    try:
        with pytest.raises(ValueError, match=r"expects audio/text dims \(8, 4\).*\(16, 4\)"):
            QDDETRPredictor(checkpoint, feature_name="toy-wide")
    finally:
        FEATURES._entries.pop("toy-wide")


class WideToy(ToyEncoder):
    audio_dim = 16
