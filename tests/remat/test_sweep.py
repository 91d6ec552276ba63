"""budget_sweep: monotone costs, every schedule checked by the evaluator, brute-force optima.

On tiny random DAGs (n <= 7) the sweep is compared with a brute force over MOCCASIN's search
space (stage-form schedules, at most two computations per node, scored by
``evaluate_schedule``) at every budget between the least feasible one and the plain peak: a
budget with no schedule in the brute force gets none, every other gets a schedule that fits,
costs at least the brute optimum, and exactly it where the status says "optimal". On larger
layered graphs (where the sweep runs out of time) the costs must be non-increasing in the
budget, also through the coarsening path. ``min_feasible_budget`` is checked against its
definition and ``lowest_schedulable_budget`` against the brute force.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from frugalml.errors import InvalidInputError
from frugalml.remat.evaluate import evaluate_schedule
from frugalml.remat.generate import random_layered_graph
from frugalml.remat.graph import RematGraph
from frugalml.remat.greedy import best_greedy_schedule
from frugalml.remat.solution import plain_peak

pytest.importorskip("ortools.sat.python.cp_model")

from frugalml.remat.sweep import budget_sweep, lowest_schedulable_budget, min_feasible_budget


def random_dag(seed: int, n: int, p: float) -> RematGraph:
    rng = np.random.default_rng(seed)
    preds = []
    for j in range(n):
        ps = {i for i in range(j) if rng.random() < p}
        if j and not ps:
            ps = {int(rng.integers(j))}
        preds.append(tuple(sorted(ps)))
    return RematGraph(cost=rng.integers(1, 6, n).astype(np.float64),
                      memory=rng.integers(1, 20, n), preds=tuple(preds))  # fmt: skip


def brute(g: RematGraph, copies: int = 2) -> list[tuple[int, float]]:
    """(peak, cost) of every stage-form schedule."""
    options = [
        [s for k in range(copies) for s in itertools.combinations(range(j + 1, g.n), k)]
        for j in range(g.n)
    ]
    out = []
    for choice in itertools.product(*options):
        sched = []
        for t in range(g.n):
            sched.extend(j for j in range(t) if t in choice[j])
            sched.append(t)
        rep = evaluate_schedule(g, sched)
        out.append((rep.peak_memory, rep.total_cost))
    return out


def check_monotone(g: RematGraph, budgets_bytes: list[int], sols) -> None:
    pairs = sorted((s.budget, s.report.total_cost) for s in sols if s.report is not None)
    for (b1, c1), (b2, c2) in itertools.pairwise(pairs):
        assert c2 <= c1 + 1e-9, (b1, c1, b2, c2)
    for s in sols:
        if s.schedule is not None:
            rep = evaluate_schedule(g, s.schedule)
            assert rep.peak_memory <= s.budget
            assert rep.total_cost == s.report.total_cost == pytest.approx(s.objective)


def test_sweep_matches_the_brute_force_on_tiny_graphs():
    for seed in range(4):
        g = random_dag(seed, 6, 0.4)
        scored = brute(g)
        plain = plain_peak(g)
        budgets = list(range(g.min_budget, plain + 1))
        sols = budget_sweep(g, budgets, time_limit=20, threads=1)
        assert [s.budget for s in sols] == budgets
        check_monotone(g, budgets, sols)
        for b, s in zip(budgets, sols, strict=True):
            best = min((c for p, c in scored if p <= b), default=None)
            if best is None:
                assert s.schedule is None and s.status == "infeasible", s.summary()
                continue
            assert s.report.total_cost >= best - 1e-9
            if s.status == "optimal":
                assert s.report.total_cost == pytest.approx(best)
        # with 20 s for a handful of 6-node models, every budget is proven
        assert all(s.status in ("optimal", "infeasible") for s in sols)


def chainy(g: RematGraph) -> RematGraph:
    """``g`` with every node also reading its predecessor (chains, as in network graphs)."""
    return RematGraph(cost=g.cost, memory=g.memory,
                      preds=tuple(tuple(sorted({*p, j - 1})) if j else p
                                  for j, p in enumerate(g.preds)))  # fmt: skip


def test_sweep_is_monotone_when_time_runs_out():
    g = chainy(random_layered_graph(120, rng=3))
    budgets = [1.0, 0.97, 0.95, 0.9, 0.8, "min"]
    sols = budget_sweep(g, budgets, time_limit=4, threads=1)
    assert len(sols) == len(budgets)
    assert sols[0].status == "optimal" and sols[0].report.overhead == 0.0
    assert sols[-1].budget == min_feasible_budget(g)
    check_monotone(g, [s.budget for s in sols], sols)
    # never worse than the greedy heuristics at the same budget (they seed the sweep)
    found = 0
    for s in sols[1:-1]:
        greedy = best_greedy_schedule(g, s.budget)
        if greedy is not None:
            found += 1
            assert s.report.total_cost <= evaluate_schedule(g, greedy).total_cost + 1e-9
    assert found >= 1


def test_coarsened_path_is_monotone_and_valid():
    g = chainy(random_layered_graph(80, rng=7))  # chains, so the coarsening contracts some
    budgets = [0.95, 0.85, 0.75, 0.65]
    sols = budget_sweep(g, budgets, time_limit=4, threads=1, coarsen_above=0, max_chain=4)
    assert any(s.schedule is not None for s in sols)
    assert all(s.info.get("coarse_nodes") for s in sols if s.schedule is not None)
    check_monotone(g, [s.budget for s in sols], sols)


def test_hints_are_shared_across_budgets():
    g = random_dag(11, 7, 0.4)
    scored = brute(g)
    least = min(p for p, _ in scored)
    # a hint: the plain order plus nothing else is no help; give the sweep a schedule at the
    # least peak and check every budget above is at most its cost
    from frugalml.remat.moccasin import moccasin

    hint = moccasin(g, least, time_limit=20, threads=1).schedule
    cost = evaluate_schedule(g, hint).total_cost
    sols = budget_sweep(g, [least, least + 3, plain_peak(g) - 1], time_limit=5, threads=1,
                        hints=[hint])  # fmt: skip
    assert all(s.report.total_cost <= cost + 1e-9 for s in sols)
    with pytest.raises(InvalidInputError, match="hint 1"):
        budget_sweep(g, [1.0], hints=[hint, [g.n - 1]])


def test_min_feasible_and_lowest_schedulable_budgets():
    for seed in range(5):
        g = random_dag(100 + seed, 6, 0.5)
        want = max(int(g.memory[i]) + sum(int(g.memory[j]) for j in g.preds[i])
                   for i in range(g.n))  # fmt: skip
        assert min_feasible_budget(g) == want
        b, sched = lowest_schedulable_budget(g)
        rep = evaluate_schedule(g, sched)
        assert rep.peak_memory <= b and want <= b <= plain_peak(g)
        assert np.bincount(sched, minlength=g.n).max() <= 2
        least = min(p for p, _ in brute(g))  # the least peak of any 2-copy stage-form schedule
        assert b >= least


def test_bad_inputs():
    g = random_dag(1, 5, 0.4)
    for bad in ([], "min", None):
        with pytest.raises(InvalidInputError, match="budgets"):
            budget_sweep(g, bad)
    with pytest.raises(InvalidInputError, match="'max'"):
        budget_sweep(g, ["max"])
    with pytest.raises(InvalidInputError, match="time_limit"):
        budget_sweep(g, [1.0], time_limit=0)
    with pytest.raises(InvalidInputError, match="RematGraph"):
        budget_sweep("g", [1.0])
    sols = budget_sweep(g, [g.min_budget - 1, 1.0], time_limit=2, threads=1)
    assert sols[0].status == "infeasible" and sols[0].schedule is None
    assert sols[0].budget == g.min_budget - 1 and "least feasible" in sols[0].info["reason"]
