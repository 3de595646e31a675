"""file_io: whole files or none, no temporary left behind, JSON Lines errors with file:line."""

import json
import os

import numpy as np
import pytest

from lighthouse_audio.file_io import (
    atomic_write,
    load_jsonl,
    save_npz,
    write_json,
    write_jsonl,
    write_text,
)


def test_writes_replace_whole_files_and_leave_no_temporary(tmp_path):
    target = tmp_path / "sub" / "metrics.json"
    write_json({"b": 1, "a": [1.5]}, target)
    assert target.read_text() == json.dumps({"b": 1, "a": [1.5]}, indent=4)
    write_jsonl([{"qid": 1}, {"qid": "é"}], tmp_path / "p.jsonl")
    assert (tmp_path / "p.jsonl").read_text() == '{"qid": 1}\n{"qid": "\\u00e9"}\n'
    save_npz(tmp_path / "f.npz", features=np.ones((2, 3), np.float32))
    with np.load(tmp_path / "f.npz") as data:
        assert data["features"].shape == (2, 3)
    assert sorted(p.name for p in tmp_path.rglob("*")) == [
        "f.npz",
        "metrics.json",
        "p.jsonl",
        "sub",
    ]
    assert oct((tmp_path / "p.jsonl").stat().st_mode & 0o777) == oct(0o666 & ~_umask())


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def test_a_failed_write_keeps_the_old_file_and_no_temporary(tmp_path):
    target = write_text(tmp_path / "a.txt", "old")

    def half(tmp):
        tmp.write_text("half")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        atomic_write(target, half)
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["a.txt"]


def test_jsonl_errors_name_file_and_line(tmp_path):
    path = tmp_path / "x.jsonl"
    path.write_bytes(b'{"qid": 1}\n\n{"qid": "x"}\n')
    assert load_jsonl(path) == [{"qid": 1}, {"qid": "x"}]
    path.write_bytes(b'{"qid": 1}\n{"qid": \xff}\n')
    with pytest.raises(ValueError, match=r"x.jsonl:2: not UTF-8 text \(byte 0xff at column 9\)"):
        load_jsonl(path)
    path.write_text('{"qid": 1}\n[1, 2]\n')
    with pytest.raises(ValueError, match=r"x.jsonl:2: expected a JSON object, got list"):
        load_jsonl(path)
    path.write_text('{"qid": 1\n')
    with pytest.raises(ValueError, match=r"x.jsonl:1: invalid JSON"):
        load_jsonl(path)
    with pytest.raises(FileNotFoundError):
        load_jsonl(tmp_path / "missing.jsonl")
