"""Every registered model through its Lighthouse-named predictor and ``lighthouse predict``: the
same moments as extract -> infer, long recordings in chunks, and checkpoints of another model
refused in one line. Random weights at small sizes (tests/toy_model.py); the rest of what a
predictor does is tested on QD-DETR's by tests/test_predictor.py."""

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
from lighthouse_audio.models.taskweave import VARIANTS
from lighthouse_audio.predictor import MomentPredictor
from lighthouse_audio.registry import MODELS
from lighthouse_audio.testing.dummies import write_tone
from tests.test_predictor import TOY_OVERRIDES
from tests.toy_model import small_model_overrides

pytestmark = pytest.mark.usefixtures("one_torch_thread")

NAMES = MODELS.names()
# Lighthouse's predictor classes, by the model_name of the checkpoints each accepts.
PREDICTORS = {cls.model_name: cls for cls in MomentPredictor.__subclasses__()}
# What a loaded model is switched to for prediction: the training-only negative pass off, and
# TaskWeave's inference branch (no epoch), as Lighthouse's predictors.
PREDICTING_STATE: dict[str, dict[str, object]] = {
    "qd_detr": {"negative_pass": False},
    "uvcom": {"negative_pass": False},
    **{variant: {"negative_pass": False, "epoch": None} for variant in VARIANTS},
}


@pytest.fixture(scope="module", autouse=True)
def toy_feature_for_the_module():
    """The weight-free ``toy`` feature (ToyEncoder), registered once for the module's
    checkpoints (conftest's ``toy_feature`` does the same per test)."""
    from lighthouse_audio.encoders.base import FeatureSpec
    from lighthouse_audio.registry import FEATURES
    from lighthouse_audio.testing.dummies import ToyEncoder

    spec = FEATURES.register(FeatureSpec("toy", "audio", encoder=lambda **kw: ToyEncoder()))
    yield spec
    FEATURES.unregister("toy")


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory):
    """``checkpoints(name)``: a small model's checkpoint (random weights, seed 3) on ``toy``
    features, span 20 frames; written once per model."""
    folder = tmp_path_factory.mktemp("checkpoints")
    written: dict[str, Path] = {}

    def checkpoint(name: str) -> Path:
        if name not in written:
            overrides = [*TOY_OVERRIDES, *small_model_overrides(name), "max_v_l=20", "max_a_l=20"]
            opt = load_config(name, "custom", "clap", overrides)
            torch.manual_seed(3)
            model = build_model_bundle(opt).model
            optimizer = torch.optim.AdamW(model.parameters())
            scheduler = torch.optim.lr_scheduler.StepLR(optimizer, 400)
            written[name] = folder / f"{name}.ckpt"
            torch.save(lighthouse_checkpoint(model, optimizer, scheduler, 0, opt), written[name])
        return written[name]

    return checkpoint


def predictor_for(checkpoint: Path, **kwargs) -> MomentPredictor:
    """The Lighthouse-named predictor of the model the checkpoint records (for TaskWeave's
    variants, the shared model_name taskweave)."""
    model_name = torch.load(checkpoint, weights_only=False)["opt"]["model_name"]
    return PREDICTORS[model_name](checkpoint, feature_name="toy", **kwargs)


def test_every_registered_model_has_a_predictor():
    for name in NAMES:
        model_name = load_config(name, "custom", "clap")["model_name"]
        assert PREDICTORS[model_name].model_name == model_name


@pytest.mark.parametrize("name", NAMES)
def test_predictor_matches_extract_then_infer(tmp_path, checkpoints, name):
    checkpoint = checkpoints(name)
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

    predictor = predictor_for(checkpoint, device="cpu")
    saved = torch.load(checkpoint, weights_only=False)
    assert type(predictor.model) is type(build_model_bundle(saved["opt"]).model)
    state = PREDICTING_STATE.get(name, {})
    assert {key: getattr(predictor.model, key) for key in state} == state
    audio = predictor.encode_audio(audio_dir / "rec.wav")
    assert tuple(audio.features.shape) == (13, 8)  # 12 s, centre-padded 1 s windows
    prediction = predictor.predict(query, audio)
    assert prediction["pred_relevant_windows"] == expected
    assert len(expected) == saved["opt"]["num_queries"]  # every query's window is kept
    assert len(prediction["pred_saliency_scores"]) == 13
    scores = [w[2] for w in expected]
    assert scores == sorted(scores, reverse=True)


@pytest.mark.parametrize("name", NAMES)
def test_long_recording_is_predicted_in_chunks(tmp_path, checkpoints, name):
    write_tone(tmp_path / "long.wav", 45.0)
    predictor = predictor_for(checkpoints(name))  # span: 20 frames
    audio = predictor.encode_audio(tmp_path / "long.wav")
    assert audio.num_frames == 46
    results = predictor.predict(["tone", "a dog barks"], audio)
    for result in results:
        windows = result["pred_relevant_windows"]
        assert result["num_chunks"] == 4  # starts 0, 10, 20, 26
        assert len(result["pred_saliency_scores"]) == 46
        assert all(0 <= s <= e <= 45.0 for s, e, _ in windows)
        assert [w[2] for w in windows] == sorted((w[2] for w in windows), reverse=True)
        # the later chunks' moments reach the result (with these weights, most windows do)
        assert max(e for _, e, _ in windows) > 20.0


@pytest.mark.parametrize("name", NAMES)
def test_predict_command_on_a_long_recording(tmp_path, checkpoints, name, capsys):
    write_tone(tmp_path / "long.wav", 45.0, freq=900)
    out = tmp_path / "moments.jsonl"
    code = main(["predict", str(tmp_path / "long.wav"), "--query", "a tone", "--checkpoint",
                 str(checkpoints(name)), "--jsonl", str(out), "--no-progress"])  # fmt: skip
    assert code == 0
    assert "predicted in 4 overlapping chunks" in capsys.readouterr().out
    (line,) = [json.loads(x) for x in out.read_text().splitlines()]
    assert line["duration"] == 45.0 and len(line["pred_saliency_scores"]) == 46


@pytest.mark.parametrize("name", NAMES)
def test_every_other_predictor_refuses_the_checkpoint_in_one_line(checkpoints, name):
    model_name = torch.load(checkpoints(name), weights_only=False)["opt"]["model_name"]
    others = [cls for other, cls in PREDICTORS.items() if other != model_name]
    assert others
    for predictor in others:
        refusal = f"an? '{model_name}' checkpoint, not '{predictor.model_name}'"
        with pytest.raises(CheckpointError, match=refusal) as err:
            predictor(checkpoints(name), feature_name="toy")
        assert "\n" not in str(err.value)
