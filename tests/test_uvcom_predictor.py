"""UVCOM through the predictor and ``lighthouse predict``: the same moments as extract ->
infer, long recordings in chunks, and checkpoints of another model refused in one line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from lighthouse_audio.cli.main import main
from lighthouse_audio.config import load_config
from lighthouse_audio.engine.checkpoint import CheckpointError
from lighthouse_audio.engine.train import lighthouse_checkpoint
from lighthouse_audio.models.bundle import build_model_bundle
from lighthouse_audio.models.uvcom import UVCOM
from lighthouse_audio.predictor import QDDETRPredictor, UVCOMPredictor
from lighthouse_audio.testing.dummies import write_tone
from tests.test_predictor import TOY_OVERRIDES, toy_checkpoint

pytestmark = pytest.mark.usefixtures("toy_feature")


def uvcom_checkpoint(path: Path) -> Path:
    """A UVCOM checkpoint (random weights) on ``toy`` features, span 20 frames."""
    opt = load_config("uvcom", "custom", "clap", [*TOY_OVERRIDES, "max_v_l=20", "max_a_l=20"])
    torch.manual_seed(3)
    model = build_model_bundle(opt).model
    assert isinstance(model, UVCOM)
    optimizer = torch.optim.AdamW(model.parameters())
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, 100)
    torch.save(lighthouse_checkpoint(model, optimizer, scheduler, 0, opt), path)
    return path


@pytest.fixture
def checkpoint(tmp_path) -> Path:
    return uvcom_checkpoint(tmp_path / "uvcom.ckpt")


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

    predictor = UVCOMPredictor(checkpoint, device="cpu", feature_name="toy")
    prediction = predictor.predict(query, predictor.encode_audio(audio_dir / "rec.wav"))
    assert prediction["pred_relevant_windows"] == expected
    assert len(expected) == 30  # UVCOM's 30 queries, all kept (as Lighthouse's evaluation)
    assert predictor.model.negative_pass is False  # the training-only pass is skipped
    assert len(prediction["pred_saliency_scores"]) == 13


def test_long_recording_is_predicted_in_chunks(tmp_path, checkpoint):
    write_tone(tmp_path / "long.wav", 45.0)
    predictor = UVCOMPredictor(checkpoint, feature_name="toy")  # span: 20 frames
    audio = predictor.encode_audio(tmp_path / "long.wav")
    assert audio.num_frames == 46
    results = predictor.predict(["tone", "a dog barks"], audio)
    for result in results:
        windows = result["pred_relevant_windows"]
        assert result["num_chunks"] == 4  # starts 0, 10, 20, 26
        assert len(result["pred_saliency_scores"]) == 46
        assert all(0 <= s <= e <= 45.0 for s, e, _ in windows)
        assert max(e for _, e, _ in windows) > 20.0  # moments beyond the first span exist
        assert [w[2] for w in windows] == sorted((w[2] for w in windows), reverse=True)


def test_predict_command_on_a_long_recording(tmp_path, checkpoint, capsys):
    write_tone(tmp_path / "long.wav", 45.0, freq=900)
    out = tmp_path / "moments.jsonl"
    code = main(["predict", str(tmp_path / "long.wav"), "--query", "a tone", "--checkpoint",
                 str(checkpoint), "--jsonl", str(out), "--no-progress"])  # fmt: skip
    assert code == 0
    assert "predicted in 4 overlapping chunks" in capsys.readouterr().out
    (line,) = [json.loads(x) for x in out.read_text().splitlines()]
    assert line["duration"] == 45.0 and len(line["pred_saliency_scores"]) == 46


def test_each_predictor_refuses_the_other_models_checkpoint(tmp_path, checkpoint):
    with pytest.raises(CheckpointError, match="a 'uvcom' checkpoint, not 'qd_detr'") as err:
        QDDETRPredictor(checkpoint, feature_name="toy")
    assert "\n" not in str(err.value)
    qd = toy_checkpoint(tmp_path / "qd.ckpt")
    with pytest.raises(CheckpointError, match="a 'qd_detr' checkpoint, not 'uvcom'"):
        UVCOMPredictor(qd, feature_name="toy")
