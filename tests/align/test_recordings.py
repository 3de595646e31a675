"""In-recording hard negatives: the loss, what it teaches, and reading annotated recordings."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from lighthouse_audio.align.recordings import load_recording_queries
from lighthouse_audio.align.train import HeadsConfig, head_specs, in_recording_loss, train_heads
from lighthouse_audio.data.annotations import AnnotationError
from lighthouse_audio.joint.space import JointSpace, build_head


def test_loss_is_minus_log_of_the_softmax_mass_inside():
    frames = torch.tensor([[[1.0, 0.0], [0.0, 1.0], [0.6, 0.8], [0.0, 0.0]]])
    query = torch.tensor([[0.0, 1.0]])
    valid = torch.tensor([[True, True, True, False]])  # the last frame is padding
    inside = torch.tensor([[False, True, True, False]])
    scale = torch.tensor(2.0)
    sims = [0.0, 1.0, 0.8]  # by hand: frame . query
    inside_mass = math.exp(2 * 1.0) + math.exp(2 * 0.8)
    expected = -math.log(inside_mass / sum(math.exp(2 * s) for s in sims))
    got = in_recording_loss(frames, valid, inside, query, scale)
    assert got.item() == pytest.approx(expected, rel=1e-5)
    # every valid frame inside: nothing to contrast, zero loss
    nothing_outside = in_recording_loss(frames, valid, valid, query, scale)
    assert nothing_outside.item() == pytest.approx(0, abs=1e-6)


def _recordings_problem(num: int, seed: int):
    """Recordings of 6 frames: events a and b (2 frames each, over the recording's own loud
    background) and 2 background frames. Audio = A z + B w (w: the recording's background),
    a caption = T z. The clean clips (events alone) are too few to learn A and T from."""
    g = torch.Generator().manual_seed(seed)
    mix_a, mix_b, mix_t = (torch.randn(16, 8, generator=g), torch.randn(16, 4, generator=g),
                           torch.randn(12, 8, generator=g))  # fmt: skip
    recordings = []
    for _ in range(num):
        z = torch.randn(2, 8, generator=g)
        bg = 2.0 * (mix_b @ torch.randn(4, generator=g))
        frames = torch.stack([bg, bg] + [mix_a @ z[k] + bg for k in (0, 0, 1, 1)])
        frames = frames + 0.05 * torch.randn(frames.shape, generator=g)
        for k in (0, 1):
            inside = torch.zeros(6, dtype=torch.bool)
            inside[2 + 2 * k : 4 + 2 * k] = True
            recordings.append((frames, mix_t @ z[k], inside))
    clean = torch.randn(3, 8, generator=g)
    audio = [(mix_a @ z).expand(2, 16).clone() for z in clean]
    text = [(mix_t @ z)[None] for z in clean]
    return audio, text, recordings


def _top1_inside(space: JointSpace, recordings) -> float:
    hits = 0
    with torch.no_grad():
        for frames, text, inside in recordings:
            sims = space.embed_audio(frames) @ space.embed_text(text[None])
            hits += bool(inside[int(sims.argmax())])
    return hits / len(recordings)


def test_recordings_teach_which_event_a_query_names():
    audio, text, recordings = _recordings_problem(190, seed=0)
    train, held = recordings[:300], recordings[300:]  # 150 recordings, then 40 unseen ones
    cfg = HeadsConfig(kind="mlp", hidden_dim=64, dim=16, epochs=80, seed=1)
    specs = head_specs(cfg, 16, 12)

    def trained(with_recordings: bool) -> JointSpace:
        space = JointSpace("t", build_head(specs["audio"]), build_head(specs["text"]), "mean",
                           specs)  # fmt: skip
        train_heads(space, audio, text, cfg, progress=False,
                    recordings=train if with_recordings else ())  # fmt: skip
        return space

    with_recordings = _top1_inside(trained(True), held)
    without = _top1_inside(trained(False), held)
    assert with_recordings >= 0.7, (with_recordings, without)  # 0.81-0.91 over data seeds
    assert with_recordings >= without + 0.25, (with_recordings, without)


def test_zero_weight_or_no_recordings_train_identically():
    audio, text, recordings = _recordings_problem(10, seed=2)
    cfg = HeadsConfig(kind="linear", dim=8, epochs=5, seed=0, recording_weight=0.0)
    specs = head_specs(cfg, 16, 12)
    spaces = []
    for given in ((), recordings):
        space = JointSpace("t", build_head(specs["audio"]), build_head(specs["text"]), "mean",
                           specs)  # fmt: skip
        train_heads(space, audio, text, cfg, progress=False, recordings=given)
        spaces.append(space.state_dict())
    # the recordings' draws come after the clips' in each epoch, so the clip steps are the same
    for key, value in spaces[0].items():
        torch.testing.assert_close(value, spaces[1][key])


def _write_features(root, vids: dict[str, int], qids: list[str], dim=(16, 12)):
    (root / "toy").mkdir(parents=True)
    (root / "toy_text").mkdir()
    for vid, frames in vids.items():
        np.savez(root / "toy" / f"{vid}.npz", features=np.ones((frames, dim[0]), np.float32))
    for qid in qids:
        np.savez(root / "toy_text" / f"qid{qid}.npz",
                 last_hidden_state=np.ones((3, dim[1]), np.float32))  # fmt: skip


def test_load_recording_queries_marks_frames_and_skips_what_teaches_nothing(tmp_path):
    lines = [
        {"qid": 1, "query": "a", "duration": 6, "vid": "r1", "relevant_windows": [[1.6, 3.4]]},
        {"qid": 2, "query": "b", "duration": 6, "vid": "r1", "relevant_windows": [[0, 6]]},
        {"qid": 3, "query": "c", "duration": 6, "vid": "gone", "relevant_windows": [[1, 2]]},
        {"qid": 4, "query": "d", "duration": 6, "vid": "r1",
         "relevant_windows": [[0, 0.4], [4.6, 6]]},
    ]  # fmt: skip
    ann = tmp_path / "train.jsonl"
    ann.write_text("".join(json.dumps(line) + "\n" for line in lines))
    _write_features(tmp_path / "feats", {"r1": 6}, ["1", "2", "3", "4"])
    said: list[str] = []
    found = load_recording_queries(ann, tmp_path / "feats", "toy", log=said.append)
    # no manifest: 1 s frames centred on 0, 1, ... s (the released features' layout)
    assert [q.qid for q in found] == ["1", "4"]
    assert found[0].inside.tolist() == [False, False, True, True, False, False]
    assert found[1].inside.tolist() == [True, False, False, False, False, True]
    assert found[0].frames.shape == (6, 16) and found[0].tokens.shape == (3, 12)
    assert any("skipped 1 queries without usable features" in s and "gone.npz" in s for s in said)
    assert any("skipped 1 queries whose windows cover" in s for s in said)


def test_load_recording_queries_refuses_bad_input_in_one_line(tmp_path):
    _write_features(tmp_path / "feats", {"r1": 4}, ["1"])
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"qid": 1, "query": "", "duration": 4, "vid": "r1"}\n')
    with pytest.raises(AnnotationError, match="bad.jsonl:1"):
        load_recording_queries(bad, tmp_path / "feats", "toy", log=lambda s: None)
    only_full = tmp_path / "full.jsonl"
    only_full.write_text(json.dumps(
        {"qid": 1, "query": "a", "duration": 4, "vid": "r1", "relevant_windows": [[0, 4]]}
    ) + "\n")  # fmt: skip
    with pytest.raises(ValueError, match="full.jsonl: no query with frames inside and outside"):
        load_recording_queries(only_full, tmp_path / "feats", "toy", log=lambda s: None)
