"""Schedules at many memory budgets in one call, sharing the work between budgets.

A schedule that fits budget ``b`` fits every budget above ``b``, so the least cost is a
non-increasing function of the budget (the MOCCASIN paper, Bartan et al., ICML 2023, arXiv
2304.14463, Fig. 4, plots it). Separate solves do not respect that: with a time limit, a search
at 80% can end with a costlier schedule than the one it found at 70%. :func:`budget_sweep`
solves the budgets from the lowest up and hands every schedule found so far to the next solve
as a hint (:func:`~frugalml.remat.moccasin.moccasin` never returns a schedule costlier than the
cheapest hint that fits), then takes, at each budget, the cheapest schedule found at any budget
at or below it. The costs it returns are therefore non-increasing in the budget by
construction, and each is checked by :func:`~frugalml.remat.evaluate.evaluate_schedule`.

Large graphs (``n > coarsen_above``) are first contracted by
:func:`~frugalml.remat.coarsen.coarsen_chains`; the coarse graph is solved at each budget and
its expanded schedule seeds the fine solve (:func:`~frugalml.remat.coarsen.refine`).

Lower bounds. :func:`min_feasible_budget` is the least budget any schedule can meet (a node
with its inputs and output must fit, :attr:`RematGraph.min_budget`); with at most ``C``
computations per node the true least budget can be higher, and the heuristics may need more
still. :func:`lowest_schedulable_budget` finds, by bisection, the least budget at which the
greedy heuristics produce a schedule.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import numpy as np

from .._validate import check_int, check_positive_float
from ..errors import InfeasibleError, InvalidInputError
from ..progress import Progress
from .coarsen import coarsen_chains
from .evaluate import evaluate_schedule
from .graph import RematGraph
from .greedy import best_greedy_schedule
from .moccasin import MoccasinSolver, check_hints
from .solution import RematSolution, plain_peak, resolve_budget, scored

__all__ = ["budget_sweep", "lowest_schedulable_budget", "min_feasible_budget"]

#: graphs above this many nodes are coarsened first by default
COARSEN_ABOVE = 1000
#: least seconds worth a fine solve after the coarse one (CP-SAT needs several seconds just to
#: load a model of thousands of nodes)
REFINE_SECONDS = 10.0


def _margin(n: int, seconds: float) -> float:
    """Seconds kept back from a solve of an ``n``-node model so the sweep ends on time (CP-SAT
    overruns its limit while loading a large model: ~2 s at 4000 nodes)."""
    return min(0.1 * seconds, 0.5 + n / 2000.0)


def min_feasible_budget(graph: RematGraph) -> int:
    """The least budget (bytes) any schedule can meet: ``max_i memory[i] + sum
    memory[preds[i]]`` (:attr:`RematGraph.min_budget`, the bound
    :func:`~frugalml.remat.solution.check_budget` enforces). ``O(n + |E|)``."""
    if not isinstance(graph, RematGraph):
        raise InvalidInputError(f"graph must be a RematGraph, got {type(graph).__name__}")
    return graph.min_budget


def lowest_schedulable_budget(
    graph: RematGraph, *, copies: int = 2, tol: float = 1e-3, time_limit: float = 20.0
) -> tuple[int, np.ndarray]:
    """The least budget (bytes) at which the greedy heuristics
    (:func:`~frugalml.remat.greedy.best_greedy_schedule`) find a schedule, and that schedule.

    Bisection between :func:`min_feasible_budget` and the plain peak (where the plain order
    always fits), to a relative precision ``tol`` of the plain peak; the heuristics are not
    monotone in the budget, so this is the least budget *found*, an upper bound on the least
    feasible one. ``O(log(1 / tol))`` heuristic runs, their local searches sharing
    ``time_limit`` seconds.
    """
    if not isinstance(graph, RematGraph):
        raise InvalidInputError(f"graph must be a RematGraph, got {type(graph).__name__}")
    copies = check_int(copies, "copies", low=1)
    tol = check_positive_float(tol, "tol")
    time_limit = check_positive_float(time_limit, "time_limit")
    hi = plain_peak(graph)
    runs = max(1, math.ceil(math.log2(1.0 / tol))) + 1
    each = time_limit / runs
    best = (hi, np.arange(graph.n, dtype=np.int64))  # the plain order fits its own peak
    sched = best_greedy_schedule(graph, graph.min_budget, copies=copies, time_limit=each)
    if sched is not None:
        return graph.min_budget, sched
    lo = graph.min_budget
    step = max(1, int(tol * hi))
    while best[0] - lo > step:
        mid = (lo + best[0]) // 2
        sched = best_greedy_schedule(graph, mid, copies=copies, time_limit=each)
        if sched is None:
            lo = mid
        else:  # the schedule may be well under mid: use its own peak
            best = (min(mid, evaluate_schedule(graph, sched).peak_memory), sched)
    return best


def _resolve(graph: RematGraph, budget: Any) -> int | None:
    """Bytes of one requested budget; ``None`` below the least feasible budget."""
    if isinstance(budget, str):
        if budget != "min":
            raise InvalidInputError(
                f"a budget must be a fraction of the plain peak, bytes, or 'min'; got {budget!r}"
            )
        return graph.min_budget
    try:
        return resolve_budget(graph, budget)
    except InfeasibleError:
        return None


def budget_sweep(
    graph: RematGraph,
    budgets: Sequence[float | int | str],
    *,
    time_limit: float = 60.0,
    threads: int | None = None,
    hints: Sequence[Sequence[int] | np.ndarray] = (),
    progress: Progress | None = None,
    rng: int | np.random.Generator = 0,
    copies: int = 2,
    coarsen_above: int = COARSEN_ABOVE,
    max_chain: int = 8,
) -> list[RematSolution]:
    """Minimise total compute at every budget of ``budgets`` within ``time_limit`` seconds in
    all.

    ``budgets``: fractions of the plain peak in ``(0, 1]``, bytes (``> 1``) or ``"min"``
    (:func:`min_feasible_budget`), in any order; the result has one
    :class:`~frugalml.remat.solution.RematSolution` per entry, in the same order. A budget below
    the least feasible one gets status ``"infeasible"`` and no schedule. ``hints``: extra seed
    schedules (node indices), shared by all budgets; an invalid one raises
    :class:`~frugalml.errors.InvalidInputError` naming its index.

    Work sharing (see the module docstring): the greedy heuristics run at every budget first;
    then the budgets are solved from the lowest up with MOCCASIN, each getting an equal share
    of the time left and every schedule found so far as a hint; graphs of more than
    ``coarsen_above`` nodes are solved on their chain coarsening (``max_chain``) first and
    refined. Finally each budget keeps the cheapest schedule found at or below it, so the
    costs are non-increasing in the budget. ``info["source"]`` says where each schedule came
    from; the status is ``"optimal"`` only where that solve proved it (or where the plain
    order fits, which nothing beats).

    ``threads``, ``rng``, ``copies``: as in :func:`~frugalml.remat.moccasin.moccasin`.
    ``progress(message, fraction)``: once per budget solved and once at the end.
    """
    if not isinstance(graph, RematGraph):
        raise InvalidInputError(f"graph must be a RematGraph, got {type(graph).__name__}")
    time_limit = check_positive_float(time_limit, "time_limit")
    copies = check_int(copies, "copies", low=1)
    coarsen_above = check_int(coarsen_above, "coarsen_above", low=0)
    if isinstance(budgets, (str, bytes)) or not isinstance(budgets, Sequence) or not budgets:
        raise InvalidInputError("budgets must be a non-empty sequence of budgets")
    t0 = time.perf_counter()
    deadline = t0 + time_limit
    solver = MoccasinSolver(graph, copies=copies)
    pool: list[tuple[float, int, np.ndarray, str]] = []  # (cost, peak, schedule, source)
    for i, (h, rep) in enumerate(check_hints(graph, hints)):
        pool.append((rep.total_cost, rep.peak_memory, h, f"hint {i}"))
    resolved = [_resolve(graph, b) for b in budgets]
    levels = sorted({b for b in resolved if b is not None})
    plain = plain_peak(graph)

    def add(sched: np.ndarray | None, source: str) -> None:
        if sched is None:
            return
        rep = evaluate_schedule(graph, sched)
        pool.append((rep.total_cost, rep.peak_memory, np.asarray(sched, dtype=np.int64), source))

    def fitting(b: int) -> list[tuple[float, int, np.ndarray, str]]:
        return sorted((x for x in pool if x[1] <= b), key=lambda x: (x[0], x[1]))

    # 1. the plain order and the greedy heuristics at every budget (milliseconds each)
    add(np.arange(graph.n, dtype=np.int64), "plain order")
    # (a quarter of the time at most for the heuristics' local search)
    quick = min(5.0, time_limit / (4.0 * max(len(levels), 1)))
    for b in levels:
        if b < plain:
            add(best_greedy_schedule(graph, b, copies=copies, time_limit=quick), f"greedy at {b}")
    coarse = None
    coarse_seeds: dict[int, list[np.ndarray]] = {}
    if graph.n > coarsen_above:
        coarse = coarsen_chains(graph, max_chain=max_chain)
        for b in levels:
            if coarse.graph.min_budget <= b < plain:
                # (the local search only where the fine heuristics found nothing)
                limit = quick if not fitting(b) else 0.0
                cs = best_greedy_schedule(coarse.graph, b, copies=copies, time_limit=limit)
                coarse_seeds[b] = [] if cs is None else [cs]
                if cs is not None:
                    add(coarse.expand(cs), f"coarse greedy at {b}")
    # 2. MOCCASIN from the lowest budget up, each seeded with everything found so far
    proven: dict[int, RematSolution] = {}
    solved: dict[int, RematSolution] = {}
    todo = [b for b in levels if b < plain]
    for k, b in enumerate(todo):
        share = (deadline - time.perf_counter()) / (len(todo) - k)
        if share < 0.05:
            break
        seeds = [x[2] for x in fitting(b)[:3]]
        if not seeds:  # none fits: the seed of least peak helps the feasibility phase
            seeds = [min(pool, key=lambda x: (x[1], x[0]))[2]]
        left = share
        if coarse is not None and coarse.graph.min_budget <= b:
            # the coarse graph first, its expanded schedule a seed of the fine solve
            started = time.perf_counter()
            t_coarse = share if share < 2 * REFINE_SECONDS else share / 2.0
            cs = MoccasinSolver(coarse.graph, copies=copies).solve(
                b, time_limit=max(t_coarse - _margin(coarse.graph.n, t_coarse), 0.05),
                threads=threads, rng=rng, hints=coarse_seeds.get(b, []), warm_start=False,
            )  # fmt: skip
            if cs.schedule is not None:
                add(coarse.expand(cs.schedule), f"coarse moccasin at {b}")
                seeds = [x[2] for x in fitting(b)[:3]]
            left = share - (time.perf_counter() - started)
        if coarse is None or left >= REFINE_SECONDS:  # else too little for the fine model
            # (the heuristics ran above: no warm start again)
            sol = solver.solve(b, time_limit=max(left - _margin(graph.n, left), 0.05),
                               threads=threads, rng=rng, hints=seeds, warm_start=False)  # fmt: skip
            solved[b] = sol
            if sol.schedule is not None:
                add(sol.schedule, f"moccasin at {b}")
                if sol.status == "optimal":
                    proven[b] = sol
        if progress is not None:
            best_b = fitting(b)
            what = "no schedule" if not best_b else f"cost {best_b[0][0]:.4g}"
            progress(f"budget {b}: {what}", (k + 1) / (len(todo) + 1))
    # 3. at each budget the cheapest schedule found at or below it
    out: list[RematSolution] = []
    seconds = time.perf_counter() - t0
    for req, b in zip(budgets, resolved, strict=True):
        if b is None:
            bytes_ = _requested_bytes(graph, req, plain)
            out.append(scored(graph, "budget_sweep", "infeasible", bytes_, None,
                              solve_seconds=seconds,
                              info={"reason": f"below the least feasible budget "
                                    f"{graph.min_budget} (min_feasible_budget)"}))  # fmt: skip
            continue
        best = fitting(b)
        if not best:
            last = solved.get(b)
            out.append(scored(graph, "budget_sweep", "timeout" if last is None else last.status,
                              b, None, solve_seconds=seconds,
                              bound=None if last is None else last.bound,
                              info={"reason": "no schedule found within the time limit"
                                    if last is None or last.status != "infeasible" else
                                    last.info.get("reason", "")}))  # fmt: skip
            continue
        cost, _, sched, source = best[0]
        if b >= plain:
            status = "optimal"  # every node once: nothing is cheaper
        else:
            p = proven.get(b)
            status = "optimal" if p is not None and p.report.total_cost <= cost else "feasible"
        sol = scored(graph, "budget_sweep", status, b, sched, objective=cost,
                     solve_seconds=seconds,
                     info={"source": source, "coarse_nodes": None if coarse is None
                           else coarse.graph.n})  # fmt: skip
        if b in solved:
            sol = replace(sol, bound=solved[b].bound, trace=solved[b].trace)
        out.append(sol)
    if progress is not None:
        progress(f"budget sweep done: {len(levels)} budgets, {seconds:.1f} s", 1.0)
    return out


def _requested_bytes(graph: RematGraph, budget: Any, plain: int) -> int:
    b = float(budget)
    return math.floor(round(b * plain, 6)) if b <= 1.0 else math.floor(b)
