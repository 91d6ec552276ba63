"""The schedule evaluator against an independent brute-force simulation, and budget resolution.

The reference (``simulate``) works on the caller's node labels and raw edge list, not on the
graph's internal indices, and keeps explicit sets: before step ``t`` it knows which nodes have
a current copy; the live set at step ``t`` is every node whose current copy is read at some step
``t' >= t`` before that node is computed again, plus the output being computed at ``t``. The
memory of step ``t`` is the sum of the sizes of that set, the peak its maximum over steps. A
hypothesis property test draws random small DAGs (labels shuffled, so the graph relabels them)
and random valid schedules with recomputations and compares peak, profile, cost and counts.

Also: invalid schedules raise ``InvalidInputError`` naming the problem; the plain topological
schedule has overhead 0; a chain ``a -> b -> c`` has profile ``[m_a, m_a + m_b, m_b + m_c]``;
``resolve_budget`` treats ``(0, 1]`` as a fraction of the plain peak and larger values as bytes
and its ``InfeasibleError`` states the minimum.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from frugalml.errors import InfeasibleError, InvalidInputError
from frugalml.remat.evaluate import evaluate_schedule, topological_schedule
from frugalml.remat.graph import RematGraph
from frugalml.remat.solution import check_budget, plain_peak, resolve_budget


# -- the brute-force reference ---------------------------------------------------------------------
def simulate(labels, edges, memory, cost, schedule):
    """``(profile, total_cost)`` of a schedule of labels, by explicit live sets.

    ``memory`` and ``cost`` are dicts keyed by label, ``edges`` ``(source, target)`` labels.
    Raises ``ValueError`` for an invalid schedule.
    """
    inputs = {v: {s for s, t in edges if t == v} for v in labels}
    has_copy: set = set()  # nodes with a current copy before the step
    profile = []
    for t, v in enumerate(schedule):
        if v not in inputs:
            raise ValueError(f"unknown node {v!r}")
        if not inputs[v] <= has_copy:
            raise ValueError(f"step {t}: an input of {v!r} was never computed")
        live = set()
        for u in has_copy:
            for t2 in range(t, len(schedule)):
                w = schedule[t2]
                if u in inputs[w]:  # the current copy of u is read at t2 >= t
                    live.add(u)
                    break
                if w == u:  # recomputed first: the current copy is dead
                    break
        profile.append(memory[v] + sum(memory[u] for u in live - {v}))
        has_copy.add(v)
    if has_copy != set(labels):
        raise ValueError("some node never runs")
    return profile, float(sum(cost[v] for v in schedule))


def ref_report(g: RematGraph, schedule):
    """The reference applied to a graph's schedule of internal indices (via its ids)."""
    labels = list(g.ids)
    edges = [(g.ids[i], g.ids[j]) for i, j in g.edges]
    mem = {g.ids[i]: int(g.memory[i]) for i in range(g.n)}
    cost = {g.ids[i]: float(g.cost[i]) for i in range(g.n)}
    return simulate(labels, edges, mem, cost, [g.ids[int(v)] for v in schedule])


# -- hypothesis strategies -------------------------------------------------------------------------
@st.composite
def raw_dags(draw, max_n: int = 8):
    """Labels, edges (between labels), memory, cost and a topological order of the labels."""
    n = draw(st.integers(1, max_n))
    order = [f"v{k}" for k in draw(st.permutations(range(n)))]  # a topological order
    edges = []
    for j in range(1, n):
        for i in draw(st.sets(st.integers(0, j - 1), max_size=3)):
            edges.append((order[i], order[j]))
    listing = draw(st.permutations(order))  # the order the caller lists nodes in
    memory = {v: draw(st.integers(0, 50)) for v in listing}
    cost = {v: draw(st.integers(0, 20)) for v in listing}
    return listing, edges, memory, cost, order


def build(listing, edges, memory, cost) -> RematGraph:
    return RematGraph.from_edges([cost[v] for v in listing], [memory[v] for v in listing],
                                 edges, ids=listing)  # fmt: skip


@st.composite
def dag_and_schedule(draw):
    listing, edges, memory, cost, order = draw(raw_dags())
    inputs = {v: {s for s, t in edges if t == v} for v in listing}
    if draw(st.booleans()):
        # the topological order with recomputations inserted where their inputs exist
        sched = list(order)
        for _ in range(draw(st.integers(0, 8))):
            p = draw(st.integers(0, len(sched)))
            ready = sorted(v for v in listing if inputs[v] <= set(sched[:p]))
            if ready:
                sched.insert(p, draw(st.sampled_from(ready)))
    else:
        # a free walk: any node whose inputs have run, until all ran and the length is reached
        length = draw(st.integers(len(listing), 3 * len(listing)))
        sched = []
        while len(sched) < length or set(sched) != set(listing):
            done = set(sched)
            ready = sorted(v for v in listing if inputs[v] <= done)
            missing = [v for v in ready if v not in done]
            if len(sched) >= length:
                ready = missing  # finish the nodes that never ran
            sched.append(draw(st.sampled_from(ready)))
    return listing, edges, memory, cost, sched


@settings(max_examples=300, deadline=None, derandomize=True)
@given(dag_and_schedule())
def test_evaluator_matches_brute_force(case):
    listing, edges, memory, cost, sched = case
    g = build(listing, edges, memory, cost)
    pos = {v: i for i, v in enumerate(g.ids)}
    schedule = [pos[v] for v in sched]
    profile, total = simulate(listing, edges, memory, cost, sched)
    rep = evaluate_schedule(g, schedule)
    assert rep.profile.tolist() == profile
    assert rep.peak_memory == max(profile)
    assert rep.total_cost == total
    assert rep.baseline_cost == float(sum(cost.values()))
    assert rep.computations == len(sched)
    assert rep.recomputations == len(sched) - len(listing)
    base = sum(cost.values())
    assert rep.overhead == (pytest.approx(total / base - 1.0) if base else 0.0)
    assert rep.within(max(profile)) and not rep.within(max(profile) - 1)
    # the same schedule as a numpy array of another integer dtype
    assert evaluate_schedule(g, np.asarray(schedule, dtype=np.int32)).peak_memory == max(profile)


@settings(max_examples=150, deadline=None, derandomize=True)
@given(raw_dags())
def test_plain_order_matches_brute_force_and_has_no_overhead(dag):
    listing, edges, memory, cost, order = dag
    g = build(listing, edges, memory, cost)
    topo = topological_schedule(g)
    assert topo.tolist() == list(range(g.n))
    profile, total = simulate(listing, edges, memory, cost, list(g.ids))
    rep = evaluate_schedule(g, topo)
    assert rep.profile.tolist() == profile and rep.peak_memory == max(profile)
    assert rep.overhead == 0.0 and rep.recomputations == 0 and rep.total_cost == total
    assert plain_peak(g) == max(profile)
    # the peak does not depend on which topological order: the caller's own order agrees
    pos = {v: i for i, v in enumerate(g.ids)}
    prof2, _ = simulate(listing, edges, memory, cost, order)
    assert evaluate_schedule(g, [pos[v] for v in order]).profile.tolist() == prof2
    # computing a node needs its inputs and its output resident: min_budget <= plain peak
    assert g.min_budget <= plain_peak(g)


# -- hand examples ---------------------------------------------------------------------------------
def chain(ma=3, mb=5, mc=7, costs=(1.0, 2.0, 4.0)) -> RematGraph:
    return RematGraph.from_edges(list(costs), [ma, mb, mc], [("a", "b"), ("b", "c")],
                                 ids=["a", "b", "c"])  # fmt: skip


@pytest.mark.parametrize(("ma", "mb", "mc"), [(3, 5, 7), (10, 1, 1), (0, 0, 4), (6, 0, 2)])
def test_chain_profile(ma, mb, mc):
    g = chain(ma, mb, mc)
    rep = evaluate_schedule(g, [0, 1, 2])
    assert rep.profile.tolist() == [ma, ma + mb, mb + mc]
    assert rep.peak_memory == max(ma, ma + mb, mb + mc)
    assert rep.total_cost == 7.0 and rep.overhead == 0.0
    assert g.min_budget == max(ma, ma + mb, mb + mc)


def test_hand_schedule_with_a_recomputation():
    # a(10) -> b(1) -> c(1) -> d(1), a -> d: recomputing a before d frees it during c
    g = RematGraph.from_edges([5, 1, 1, 1], [10, 1, 1, 1],
                              [("a", "b"), ("b", "c"), ("c", "d"), ("a", "d")],
                              ids=list("abcd"))  # fmt: skip
    plain = evaluate_schedule(g, [0, 1, 2, 3])
    assert plain.profile.tolist() == [10, 11, 12, 12]
    rep = evaluate_schedule(g, [0, 1, 2, 0, 3])
    # b + c at step 2 (a's first copy is dead: d reads the recomputed one)
    assert rep.profile.tolist() == [10, 11, 2, 11, 12]
    assert rep.total_cost == 13.0 and rep.recomputations == 1
    assert rep.overhead == pytest.approx(13 / 8 - 1)
    # recomputing b at once: its first copy is never read again, so it is freed before
    rep = evaluate_schedule(g, [0, 1, 1, 2, 3])
    assert rep.profile.tolist() == [10, 11, 11, 12, 12]
    # recomputing the leaf d re-reads a and c, which stay resident until then
    rep = evaluate_schedule(g, [0, 1, 2, 3, 3])
    assert rep.profile.tolist() == [10, 11, 12, 12, 12]
    # computing b a second time after c: the copy read by c is dead, b is never read again
    rep = evaluate_schedule(g, [0, 1, 2, 1, 3])
    assert rep.profile.tolist() == [10, 11, 12, 12, 12]


def test_summary_and_report_fields():
    g = chain()
    rep = evaluate_schedule(g, [0, 1, 0, 2])
    assert rep.baseline_cost == 7.0 and rep.total_cost == 8.0
    assert "recomputations" in rep.summary() and "peak 12" in rep.summary()


# -- invalid schedules -----------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("schedule", "pattern"),
    [
        ([0, 2, 1, 2], "step 1 runs node 2 .* input 1 .* not been computed"),
        ([1, 0, 1, 2], "step 0 runs node 1 .* input 0"),
        ([0, 1], "node 2 .* never computed"),
        ([0, 1, 3], "step 2 runs node 3, not in 0..2"),
        ([-1, 0, 1, 2], "step 0 runs node -1"),
        ([0, 1, 2, 99], "step 3 runs node 99"),
        ([0.0, 0.5, 2.0], "integer node ids"),
        ([0.0, 1.0, float("nan")], "integer node ids"),
        ([], "non-empty"),
        ([[0, 1, 2]], "1-D"),
        ([True, True, True], "integer node ids"),
        (["0", "1", "2"], "integer node ids"),
    ],
)
def test_invalid_schedules_raise(schedule, pattern):
    g = chain()
    with pytest.raises(InvalidInputError, match=pattern):
        evaluate_schedule(g, np.asarray(schedule) if schedule else schedule)


@pytest.mark.filterwarnings("ignore:invalid value encountered in cast:RuntimeWarning")
def test_infinite_schedule_entry_raises():
    with pytest.raises(InvalidInputError, match="step 3 runs node"):
        evaluate_schedule(chain(), np.array([0, 1, 2, np.inf]))


def test_integral_float_schedule_is_accepted_like_ints():
    # the package accepts integral floats as ids (as its check_int does); non-integral fail above
    g = chain()
    assert evaluate_schedule(g, [0.0, 1.0, 2.0]).profile.tolist() == [3, 8, 12]


# -- budgets ---------------------------------------------------------------------------------------
def spread_graph() -> RematGraph:
    """Four 25-byte sources each read by a zero-size sink later: plain peak 100, minimum 25."""
    ids = ["s1", "s2", "s3", "s4", "c1", "c2", "c3", "c4"]
    edges = [("s1", "c1"), ("s2", "c2"), ("s3", "c3"), ("s4", "c4")]
    return RematGraph.from_edges([1.0] * 8, [25] * 4 + [0] * 4, edges, ids=ids, order=ids)


def test_spread_graph_reference_numbers():
    g = spread_graph()
    profile, _ = ref_report(g, range(8))
    assert profile == [25, 50, 75, 100, 100, 75, 50, 25]
    assert plain_peak(g) == 100 and g.min_budget == 25


def test_resolve_budget_fraction_and_bytes():
    g = spread_graph()
    assert resolve_budget(g, 1.0) == 100
    assert resolve_budget(g, 1) == 100  # 1 is the fraction 1, not one byte
    assert resolve_budget(g, 0.5) == 50
    assert resolve_budget(g, 0.25) == 25
    assert resolve_budget(g, 0.333) == 33  # rounded down: a budget is never exceeded
    assert resolve_budget(g, 40) == 40  # > 1: bytes
    assert resolve_budget(g, 40.9) == 40
    assert resolve_budget(g, 1000) == 1000  # above the plain peak is allowed
    assert resolve_budget(g, np.int64(60)) == 60 and resolve_budget(g, np.float64(0.5)) == 50
    assert check_budget(g, 25) == 25


def test_resolve_budget_fraction_is_not_lost_to_rounding():
    g = spread_graph()
    assert [resolve_budget(g, k / 100) for k in (29, 57, 58)] == [29, 57, 58]


def test_resolve_budget_infeasible_states_the_minimum():
    g = spread_graph()
    for budget in (0.2, 24, 2, 1.5):
        with pytest.raises(InfeasibleError, match="infeasible") as exc:
            resolve_budget(g, budget)
        msg = str(exc.value)
        assert "the minimum is 25" in msg and "plain peak 100" in msg
        assert str(math.floor(budget * 100 if budget <= 1 else budget)) in msg
    with pytest.raises(InfeasibleError, match="minimum is 25"):
        check_budget(g, 24)
    big = RematGraph.from_edges([1.0, 1.0], [7, 9], [(0, 1)], name="pair")
    with pytest.raises(InfeasibleError, match="pair: the minimum is 16"):
        resolve_budget(big, 15)


@pytest.mark.parametrize("budget", [0, 0.0, -1, -0.5, float("nan"), float("inf"), True, False,
                                    "0.5", None, [0.5]])  # fmt: skip
def test_resolve_budget_rejects_non_budgets(budget):
    with pytest.raises(InvalidInputError, match="budget"):
        resolve_budget(spread_graph(), budget)
