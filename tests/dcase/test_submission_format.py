"""The DCASE 2026 Task 6 submission rules (``prediction.submission``) and the command's errors.

Hand-worked cases for each rule: rounding, clipping, windows made empty, duplicates, ranking and
top-k, then the pairing of predictions with queries and the one-line errors of the command.
"""

from __future__ import annotations

import doctest
import json
import random
from pathlib import Path

import pytest

from lighthouse_audio.cli.main import main
from lighthouse_audio.prediction import submission
from lighthouse_audio.prediction.submission import (
    SUBMISSION_KEYS,
    build_submission,
    format_window,
    format_windows,
)


def test_the_docstring_examples_hold():
    result = doctest.testmod(submission)
    assert result.attempted >= 4
    assert result.failed == 0


@pytest.mark.parametrize(
    ("start", "end", "max_end", "expected"),
    [
        (12.4, 15.6, 300, [12, 16]),  # nearest second
        (2.5, 7.5, 300, [2, 8]),  # halves to even, as Lighthouse's post-processing
        (12.0, 15.0, 300, [12, 15]),  # whole seconds stay as they are
        (-3.0, 2.0, 300, [0, 2]),  # clipped at 0
        (290.2, 312.0, 300, [290, 300]),  # clipped at the limit
        (50.0, 70.0, 60, [50, 60]),  # another limit
        (3.2, 3.4, 300, [3, 4]),  # [3, 3] after rounding: the second holding the midpoint
        (3.6, 3.8, 300, [3, 4]),  # [4, 4] after rounding, but the audio is in second 3
        (3.5, 4.5, 300, [4, 5]),  # [4, 4] after rounding (halves to even), midpoint 4.0
        (0.0, 0.0, 300, [0, 1]),
        (-5.0, -1.0, 300, [0, 1]),  # wholly before 0: the first second
        (300.0, 300.0, 300, [299, 300]),  # at the limit: the last second
        (320.0, 330.0, 300, [299, 300]),  # wholly past the limit: the last second
        (299.6, 300.4, 300, [299, 300]),
    ],
)
def test_format_window(start, end, max_end, expected):
    window = format_window(start, end, max_end)
    assert window == expected
    assert all(type(t) is int for t in window)


def test_every_formatted_window_is_whole_non_empty_and_inside_the_limits():
    rng = random.Random(0)
    for _ in range(2000):
        max_end = rng.choice([1, 2, 60, 300])
        start = rng.uniform(-20, max_end + 20)
        end = start + rng.choice([0.0, rng.uniform(0, 1), rng.uniform(0, 400)])
        lo, hi = format_window(start, end, max_end)
        assert type(lo) is int and type(hi) is int
        assert 0 <= lo < hi <= max_end, (start, end, max_end, lo, hi)


@pytest.mark.parametrize(
    ("args", "problem"),
    [
        ((5.0, 4.0), "window [5.0, 4.0] ends before it starts"),
        ((float("nan"), 4.0), "is not finite"),
        ((1.0, float("inf")), "is not finite"),
        ((1.0, 2.0, 0), "max_end=0: must be a whole number of seconds >= 1"),
        ((1.0, 2.0, 299.5), "max_end=299.5"),
    ],
)
def test_format_window_refuses(args, problem):
    with pytest.raises(ValueError, match=problem.replace("[", r"\[").replace("]", r"\]")):
        format_window(*args)


def test_windows_are_ranked_by_score_with_ties_in_their_order():
    windows = [[0, 1, 0.5], [5, 6, 0.9], [2, 3, 0.5], [7, 9, 0.95]]
    assert format_windows(windows) == [[7, 9], [5, 6], [0, 1], [2, 3]]


def test_a_window_equal_to_a_better_one_after_formatting_is_dropped():
    windows = [[10.2, 20.4, 0.9], [30, 40, 0.8], [9.8, 19.6, 0.7], [3.2, 3.4, 0.6], [3.6, 3.8, 0.5]]
    assert format_windows(windows) == [[10, 20], [30, 40], [3, 4]]


def test_the_best_ranked_copy_is_the_one_kept():
    # [30, 40] ranks first (0.9); its copy from [29.8, 40.2] (0.1) goes, from the end of the list
    windows = [[29.8, 40.2, 0.1], [30, 40, 0.9], [50, 60, 0.5]]
    assert format_windows(windows) == [[30, 40], [50, 60]]


def test_top_k_counts_distinct_windows():
    windows = [[10.2, 20.4, 0.9], [9.8, 19.6, 0.8], [30, 40, 0.7], [50, 60, 0.6]]
    assert format_windows(windows, top_k=2) == [[10, 20], [30, 40]]
    assert format_windows(windows, top_k=1) == [[10, 20]]
    assert format_windows(windows, top_k=10) == [[10, 20], [30, 40], [50, 60]]
    assert format_windows(windows) == [[10, 20], [30, 40], [50, 60]]
    assert format_windows([]) == []
    with pytest.raises(ValueError, match="top_k=0"):
        format_windows(windows, top_k=0)


def test_max_end_reaches_every_window():
    assert format_windows([[10, 90, 0.9], [70, 80, 0.5]], max_end=60) == [[10, 60], [59, 60]]


def test_windows_need_a_score():
    with pytest.raises(ValueError, match=r"window 1 \[3, 4\]: expected \[start, end, score\]"):
        format_windows([[1, 2, 0.5], [3, 4]])


QUERIES = [  # query files may hold windows (annotations) or not (evaluation queries)
    {"qid": "a_1", "query": "a dog", "duration": 299, "vid": "a", "relevant_windows": [[1, 9]]},
    {"qid": "a_2", "query": "rain", "duration": 299, "vid": "a"},
    {"qid": "b_1", "query": "a bell rings", "duration": 83.5, "vid": "b"},
]


def prediction(query: dict, windows: list) -> dict:
    return {"qid": query["qid"], "query": query["query"], "vid": query["vid"],
            "pred_relevant_windows": windows}  # fmt: skip


def located(name: str, lines: list[dict]) -> list[tuple[str, dict]]:
    return [(f"{name}:{i}", line) for i, line in enumerate(lines, start=1)]


def test_rows_follow_the_query_file_and_copy_its_fields():
    preds = [
        prediction(QUERIES[2], [[1.4, 2.6, 0.2]]),
        prediction(QUERIES[0], [[1, 2, 0.1], [298.6, 310, 0.3]]),
        prediction(QUERIES[1], []),
    ]
    rows = build_submission(located("q", QUERIES), located("p", preds))
    assert [row["qid"] for row in rows] == ["a_1", "a_2", "b_1"]
    assert [tuple(row) for row in rows] == [SUBMISSION_KEYS] * 3
    assert rows[0] == {"qid": "a_1", "query": "a dog", "duration": 299, "vid": "a",
                       "pred_relevant_windows": [[299, 300], [1, 2]]}  # fmt: skip
    assert rows[1]["pred_relevant_windows"] == []  # a query the model gave nothing: no windows
    assert rows[2]["duration"] == 83.5
    assert rows[2]["pred_relevant_windows"] == [[1, 3]]


def test_windows_may_run_past_the_duration_up_to_the_limit():
    """CASTELLA's durations are rounded down; the last second belongs to the recording."""
    rows = build_submission(
        located("q", QUERIES[2:]), located("p", [prediction(QUERIES[2], [[80, 84.2, 0.5]])])
    )
    assert rows[0]["pred_relevant_windows"] == [[80, 84]]


def test_top_k_and_max_end_apply_to_every_row():
    preds = [prediction(q, [[10, 100, 0.9], [20, 30, 0.8], [40, 50, 0.7]]) for q in QUERIES]
    rows = build_submission(located("q", QUERIES), located("p", preds), max_end=60, top_k=2)
    assert all(row["pred_relevant_windows"] == [[10, 60], [20, 30]] for row in rows)


def test_a_prediction_for_a_query_not_in_the_file_is_named():
    preds = [prediction(q, [[1, 2, 0.5]]) for q in QUERIES] + [
        {"qid": "zzz", "pred_relevant_windows": [[1, 2, 0.5]]}
    ]
    with pytest.raises(ValueError) as caught:
        build_submission(located("q.jsonl", QUERIES), located("p.jsonl", preds),
                         queries_name="q.jsonl")  # fmt: skip
    assert str(caught.value) == "p.jsonl:4: qid 'zzz' is not in q.jsonl"


def test_a_query_without_a_prediction_is_named_with_how_many_more():
    preds = [prediction(QUERIES[1], [[1, 2, 0.5]])]
    with pytest.raises(ValueError) as caught:
        build_submission(located("q.jsonl", QUERIES), located("p.jsonl", preds),
                         predictions_name="p.jsonl")  # fmt: skip
    assert str(caught.value) == (
        "q.jsonl:1: qid 'a_1' has no prediction in p.jsonl (1 more query lacks one)"
    )
    with pytest.raises(ValueError, match=r"^q:3: qid 'b_1' has no prediction in the predictions$"):
        build_submission(located("q", QUERIES), located("p", preds[:1] + [
            prediction(QUERIES[0], [])]))  # fmt: skip


def test_a_qid_of_the_other_json_type_is_hinted():
    queries = [{"qid": 1, "query": "x", "duration": 10, "vid": "v"}]
    with pytest.raises(ValueError, match=r"^p:1: qid '1' is not in the query file \(it has 1, a"):
        build_submission(located("q", queries), located("p", [
            {"qid": "1", "pred_relevant_windows": []}]))  # fmt: skip


def test_a_prediction_on_another_recording_or_query_is_refused():
    moved = prediction(QUERIES[0], [[1, 2, 0.5]]) | {"vid": "b"}
    with pytest.raises(ValueError, match=r"^p:1: qid 'a_1' has vid 'b', but the query file"):
        build_submission(located("q", QUERIES[:1]), located("p", [moved]))
    reworded = prediction(QUERIES[0], [[1, 2, 0.5]]) | {"query": "a cat"}
    with pytest.raises(ValueError, match=r"^p:1: qid 'a_1' has query 'a cat', but"):
        build_submission(located("q", QUERIES[:1]), located("p", [reworded]))


def test_a_qid_twice_is_refused():
    preds = [prediction(QUERIES[0], []), prediction(QUERIES[0], [])]
    with pytest.raises(ValueError, match=r"^p:2: duplicate qid 'a_1' \(first at p:1\)$"):
        build_submission(located("q", QUERIES), located("p", preds))
    with pytest.raises(ValueError, match=r"^q:2: duplicate qid 'a_1' \(first at q:1\)$"):
        build_submission(located("q", [QUERIES[0], QUERIES[0]]), located("p", preds[:1]))


# ---- the command -----------------------------------------------------------------------------


def write_jsonl(path: Path, lines: list, blank_after: int | None = None) -> Path:
    text = [json.dumps(line) + "\n" for line in lines]
    if blank_after is not None:
        text.insert(blank_after, "\n")
    path.write_text("".join(text))
    return path


@pytest.fixture
def files(tmp_path) -> dict[str, Path]:
    preds = [prediction(q, [[1, 2.4, 0.9], [5.2, 5.4, 0.3]]) for q in QUERIES]
    return {
        "q": write_jsonl(tmp_path / "queries.jsonl", QUERIES),
        "p": write_jsonl(tmp_path / "preds.jsonl", preds),
        "out": tmp_path / "out" / "submission.jsonl",
    }


def submission_cli(files: dict[str, Path], *extra: str) -> list[str]:
    return ["submission", "--predictions", str(files["p"]), "--jsonl", str(files["q"]),
            "--out", str(files["out"]), *extra]  # fmt: skip


def run_cli(argv: list[str]) -> int:
    try:
        return main(argv)
    except SystemExit as exc:  # argparse's usage errors
        return int(exc.code)


def one_error(capsys) -> str:
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(err) == 1, err
    assert err[0].startswith("lighthouse submission: error: "), err[0]
    return err[0]


def test_the_command_writes_the_rows(files, capsys):
    assert main(submission_cli(files)) == 0
    rows = [json.loads(line) for line in files["out"].read_text().splitlines()]
    assert [row["qid"] for row in rows] == [q["qid"] for q in QUERIES]
    assert all(row["pred_relevant_windows"] == [[1, 2], [5, 6]] for row in rows)
    assert f"wrote 3 queries (6 windows) to {files['out']}" in capsys.readouterr().out


def test_the_command_options_reach_the_rows(files):
    assert main(submission_cli(files, "--top-k", "1", "--max-end", "2")) == 0
    rows = [json.loads(line) for line in files["out"].read_text().splitlines()]
    assert all(row["pred_relevant_windows"] == [[1, 2]] for row in rows)


def test_an_existing_file_is_kept_unless_forced(files, capsys):
    files["out"].parent.mkdir()
    files["out"].write_text("precious\n")
    assert run_cli(submission_cli(files)) == 2
    assert "submission.jsonl: already exists (pass --force to overwrite it)" in one_error(capsys)
    assert files["out"].read_text() == "precious\n"
    assert main(submission_cli(files, "--force")) == 0
    assert files["out"].read_text().count("\n") == 3


@pytest.mark.parametrize("which", ["q", "p"])
def test_an_input_is_never_the_output_even_when_forced(files, capsys, which):
    before = files[which].read_bytes()
    files["out"] = files[which]
    assert run_cli(submission_cli(files, "--force")) == 2
    assert "--out must name another file" in one_error(capsys)
    assert files[which].read_bytes() == before


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        (lambda f: f["p"].write_text("{not json\n"), "preds.jsonl:1: invalid JSON"),
        (lambda f: write_jsonl(f["p"], [prediction(QUERIES[0], [[5, 4, 0.5]])]),
         "preds.jsonl:1: pred_relevant_windows[0] [5, 4, 0.5] ends before it starts"),
        (lambda f: write_jsonl(f["p"], [prediction(q, []) for q in QUERIES]
                               + [{"qid": "x_9", "pred_relevant_windows": []}], blank_after=1),
         "preds.jsonl:5: qid 'x_9' is not in"),  # the blank line counts
        (lambda f: write_jsonl(f["q"], QUERIES + [QUERIES[0] | {"qid": "c_1"}], blank_after=2),
         "queries.jsonl:5: qid 'c_1' has no prediction in"),
        (lambda f: write_jsonl(f["q"], [{"qid": "a_1", "query": "x", "vid": "a"}]),
         "queries.jsonl:1: missing field(s) duration"),
        (lambda f: f["q"].unlink(), "queries.jsonl"),
    ],
)  # fmt: skip
def test_bad_input_is_one_line_naming_file_and_line(files, capsys, change, problem):
    change(files)
    assert run_cli(submission_cli(files)) == 2
    assert problem in one_error(capsys)
    assert not files["out"].exists() and not files["out"].parent.exists()


@pytest.mark.parametrize(
    ("argv", "problem"),
    [
        (["--checkpoint", "best.ckpt", "--jsonl", "q.jsonl", "--out", "s.jsonl"],
         "--checkpoint needs --features"),
        (["--predictions", "p.jsonl", "--features", "f", "--jsonl", "q.jsonl", "--out", "s.jsonl"],
         "--features is read only with --checkpoint"),
        (["--predictions", "p.jsonl", "--checkpoint", "c", "--jsonl", "q", "--out", "s"],
         "not allowed with argument"),
        (["--jsonl", "q.jsonl", "--out", "s.jsonl"],
         "one of the arguments --predictions --checkpoint is required"),
        (["--predictions", "p", "--jsonl", "q", "--out", "s", "--top-k", "0"], "argument --top-k"),
        (["--predictions", "p", "--jsonl", "q", "--out", "s", "--max-end", "-1"],
         "argument --max-end"),
    ],
)  # fmt: skip
def test_wrong_options_are_one_line(tmp_path, monkeypatch, capsys, argv, problem):
    monkeypatch.chdir(tmp_path)
    assert run_cli(["submission", *argv]) == 2
    assert problem in one_error(capsys)
    assert list(tmp_path.iterdir()) == []
