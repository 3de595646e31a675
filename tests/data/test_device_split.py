"""The fast path's device-resident split against the plain path (MomentDataset + collate)."""

from __future__ import annotations

import json
import random
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from lighthouse_audio.data.annotations import load_queries
from lighthouse_audio.data.collate import collate
from lighthouse_audio.data.dataset import MomentDataset
from lighthouse_audio.data.device_split import (
    DeviceBatches,
    DeviceSplit,
    endpoint_features,
    epoch_order,
    shard,
)
from lighthouse_audio.data.feature_store import FeatureStore
from lighthouse_audio.data.targets import (
    saliency_frame_range,
    span_targets,
    temporal_endpoint_features,
)

# query 4's window runs past its recording on purpose (Lighthouse keeps such windows)
pytestmark = pytest.mark.filterwarnings("ignore:.*end after the clip duration")

MAX_WINDOWS = 3
# (audio frames, tokens, windows in seconds): short and long recordings (cut to the span of 12),
# one and several windows, more than MAX_WINDOWS, a one-frame window, a window past the span,
# a window covering (almost) everything (fewer than two frames outside)
QUERIES = [
    (10, 5, [[2, 5]]),
    (15, 9, [[0, 3], [7, 8], [9, 12]]),
    (12, 3, [[1, 2], [4, 6], [8, 9], [10, 11], [3, 4]]),
    (6, 7, [[3, 4]]),
    (12, 4, [[11, 14]]),
    (8, 6, [[0, 7.5]]),
    (20, 8, [[5, 9], [13, 17]]),
    (9, 2, [[4.5, 8.2], [0, 1], [2, 3], [6, 7]]),
]


def write_data(root: Path, dim: int = 6) -> Path:
    rng = np.random.default_rng(0)
    (root / "audio").mkdir(parents=True)
    (root / "text").mkdir()
    lines = []
    for i, (frames, tokens, windows) in enumerate(QUERIES):
        vid = f"v{frames}"  # queries 2 and 4 share a recording
        path = root / "audio" / f"{vid}.npz"
        if not path.exists():
            np.savez(path, features=rng.standard_normal((frames, dim)).astype(np.float32))
        text = rng.standard_normal((tokens, dim)).astype(np.float32)
        np.savez(root / "text" / f"qid{i}.npz", last_hidden_state=text)
        duration = float(np.load(path)["features"].shape[0])
        lines.append({"qid": i, "query": f"q{i}", "duration": duration, "vid": vid,
                      "relevant_windows": windows})  # fmt: skip
    jsonl = root / "split.jsonl"
    jsonl.write_text("".join(json.dumps(line) + "\n" for line in lines))
    return jsonl


@pytest.fixture()
def dataset(tmp_path) -> MomentDataset:
    jsonl = write_data(tmp_path)
    audio = FeatureStore(tmp_path / "audio", "features", max_len=12)
    text = FeatureStore(tmp_path / "text", "last_hidden_state", max_len=8)
    queries = load_queries(jsonl, require_windows=True, has_features=audio.exists)
    return MomentDataset(queries, audio, text, max_q_l=8, max_v_l=12, max_a_l=12,
                         max_windows=MAX_WINDOWS, clip_length=1.0)  # fmt: skip


def plain_batch(dataset: MomentDataset, indices: list[int]):
    random.seed(0)
    return collate([dataset[i] for i in indices])


@pytest.mark.parametrize("indices", [[0, 1, 2, 3], [4, 5, 6, 7], [7, 0, 3]])
def test_inputs_equal_collate_bit_for_bit(dataset, indices):
    _, plain, _ = plain_batch(dataset, indices)
    metas, inputs, _ = DeviceSplit.from_dataset(dataset, "cpu").batch(indices)
    assert list(inputs) == list(plain)
    for key in plain:
        assert torch.equal(inputs[key], plain[key]), key
    assert [m["qid"] for m in metas] == [dataset.queries[i].qid for i in indices]


def test_static_shapes_pad_to_span_and_max_q_l(dataset):
    _, plain, _ = plain_batch(dataset, [0, 3])
    _, inputs, _ = DeviceSplit.from_dataset(dataset, "cpu", static_shapes=True).batch([0, 3])
    assert inputs["src_aud"].shape[1] == 12 and inputs["src_txt"].shape[1] == 8
    for key, value in plain.items():
        cut = inputs[key][:, : value.shape[1]]
        assert torch.equal(cut, value), key
        assert not inputs[key][:, value.shape[1] :].any(), key  # padding is zero


def test_endpoint_features_match_the_plain_tef_bit_for_bit():
    lengths = torch.arange(1, 400)
    tef = endpoint_features(lengths, 400)
    for n in lengths.tolist():
        assert torch.equal(tef[n - 1, :n], temporal_endpoint_features(n)), n


def test_targets_follow_the_plain_rules(dataset):
    split = DeviceSplit.from_dataset(dataset, "cpu")
    generator = torch.Generator().manual_seed(0)
    indices = list(range(len(QUERIES)))
    _, plain_inputs, plain = plain_batch(dataset, indices)
    for _ in range(50):
        _, inputs, targets = split.batch(indices, generator)
        assert torch.equal(inputs["src_vid_mask"], plain_inputs["src_vid_mask"])
        for i, (frames, _, windows) in enumerate(QUERIES):
            ctx = min(frames, 12)
            kept = targets["span_labels"][i]["spans"]
            assert len(kept) == min(len(windows), MAX_WINDOWS) == targets["span_sizes"][i]
            # every kept span is one of the query's windows, none twice
            spans = [span_targets([list(w)], ctx, 1.0, 1)[0] for w in windows]
            which = [next(j for j, s in enumerate(spans) if torch.equal(s, k)) for k in kept]
            assert len(set(which)) == len(which)
            if len(windows) <= MAX_WINDOWS:  # order and values exactly the plain path's
                assert torch.equal(kept, plain["span_labels"][i]["spans"])
            # saliency: the first kept window's frames
            first = windows[which[0]]
            st, ed = saliency_frame_range(first, ctx, 1.0)
            labels = targets["saliency_all_labels"][i]
            assert labels[:ctx].tolist() == [float(st <= f <= ed) for f in range(ctx)]
            pos = targets["saliency_pos_labels"][i].tolist()
            neg = targets["saliency_neg_labels"][i].tolist()
            if st == ed:
                assert pos == [st, st]
            else:
                assert pos[0] != pos[1] and all(st <= p <= ed for p in pos)
            outside = [f for f in range(ctx) if not st <= f <= ed]
            if len(outside) >= 2:
                assert neg[0] != neg[1] and all(n in outside for n in neg)
            else:
                assert neg == pos


def test_saliency_pairs_are_drawn_as_random_sample_draws_them(dataset):
    """Query 0: window [2, 5] of 10 frames, 4 frames inside, 6 outside. Ordered pairs of
    distinct frames are uniform for random.sample; the device draws must be too."""
    split = DeviceSplit.from_dataset(dataset, "cpu")
    generator = torch.Generator().manual_seed(1)
    draws = 6000
    pos_counts, neg_counts = Counter(), Counter()
    for _ in range(draws // 100):
        _, _, targets = split.batch([0] * 100, generator)
        pos_counts.update(map(tuple, targets["saliency_pos_labels"].tolist()))
        neg_counts.update(map(tuple, targets["saliency_neg_labels"].tolist()))
    assert set(pos_counts) == {(a, b) for a in range(2, 5) for b in range(2, 5) if a != b}
    outside = [0, 1, 5, 6, 7, 8, 9]
    assert set(neg_counts) == {(a, b) for a in outside for b in outside if a != b}
    for counts in (pos_counts, neg_counts):
        expected = draws / len(counts)
        chi2 = sum((c - expected) ** 2 / expected for c in counts.values())
        # chi-square with len-1 degrees of freedom; 3x the dof is far in the tail for uniform
        assert chi2 < 3 * (len(counts) - 1), (chi2, counts)


def test_windows_beyond_max_windows_are_a_uniform_random_subset(dataset):
    split = DeviceSplit.from_dataset(dataset, "cpu")
    generator = torch.Generator().manual_seed(2)
    firsts = Counter()
    for _ in range(40):
        _, _, targets = split.batch([2] * 50, generator)
        spans = targets["span_padded"][:, 0]  # the first kept window of query 2
        firsts.update(round(float(c) * 12) for c in (spans[:, 0] - spans[:, 1] / 2))
    assert set(firsts) == {1, 4, 8, 10, 3}  # each of the five windows comes first
    assert min(firsts.values()) > 2000 / 5 * 0.8


def test_epoch_order_is_the_shuffled_data_loaders(dataset):
    loader = DataLoader(list(range(len(dataset))), batch_size=3, shuffle=True,
                        generator=torch.Generator().manual_seed(7))  # fmt: skip
    expected = [i for batch in loader for i in batch.tolist()]
    order = epoch_order(len(dataset), True, torch.Generator().manual_seed(7))
    assert order.tolist() == expected
    batches = DeviceBatches(DeviceSplit.from_dataset(dataset, "cpu"), 3, order)
    got = [m["qid"] for metas, _, _ in batches for m in metas]
    assert got == [dataset.queries[i].qid for i in expected]
    assert len(batches) == 3
    assert epoch_order(5, False).tolist() == [0, 1, 2, 3, 4]


@pytest.mark.parametrize(("n", "world"), [(8, 2), (9, 2), (7, 3), (2, 4)])
def test_shards_are_equal_sized_and_cover_the_order(n, world):
    order = np.random.default_rng(n).permutation(n)
    parts = [shard(order, rank, world) for rank in range(world)]
    assert len({len(p) for p in parts}) == 1  # same number of batches on every rank
    assert set(np.concatenate(parts).tolist()) == set(order.tolist())
    assert parts[0].tolist()[: len(order[0::world])] == order[0::world].tolist()


def test_float16_storage_is_cast_back(dataset):
    _, plain, _ = plain_batch(dataset, [0, 1])
    _, inputs, _ = DeviceSplit.from_dataset(dataset, "cpu", dtype=torch.float16).batch([0, 1])
    assert inputs["src_aud"].dtype == torch.float32
    assert torch.allclose(inputs["src_aud"], plain["src_aud"], atol=1e-3)
