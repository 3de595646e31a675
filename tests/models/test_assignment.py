"""The batched on-device assignment solver against scipy, brute force and the Hungarian matcher."""

from __future__ import annotations

import doctest
import itertools

import numpy as np
import pytest
import torch
from scipy.optimize import linear_sum_assignment

from lighthouse_audio.models import assignment
from lighthouse_audio.models.assignment import (
    MAX_CANDIDATES,
    assignment_matches,
    batched_assignment,
    num_candidates,
)
from lighthouse_audio.models.matcher import HungarianMatcher, pad_target_spans

DEVICES = [
    "cpu",
    pytest.param(
        "cuda",
        marks=[
            pytest.mark.gpu,
            pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device"),
        ],
    ),
]


def scipy_solve(cost: np.ndarray, sizes: list[int]) -> np.ndarray:
    """Reference ``[..., B, Q, N] -> [..., B, N]``: scipy on each sample's real columns."""
    out = np.full((*cost.shape[:-2], cost.shape[-1]), -1, np.int64)
    for lead in np.ndindex(cost.shape[:-3]):
        for b, n in enumerate(sizes):
            rows, cols = linear_sum_assignment(cost[(*lead, b)][:, :n])
            out[(*lead, b)][cols] = rows
    return out


def totals(cost: np.ndarray, assigned: np.ndarray) -> np.ndarray:
    """``[..., B]`` cost of an assignment over its real (non -1) columns, summed in float64."""
    query = np.where(assigned >= 0, assigned, 0)
    picked = np.take_along_axis(cost.astype(np.float64), query[..., None, :], axis=-2)[..., 0, :]
    return np.where(assigned >= 0, picked, 0).sum(-1)


def assert_valid(assigned: np.ndarray, sizes: list[int], num_queries: int) -> None:
    """Columns ``< n_b`` hold distinct queries in range, the rest -1."""
    for lead in np.ndindex(assigned.shape[:-2]):
        for b, n in enumerate(sizes):
            row = assigned[(*lead, b)]
            assert (row[n:] == -1).all(), row
            real = row[:n]
            assert len(set(real.tolist())) == n and ((real >= 0) & (real < num_queries)).all(), row


def random_sizes(rng: np.random.Generator, batch: int, num_targets: int) -> list[int]:
    """Mixed sizes that always include an empty sample and a full one."""
    sizes = rng.integers(0, num_targets + 1, batch)
    sizes[0], sizes[1] = 0, num_targets
    return sizes.tolist()


def solve(cost: np.ndarray, sizes: list[int], device: str, **kwargs) -> np.ndarray:
    out = batched_assignment(torch.from_numpy(cost).to(device), sizes, **kwargs)
    assert out.dtype == torch.int64 and out.device.type == device
    return out.cpu().numpy()


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("num_targets", [1, 2, 3, 4, 5])
def test_equals_scipy_on_random_costs(device, num_targets):
    rng = np.random.default_rng(num_targets)
    for num_queries in range(num_targets, 13):
        cost = rng.normal(size=(2, 9, num_queries, num_targets))  # [L, B, Q, N]
        sizes = random_sizes(rng, 9, num_targets)
        want = scipy_solve(cost, sizes)
        # float64 continuous costs: the optimum is unique, so the assignment itself must agree
        got = solve(cost, sizes, device)
        np.testing.assert_array_equal(got, want, err_msg=f"Q={num_queries} sizes={sizes}")
        # float32 (what the matcher builds): optimal up to float32 rounding of the totals
        cost32 = cost.astype(np.float32)
        got32 = solve(cost32, sizes, device)
        assert_valid(got32, sizes, num_queries)
        np.testing.assert_allclose(
            totals(cost32, got32), totals(cost32, scipy_solve(cost32, sizes)), rtol=0, atol=1e-5
        )


def lexicographic_optimum(cost: np.ndarray, n: int) -> tuple[int, ...]:
    """Brute force over injective maps in lexicographic order: the first strict minimum."""
    best_total, best = None, ()
    for queries in itertools.permutations(range(cost.shape[0]), n):
        total = sum(cost[q, j] for j, q in enumerate(queries))
        if best_total is None or total < best_total:
            best_total, best = total, queries
    return best


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", [np.int64, np.float32, np.float64])
def test_integer_costs_with_ties(device, dtype):
    rng = np.random.default_rng(7)
    for num_targets in range(1, 5):
        for num_queries in range(num_targets, 7):
            cost = rng.integers(-1, 2, size=(3, 6, num_queries, num_targets)).astype(dtype)
            sizes = random_sizes(rng, 6, num_targets)
            got = solve(cost, sizes, device)
            assert_valid(got, sizes, num_queries)
            want = scipy_solve(cost, sizes)
            np.testing.assert_array_equal(totals(cost, got), totals(cost, want))
            # the documented tie rule: the lexicographically smallest optimum
            for layer, b in itertools.product(range(3), range(6)):
                n = sizes[b]
                assert tuple(got[layer, b, :n]) == lexicographic_optimum(cost[layer, b], n)


@pytest.mark.parametrize("device", DEVICES)
def test_all_tied_gives_first_queries(device):
    got = batched_assignment(torch.zeros(2, 10, 5, device=device), [5, 3])
    assert got.tolist() == [[0, 1, 2, 3, 4], [0, 1, 2, -1, -1]]


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("lead", [(), (3,), (2, 3)])
@pytest.mark.parametrize(
    "dtype", [torch.float16, torch.bfloat16, torch.float32, torch.float64, torch.int32]
)
def test_shapes_dtypes_and_device(device, lead, dtype):
    g = torch.Generator().manual_seed(0)
    cost = (torch.rand(*lead, 4, 10, 3, generator=g) * 100).to(device=device, dtype=dtype)
    before = cost.clone()
    got = batched_assignment(cost, [3, 0, 1, 2])
    assert got.shape == (*lead, 4, 3)
    assert got.dtype == torch.int64 and got.device == cost.device
    assert torch.equal(cost, before), "the cost tensor must not be modified"
    assert_valid(got.cpu().numpy(), [3, 0, 1, 2], 10)
    want = scipy_solve(cost.cpu().double().numpy(), [3, 0, 1, 2])
    np.testing.assert_allclose(
        totals(cost.cpu().double().numpy(), got.cpu().numpy()),
        totals(cost.cpu().double().numpy(), want),
        rtol=1e-6,
    )


@pytest.mark.parametrize("device", DEVICES)
def test_cost_with_grad_and_non_contiguous(device):
    base = torch.rand(5, 3, 10, device=device, requires_grad=True)  # [B, N, Q]
    cost = base.transpose(1, 2)  # [B, Q, N], not contiguous
    got = batched_assignment(cost, [3, 2, 1, 0, 3])
    assert not got.requires_grad
    want = scipy_solve(cost.detach().cpu().double().numpy(), [3, 2, 1, 0, 3])
    np.testing.assert_array_equal(got.cpu().numpy(), want)


@pytest.mark.parametrize("device", DEVICES)
def test_empty_shapes(device):
    no_targets = batched_assignment(torch.rand(2, 3, 10, 0, device=device), [0, 0, 0])
    assert no_targets.shape == (2, 3, 0) and no_targets.dtype == torch.int64
    no_samples = batched_assignment(torch.rand(2, 0, 10, 4, device=device), [])
    assert no_samples.shape == (2, 0, 4)
    all_empty = batched_assignment(torch.rand(2, 3, 10, 4, device=device), [0, 0, 0])
    assert (all_empty == -1).all()


@pytest.mark.parametrize("device", DEVICES)
def test_sizes_as_tensors(device):
    rng = np.random.default_rng(3)
    cost = torch.from_numpy(rng.normal(size=(2, 6, 10, 4))).to(device)
    sizes = [4, 0, 2, 3, 1, 4]
    want = batched_assignment(cost, sizes)
    assert torch.equal(batched_assignment(cost, torch.tensor(sizes)), want)
    assert torch.equal(batched_assignment(cost, torch.tensor(sizes, device=device)), want)
    np.testing.assert_array_equal(want.cpu().numpy(), scipy_solve(cost.cpu().numpy(), sizes))


def test_invalid_arguments():
    with pytest.raises(ValueError, match=r"5 target columns but only 4 queries"):
        batched_assignment(torch.rand(2, 4, 5), [1, 1])
    with pytest.raises(ValueError, match=r"\[\.\.\., batch, num_queries, num_targets\]"):
        batched_assignment(torch.rand(4, 5), [1])
    with pytest.raises(ValueError, match="2 sizes for a batch of 3"):
        batched_assignment(torch.rand(3, 6, 2), [1, 1])
    with pytest.raises(ValueError, match=r"sizes \[3, -1\] outside \[0, 2\]"):
        batched_assignment(torch.rand(3, 6, 2), [1, 3, -1])
    with pytest.raises(ValueError, match=r"outside \[0, 2\]"):
        batched_assignment(torch.rand(3, 6, 2), torch.tensor([1, 3, 0]))
    with pytest.raises(ValueError, match="complex"):
        batched_assignment(torch.rand(1, 6, 2, dtype=torch.complex64), [1])
    with pytest.raises(ValueError, match=r"\[batch, num_targets\]"):
        assignment_matches(torch.zeros(2, 3, 4, dtype=torch.int64), [1, 1, 1])
    with pytest.raises(ValueError, match="1 sizes for a batch of 2"):
        assignment_matches(torch.zeros(2, 4, dtype=torch.int64), [1])


def test_typical_sizes_stay_on_device_path(monkeypatch):
    assert num_candidates(10, 5) == 2560 <= MAX_CANDIDATES
    assert num_candidates(12, 5) <= MAX_CANDIDATES and num_candidates(10, 10) <= MAX_CANDIDATES

    def no_host(cost):
        raise AssertionError("fell back to scipy")

    monkeypatch.setattr(assignment, "_scipy_assignment", no_host)
    cost = torch.rand(2, 32, 10, 5)
    batched_assignment(cost, [5] * 32)


@pytest.mark.parametrize("device", DEVICES)
def test_scipy_fallback_beyond_the_limit(device, monkeypatch):
    assert num_candidates(30, 6) > MAX_CANDIDATES

    def no_dp(cost):
        raise AssertionError("should have used the scipy fallback")

    monkeypatch.setattr(assignment, "_subset_dp", no_dp)
    rng = np.random.default_rng(11)
    cost = rng.normal(size=(2, 4, 30, 6))
    sizes = [6, 0, 3, 5]
    got = solve(cost, sizes, device)
    np.testing.assert_array_equal(got, scipy_solve(cost, sizes))
    # max_candidates moves the threshold: even Q=10, N=3 goes to scipy below its 390 candidates
    small = rng.normal(size=(3, 10, 3))
    got_small = solve(small, [3, 1, 2], device, max_candidates=num_candidates(10, 3) - 1)
    np.testing.assert_array_equal(got_small, scipy_solve(small, [3, 1, 2]))


def test_fallback_and_device_path_agree_on_ties():
    """Both paths are optimal on tied integer costs (their tie-breaks may differ)."""
    rng = np.random.default_rng(5)
    cost = rng.integers(0, 3, size=(4, 8, 10, 4)).astype(np.float32)
    sizes = random_sizes(rng, 8, 4)
    device_path = solve(cost, sizes, "cpu")
    host_path = solve(cost, sizes, "cpu", max_candidates=0)
    assert_valid(host_path, sizes, 10)
    np.testing.assert_array_equal(totals(cost, device_path), totals(cost, host_path))


def test_chunked_batches_give_the_same_result(monkeypatch):
    rng = np.random.default_rng(2)
    cost = rng.normal(size=(3, 7, 9, 4))
    sizes = random_sizes(rng, 7, 4)
    whole = solve(cost, sizes, "cpu")
    # the widest level of Q=9, N=4 holds 84 * 6 candidates: 1000 forces chunks of one problem
    monkeypatch.setattr(assignment, "_CHUNK_CANDIDATES", 1000)
    np.testing.assert_array_equal(solve(cost, sizes, "cpu"), whole)
    np.testing.assert_array_equal(whole, scipy_solve(cost, sizes))


def random_model_outputs(
    seed: int, num_layers: int, sizes: list[int], num_queries: int = 10
) -> tuple[list[dict], dict]:
    g = torch.Generator().manual_seed(seed)
    batch = len(sizes)
    layers = [
        {
            "pred_logits": torch.randn(batch, num_queries, 2, generator=g),
            "pred_spans": torch.rand(batch, num_queries, 2, generator=g) * 0.98 + 0.01,
        }
        for _ in range(num_layers)
    ]
    spans = [torch.rand(n, 2, generator=g) * 0.9 + 0.05 for n in sizes]
    return layers, {"span_labels": [{"spans": s} for s in spans]}


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("seed", range(6))
def test_matches_equal_hungarian_matcher(device, seed):
    rng = np.random.default_rng(seed)
    sizes = rng.integers(1, 6, 16).tolist()
    sizes[0] = 5  # some batches hold fewer than 5 windows everywhere: keep N = 5 in each
    layers, targets = random_model_outputs(seed, 3, sizes)
    layers = [{k: v.to(device) for k, v in layer.items()} for layer in layers]
    matcher = HungarianMatcher(cost_class=4, cost_span=10, cost_giou=1)
    want = matcher.match_layers(layers, targets)

    pred_logits = torch.stack([o["pred_logits"] for o in layers])  # [L, B, Q, 2]
    pred_spans = torch.stack([o["pred_spans"] for o in layers])
    tgt_spans, tgt_sizes = pad_target_spans([t["spans"] for t in targets["span_labels"]], device)
    assert tgt_sizes == sizes
    assigned = batched_assignment(matcher.cost_matrix(pred_logits, pred_spans, tgt_spans), sizes)
    for layer_assigned, layer_want in zip(assigned, want, strict=True):
        got = assignment_matches(layer_assigned, sizes)
        assert len(got) == len(layer_want)
        for (pred_idx, tgt_idx), (want_pred, want_tgt) in zip(got, layer_want, strict=True):
            assert pred_idx.dtype == tgt_idx.dtype == torch.int64
            assert pred_idx.device == tgt_idx.device == pred_spans.device
            assert torch.equal(pred_idx.cpu(), want_pred), (pred_idx, want_pred)
            assert torch.equal(tgt_idx.cpu(), want_tgt), (tgt_idx, want_tgt)


@pytest.mark.parametrize("device", DEVICES)
def test_assignment_matches_format(device):
    assigned = torch.tensor([[3, 0, 7], [5, -1, -1], [-1, -1, -1], [9, 2, -1]], device=device)
    got = assignment_matches(assigned, torch.tensor([3, 1, 0, 2]))
    want = [([0, 3, 7], [1, 0, 2]), ([5], [0]), ([], []), ([2, 9], [1, 0])]
    for (pred_idx, tgt_idx), (want_pred, want_tgt) in zip(got, want, strict=True):
        assert pred_idx.dtype == tgt_idx.dtype == torch.int64
        assert pred_idx.device == assigned.device
        assert pred_idx.tolist() == want_pred and tgt_idx.tolist() == want_tgt


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_assignment_matches_refuses_device_sizes():
    assigned = torch.tensor([[1, 0]], device="cuda")
    with pytest.raises(ValueError, match="host ints"):
        assignment_matches(assigned, torch.tensor([2], device="cuda"))


def test_docstring_examples():
    result = doctest.testmod(assignment, extraglobs={"torch": torch})
    assert result.attempted >= 3 and result.failed == 0
