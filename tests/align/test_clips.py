from __future__ import annotations

import random

import pytest

from lighthouse_audio.align.clips import CaptionedClip, load_captioned_clips, split_clips
from tests.align.conftest import write_manifest


def _clips(num_recordings: int, per_recording: int) -> list[CaptionedClip]:
    return [
        CaptionedClip(f"/x/{r}_{i}.wav", f"{r}_{i}.wav", (f"caption {r} {i}",), f"rec{r}")
        for r in range(num_recordings)
        for i in range(per_recording)
    ]


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_split_never_mixes_recordings(seed):
    clips = _clips(10, 3)
    train, held = split_clips(clips, 0.3, seed)
    assert {c.recording for c in train}.isdisjoint({c.recording for c in held})
    assert sorted(c.key for c in train + held) == sorted(c.key for c in clips)
    assert len(held) == 9  # 3 of 10 recordings, 3 clips each


def test_split_is_deterministic_and_order_free():
    clips = _clips(12, 2)
    shuffled = clips[:]
    random.Random(5).shuffle(shuffled)
    assert split_clips(clips, 0.25, 7) == split_clips(shuffled, 0.25, 7)
    assert split_clips(clips, 0.25, 7) != split_clips(clips, 0.25, 8)


def test_split_needs_two_recordings_and_a_fraction():
    with pytest.raises(ValueError, match="1 recording\\(s\\) cannot fill 2 splits"):
        split_clips(_clips(1, 4), 0.2, 0)
    with pytest.raises(ValueError, match="in \\[0, 1\\), got 1.5"):
        split_clips(_clips(4, 1), 1.5, 0)


def test_heldout_0_keeps_every_clip_for_training():
    clips = _clips(3, 2)
    train, held = split_clips(clips, 0.0, 0)
    assert held == [] and sorted(c.key for c in train) == sorted(c.key for c in clips)


def test_manifest_lines_merge_and_filter(tmp_path):
    for name in ("a.wav", "b.wav", "c.wav"):
        (tmp_path / name).write_bytes(b"")
    lines = [
        {"path": "a.wav", "caption": "a dog barks"},
        {"path": "a.wav", "captions": ["a dog barks", "barking"], "recording": "r1"},
        {"path": "b.wav", "role": "bg", "caption": "rain"},
        {"path": "c.wav", "role": "fg", "caption": "  "},
        {"path": "d.wav", "caption": "gone"},
    ]
    logged: list[str] = []
    clips = load_captioned_clips(write_manifest(tmp_path, lines), logged.append)
    assert [(c.key, c.captions, c.recording) for c in clips] == [
        ("a.wav", ("a dog barks", "barking"), "a.wav")  # first line's recording (none: path)
    ]
    assert len(logged) == 2 and "1 clip line(s) without a caption" in logged[0]
    assert "1 listed file(s) missing" in logged[1]


@pytest.mark.parametrize(
    "line, message",
    [
        ([1, 2], "expected a JSON object, got list"),
        ({"caption": "x"}, "path must be a non-empty string, got None"),
        ({"path": "a.wav", "caption": 3}, "caption must be a string, got 3"),
    ],
)
def test_malformed_lines_name_the_line(tmp_path, line, message):
    manifest = write_manifest(tmp_path, [line])
    with pytest.raises(ValueError) as err:
        load_captioned_clips(manifest)
    assert str(err.value) == f"{manifest}:1: {message}"
