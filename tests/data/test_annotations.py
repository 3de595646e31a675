"""Annotation loading: every released file loads, every malformed line names file:line."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import pytest

from lighthouse_audio.data.annotations import (
    AnnotationError,
    AnnotationWarning,
    MomentQuery,
    load_queries,
    save_queries,
)

GOOD = {
    "qid": "q1",
    "query": "a dog barks",
    "duration": 60,
    "vid": "v1",
    "relevant_windows": [[1.5, 7.0]],
}


def load_quietly(path: Path, **kwargs) -> list[MomentQuery]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", AnnotationWarning)
        return load_queries(path, **kwargs)


def annotation_files() -> list[Path]:
    from tests.conftest import SHARED

    return sorted((SHARED / "data" / "annotations").glob("*.jsonl"))


@pytest.mark.parametrize("path", annotation_files(), ids=lambda p: p.name)
def test_released_annotations_load(path: Path):
    lines = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    queries = load_quietly(path)
    assert len(queries) == len(lines)
    assert [q.to_dict() for q in queries] == lines  # nothing dropped, reordered or retyped
    int_qids = path.name.startswith(("tut2017", "unav100"))
    assert all(isinstance(q.qid, int if int_qids else str) for q in queries)


def test_window_past_duration_warns_once(tmp_path: Path):
    # The released CASTELLA/UnAV files do this (durations floored to whole seconds).
    path = tmp_path / "a.jsonl"
    rows = [
        GOOD | {"relevant_windows": [[50, 61]]},
        GOOD | {"qid": "q2", "relevant_windows": [[0, 1], [55, 63]]},
    ]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    with pytest.warns(AnnotationWarning, match=r"2 window\(s\) .* up to 3 s \(line 2\)"):
        queries = load_queries(path)
    assert queries[1].relevant_windows == [[0, 1], [55, 63]]  # kept as-is, like Lighthouse
    with pytest.raises(AnnotationError, match=rf"^{path}:2: window \[55, 63\] ends 3 s after"):
        load_queries(path, end_tolerance=2.0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        load_queries(path, end_tolerance=3.0)


BAD_LINES = [
    ('{"qid": "q2", "query": ', "invalid JSON"),
    ("[1, 2]", "expected a JSON object, got list"),
    ({"qid": "q2", "duration": 60, "vid": "v"}, "missing field(s) query"),
    (
        {k: v for k, v in GOOD.items() if k != "relevant_windows"} | {"qid": "q2"},
        "missing field relevant_windows",
    ),
    (GOOD | {"qid": 2.5}, "qid must be a string or an integer, got 2.5"),
    (GOOD | {"qid": True}, "qid must be a string or an integer, got True"),
    (GOOD | {"qid": ""}, "qid is an empty string"),
    (GOOD | {"qid": "q2", "query": 7}, "query must be a string, got int 7"),
    (GOOD | {"qid": "q2", "query": "   "}, "query is empty for qid 'q2'"),
    (GOOD | {"qid": "q2", "duration": "60"}, "duration must be a number, got '60'"),
    (GOOD | {"qid": "q2", "duration": 0}, "duration must be finite and > 0, got 0"),
    (GOOD | {"qid": "q2", "vid": 5}, "vid must be a string, got int 5"),
    (GOOD | {"qid": "q2", "vid": ""}, "vid is an empty string"),
    (GOOD | {"qid": "q2", "relevant_windows": "1-2"}, "relevant_windows must be a list"),
    (
        GOOD | {"qid": "q2", "relevant_windows": [[1, 2, 3]]},
        "relevant_windows[0] must be [start, end] numbers, got [1, 2, 3]",
    ),
    (
        GOOD | {"qid": "q2", "relevant_windows": [[1, 2], ["1", "2"]]},
        "relevant_windows[1] must be [start, end] numbers",
    ),
    (
        GOOD | {"qid": "q2", "relevant_windows": [[-1, 2]]},
        "relevant_windows[0] [-1, 2] starts before 0",
    ),
    (GOOD | {"qid": "q2", "relevant_windows": [[5, 5]]}, "has end <= start (5 <= 5)"),
    (GOOD | {"qid": "q2", "relevant_windows": [[9, 4]]}, "has end <= start (4 <= 9)"),
    (
        GOOD | {"qid": "q2", "relevant_windows": [[70, 75]]},
        "starts after the end of the clip (start 70 > duration 60)",
    ),
    (GOOD | {"qid": "q2", "relevant_windows": []}, "relevant_windows is empty for qid 'q2'"),
    (GOOD, "duplicate qid 'q1' (first on line 1)"),
]


@pytest.mark.parametrize("line, problem", BAD_LINES, ids=[p for _, p in BAD_LINES])
def test_malformed_line_names_file_and_line(tmp_path: Path, line, problem: str):
    path = tmp_path / "bad.jsonl"
    text = line if isinstance(line, str) else json.dumps(line)
    path.write_text(json.dumps(GOOD) + "\n" + text + "\n" + json.dumps(GOOD | {"qid": "q9"}) + "\n")
    with pytest.raises(AnnotationError) as info:
        load_queries(path)
    msg = str(info.value)
    assert msg.startswith(f"{path}:2: "), msg
    assert problem in msg
    assert "\n" not in msg


def test_missing_feature_file(tmp_path: Path):
    path = tmp_path / "a.jsonl"
    rows = [GOOD, GOOD | {"qid": "q2"}, GOOD | {"qid": "q3", "vid": "gone"}]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    asked = []

    def has_features(vid: str) -> bool:
        asked.append(vid)
        return vid != "gone"

    with pytest.raises(AnnotationError, match=rf"^{path}:3: no feature file for vid 'gone'"):
        load_queries(path, has_features=has_features)
    assert asked == ["v1", "gone"]  # one question per clip, not per query


def test_missing_file_and_blank_lines(tmp_path: Path):
    with pytest.raises(AnnotationError, match="cannot open annotation file"):
        load_queries(tmp_path / "nope.jsonl")
    path = tmp_path / "a.jsonl"
    path.write_text(json.dumps(GOOD) + "\n\n" + '{"qid": 1\n')
    with pytest.raises(AnnotationError, match=rf"^{path}:3: invalid JSON"):
        load_queries(path)


def test_windows_optional(tmp_path: Path):
    path = tmp_path / "a.jsonl"
    row = {k: v for k, v in GOOD.items() if k != "relevant_windows"}
    path.write_text(json.dumps(row) + "\n")
    (q,) = load_queries(path, require_windows=False)
    assert q.relevant_windows is None
    assert q.to_dict() == row


def test_round_trip_keeps_types_and_extras(tmp_path: Path):
    rows = [
        GOOD | {"fg_dB": -2.0890469097560533, "note": "ünïcode"},
        {"qid": 7, "query": "b", "duration": 31.5, "vid": "v2", "relevant_windows": [[0, 31.5]]},
    ]
    queries = [MomentQuery.from_dict(r) for r in rows]
    assert queries[0].extras == {"fg_dB": -2.0890469097560533, "note": "ünïcode"}
    assert [q.to_dict() for q in queries] == rows
    assert list(queries[0].to_dict()) == list(rows[0])  # key order too
    path = tmp_path / "sub" / "out.jsonl"
    save_queries(queries, path)
    assert load_queries(path) == queries
    assert [json.loads(x) for x in path.read_text().splitlines()] == rows
    save_queries(queries[:1], path)  # overwrite in place
    assert load_queries(path) == queries[:1]
    assert sorted(p.name for p in path.parent.iterdir()) == ["out.jsonl"]  # no temp files left


def test_to_dict_is_a_copy():
    q = MomentQuery.from_dict(GOOD)
    d = q.to_dict()
    d["relevant_windows"][0][0] = 99
    assert q.relevant_windows == [[1.5, 7.0]]


def test_real_file_round_trip(tmp_path: Path):
    src = next(p for p in annotation_files() if p.name.startswith("clotho_moment_val"))
    queries = load_quietly(src)
    out = tmp_path / "copy.jsonl"
    save_queries(queries, out)
    assert load_queries(out) == queries
    assert out.read_text().splitlines() == src.read_text().splitlines()
