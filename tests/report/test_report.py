"""``lighthouse report``: runs and metrics files -> tables, CSV, chart; a safe output folder."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
import yaml

from lighthouse_audio.cli.main import main
from lighthouse_audio.report.paper import PAPER_RESULTS, load_paper_results
from tests.conftest import SHARED


def _brief(r05: float, r07: float, m05: float, m075: float, mavg: float) -> dict:
    brief = {
        "MR-full-R1@0.5": r05,
        "MR-full-R1@0.7": r07,
        "MR-full-mAP": mavg,
        "MR-full-mAP@0.5": m05,
        "MR-full-mAP@0.75": m075,
    }
    return {"brief": brief, "full": {}}


def _run(root: Path, name: str, config: dict, test=None, val=None) -> Path:
    run_dir = root / name
    run_dir.mkdir(parents=True)
    (run_dir / "config.yaml").write_text(yaml.safe_dump(config))
    if test is not None:
        (run_dir / "test_metrics.json").write_text(json.dumps(test, indent=4))
    if val is not None:
        (run_dir / "best_val_metrics.json").write_text(json.dumps(val, indent=4))
    return run_dir


@pytest.fixture
def runs(tmp_path: Path) -> dict[str, Path]:
    root = tmp_path / "runs"
    detr = {"model_name": "qd_detr", "dset_name": "clotho-moment", "a_feat_types": "clap"}
    window = {**detr, "model_name": "sliding_window", "window": 10, "threshold": 0.5}
    window["median_length"] = 3
    return {
        "detr": _run(
            root, "detr", detr, test=_brief(60, 40.5, 70, 45, 44.44), val=_brief(1, 1, 1, 1, 1)
        ),  # fmt: skip
        "detr_unav": _run(
            root,
            "detr_unav",
            {**detr, "dset_name": "unav100-subset"},
            val=_brief(30, 20, 35, 18, 19.5),
        ),  # fmt: skip
        "window": _run(root, "window", window, test=_brief(33.3, 10, 40, 12, 15)),
    }


def _read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as f:
        return list(csv.DictReader(f))


def test_table1_from_run_folders(tmp_path: Path, runs: dict[str, Path], capsys) -> None:
    out = tmp_path / "report"
    argv = ["report", str(runs["detr"]), str(runs["detr_unav"]), str(runs["window"])]
    assert main([*argv, "--out", str(out), "--title", "Demo", "--no-paper"]) == 0
    printed = capsys.readouterr().out.split()
    assert str(out / "table1.md") in printed and str(out / "figure.png") in printed
    assert not (out / "table2.md").exists()  # no SED input, no Table II

    rows = _read_csv(out / "table1.csv")
    assert [(r["Method"], r["Encoder"], r["Window"]) for r in rows] == [
        ("AM-DETR", "clap", ""),
        ("Sliding window", "clap", "10 s"),
    ]
    detr, window = rows
    assert float(detr["clotho-moment (test) R1@0.5"]) == 60.0  # test_metrics over best_val
    assert float(detr["clotho-moment (test) mAP avg"]) == 44.44
    assert float(detr["unav100-subset (val) R1@0.7"]) == 20.0  # only best_val: split says so
    assert window["unav100-subset (val) R1@0.7"] == ""
    assert float(window["clotho-moment (test) mAP@0.75"]) == 12.0

    markdown = (out / "table1.md").read_text()
    assert "| AM-DETR | clap |  | measured | 60.00 | 40.50 | 70.00 | 45.00 | 44.44 |" in markdown
    assert "| Sliding window | clap | 10 s | measured | 33.30 |" in markdown
    assert "–" in markdown  # the baseline has no UnAV-100 result
    report = (out / "report.md").read_text()
    assert report.startswith("# Demo\n") and "![mAP avg and R1@0.7](figure.png)" in report
    png = (out / "figure.png").read_bytes()
    assert png.startswith(b"\x89PNG") and len(png) > 1000
    # Run folders are only read.
    assert sorted(p.name for p in runs["detr"].iterdir()) == [
        "best_val_metrics.json",
        "config.yaml",
        "test_metrics.json",
    ]


def test_bare_metrics_and_sed_files(tmp_path: Path) -> None:
    metrics = tmp_path / "m.json"
    metrics.write_text(json.dumps(_brief(50, 25, 55, 20, 22)))
    sed = tmp_path / "sed_detr.json"
    sed.write_text(json.dumps({
        "threshold": 0.5, "label_resolution": 1.0, "precision": 32.53, "recall": 76.24,
        "f1": 45.6, "counts": {}, "labels": [], "tuned_threshold": 0.4,
        "tuned": {"threshold": 0.4, "precision": 31.85, "recall": 85.74, "f1": 46.45},
    }))  # fmt: skip
    untuned = tmp_path / "sed_window.json"
    untuned.write_text(json.dumps({"threshold": 0.3, "precision": 10, "recall": 20, "f1": 13.33,
                                   "counts": {}}))  # fmt: skip
    out = tmp_path / "out"
    argv = ["report", f"AM-DETR/castella/clap={metrics}", f"AM-DETR={sed}", str(untuned)]
    assert main([*argv, "--out", str(out), "--no-paper"]) == 0
    row = _read_csv(out / "table1.csv")[0]
    assert (row["Method"], row["Encoder"], float(row["castella (test) mAP@0.5"])) == (
        "AM-DETR",
        "clap",
        55.0,
    )
    rows = _read_csv(out / "table2.csv")
    assert [r["Method"] for r in rows] == ["AM-DETR", "sed_window"]
    assert float(rows[0]["F1"]) == 45.6 and float(rows[0]["Tuned threshold"]) == 0.4
    assert float(rows[0]["F1 (tuned)"]) == 46.45
    assert rows[1]["Tuned threshold"] == "" and float(rows[1]["Threshold"]) == 0.3
    assert (
        "| AM-DETR | measured | 0.500 | 32.53 | 76.24 | 45.60 | 0.400 |"
        in (out / "table2.md").read_text()
    )


def test_paper_rows_are_labelled(tmp_path: Path, runs: dict[str, Path]) -> None:
    paper = tmp_path / "paper.json"
    paper.write_text(json.dumps({
        "source": "Munakata et al., ICASSP 2025, arXiv:2409.15672, Table I",
        "table_1": [
            {"method": "AM-DETR", "encoder": "clap", "dataset": "clotho-moment", "split": "test",
             "metrics": {"R1@0.5": 1, "R1@0.7": 2, "mAP@0.5": 3, "mAP@0.75": 4, "mAP avg": 5}},
            {"method": "AM-DETR", "encoder": "clap", "dataset": "tut2017", "split": "test",
             "metrics": {"R1@0.5": 1, "R1@0.7": 2, "mAP@0.5": 3, "mAP@0.75": 4, "mAP avg": 5}},
        ],
    }))  # fmt: skip
    out = tmp_path / "out"
    argv = ["report", str(runs["detr"]), "--out", str(out), "--paper-results", str(paper)]
    assert main(argv) == 0
    rows = _read_csv(out / "table1.csv")
    assert [(r["Method"], r["Source"]) for r in rows] == [
        ("AM-DETR", "paper (reported)"),
        ("AM-DETR", "measured"),
    ]
    assert "tut2017 (test) R1@0.5" not in rows[0]  # only the datasets the report covers
    report = (out / "report.md").read_text()
    assert "| AM-DETR | clap |  | paper (reported) | 1.00 |" in report
    assert 'Rows marked "paper (reported)": Munakata et al.' in report


def test_packaged_paper_results_have_a_source() -> None:
    data = json.loads(PAPER_RESULTS.read_text())
    assert "2409.15672" in data["source"]
    load_paper_results()  # parses, whatever rows it holds


PAPER_TABLES = SHARED / "data" / "paper" / "paper_tables.json"


@pytest.mark.skipif(not PAPER_TABLES.exists(), reason="needs shared/data/paper")
def test_packaged_paper_rows_are_the_published_tables() -> None:
    packaged = json.loads(PAPER_RESULTS.read_text())
    published = json.loads(PAPER_TABLES.read_text())
    assert packaged["table_1"] == published["table_1"]
    assert packaged["table_2"] == published["table_2"]
    mr, sed = load_paper_results()
    assert len(mr) == len(published["table_1"])
    # each method's untuned and tuned Table II rows are one entry
    assert len(sed) == len({row["method"] for row in published["table_2"]})


@pytest.mark.skipif(not PAPER_TABLES.exists(), reason="needs shared/data/paper")
def test_report_shows_paper_tables_one_and_two(tmp_path: Path, runs: dict[str, Path]) -> None:
    published = json.loads(PAPER_TABLES.read_text())
    sed = tmp_path / "sed_detr.json"
    scores = {"threshold": 0.5, "precision": 30, "recall": 40, "f1": 34.29, "counts": {}}
    sed.write_text(json.dumps(scores))
    out = tmp_path / "out"
    assert main(["report", str(runs["detr"]), f"AM-DETR={sed}", "--out", str(out)]) == 0

    table1 = _read_csv(out / "table1.csv")
    paper_rows = [r for r in table1 if r["Source"] == "paper (reported)"]
    clotho = [r for r in published["table_1"] if r["dataset"] == "clotho-moment"]
    assert len(paper_rows) == len(clotho)  # the report covers clotho-moment only
    want = {(r["method"], r["metrics"]["mAP avg"]) for r in clotho}
    got = {(r["Method"], float(r["clotho-moment (test) mAP avg"])) for r in paper_rows}
    assert got == want
    windows = {r["Window"] for r in paper_rows if r["Method"] == "Baseline"}
    assert windows == {f"{r['window_s']:g} s" for r in clotho if r["method"] == "Baseline"}

    table2 = {r["Method"]: r for r in _read_csv(out / "table2.csv")}
    rnn = next(r for r in published["table_2"] if r["method"].startswith("RNN"))
    rnn_row = table2[rnn["method"]]
    assert rnn_row["Source"] == "paper (reported)"
    assert rnn_row["Precision"] == "" and float(rnn_row["F1"]) == rnn["f1"]
    for row in published["table_2"]:
        if row.get("window_s") and row["tuned"]:
            entry = table2[f"{row['method']} ({row['window_s']:g} s)"]
            assert float(entry["Tuned threshold"]) == row["threshold"]
            assert float(entry["F1 (tuned)"]) == row["f1"]
    assert "–" in (out / "table2.md").read_text()  # scores the paper does not print


def test_refuses_to_overwrite_and_run_folders(tmp_path: Path, runs, capsys) -> None:
    out = tmp_path / "out"
    assert main(["report", str(runs["window"]), "--out", str(out), "--no-paper"]) == 0
    before = (out / "table1.csv").read_text()
    capsys.readouterr()
    assert main(["report", str(runs["detr"]), "--out", str(out), "--no-paper"]) == 2
    err = capsys.readouterr().err
    assert "exists" in err and "--force" in err and len(err.strip().splitlines()) == 1
    assert (out / "table1.csv").read_text() == before  # nothing replaced
    assert main(["report", str(runs["detr"]), "--out", str(out), "--no-paper", "--force"]) == 0
    assert (out / "table1.csv").read_text() != before

    for target in (runs["detr"], runs["detr"] / "report"):
        assert main(["report", str(runs["detr"]), "--out", str(target)]) == 2
        assert "run folder" in capsys.readouterr().err
    assert not (runs["detr"] / "report").exists()


@pytest.mark.parametrize("case", ["no_config", "no_metrics", "bad_metrics", "missing", "bare"])
def test_bad_input_is_one_line_naming_the_path(tmp_path: Path, case: str, capsys) -> None:
    path = tmp_path / "thing"
    if case == "no_config":
        path.mkdir()
        (path / "test_metrics.json").write_text(json.dumps(_brief(1, 1, 1, 1, 1)))
    elif case == "no_metrics":
        _run(tmp_path, "thing", {"model_name": "qd_detr", "dset_name": "castella"})
    elif case == "bad_metrics":
        _run(tmp_path, "thing", {"model_name": "qd_detr", "dset_name": "castella"},
             test={"brief": {"MR-full-R1@0.5": 1}})  # fmt: skip
    elif case == "bare":
        path = tmp_path / "m.json"
        path.write_text(json.dumps(_brief(1, 1, 1, 1, 1)))
    assert main(["report", str(path), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert str(path) in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    ("model_name", "folder", "method"),
    [
        ("cg_detr", "cg_detr", "CG-DETR"),
        ("taskweave", "taskweave_hd2mr", "TaskWeave (HD2MR)"),
        ("taskweave", "taskweave_mr2hd", "TaskWeave (MR2HD)"),
        ("my_detr", "my_detr", "my_detr"),  # a third-party model keeps its own name
    ],
)
def test_each_model_has_its_method_name(tmp_path: Path, model_name, folder, method) -> None:
    from lighthouse_audio.report.sources import load_run

    results_dir = tmp_path / "results" / folder / "castella" / "clap"
    config = {"model_name": model_name, "dset_name": "castella", "results_dir": str(results_dir)}
    run_dir = _run(tmp_path, "run", config, val=_brief(1, 2, 3, 4, 5))
    assert load_run(run_dir).method == method
