"""``lighthouse eval`` and ``lighthouse sed-eval`` through the CLI entry point."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lighthouse_audio.cli.main import main
from lighthouse_audio.file_io import load_jsonl, write_json
from tests.conftest import SHARED, fixture_files

ANNOTATIONS = SHARED / "data" / "annotations"

EVAL_FIXTURE = next(iter(fixture_files("eval_preds_unav100-subset_test_seed*.jsonl")), None)
SED_FIXTURE = next(iter(fixture_files("sed_metrics_tut2017_seed*.json")), None)


@pytest.mark.skipif(EVAL_FIXTURE is None, reason="no UnAV-100 eval fixture")
def test_eval_prints_and_saves_lighthouse_metrics(tmp_path: Path, capsys) -> None:
    expected_file = EVAL_FIXTURE.with_name(
        EVAL_FIXTURE.name.replace("eval_preds_", "eval_metrics_")
    ).with_suffix(".json")
    save = tmp_path / "out" / "metrics.json"
    argv = ["eval", "--submission", str(EVAL_FIXTURE), "--gt"]
    argv += [str(ANNOTATIONS / "unav100-subset_test_release.jsonl"), "--save", str(save)]
    assert main(argv) == 0
    assert save.read_text() == expected_file.read_text()  # byte-identical to Lighthouse's file
    assert json.loads(capsys.readouterr().out) == json.loads(expected_file.read_text())


@pytest.mark.skipif(SED_FIXTURE is None, reason="no TUT2017 SED fixture")
def test_sed_eval_prints_and_saves(tmp_path: Path, capsys) -> None:
    fixture = json.loads(SED_FIXTURE.read_text())
    run = fixture["runs"][0]
    save = tmp_path / "sed.json"
    argv = ["sed-eval", "--submission", str(SED_FIXTURE.parent / fixture["pred_jsonl"])]
    argv += ["--gt", str(ANNOTATIONS / "tut2017_test_release.jsonl")]
    argv += ["--threshold", str(run["threshold"]), "--label-resolution"]
    argv += [str(run["label_resolution"]), "--save", str(save)]
    assert main(argv) == 0
    assert capsys.readouterr().out == run["stdout"]
    saved = json.loads(save.read_text())
    assert (saved["precision"], saved["recall"], saved["f1"]) == (
        run["precision"],
        run["recall"],
        run["f1"],
    )
    assert saved["counts"] == run["counts"]


def test_malformed_jsonl_exits_2_naming_file_and_line(tmp_path: Path, capsys) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"qid": 1, "pred_relevant_windows": [[0, 1, 0.5]]}\n{"qid": 2,\n')
    gt = tmp_path / "gt.jsonl"
    gt.write_text('{"qid": 1, "relevant_windows": [[0, 1]]}\n')
    for command in ("eval", "sed-eval"):
        assert main([command, "--submission", str(bad), "--gt", str(gt)]) == 2
        err = capsys.readouterr().err
        assert f"{bad}:2: malformed JSON" in err
        assert len(err.strip().splitlines()) == 1


def test_missing_file_and_qid_mismatch_exit_2(tmp_path: Path, capsys) -> None:
    gt = tmp_path / "gt.jsonl"
    gt.write_text('{"qid": 1, "relevant_windows": [[0, 1]]}\n')
    assert main(["eval", "--submission", str(tmp_path / "none.jsonl"), "--gt", str(gt)]) == 2
    assert "none.jsonl" in capsys.readouterr().err
    pred = tmp_path / "pred.jsonl"
    pred.write_text('{"qid": "1", "pred_relevant_windows": [[0, 1, 0.5]]}\n')
    assert main(["eval", "--submission", str(pred), "--gt", str(gt)]) == 2
    err = capsys.readouterr().err
    assert "pred.jsonl" in err and "qids in submission and ground truth must match" in err


def test_load_jsonl_and_save_json_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "a.jsonl"
    path.write_text('{"qid": 1}\n\n{"qid": "x"}\n')
    assert load_jsonl(path) == [{"qid": 1}, {"qid": "x"}]
    path.write_text("[1, 2]\n")
    with pytest.raises(ValueError, match=r"a\.jsonl:1: expected a JSON object"):
        load_jsonl(path)
    target = tmp_path / "m.json"
    write_json({"b": 1, "a": [1.5]}, target)
    assert target.read_text() == json.dumps({"b": 1, "a": [1.5]}, indent=4)
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []
