"""Recordings far longer than the model's span, predicted in chunks by the toy-trained AM-DETR.

The model (tests/toy_model.py) saw only 20-frame clips. A 10-minute recording (600 frames) with
events placed across chunk edges and chunk-core borders must give each event exactly once among
the top moments, at its absolute time; ``lighthouse infer`` must do the same from feature files.
"""

import json

import numpy as np
import pytest
import torch

from lighthouse_audio.cli.main import main
from lighthouse_audio.data.feature_store import l2_normalize_rows
from lighthouse_audio.prediction.chunks import plan_chunks, temporal_iou
from lighthouse_audio.prediction.model import load_model
from lighthouse_audio.prediction.run import EncodedAudio, predict_queries
from lighthouse_audio.testing.synthetic import SyntheticSpec
from tests.toy_model import SPEC, run_dir

FRAMES = 600  # 10 minutes of 1 s frames
# Chunks of 20 frames start every 10; cores change hands at 15, 25, ... Each event crosses a
# chunk edge (a multiple of 10) or a core border (5 mod 10), the last lies in the final chunk.
EVENTS = [(13, 19), (118, 124), (253, 259), (497, 503), (592, 598)]


def _prototypes():
    spec = SyntheticSpec(1, **SPEC)
    rng = np.random.default_rng(12345)  # the toy task's class prototypes (testing/synthetic.py)
    audio = rng.standard_normal((spec.num_classes, spec.audio_dim)).astype(np.float32)
    text = rng.standard_normal((spec.num_classes, spec.text_dim)).astype(np.float32)
    return audio, text


def _long_recording(seed: int = 7) -> tuple[np.ndarray, np.ndarray]:
    audio_protos, text_protos = _prototypes()
    rng = np.random.default_rng(seed)
    features = rng.standard_normal((FRAMES, audio_protos.shape[1])).astype(np.float32)
    for start, end in EVENTS:
        features[start:end] += audio_protos[0]
    text = text_protos[0] + 0.5 * rng.standard_normal((6, text_protos.shape[1]))
    return features, text.astype(np.float32)


@pytest.fixture(scope="module")
def loaded(toy_trained):
    return load_model(run_dir(toy_trained) / "best.ckpt")


def _assert_each_event_once(windows):
    top = windows[: len(EVENTS)]
    matched = [max(range(len(EVENTS)), key=lambda i: temporal_iou(w, EVENTS[i])) for w in top]
    assert sorted(matched) == list(range(len(EVENTS))), top  # every event, none twice
    for w, i in zip(top, matched, strict=True):
        assert temporal_iou(w, EVENTS[i]) >= 0.5, (w, EVENTS[i])
        assert abs(w[0] - EVENTS[i][0]) <= 2 and abs(w[1] - EVENTS[i][1]) <= 2
    assert all(0 <= s <= e <= FRAMES for s, e, _ in windows)


def test_ten_minutes_every_border_event_found_once(loaded):
    assert loaded.span == 20
    features, text = _long_recording()
    audio = EncodedAudio(torch.from_numpy(l2_normalize_rows(features)), float(FRAMES), "long")
    (result,) = predict_queries(
        loaded, audio, ["class 0"], [torch.from_numpy(l2_normalize_rows(text))]
    )
    assert result["num_chunks"] == len(plan_chunks(FRAMES, 20)) == 59
    _assert_each_event_once(result["pred_relevant_windows"])
    saliency = np.asarray(result["pred_saliency_scores"])
    assert saliency.shape == (FRAMES,)
    inside = np.zeros(FRAMES, dtype=bool)
    for start, end in EVENTS:
        inside[start:end] = True
    assert saliency[inside].mean() > saliency[~inside].mean()  # stitched, and still meaningful

    truncated = predict_queries(
        loaded, audio, ["class 0"], [torch.from_numpy(l2_normalize_rows(text))], truncate=True
    )[0]
    assert all(e <= 600 for _, e, _ in truncated["pred_relevant_windows"])
    assert "num_chunks" not in truncated and len(truncated["pred_saliency_scores"]) == 20


def test_infer_chunks_long_recordings_and_says_so_once(toy_data, toy_trained, tmp_path, capsys):
    feats = tmp_path / "features"
    (feats / "clap").mkdir(parents=True)
    (feats / "clap_text").mkdir()
    features, text = _long_recording()
    np.savez(feats / "clap" / "long.npz", features=features)
    np.savez(feats / "clap_text" / "qid1.npz", last_hidden_state=text)
    val = (toy_data / "features" / "custom" / "val.jsonl").read_text().splitlines()[:3]
    for line in val:  # short recordings in the same file: predicted exactly as before
        q = json.loads(line)
        for sub in ("clap", "clap_text"):
            name = q["vid"] if sub == "clap" else f"qid{q['qid']}"
            src = toy_data / "features" / "custom" / sub / f"{name}.npz"
            (feats / sub / f"{name}.npz").write_bytes(src.read_bytes())
    long_line = {"qid": 1, "query": "class 0", "duration": float(FRAMES), "vid": "long",
                 "relevant_windows": [list(map(float, e)) for e in EVENTS]}  # fmt: skip
    jsonl = tmp_path / "mixed.jsonl"
    jsonl.write_text(json.dumps(long_line) + "\n" + "\n".join(val) + "\n")
    short_only = tmp_path / "short.jsonl"
    short_only.write_text("\n".join(val) + "\n")
    ckpt = str(run_dir(toy_trained) / "best.ckpt")

    def infer(path, out, *extra):
        args = ["infer", "--checkpoint", ckpt, "--jsonl", str(path), "--features", str(feats)]
        assert main([*args, "--out", str(out), "--no-progress", *extra]) == 0
        return [json.loads(x) for x in out.read_text().splitlines()]

    mixed = infer(jsonl, tmp_path / "mixed.preds.jsonl")
    said = capsys.readouterr().out
    assert said.count("longer than the model's span") == 1 and "--truncate" in said
    _assert_each_event_once(mixed[0]["pred_relevant_windows"])
    assert mixed[1:] == infer(short_only, tmp_path / "short.preds.jsonl")
    assert "longer than the model's span" not in capsys.readouterr().out

    lighthouse_way = infer(jsonl, tmp_path / "trunc.preds.jsonl", "--truncate")
    assert lighthouse_way[1:] == mixed[1:]
    assert lighthouse_way[0] != mixed[0]  # only the first 20 frames, stretched over 600 s
