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
    first = '{"qid": 1, "query": "q", "vid": "v", "pred_relevant_windows": [[0, 1, 0.5]]}'
    bad.write_text(first + '\n{"qid": 2,\n')
    gt = tmp_path / "gt.jsonl"
    gt.write_text(
        '{"qid": 1, "query": "q", "duration": 5, "vid": "v", "relevant_windows": [[0, 1]]}\n'
    )
    for command in ("eval", "sed-eval"):
        assert main([command, "--submission", str(bad), "--gt", str(gt)]) == 2
        err = capsys.readouterr().err
        assert f"{bad}:2: invalid JSON" in err
        assert len(err.strip().splitlines()) == 1


def test_missing_file_and_qid_mismatch_exit_2(tmp_path: Path, capsys) -> None:
    gt = tmp_path / "gt.jsonl"
    gt.write_text(
        '{"qid": 1, "query": "q", "duration": 5, "vid": "v", "relevant_windows": [[0, 1]]}\n'
    )
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


GT_LINE = {"qid": "a", "query": "dog", "duration": 10, "vid": "v", "relevant_windows": [[1, 3]]}
PRED_LINE = {"qid": "a", "query": "dog", "vid": "v", "pred_relevant_windows": [[1, 3, 0.9]]}


def _lines(path: Path, *lines) -> Path:
    path.write_bytes(
        b"".join(x if isinstance(x, bytes) else (json.dumps(x) + "\n").encode() for x in lines)
    )
    return path


@pytest.mark.parametrize(
    ("gt_lines", "pred_lines", "bad", "line", "message"),
    [
        ([GT_LINE | {"relevant_windows": [[3, 1]]}], [PRED_LINE], "gt", 1, "has end <= start"),
        ([{k: v for k, v in GT_LINE.items() if k != "duration"}], [PRED_LINE], "gt", 1,
         "missing field(s) duration"),
        ([GT_LINE | {"relevant_windows": [[12, 14]]}], [PRED_LINE], "gt", 1,
         "starts after the end of the clip"),
        ([GT_LINE, GT_LINE], [PRED_LINE], "gt", 2, "duplicate qid 'a' (first on line 1)"),
        ([GT_LINE], [PRED_LINE | {"pred_relevant_windows": [[1, 3, float("nan")]]}], "pred", 1,
         "is not finite (NaN or inf)"),
        ([GT_LINE], [PRED_LINE | {"pred_relevant_windows": [[1, 3, float("inf")]]}], "pred", 1,
         "is not finite (NaN or inf)"),
        ([GT_LINE], [PRED_LINE, PRED_LINE], "pred", 2, "(first on line 1)"),  # SED: vid+query
        ([GT_LINE], [PRED_LINE | {"pred_relevant_windows": [[3, 1, 0.5]]}], "pred", 1,
         "ends before it starts"),
        ([GT_LINE], [PRED_LINE | {"pred_relevant_windows": [[1, 3]]}], "pred", 1,
         "must be [start, end, score]"),
        ([GT_LINE, b'{"qid": "b", "query": "caf\xe9"}\n'], [PRED_LINE], "gt", 2,
         "not UTF-8 text (byte 0xe9 at column 27)"),
        ([GT_LINE], [PRED_LINE, b"\xff\n"], "pred", 2, "not UTF-8 text (byte 0xff at column 1)"),
    ],
)  # fmt: skip
def test_eval_refuses_bad_files_naming_file_and_line(
    tmp_path, capsys, gt_lines, pred_lines, bad, line, message
):
    gt = _lines(tmp_path / "gt.jsonl", *gt_lines)
    pred = _lines(tmp_path / "pred.jsonl", *pred_lines)
    culprit = gt if bad == "gt" else pred
    for command in ("eval", "sed-eval"):
        assert main([command, "--submission", str(pred), "--gt", str(gt)]) == 2, command
        err = capsys.readouterr().err.strip()
        assert err.startswith(f"lighthouse {command}: error: {culprit}:{line}: "), err
        assert message in err and "\n" not in err


@pytest.mark.parametrize("content", [b"", b"\n\n"])
def test_empty_files_are_named_as_such(tmp_path, capsys, content):
    gt = _lines(tmp_path / "gt.jsonl", GT_LINE)
    pred = _lines(tmp_path / "pred.jsonl", PRED_LINE)
    empty = tmp_path / "empty.jsonl"
    empty.write_bytes(content)
    why = "the file is empty" if not content else "only blank lines"
    for command in ("eval", "sed-eval"):
        assert main([command, "--submission", str(empty), "--gt", str(gt)]) == 2
        assert capsys.readouterr().err.strip().endswith(f"{empty}: no predictions ({why})")
        assert main([command, "--submission", str(pred), "--gt", str(empty)]) == 2
        assert capsys.readouterr().err.strip().endswith(f"{empty}: no annotations ({why})")


def test_valid_pair_scores(tmp_path, capsys):
    gt = _lines(tmp_path / "gt.jsonl", GT_LINE)
    pred = _lines(tmp_path / "pred.jsonl", PRED_LINE)
    assert main(["eval", "--submission", str(pred), "--gt", str(gt)]) == 0
    assert json.loads(capsys.readouterr().out)["brief"]["MR-full-R1@0.5"] == 100.0


def test_queries_left_out_by_the_length_filter_are_reported(tmp_path, capsys):
    long_gt = GT_LINE | {"qid": "b", "duration": 2000, "relevant_windows": [[0, 1600]]}
    gt = _lines(tmp_path / "gt.jsonl", GT_LINE, long_gt)
    pred = _lines(tmp_path / "pred.jsonl", PRED_LINE, PRED_LINE | {"qid": "b"})
    assert main(["eval", "--submission", str(pred), "--gt", str(gt)]) == 0
    err = capsys.readouterr().err.strip()
    assert err == (
        "lighthouse eval: warning: 1 of 2 queries have no ground-truth window of length in "
        "(0, 1500] s and are left out of the scores, as Lighthouse's evaluation does"
    )
