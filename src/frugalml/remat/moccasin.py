"""MOCCASIN: rematerialisation as a constraint program with O(n) integer variables.

Paper: Bartan, Li, Teague, Lott, Dilkina, "Moccasin: Efficient Tensor Rematerialization for
Neural Networks" (ICML 2023, arXiv 2304.14463), Sec. 3. Solver: OR-Tools CP-SAT.

Model (our formulation of the paper's idea). Each node ``v`` may be computed up to ``C`` times;
copy ``c`` is an optional *retention interval* ``[start, end)`` with a presence literal: the
value is computed at ``start`` and held through ``end - 1``. Time is discretised by stages tied
to the topological order, as in Checkmate's frontier-advancing schedules: stage ``t`` ends with
the first computation of node ``t``, and any node ``j < t`` may be recomputed inside it, at time
``t n + j``. So the first copy of ``v`` starts at ``v n + v`` (fixed, always present) and a
recomputation copy picks its stage ``t > v`` (one integer), which keeps recomputations inside a
stage in topological order and makes every start time distinct: the solution *is* a sequence.

- precedence, one **reservoir** per edge ``(u, v)``: ``+1`` at ``start_u + 1`` and ``-1`` at
  ``end_u`` for every copy of ``u``; ``-1`` at ``start_v`` and ``+1`` at ``start_v + 1`` for
  every copy of ``v``; level ``>= 0`` means some copy of ``u`` is resident whenever ``v`` runs;
- memory, one **cumulative** over all intervals with demand = output size and capacity = budget
  (the interval of ``v`` covers its own step, so the memory of a step includes the output being
  written and every held input — exactly the evaluator's model);
- copies of a node are ordered and disjoint (``start_{c+1} >= end_c``, ``present_{c+1} =>
  present_c``); a node without consumers is computed once;
- objective: total compute, ``sum_v cost_v * (number of present copies of v)``.

Sizes and durations are divided by their GCDs (durations that are not integers, or whose range
is too wide for exact integer arithmetic, are rounded to at most ``cost_resolution`` levels; the
evaluator then reports the exact cost). The solve has two phases: first any schedule within the
budget, then that schedule as a hint while minimising cost. ``expand_reservoir_constraints`` is
off by default (presolve expansion of the E reservoirs dominates the solve time on large graphs).

Size: ``n C`` copies with 3 integers and 1 literal each, ``|E|`` reservoirs of ``4 C`` events, one
cumulative of ``n C`` intervals.
"""

from __future__ import annotations

import math
import os
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from functools import reduce
from typing import Any

import numpy as np

from .._deprecation import renamed_parameters
from .._optional import require
from .._resources import check_memory
from .._validate import check_choice, check_int, check_positive_float, seed_from_rng
from ..errors import InvalidInputError
from ..progress import Progress
from ._interrupt import SolveInterrupt
from .evaluate import ScheduleReport, evaluate_schedule
from .graph import RematGraph
from .greedy import best_greedy_schedule, stage_form
from .solution import (
    RematSolution,
    SolutionCallback,
    check_budget,
    report_done,
    scored,
    solution_reporter,
)

__all__ = ["MoccasinSolver", "check_hints", "moccasin"]


def _gcd(values: np.ndarray) -> int:
    nz = [int(v) for v in values if v > 0]
    return reduce(math.gcd, nz, 0) or 1


def integer_costs(cost: np.ndarray, resolution: int) -> tuple[np.ndarray, float]:
    """Integer durations ``k`` with ``cost ~= k * unit``: exact (``/ gcd``) when the costs are
    integers below ``resolution``-ish, else rounded to ``resolution`` levels of the largest
    (a nonzero cost never rounds to zero). Returns ``(k, unit)``."""
    if np.all(cost == np.round(cost)) and cost.max() < 2**40:
        g = _gcd(cost)
        k = np.round(cost / g).astype(np.int64)
        if k.max() <= resolution:
            return k, float(g)
    unit = float(cost.max()) / resolution if cost.max() > 0 else 1.0
    k = np.round(cost / unit).astype(np.int64)
    k[(cost > 0) & (k == 0)] = 1
    return k, unit


@dataclass
class _Copy:
    node: int
    start: Any  # IntVar or int
    size: Any
    end: Any
    present: Any  # BoolVar or True
    stage: Any  # IntVar or int (recomputation copies)


#: graphs of at least this many nodes are solved with a light CP-SAT presolve
LIGHT_PRESOLVE_NODES = 500


class _OutOfTime(Exception):
    """The time limit passed while a model was being built."""


def _check_time(deadline: float | None, i: int) -> None:
    if deadline is not None and i % 64 == 0 and time.perf_counter() > deadline:
        raise _OutOfTime


class MoccasinSolver:
    """The MOCCASIN constraint program for one graph (build once, solve at several budgets).

    Parameters
    ----------
    graph:
        The computation graph.
    copies:
        ``C``, the most computations of one node (``>= 1``; ``1`` = no rematerialisation).
    cost_resolution:
        Integer levels for durations that cannot be used exactly (see module docstring).
    """

    def __init__(
        self,
        graph: RematGraph,
        *,
        copies: int = 2,
        cost_resolution: int = 100_000,
        precedence: str = "reservoir",
        phase1_precedence: str = "boolean",
    ):
        if not isinstance(graph, RematGraph):
            raise InvalidInputError(f"graph must be a RematGraph, got {type(graph).__name__}")
        self.graph = graph
        self.copies = check_int(copies, "copies", low=1)
        self.cost_resolution = check_int(cost_resolution, "cost_resolution", low=1)
        self.mem_unit = _gcd(graph.memory)
        self.cost_int, self.cost_unit = integer_costs(graph.cost, self.cost_resolution)
        kinds = ("reservoir", "boolean", "both")
        self.precedence = check_choice(precedence, "precedence", kinds)
        self.phase1_precedence = check_choice(phase1_precedence, "phase1_precedence", kinds)

    # -- model --------------------------------------------------------------------------------
    def _build(
        self,
        budget: int,
        cp_model: Any,
        *,
        relax_to: int | None = None,
        precedence: str | None = None,
        deadline: float | None = None,
    ) -> tuple[Any, list[list[_Copy]]]:
        """The model at ``budget`` bytes; with ``relax_to``, the capacity is a variable
        ``model.peak`` in ``[budget, relax_to]`` (memory units) instead. Raises
        :class:`_OutOfTime` once ``time.perf_counter()`` passes ``deadline``."""
        g, n, C = self.graph, self.graph.n, self.copies
        model = cp_model.CpModel()
        horizon = n * n  # times t n + j, 0 <= j <= t < n; ends are exclusive, <= n^2
        mem = (g.memory // self.mem_unit).astype(np.int64)
        cap = budget // self.mem_unit
        succs = g.succs
        copies: list[list[_Copy]] = []
        for v in range(n):
            _check_time(deadline, v)
            own = v * n + v
            last_use = max((k + (n - 1) * n for k in succs[v]), default=own)
            # (the last stage is n - 1, where node k runs at (n-1) n + k)
            row: list[_Copy] = []
            size = model.new_int_var(1, last_use - own + 1, f"sz{v}_0")
            row.append(_Copy(v, own, size, size + own, True, v))
            n_copies = C if succs[v] and v < n - 1 else 1
            for c in range(1, n_copies):
                stage = model.new_int_var(v + 1, n - 1, f"st{v}_{c}")
                start = model.new_int_var((v + 1) * n + v, horizon, f"s{v}_{c}")
                model.add(start == n * stage + v)
                size = model.new_int_var(1, max(last_use - (v + 1) * n - v + 1, 1), f"sz{v}_{c}")
                end = model.new_int_var(0, horizon, f"e{v}_{c}")
                present = model.new_bool_var(f"p{v}_{c}")
                row.append(_Copy(v, start, size, end, present, stage))
            for c in range(1, len(row)):
                prev, cur = row[c - 1], row[c]
                if c > 1:
                    model.add_implication(cur.present, prev.present)
                # the next copy starts after the previous one is freed (disjoint retention)
                model.add(cur.start >= prev.end).only_enforce_if(cur.present)
                model.add(cur.stage == v + 1).only_enforce_if(~cur.present)
                model.add(cur.size == 1).only_enforce_if(~cur.present)
            copies.append(row)
        intervals, demands = [], []
        for v in range(n):
            for c, cp in enumerate(copies[v]):
                if c == 0:
                    iv = model.new_interval_var(cp.start, cp.size, cp.end, f"i{v}_{c}")
                else:
                    iv = model.new_optional_interval_var(
                        cp.start, cp.size, cp.end, cp.present, f"i{v}_{c}"
                    )
                if not succs[v] and c == 0:
                    model.add(cp.size == 1)  # nothing reads it: freed after its own step
                intervals.append(iv)
                demands.append(int(mem[v]))
        capacity: Any = int(cap)
        if relax_to is not None:
            capacity = model.new_int_var(int(cap), max(int(relax_to // self.mem_unit), int(cap)),
                                         "peak")  # fmt: skip
        model.peak = capacity
        model.add_cumulative(intervals, demands, capacity)
        precedence = precedence or self.precedence
        if precedence in ("boolean", "both"):
            self._boolean_precedence(model, copies, deadline)
        if precedence == "boolean":
            return model, copies
        for e, (u, v) in enumerate(g.edges):
            _check_time(deadline, e)
            times, changes, actives = [], [], []
            for cu in copies[u]:
                times += [cu.start + 1, cu.end]
                changes += [1, -1]
                actives += [cu.present, cu.present]
            for cv in copies[v]:
                times += [cv.start, cv.start + 1]
                changes += [-1, 1]
                actives += [cv.present, cv.present]
            model.add_reservoir_constraint_with_active(
                times, changes, actives, 0, len(copies[u]) + len(copies[v])
            )
        return model, copies

    def _boolean_precedence(
        self, model: Any, copies: list[list[_Copy]], deadline: float | None = None
    ) -> None:
        # for each copy of v, one copy of u is chosen to serve it: that copy starts before
        # v's step and is held through it
        for e, (u, v) in enumerate(self.graph.edges):
            _check_time(deadline, e)
            for cv in copies[v]:
                serve = []
                for c, cu in enumerate(copies[u]):
                    lit = cv.present if len(copies[u]) == 1 else model.new_bool_var(f"x{u}_{c}_{v}")
                    if len(copies[u]) > 1:
                        serve.append(lit)
                        if c > 0:
                            model.add_implication(lit, cu.present)
                    model.add(cu.start + 1 <= cv.start).only_enforce_if(lit)
                    model.add(cu.end >= cv.start + 1).only_enforce_if(lit)
                if serve:
                    if cv.present is True:
                        model.add_exactly_one(serve)
                    else:
                        model.add(sum(serve) == 1).only_enforce_if(cv.present)
                        model.add(sum(serve) == 0).only_enforce_if(~cv.present)

    def _objective(self, copies: list[list[_Copy]]) -> Any:
        terms = []
        for v, row in enumerate(copies):
            k = int(self.cost_int[v])
            for c, cp in enumerate(row):
                if c > 0 and k:
                    terms.append(k * cp.present)
        return sum(terms) if terms else 0

    # -- solving ------------------------------------------------------------------------------
    @renamed_parameters(workers="threads", seed="rng")
    def solve(
        self,
        budget: int,
        *,
        time_limit: float | None = 60.0,
        threads: int | None = None,
        progress: Progress | None = None,
        on_solution: SolutionCallback | None = None,
        expand_reservoir_constraints: bool = False,
        feasibility_fraction: float = 1.0,
        rng: int | np.random.Generator = 0,
        warm_start: bool = True,
        hints: Sequence[Sequence[int] | np.ndarray] = (),
    ) -> RematSolution:
        """Minimise total compute within ``budget`` bytes (already resolved, see
        :func:`~frugalml.remat.solution.resolve_budget`).

        ``time_limit`` (seconds, ``None`` = no limit) covers both phases; the feasibility phase
        may use up to ``feasibility_fraction`` of it (default all: it stops by itself as soon as
        a schedule fits, and without one there is nothing to optimise) and the optimisation
        phase the rest.
        ``warm_start``: try the greedy heuristics
        (:func:`~frugalml.remat.greedy.best_greedy_schedule`, its local search for at most a
        quarter of ``time_limit`` and 5 s) first and skip the CP feasibility phase when one
        fits. ``hints``: seed schedules (sequences of node indices, e.g. the
        schedules of other solvers or of other budgets); each is checked by
        :func:`~frugalml.remat.evaluate.evaluate_schedule` (an invalid one raises
        :class:`~frugalml.errors.InvalidInputError` naming its index). The cheapest schedule
        that fits the budget, among the hints and the greedy ones, is the warm start of the
        optimisation phase and the feasibility phase is skipped; when none fits, the hint of
        least peak (instead of the plain order) seeds the feasibility phase. A hint the model
        cannot express (first computations out of the graph's order, more than ``C``
        computations of a node, see :func:`~frugalml.remat.greedy.stage_form`) is still
        kept: the result is never costlier than the cheapest fitting hint. ``threads``: CP-SAT
        search workers (its ``num_workers``; default: the CPU count). ``rng``: CP-SAT's
        ``random_seed``, an ``int`` used as is (``0`` by default; with one thread the search is
        then deterministic) or a Generator that draws one
        (:func:`~frugalml._validate.seed_from_rng`).
        ``progress(message, fraction)`` is called on every improving schedule and once with
        fraction 1 at the end, ``on_solution(seconds, cost, bound)`` on every improving
        schedule (see :mod:`frugalml.remat.solution`). Status ``"optimal"`` means proven
        optimal for this model (at most ``C`` computations per node, recomputations at stage
        granularity, the graph's topological order for first computations). The old keywords
        ``workers=`` and ``seed=`` still work, with a deprecation warning.
        """
        cp_model = require("ortools.sat.python.cp_model", what="the MOCCASIN solver", extra="remat")
        budget = check_budget(self.graph, int(budget))
        if time_limit is not None:
            time_limit = check_positive_float(time_limit, "time_limit")
        if not 0.0 < feasibility_fraction <= 1.0:
            raise InvalidInputError("feasibility_fraction must be in (0, 1]")
        threads = check_int(threads if threads is not None else (os.cpu_count() or 1),
                            "threads", low=1)  # fmt: skip
        if rng is not None and not isinstance(rng, np.random.Generator):
            rng = check_int(rng, "rng", low=0, high=2**31 - 1)  # CP-SAT's random_seed: int32
        seed = seed_from_rng(rng)
        hint_list = check_hints(self.graph, hints)
        check_memory(
            self.model_bytes(threads),
            f"the MOCCASIN model of {self.graph.n} nodes and {len(self.graph.edges)} edges with "
            f"{self.copies} copies per node ({threads} CP-SAT workers)",
            fix="use a smaller graph, fewer copies (--copies) or fewer threads (--threads)",
        )
        notify = solution_reporter(progress, on_solution, time_limit)
        guard = SolveInterrupt()
        run: dict[str, Any] = {"t0": time.perf_counter(), "values": None, "trace": [],
                               "info": {}}  # fmt: skip
        with guard:
            try:
                sol = self._solve(cp_model, guard, run, budget, time_limit, threads, notify,
                                  expand_reservoir_constraints, feasibility_fraction, seed,
                                  warm_start, hint_list)  # fmt: skip
            except KeyboardInterrupt:
                if not guard.interrupted:
                    raise
                # Ctrl-C outside a CP-SAT call (building the model, the greedy start)
                sol = self._interrupted(run, budget)
        report_done(progress, sol)
        return sol

    @renamed_parameters(workers="threads")
    def model_bytes(self, threads: int = 1) -> float:
        """Rough memory (bytes) of the CP model: Python objects while building it, and the
        CP-SAT copies (presolve and each of ``threads`` search workers): ~600 bytes per copy of
        a node and ~3 kB per copy pair of an edge (reservoir/precedence terms)."""
        n_copies = self.graph.n * self.copies
        pairs = len(self.graph.edges) * self.copies * self.copies
        per_model = 600.0 * n_copies + 3000.0 * pairs
        return per_model * (3 + threads)

    def _out_of_time(
        self, run: dict[str, Any], budget: int, warm: np.ndarray | None
    ) -> RematSolution:
        """The time limit passed while building a CP model: the greedy schedule if it fits
        (status ``"feasible"``), else no schedule (``"timeout"``)."""
        info = {**run["info"], "reason": "the time limit passed while building the CP model"
                + ("; the best greedy or hinted schedule is returned" if warm is not None
                   else "")}  # fmt: skip
        seconds = time.perf_counter() - run["t0"]
        if warm is None:
            return scored(self.graph, "moccasin", "timeout", budget, None,
                          bound=float(self.graph.total_cost), solve_seconds=seconds,
                          info=info)  # fmt: skip
        return scored(self.graph, "moccasin", "feasible", budget, warm, solve_seconds=seconds,
                      seconds_to_best=seconds, info=info)  # fmt: skip

    def _interrupted(self, run: dict[str, Any], budget: int) -> RematSolution:
        """The best schedule found before Ctrl-C, checked by the evaluator (a schedule that
        does not fit is never reported)."""
        values = run["values"]
        trace = run["trace"]
        schedule = None
        if values is not None:
            warm = run.get("warm")
            schedule = warm[1] if warm is not None and warm[0] is values else self._schedule(values)
            if evaluate_schedule(self.graph, schedule).peak_memory > budget:
                schedule, values = None, None
        fallback = run.get("fallback")
        if fallback is not None and (
            schedule is None or fallback[0] < evaluate_schedule(self.graph, schedule).total_cost
        ):
            schedule = fallback[1]
        return scored(
            self.graph, "moccasin", "interrupted", budget, schedule,
            solve_seconds=time.perf_counter() - run["t0"],
            seconds_to_best=trace[-1][0] if trace else None, trace=tuple(trace),
            info={**run["info"], "interrupted": True,
                  "reason": "stopped by Ctrl-C (SIGINT): the best schedule found so far, "
                  "not proven optimal"},
        )  # fmt: skip

    def _solve(
        self,
        cp_model: Any,
        guard: SolveInterrupt,
        run: dict[str, Any],
        budget: int,
        time_limit: float | None,
        threads: int,
        notify: SolutionCallback | None,
        expand_reservoir_constraints: bool,
        feasibility_fraction: float,
        seed: int,
        warm_start: bool,
        hint_list: list[tuple[np.ndarray, Any]],
    ) -> RematSolution:
        t0 = run["t0"]
        deadline = None if time_limit is None else t0 + time_limit
        # the greedy heuristics first (milliseconds) and the hints: schedules to fall back on
        seeds: list[tuple[str, np.ndarray, Any]] = [
            (f"hint {i}", h, rep) for i, (h, rep) in enumerate(hint_list)
        ]
        if warm_start:
            g_sched = best_greedy_schedule(
                self.graph, budget, copies=self.copies,
                time_limit=5.0 if time_limit is None else min(5.0, 0.25 * time_limit),
            )  # fmt: skip
            if g_sched is not None:
                seeds.append(("greedy", g_sched, evaluate_schedule(self.graph, g_sched)))
        # the model's own form of each seed (None: the model cannot express it)
        forms: list[tuple[str, np.ndarray, Any]] = []
        for what, sched, _ in seeds:
            form = self._model_form(sched)
            if form is not None:
                forms.append((what, form, evaluate_schedule(self.graph, form)))
        fitting = [x for x in seeds if x[2].peak_memory <= budget]
        fit_forms = [x for x in forms if x[2].peak_memory <= budget]
        best_seed = min(fitting, key=lambda x: (x[2].total_cost, x[2].peak_memory), default=None)
        warm_seed = min(fit_forms, key=lambda x: (x[2].total_cost, x[2].peak_memory),
                        default=None)  # fmt: skip
        warm = None if warm_seed is None else warm_seed[1]
        if best_seed is not None and (
            warm_seed is None or best_seed[2].total_cost < warm_seed[2].total_cost
        ):
            # a fitting hint the model cannot express, cheaper than any it can: returned
            # unless the search finds better
            run["fallback"] = (best_seed[2].total_cost, best_seed[1])
        try:
            model, copies = self._build(budget, cp_model, deadline=deadline)
        except _OutOfTime:
            return self._out_of_time(run, budget, None if best_seed is None else best_seed[1])
        build_s = time.perf_counter() - t0
        run["info"] = self._info(model, build_s)
        n_base = float(self.graph.total_cost)
        trace: list[tuple[float, float]] = run["trace"]
        best = run  # best["values"]: the best schedule's model values so far
        lock = threading.Lock()

        def record(values: dict[str, Any], bound: float | None) -> None:
            cost = self._exact_cost(values["present"])
            with lock:
                if trace and cost >= trace[-1][1]:
                    return
                trace.append((time.perf_counter() - t0, cost))
                best["values"] = values
            if notify is not None:
                notify(time.perf_counter() - t0, cost, bound)

        class _Callback(cp_model.CpSolverSolutionCallback):
            def __init__(self, outer: MoccasinSolver) -> None:
                super().__init__()
                self.outer = outer

            def on_solution_callback(self) -> None:
                vals = self.outer._read(self, copies)
                bound = None
                try:
                    bound = n_base + self.best_objective_bound * self.outer.cost_unit
                except Exception:  # feasibility phase has no objective
                    bound = None
                record(vals, bound)

        def params(limit: float | None) -> Any:
            solver = cp_model.CpSolver()
            p = solver.parameters
            p.num_workers = threads
            p.random_seed = int(seed)
            p.expand_reservoir_constraints = bool(expand_reservoir_constraints)
            p.catch_sigint_signal = False  # SolveInterrupt stops the search and says so
            if self.graph.n >= LIGHT_PRESOLVE_NODES:
                # measured on a 1000-node random graph: full presolve (probing, symmetry) took
                # > 30 s before the hinted schedule was even loaded; light presolve loads it
                # in ~3 s and leaves the time to the LNS workers that improve it
                p.cp_model_probing_level = 0
                p.symmetry_level = 0
                p.max_presolve_iterations = 1
            if limit is not None:
                p.max_time_in_seconds = max(limit, 0.01)
            return solver

        # phase 1: any schedule within the budget. The greedy heuristic first (checked by the
        # evaluator, then a complete hint); else CP-SAT minimises the peak from the plain
        # order (always a solution) down to the budget, which it finds far more easily than
        # a bare feasibility search.
        phase1_peak = None
        fallback = run.get("fallback")
        if warm is not None or fallback is not None:
            status_name = "GREEDY" if best_seed is not None and best_seed[0] == "greedy" else "HINT"
            if warm is not None:
                warm_values = self._values_from_schedule(warm, copies)
                record(warm_values, None)
                run["warm"] = (warm_values, warm)  # (its model values are a hint, not exact)
            if fallback is not None:
                trace.append((time.perf_counter() - t0, fallback[0]))
                if notify is not None:
                    notify(time.perf_counter() - t0, fallback[0], None)
        else:
            plain = evaluate_schedule(self.graph, np.arange(self.graph.n)).peak_memory
            try:
                model1, copies1 = self._build(budget, cp_model, relax_to=plain,
                                              precedence=self.phase1_precedence,
                                              deadline=deadline)  # fmt: skip
            except _OutOfTime:
                return self._out_of_time(run, budget, None)
            model1.minimize(model1.peak)
            # from the seed of least peak the model can express (else the plain order)
            start = min(forms, key=lambda x: (x[2].peak_memory, x[2].total_cost), default=None)
            start_sched = np.arange(self.graph.n) if start is None else start[1]
            self._hint(model1, copies1, self._values_from_schedule(start_sched, copies1))
            cap_units = budget // self.mem_unit
            lowest = {"peak": None}
            outer = self

            class _Phase1(cp_model.CpSolverSolutionCallback):
                def on_solution_callback(self) -> None:
                    peak = int(self.value(model1.peak))
                    lowest["peak"] = peak * outer.mem_unit
                    if peak <= cap_units:
                        record(outer._read(self, copies1), None)

            limit1 = None
            if deadline is not None:
                limit1 = max(deadline - time.perf_counter(), 0.01) * feasibility_fraction
            s1 = params(limit1)
            with guard.solving(s1.stop_search):
                st1 = s1.solve(model1, _Phase1())
            status_name = s1.status_name(st1)
            if guard.interrupted:
                return self._interrupted(run, budget)
            if status_name == "OPTIMAL" and best["values"] is None:
                status_name = "INFEASIBLE"  # the least peak within the model is over budget
            phase1_peak = lowest["peak"]
        if status_name == "INFEASIBLE":
            return scored(
                self.graph, "moccasin", "infeasible", budget, None,
                solve_seconds=time.perf_counter() - t0,
                info={**self._info(model, build_s), "phase1": status_name,
                      "reason": f"no schedule with at most {self.copies} computations per node "
                      "fits the budget (raise the budget or the copies C)"},
            )  # fmt: skip
        if best["values"] is None and run.get("fallback") is None:
            return scored(
                self.graph, "moccasin", "timeout", budget, None,
                solve_seconds=time.perf_counter() - t0, bound=n_base,
                info={**self._info(model, build_s), "phase1": status_name,
                      "least_peak_found": phase1_peak if warm is None else None},
            )  # fmt: skip
        # phase 2: minimise total compute, hinted with the best schedule so far
        model.minimize(self._objective(copies))
        if best["values"] is not None:
            self._hint(model, copies, best["values"])
        left = None if time_limit is None else max(time_limit - (time.perf_counter() - t0), 0.01)
        s2 = params(left)
        with guard.solving(s2.stop_search):
            st2 = s2.solve(model, _Callback(self))
        name2 = s2.status_name(st2)
        if name2 in ("OPTIMAL", "FEASIBLE"):
            with lock:
                vals = self._read(s2, copies)
            record(vals, None)
        if guard.interrupted and name2 != "OPTIMAL":
            return self._interrupted(run, budget)
        bound = None
        if name2 in ("OPTIMAL", "FEASIBLE"):
            bound = n_base + s2.best_objective_bound * self.cost_unit
        status = "optimal" if name2 == "OPTIMAL" else "feasible"
        values = best["values"]
        fallback = run.get("fallback")
        if values is not None and (fallback is None or self._model_cost(values) <= fallback[0]):
            schedule, objective = self._schedule(values), self._model_cost(values)
        else:  # the hint the model cannot express is still the cheapest
            assert fallback is not None
            schedule, objective = fallback[1], fallback[0]
            if status == "optimal":  # optimal within the model, which this hint lies outside
                status = "feasible"
        return scored(
            self.graph, "moccasin", status, budget, schedule,
            objective=objective,
            bound=bound, solve_seconds=time.perf_counter() - t0,
            seconds_to_best=trace[-1][0] if trace else None, trace=tuple(trace),
            info={**self._info(model, build_s), "phase1": status_name, "phase2": name2},
        )  # fmt: skip

    # -- hints --------------------------------------------------------------------------------
    def _model_form(self, schedule: np.ndarray) -> np.ndarray | None:
        """``schedule`` as this model can express it (its stage form, at most ``C``
        computations of a node, one of a node nobody reads), or ``None``."""
        form = stage_form(self.graph, schedule)
        if form is None:
            return None
        counts = np.bincount(form, minlength=self.graph.n)
        if counts.max() > self.copies:
            return None
        succs = self.graph.succs
        n = self.graph.n
        if any(counts[v] > 1 for v in range(n) if not succs[v] or v == n - 1):
            return None
        return form

    # -- helpers ------------------------------------------------------------------------------
    def _info(self, model: Any, build_s: float) -> dict[str, Any]:
        proto = model.proto
        return {
            "copies": self.copies,
            "variables": len(proto.variables),
            "constraints": len(proto.constraints),
            "build_seconds": build_s,
            "memory_unit": self.mem_unit,
            "cost_unit": self.cost_unit,
        }

    @staticmethod
    def _read(solver: Any, copies: list[list[_Copy]]) -> dict[str, Any]:
        starts, present, ends = [], [], []
        for row in copies:
            for c, cp in enumerate(row):
                on = True if c == 0 else bool(solver.boolean_value(cp.present))
                present.append((cp.node, c, on))
                s = cp.start if c == 0 else int(solver.value(cp.start))
                starts.append(int(s))
                ends.append(int(solver.value(cp.end)))
        return {"starts": starts, "present": present, "ends": ends,
                "stages": [int(solver.value(cp.stage)) if c else cp.node
                           for row in copies for c, cp in enumerate(row)]}  # fmt: skip

    def _exact_cost(self, present: list[tuple[int, int, bool]]) -> float:
        return float(sum(self.graph.cost[v] for v, _, on in present if on))

    def _model_cost(self, values: dict[str, Any]) -> float:
        return self._exact_cost(values["present"])

    def _schedule(self, values: dict[str, Any]) -> np.ndarray:
        items = sorted(
            (s, v) for s, (v, _, on) in zip(values["starts"], values["present"], strict=True) if on
        )
        return np.array([v for _, v in items], dtype=np.int64)

    def _values_from_schedule(
        self, schedule: np.ndarray, copies: list[list[_Copy]]
    ) -> dict[str, Any]:
        """Model values of a stage-form schedule (a recomputation belongs to the stage of the
        next first computation after it)."""
        g, n = self.graph, self.graph.n
        seen = np.zeros(n, dtype=bool)
        first = np.zeros(len(schedule), dtype=bool)  # the first computation of its node
        for p, v in enumerate(schedule):
            if not seen[v]:
                first[p] = seen[v] = True
        stage_of = np.empty(len(schedule), dtype=np.int64)
        nxt = n - 1
        for p in range(len(schedule) - 1, -1, -1):
            if first[p]:
                nxt = int(schedule[p])
            stage_of[p] = nxt
        occ: list[list[int]] = [[] for _ in range(n)]
        cur = np.full(n, -1, dtype=np.int64)  # occurrence index of the live copy of each node
        last = {}
        for p, v in enumerate(schedule):
            v = int(v)
            time_p = int(stage_of[p]) * n + v
            for u in g.preds[v]:
                last[(u, int(cur[u]))] = time_p
            occ[v].append(time_p)
            cur[v] = len(occ[v]) - 1
        starts, present, ends, stages = [], [], [], []
        for v, row in enumerate(copies):
            for c in range(len(row)):
                if c < len(occ[v]):
                    st = occ[v][c]
                    starts.append(st)
                    present.append((v, c, True))
                    ends.append(last.get((v, c), st) + 1)
                    stages.append(st // n)
                else:
                    st = (v + 1) * n + v
                    starts.append(st)
                    present.append((v, c, False))
                    ends.append(st + 1)
                    stages.append(v + 1)
        return {"starts": starts, "present": present, "ends": ends, "stages": stages}

    @staticmethod
    def _hint(model: Any, copies: list[list[_Copy]], values: dict[str, Any]) -> None:
        k = 0
        for row in copies:
            for c, cp in enumerate(row):
                on = values["present"][k][2]
                if c > 0:
                    model.add_hint(cp.present, on)
                    model.add_hint(cp.stage, values["stages"][k])
                    model.add_hint(cp.start, values["starts"][k])
                    model.add_hint(cp.end, values["ends"][k])
                model.add_hint(cp.size, values["ends"][k] - values["starts"][k])
                k += 1


def check_hints(
    graph: RematGraph, hints: Sequence[Sequence[int] | np.ndarray]
) -> list[tuple[np.ndarray, ScheduleReport]]:
    """Each hint as an int64 array with its :func:`~frugalml.remat.evaluate.evaluate_schedule`
    report; raises :class:`~frugalml.errors.InvalidInputError` naming the index of the first
    invalid one. ``O(total hint length + |E|)`` per hint."""
    if isinstance(hints, (str, bytes)) or not isinstance(hints, (Sequence, np.ndarray)):
        raise InvalidInputError(
            f"hints must be a sequence of schedules, got {type(hints).__name__}"
        )
    out = []
    for i, h in enumerate(hints):
        try:
            arr = np.asarray(h)
            rep = evaluate_schedule(graph, arr)
        except (InvalidInputError, ValueError, TypeError) as exc:
            raise InvalidInputError(
                f"hint {i} is not a valid schedule of {graph.name or 'this graph'}: {exc} "
                "(a hint is a sequence of node indices, e.g. RematSolution.schedule; pass "
                "hints=[schedule] for one)"
            ) from exc
        out.append((arr.astype(np.int64), rep))
    return out


@renamed_parameters(workers="threads", seed="rng")
def moccasin(
    graph: RematGraph,
    budget: int,
    *,
    copies: int = 2,
    time_limit: float | None = 60.0,
    threads: int | None = None,
    progress: Progress | None = None,
    on_solution: SolutionCallback | None = None,
    expand_reservoir_constraints: bool = False,
    rng: int | np.random.Generator = 0,
    hints: Sequence[Sequence[int] | np.ndarray] = (),
) -> RematSolution:
    """One call: build :class:`MoccasinSolver` and solve at ``budget`` bytes (see
    :meth:`MoccasinSolver.solve` for ``threads``, ``rng``, ``hints`` and the callbacks). Cost:
    one CP model build (``O(n C + |E| C^2)``) and up to ``time_limit`` seconds of CP-SAT
    search."""
    return MoccasinSolver(graph, copies=copies).solve(
        budget, time_limit=time_limit, threads=threads, progress=progress,
        on_solution=on_solution, expand_reservoir_constraints=expand_reservoir_constraints,
        rng=rng, hints=hints,
    )  # fmt: skip
