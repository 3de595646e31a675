"""TaskWeave through the predictor and ``lighthouse predict``: the same moments as extract ->
infer for both variants (the inference branch, at padded lengths other than 75 included), long
recordings in chunks, and checkpoints of another model refused in one line."""

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
from lighthouse_audio.models.taskweave import VARIANTS, TaskWeave
from lighthouse_audio.predictor import QDDETRPredictor, TaskWeavePredictor
from lighthouse_audio.testing.dummies import write_tone
from tests.test_predictor import TOY_OVERRIDES, toy_checkpoint

pytestmark = pytest.mark.usefixtures("toy_feature")

SMALL = ["dim_feedforward=64", "max_v_l=20", "max_a_l=20"]


def taskweave_checkpoint(path: Path, variant: str) -> Path:
    """A TaskWeave checkpoint (random weights) on ``toy`` features, span 20 frames."""
    opt = load_config(variant, "custom", "clap", [*TOY_OVERRIDES, *SMALL])
    torch.manual_seed(3)
    model = build_model_bundle(opt).model  # opt.model_name is Lighthouse's "taskweave"
    assert isinstance(model, TaskWeave) and model.mr2hd is VARIANTS[variant]
    optimizer = torch.optim.AdamW(model.parameters())
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, 400)
    torch.save(lighthouse_checkpoint(model, optimizer, scheduler, 0, opt), path)
    return path


@pytest.fixture(params=sorted(VARIANTS))
def checkpoint(request, tmp_path) -> Path:
    return taskweave_checkpoint(tmp_path / f"{request.param}.ckpt", request.param)


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

    predictor = TaskWeavePredictor(checkpoint, device="cpu", feature_name="toy")
    assert predictor.model.epoch is None  # the inference branch, as Lighthouse's predictor
    prediction = predictor.predict(query, predictor.encode_audio(audio_dir / "rec.wav"))
    assert prediction["pred_relevant_windows"] == expected
    assert len(prediction["pred_saliency_scores"]) == 13


def test_long_recording_is_predicted_in_chunks(tmp_path, checkpoint):
    write_tone(tmp_path / "long.wav", 45.0)
    predictor = TaskWeavePredictor(checkpoint, feature_name="toy")  # span: 20 frames
    audio = predictor.encode_audio(tmp_path / "long.wav")
    assert audio.num_frames == 46
    results = predictor.predict(["tone", "a dog barks"], audio)
    for result in results:
        windows = result["pred_relevant_windows"]
        assert result["num_chunks"] == 4  # starts 0, 10, 20, 26
        assert len(result["pred_saliency_scores"]) == 46
        assert all(0 <= s <= e <= 45.0 for s, e, _ in windows)
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
    with pytest.raises(CheckpointError, match="a 'taskweave' checkpoint, not 'qd_detr'") as err:
        QDDETRPredictor(checkpoint, feature_name="toy")
    assert "\n" not in str(err.value)
    qd = toy_checkpoint(tmp_path / "qd.ckpt")
    with pytest.raises(CheckpointError, match="a 'qd_detr' checkpoint, not 'taskweave'"):
        TaskWeavePredictor(qd, feature_name="toy")
