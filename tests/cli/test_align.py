"""``lighthouse align`` end to end on the toy problem, plus its refusals and error lines."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import soundfile as sf
import torch

from lighthouse_audio.cli.main import main
from lighthouse_audio.joint.space import JointSpaceError, load_joint_space
from lighthouse_audio.joint.trained import TrainedJointSpace
from tests.align.conftest import (  # noqa: F401 - fixtures of the align tests
    TOY_FEATURE,
    toy_align_feature,
    toy_cache,
    toy_sounds,
    two_tones,
    write_manifest,
)

FAST = ["--epochs", "40", "--no-progress"]


@pytest.fixture
def align(toy_cache):
    def run(*args: str) -> int:
        return main(
            ["align", "--feature", TOY_FEATURE, "--cache-dir", str(toy_cache), *FAST, *args]
        )

    return run


def test_toy_alignment_reaches_high_recall(align, toy_align_feature, toy_sounds, tmp_path, capsys):
    out = tmp_path / "toy.pt"
    assert align("--sounds", str(toy_sounds), "--out", str(out)) == 0
    printed = capsys.readouterr().out
    assert "text->audio" in printed and "chance" in printed and str(out) in printed

    space = toy_align_feature.joint_space(path=out)  # through the feature's factory
    meta = space.meta
    recall = meta["recall"]
    assert recall["text_to_audio"]["recall@1"] >= 0.8, recall
    assert recall["text_to_audio"]["recall@5"] >= 0.95, recall
    assert recall["audio_to_text"]["recall@5"] >= 0.95, recall
    assert recall["chance"]["text_to_audio"]["recall@1"] == pytest.approx(1 / 24)
    assert (meta["num_train_clips"], meta["num_heldout_clips"]) == (96, 24)  # bg is no clip
    assert meta["feature"] == TOY_FEATURE and meta["weights_id"] == "toy-v1"
    assert meta["split_seed"] == 0 and meta["epochs"] == 40 and meta["created"]
    sha = __import__("hashlib").sha256((toy_sounds / "manifest.jsonl").read_bytes()).hexdigest()
    assert meta["manifest_sha256"] == sha and meta["package_version"]
    assert space.text_pooling == "mean" and space.head_specs["audio"]["kind"] == "mlp"


def test_rerun_is_reproducible_and_never_overwrites(
    align, toy_align_feature, toy_sounds, tmp_path, capsys
):
    out = tmp_path / "toy.pt"
    assert align("--sounds", str(toy_sounds), "--out", str(out)) == 0
    first = load_joint_space(out).state_dict()
    capsys.readouterr()
    assert align("--sounds", str(toy_sounds), "--out", str(out)) == 2
    err = capsys.readouterr().err.strip()
    assert "already exists; pass --force" in err and "\n" not in err
    assert align("--sounds", str(toy_sounds), "--out", str(out), "--force") == 0
    second = load_joint_space(out).state_dict()  # from the cache this time
    assert all(torch.equal(first[k], second[k]) for k in first)


def test_default_path_is_where_the_factory_looks(
    toy_align_feature, toy_sounds, tmp_path, monkeypatch
):
    monkeypatch.setenv("LIGHTHOUSE_AUDIO_CACHE", str(tmp_path / "cache-root"))
    with pytest.raises(JointSpaceError, match="no joint space for toy-align weights toy-v1; make"):
        toy_align_feature.joint_space()
    assert main(["align", "--feature", TOY_FEATURE, "--sounds", str(toy_sounds), *FAST]) == 0
    expected = tmp_path / "cache-root" / "joint" / "toy-align-toy-v1.pt"
    assert expected.is_file() and (tmp_path / "cache-root" / "align" / "toy-align-toy-v1").is_dir()
    assert toy_align_feature.joint_space().meta["weights_id"] == "toy-v1"


def test_saved_space_refused_for_other_feature_or_weights(
    align, toy_align_feature, toy_sounds, tmp_path
):
    out = tmp_path / "toy.pt"
    assert align("--sounds", str(toy_sounds), "--out", str(out)) == 0
    with pytest.raises(JointSpaceError, match="for feature 'toy-align', not 'aisfx-minilm'"):
        load_joint_space(out, feature="aisfx-minilm")
    newer = TrainedJointSpace(TOY_FEATURE, lambda **kw: "toy-v2")
    with pytest.raises(JointSpaceError) as err:
        newer(path=out)
    assert str(err.value) == (
        f"{out}: heads trained on toy-align weights toy-v1, but the installed weights are "
        "toy-v2; rerun `lighthouse align --feature toy-align`"
    )


def test_unreadable_and_missing_clips_are_skipped_and_reported(
    align, toy_align_feature, toy_sounds, tmp_path, capsys
):
    folder = tmp_path / "sounds"
    shutil.copytree(toy_sounds, folder)
    lines = [json.loads(x) for x in (folder / "manifest.jsonl").read_text().splitlines()]
    (folder / "fg" / "broken.wav").write_bytes(b"RIFF not really a wav")
    lines += [{"path": "fg/broken.wav", "role": "fg", "caption": "tones alpha and kilo"},
              {"path": "fg/gone.wav", "role": "fg", "caption": "tones bravo and kilo"},
              {"path": "fg/quiet.wav", "role": "fg"}]  # fmt: skip
    write_manifest(folder, lines)
    assert align("--sounds", str(folder), "--out", str(tmp_path / "t.pt")) == 0
    err = capsys.readouterr().err
    assert "skipped fg/broken.wav: " in err
    assert "1 listed file(s) missing, e.g." in err and "gone.wav" in err
    assert "1 clip line(s) without a caption skipped" in err
    assert load_joint_space(tmp_path / "t.pt").meta["skipped"] == ["fg/broken.wav"]


def test_generic_manifest_with_recordings(align, toy_align_feature, tmp_path):
    """--manifest: paths relative to the file, several captions, clips grouped by recording."""
    (tmp_path / "audio").mkdir()
    lines = []
    for i in range(12):
        sf.write(tmp_path / "audio" / f"{i}.wav", two_tones(i % 8, 8 + i % 8), 8000)
        lines.append({"path": f"audio/{i}.wav", "captions": [f"clip {i}", f"sound {i}"],
                      "recording": f"rec{i // 3}"})  # fmt: skip
    manifest = write_manifest(tmp_path, lines)
    out = tmp_path / "t.pt"
    assert align("--manifest", str(manifest), "--out", str(out), "--heldout", "0.25") == 0
    meta = load_joint_space(out).meta
    assert meta["num_heldout_clips"] == 3 and len(meta["heldout_recordings"]) == 1
    assert meta["recall"]["num_captions"] == 6


@pytest.mark.parametrize(
    "setup, message",
    [
        ("missing", "manifest.jsonl: no such manifest"),
        ("uncaptioned", "no captioned clip found"),
        ("garbage", "manifest.jsonl:1: invalid JSON"),
    ],
)
def test_bad_input_is_one_line(align, toy_align_feature, tmp_path, capsys, setup, message):
    folder = tmp_path / "sounds"
    folder.mkdir()
    if setup == "uncaptioned":
        sf.write(folder / "a.wav", two_tones(0, 1), 8000)
        write_manifest(folder, [{"path": "a.wav", "role": "fg"}])
    elif setup == "garbage":
        (folder / "manifest.jsonl").write_text("{not json\n")
    assert align("--sounds", str(folder)) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and err.count("\n") == 0, err


def test_feature_with_its_own_space_is_refused(capsys):
    assert main(["align", "--feature", "clap", "--sounds", "/nonexistent"]) == 2
    assert "has its own joint space" in capsys.readouterr().err


def _toy_recordings(folder):
    """Two annotated 6 s recordings in stored form (toy-align dims), three queries."""
    rng = np.random.default_rng(0)
    (folder / TOY_FEATURE).mkdir(parents=True)
    (folder / f"{TOY_FEATURE}_text").mkdir()
    lines = []
    for r in range(2):
        np.savez(folder / TOY_FEATURE / f"rec{r}.npz",
                 features=rng.normal(size=(6, 16)).astype(np.float32))  # fmt: skip
    for qid, (vid, window) in enumerate([("rec0", [1, 3]), ("rec0", [4, 5]), ("rec1", [0, 2])]):
        np.savez(folder / f"{TOY_FEATURE}_text" / f"qid{qid}.npz",
                 last_hidden_state=rng.normal(size=(4, 16)).astype(np.float32))  # fmt: skip
        lines.append({"qid": qid, "query": f"q{qid}", "duration": 6, "vid": vid,
                      "relevant_windows": [window]})  # fmt: skip
    ann = folder / "train.jsonl"
    ann.write_text("".join(json.dumps(line) + "\n" for line in lines))
    return ann


def test_recordings_add_hard_negatives_and_heldout_0_trains_on_all(
    align, toy_align_feature, toy_sounds, tmp_path, capsys
):
    ann = _toy_recordings(tmp_path / "feats")
    out = tmp_path / "t.pt"
    args = ["--sounds", str(toy_sounds), "--out", str(out), "--heldout", "0"]
    assert align(*args, "--recordings", str(ann), "--recording-features",
                 str(tmp_path / "feats")) == 0  # fmt: skip
    printed = capsys.readouterr().out
    assert "in-recording negatives: 3 queries" in printed
    assert "retrieval recall not measured" in printed
    meta = load_joint_space(out).meta
    assert (meta["num_train_clips"], meta["num_heldout_clips"], meta["recall"]) == (120, 0, None)
    assert meta["num_recording_queries"] == 3 and meta["recordings"] == str(ann.resolve())

    # the same clips without recordings give other heads: the loss took part
    plain = tmp_path / "plain.pt"
    assert align("--sounds", str(toy_sounds), "--out", str(plain), "--heldout", "0") == 0
    a, b = load_joint_space(out).state_dict(), load_joint_space(plain).state_dict()
    assert any(not torch.equal(a[k], b[k]) for k in a)

    assert align(*args, "--force", "--recordings", str(ann)) == 2
    assert "--recordings and --recording-features go together" in capsys.readouterr().err
