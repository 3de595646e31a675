"""Foreground manifests and background discovery for user corpora."""

from __future__ import annotations

import json

import pytest

from lighthouse_audio.simulation.inputs import (
    ManifestError,
    find_backgrounds,
    load_foreground_manifest,
)

from .conftest import SOUNDS_DIR, need, write_noise


def test_shared_sounds_manifest_loads():
    entries = load_foreground_manifest(need(SOUNDS_DIR / "manifest.jsonl"))
    assert len(entries) == 390  # the fg lines; bg lines are skipped by role
    assert all(e.path.is_file() and e.path.is_relative_to(SOUNDS_DIR) for e in entries)
    assert all(len(e.captions) == 1 and e.captions[0] for e in entries)
    assert len({e.key for e in entries}) == 390
    assert entries[0].key == "fg__animal__0ad__cattle_01"


def _write(path, *lines):
    path.write_text("".join(json.dumps(x) + "\n" for x in lines))
    return path


def test_captions_list_relative_and_absolute_paths(tmp_path):
    other = tmp_path / "elsewhere" / "dog.wav"
    m = _write(
        tmp_path / "m.jsonl",
        {"path": "a/dog.wav", "captions": ["a dog barks", " ", "barking"]},
        {"path": str(other), "caption": "a dog again"},
        {"path": "b/dog.wav", "caption": "x", "role": "bg"},
    )
    a, b = load_foreground_manifest(m)
    assert (a.path, a.captions, a.key) == (
        tmp_path / "a" / "dog.wav",
        ["a dog barks", "barking"],
        "a__dog",
    )
    assert (b.path, b.key) == (other, "dog")


def test_repeated_keys_are_numbered(tmp_path):
    m = _write(tmp_path / "m.jsonl", *[{"path": f"/x/{d}/dog.wav", "caption": "c"} for d in "abc"])
    assert [e.key for e in load_foreground_manifest(m)] == ["dog", "dog_2", "dog_3"]


@pytest.mark.parametrize(
    "line, message",
    [
        ({"path": "a.wav"}, "a.wav: no caption"),
        ({"path": "a.wav", "captions": ["", " "]}, "every caption is empty"),
        ({"path": "a.wav", "captions": "one"}, "captions must be a list"),
        ({"caption": "c"}, "path must be a non-empty string"),
    ],
)
def test_bad_lines_name_the_line(tmp_path, line, message):
    m = _write(tmp_path / "m.jsonl", {"path": "ok.wav", "caption": "fine"}, line)
    with pytest.raises(ManifestError, match=f"m.jsonl:2: .*{message}"):
        load_foreground_manifest(m)


def test_bad_files(tmp_path):
    with pytest.raises(FileNotFoundError, match="no such foreground manifest"):
        load_foreground_manifest(tmp_path / "none.jsonl")
    (tmp_path / "j.jsonl").write_text("{oops\n")
    with pytest.raises(ManifestError, match="j.jsonl:1: invalid JSON"):
        load_foreground_manifest(tmp_path / "j.jsonl")
    _write(tmp_path / "bg.jsonl", {"path": "a.ogg", "role": "bg", "caption": "rain"})
    with pytest.raises(ManifestError, match="no foreground entries"):
        load_foreground_manifest(tmp_path / "bg.jsonl")


def test_find_backgrounds(tmp_path):
    for rel in ("rain/a.wav", "wind/a.flac", "wind/b c.ogg", ".hidden/x.wav"):
        write_noise(tmp_path / rel, 0.1)
    (tmp_path / "README.md").write_text("not audio")
    found = find_backgrounds(tmp_path)
    assert [(b.path.relative_to(tmp_path).as_posix(), b.name) for b in found] == [
        ("rain/a.wav", "rain__a"),
        ("wind/a.flac", "wind__a"),
        ("wind/b c.ogg", "b_c"),
    ]
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="no audio files"):
        find_backgrounds(tmp_path / "empty")
    with pytest.raises(FileNotFoundError, match="no such background folder"):
        find_backgrounds(tmp_path / "nope")
