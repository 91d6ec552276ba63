"""MOCCASIN (CP-SAT) against a brute-force optimum, the greedy heuristic, and ``solve``.

The brute force enumerates every schedule of MOCCASIN's search space in "stage form": stage
``t`` recomputes any subset of the nodes ``j < t`` in increasing index order, then computes
``t``; each node runs at most ``C`` times. Each schedule is scored with ``evaluate_schedule``
(itself checked against an independent simulation in test_evaluate.py); the optimum at a
budget is the least total cost among schedules whose peak fits. On seeded random DAGs with
``n <= 7`` nodes and small integer costs and sizes, for several budgets between the least
feasible peak and the plain peak and for each precedence encoding ("reservoir", "boolean",
"both"), with and without the greedy warm start, MOCCASIN must return status "optimal" with
exactly that cost, a schedule within the budget whose evaluated cost equals ``objective``, and
"infeasible" where the brute force finds nothing.

Also: the plain peak as budget gives overhead 0; ``copies=1`` below the plain peak is
infeasible; ``copies=3`` matches a C = 3 brute force; the greedy schedule, when there is one,
fits the budget and runs no node more than ``C`` times; progress callbacks see increasing times
and decreasing costs; ``solve`` dispatches; bad arguments are rejected; and the published
VGG16 training graph at 0.9 is solved to optimality.
"""

from __future__ import annotations

import itertools
import json
from functools import cache
from pathlib import Path

import numpy as np
import pytest

from frugalml.errors import InfeasibleError, InvalidInputError
from frugalml.remat import api
from frugalml.remat.evaluate import evaluate_schedule
from frugalml.remat.formats import load_graph
from frugalml.remat.generate import random_layered_graph
from frugalml.remat.graph import RematGraph
from frugalml.remat.greedy import greedy, greedy_schedule
from frugalml.remat.solution import plain_peak

pytest.importorskip("ortools.sat.python.cp_model")

from frugalml.remat.moccasin import MoccasinSolver, moccasin

DATA = Path("/work/shared/data/remat-graphs")
TIME_LIMIT = 20.0
MODES = ("reservoir", "boolean", "both")


# -- the brute force -------------------------------------------------------------------------------
def stage_form_schedules(n: int, copies: int):
    """Every stage-form schedule: node ``j`` is recomputed in a set of at most ``copies - 1``
    of the stages ``j + 1 .. n - 1``."""
    options = [
        [s for k in range(copies) for s in itertools.combinations(range(j + 1, n), k)]
        for j in range(n)
    ]
    for choice in itertools.product(*options):
        sched = []
        for t in range(n):
            sched.extend(j for j in range(t) if t in choice[j])
            sched.append(t)
        yield sched


def scored_schedules(g: RematGraph, copies: int) -> list[tuple[int, float, list[int]]]:
    out = []
    for s in stage_form_schedules(g.n, copies):
        rep = evaluate_schedule(g, s)
        out.append((rep.peak_memory, rep.total_cost, s))
    return out


def brute_optimum(scored: list, budget: int) -> float | None:
    return min((c for p, c, _ in scored if p <= budget), default=None)


def ref_plain_peak(g: RematGraph) -> int:
    """Plain-order peak from the definition: live = read at this step or later, plus output."""
    peak = 0
    for t in range(g.n):
        live = {u for u in range(t) if any(k >= t for k in g.succs[u])}
        peak = max(peak, int(g.memory[t]) + sum(int(g.memory[u]) for u in live))
    return peak


# -- the test graphs -------------------------------------------------------------------------------
def random_dag(seed: int, n: int, p: float, mem_hi: int = 10, cost_hi: int = 6) -> RematGraph:
    rng = np.random.default_rng(seed)
    preds = []
    for j in range(n):
        ps = {i for i in range(j) if rng.random() < p}
        if j and not ps:
            ps = {int(rng.integers(j))}
        preds.append(tuple(sorted(ps)))
    cost = rng.integers(1, cost_hi, n).astype(np.float64)
    memory = rng.integers(1, mem_hi, n)
    return RematGraph(cost=cost, memory=memory, preds=tuple(preds), name=f"dag{seed}")


# seed 12 of random_dag(n=6, p=0.5, memory 1..19): with at most two computations per node no
# schedule reaches min_budget = 37; the least peak is 39 (the brute force below checks it)
GAP_GRAPH = RematGraph(
    cost=np.ones(6),
    memory=np.array([19, 18, 2, 4, 4, 4]),
    preds=((), (0,), (1,), (0, 2), (1,), (0, 2, 3)),
    name="gap",
)


@cache
def cases() -> list[tuple[str, RematGraph]]:
    out = [(f"dag{s}", random_dag(s, n, p)) for s, n, p in
           [(1, 7, 0.4), (4, 7, 0.4), (53, 7, 0.4), (42, 7, 0.6), (31, 6, 0.3)]]  # fmt: skip
    g = random_layered_graph(7, edge_density=0.4, skip_density=0.4, rng=5)
    out.append(("layered7", g))  # sizes 100..1000 step 10, durations 1..1000: scaled units
    frac = random_dag(13, 6, 0.45)  # non-integer durations (multiples of 1/4)
    frac = RematGraph(cost=frac.cost / 4, memory=frac.memory, preds=frac.preds, name="frac")
    out.append(("frac", frac))
    out.append(("gap", GAP_GRAPH))
    return out


@cache
def scored_case(name: str, copies: int = 2) -> list:
    return scored_schedules(dict(cases())[name], copies)


def budgets_for(g: RematGraph, scored: list) -> list[int]:
    plain = plain_peak(g)
    least = min(p for p, _, _ in scored)
    picks = {g.min_budget, least, (least + plain) // 2, plain - 1, plain}
    return sorted(b for b in picks if b >= g.min_budget)


def test_test_graphs_are_interesting():
    """The cases include recomputation at some budget and an infeasible-but-above-min budget."""
    some_remat = some_gap = 0
    for name, g in cases():
        scored = scored_case(name)
        assert plain_peak(g) == ref_plain_peak(g)
        least = min(p for p, _, _ in scored)
        assert least >= g.min_budget
        some_gap += least > g.min_budget
        some_remat += brute_optimum(scored, least) > g.total_cost
    assert some_remat >= 5 and some_gap >= 1
    assert min(p for p, _, _ in scored_case("gap")) == 39 and GAP_GRAPH.min_budget == 37


# -- MOCCASIN vs the brute force -------------------------------------------------------------------
def check_solution(g: RematGraph, sol, budget: int, expected: float | None):
    if expected is None:
        assert sol.status == "infeasible", sol.summary()
        assert sol.schedule is None and sol.report is None and not sol.feasible
        return
    assert sol.status == "optimal", sol.summary()
    rep = evaluate_schedule(g, sol.schedule)
    assert rep.peak_memory <= budget and sol.feasible and sol.budget == budget
    assert rep.total_cost == pytest.approx(expected, rel=1e-12)
    assert sol.objective == pytest.approx(rep.total_cost, rel=1e-12)
    assert sol.report.total_cost == rep.total_cost
    assert np.bincount(sol.schedule, minlength=g.n).max() <= 2
    if sol.bound is not None:
        assert sol.bound <= rep.total_cost + 1e-9 * max(1.0, rep.total_cost)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("name", [c[0] for c in cases()])
def test_moccasin_matches_brute_force(name, mode):
    g = dict(cases())[name]
    scored = scored_case(name)
    solver = MoccasinSolver(g, precedence=mode)  # built once, solved at several budgets
    for k, budget in enumerate(budgets_for(g, scored)):
        expected = brute_optimum(scored, budget)
        warm = k % 2 == 0  # alternate: greedy warm start / CP feasibility phase
        sol = solver.solve(budget, time_limit=TIME_LIMIT, threads=1, warm_start=warm)
        check_solution(g, sol, budget, expected)


@pytest.mark.parametrize("mode", MODES)
def test_moccasin_matches_brute_force_on_more_graphs(mode):
    """Twelve more six-node DAGs (sizes 1..19, costs 1..5) at their least peak and just below
    the plain peak; the seeds differ per precedence mode."""
    offset = 100 * (1 + MODES.index(mode))
    for seed in range(offset, offset + 12):
        g = random_dag(seed, 6, [0.3, 0.5, 0.7][seed % 3], mem_hi=20)
        scored = scored_schedules(g, 2)
        plain = plain_peak(g)
        least = min(p for p, _, _ in scored)
        solver = MoccasinSolver(g, precedence=mode)
        for budget in sorted({g.min_budget, least, plain - 1} - {g.min_budget - 1}):
            sol = solver.solve(budget, time_limit=TIME_LIMIT, threads=1, warm_start=seed % 2 == 0)
            check_solution(g, sol, budget, brute_optimum(scored, budget))


@pytest.mark.parametrize("mode", MODES)
def test_phase1_precedence_modes_without_warm_start(mode):
    g = dict(cases())["dag4"]
    scored = scored_case("dag4")
    least = min(p for p, _, _ in scored)
    solver = MoccasinSolver(g, phase1_precedence=mode)
    sol = solver.solve(least, time_limit=TIME_LIMIT, threads=2, warm_start=False)
    check_solution(g, sol, least, brute_optimum(scored, least))
    assert sol.info["phase1"] != "GREEDY"


def test_gap_graph_is_infeasible_below_the_least_peak():
    scored = scored_case("gap")
    for budget in (37, 38):
        assert brute_optimum(scored, budget) is None
        sol = moccasin(GAP_GRAPH, budget, time_limit=TIME_LIMIT, threads=1)
        check_solution(GAP_GRAPH, sol, budget, None)
        assert "copies" in sol.info["reason"] or "C" in sol.info["reason"]
    sol = moccasin(GAP_GRAPH, 39, time_limit=TIME_LIMIT, threads=1)
    check_solution(GAP_GRAPH, sol, 39, brute_optimum(scored, 39))


def test_three_copies_match_a_three_copy_brute_force():
    for name in ("gap", "dag31"):
        g = dict(cases())[name]
        scored3 = scored_schedules(g, 3)
        plain = plain_peak(g)
        least3 = min(p for p, _, _ in scored3)
        solver = MoccasinSolver(g, copies=3)
        for budget in sorted({g.min_budget, least3, plain - 1}):
            if budget < g.min_budget:
                continue
            sol = solver.solve(budget, time_limit=TIME_LIMIT, threads=1)
            expected = brute_optimum(scored3, budget)
            if expected is None:
                assert sol.status == "infeasible"
            else:
                assert sol.status == "optimal"
                rep = evaluate_schedule(g, sol.schedule)
                assert rep.peak_memory <= budget and rep.total_cost == pytest.approx(expected)
                assert np.bincount(sol.schedule, minlength=g.n).max() <= 3


def test_plain_peak_budget_gives_zero_overhead():
    for name, g in cases():
        sol = moccasin(g, plain_peak(g), time_limit=TIME_LIMIT, threads=1)
        assert sol.status == "optimal"
        assert sol.report.overhead == 0.0 and sol.report.recomputations == 0
        assert sol.objective == pytest.approx(g.total_cost), name


def test_one_copy_below_plain_peak_is_infeasible():
    for name, g in cases():
        plain = plain_peak(g)
        if plain == g.min_budget:
            continue
        # the only one-copy stage-form schedule is the plain order, which does not fit
        scored1 = scored_schedules(g, 1)
        assert [s for _, _, s in scored1] == [list(range(g.n))]
        assert brute_optimum(scored1, plain - 1) is None
        sol = moccasin(g, plain - 1, copies=1, time_limit=TIME_LIMIT, threads=1)
        assert sol.status == "infeasible", name
        assert sol.schedule is None
        sol = moccasin(g, plain, copies=1, time_limit=TIME_LIMIT, threads=1)
        assert sol.status == "optimal" and sol.schedule.tolist() == list(range(g.n))


def test_solution_callback_sees_improving_schedules():
    g = dict(cases())["dag42"]
    scored = scored_case("dag42")
    budget = min(p for p, _, _ in scored)
    calls: list[tuple[float, float, float | None]] = []
    steps: list[tuple[str, float]] = []
    sol = api.solve(g, budget, solver="moccasin", time_limit=TIME_LIMIT, threads=1,
                    on_solution=lambda s, c, b: calls.append((s, c, b)),
                    progress=lambda m, f: steps.append((m, f)))  # fmt: skip
    assert calls, "the solution callback was never called"
    # progress: the library's (message, fraction), once per improving schedule and once at the end
    assert len(steps) == len(calls) + 1
    for (message, fraction), (seconds, cost, _) in zip(steps, calls, strict=False):
        assert message.startswith(f"cost {cost:.4g}") and message.endswith(" s")
        assert fraction == pytest.approx(min(seconds / TIME_LIMIT, 1.0))
    assert steps[-1] == (steps[-1][0], 1.0) and steps[-1][0].startswith("moccasin optimal: cost")
    fractions = [f for _, f in steps]
    assert fractions == sorted(fractions) and all(0.0 <= f <= 1.0 for f in fractions)
    times = [s for s, _, _ in calls]
    costs = [c for _, c, _ in calls]
    assert all(t >= 0 for t in times) and times == sorted(times)
    assert all(a > b for a, b in itertools.pairwise(costs))  # strictly improving
    assert costs[-1] == sol.report.total_cost == brute_optimum(scored, budget)
    assert [c for _, c in sol.trace] == costs
    assert sol.seconds_to_best == sol.trace[-1][0] <= sol.solve_seconds


def test_old_keywords_still_work_with_a_warning():
    from frugalml.errors import FrugalDeprecationWarning

    g = dict(cases())["dag42"]
    budget = min(p for p, _, _ in scored_case("dag42"))
    new = moccasin(g, budget, time_limit=TIME_LIMIT, threads=1, rng=0)
    with pytest.warns(FrugalDeprecationWarning) as record:
        old = moccasin(g, budget, time_limit=TIME_LIMIT, workers=1, seed=0)
    assert {"'workers'", "'seed'"} <= {str(w.message).split()[1] for w in record}
    assert old.schedule.tolist() == new.schedule.tolist() and old.status == new.status
    with pytest.warns(FrugalDeprecationWarning, match="'workers' is deprecated"):
        api.solve(g, budget, solver="greedy", workers=1)
    with pytest.raises(InvalidInputError, match="pass 'threads' only"):
        moccasin(g, budget, threads=1, workers=1)
    # a Generator draws CP-SAT's seed; seeds must fit CP-SAT's int32
    sol = MoccasinSolver(g).solve(budget, time_limit=TIME_LIMIT, threads=1,
                                  rng=np.random.default_rng(0))  # fmt: skip
    assert sol.report.total_cost == new.report.total_cost
    for bad in (-1, 2**31, 1.5):
        with pytest.raises(InvalidInputError, match="rng"):
            moccasin(g, budget, threads=1, rng=bad)
    # a progress callback of the old (seconds, cost, bound) signature works as on_solution
    calls = []
    with pytest.warns(FrugalDeprecationWarning, match="'progress' is deprecated.*'on_solution'"):
        sol = moccasin(g, budget, time_limit=TIME_LIMIT, threads=1,
                       progress=lambda s, c, b: calls.append((s, c, b)))  # fmt: skip
    assert calls and calls[-1][1] == sol.report.total_cost
    with pytest.raises(InvalidInputError, match="on_solution"):
        moccasin(g, budget, threads=1, progress=lambda s, c, b: None, on_solution=print)
    import frugalml.remat.solution as solution

    with pytest.warns(FrugalDeprecationWarning, match="'ProgressCallback' is deprecated"):
        assert solution.ProgressCallback is solution.SolutionCallback


# -- greedy ----------------------------------------------------------------------------------------
def test_greedy_schedules_fit_and_respect_copies():
    found = 0
    for seed in range(120):
        rng = np.random.default_rng(1000 + seed)
        if seed % 2:
            g = random_dag(seed, int(rng.integers(2, 16)), float(rng.choice([0.15, 0.3, 0.6])),
                           mem_hi=20)  # fmt: skip
        else:
            g = random_layered_graph(int(rng.integers(5, 60)), rng=seed)
        plain = ref_plain_peak(g)
        for budget in sorted(set(np.linspace(g.min_budget, plain, 4).astype(int).tolist())):
            for copies in (1, 2, 3):
                sched = greedy_schedule(g, budget, copies=copies)
                if sched is None:
                    continue
                found += 1
                rep = evaluate_schedule(g, sched)
                assert rep.peak_memory <= budget, (seed, budget, copies)
                assert np.bincount(sched, minlength=g.n).max() <= copies
                if budget >= plain:  # nothing to evict: the plain order
                    assert sched.tolist() == list(range(g.n))
    assert found > 500


def test_greedy_is_never_better_than_the_optimum():
    for name, g in cases():
        scored = scored_case(name)
        for budget in budgets_for(g, scored):
            sched = greedy_schedule(g, budget)
            if sched is not None:
                rep = evaluate_schedule(g, sched)
                assert rep.total_cost >= brute_optimum(scored, budget) - 1e-9


def test_greedy_solver_result():
    g = random_layered_graph(40, rng=4)
    sol = greedy(g, plain_peak(g))
    assert sol.solver == "greedy" and sol.status == "feasible"
    assert sol.report.overhead == 0.0
    with pytest.raises(InfeasibleError):
        greedy(g, g.min_budget - 1)
    with pytest.raises(InvalidInputError, match="copies"):
        greedy(g, plain_peak(g), copies=0)


# -- solve() and bad inputs ------------------------------------------------------------------------
def test_solve_dispatch():
    g = dict(cases())["dag1"]
    scored = scored_case("dag1")
    frac = 0.85
    budget = int(np.floor(frac * ref_plain_peak(g)))
    sol = api.solve(g, frac, solver="moccasin", time_limit=TIME_LIMIT, threads=1)
    assert sol.solver == "moccasin" and sol.budget == budget
    check_solution(g, sol, budget, brute_optimum(scored, budget))
    sol = api.solve(g, budget, solver="greedy")  # bytes
    assert sol.solver == "greedy" and sol.budget == budget
    if sol.schedule is not None:
        assert evaluate_schedule(g, sol.schedule).peak_memory <= budget
    assert set(api.SOLVERS) >= {"moccasin", "greedy", "none"}


def test_solve_none_dispatch():
    pytest.importorskip("frugalml.remat.baselines")
    g = dict(cases())["dag1"]
    sol = api.solve(g, 1.0, solver="none")
    assert sol.schedule.tolist() == list(range(g.n))
    assert sol.report.peak_memory == ref_plain_peak(g) and sol.report.overhead == 0.0


def test_bad_inputs():
    g = dict(cases())["dag1"]
    plain = plain_peak(g)
    with pytest.raises(InvalidInputError, match="copies"):
        MoccasinSolver(g, copies=0)
    with pytest.raises(InvalidInputError, match="copies"):
        api.solve(g, 1.0, solver="moccasin", copies=0)
    with pytest.raises(InvalidInputError, match="copies"):
        MoccasinSolver(g, copies=1.5)
    for limit in (0, -1.0, float("nan")):
        with pytest.raises(InvalidInputError, match="time_limit"):
            moccasin(g, plain, time_limit=limit)
        with pytest.raises(InvalidInputError, match="time_limit"):
            api.solve(g, 1.0, solver="moccasin", time_limit=limit)
    with pytest.raises(InfeasibleError, match=f"minimum is {g.min_budget}"):
        moccasin(g, g.min_budget - 1, time_limit=TIME_LIMIT)
    with pytest.raises(InfeasibleError, match=f"minimum is {g.min_budget}"):
        api.solve(g, g.min_budget - 1 if g.min_budget > 2 else 0.01, solver="moccasin")
    for solver in ("moccasin", "greedy"):
        with pytest.raises(InfeasibleError):
            api.solve(g, 0.01, solver=solver)
    for bad in (None, "graph.json", {"nodes": []}, np.arange(3)):
        with pytest.raises(InvalidInputError, match="RematGraph"):
            api.solve(bad, 0.9)
        with pytest.raises(InvalidInputError, match="RematGraph"):
            MoccasinSolver(bad)
    with pytest.raises(InvalidInputError, match="solver"):
        api.solve(g, 0.9, solver="simplex")
    with pytest.raises(InvalidInputError, match="precedence"):
        MoccasinSolver(g, precedence="ordering")
    with pytest.raises(InvalidInputError, match="feasibility_fraction"):
        MoccasinSolver(g).solve(plain, feasibility_fraction=0.0)


# -- a published graph -----------------------------------------------------------------------------
def test_vgg16_train_at_09_is_solved_to_optimality():
    path = DATA / "VGG16_256_224_224_3_train.json"
    if not path.exists():
        pytest.skip(f"{path} not found")
    g = load_graph(path)
    raw = json.loads(path.read_text())
    assert g.n == len(raw["nodes"])
    sol = api.solve(g, 0.9, solver="moccasin", time_limit=60, threads=2)
    assert sol.status == "optimal", sol.summary()
    assert sol.solve_seconds < 60
    budget = int(np.floor(0.9 * ref_plain_peak(g)))
    assert sol.budget == budget
    rep = evaluate_schedule(g, sol.schedule)
    assert rep.peak_memory <= budget
    assert rep.total_cost == pytest.approx(sol.objective, rel=1e-12)
    assert rep.total_cost == pytest.approx(
        sum(float(raw["nodes"][g.ids[int(v)]]["cost_cpu"]) for v in sol.schedule), rel=1e-12
    )
    assert rep.total_cost >= g.total_cost and sol.bound <= rep.total_cost * (1 + 1e-9)


# -- hints -----------------------------------------------------------------------------------------
def test_a_fitting_hint_skips_phase_one_and_the_optimum_follows():
    from frugalml.remat.greedy import stage_form

    for name in ("dag1", "dag42", "layered7", "gap"):
        g = dict(cases())[name]
        scored = scored_case(name)
        least = min(p for p, _, _ in scored)
        # the costliest schedule that fits the least peak: a poor but valid hint
        worst = max((x for x in scored if x[0] <= least), key=lambda x: x[1])
        calls: list[float] = []
        sol = moccasin(g, least, time_limit=TIME_LIMIT, threads=1, hints=[worst[2]],
                       on_solution=lambda s, c, b, calls=calls: calls.append(c))  # fmt: skip
        assert sol.info["phase1"] in ("HINT", "GREEDY")
        check_solution(g, sol, least, brute_optimum(scored, least))
        assert calls[0] <= worst[1]  # the first incumbent is the hint or the cheaper greedy
        # without the greedy start the hint is the incumbent
        solver = MoccasinSolver(g)
        sol = solver.solve(least, time_limit=TIME_LIMIT, threads=1, warm_start=False,
                           hints=[np.arange(g.n), worst[2]])  # fmt: skip
        assert sol.info["phase1"] == "HINT" and sol.trace[0][1] == worst[1]
        check_solution(g, sol, least, brute_optimum(scored, least))
        # stage-form schedules are their own stage form
        assert stage_form(g, worst[2]).tolist() == list(worst[2])


def test_hints_that_do_not_fit_seed_the_feasibility_phase():
    g = dict(cases())["dag4"]
    scored = scored_case("dag4")
    least = min(p for p, _, _ in scored)
    over = [s for p, _, s in scored if p > least][:3]
    sol = MoccasinSolver(g).solve(least, time_limit=TIME_LIMIT, threads=1, warm_start=False,
                                  hints=over)  # fmt: skip
    assert sol.info["phase1"] not in ("HINT", "GREEDY")
    check_solution(g, sol, least, brute_optimum(scored, least))


def test_a_hint_outside_the_model_is_kept():
    """Two branches a1 -> a2 and b1 -> b2 joined by s. In the graph's order (a1, b1, a2, b2, s)
    both big values meet (peak 21); the order a1, a2, b1, b2, s peaks at 12 at no extra cost,
    while with first computations in the graph's order a peak of 12 needs both big values
    recomputed (cost 7 instead of 5). The cheaper hint, outside the model, is returned."""
    from frugalml.remat.greedy import stage_form

    g = RematGraph(cost=np.ones(5), memory=np.array([10, 10, 1, 1, 1]),
                   preds=((), (), (0,), (1,), (2, 3)))  # fmt: skip
    hint = [0, 2, 1, 3, 4]
    rep = evaluate_schedule(g, hint)
    assert rep.peak_memory == 12 and plain_peak(g) == 21 and rep.total_cost == 5
    assert stage_form(g, hint) is None
    assert brute_optimum(scored_schedules(g, 2), 12) == 7
    sol = moccasin(g, 12, time_limit=TIME_LIMIT, threads=1, hints=[hint])
    assert sol.status == "feasible" and sol.schedule.tolist() == hint
    assert sol.report.total_cost == g.total_cost == sol.objective == 5
    alone = moccasin(g, 12, time_limit=TIME_LIMIT, threads=1)
    assert alone.status == "optimal" and alone.report.total_cost == 7


def test_stage_form_reorders_a_stage_and_rejects_what_it_cannot_express():
    from frugalml.remat.greedy import stage_form

    g = dict(cases())["dag1"]
    n = g.n
    base = list(range(n))
    # recompute 0 and 1 in the last stage, in reverse order: the stage form sorts them
    sched = [*base[:-1], 1, 0, n - 1]
    evaluate_schedule(g, sched)  # valid: 0 and 1 were computed before
    form = stage_form(g, sched)
    assert form.tolist() == [*base[:-1], 0, 1, n - 1]
    assert stage_form(g, [*base, 0]) is None  # a recomputation after the last stage
    assert stage_form(g, base).tolist() == base


def test_bad_hints_name_their_index():
    g = dict(cases())["dag1"]
    plain = plain_peak(g)
    with pytest.raises(InvalidInputError, match="hint 1"):
        moccasin(g, plain, threads=1, hints=[np.arange(g.n), [g.n - 1, 0]])
    with pytest.raises(InvalidInputError, match="hint 0"):
        moccasin(g, plain, threads=1, hints=[[0, 1, 99]])
    with pytest.raises(InvalidInputError, match="hint 0"):
        moccasin(g, plain, threads=1, hints=[0, 1, 2])  # one schedule, not wrapped in a list
    with pytest.raises(InvalidInputError, match="hints"):
        moccasin(g, plain, threads=1, hints=5)


def test_hinted_model_values_satisfy_the_model():
    """The model values of a stage-form schedule satisfy every constraint: with all variables
    fixed to them CP-SAT finds that very solution (before the stage of a first computation that
    is recomputed later was mis-assigned, and CP-SAT rejected such hints as infeasible)."""
    from ortools.sat.python import cp_model

    checked = 0
    for seed in range(12):
        g = random_layered_graph(int(12 + 3 * seed), rng=seed)
        solver = MoccasinSolver(g, precedence=MODES[seed % 3])
        plain = plain_peak(g)
        for b in np.linspace(g.min_budget, plain, 6).astype(int)[1:-1]:
            sched = greedy_schedule(g, int(b))
            if sched is None or len(sched) == g.n:
                continue
            model, copies = solver._build(int(b), cp_model)
            model.minimize(solver._objective(copies))
            solver._hint(model, copies, solver._values_from_schedule(sched, copies))
            cp = cp_model.CpSolver()
            cp.parameters.fix_variables_to_their_hinted_value = True
            cp.parameters.num_workers = 1
            cp.parameters.max_time_in_seconds = 10.0
            status = cp.solve(model)
            assert cp.status_name(status) in ("OPTIMAL", "FEASIBLE"), (seed, b)
            rep = evaluate_schedule(g, sched)
            assert cp.objective_value * solver.cost_unit == pytest.approx(
                rep.total_cost - g.total_cost
            )
            checked += 1
    assert checked >= 10


# -- the local search ------------------------------------------------------------------------------
def test_repair_schedules_fit_and_are_never_better_than_the_optimum():
    from frugalml.remat.greedy import repair_schedule, stage_form

    found = 0
    for name, g in cases():
        scored = scored_case(name)
        for budget in budgets_for(g, scored):
            sched = repair_schedule(g, budget, time_limit=None)
            if sched is None:
                continue
            found += 1
            rep = evaluate_schedule(g, sched)
            assert rep.peak_memory <= budget
            assert np.bincount(sched, minlength=g.n).max() <= 2
            assert stage_form(g, sched).tolist() == sched.tolist()
            assert rep.total_cost >= brute_optimum(scored, budget) - 1e-9
    assert found >= 20


def test_repair_reaches_budgets_the_eviction_rules_miss():
    from frugalml.remat.greedy import cascading_schedule, repair_schedule

    path = DATA / "random_layered_n100_w0.27_nlv0.75_ed0.2_scd0.14.json"
    if not path.exists():
        pytest.skip(f"{path} not found")
    g = load_graph(path)
    budget = int(0.8 * plain_peak(g))
    assert greedy_schedule(g, budget) is None and cascading_schedule(g, budget) is None
    sched = repair_schedule(g, budget, time_limit=None)
    rep = evaluate_schedule(g, sched)
    assert rep.peak_memory <= budget and rep.recomputations > 0
    assert np.bincount(sched, minlength=g.n).max() <= 2
    # the moccasin warm start uses it: no feasibility phase needed
    sol = moccasin(g, budget, time_limit=2, threads=1)
    assert sol.info["phase1"] == "GREEDY" and sol.report.peak_memory <= budget
    assert sol.report.total_cost <= rep.total_cost
