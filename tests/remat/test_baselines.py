"""No rematerialisation and Chen et al. segment checkpointing.

References: on a synthetic training chain (forward ``f_0 .. f_{L-1}``, backward ``g_{L-1} ..
g_0`` where ``g_i`` reads ``f_i`` and ``g_{i+1}``), the checkpointing schedule is checked
against what the scheme must do by construction: the forward pass once, then every segment
that holds a non-checkpoint value recomputed once, so the extra cost is exactly the cost of the
non-checkpoint forward nodes, and the peak is the plain-order simulation of a much smaller
live set (``O(sqrt(L))`` unit values instead of ``O(L)``). The schedules are scored with the
common evaluator; on the published VGG16/VGG19 training graphs the peak must fall below the
plain peak at a cost of at most one extra forward pass.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from frugalml.errors import InfeasibleError, InvalidInputError
from frugalml.remat.baselines import chain_checkpointing, checkpoint_schedule, no_remat
from frugalml.remat.evaluate import evaluate_schedule
from frugalml.remat.formats import load_graph
from frugalml.remat.graph import RematGraph
from frugalml.remat.solution import plain_peak

DATA = Path("/work/shared/data/remat-graphs")


def training_chain(length: int, seed: int = 0, unit: bool = False) -> RematGraph:
    """Forward chain f_0..f_{L-1} (f_{L-1} is the loss), backward g_{L-1}..g_0.

    Node ids: f_i = i, g_i = 2L - 1 - i. g_{L-1} reads f_{L-1}; g_i reads f_i and g_{i+1}."""
    rng = np.random.default_rng(seed)
    n = 2 * length
    preds = []
    for v in range(n):
        if v < length:
            preds.append((v - 1,) if v else ())
        else:
            i = n - 1 - v
            preds.append((i,) if i == length - 1 else (i, v - 1))
    cost = np.ones(n) if unit else rng.integers(1, 5, size=n).astype(float)
    mem = np.ones(n, dtype=np.int64) if unit else rng.integers(1, 6, size=n)
    return RematGraph(
        cost=cost, memory=mem, preds=tuple(preds), name=f"chain{length}",
        meta={"backward": [v >= length for v in range(n)]},
    )  # fmt: skip


# -- no_remat -----------------------------------------------------------------------------------
def test_no_remat_is_the_plain_order():
    g = training_chain(6, seed=1)
    sol = no_remat(g)
    np.testing.assert_array_equal(sol.schedule, np.arange(g.n))
    assert sol.status == "optimal"
    assert sol.budget == plain_peak(g) == sol.report.peak_memory
    assert sol.report.total_cost == g.total_cost == sol.objective == sol.bound
    assert sol.report.recomputations == 0


def test_no_remat_with_budgets():
    g = training_chain(6, seed=1)
    peak = plain_peak(g)
    assert no_remat(g, peak + 10).status == "optimal"
    low = no_remat(g, peak - 1)
    assert low.status == "unknown" and low.schedule is None and low.info["best_peak"] == peak
    with pytest.raises(InfeasibleError):
        no_remat(g, g.min_budget - 1)


# -- checkpointing on a synthetic chain ------------------------------------------------------
@pytest.mark.parametrize("length,segments", [(16, 4), (25, 5), (10, 3), (9, 1), (12, 12)])
def test_checkpoint_schedule_structure(length, segments):
    g = training_chain(length, seed=length)
    sched, ckpts = checkpoint_schedule(g, segments)
    stride = math.ceil(length / segments)
    expect = sorted({*range(stride - 1, length, stride), length - 1})
    assert list(ckpts) == expect
    # forward pass once, in order, then the backward part
    assert list(sched[:length]) == list(range(length))
    rest = sched[length:]
    assert [v for v in rest if v >= length] == list(range(length, 2 * length))
    # every non-checkpoint forward node recomputed exactly once, checkpoints never
    recomputed = sorted(v for v in rest if v < length)
    assert recomputed == sorted(set(range(length)) - set(expect))
    rep = evaluate_schedule(g, sched)
    extra = g.cost[recomputed].sum()
    assert rep.total_cost == pytest.approx(g.total_cost + extra)
    assert rep.recomputations == len(recomputed)


def test_checkpointing_peak_is_sublinear():
    length = 36
    g = training_chain(length, unit=True)
    sol = chain_checkpointing(g)
    assert sol.status == "feasible" and sol.info["segments"] == 6
    # plain: every activation is held until its gradient -> about L values; with 6 segments of
    # 6: 6 checkpoints + one recomputed segment + a few gradients
    assert plain_peak(g) >= length
    assert sol.report.peak_memory <= 6 + 6 + 3
    assert sol.report.overhead == pytest.approx((length - 6) / (2 * length))


def test_checkpointing_with_budget_sweeps_segments():
    g = training_chain(20, seed=3)
    peak = plain_peak(g)
    # the plain peak is met by the all-checkpoint schedule at zero overhead
    sol = chain_checkpointing(g, peak)
    assert sol.status == "feasible" and sol.report.overhead == 0.0
    tight = chain_checkpointing(g, int(0.6 * peak))
    assert tight.status == "feasible" and tight.report.peak_memory <= int(0.6 * peak)
    # it is the cheapest of the fitting segment counts
    costs = []
    for k in range(1, 21):
        rep = evaluate_schedule(g, checkpoint_schedule(g, k)[0])
        if rep.peak_memory <= int(0.6 * peak):
            costs.append(rep.total_cost)
    assert tight.report.total_cost == min(costs)
    # a budget no segment count meets (but above min_budget)
    least = min(
        evaluate_schedule(g, checkpoint_schedule(g, k)[0]).peak_memory for k in range(1, 21)
    )
    if least - 1 >= g.min_budget:
        none = chain_checkpointing(g, least - 1)
        assert none.status == "unknown" and none.schedule is None
        assert none.info["best_peak"] == least


def test_checkpointing_skip_connections_stay_valid():
    # forward chain with skips f_i -> f_{i+3}; backward nodes read forward values and skips
    length = 15
    n = 2 * length
    preds = []
    for v in range(n):
        if v < length:
            preds.append(tuple(u for u in (v - 1, v - 3) if u >= 0))
        else:
            i = n - 1 - v  # g_i reads f_i, the skip input f_{i-3} and g_{i+1}
            reads = {i} | ({i - 3} if i >= 3 else set()) | ({v - 1} if i < length - 1 else set())
            preds.append(tuple(sorted(reads)))
    g = RematGraph(cost=np.ones(n), memory=np.ones(n, dtype=np.int64), preds=tuple(preds),
                   meta={"backward": [v >= length for v in range(n)]})  # fmt: skip
    for k in range(1, length + 1):
        sched, _ = checkpoint_schedule(g, k)
        rep = evaluate_schedule(g, sched)  # raises if an input was never computed
        assert rep.computations >= n


def test_checkpointing_needs_labels():
    g = training_chain(5)
    bare = RematGraph(cost=g.cost, memory=g.memory, preds=g.preds)
    with pytest.raises(InvalidInputError, match="forward/backward labels"):
        chain_checkpointing(bare)
    fwd_only = RematGraph(
        cost=g.cost, memory=g.memory, preds=g.preds, meta={"backward": [False] * g.n}
    )
    with pytest.raises(InvalidInputError, match="both forward and backward"):
        chain_checkpointing(fwd_only)
    wrong = RematGraph(
        cost=g.cost, memory=g.memory, preds=g.preds, meta={"backward": [True] + [False] * (g.n - 1)}
    )
    with pytest.raises(InvalidInputError, match="inconsistent"):
        chain_checkpointing(wrong)
    short = RematGraph(cost=g.cost, memory=g.memory, preds=g.preds, meta={"backward": [False]})
    with pytest.raises(InvalidInputError, match="labels"):
        chain_checkpointing(short)
    with pytest.raises(InvalidInputError):
        chain_checkpointing(g, segments=0)
    with pytest.raises(InvalidInputError):
        chain_checkpointing(g, segments=6)
    with pytest.raises(InfeasibleError):
        chain_checkpointing(g, g.min_budget - 1)


# -- published training graphs --------------------------------------------------------------------
@pytest.mark.parametrize("name", ["VGG16_256_224_224_3_train", "VGG19_256_224_224_3_train"])
def test_vgg_training_graphs(name):
    path = DATA / f"{name}.json"
    if not path.exists():
        pytest.skip(f"{path} is not available")
    g = load_graph(path)
    forward = ~np.asarray(g.meta["backward"])
    sol = chain_checkpointing(g)
    peak = plain_peak(g)
    assert sol.status == "feasible"
    assert sol.report.peak_memory < peak
    # the extra cost is at most one forward pass, and most of one
    forward_cost = g.cost[forward].sum()
    extra = sol.report.total_cost - g.total_cost
    assert 0.5 * forward_cost < extra <= forward_cost
    # with a 90% budget the sweep finds a fitting, cheaper-or-equal schedule
    b = int(0.9 * peak)
    fit = chain_checkpointing(g, b)
    assert fit.status == "feasible" and fit.report.peak_memory <= b
