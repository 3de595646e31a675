"""The predictor: batched queries, any length, clear refusals (the same moments as extract ->
infer, for every model: tests/test_model_predictors.py)."""

import json
from pathlib import Path

import pytest
import torch

from lighthouse_audio.cli.main import main
from lighthouse_audio.config import load_config
from lighthouse_audio.encoders.base import FeatureSpec
from lighthouse_audio.engine.checkpoint import CheckpointError
from lighthouse_audio.engine.train import lighthouse_checkpoint
from lighthouse_audio.models.bundle import build_model_bundle
from lighthouse_audio.predictor import QDDETRPredictor
from lighthouse_audio.registry import FEATURES
from lighthouse_audio.testing.dummies import ToyEncoder, write_tone

pytestmark = pytest.mark.usefixtures("toy_feature")

TOY_OVERRIDES = ["a_feat_types=toy", "t_feat_type=toy", "a_feat_dim=8", "t_feat_dim=4"]
# What extraction records for toy features cut as whole windows (frames "none").
NONE_FRAMES_MANIFEST = {
    "feature": "toy", "weights_id": "toy-v1", "sample_rate": 8000, "window": 1.0, "hop": 1.0,
    "frames": "none", "audio_dim": 8, "text_dim": 4, "text_mode": "tokens",
    "package_version": "test",
}  # fmt: skip


def toy_checkpoint(path: Path, *overrides: str, manifest: dict | None = None) -> Path:
    opt = load_config("qd_detr", "custom", "clap", [*TOY_OVERRIDES, "max_v_l=20", "max_a_l=20"])
    for override in overrides:
        key, value = override.split("=", 1)
        opt[key] = value if key == "model_name" else int(value)
    if manifest is not None:
        opt["feature_manifest"] = manifest
    torch.manual_seed(3)
    model = build_model_bundle(opt).model
    optimizer = torch.optim.AdamW(model.parameters())
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, 400)
    torch.save(lighthouse_checkpoint(model, optimizer, scheduler, 0, opt), path)
    return path


@pytest.fixture
def checkpoint(tmp_path) -> Path:
    return toy_checkpoint(tmp_path / "toy.ckpt")


def test_several_queries_in_one_call_match_one_by_one(tmp_path, checkpoint):
    write_tone(tmp_path / "rec.wav", 15.0)
    predictor = QDDETRPredictor(checkpoint, feature_name="toy")
    audio = predictor.encode_audio(tmp_path / "rec.wav")
    queries = ["a tone", "a long steady electronic hum of a machine", "silence"]
    together = predictor.predict(queries, audio)
    assert [r["query"] for r in together] == queries
    for query, batched in zip(queries, together, strict=True):
        alone = predictor.predict(query, audio)
        assert [w[:2] for w in batched["pred_relevant_windows"]] == [
            w[:2] for w in alone["pred_relevant_windows"]
        ]
        assert [w[2] for w in batched["pred_relevant_windows"]] == pytest.approx(
            [w[2] for w in alone["pred_relevant_windows"]], abs=2e-4
        )
        assert batched["pred_saliency_scores"] == pytest.approx(
            alone["pred_saliency_scores"], abs=1e-4
        )


def test_long_recording_is_predicted_over_its_whole_length(tmp_path, checkpoint):
    write_tone(tmp_path / "long.wav", 45.0)
    predictor = QDDETRPredictor(checkpoint, feature_name="toy")  # span: 20 frames
    audio = predictor.encode_audio(tmp_path / "long.wav")
    assert audio.num_frames == 46 and audio.duration == 45.0
    result = predictor.predict("tone", audio)
    windows = result["pred_relevant_windows"]
    assert result["num_chunks"] == 4  # starts 0, 10, 20, 26
    assert len(result["pred_saliency_scores"]) == 46
    assert all(0 <= s <= e <= 45.0 for s, e, _ in windows)
    assert max(e for _, e, _ in windows) > 20.0  # moments beyond the first span exist
    assert [w[2] for w in windows] == sorted((w[2] for w in windows), reverse=True)


def test_truncate_keeps_lighthouses_first_span_only(tmp_path, checkpoint):
    write_tone(tmp_path / "long.wav", 30.0)
    predictor = QDDETRPredictor(checkpoint, feature_name="toy", truncate=True)
    audio = predictor.encode_audio(tmp_path / "long.wav")
    assert audio.duration == 20.0  # what the model sees of it
    result = predictor.predict("tone", audio)
    assert "num_chunks" not in result and len(result["pred_saliency_scores"]) == 20
    assert all(0 <= s <= e <= 20.0 for s, e, _ in result["pred_relevant_windows"])


def test_recorded_frame_convention_is_used(tmp_path):
    manifest = NONE_FRAMES_MANIFEST
    ckpt = toy_checkpoint(tmp_path / "none.ckpt", manifest=manifest)
    write_tone(tmp_path / "a.wav", 12.0)
    predictor = QDDETRPredictor(ckpt, feature_name="toy")
    assert predictor.frames == "none"
    assert predictor.encode_audio(tmp_path / "a.wav").num_frames == 12
    other = toy_checkpoint(tmp_path / "other.ckpt", manifest={**manifest, "weights_id": "v2"})
    with pytest.raises(ValueError, match="weights v2, but the 'toy' encoder has weights toy-v1"):
        QDDETRPredictor(other, feature_name="toy")


def test_bad_queries_are_one_line_errors(tmp_path, checkpoint):
    predictor = QDDETRPredictor(checkpoint, feature_name="toy")
    write_tone(tmp_path / "a.wav", 3.0)
    audio = predictor.encode_audio(tmp_path / "a.wav")
    for query, message in (("  ", "query 1 is empty"), ("dog " * 5000, "has 5000 words")):
        with pytest.raises(ValueError, match=message) as err:
            predictor.predict(query, audio)
        assert "\n" not in str(err.value)
    with pytest.raises(ValueError, match="no query given"):
        predictor.predict([], audio)


def test_wrong_checkpoints_are_one_line_errors(tmp_path, checkpoint):
    FEATURES.register(FeatureSpec("toy-wide", "audio", encoder=lambda **kw: WideToy()))
    try:
        with pytest.raises(ValueError, match=r"expects audio/text dims \(8, 4\).*\(16, 4\)"):
            QDDETRPredictor(checkpoint, feature_name="toy-wide")
    finally:
        FEATURES.unregister("toy-wide")
    other = toy_checkpoint(tmp_path / "other.ckpt")
    ckpt = torch.load(other, weights_only=False)
    ckpt["opt"]["model_name"] = "moment_detr"
    torch.save(ckpt, other)
    with pytest.raises(CheckpointError, match="a 'moment_detr' checkpoint, not 'qd_detr'"):
        QDDETRPredictor(other, feature_name="toy")
    with pytest.raises(FileNotFoundError, match="not a known checkpoint name"):
        QDDETRPredictor("no-such-model", feature_name="toy")


class WideToy(ToyEncoder):
    audio_dim = 16


def test_unreadable_empty_and_too_short_audio_are_one_line_errors(tmp_path):
    from lighthouse_audio.audio.decode import AudioError

    manifest = NONE_FRAMES_MANIFEST
    predictor = QDDETRPredictor(toy_checkpoint(tmp_path / "n.ckpt", manifest=manifest))
    write_tone(tmp_path / "short.wav", 0.3)
    (tmp_path / "empty.wav").write_bytes(b"")
    (tmp_path / "text.wav").write_text("not audio at all")
    for name, message in (
        ("short.wav", r"shorter than one window \(0.3 s < 1.0 s\)"),
        ("empty.wav", "not a readable audio file"),
        ("text.wav", "not a readable audio file"),
        ("missing.wav", "no such file"),
    ):
        with pytest.raises(AudioError, match=message) as err:
            predictor.encode_audio(tmp_path / name)
        assert str(err.value).startswith(str(tmp_path / name)) and "\n" not in str(err.value)


def _extracted(tmp_path: Path, frames: str) -> tuple[Path, Path]:
    """A 12 s tone extracted as ``toy`` features with the given frame convention."""
    audio_dir = tmp_path / f"audio_{frames}"
    audio_dir.mkdir()
    write_tone(audio_dir / "rec.wav", 12.0, freq=700)
    ann = tmp_path / "ann.jsonl"
    ann.write_text(json.dumps({"qid": 1, "query": "a tone", "duration": 12.0, "vid": "rec",
                               "relevant_windows": [[2.0, 5.0]]}) + "\n")  # fmt: skip
    feats = tmp_path / f"features_{frames}"
    argv = ["extract", "--feature", "toy", "--audio-dir", str(audio_dir), "--jsonl", str(ann),
            "--out", str(feats), "--frames", frames, "--no-progress"]  # fmt: skip
    assert main(argv) == 0
    return ann, feats


def _infer(checkpoint: Path, ann: Path, feats: Path, out: Path) -> int:
    return main(["infer", "--checkpoint", str(checkpoint), "--jsonl", str(ann), "--features",
                 str(feats), "--out", str(out), "--no-progress"])  # fmt: skip


def test_infer_refuses_features_made_differently_from_the_training_ones(tmp_path, capsys):
    """The demo trains on frames "none"; center-framed features of the same encoder must not
    be scored silently with that model (one line naming the difference); features made the
    same way are accepted."""
    trained_none = toy_checkpoint(tmp_path / "none.ckpt", manifest=NONE_FRAMES_MANIFEST)
    ann, center = _extracted(tmp_path, "center")
    assert _infer(trained_none, ann, center, tmp_path / "a.jsonl") == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("lighthouse infer: error: ") and "\n" not in err
    assert "frames" in err and "'center'" in err and "'none'" in err
    assert not (tmp_path / "a.jsonl").exists()

    _, none = _extracted(tmp_path, "none")
    assert _infer(trained_none, ann, none, tmp_path / "b.jsonl") == 0


def test_checkpoints_without_a_feature_manifest_keep_working(tmp_path):
    """Lighthouse's own checkpoints record no manifest: they read any features of the right
    shape, as in Lighthouse."""
    lighthouse_made = toy_checkpoint(tmp_path / "lh.ckpt")
    assert "feature_manifest" not in torch.load(lighthouse_made, weights_only=False)["opt"] or (
        torch.load(lighthouse_made, weights_only=False)["opt"]["feature_manifest"] is None
    )
    ann, center = _extracted(tmp_path, "center")
    assert _infer(lighthouse_made, ann, center, tmp_path / "p.jsonl") == 0
    assert json.loads((tmp_path / "p.jsonl").read_text())["pred_relevant_windows"]
