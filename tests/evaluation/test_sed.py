"""Zero-shot SED metric: parity with the AMR wrapper's fixtures, and hand-worked cases."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lighthouse_audio.evaluation.sed import format_sed_stdout, sed_evaluate
from lighthouse_audio.file_io import load_jsonl
from tests.conftest import SHARED, fixture_files, lighthouse_fixtures_dir

ANNOTATIONS = SHARED / "data" / "annotations"


def _first_token_file(field: str, folders: tuple[Path, ...]) -> Path:
    """``"tut2017_test_release.jsonl (Lighthouse data/tut2017)"`` -> an existing path."""
    name = field.split()[0]
    for folder in folders:
        if (folder / name).is_file():
            return folder / name
    pytest.fail(f"cannot find {name} in {[str(f) for f in folders]}")


def _runs() -> list:
    params = []
    for metrics_file in fixture_files("sed_metrics_*.json"):
        for index, run in enumerate(json.loads(metrics_file.read_text())["runs"]):
            run_id = f"{metrics_file.stem}-t{run['threshold']}-r{run['label_resolution']}-{index}"
            params.append(pytest.param(metrics_file, index, id=run_id))
    return params


@pytest.mark.parametrize(("metrics_file", "run_index"), _runs())
def test_reproduces_wrapper_sed_metrics(metrics_file: Path, run_index: int) -> None:
    fixture = json.loads(metrics_file.read_text())
    run = fixture["runs"][run_index]
    folders = (lighthouse_fixtures_dir(), ANNOTATIONS)
    reference = load_jsonl(_first_token_file(fixture["ref_jsonl"], folders))
    predictions = load_jsonl(_first_token_file(fixture["pred_jsonl"], folders))
    result = sed_evaluate(reference, predictions, run["threshold"], run["label_resolution"])
    assert format_sed_stdout(result) == run["stdout"]
    assert (result["precision"], result["recall"], result["f1"]) == (
        run["precision"],
        run["recall"],
        run["f1"],
    )
    assert result["counts"] == run["counts"]
    assert result["labels"] == run["labels"]


def test_fixture_folder_has_sed_fixtures() -> None:
    if not lighthouse_fixtures_dir().is_dir():
        pytest.skip("no Lighthouse fixture folder")
    assert fixture_files("sed_metrics_*.json"), "no sed_metrics_* fixture found"


# ---------------------------------------------------------------------------------------------
# Hand-worked cases. One clip "a" of 20 s and one label "dog" unless stated otherwise.


def _ref(windows, duration=20, vid="a", query="dog"):
    return {"query": query, "vid": vid, "duration": duration, "relevant_windows": windows}


def _pred(windows, vid="a", query="dog"):
    return {"query": query, "vid": vid, "pred_relevant_windows": windows}


def test_rasterisation_is_inclusive_on_frame_indices() -> None:
    # [7.0, 12.7] lights frames 7..12 (6 frames); the prediction [7, 12] lights the same frames.
    result = sed_evaluate([_ref([[7.0, 12.7]])], [_pred([[7, 12, 0.9]])])
    assert result["counts"] == {
        "tp": 6,
        "fp": 0,
        "fn": 0,
        "tn": 14,
        "cells": 20,
        "n_labels": 1,
        "n_frames_total": 20,
    }
    assert (result["precision"], result["recall"], result["f1"]) == (100.0, 100.0, 100.0)


def test_unit_window_lights_two_frames() -> None:
    # Reference [0, 1] lights frames 0 and 1; predicting frame 0 only ([0, 0.5]) gets half.
    result = sed_evaluate([_ref([[0, 1]])], [_pred([[0, 0.5, 0.9]])])
    assert (result["counts"]["tp"], result["counts"]["fn"]) == (1, 1)
    assert (result["precision"], result["recall"], result["f1"]) == (100.0, 50.0, 66.67)


def test_threshold_is_strict() -> None:
    result = sed_evaluate([_ref([[0, 4]])], [_pred([[0, 4, 0.5]])], threshold=0.5)
    assert result["counts"]["tp"] == result["counts"]["fp"] == 0
    # zero_division=0: nothing predicted gives 0 precision, not an error.
    assert (result["precision"], result["recall"], result["f1"]) == (0.0, 0.0, 0.0)
    result = sed_evaluate([_ref([[0, 4]])], [_pred([[0, 4, 0.5001]])], threshold=0.5)
    assert result["counts"]["tp"] == 5


def test_windows_past_the_clip_are_cut() -> None:
    result = sed_evaluate([_ref([[0, 1]], duration=10)], [_pred([[8, 100, 0.9]])])
    assert result["counts"]["fp"] == 2  # frames 8 and 9 only
    assert result["counts"]["n_frames_total"] == 10


def test_label_resolution_adds_frames_without_rescaling() -> None:
    # Resolution 2: 20 frames for 10 s; the window [0, 10] lights indices 0..10 (11 cells).
    result = sed_evaluate(
        [_ref([[0, 10]], duration=10)], [_pred([[5, 30, 0.9]])], label_resolution=2
    )
    assert result["counts"]["n_frames_total"] == 20
    assert result["counts"]["tp"] == 6  # indices 5..10
    assert result["counts"]["fp"] == 9  # indices 11..19
    assert result["counts"]["fn"] == 5  # indices 0..4


def test_micro_average_over_labels_and_clips() -> None:
    reference = [
        _ref([[0, 1]], vid="a", query="dog"),
        _ref([[2, 3]], vid="a", query="car"),
        _ref([], duration=5, vid="b", query="dog"),
    ]
    predictions = [
        _pred([[0, 1, 0.9]], vid="a", query="dog"),  # 2 TP
        _pred([[3, 5, 0.9]], vid="a", query="car"),  # 1 TP, 2 FP, 1 FN
        _pred([[0, 0, 0.9]], vid="b", query="dog"),  # 1 FP
    ]
    result = sed_evaluate(reference, predictions)
    counts = result["counts"]
    assert (counts["tp"], counts["fp"], counts["fn"]) == (3, 3, 1)
    assert counts["n_labels"] == 2 and counts["n_frames_total"] == 25 and counts["cells"] == 50
    assert result["labels"] == ["dog", "car"]
    assert (result["precision"], result["recall"], result["f1"]) == (50.0, 75.0, 60.0)
    assert (
        format_sed_stdout(result) == "Micro Average\nPrecision, Recall, F1\n50.00, 75.00, 60.00\n"
    )


def test_unknown_vid_or_label_and_missing_vid_raise() -> None:
    reference = [_ref([[0, 1]], vid="a"), _ref([[0, 1]], vid="b")]
    with pytest.raises(ValueError, match="vid 'zzz' is not in the reference"):
        sed_evaluate(reference, [_pred([], vid="zzz")])
    with pytest.raises(ValueError, match="query 'cat' is not one of"):
        sed_evaluate(reference, [_pred([], query="cat")])
    with pytest.raises(ValueError, match="no prediction line, e.g. vid 'b'"):
        sed_evaluate(reference, [_pred([[0, 1, 0.9]], vid="a")])
