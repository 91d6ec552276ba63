"""Checkmate: optimal rematerialisation as a mixed-integer program, and its LP-rounding heuristic.

Our own implementation of Jain, Jain, Nrusimha, Gholami, Abbeel, Keutzer, Stoica, Gonzalez,
"Checkmate: Breaking the Memory Wall with Optimal Tensor Rematerialization" (MLSys 2020), Sec. 4
(the MILP, :func:`checkmate_milp`) and Sec. 5 (two-phase LP rounding,
:func:`checkmate_lp_rounding`), written from the paper's equations and solved with HiGHS
(through ``highspy`` when asked for, else ``scipy.optimize.milp``). The model itself (stages,
variables, the ``"tight"`` and ``"hazard"`` linearisations, sizes) is described and built in
:mod:`frugalml.remat.checkmate_model`.

The optimum is optimal *among frontier-advancing schedules in the graph's topological order*
(the class Checkmate searches); a schedule that reorders independent nodes can occasionally do
better, so ``bound`` is a bound for this model, not for every schedule. Every schedule is
re-scored by :func:`~frugalml.remat.evaluate.evaluate_schedule`.
"""

from __future__ import annotations

import math
import sys
import time
from typing import Any, Literal

import numpy as np

from .._resources import check_memory
from .._validate import RngLike, check_choice, check_int, check_positive_float, check_rng
from ..errors import InvalidInputError
from ..progress import Progress
from ._highs import Backend, have_highspy, solve_model
from .checkmate_model import build_model, stage_nodes, tri0, tri1
from .evaluate import evaluate_schedule
from .graph import RematGraph
from .solution import (
    RematSolution,
    SolutionCallback,
    Status,
    check_budget,
    report_done,
    scored,
    solution_reporter,
)

__all__ = ["checkmate_lp_rounding", "checkmate_milp"]


def _check_common(
    graph: RematGraph, budget: int, time_limit: float | None, backend: str
) -> tuple[int, float | None]:
    if not isinstance(graph, RematGraph):
        raise InvalidInputError(f"graph must be a RematGraph, got {type(graph).__name__}")
    budget = check_int(budget, "budget", low=1)
    check_budget(graph, budget)
    if time_limit is not None:
        time_limit = check_positive_float(time_limit, "time_limit")
    check_choice(backend, "backend", ("auto", "highspy", "scipy"))
    # O(n^2) variables and O(n (n + |E|)) nonzeros: building the sparse model peaks at about
    # 650 bytes per n (n + |E|) (measured), and HiGHS holds its own copies
    n, n_edges = graph.n, len(graph.edges)
    check_memory(1200.0 * n * (n + n_edges),
                 f"the Checkmate MILP of {n} nodes and {n_edges} edges (O(n^2) variables)",
                 fix="use a smaller graph, or the moccasin or greedy solver")  # fmt: skip
    if backend == "highspy":
        if "ortools" in sys.modules:
            raise InvalidInputError(
                "backend='highspy' cannot run in a process that has imported OR-Tools (both "
                "bundle HiGHS; the second import fails); use backend='scipy' here, or run the "
                "MILP in a separate process"
            )
        if not have_highspy():
            raise InvalidInputError("backend='highspy' needs the highspy package; use 'scipy'")
    return budget, time_limit


def _verify(graph: RematGraph, sol: RematSolution, claimed: float | None) -> RematSolution:
    """A schedule the MILP calls feasible must fit the budget under the common evaluator.

    An excess within solver tolerances (``1e-6`` of the budget) withholds the schedule (status
    ``"unknown"``, ``info["budget_excess"]``); anything larger, or an objective that is not the
    evaluated cost, is a model bug and raises :class:`RuntimeError`.
    """
    rep = sol.report
    if rep is None:
        return sol
    if rep.peak_memory > sol.budget:
        if rep.peak_memory <= sol.budget * (1 + 1e-6):
            info = {**sol.info, "budget_excess": rep.peak_memory - sol.budget}
            return scored(
                graph, sol.solver, "unknown", sol.budget, None, bound=sol.bound,
                solve_seconds=sol.solve_seconds, info=info,
            )  # fmt: skip
        raise RuntimeError(
            f"Checkmate model bug: the MILP schedule for {graph.name or 'the graph'} peaks at "
            f"{rep.peak_memory} bytes under the evaluator, above the budget {sol.budget}"
        )
    if claimed is not None and not math.isclose(
        rep.total_cost, claimed, rel_tol=1e-6, abs_tol=1e-9 * max(graph.total_cost, 1.0)
    ):
        raise RuntimeError(
            f"Checkmate model bug: the MILP objective {claimed:g} differs from the evaluated "
            f"cost {rep.total_cost:g} of its schedule"
        )
    return sol


# --------------------------------------------------------------------------------------------
# public solvers
# --------------------------------------------------------------------------------------------
def checkmate_milp(
    graph: RematGraph,
    budget: int,
    *,
    time_limit: float | None = None,
    mip_rel_gap: float = 1e-4,
    threads: int | None = None,
    progress: Progress | None = None,
    on_solution: SolutionCallback | None = None,
    linearisation: Literal["hazard", "tight"] = "tight",
    backend: Backend = "auto",
) -> RematSolution:
    """Solve the Checkmate MILP (Jain et al., MLSys 2020, Sec. 4) for ``budget`` bytes.

    Parameters
    ----------
    graph:
        The computation graph (``n`` nodes, topological order as stored).
    budget:
        Memory budget in bytes (already resolved, e.g. by
        :func:`~frugalml.remat.solution.resolve_budget`). Raises
        :class:`~frugalml.errors.InfeasibleError` below ``graph.min_budget``.
    time_limit:
        Wall-clock seconds for HiGHS (``None``: no limit).
    mip_rel_gap:
        Relative optimality gap at which HiGHS stops and reports "optimal".
    threads:
        HiGHS threads (``None``: HiGHS's default). HiGHS keeps one global scheduler per process;
        a different value resets it.
    progress:
        The library's ``progress(message, fraction)``, at every improving schedule (highspy
        backend; with scipy once, at the end of the search) and once with fraction 1 at the
        end; see :mod:`frugalml.remat.solution` for the message and the fraction.
    on_solution:
        Called as ``on_solution(seconds, total_cost, bound)`` at every improving schedule
        (highspy backend; with scipy once, for the final schedule).
    linearisation:
        ``"tight"`` (default) or ``"hazard"`` (the paper's) encoding of FREE; see the module
        docstring. Same optimum, different LP relaxation.
    backend:
        ``"scipy"`` (``scipy.optimize.milp``; what ``"auto"`` picks) or ``"highspy"`` (incumbent
        callbacks, threads; only in a process without OR-Tools: both bundle HiGHS).

    Returns
    -------
    RematSolution
        ``status``: ``"optimal"`` (within ``mip_rel_gap``), ``"feasible"`` (a schedule at the
        time limit), ``"timeout"`` (none; ``bound`` is HiGHS's dual bound), ``"infeasible"`` (no
        frontier-advancing schedule fits; ``min_budget`` is only a necessary condition).
        ``objective``/``bound`` are in graph cost units; ``trace`` holds ``(seconds, cost)`` of
        the improving schedules; ``info`` the model size and HiGHS statistics.

    Size ``O(n (n + |E|))`` variables and rows, vectorised build; NP-hard solve.
    """
    t0 = time.perf_counter()
    budget, time_limit = _check_common(graph, budget, time_limit, backend)
    mip_rel_gap = float(mip_rel_gap)
    if not (math.isfinite(mip_rel_gap) and mip_rel_gap >= 0):
        raise InvalidInputError(f"mip_rel_gap must be a finite number >= 0, got {mip_rel_gap}")
    if threads is not None:
        threads = check_int(threads, "threads", low=1)
    check_choice(linearisation, "linearisation", ("hazard", "tight"))
    model = build_model(graph, budget, linearisation)
    build_seconds = time.perf_counter() - t0
    scale = model.cost_scale

    notify = solution_reporter(progress, on_solution, time_limit)
    on_improve = None
    if notify is not None:

        def on_improve(sec: float, obj: float, bnd: float | None) -> None:
            notify(sec, obj * scale, None if bnd is None else bnd * scale)

    remaining = None if time_limit is None else max(time_limit - build_seconds, 1e-3)
    res, used = solve_model(
        model, integer=True, time_limit=remaining, mip_rel_gap=mip_rel_gap, threads=threads,
        backend=backend, t0=t0, on_improve=on_improve,
    )  # fmt: skip
    solve_seconds = time.perf_counter() - t0
    info = {**model.info(), **res.info, "backend": used, "build_seconds": build_seconds}
    schedule = None
    objective = None if res.objective is None else res.objective * scale
    bound = None if res.bound is None else res.bound * scale
    if res.x is not None:
        schedule = stage_nodes(graph.n)[model.r_values(res.x) > 0.5]
    trace = tuple((sec, obj * scale) for sec, obj in res.trace)
    if used == "scipy" and notify is not None and trace:  # no incumbent callbacks there
        notify(trace[-1][0], trace[-1][1], bound)
    seconds_to_best = solve_seconds
    if objective is not None and trace:
        seconds_to_best = next(
            (sec for sec, obj in trace if math.isclose(obj, objective, rel_tol=1e-9)),
            trace[-1][0],
        )
    sol = scored(
        graph, "checkmate_milp", res.status, budget, schedule, objective=objective, bound=bound,
        solve_seconds=solve_seconds, seconds_to_best=seconds_to_best if schedule is not None
        else None, trace=trace, info=info,
    )  # fmt: skip
    sol = _verify(graph, sol, objective)
    report_done(progress, sol)
    return sol


def _round(graph: RematGraph, masks: np.ndarray) -> np.ndarray:
    """The cheapest valid R for each rounded S.

    ``masks``: ``(K, n (n-1) / 2)`` bool, candidate S in the model's layout. Returns ``(K, n
    (n+1) / 2)`` bool R. Stages are walked backwards keeping the values a later stage reads
    from ``S``; within stage ``t`` nodes are walked from ``t`` down: a node is *demanded* if it
    is ``t``, read by a node computed in the stage, or held for the next stage and read there;
    a demanded node is recomputed unless ``S[t]`` holds it (then it is demanded from stage
    ``t - 1``). Unused ``S`` bits are dropped, so they never force recomputation. ``O(K n (n +
    |E|))`` with the ``K`` candidates vectorised.
    """
    n = graph.n
    K = masks.shape[0]
    R = np.zeros((K, n * (n + 1) // 2), dtype=bool)
    succs = [np.asarray(s, dtype=np.int64) for s in graph.succs]
    demand_next = np.zeros((K, n), dtype=bool)
    for t in range(n - 1, -1, -1):
        s_t = np.zeros((K, t + 1), dtype=bool)
        s_t[:, :t] = masks[:, tri0(t) : tri0(t) + t]
        r_t = np.zeros((K, t + 1), dtype=bool)
        demand = np.zeros((K, n), dtype=bool)
        r_t[:, t] = True
        for i in range(t - 1, -1, -1):
            sc = succs[i]
            sc = sc[sc <= t]
            need = demand_next[:, i].copy()
            if sc.size:
                need |= r_t[:, sc].any(axis=1)
            r_t[:, i] = need & ~s_t[:, i]
            demand[:, i] = need & s_t[:, i]
        R[:, tri1(t) : tri1(t) + t + 1] = r_t
        demand_next = demand
    return R


def checkmate_lp_rounding(
    graph: RematGraph,
    budget: int,
    *,
    method: Literal["threshold", "randomized"] = "threshold",
    samples: int = 100,
    rng: RngLike = None,
    time_limit: float | None = None,
    linearisation: Literal["hazard", "tight"] = "tight",
    backend: Backend = "auto",
) -> RematSolution:
    """Checkmate's LP relaxation with two-phase rounding (Jain et al., MLSys 2020, Sec. 5).

    Solves the relaxation of :func:`checkmate_milp`'s model, rounds the storage matrix ``S*``
    (``"threshold"``: ``S = S* >= tau`` for up to ``samples`` thresholds ``tau`` taken from the
    distinct values of ``S*``, plus ``S = 0``; ``"randomized"``: ``samples`` draws ``S ~
    Bernoulli(S*)`` from ``rng``), derives the cheapest computation matrix ``R`` valid for
    each rounded ``S`` (see :func:`_round`), scores every distinct schedule with
    :func:`~frugalml.remat.evaluate.evaluate_schedule`, and keeps the cheapest one within the
    budget.

    Returns a :class:`RematSolution` with ``status="feasible"`` and that schedule, or
    ``status="unknown"``, ``schedule=None`` and ``info["best_peak"]`` (the least peak any
    rounding reached) when none fits; ``"infeasible"`` when the LP itself is infeasible,
    ``"timeout"`` when it did not finish. ``bound`` is the LP optimum, a lower bound on the
    MILP optimum (with the default ``linearisation="tight"`` a higher one than the paper's
    ``"hazard"`` form gives). ``time_limit`` bounds the LP solve. Cost: one LP with ``O(n (n +
    |E|))`` rows (dual simplex), then ``O(samples n (n + |E|))`` rounding and evaluation.
    """
    t0 = time.perf_counter()
    budget, time_limit = _check_common(graph, budget, time_limit, backend)
    check_choice(method, "method", ("threshold", "randomized"))
    samples = check_int(samples, "samples", low=1)
    gen = check_rng(rng) if method == "randomized" else None
    check_choice(linearisation, "linearisation", ("hazard", "tight"))
    model = build_model(graph, budget, linearisation)
    build_seconds = time.perf_counter() - t0
    remaining = None if time_limit is None else max(time_limit - build_seconds, 1e-3)
    res, used = solve_model(
        model, integer=False, time_limit=remaining, mip_rel_gap=0.0, threads=None,
        backend=backend, t0=t0,
    )  # fmt: skip
    info: dict[str, Any] = {
        **model.info(), **res.info, "backend": used, "build_seconds": build_seconds,
        "method": method,
    }  # fmt: skip
    name = f"checkmate_lp_{method}"
    if res.x is None:
        status: Status = res.status if res.status in ("infeasible", "timeout") else "unknown"
        return scored(
            graph, name, status, budget, None, solve_seconds=time.perf_counter() - t0, info=info
        )
    lp_bound = res.objective * model.cost_scale if res.objective is not None else None
    info["lp_seconds"] = time.perf_counter() - t0
    s_star = np.clip(model.s_values(res.x), 0.0, 1.0)
    if method == "threshold":
        values = np.unique(np.round(s_star[s_star > 1e-6], 6))
        if values.size > samples:
            values = np.unique(np.quantile(values, np.linspace(0.0, 1.0, samples)))
        taus = np.concatenate([values - 1e-7, [np.inf]])
        masks = s_star[None, :] >= taus[:, None]
        info["thresholds"] = int(taus.size)
    else:
        assert gen is not None
        masks = gen.random((samples, s_star.size)) < s_star[None, :]
    R = _round(graph, masks)
    nodes = stage_nodes(graph.n)
    R_unique = np.unique(R, axis=0)
    best: tuple[float, int, np.ndarray] | None = None
    least_peak: int | None = None
    fits = 0
    for row in R_unique:
        sched = nodes[row]
        rep = evaluate_schedule(graph, sched)
        least_peak = rep.peak_memory if least_peak is None else min(least_peak, rep.peak_memory)
        if rep.peak_memory <= budget:
            fits += 1
            key = (rep.total_cost, rep.peak_memory)
            if best is None or key < (best[0], best[1]):
                best = (rep.total_cost, rep.peak_memory, sched)
    info.update(candidates=int(masks.shape[0]), distinct_schedules=int(R_unique.shape[0]),
                within_budget=fits, best_peak=least_peak)  # fmt: skip
    solve_seconds = time.perf_counter() - t0
    if best is None:
        return scored(
            graph, name, "unknown", budget, None, bound=lp_bound, solve_seconds=solve_seconds,
            info=info,
        )  # fmt: skip
    return scored(
        graph, name, "feasible", budget, best[2], objective=best[0], bound=lp_bound,
        solve_seconds=solve_seconds, seconds_to_best=solve_seconds,
        trace=((solve_seconds, best[0]),), info=info,
    )  # fmt: skip
