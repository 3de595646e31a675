from pathlib import Path

import pytest
import torch
from scipy.optimize import linear_sum_assignment

from lighthouse_audio.models.matcher import HungarianMatcher, build_matcher
from lighthouse_audio.spans import generalized_temporal_iou, span_cxw_to_xx
from tests.conftest import fixture_files

IO_FILES = fixture_files("*_io.pt")


def load_io(path: Path) -> dict:
    return torch.load(path, weights_only=True)


def random_batch(sizes: list[int], num_queries: int = 10, seed: int = 0) -> tuple[dict, dict]:
    g = torch.Generator().manual_seed(seed)
    batch = len(sizes)
    outputs = {
        "pred_logits": torch.randn(batch, num_queries, 2, generator=g),
        "pred_spans": torch.rand(batch, num_queries, 2, generator=g) * 0.8 + 0.1,
    }
    spans = [torch.rand(n, 2, generator=g) * 0.5 + 0.1 for n in sizes]
    return outputs, {"span_labels": [{"spans": s} for s in spans]}


def lighthouse_style_match(matcher: HungarianMatcher, outputs: dict, targets: dict) -> list:
    """Reference: one cost matrix over the flattened batch, split by sample (as Lighthouse)."""
    batch, num_queries = outputs["pred_spans"].shape[:2]
    prob = outputs["pred_logits"].flatten(0, 1).softmax(-1)
    tgt = torch.cat([t["spans"] for t in targets["span_labels"]])
    pred = outputs["pred_spans"].flatten(0, 1)
    cost = (
        matcher.cost_span * torch.cdist(pred, tgt, p=1)
        + matcher.cost_giou * -generalized_temporal_iou(span_cxw_to_xx(pred), span_cxw_to_xx(tgt))
        + matcher.cost_class * -prob[:, [0] * len(tgt)]
    )
    cost = cost.view(batch, num_queries, -1)
    sizes = [len(t["spans"]) for t in targets["span_labels"]]
    return [linear_sum_assignment(c[i]) for i, c in enumerate(cost.split(sizes, -1))]


def assert_matches_equal(got: list, want: list) -> None:
    assert len(got) == len(want)
    for (gi, gj), (wi, wj) in zip(got, want, strict=True):
        assert gi.dtype == gj.dtype == torch.int64
        assert torch.equal(gi, torch.as_tensor(wi, dtype=torch.int64))
        assert torch.equal(gj, torch.as_tensor(wj, dtype=torch.int64))


def test_batched_equals_per_sample():
    matcher = HungarianMatcher(cost_class=4, cost_span=10, cost_giou=1)
    outputs, targets = random_batch([1, 3, 0, 5, 2, 12], num_queries=10, seed=1)
    batched = matcher(outputs, targets)
    for i, (pred_idx, tgt_idx) in enumerate(batched):
        one_out = {k: v[i : i + 1] for k, v in outputs.items()}
        one_tgt = {"span_labels": targets["span_labels"][i : i + 1]}
        ((want_pred, want_tgt),) = matcher(one_out, one_tgt)
        assert torch.equal(pred_idx, want_pred) and torch.equal(tgt_idx, want_tgt)
        n = len(targets["span_labels"][i]["spans"])
        assert len(pred_idx) == min(10, n)
        assert torch.equal(pred_idx, pred_idx.sort().values)


def test_batched_equals_lighthouse_style_reference():
    matcher = HungarianMatcher(cost_class=4, cost_span=10, cost_giou=1)
    outputs, targets = random_batch([2, 1, 4, 3], seed=2)
    assert_matches_equal(
        matcher(outputs, targets), lighthouse_style_match(matcher, outputs, targets)
    )


def test_match_layers_equals_separate_calls():
    matcher = HungarianMatcher(cost_class=4, cost_span=10, cost_giou=1)
    layers = [random_batch([2, 1, 3], seed=s)[0] for s in range(3)]
    _, targets = random_batch([2, 1, 3], seed=0)
    together = matcher.match_layers(layers, targets)
    for layer, matches in zip(layers, together, strict=True):
        separate = matcher(layer, targets)
        for (a, b), (c, d) in zip(matches, separate, strict=True):
            assert torch.equal(a, c) and torch.equal(b, d)


def test_accepts_list_of_target_dicts():
    matcher = HungarianMatcher(cost_class=4, cost_span=10, cost_giou=1)
    outputs, targets = random_batch([2, 1], seed=3)
    by_dict = matcher(outputs, targets)
    by_list = matcher(outputs, targets["span_labels"])
    for (a, b), (c, d) in zip(by_dict, by_list, strict=True):
        assert torch.equal(a, c) and torch.equal(b, d)


@pytest.mark.parametrize("sizes", [[0, 0, 0], [0, 2, 0]])
def test_empty_targets_give_empty_matches(sizes):
    matcher = HungarianMatcher(cost_class=4, cost_span=10, cost_giou=1)
    outputs, targets = random_batch(sizes, seed=4)
    for (pred_idx, tgt_idx), n in zip(matcher(outputs, targets), sizes, strict=True):
        assert len(pred_idx) == len(tgt_idx) == n
        assert pred_idx.dtype == tgt_idx.dtype == torch.int64


def test_more_targets_than_queries():
    matcher = HungarianMatcher(cost_class=4, cost_span=10, cost_giou=1)
    outputs, targets = random_batch([7], num_queries=4, seed=5)
    ((pred_idx, tgt_idx),) = matcher(outputs, targets)
    assert pred_idx.tolist() == [0, 1, 2, 3]
    assert len(set(tgt_idx.tolist())) == 4


def test_invalid_arguments():
    with pytest.raises(ValueError, match="all 0"):
        HungarianMatcher(0, 0, 0)
    with pytest.raises(ValueError, match="span_loss_type"):
        HungarianMatcher(span_loss_type="ce")
    matcher = HungarianMatcher()
    outputs, targets = random_batch([1, 1], seed=6)
    with pytest.raises(ValueError, match="samples"):
        matcher(outputs, {"span_labels": targets["span_labels"][:1]})


@pytest.mark.parametrize("path", IO_FILES, ids=[p.name for p in IO_FILES])
def test_fixture_indices_exact(path):
    io = load_io(path)
    matcher = build_matcher(io["config"])
    outputs, targets = io["outputs"], io["targets"]
    assert_matches_equal(matcher(outputs, targets), io["matcher_indices"])
    aux_outputs = outputs.get("aux_outputs", [])
    want_aux = io.get("aux_matcher_indices", [])
    assert len(aux_outputs) == len(want_aux)
    for aux, want in zip(aux_outputs, want_aux, strict=True):
        assert_matches_equal(matcher(aux, targets), want)
    # the one-sync path used by the criterion gives the same
    layers = matcher.match_layers([outputs, *aux_outputs], targets)
    assert_matches_equal(layers[0], io["matcher_indices"])
    for got, want in zip(layers[1:], want_aux, strict=True):
        assert_matches_equal(got, want)
