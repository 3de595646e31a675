"""Exact minimum-cost assignment for many small problems at once, on the cost's own device.

The Hungarian matcher solves, per decoder layer and sample, a ``[num_queries, n_targets]``
problem with ``n_targets`` <= 5 or so. :func:`batched_assignment` solves all of them with a few
tensor operations and no host round trip: no ``.item()``, ``.cpu()``, ``.tolist()`` or branch on
a device value, so on a GPU it queues asynchronously (and can later be captured in a CUDA graph).

Method: dynamic programming over sets of queries (Held-Karp for assignment). Columns take
queries in order ``0..N-1``; ``rest[S]`` is the least cost of giving columns ``|S|..N-1`` one
query each from outside the set ``S`` already used by columns ``0..|S|-1``::

    rest[S] = min over q not in S of  cost[q, |S|] + rest[S + {q}],   rest[S] = 0 if |S| = N

Level ``k`` (sets of size ``k``, from ``N-1`` down to 0) is one gather, one add and one ``min``
over ``[problems, C(Q, k), Q - k]``; the optimum is then read forward from the empty set through
``N`` gathers of the stored argmins. The set tables depend only on ``(Q, N)`` and are cached per
device. Work per problem is :func:`num_candidates` ``= sum_k k * C(Q, k)``: 2,560 for Q=10, N=5,
against 30,240 injective maps of 5 costs each for brute-force enumeration.

Exactness: float rounding is monotone, so the DP returns exactly the minimum, over every
injective map, of the total as it sums it (``c_0 + (c_1 + (... + c_{N-1}))`` in the working
dtype). That is ``scipy.optimize.linear_sum_assignment``'s optimum up to the rounding of the sum.

Padding: columns ``j >= n_b`` of sample ``b`` are set to cost 0. With ``Q >= N`` such a dummy
column can take any query left over, so the optimum over the real columns is unchanged.

Ties (equal computed totals): the lexicographically smallest optimum. Target 0 gets the smallest
query index it has in any optimum, target 1 the smallest given that, and so on (the padding
columns come last, so they never sway the real ones). This may differ from scipy's choice; any
optimum gives the same matching cost.

Limits: problems with more than :data:`MAX_CANDIDATES` candidates (e.g. Q=30, N=6) go to scipy
on the host, which synchronises; with Q=10 every N <= 10 stays on the device. NaN costs give a
valid but arbitrary assignment on the device path (raising would need a sync) and scipy's
``ValueError`` on the fallback path. Host ``sizes`` are copied to the device (pinned, async) on
each call; under CUDA-graph capture pass them as a static device tensor instead. The set tables
are built on a shape's first call (also synchronising), so warm up before capturing.
"""

from __future__ import annotations

import functools
import itertools
from collections.abc import Sequence
from math import comb

import numpy as np
import torch
from scipy.optimize import linear_sum_assignment
from torch import Tensor

__all__ = ["MAX_CANDIDATES", "assignment_matches", "batched_assignment", "num_candidates"]

MAX_CANDIDATES = 1 << 20
"""Largest ``num_candidates(Q, N)`` solved on the device; beyond it scipy solves on the host."""

# Candidates per chunk of problems: bounds the [problems, C(Q, k), Q - k] temporaries (~3 of
# them, 4-8 bytes each) to a few hundred MB whatever the batch size.
_CHUNK_CANDIDATES = 1 << 23

_MatchPair = tuple[Tensor, Tensor]


def num_candidates(num_queries: int, num_cols: int) -> int:
    """Candidates the set DP compares per problem: ``sum_{k<N} (Q - k) * C(Q, k)``.

    That equals ``sum_{k=1..N} k * C(Q, k)``, computed here in that form.
    """
    return sum(k * comb(num_queries, k) for k in range(1, num_cols + 1))


def batched_assignment(
    cost: Tensor,
    sizes: Sequence[int] | Tensor,
    *,
    max_candidates: int = MAX_CANDIDATES,
) -> Tensor:
    """Optimal one-to-one assignment of each sample's real target columns to queries.

    Args:
        cost: ``[..., batch, num_queries, num_targets]`` (any leading dims, e.g. decoder
            layers), float or integer; ``num_queries >= num_targets``. Not modified.
        sizes: ``[batch]`` real target count ``n_b`` per sample (``0 <= n_b <= num_targets``),
            shared by all leading dims: host ints (a list, or a CPU tensor; validated) or a
            tensor on ``cost.device`` (not validated, since reading it would synchronise).
        max_candidates: above ``num_candidates(num_queries, num_targets)`` this, solve with
            scipy on the host instead (synchronises).

    Returns:
        ``[..., batch, num_targets]`` int64 on ``cost.device``: for column ``j < n_b`` the query
        assigned to target ``j`` (distinct within a sample), ``-1`` for columns ``j >= n_b``.
        The total cost over real columns is minimal; ties are broken as the module describes.

    Raises:
        ValueError: fewer queries than target columns, wrong shapes, or host ``sizes`` out of
            ``[0, num_targets]``.

    >>> cost = torch.tensor([[[4.0, 1.0], [2.0, 0.0], [1.0, 2.0]]])  # [batch 1, 3 queries, 2]
    >>> batched_assignment(cost, [2])  # target 0 -> query 2, target 1 -> query 1: cost 1 + 0
    tensor([[2, 1]])
    >>> batched_assignment(cost, [1])  # only target 0 is real
    tensor([[ 2, -1]])
    """
    if cost.dim() < 3:
        raise ValueError(
            f"batched_assignment: cost must be [..., batch, num_queries, num_targets], "
            f"got shape {tuple(cost.shape)}"
        )
    *lead, batch, num_queries, num_cols = cost.shape
    if num_queries < num_cols:
        raise ValueError(
            f"batched_assignment: {num_cols} target columns but only {num_queries} queries "
            f"(cost shape {tuple(cost.shape)}); needs num_queries >= num_targets"
        )
    device = cost.device
    real = _real_columns(sizes, batch, num_cols, device)  # [B, N] bool
    if num_cols == 0 or cost.numel() == 0:
        return torch.full((*lead, batch, num_cols), -1, dtype=torch.int64, device=device)

    work = cost.detach().to(_working_dtype(cost.dtype))
    work = work.masked_fill(~real.unsqueeze(-2), 0)  # padding columns: zero-cost dummy targets
    flat = work.reshape(-1, num_queries, num_cols)
    if num_cols == 1:
        assigned = flat[..., 0].argmin(-1, keepdim=True)  # first minimum: smallest index
    elif num_candidates(num_queries, num_cols) <= max_candidates:
        assigned = _subset_dp(flat)
    else:
        assigned = _scipy_assignment(flat)
    return assigned.reshape(*lead, batch, num_cols).masked_fill(~real, -1)


def assignment_matches(assigned: Tensor, sizes: Sequence[int] | Tensor) -> list[_MatchPair]:
    """Per-sample matches in the matcher's format, from one layer of :func:`batched_assignment`.

    Args:
        assigned: ``[batch, num_targets]`` as returned by :func:`batched_assignment` for the
            same ``sizes`` (``-1`` exactly in the padding columns). For ``[layers, batch, N]``
            call once per layer.
        sizes: ``[batch]`` host ints (a list or a CPU tensor); slicing needs them on the host.

    Returns:
        ``batch`` pairs ``(pred_idx, tgt_idx)``, int64 on ``assigned.device``, length ``n_b``,
        ``pred_idx`` ascending: query ``pred_idx[i]`` is matched to target ``tgt_idx[i]``.
        They are views of one sorted tensor (one sort for the batch, no synchronisation).

    >>> assignment_matches(torch.tensor([[2, 0, 1], [1, -1, -1]]), [3, 1])
    [(tensor([0, 1, 2]), tensor([1, 2, 0])), (tensor([1]), tensor([0]))]
    """
    if assigned.dim() != 2:
        raise ValueError(
            f"assignment_matches: assigned must be [batch, num_targets], "
            f"got shape {tuple(assigned.shape)}"
        )
    batch, num_cols = assigned.shape
    if isinstance(sizes, Tensor) and sizes.device.type != "cpu":
        raise ValueError(
            f"assignment_matches: sizes must be host ints (a list or a CPU tensor), got a "
            f"tensor on {sizes.device}: reading it would synchronise"
        )
    host_sizes = _check_host_sizes(sizes, batch, num_cols, "assignment_matches")
    # Padding sorts last, so each row's n_b real columns lead; the sort's permutation is tgt_idx.
    key = assigned.masked_fill(assigned < 0, torch.iinfo(assigned.dtype).max)
    pred_idx, tgt_idx = key.sort(-1)
    return [(pred_idx[b, :n], tgt_idx[b, :n]) for b, n in enumerate(host_sizes)]


def _working_dtype(dtype: torch.dtype) -> torch.dtype:
    if dtype.is_complex:
        raise ValueError(f"batched_assignment: complex cost dtype {dtype} has no order")
    if dtype.is_floating_point:
        return torch.promote_types(dtype, torch.float32)  # half sums would round too coarsely
    return torch.int64  # integer and bool costs: exact sums


def _check_host_sizes(
    sizes: Sequence[int] | Tensor, batch: int, num_cols: int, caller: str
) -> list[int]:
    values = sizes.tolist() if isinstance(sizes, Tensor) else list(sizes)
    if len(values) != batch:
        raise ValueError(f"{caller}: {len(values)} sizes for a batch of {batch}")
    bad = [n for n in values if not 0 <= n <= num_cols]
    if bad:
        raise ValueError(f"{caller}: sizes {bad} outside [0, {num_cols}] (num_targets)")
    return [int(n) for n in values]


def _real_columns(
    sizes: Sequence[int] | Tensor, batch: int, num_cols: int, device: torch.device
) -> Tensor:
    """``[batch, num_cols]`` bool, True for ``j < n_b``, built without a device sync."""
    if isinstance(sizes, Tensor) and sizes.device.type != "cpu":
        if sizes.shape != (batch,):
            raise ValueError(
                f"batched_assignment: sizes shape {tuple(sizes.shape)}, expected ({batch},)"
            )
        counts = sizes.to(device)
    else:
        host = torch.tensor(
            _check_host_sizes(sizes, batch, num_cols, "batched_assignment"), dtype=torch.int64
        )
        if device.type == "cuda":
            # A blocking copy would wait for the GPU work queued so far; a pinned async one
            # is simply queued behind it.
            counts = host.pin_memory().to(device, non_blocking=True)
        else:
            counts = host.to(device)
    return torch.arange(num_cols, device=device) < counts.unsqueeze(-1)


@functools.lru_cache(maxsize=64)
def _host_subset_tables(num_queries: int, num_cols: int) -> tuple[tuple[np.ndarray, ...], ...]:
    """Per level k = 0..N-1: ``(free [C(Q,k), Q-k], after [C(Q,k), Q-k])``.

    Row r of level k stands for the r-th k-subset S of ``range(Q)`` in increasing bitmask order
    (colex); ``free[r]`` lists the queries outside S ascending and ``after[r, t]`` is the row of
    ``S + {free[r, t]}`` in level k+1.
    """
    binom = np.array(
        [[comb(n, r) for r in range(num_cols + 1)] for n in range(num_queries + 1)], np.int64
    )

    def colex_rank(subsets: np.ndarray) -> np.ndarray:
        # rank of {c_0 < c_1 < ...} among same-size subsets in bitmask order: sum_i C(c_i, i+1)
        ranks = np.zeros(subsets.shape[:-1], np.int64)
        for i in range(subsets.shape[-1]):
            ranks += binom[subsets[..., i], i + 1]
        return ranks

    levels = []
    for k in range(num_cols):
        lex = np.array(list(itertools.combinations(range(num_queries), k)), np.int64)
        members = np.empty_like(lex)  # [C(Q, k), k], also for k = 0
        members[colex_rank(lex)] = lex
        used = np.zeros((len(members), num_queries), bool)
        np.put_along_axis(used, members, True, axis=1)
        # stable argsort of the flags lists the unused queries first, ascending
        free = np.argsort(used, axis=1, kind="stable")[:, : num_queries - k]
        grown = np.concatenate(
            [np.broadcast_to(members[:, None, :], (*free.shape, k)), free[..., None]], axis=-1
        )
        levels.append((free, colex_rank(np.sort(grown, axis=-1))))
    return tuple(levels)


@functools.lru_cache(maxsize=64)
def _subset_tables(
    num_queries: int, num_cols: int, device: torch.device
) -> tuple[tuple[Tensor, Tensor], ...]:
    """The host tables transposed to ``[Q-k, C(Q,k)]``, flattened, on ``device``."""
    return tuple(
        (
            torch.from_numpy(np.ascontiguousarray(free.T).reshape(-1)).to(device),
            torch.from_numpy(np.ascontiguousarray(after.T).reshape(-1)).to(device),
        )
        for free, after in _host_subset_tables(num_queries, num_cols)
    )


def _subset_dp(cost: Tensor) -> Tensor:
    """``[P, Q, N]`` -> ``[P, N]`` optimal query per column (every column treated as real)."""
    num_queries, num_cols = cost.shape[1:]
    levels = _subset_tables(num_queries, num_cols, cost.device)
    widest = max(free.numel() for free, _ in levels)
    per_chunk = max(1, _CHUNK_CANDIDATES // widest)
    cost_by_col = cost.transpose(1, 2).contiguous()  # [P, N, Q]: one column's costs per level
    return torch.cat([_subset_dp_chunk(c, levels) for c in cost_by_col.split(per_chunk)])


def _subset_dp_chunk(cost_by_col: Tensor, levels: tuple[tuple[Tensor, Tensor], ...]) -> Tensor:
    # Candidates are laid out [P, Q-k, C(Q,k)] and reduced over dim 1, which vectorises over
    # the many sets; index_select on flat tables is far cheaper than advanced indexing on CPU.
    num_problems, num_queries = cost_by_col.shape[0], cost_by_col.shape[2]
    choices: list[Tensor] = []  # per level, from N-1 down to 0: [P, C(Q, k)] slot into free
    rest: Tensor | None = None  # level N: nothing left to assign
    for k in reversed(range(cost_by_col.shape[1])):
        free, after = levels[k]
        shape = (num_problems, num_queries - k, free.numel() // (num_queries - k))
        candidates = cost_by_col[:, k].index_select(1, free).view(shape)
        if rest is not None:
            candidates = candidates + rest.index_select(1, after).view(shape)
        rest, choice = candidates.min(1)  # first minimum: smallest free query
        choices.append(choice)
    subset = cost_by_col.new_zeros(num_problems, dtype=torch.int64)  # row of the empty set
    cols = []
    for (free, after), choice in zip(levels, reversed(choices), strict=True):
        slot = choice.gather(1, subset.unsqueeze(1)).squeeze(1)
        flat = slot * choice.shape[1] + subset  # entry [slot, subset] of the [Q-k, C] table
        cols.append(free.index_select(0, flat))
        subset = after.index_select(0, flat)
    return torch.stack(cols, dim=1)


def _scipy_assignment(cost: Tensor) -> Tensor:
    """Host fallback for tables too large to enumerate: synchronises and loops over problems."""
    host = cost.cpu().numpy()
    out = np.empty((host.shape[0], host.shape[2]), np.int64)
    for p, matrix in enumerate(host):
        rows, cols = linear_sum_assignment(matrix)  # Q >= N: every column gets a row
        out[p, cols] = rows
    return torch.from_numpy(out).to(cost.device)
