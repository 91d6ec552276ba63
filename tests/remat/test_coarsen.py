"""Chain coarsening: the coarse model is conservative, checked with the common evaluator.

For random DAGs (hypothesis) and random layered graphs, every coarse schedule we draw (random
valid sequences with recomputations, not only stage-form ones, and greedy schedules at several
budgets) is expanded to the fine graph: the expansion must be a valid fine schedule
(``evaluate_schedule`` raises otherwise), cost exactly as much as the coarse schedule, and peak
no higher than the coarse evaluation of the coarse schedule. The structure is checked against
the definition (runs of consecutive nodes each reading the one before, at most ``max_chain``),
and ``refine`` against a brute-force optimum of MOCCASIN's search space on tiny graphs.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from frugalml.errors import InvalidInputError
from frugalml.remat.coarsen import Coarsening, coarsen_chains, refine
from frugalml.remat.evaluate import evaluate_schedule
from frugalml.remat.generate import random_layered_graph
from frugalml.remat.graph import RematGraph
from frugalml.remat.greedy import best_greedy_schedule
from frugalml.remat.solution import plain_peak


def random_dag(seed: int, n: int, p: float, chainy: float = 0.6) -> RematGraph:
    """A DAG where node j reads j - 1 with probability ``chainy`` (so chains exist) and each
    earlier node with probability ``p``; sizes 1..19, costs 1..5."""
    rng = np.random.default_rng(seed)
    preds = []
    for j in range(n):
        ps = {i for i in range(j) if rng.random() < p}
        if j and rng.random() < chainy:
            ps.add(j - 1)
        if j and not ps:
            ps = {int(rng.integers(j))}
        preds.append(tuple(sorted(ps)))
    return RematGraph(
        cost=rng.integers(1, 6, n).astype(np.float64),
        memory=rng.integers(1, 20, n),
        preds=tuple(preds),
        name=f"dag{seed}",
    )


def random_schedule(g: RematGraph, rng: np.random.Generator, extra: int) -> list[int]:
    """A random valid schedule: a random topological order, then ``extra`` recomputations,
    each inserted at a random step after the node's first computation."""
    indeg = [len(p) for p in g.preds]
    ready = [v for v in range(g.n) if indeg[v] == 0]
    order: list[int] = []
    while ready:
        v = ready.pop(int(rng.integers(len(ready))))
        order.append(v)
        for w in g.succs[v]:
            indeg[w] -= 1
            if indeg[w] == 0:
                ready.append(w)
    sched = list(order)
    for _ in range(extra):
        v = int(rng.integers(g.n))
        first = sched.index(v)
        pos = int(rng.integers(first + 1, len(sched) + 1))
        sched.insert(pos, v)
    return sched


def check_conservative(c: Coarsening, coarse_sched) -> None:
    fine = c.expand(coarse_sched)
    rep_f = evaluate_schedule(c.fine, fine)  # raises if the expansion is invalid
    rep_c = evaluate_schedule(c.graph, coarse_sched)
    assert rep_f.peak_memory <= rep_c.peak_memory
    assert rep_f.total_cost == pytest.approx(rep_c.total_cost, rel=1e-12)
    assert np.bincount(fine, minlength=c.fine.n).min() >= 1


def check_structure(g: RematGraph, c: Coarsening, max_chain: int) -> None:
    chains = [m for m in c.members if m]
    assert sorted(x for m in chains for x in m) == list(range(g.n))  # a partition
    for m in chains:
        assert len(m) <= max_chain
        assert list(m) == list(range(m[0], m[0] + len(m)))  # consecutive
        assert all(k - 1 in g.preds[k] for k in m[1:])  # each reads the one before
    transient = [i for i, m in enumerate(c.members) if not m]
    assert all(c.graph.cost[i] == 0 and c.graph.memory[i] > 0 for i in transient)
    assert c.graph.total_cost == pytest.approx(g.total_cost)
    # the coarse edges are exactly the fine edges between chains (plus transient -> chain)
    owner = {x: i for i, m in enumerate(c.members) for x in m}
    want = {(owner[u], owner[v]) for u, v in g.edges if owner[u] != owner[v]}
    got = {(a, b) for a, b in c.graph.edges if c.members[a] and c.members[b]}
    assert got == want


@settings(max_examples=60, deadline=None)
@given(
    seed=st.integers(0, 10_000),
    n=st.integers(2, 14),
    p=st.sampled_from([0.1, 0.25, 0.5]),
    max_chain=st.integers(1, 5),
)
def test_expanded_coarse_schedules_are_valid_and_no_higher(seed, n, p, max_chain):
    g = random_dag(seed, n, p)
    c = coarsen_chains(g, max_chain=max_chain)
    check_structure(g, c, max_chain)
    rng = np.random.default_rng(seed)
    check_conservative(c, np.arange(c.graph.n))
    for extra in (0, 1, 3, 8):
        check_conservative(c, random_schedule(c.graph, rng, extra))


def test_layered_graphs_and_greedy_schedules():
    checked = 0
    for seed in range(6):
        g = random_layered_graph(40 + 10 * seed, rng=seed)
        # a chainy variant: the layered graph with every node also reading its predecessor
        chainy = RematGraph(
            cost=g.cost, memory=g.memory,
            preds=tuple(tuple(sorted({*p, j - 1})) if j else p for j, p in enumerate(g.preds)),
        )  # fmt: skip
        for graph in (g, chainy):
            for max_chain in (2, 4, 8):
                c = coarsen_chains(graph, max_chain=max_chain)
                check_structure(graph, c, max_chain)
                plain = plain_peak(c.graph)
                for b in np.linspace(c.graph.min_budget, plain, 5).astype(int):
                    s = best_greedy_schedule(c.graph, int(b))
                    if s is not None:
                        check_conservative(c, s)
                        checked += 1
                rng = np.random.default_rng(seed)
                check_conservative(c, random_schedule(c.graph, rng, 10))
    assert checked > 50


def test_chains_are_contracted_and_one_is_the_identity():
    g = random_dag(3, 30, 0.05, chainy=0.9)
    c = coarsen_chains(g, max_chain=4)
    assert c.graph.n < g.n and c.ratio > 1.0
    one = coarsen_chains(g, max_chain=1)
    assert one.graph.n == g.n
    assert np.array_equal(one.graph.memory, g.memory)
    assert np.array_equal(one.graph.cost, g.cost) and one.graph.preds == g.preds
    # the plain coarse order is the plain fine order
    assert c.expand(np.arange(c.graph.n)).tolist() == list(range(g.n))


def test_transient_node_carries_the_working_memory():
    # 0 -> 1 -> 2 (a chain), 2 read by 3 which starts a new chain (its spread exceeds 0)
    g = RematGraph(cost=np.ones(4), memory=np.array([5, 7, 2, 1]),
                   preds=((), (0,), (1,), (2,)))  # fmt: skip
    c = coarsen_chains(g, max_chain=3)
    assert [m for m in c.members if m] == [(0, 1, 2), (3,)]
    # W = max(5, 5 + 7, 7 + 2) = 12, exported {2}: E = 2, transient 10
    i_chain = c.members.index((0, 1, 2))
    i_trans = c.members.index(())
    assert c.graph.memory[i_chain] == 2 and c.graph.memory[i_trans] == 10
    assert i_trans in c.graph.preds[i_chain]
    assert evaluate_schedule(c.graph, np.arange(c.graph.n)).peak_memory == 12
    assert evaluate_schedule(g, np.arange(4)).peak_memory == 12


def test_bad_inputs():
    g = random_dag(1, 6, 0.3)
    with pytest.raises(InvalidInputError, match="max_chain"):
        coarsen_chains(g, max_chain=0)
    with pytest.raises(InvalidInputError, match="RematGraph"):
        coarsen_chains("graph")
    c = coarsen_chains(g, max_chain=3)
    with pytest.raises(InvalidInputError):
        c.expand([c.graph.n - 1])  # inputs never computed
    with pytest.raises(InvalidInputError, match="Coarsening"):
        refine(g, [0], 10)


# -- refine against a brute force of MOCCASIN's search space -----------------------------------
def stage_form_optimum(g: RematGraph, budget: int, copies: int = 2) -> float | None:
    options = [
        [s for k in range(copies) for s in itertools.combinations(range(j + 1, g.n), k)]
        for j in range(g.n)
    ]
    best = None
    for choice in itertools.product(*options):
        sched = []
        for t in range(g.n):
            sched.extend(j for j in range(t) if t in choice[j])
            sched.append(t)
        rep = evaluate_schedule(g, sched)
        if rep.peak_memory <= budget and (best is None or rep.total_cost < best):
            best = rep.total_cost
    return best


def test_refine_reaches_the_fine_optimum():
    pytest.importorskip("ortools.sat.python.cp_model")
    checked = 0
    for seed in range(8):
        g = random_dag(seed, 7, 0.3, chainy=0.7)
        c = coarsen_chains(g, max_chain=3)
        if c.graph.n == g.n:
            continue
        for b in sorted({c.graph.min_budget, plain_peak(c.graph) - 1}):
            cs = best_greedy_schedule(c.graph, b)
            if cs is None or b < g.min_budget:
                continue
            sol = refine(c, cs, b, time_limit=20, threads=1)
            rep = evaluate_schedule(g, sol.schedule)
            assert rep.peak_memory <= b
            assert rep.total_cost <= sol.info["coarse_cost"] + 1e-9
            assert sol.info["coarse_cost"] == evaluate_schedule(c.graph, cs).total_cost
            assert sol.status == "optimal"
            assert rep.total_cost == pytest.approx(stage_form_optimum(g, b))
            checked += 1
    assert checked >= 4
