"""SED threshold tuning: one raster swept over a grid, and ``lighthouse sed-eval --tune-*``."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from lighthouse_audio.cli.main import main
from lighthouse_audio.evaluation.sed import (
    parse_thresholds,
    rasterise,
    sed_evaluate,
    threshold_curve,
    tune_threshold,
)
from lighthouse_audio.file_io import load_jsonl
from tests.evaluation.sed_cases import TUT_GT, TUT_PREDS
from tests.evaluation.sed_cases import pred_line as _pred
from tests.evaluation.sed_cases import ref_line as _ref


def test_parse_thresholds() -> None:
    assert parse_thresholds("0:1:0.25") == [0.0, 0.25, 0.5, 0.75, 1.0]
    assert parse_thresholds("0:1:0.05")[3] == 0.15  # rounded, not 0.15000000000000002
    assert len(parse_thresholds("0:1:0.05")) == 21
    assert parse_thresholds("0.7,0.3, 0.3") == [0.3, 0.7]
    for bad in ("0:1", "0:1:0", "1:0:0.1", "a,b", ""):
        with pytest.raises(ValueError, match="thresholds"):
            parse_thresholds(bad)


@pytest.mark.skipif(TUT_PREDS is None, reason="no TUT2017 SED fixture")
def test_sweep_equals_evaluating_each_threshold() -> None:
    reference, predictions = load_jsonl(TUT_GT), load_jsonl(TUT_PREDS)
    # Grid points plus thresholds equal to scores in the file (strict > at the boundary).
    scores = sorted({w[2] for line in predictions for w in line["pred_relevant_windows"]})
    in_file = [scores[int(q * (len(scores) - 1))] for q in (0.1, 0.35, 0.6, 0.9)]
    thresholds = sorted(set(parse_thresholds("0:1:0.1") + in_file))
    curve = threshold_curve(rasterise(reference, predictions), thresholds)
    for point in curve:
        direct = sed_evaluate(reference, predictions, point["threshold"])
        assert (point["precision"], point["recall"], point["f1"]) == (
            direct["precision"],
            direct["recall"],
            direct["f1"],
        )


def test_tuning_by_hand_and_tie_break() -> None:
    # Reference frames 0..2. Windows: [0, 2] at 0.8 (3 TP), [0, 5] at 0.4 (3 more FP frames).
    reference = [_ref([[0, 2]])]
    predictions = [_pred([[0, 2, 0.8], [0, 5, 0.4]])]
    raster = rasterise(reference, predictions)
    assert raster.counts([0.3, 0.5, 0.9]).tolist() == [[3, 3, 0], [3, 0, 0], [0, 0, 3]]
    best, curve = tune_threshold(raster, [0.9, 0.3, 0.5, 0.6, 0.7])
    assert best == 0.5  # 0.5, 0.6 and 0.7 tie at F1 100: the lowest wins
    assert [p["threshold"] for p in curve] == [0.3, 0.5, 0.6, 0.7, 0.9]
    assert [p["f1"] for p in curve] == [66.67, 100.0, 100.0, 100.0, 0.0]


def test_nan_scores_never_pass() -> None:
    raster = rasterise([_ref([[0, 1]])], [_pred([[0, 1, float("nan")], [1, 1, 0.9]])])
    assert raster.counts([0.5]).tolist() == [[1, 0, 1]]
    assert np.isneginf(raster.scores[0, 0])


def test_cli_tunes_on_dev_and_applies_to_test(tmp_path: Path, capsys) -> None:
    def write(name: str, lines: list[dict]) -> Path:
        path = tmp_path / name  # annotation lines carry a qid, like every Lighthouse file
        numbered = [{"qid": i} | line for i, line in enumerate(lines)]
        path.write_text("".join(json.dumps(line) + "\n" for line in numbered))
        return path

    dev_gt = write("dev_gt.jsonl", [_ref([[0, 2]])])
    dev_pred = write("dev_pred.jsonl", [_pred([[0, 2, 0.8], [0, 5, 0.4]])])
    test_gt = write("gt.jsonl", [_ref([[0, 3]], vid="t")])
    test_pred = write("pred.jsonl", [_pred([[0, 3, 0.7], [0, 9, 0.45]], vid="t")])
    save = tmp_path / "out.json"
    argv = ["sed-eval", "--submission", str(test_pred), "--gt", str(test_gt), "--save", str(save)]
    argv += ["--tune-submission", str(dev_pred), "--tune-gt", str(dev_gt)]
    argv += ["--thresholds", "0.3,0.5,0.9", "--threshold", "0.4"]
    assert main(argv) == 0
    out, err = capsys.readouterr()
    # Untuned at 0.4: [0, 9] passes -> 4 TP, 6 FP. Tuned 0.5: only [0, 3] -> 4 TP.
    assert out == "Micro Average\nPrecision, Recall, F1\n40.00, 100.00, 57.14\n"
    assert "tuned threshold 0.5 (dev micro F1 100.00)" in err
    saved = json.loads(save.read_text())
    assert saved["threshold"] == 0.4 and saved["f1"] == 57.14  # untuned keys unchanged
    assert saved["tuned_threshold"] == 0.5
    assert (saved["tuned"]["precision"], saved["tuned"]["f1"]) == (100.0, 100.0)
    assert saved["tuned"]["dev"]["curve"] == [
        {"threshold": 0.3, "precision": 50.0, "recall": 100.0, "f1": 66.67},
        {"threshold": 0.5, "precision": 100.0, "recall": 100.0, "f1": 100.0},
        {"threshold": 0.9, "precision": 0.0, "recall": 0.0, "f1": 0.0},
    ]
    assert saved["event_based"]["counts"]["n_sys"] == 1  # [0, 3] and [0, 9] merge
    assert saved["tuned"]["event_based"]["f1"] == 100.0
    assert saved["tuned"]["segment_based"]["f1"] == 100.0

    assert main([*argv, "--no-event-metrics"]) == 0
    capsys.readouterr()
    saved = json.loads(save.read_text())
    assert "event_based" not in saved and "event_based" not in saved["tuned"]


def test_cli_tuning_needs_both_files(tmp_path: Path, capsys) -> None:
    gt = tmp_path / "gt.jsonl"
    gt.write_text(json.dumps(_ref([[0, 1]])) + "\n")
    argv = ["sed-eval", "--submission", str(gt), "--gt", str(gt), "--tune-gt", str(gt)]
    assert main(argv) == 2
    assert "--tune-submission and --tune-gt go together" in capsys.readouterr().err
