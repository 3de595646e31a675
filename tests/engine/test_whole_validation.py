"""Validation on whole recordings (eval_whole_recordings, eval_features_root): best.ckpt is picked
on what ``lighthouse infer`` predicts over whole recordings, chunked past the model's span."""

from __future__ import annotations

import json
import shutil

from lighthouse_audio.cli.main import main
from tests.toy_model import run_dir, train_args

SPAN = 8  # frames the model reads at once; the toy recordings have 20


def test_validation_scores_whole_recordings_in_chunks(toy_data, tmp_path, one_torch_thread):
    # val's features under a root of their own, as the demo keeps its 60 s recordings
    val_root = tmp_path / "val_features"
    feats = toy_data / "features" / "custom"
    (val_root / "custom").mkdir(parents=True)
    for name in ("clap", "clap_text"):
        shutil.copytree(feats / name, val_root / "custom" / name)
    val_jsonl = val_root / "custom" / "val.jsonl"
    shutil.copy(feats / "val.jsonl", val_jsonl)

    results = tmp_path / "results"
    args = train_args(toy_data, results, "n_epoch=2", f"max_v_l={SPAN}", f"max_a_l={SPAN}",
                      f"eval_path={val_jsonl}", f"eval_features_root={val_root}",
                      "eval_whole_recordings=true")  # fmt: skip
    assert main(args) == 0
    run = run_dir(results)

    # windows past the first span: the whole recording was predicted, not its first 8 frames
    preds = [json.loads(x) for x in (run / "best_val_preds.jsonl").read_text().splitlines()]
    assert len(preds) == 48
    assert max(w[1] for p in preds for w in p["pred_relevant_windows"]) > SPAN

    # and scored exactly as `lighthouse infer` scores the same recordings (chunked by default)
    out = tmp_path / "preds.jsonl"
    assert main(["infer", "--checkpoint", str(run / "best.ckpt"), "--jsonl", str(val_jsonl),
                 "--features", str(val_root / "custom"), "--out", str(out), "--eval",
                 "--no-progress"]) == 0  # fmt: skip
    assert json.loads(out.with_suffix(".metrics.json").read_text()) == json.loads(
        (run / "best_val_metrics.json").read_text()
    )
    # which Lighthouse's validation (the first span only) does not
    truncated = tmp_path / "truncated.jsonl"
    assert main(["infer", "--checkpoint", str(run / "best.ckpt"), "--jsonl", str(val_jsonl),
                 "--features", str(val_root / "custom"), "--out", str(truncated), "--eval",
                 "--truncate", "--no-progress"]) == 0  # fmt: skip
    assert json.loads(truncated.with_suffix(".metrics.json").read_text()) != json.loads(
        (run / "best_val_metrics.json").read_text()
    )


def test_eval_features_root_alone_keeps_first_span_validation(toy_data, tmp_path):
    """Without eval_whole_recordings the features root still applies: Lighthouse's validation
    of the first span reads val from there."""
    elsewhere = tmp_path / "elsewhere"
    shutil.copytree(toy_data / "features", elsewhere)
    results = tmp_path / "results"
    args = train_args(toy_data, results, "n_epoch=1", f"eval_features_root={elsewhere}")
    assert main(args) == 0
    assert (run_dir(results) / "best_val_metrics.json").is_file()

    shutil.rmtree(elsewhere / "custom" / "clap")  # the audio features val needs are gone
    assert main(train_args(toy_data, tmp_path / "r2", "n_epoch=1",
                           f"eval_features_root={elsewhere}")) != 0  # fmt: skip


def test_a_value_that_is_not_true_or_false_is_refused(toy_data, tmp_path, capsys):
    args = train_args(toy_data, tmp_path / "r", "n_epoch=1", "eval_whole_recordings=3")
    assert main(args) == 2
    assert "eval_whole_recordings=3: expected true/false" in capsys.readouterr().err
    assert not (tmp_path / "r").exists()
