"""``lighthouse extract``: layout, frame counts, resumability, manifests, bad files skipped."""

import json
from pathlib import Path

import numpy as np
import pytest

from lighthouse_audio.cli.main import main
from lighthouse_audio.testing.dummies import write_tone

pytestmark = pytest.mark.usefixtures("toy_feature")


@pytest.fixture
def audio_dir(tmp_path) -> Path:
    folder = tmp_path / "audio"
    folder.mkdir()
    write_tone(folder / "rec_a.wav", 5.0)
    write_tone(folder / "rec_b.flac", 3.5, sample_rate=16000, freq=1000)
    return folder


def write_jsonl(path: Path, lines: list[dict]) -> Path:
    path.write_text("\n".join(json.dumps(line) for line in lines))
    return path


def extract(audio_dir: Path, out: Path, *extra: str) -> int:
    return main(["extract", "--feature", "toy", "--audio-dir", str(audio_dir), "--out", str(out),
                 "--device", "cpu", "--no-progress", *extra])  # fmt: skip


def test_layout_frame_counts_and_times(audio_dir, tmp_path):
    out = tmp_path / "features"
    assert extract(audio_dir, out) == 0
    with np.load(out / "toy" / "rec_a.npz") as data:
        assert data["features"].shape == (6, 8)  # 5 s, center convention: N + 1 frames
        np.testing.assert_allclose(data["frame_times"][:2], [[-0.5, 0.5], [0.5, 1.5]])
    with np.load(out / "toy" / "rec_b.npz") as data:
        assert data["features"].shape == (4, 8)  # 3.5 s -> floor(3.5) + 1
    manifest = json.loads((out / "toy" / "manifest.json").read_text())
    assert manifest["frames"] == "center" and manifest["weights_id"] == "toy-v1"


def test_none_convention_and_window(audio_dir, tmp_path):
    out = tmp_path / "features"
    assert extract(audio_dir, out, "--frames", "none", "--window", "2") == 0
    with np.load(out / "toy" / "rec_a.npz") as data:
        assert data["features"].shape == (4, 8)  # floor((5 - 2) / 1) + 1


def test_text_features_from_jsonl(audio_dir, tmp_path):
    jsonl = write_jsonl(tmp_path / "ann.jsonl", [
        {"qid": 7, "query": "a dog barks", "duration": 5, "vid": "rec_a"},
        {"qid": 8, "query": "rain", "duration": 3.5, "vid": "rec_b"},
    ])  # fmt: skip
    out = tmp_path / "features"
    assert extract(audio_dir, out, "--jsonl", str(jsonl)) == 0
    with np.load(out / "toy_text" / "qid7.npz") as data:
        assert data["last_hidden_state"].shape == (3, 4)


def test_rerun_reuses_and_repairs(audio_dir, tmp_path, capsys):
    out = tmp_path / "features"
    assert extract(audio_dir, out) == 0
    before = (out / "toy" / "rec_a.npz").stat().st_mtime_ns
    (out / "toy" / "rec_b.npz").write_bytes(b"truncated")
    capsys.readouterr()
    assert extract(audio_dir, out) == 0
    assert "1 written, 1 already done" in capsys.readouterr().out
    assert (out / "toy" / "rec_a.npz").stat().st_mtime_ns == before
    with np.load(out / "toy" / "rec_b.npz") as data:
        assert data["features"].shape == (4, 8)


def test_bad_files_skipped_and_reported(audio_dir, tmp_path, capsys):
    (audio_dir / "broken.wav").write_bytes(b"RIFF garbage")
    jsonl = write_jsonl(tmp_path / "ann.jsonl", [
        {"qid": 1, "query": "tone", "duration": 5, "vid": "rec_a"},
        {"qid": 2, "query": "tone", "duration": 5, "vid": "broken"},
        {"qid": 3, "query": "tone", "duration": 5, "vid": "not_there"},
    ])  # fmt: skip
    out = tmp_path / "features"
    assert extract(audio_dir, out, "--jsonl", str(jsonl)) == 1
    printed = capsys.readouterr().out
    assert "skipped broken: " in printed and "broken.wav" in printed
    assert "skipped not_there: no audio file" in printed
    assert (out / "toy" / "rec_a.npz").exists() and not (out / "toy" / "broken.npz").exists()


def test_mismatched_manifest_refused(audio_dir, tmp_path, capsys):
    out = tmp_path / "features"
    assert extract(audio_dir, out) == 0
    assert extract(audio_dir, out, "--window", "4") == 2
    assert "window 1.0 != 4.0" in capsys.readouterr().err


def test_training_refuses_features_of_other_hop(tmp_path):
    from lighthouse_audio.data.feature_manifest import (
        FeatureManifest,
        check_against_config,
        write_manifest,
    )

    write_manifest(
        tmp_path, FeatureManifest("toy", "x", 8000, 1.0, 0.5, "center", 8, 4, "tokens", "0")
    )
    opt = {"a_feat_types": "toy", "a_feat_dim": 8, "t_feat_dim": 4, "clip_length": 1}
    with pytest.raises(ValueError, match="hop 0.5 s != clip_length 1 s"):
        check_against_config(tmp_path, opt)
