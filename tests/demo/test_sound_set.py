"""Sound sets with several captions per clip: parsing, and the manifests the demo writes."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from lighthouse_audio.align.clips import load_captioned_clips
from lighthouse_audio.demo.config import DemoConfig
from lighthouse_audio.demo.data import data_key, link_audio, simulate_split
from lighthouse_audio.demo.joint_prior import write_align_manifest
from lighthouse_audio.demo.sound_set import load_sound_set

CAPTIONS = ["a dog barks twice", "two sharp barks from a dog", "a dog lets out two barks"]


def _sound_set(root: Path, captions: list | None = CAPTIONS) -> Path:
    rng = np.random.default_rng(0)
    (root / "fg").mkdir(parents=True)
    (root / "bg").mkdir()
    sf.write(root / "fg" / "dog.flac", 0.5 * rng.standard_normal(2 * 16000), 16000)
    sf.write(root / "fg" / "bell.flac", 0.5 * rng.standard_normal(2 * 16000), 16000)
    sf.write(root / "bg" / "rain.ogg", 0.05 * rng.standard_normal(40 * 16000), 16000)
    dog = {"path": "fg/dog.flac", "role": "fg", "caption": CAPTIONS[0]}
    if captions is not None:
        dog["captions"] = captions
    lines = [
        dog,
        {"path": "fg/bell.flac", "role": "fg", "caption": "a bell rings once"},
        {"path": "bg/rain.ogg", "role": "bg"},
    ]
    (root / "manifest.jsonl").write_text("".join(json.dumps(d) + "\n" for d in lines))
    return root


def test_paraphrases_are_read_and_the_primary_caption_stands_alone(tmp_path: Path) -> None:
    recordings = {r.key: r for r in load_sound_set(_sound_set(tmp_path / "s"))}
    assert recordings["fg/dog.flac"].all_captions == CAPTIONS
    assert recordings["fg/bell.flac"].all_captions == ["a bell rings once"]
    assert recordings["bg/rain.ogg"].all_captions == []


def test_malformed_captions_are_one_line_naming_the_line(tmp_path: Path) -> None:
    root = _sound_set(tmp_path / "s", captions=["fine", ""])
    with pytest.raises(ValueError, match=r"manifest.jsonl:1: fg/dog.flac: captions must be"):
        load_sound_set(root)


def test_captions_reach_the_simulator_the_aligner_and_the_data_key(tmp_path: Path) -> None:
    root = _sound_set(tmp_path / "s")
    recordings = load_sound_set(root)
    cfg = DemoConfig(workdir=tmp_path / "w", sounds=root, clip_length=10, avg_interval=1,
                     clips=(20, 0, 0), progress=False)  # fmt: skip
    _, stats = simulate_split(cfg, tmp_path / "d", "train", 0, recordings, print)
    queries = [json.loads(x) for x in (tmp_path / "d/annotations/train.jsonl").open()]
    dog = {q["query"] for q in queries if "dog" in q["query"]}
    assert len(dog) >= 2 and dog <= set(CAPTIONS)  # placements draw among the paraphrases
    assert stats["queries"] == len(queries)

    manifest = write_align_manifest(recordings, tmp_path / "align.jsonl")
    clips = {c.key: c for c in load_captioned_clips(manifest)}
    assert sorted(len(c.captions) for c in clips.values()) == [1, 3]

    fewer = load_sound_set(_sound_set(tmp_path / "s2", captions=None))
    assert data_key(cfg, recordings, root) != data_key(cfg, fewer, root)


def test_repeated_sounds_are_rendered_twice_and_annotated_as_one_query(tmp_path: Path) -> None:
    root = _sound_set(tmp_path / "s")
    cfg = DemoConfig(workdir=tmp_path / "w", sounds=root, clip_length=20, avg_interval=1,
                     repeat_prob=1.0, clips=(5, 0, 0), progress=False)  # fmt: skip
    simulate_split(cfg, tmp_path / "d", "train", 0, load_sound_set(root), print)
    queries = [json.loads(x) for x in (tmp_path / "d/annotations/train.jsonl").open()]
    two = [q for q in queries if len(q["relevant_windows"]) == 2]
    assert two and len({q["qid"] for q in queries}) == len(queries)
    q = two[0]
    (a, b) = q["relevant_windows"]
    audio, rate = sf.read(tmp_path / "d/simulated/train/audio" / f"{q['vid']}.wav")
    loud = [float(np.sqrt(np.mean(audio[int(s * rate) : int(e * rate)] ** 2))) for s, e in (a, b)]
    half = rate // 2
    floor = min(float(np.sqrt(np.mean(audio[i : i + half] ** 2))) for i in
                range(0, len(audio) - half, half))  # fmt: skip
    assert b[0] >= a[1] and min(loud) > 2 * floor  # both placements are audible


def test_a_moved_work_folder_links_its_own_audio_again(tmp_path: Path) -> None:
    """The audio folder links the simulated clips by absolute path; after the work folder moves,
    a rerun points the dangling links at the clips where they now are (the features' cache
    stays usable) instead of failing on every clip."""
    data = tmp_path / "before"
    (data / "simulated" / "val" / "audio").mkdir(parents=True)
    (data / "simulated" / "val" / "audio" / "clip1.wav").write_bytes(b"RIFF one")
    annotations = data / "val.jsonl"
    annotations.write_text(json.dumps({"qid": 1, "vid": "clip1"}) + "\n")
    link_audio(data, {"val": annotations})
    moved = data.rename(tmp_path / "after")
    link = moved / "audio" / "clip1.wav"
    assert link.is_symlink() and not link.exists()  # still pointing into "before"
    link_audio(moved, {"val": moved / "val.jsonl"})
    assert link.read_bytes() == b"RIFF one"
    assert link.resolve() == (moved / "simulated" / "val" / "audio" / "clip1.wav").resolve()
