"""``lighthouse demo`` end to end on a tiny subset of the shared sounds (a few clips, 2 epochs)."""

import argparse
import json
from pathlib import Path

import pytest
import torch
import yaml

from lighthouse_audio.cli import demo
from lighthouse_audio.cli.main import main
from tests.conftest import SHARED

SHARED_SOUNDS = SHARED / "sounds"
pytestmark = pytest.mark.skipif(
    not (SHARED_SOUNDS / "manifest.jsonl").is_file(), reason="no shared sounds"
)


def run_demo_cli(*argv: str) -> int:
    """The demo command through its own parser (as ``lighthouse demo`` runs it)."""
    parser = argparse.ArgumentParser(prog="lighthouse")
    demo.add_parser(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["demo", *argv])
    return args.func(args)


@pytest.fixture(scope="module")
def tiny_sounds(tmp_path_factory):
    """12 short captioned clips from different folders and the 3 shortest ambiences that hold a
    60 s test recording."""
    lines = [json.loads(x) for x in (SHARED_SOUNDS / "manifest.jsonl").read_text().splitlines()]
    fg = [d for d in lines if d["role"] == "fg" and 1.5 <= d["duration"] <= 6][::25][:12]
    bg = [d for d in lines if d["role"] == "bg" and d["duration"] >= 60]
    bg = sorted(bg, key=lambda d: d["duration"])[:3]
    root = tmp_path_factory.mktemp("sounds")
    for d in fg + bg:
        (root / d["path"]).parent.mkdir(parents=True, exist_ok=True)
        (root / d["path"]).symlink_to(SHARED_SOUNDS / d["path"])
    (root / "manifest.jsonl").write_text("".join(json.dumps(d) + "\n" for d in fg + bg))
    return root


@pytest.fixture(scope="module")
def demo_run(tiny_sounds, tmp_path_factory):
    workdir = tmp_path_factory.mktemp("demo")
    args = [
        "--sounds", str(tiny_sounds), "--workdir", str(workdir), "--epochs", "2",
        "--clips", "6,2,3", "--test-recordings", "2,3", "--seed", "0", "--device", "cpu",
        "--threads", "2", "--no-progress", "bsz=8",
    ]  # fmt: skip
    threads = torch.get_num_threads()
    try:
        assert run_demo_cli(*args) == 0
    finally:
        torch.set_num_threads(threads)
    return workdir, args


def test_outputs_and_table(demo_run, capsys):
    workdir, _ = demo_run
    run = workdir / "results" / "qd_detr" / "custom" / "aisfx-minilm"
    summary = json.loads((run / "demo_summary.json").read_text())
    assert (run / "last.ckpt").is_file() and (run / "test_example.png").is_file()
    metrics = json.loads((run / "test_metrics.json").read_text())
    assert set(metrics["brief"]) == {
        "MR-full-R1@0.5", "MR-full-R1@0.7", "MR-full-mAP", "MR-full-mAP@0.5", "MR-full-mAP@0.75",
    }  # fmt: skip
    assert summary["test"]["AM-DETR"] == metrics["brief"]
    baseline = "sliding window 1 s (tuned on val)"
    assert set(summary["test"]) == {
        "AM-DETR", baseline, "random windows", "random windows, train lengths",
    }  # fmt: skip
    # the baseline's own run folder holds what the table printed, tuned on val only
    base_run = summary["baseline"]["run"]
    tuned = json.loads((Path(base_run) / "test_metrics.json").read_text())["brief"]
    assert summary["test"][baseline] == tuned
    config = (Path(base_run) / "config.yaml").read_text()
    assert "val.jsonl" in config and f"threshold: {summary['baseline']['threshold']}" in config
    assert summary["data"]["test"]["queries"] > 0
    # trained on 10 s clips, tested on whole 60 s recordings (predicted in chunks)
    (data_dir,) = (workdir / "data").iterdir()
    test = (data_dir / "annotations" / "test.jsonl").read_text().splitlines()
    assert {json.loads(x)["duration"] for x in test} == {60}
    (train_dir,) = data_dir.glob("train10s-*")
    train = (train_dir / "annotations" / "train.jsonl").read_text().splitlines()
    assert {json.loads(x)["duration"] for x in train} == {10}
    ends = [w[1] for x in (run / "test_preds.jsonl").read_text().splitlines()
            for w in json.loads(x)["pred_relevant_windows"]]  # fmt: skip
    assert max(ends) > 30
    assert (run / "test_example.png").read_bytes()[:4] == b"\x89PNG"
    # the 60 s benchmark's recipe and the weight average, then the command line's overrides
    config = yaml.safe_load((run / "config.yaml").read_text())
    assert config["neg_label_loss_coef"] == 4 and config["input_dropout"] == 0.5
    assert config["weight_average"] == 0.998
    assert config["bsz"] == 8 and config["n_epoch"] == 2
    # the epoch was picked on the 60 s val recordings, predicted whole (the default), so no
    # short val clips were simulated
    assert config["eval_path"] == str(data_dir / "annotations" / "val.jsonl")
    assert config["eval_features_root"] == str(data_dir / "features")
    assert config["eval_whole_recordings"] is True
    assert sorted(p.name for p in (train_dir / "annotations").iterdir()) == ["train.jsonl"]
    assert summary["settings"]["pick_on_recordings"] is True


def test_splits_are_disjoint_by_recording(demo_run, tiny_sounds):
    workdir, _ = demo_run
    (data_dir,) = (workdir / "data").iterdir()
    splits = json.loads((data_dir / "splits.json").read_text())
    listed = [
        json.loads(x)["path"] for x in (tiny_sounds / "manifest.jsonl").read_text().split("\n") if x
    ]
    assigned = [key for keys in splits.values() for key in keys]
    assert sorted(assigned) == sorted(listed)  # each recording in exactly one split
    vids = {}
    annotations = sorted(data_dir.glob("**/annotations/*.jsonl"))  # 60 s val/test, train clips
    assert len(annotations) == 3
    for path in annotations:
        for line in path.read_text().splitlines():
            vids.setdefault(json.loads(line)["vid"], set()).add(path.stem)
    assert all(len(s) == 1 for s in vids.values())  # no recording in two splits


def test_checkpoint_works_with_lighthouse_infer(demo_run, tmp_path):
    workdir, _ = demo_run
    run = workdir / "results" / "qd_detr" / "custom" / "aisfx-minilm"
    summary = json.loads((run / "demo_summary.json").read_text())
    (data_dir,) = (workdir / "data").iterdir()
    out = tmp_path / "preds.jsonl"
    code = main([
        "infer", "--checkpoint", summary["checkpoint"], "--jsonl",
        str(data_dir / "annotations" / "test.jsonl"), "--features",
        str(data_dir / "features" / "custom"), "--out", str(out), "--eval", "--no-progress",
    ])  # fmt: skip
    assert code == 0
    assert out.read_text() == (run / "test_preds.jsonl").read_text()


def test_checkpoint_works_with_the_predictor(demo_run):
    """The predictor, fed the raw test recording and query text, finds what the demo found; the
    checkpoint's recorded feature manifest sets the frame convention (frames="none")."""
    from lighthouse_audio.predictor import QDDETRPredictor

    workdir, _ = demo_run
    run = workdir / "results" / "qd_detr" / "custom" / "aisfx-minilm"
    summary = json.loads((run / "demo_summary.json").read_text())
    (data_dir,) = (workdir / "data").iterdir()
    pred = json.loads((run / "test_preds.jsonl").read_text().splitlines()[0])
    predictor = QDDETRPredictor(summary["checkpoint"], device="cpu")
    assert predictor.frames == summary["frames"] == "none"
    audio = predictor.encode_audio(data_dir / "audio" / f"{pred['vid']}.wav")
    got = predictor.predict(pred["query"], audio)["pred_relevant_windows"]
    assert [w[:2] for w in got[:3]] == [w[:2] for w in pred["pred_relevant_windows"][:3]]
    assert [w[2] for w in got[:3]] == pytest.approx(
        [w[2] for w in pred["pred_relevant_windows"][:3]], abs=1e-3
    )


def test_checkpoint_finds_moments_over_a_whole_60_s_recording(demo_run, tmp_path):
    """Trained on 10 s clips, the demo's model predicts over all of a 60 s real recording."""
    import numpy as np
    import soundfile as sf

    from lighthouse_audio.predictor import QDDETRPredictor

    workdir, _ = demo_run
    run = workdir / "results" / "qd_detr" / "custom" / "aisfx-minilm"
    checkpoint = json.loads((run / "demo_summary.json").read_text())["checkpoint"]
    lines = [json.loads(x) for x in (SHARED_SOUNDS / "manifest.jsonl").read_text().splitlines()]
    (ambience,) = [d for d in lines if d["role"] == "bg" and d["duration"] >= 60][:1]
    signal, rate = sf.read(SHARED_SOUNDS / ambience["path"], dtype="float32", always_2d=True)
    path = tmp_path / "minute.wav"
    sf.write(path, signal[: 60 * rate].mean(axis=1), rate)
    predictor = QDDETRPredictor(checkpoint)
    audio = predictor.encode_audio(path)
    result = predictor.predict(["a dog barks", "wind blows"], audio)[0]
    assert predictor.loaded.span == 11 and result["num_chunks"] > 1
    assert len(result["pred_saliency_scores"]) == audio.num_frames == 60
    windows = np.asarray(result["pred_relevant_windows"])
    assert (windows[:, 0] >= 0).all() and (windows[:, 1] <= 60.0).all()
    assert windows[:, 1].max() > 40 and windows[:, 0].min() < 20  # not the first 11 s only


def test_second_run_reuses_data_and_never_overwrites(demo_run, capsys):
    workdir, args = demo_run
    first = workdir / "results" / "qd_detr" / "custom" / "aisfx-minilm"
    before = (first / "test_metrics.json").read_bytes()
    threads = torch.get_num_threads()
    try:
        assert run_demo_cli(*args) == 0
    finally:
        torch.set_num_threads(threads)
    out = capsys.readouterr().out
    reused = [line for line in out.splitlines() if "reusing" in line]
    assert sum("simulated" in line for line in reused) == 3  # 60 s val/test, short train
    assert any("joint space" in line for line in reused)  # the baseline's space
    assert "audio: 0 written" in out  # features too
    assert (first / "test_metrics.json").read_bytes() == before
    second = first.with_name("aisfx-minilm-2")
    assert (second / "test_metrics.json").read_bytes() == before  # same seed, same result


def test_missing_sound_manifest_is_one_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="manifest.jsonl"):
        run_demo_cli("--sounds", str(tmp_path), "--workdir", str(tmp_path / "w"))


def test_joint_prior_run_aligns_on_train_only_and_checkpoint_stands_alone(demo_run, tmp_path):
    """The joint prior (on by default): the space is trained on train-split sounds only, and the
    checkpoint predicts without the space file (its heads live in the checkpoint)."""
    from lighthouse_audio.engine.checkpoint import load_checkpoint
    from lighthouse_audio.joint.space import load_joint_space

    workdir, _ = demo_run
    run = workdir / "results" / "qd_detr" / "custom" / "aisfx-minilm"
    summary = json.loads((run / "demo_summary.json").read_text())
    assert summary["settings"]["joint_prior"] is True
    (data_dir,) = (workdir / "data").iterdir()
    space_path = data_dir / "joint" / "aisfx-minilm-joint-train-l2-moments.pt"
    space = load_joint_space(space_path)
    assert space.input_norm and space.meta["num_heldout_clips"] == 0
    assert space.meta["num_recording_queries"] > 0  # the training clips' moments took part
    splits = json.loads((data_dir / "splits.json").read_text())
    aligned = [json.loads(x)["recording"] for x in
               (data_dir / "joint" / "align_train.jsonl").read_text().splitlines()]  # fmt: skip
    assert aligned and set(aligned) <= set(splits["train"])
    ckpt = load_checkpoint(summary["checkpoint"])
    opt = ckpt["opt"]
    assert opt["joint_prior"] == str(space_path) and opt["joint_prior_heads"]["input_norm"]
    # cross-fitting: each fold space was aligned without the sounds of the queries it scores
    folds = json.loads(Path(opt["joint_prior_folds"]).read_text())
    assert len(folds["spaces"]) == summary["settings"]["prior_folds"] == 4
    captions = {c: r["path"] for r in map(json.loads, (data_dir / "joint" / "align_train.jsonl")
                .read_text().splitlines()) for c in r["captions"]}  # fmt: skip
    train = {str(q["qid"]): q["query"] for q in map(json.loads, Path(opt["train_path"])
             .read_text().splitlines())}  # fmt: skip
    assert folds["qids"] and set(folds["qids"]) <= set(train)
    for k, name in enumerate(folds["spaces"]):
        seen = {json.loads(x)["path"] for x in (data_dir / "joint" / Path(name).parent /
                "align_train.jsonl").read_text().splitlines()}  # fmt: skip
        scored = {captions[train[q]] for q, fold in folds["qids"].items() if fold == k}
        assert seen and not seen & scored, k
    # the score mix was tuned on the 60 s val recordings; the checkpoint left behind carries it
    by_mix = summary["score_mix_val_mAP"]
    assert [float(m) for m in by_mix] == [0.0, 0.25, 0.5, 0.75, 1.0]
    best = max(by_mix, key=by_mix.get)
    assert opt["prior_score_mix"] == pytest.approx(float(best))
    # the kept weights: the best epoch's or the final weight average, whichever did best on val
    candidates, kept = summary["checkpoints_val_mAP"], summary["kept"]
    assert set(candidates) == {"best epoch", "final average"}
    assert candidates[kept] == max(candidates.values()) == max(by_mix.values())
    trained = run / "best.ckpt" if (run / "best.ckpt").is_file() else run / "last.ckpt"
    source = trained if kept == "best epoch" else run / "final_average.ckpt"
    # then the ratio that redraws window bounds from the prior, for those weights and that mix
    by_ratio = summary["prior_refine_val_mAP"]
    assert [float(r) for r in by_ratio] == [0.0, 0.3, 0.4, 0.5, 0.6]
    assert by_ratio["0"] == by_mix[best]
    ratio = max(by_ratio, key=by_ratio.get)
    assert summary["prior_refine"] == float(ratio) == opt["prior_refine"]
    plain = kept == "best epoch" and float(best) == 0 and float(ratio) == 0
    assert Path(summary["checkpoint"]) == (source if plain else run / "tuned.ckpt")
    for key, value in load_checkpoint(source)["model"].items():
        assert torch.equal(ckpt["model"][key], value), key
    average = load_checkpoint(run / "last.ckpt")["weight_average"]["model"]
    for key, value in load_checkpoint(run / "final_average.ckpt")["model"].items():
        assert torch.equal(average[key], value), key
    assert load_checkpoint(trained)["opt"]["prior_score_mix"] == 0
    assert load_checkpoint(trained)["opt"]["prior_refine"] == 0
    # the frozen heads in the checkpoint are the aligned space's, not fresh random ones
    for key, value in load_joint_space(space_path).state_dict().items():
        assert torch.equal(ckpt["model"][f"joint_prior.space.{key}"], value), key

    space_path.rename(tmp_path / "moved.pt")
    try:
        out = tmp_path / "preds.jsonl"
        code = main([
            "infer", "--checkpoint", summary["checkpoint"], "--jsonl",
            str(data_dir / "annotations" / "test.jsonl"), "--features",
            str(data_dir / "features" / "custom"), "--out", str(out), "--no-progress",
        ])  # fmt: skip
    finally:
        (tmp_path / "moved.pt").rename(space_path)
    assert code == 0
    assert out.read_text() == (run / "test_preds.jsonl").read_text()


def test_test_length_0_tests_on_clips_like_training(tiny_sounds, tmp_path):
    """``--test-length 0`` (the offline benchmark's setting): all three splits are 10 s clips in
    one data folder, and the model is tested on the 10 s test clips."""
    workdir = tmp_path / "w"
    threads = torch.get_num_threads()
    try:
        assert run_demo_cli(
            "--sounds", str(tiny_sounds), "--workdir", str(workdir), "--epochs", "1",
            "--clips", "4,2,2", "--test-length", "0", "--no-joint-prior", "--device", "cpu",
            "--threads", "2", "--no-progress",
        ) == 0  # fmt: skip
    finally:
        torch.set_num_threads(threads)
    (data_dir,) = (workdir / "data").iterdir()
    assert not list(data_dir.glob("train*s-*"))
    for split in ("train", "val", "test"):
        lines = (data_dir / "annotations" / f"{split}.jsonl").read_text().splitlines()
        assert lines and {json.loads(x)["duration"] for x in lines} == {10}
    run = workdir / "results" / "qd_detr" / "custom" / "aisfx-minilm"
    summary = json.loads((run / "demo_summary.json").read_text())
    assert summary["settings"]["test_length"] is None
    assert summary["settings"]["joint_prior"] is False and not summary["score_mix_val_mAP"]
    assert not summary["prior_refine_val_mAP"] and summary["prior_refine"] == 0
    assert summary["data"]["test"]["clips"] <= 2


def test_no_pick_on_recordings_validates_on_short_val_clips(tiny_sounds, tmp_path):
    """``--no-pick-on-recordings``: short val clips like the training ones are simulated and pick
    the epoch, each predicted on its own span as Lighthouse validates."""
    workdir = tmp_path / "w"
    threads = torch.get_num_threads()
    try:
        assert run_demo_cli(
            "--sounds", str(tiny_sounds), "--workdir", str(workdir), "--epochs", "1",
            "--clips", "4,2,2", "--test-recordings", "2,2", "--no-joint-prior",
            "--no-pick-on-recordings", "--device", "cpu", "--threads", "2", "--no-progress",
        ) == 0  # fmt: skip
    finally:
        torch.set_num_threads(threads)
    (data_dir,) = (workdir / "data").iterdir()
    (train_dir,) = data_dir.glob("train10s-*")
    val = (train_dir / "annotations" / "val.jsonl").read_text().splitlines()
    assert val and {json.loads(x)["duration"] for x in val} == {10}
    long_val = (data_dir / "annotations" / "val.jsonl").read_text().splitlines()
    # the short val clips and the 60 s val recordings are separate recordings
    assert not {json.loads(x)["vid"] for x in val} & {json.loads(x)["vid"] for x in long_val}
    run = workdir / "results" / "qd_detr" / "custom" / "aisfx-minilm"
    config = yaml.safe_load((run / "config.yaml").read_text())
    assert config["eval_path"] == str(train_dir / "annotations" / "val.jsonl")
    assert config["eval_whole_recordings"] is False
    summary = json.loads((run / "demo_summary.json").read_text())
    assert summary["settings"]["pick_on_recordings"] is False
    assert "val (10 s)" in summary["data"]


def test_one_prior_fold_is_refused_before_anything_runs(tiny_sounds, tmp_path):
    with pytest.raises(ValueError, match="--prior-folds must be 0 .* or at least 2, got 1"):
        run_demo_cli("--sounds", str(tiny_sounds), "--workdir", str(tmp_path), "--prior-folds", "1")
    assert not any(tmp_path.iterdir())


def test_test_recordings_shorter_than_training_clips_are_refused(tiny_sounds, tmp_path):
    with pytest.raises(ValueError, match="--test-length 5 is shorter than the training clips"):
        run_demo_cli("--sounds", str(tiny_sounds), "--workdir", str(tmp_path), "--test-length", "5")


def test_sounds_without_ambiences_long_enough_for_the_test_recordings_are_one_clear_error(
    tmp_path,
):
    """Each split needs an ambience that holds a 60 s test recording; without, one line says so
    (before anything is simulated) and names the way out."""
    lines = [json.loads(x) for x in (SHARED_SOUNDS / "manifest.jsonl").read_text().splitlines()]
    fg = [d for d in lines if d["role"] == "fg" and 1.5 <= d["duration"] <= 6][:12]
    bg = sorted((d for d in lines if d["role"] == "bg"), key=lambda d: d["duration"])[:3]
    assert max(d["duration"] for d in bg) < 60
    root = tmp_path / "sounds"
    for d in fg + bg:
        (root / d["path"]).parent.mkdir(parents=True, exist_ok=True)
        (root / d["path"]).symlink_to(SHARED_SOUNDS / d["path"])
    (root / "manifest.jsonl").write_text("".join(json.dumps(d) + "\n" for d in fg + bg))
    with pytest.raises(ValueError, match="0 background recording.s. of at least 60 s") as error:
        run_demo_cli("--sounds", str(root), "--workdir", str(tmp_path / "w"), "--no-progress")
    assert "--test-length" in str(error.value) and "\n" not in str(error.value)
    assert not list((tmp_path / "w").glob("data/*/simulated"))
