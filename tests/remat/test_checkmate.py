"""Checkmate MILP and LP rounding against two independent brute-force optima.

References, both independent of the MILP:

- ``stage_optimum``: enumerates every *frontier-advancing* schedule (stage ``t`` recomputes any
  subset of the nodes ``< t`` in index order, then computes ``t`` — exactly Checkmate's search
  space), scores each with ``evaluate_schedule`` and keeps the cheapest within the budget. The
  MILP must return that cost (or "infeasible" where there is none) for every budget from
  ``min_budget`` to the plain peak, on seeded random DAGs with ``n <= 5``, for both
  linearisations of FREE.
- ``true_optimum``: Dijkstra over (resident values, nodes computed so far) states, with free
  steps that drop any resident value — the least cost of *any* schedule in the evaluator's
  memory model, whatever the order and however often a node runs. It is a lower bound on the
  MILP; on graphs whose topological order is unique (chain edges ``i -> i+1``) the two agree.

Also: evaluated peak <= budget and evaluated cost == objective; the plain peak as budget gives
zero overhead; budgets below ``min_budget`` raise; LP bound <= MILP optimum <= rounded cost;
seeded randomized rounding is reproducible; the scipy backend agrees with highspy; time limits
on a 250-node graph give a clean status.
"""

from __future__ import annotations

import heapq
import itertools
import math
from pathlib import Path

import numpy as np
import pytest

from frugalml.errors import InfeasibleError, InvalidInputError
from frugalml.remat.checkmate import checkmate_lp_rounding, checkmate_milp
from frugalml.remat.evaluate import evaluate_schedule
from frugalml.remat.formats import load_graph
from frugalml.remat.graph import RematGraph
from frugalml.remat.solution import plain_peak

DATA = Path("/work/shared/data/remat-graphs")
LINEARISATIONS = ("tight", "hazard")


# -- tiny graphs and the brute-force references -------------------------------------------------
def random_dag(seed: int, n: int, p: float = 0.5, chain: bool = False) -> RematGraph:
    """Seeded DAG on ``0..n-1`` (edges only forward), integer costs 1..5 and sizes 1..8.

    ``chain=True`` adds every edge ``i -> i+1`` so the topological order is unique."""
    rng = np.random.default_rng(seed)
    preds = tuple(
        tuple(i for i in range(j) if (chain and i == j - 1) or rng.random() < p) for j in range(n)
    )
    cost = rng.integers(1, 6, size=n).astype(np.float64)
    mem = rng.integers(1, 9, size=n)
    return RematGraph(cost=cost, memory=mem, preds=preds, name=f"dag{seed}")


def stage_optimum(g: RematGraph, budget: int) -> float:
    """Least cost of a frontier-advancing schedule within ``budget`` (inf if none)."""
    best = math.inf
    subsets = [list(itertools.product((False, True), repeat=t)) for t in range(g.n)]
    for choice in itertools.product(*subsets):
        sched = []
        for t, bits in enumerate(choice):
            sched.extend(i for i in range(t) if bits[i])
            sched.append(t)
        try:
            rep = evaluate_schedule(g, sched)
        except InvalidInputError:  # an input was never computed
            continue
        if rep.peak_memory <= budget:
            best = min(best, rep.total_cost)
    return best


def true_optimum(g: RematGraph, budget: int) -> float:
    """Least cost of any schedule within ``budget``: Dijkstra over (resident, done) bitmasks.

    Computing ``v`` needs its inputs resident and ``sum(resident - {v}) + m_v <= budget``;
    dropping a resident value is free. Terminal: every node computed at least once."""
    n = g.n
    need = [sum(1 << i for i in p) for p in g.preds]
    m = [int(x) for x in g.memory]
    full = (1 << n) - 1

    def size(mask: int) -> int:
        return sum(m[i] for i in range(n) if mask >> i & 1)

    dist = {(0, 0): 0.0}
    heap = [(0.0, 0, 0)]
    while heap:
        d, res, done = heapq.heappop(heap)
        if d > dist[(res, done)]:
            continue
        if done == full:
            return d
        moves = [((res & ~(1 << u), done), 0.0) for u in range(n) if res >> u & 1]
        for v in range(n):
            if need[v] & ~res == 0 and size(res & ~(1 << v)) + m[v] <= budget:
                moves.append(((res | 1 << v, done | 1 << v), float(g.cost[v])))
        for state, c in moves:
            if d + c < dist.get(state, math.inf):
                dist[state] = d + c
                heapq.heappush(heap, (d + c, *state))
    return math.inf


def budgets(g: RematGraph) -> range:
    return range(g.min_budget, plain_peak(g) + 1)


def milp_cost(g: RematGraph, budget: int, **kw) -> float:
    sol = checkmate_milp(g, budget, **kw)
    assert sol.status in ("optimal", "infeasible"), sol.summary()
    if sol.status == "infeasible":
        assert sol.schedule is None and sol.report is None
        return math.inf
    check_solution(g, sol)
    return sol.report.total_cost


def check_solution(g: RematGraph, sol) -> None:
    """The schedule fits, its evaluated cost is the objective, the bound is below it."""
    rep = evaluate_schedule(g, sol.schedule)
    assert rep.peak_memory <= sol.budget
    assert rep.peak_memory == sol.report.peak_memory
    assert rep.total_cost == pytest.approx(sol.objective, rel=1e-9)
    if sol.bound is not None:
        assert sol.bound <= sol.objective * (1 + 1e-6) + 1e-9


# -- the MILP against the references ------------------------------------------------------------
@pytest.mark.parametrize("linearisation", LINEARISATIONS)
@pytest.mark.parametrize("seed", range(8))
def test_milp_matches_stage_brute_force(seed, linearisation):
    g = random_dag(seed, 4 + seed % 2)
    for b in budgets(g):
        assert milp_cost(g, b, linearisation=linearisation) == stage_optimum(g, b), (seed, b)


@pytest.mark.parametrize("seed", range(6))
def test_milp_matches_true_optimum_on_chain_ordered_graphs(seed):
    g = random_dag(100 + seed, 4 + seed % 3, p=0.4, chain=True)
    for b in budgets(g):
        assert milp_cost(g, b) == true_optimum(g, b), (seed, b)


@pytest.mark.parametrize("seed", range(6))
def test_true_optimum_bounds_milp_on_general_graphs(seed):
    g = random_dag(200 + seed, 5 + seed % 2)
    for b in budgets(g):
        assert true_optimum(g, b) <= milp_cost(g, b), (seed, b)


def test_infeasible_above_min_budget():
    # diamond 0 -> {1, 2} -> 3 with a big root: computing the second branch needs the root,
    # the first branch's value and the new output resident at once, 12 > min_budget = 11
    g = RematGraph(cost=np.ones(4), memory=np.array([10, 1, 1, 1]), preds=((), (0,), (0,), (1, 2)))
    assert g.min_budget == 11
    assert true_optimum(g, 11) == math.inf and stage_optimum(g, 11) == math.inf
    sol = checkmate_milp(g, 11)
    assert sol.status == "infeasible" and sol.schedule is None
    assert checkmate_milp(g, 12).status == "optimal"


def test_plain_peak_budget_has_zero_overhead():
    for seed in range(5):
        g = random_dag(300 + seed, 8, p=0.3)
        sol = checkmate_milp(g, plain_peak(g))
        assert sol.status == "optimal"
        assert sol.report.total_cost == g.total_cost
        assert sol.report.overhead == 0.0


def test_below_min_budget_raises():
    g = random_dag(1, 5)
    with pytest.raises(InfeasibleError, match="minimum"):
        checkmate_milp(g, g.min_budget - 1)
    with pytest.raises(InfeasibleError):
        checkmate_lp_rounding(g, g.min_budget - 1)


def test_bad_arguments():
    g = random_dag(2, 5)
    b = plain_peak(g)
    with pytest.raises(InvalidInputError):
        checkmate_milp(g, b, time_limit=-1.0)
    with pytest.raises(InvalidInputError):
        checkmate_milp(g, 2.5)
    with pytest.raises(InvalidInputError):
        checkmate_milp(g, b, linearisation="big-m")
    with pytest.raises(InvalidInputError):
        checkmate_milp(g, b, mip_rel_gap=-1)
    with pytest.raises(InvalidInputError):
        checkmate_milp("graph", b)
    with pytest.raises(InvalidInputError):
        checkmate_lp_rounding(g, b, method="median")
    with pytest.raises(InvalidInputError):
        checkmate_lp_rounding(g, b, samples=0)


_HIGHSPY_CHECK = """
import sys
sys.path.insert(0, {tests!r})
from remat.test_checkmate import random_dag
from frugalml.remat import plain_peak
from frugalml.remat.checkmate import checkmate_milp
assert "ortools" not in sys.modules
for seed in range(4):
    g = random_dag(400 + seed, 6)
    for b in (g.min_budget + 2, (g.min_budget + plain_peak(g)) // 2):
        a = checkmate_milp(g, b, backend="highspy")
        s = checkmate_milp(g, b, backend="scipy")
        assert a.status == s.status, (a.status, s.status)
        assert a.info["backend"] == "highspy" and s.info["backend"] == "scipy"
        if a.report is not None:
            assert a.report.total_cost == s.report.total_cost
g = random_dag(7, 12, p=0.3)
b = (g.min_budget + plain_peak(g)) // 2
calls = []
sol = checkmate_milp(g, b, backend="highspy",
                     on_solution=lambda s, c, bd: calls.append((s, c, bd)))  # fmt: skip
assert sol.status == "optimal"
assert calls and abs(calls[-1][1] - sol.objective) <= 1e-9 * abs(sol.objective)
costs = [c for _, c, _ in calls]
assert costs == sorted(costs, reverse=True)
assert [t for t, _ in sol.trace] == sorted(t for t, _ in sol.trace)
assert 0 <= sol.seconds_to_best <= sol.solve_seconds
g = random_dag(8, 6)
b = (g.min_budget + plain_peak(g)) // 2
one = checkmate_milp(g, b, backend="highspy", threads=1).objective
assert one == checkmate_milp(g, b, backend="highspy").objective
print("ok")
"""


def test_highspy_backend_in_a_fresh_process():
    """highspy and OR-Tools cannot share a process (both bundle HiGHS), so the highspy backend
    (incumbent callbacks, threads) is checked against scipy in a child interpreter."""
    import importlib.metadata

    try:  # (the distribution, not an import: importing it here would break OR-Tools)
        importlib.metadata.version("highspy")
    except importlib.metadata.PackageNotFoundError:
        pytest.skip("highspy is not installed")
    import subprocess
    import sys
    from pathlib import Path

    tests = str(Path(__file__).resolve().parents[1])
    out = subprocess.run(
        [sys.executable, "-c", _HIGHSPY_CHECK.format(tests=tests)],
        capture_output=True, text=True, timeout=240,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().endswith("ok")


def test_highspy_refused_after_ortools():
    pytest.importorskip("ortools")
    import ortools.sat.python.cp_model  # noqa: F401

    g = random_dag(8, 6)
    with pytest.raises(InvalidInputError, match="OR-Tools"):
        checkmate_milp(g, plain_peak(g), backend="highspy")


def test_progress_and_trace_scipy():
    g = random_dag(7, 12, p=0.3)
    b = (g.min_budget + plain_peak(g)) // 2
    calls, steps = [], []
    sol = checkmate_milp(g, b, on_solution=lambda s, c, bd: calls.append((s, c, bd)),
                         progress=lambda m, f: steps.append((m, f)))  # fmt: skip
    assert sol.status == "optimal" and sol.info["backend"] == "scipy"
    assert calls and calls[-1][1] == pytest.approx(sol.objective)
    # progress(message, fraction): the final schedule (no time limit: fraction = bound / cost),
    # then the end of the solve
    assert len(steps) == 2 and steps[-1][1] == 1.0
    assert steps[0][0].startswith(f"cost {calls[-1][1]:.4g}, bound ")
    assert steps[0][1] == pytest.approx(min(calls[-1][2] / calls[-1][1], 1.0))
    assert steps[1][0].startswith("checkmate_milp optimal: cost")
    assert 0 <= sol.seconds_to_best <= sol.solve_seconds
    assert sol.info["variables"] > 0 and sol.info["constraints"] > 0


# -- LP rounding ----------------------------------------------------------------------------------
@pytest.mark.parametrize("seed", range(6))
def test_lp_bound_below_milp_below_rounding(seed):
    g = random_dag(500 + seed, 10, p=0.35)
    lo, hi = g.min_budget, plain_peak(g)
    for b in (lo + (hi - lo) // 3, lo + 2 * (hi - lo) // 3, hi):
        milp = checkmate_milp(g, b)
        for method in ("threshold", "randomized"):
            lp = checkmate_lp_rounding(g, b, method=method, rng=seed)
            if milp.status == "infeasible":
                assert lp.schedule is None
                continue
            assert milp.status == "optimal"
            assert lp.bound <= milp.objective * (1 + 1e-6) + 1e-9
            if lp.schedule is not None:
                assert lp.status == "feasible"
                check_solution(g, lp)
                assert lp.report.total_cost >= milp.objective - 1e-9
            else:
                assert lp.status == "unknown" and lp.info["best_peak"] > b


def test_lp_rounding_at_plain_peak_is_exact():
    g = random_dag(9, 10, p=0.35)
    sol = checkmate_lp_rounding(g, plain_peak(g))
    assert sol.status == "feasible" and sol.report.overhead == 0.0


def test_randomized_rounding_is_reproducible():
    g = random_dag(10, 12, p=0.3)
    b = (g.min_budget + plain_peak(g)) // 2
    a = checkmate_lp_rounding(g, b, method="randomized", samples=30, rng=123)
    c = checkmate_lp_rounding(g, b, method="randomized", samples=30, rng=np.random.default_rng(123))
    assert a.status == c.status
    assert (a.schedule is None) == (c.schedule is None)
    if a.schedule is not None:
        np.testing.assert_array_equal(a.schedule, c.schedule)
    assert a.info["best_peak"] == c.info["best_peak"]


# -- published graphs -----------------------------------------------------------------------
def _graph(name: str) -> RematGraph:
    path = DATA / name
    if not path.exists():
        pytest.skip(f"{path} is not available")
    return load_graph(path)


def test_vgg16_train_at_90_percent():
    g = _graph("VGG16_256_224_224_3_train.json")
    b = int(0.9 * plain_peak(g))
    milp = checkmate_milp(g, b, time_limit=60)
    assert milp.status == "optimal"
    check_solution(g, milp)
    lp = checkmate_lp_rounding(g, b)
    assert lp.bound <= milp.objective * (1 + 1e-6)
    if lp.schedule is not None:
        assert lp.report.total_cost >= milp.objective - 1e-6


def test_time_limit_on_250_nodes():
    g = _graph("random_layered_n250_w0.43_nlv0.75_ed0.2_scd0.14.json")
    b = int(0.8 * plain_peak(g))
    sol = checkmate_milp(g, b, time_limit=5.0)
    assert sol.status in ("feasible", "timeout", "optimal")
    assert sol.solve_seconds < 60
    if sol.schedule is None:
        assert sol.status == "timeout" and sol.report is None
    else:
        assert sol.report.peak_memory <= b
    assert sol.info["r_vars"] == 250 * 251 // 2
