"""``lighthouse tune-baseline`` and ``lighthouse infer`` on a tuned run, end to end on raw npz."""

import json
from pathlib import Path

import numpy as np
import yaml

from lighthouse_audio.cli.main import main
from tests.baseline.conftest import (  # noqa: F401 - fixtures of the baseline tests
    FEATURE,
    identity_space,
    joint_feature,
    space_file,
    toy_root,
    write_layout_manifest,
)


def tune_args(root: Path, results: Path, space: Path | None, *extra: str) -> list[str]:
    args = ["tune-baseline", "--feature", FEATURE, "--features", str(root),
            "--val", str(root / "val.jsonl"), "--results-dir", str(results), "--no-progress",
            "--thresholds", "0.0", "0.5", "1.5", "--median-lengths", "1", "3"]  # fmt: skip
    return [*args, *(["--joint-space", str(space)] if space else []), *extra]


def run_folder(results: Path, suffix: str = "") -> Path:
    return results / "sliding_window" / "custom" / f"{FEATURE}_w1{suffix}"


def test_tune_writes_a_run_that_eval_and_infer_reproduce(
    joint_feature, toy_root, space_file, tmp_path, capsys
):
    results = tmp_path / "results"
    test = str(toy_root / "test.jsonl")
    assert main(tune_args(toy_root, results, space_file, "--test", test)) == 0
    run = run_folder(results)
    out = capsys.readouterr().out
    assert f"run folder {run}" in out and "*    0.5000       3" in out

    config = yaml.safe_load((run / "config.yaml").read_text())
    assert config["model_name"] == "sliding_window" and config["dset_name"] == "custom"
    assert config["a_feat_types"] == FEATURE
    assert (config["window"], config["hop"], config["frames"]) == (1.0, 1.0, "none")  # manifest
    assert (config["threshold"], config["median_length"]) == (0.5, 3)
    assert config["joint_space"] == str(space_file.resolve())
    assert config["thresholds"] == [0.0, 0.5, 1.5] and config["median_lengths"] == [1, 3]

    best = json.loads((run / "best_val_metrics.json").read_text())
    assert set(best) == {"brief", "full"} and best["brief"]["MR-full-mAP"] == 100.0
    grid = json.loads((run / "val_grid.json").read_text())
    assert len(grid) == 6 and all(row["MR-full-mAP"] < 100 for row in grid if row != grid[3])

    # The written predictions are a Lighthouse submission: `lighthouse eval` scores them as is.
    test_metrics = json.loads((run / "test_metrics.json").read_text())
    assert test_metrics["brief"]["MR-full-mAP"] == 100.0
    saved = tmp_path / "eval.json"
    assert main(["eval", "--submission", str(run / "test_preds.jsonl"), "--gt", test,
                 "--save", str(saved)]) == 0  # fmt: skip
    assert json.loads(saved.read_text()) == test_metrics
    first = json.loads((run / "test_preds.jsonl").read_text().splitlines()[0])
    assert set(first) == {"qid", "query", "vid", "pred_relevant_windows"}

    # infer with the run folder (or its config.yaml) predicts the same lines.
    for checkpoint in (run, run / "config.yaml"):
        preds = tmp_path / "infer" / "preds.jsonl"
        args = ["infer", "--checkpoint", str(checkpoint), "--jsonl", test, "--features",
                str(toy_root), "--out", str(preds), "--eval", "--no-progress"]  # fmt: skip
        assert main(args) == 0
        assert preds.read_text() == (run / "test_preds.jsonl").read_text()
        assert json.loads(preds.with_suffix(".metrics.json").read_text()) == test_metrics


def test_second_run_never_overwrites(joint_feature, toy_root, space_file, tmp_path):
    results = tmp_path / "results"
    assert main(tune_args(toy_root, results, space_file)) == 0
    first = run_folder(results)
    before = {p.name: p.read_bytes() for p in first.iterdir()}
    assert main(tune_args(toy_root, results, space_file, "--median-lengths", "1")) == 0
    assert {p.name: p.read_bytes() for p in first.iterdir()} == before
    second = yaml.safe_load((run_folder(results, "-2") / "config.yaml").read_text())
    assert second["median_length"] == 1


def test_default_grid_and_feature_factory(toy_root, tmp_path, capsys):
    """A feature whose spec builds its own joint space needs no --joint-space; with no
    manifest the layout comes from the arguments."""
    from lighthouse_audio.encoders.base import FeatureSpec
    from lighthouse_audio.registry import FEATURES

    calls = []

    def factory(path=None):
        calls.append(path)
        return identity_space()

    (toy_root / FEATURE / "manifest.json").unlink()
    FEATURES.register(FeatureSpec(FEATURE, "audio", joint_space=factory))
    try:
        args = ["tune-baseline", "--feature", FEATURE, "--features", str(toy_root), "--val",
                str(toy_root / "val.jsonl"), "--results-dir", str(tmp_path / "r"),
                "--frames", "none", "--no-progress", "--dataset", "clotho-moment"]  # fmt: skip
        assert main(args) == 0
    finally:
        FEATURES.unregister(FEATURE)
    assert calls == [None]
    run = tmp_path / "r" / "sliding_window" / "clotho-moment" / f"{FEATURE}_w1"
    config = yaml.safe_load((run / "config.yaml").read_text())
    assert len(config["thresholds"]) == 41 and config["median_lengths"] == [1, 3, 5, 7, 9]
    assert config["joint_space"] is None and config["frames"] == "none"
    assert json.loads((run / "best_val_metrics.json").read_text())["brief"]["MR-full-mAP"] == 100


def test_missing_npz_is_skipped_and_counted(joint_feature, toy_root, space_file, tmp_path, capsys):
    (toy_root / f"{FEATURE}_text" / "qidval3.npz").unlink()
    (toy_root / FEATURE / "val_clip5.npz").unlink()
    assert main(tune_args(toy_root, tmp_path / "r", space_file)) == 0
    out = capsys.readouterr().out
    assert "val: skipped 2 of 8 queries without feature files (first: val3:" in out
    best = json.loads((run_folder(tmp_path / "r") / "best_val_metrics.json").read_text())
    assert best["brief"]["MR-full-mAP"] == 100.0


def one_line_error(capsys, args: list[str], expected: str) -> None:
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and expected in err, err


def test_bad_input_gives_one_line_errors(joint_feature, toy_root, space_file, tmp_path, capsys):
    results = tmp_path / "r"
    one_line_error(
        capsys, tune_args(toy_root, results, None),
        f"feature '{FEATURE}' has no joint space; train one with `lighthouse align`",
    )  # fmt: skip
    args = tune_args(toy_root, results, space_file)
    args[args.index(FEATURE)] = "nope"
    one_line_error(capsys, args, "unknown feature 'nope'; registered:")
    one_line_error(
        capsys, [*tune_args(toy_root, results, space_file), "--thresholds"], "grid is empty"
    )
    one_line_error(
        capsys, [*tune_args(toy_root, results, space_file), "--window", "4"],
        "features were made with another layout (requested vs manifest: window 4.0 != 1.0)",
    )  # fmt: skip
    (toy_root / "val.jsonl").write_text('{"qid": 1, "query": "x"\n')
    one_line_error(capsys, tune_args(toy_root, results, space_file), "val.jsonl:1: invalid JSON")
    assert not results.exists()  # a failed start claims no run folder


def test_other_feature_dims_are_refused(joint_feature, toy_root, space_file, tmp_path, capsys):
    np.savez(toy_root / FEATURE / "val_clip0.npz", features=np.ones((16, 7), np.float32))
    one_line_error(
        capsys, tune_args(toy_root, tmp_path / "r", space_file),
        "val_clip0.npz: shape (16, 7) does not fit the joint space",
    )  # fmt: skip


def test_train_refuses_and_list_shows_the_baseline(capsys):
    one_line_error(
        capsys, ["train", "--model", "sliding_window", "--dataset", "custom"],
        "sliding_window is not trained; use lighthouse tune-baseline",
    )  # fmt: skip
    assert main(["list"]) == 0
    listed = capsys.readouterr().out
    assert "  sliding_window  (not trained; use lighthouse tune-baseline)" in listed


def test_infer_on_a_weights_model_config_asks_for_the_checkpoint(tmp_path, capsys):
    (tmp_path / "config.yaml").write_text("model_name: qd_detr\n")
    one_line_error(
        capsys, ["infer", "--checkpoint", str(tmp_path), "--jsonl", "x.jsonl", "--features", "f",
                 "--out", "o.jsonl"],
        "model 'qd_detr' predicts from its checkpoint; pass the run's best.ckpt",
    )  # fmt: skip


def test_infer_refuses_features_of_another_layout(
    joint_feature, toy_root, space_file, tmp_path, capsys
):
    assert main(tune_args(toy_root, tmp_path / "r", space_file)) == 0
    write_layout_manifest(toy_root, window=4.0)
    one_line_error(
        capsys, ["infer", "--checkpoint", str(run_folder(tmp_path / "r")), "--jsonl",
                 str(toy_root / "test.jsonl"), "--features", str(toy_root), "--out",
                 str(tmp_path / "o.jsonl"), "--no-progress"],
        "requested vs manifest: window 1.0 != 4.0",
    )  # fmt: skip
