"""Budgets, solver results and solution callbacks shared by every rematerialisation solver.

Callbacks. Solvers that search (MOCCASIN, the Checkmate MILP) take two optional callbacks:
``progress`` is the library's :data:`~frugalml.progress.Progress`, called as
``progress(message, fraction)`` at every improving schedule (message like ``"cost 1.234e+09,
bound 1.1e+09, 12.3 s"``, see :func:`solution_message`; fraction by :func:`solution_fraction`)
and once with ``fraction = 1`` when the solve ends; ``on_solution`` is a
:data:`SolutionCallback`, called as ``on_solution(seconds, cost, bound)`` with the numbers
themselves. The old name of :data:`SolutionCallback`, ``ProgressCallback``, still imports,
and a ``progress`` callback of the old ``(seconds, cost, bound)`` signature still works as
``on_solution``, each with a :class:`~frugalml.errors.FrugalDeprecationWarning`.

Paper: Bartan et al., "Moccasin" (ICML 2023, arXiv 2304.14463): budgets are stated as a fraction
of the peak memory of the plain topological order; objective = total compute including
recomputation.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from .._deprecation import warn_renamed
from .._results import ResultRepr
from ..errors import InfeasibleError, InvalidInputError
from ..progress import Progress
from .evaluate import ScheduleReport, evaluate_schedule, topological_schedule
from .graph import RematGraph

__all__ = [
    "RematSolution",
    "SolutionCallback",
    "Status",
    "check_budget",
    "plain_peak",
    "report_done",
    "resolve_budget",
    "scored",
    "solution_fraction",
    "solution_message",
    "solution_reporter",
]

#: ``"interrupted"``: stopped by Ctrl-C; the schedule (if any) is the best found so far
Status = Literal["optimal", "feasible", "infeasible", "timeout", "unknown", "interrupted"]

#: ``on_solution(seconds, cost, bound)``: called with the seconds since the solve started, the
#: total cost of the new best schedule and the best lower bound on it proven so far (or
#: ``None``), every time a solver finds a better schedule
SolutionCallback = Callable[[float, float, "float | None"], None]


def __getattr__(name: str) -> Any:
    if name == "ProgressCallback":  # renamed: progress= is the library's Progress now
        warn_renamed("ProgressCallback", "SolutionCallback", __name__)
        return SolutionCallback
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def solution_message(seconds: float, cost: float, bound: float | None) -> str:
    """``"cost 1.234e+09, bound 1.1e+09, 12.3 s"`` (no bound part while none is known)."""
    extra = "" if bound is None else f", bound {bound:.4g}"
    return f"cost {cost:.4g}{extra}, {seconds:.1f} s"


def solution_fraction(
    seconds: float, cost: float, bound: float | None, time_limit: float | None
) -> float:
    """How far a search is, in [0, 1]: ``seconds / time_limit`` with a time limit (the solve
    stops then at the latest); without one, ``bound / cost`` (one minus the relative gap; 0
    while no bound is known)."""
    if time_limit is not None and time_limit > 0:
        return min(max(seconds / time_limit, 0.0), 1.0)
    if bound is None:
        return 0.0
    if cost <= 0:
        return 1.0
    return min(max(bound / cost, 0.0), 1.0)


def solution_reporter(
    progress: Progress | None, on_solution: SolutionCallback | None, time_limit: float | None
) -> SolutionCallback | None:
    """One :data:`SolutionCallback` for a solver to call at every improving schedule: it calls
    ``on_solution`` with the numbers and ``progress`` with :func:`solution_message` and
    :func:`solution_fraction`. ``None`` when both are ``None``.

    A ``progress`` of the old signature ``(seconds, cost, bound)`` (one that cannot take
    ``(message, fraction)``) is used as ``on_solution``, with a
    :class:`~frugalml.errors.FrugalDeprecationWarning`, for one release.
    """
    if progress is not None and _takes_solutions(progress):
        # a callback of the old progress=(seconds, cost, bound) signature
        if on_solution is not None:
            raise InvalidInputError(
                "progress takes (seconds, cost, bound), the signature of on_solution, and "
                "on_solution is given too; pass a progress(message, fraction) callback"
            )
        warn_renamed("progress", "on_solution", "a (seconds, cost, bound) callback", stacklevel=4)
        progress, on_solution = None, progress
    if progress is None and on_solution is None:
        return None

    def report(seconds: float, cost: float, bound: float | None) -> None:
        if on_solution is not None:
            on_solution(seconds, cost, bound)
        if progress is not None:
            progress(
                solution_message(seconds, cost, bound),
                solution_fraction(seconds, cost, bound, time_limit),
            )

    return report


def _takes_solutions(callback: Any) -> bool:
    """True for a callback that takes ``(seconds, cost, bound)`` but not ``(message, fraction)``
    (the old ``progress=`` of this area)."""
    try:
        sig = inspect.signature(callback)
    except (TypeError, ValueError):  # no signature (some builtins): take it as a Progress
        return False
    try:
        sig.bind("", 0.0)
    except TypeError:
        pass
    else:
        return False
    try:
        sig.bind(0.0, 0.0, None)
    except TypeError:
        return False
    return True


def report_done(progress: Progress | None, solution: RematSolution) -> None:
    """The last ``progress`` call of a solve: ``"<solver> <status>: cost ..., <s> s"``, 1.0
    (none for a callback of the old ``(seconds, cost, bound)`` signature)."""
    if progress is None or _takes_solutions(progress):
        return
    r = solution.report
    what = "no schedule" if r is None else f"cost {r.total_cost:.4g}"
    progress(f"{solution.solver} {solution.status}: {what}, {solution.solve_seconds:.1f} s", 1.0)


def plain_peak(graph: RematGraph) -> int:
    """Peak memory of the plain topological order (no rematerialisation)."""
    return evaluate_schedule(graph, topological_schedule(graph)).peak_memory


def resolve_budget(graph: RematGraph, budget: float) -> int:
    """Bytes from a budget: ``0 < budget <= 1`` is a fraction of :func:`plain_peak`, a
    value ``> 1`` is an absolute number of bytes. Raises :class:`InfeasibleError` below
    :attr:`RematGraph.min_budget` (stating it)."""
    if isinstance(budget, bool) or not isinstance(budget, (int, float, np.integer, np.floating)):
        raise InvalidInputError(f"budget must be a number, got {budget!r}")
    budget = float(budget)
    if not math.isfinite(budget) or budget <= 0:
        raise InvalidInputError(
            f"budget must be > 0 (a fraction of the plain peak in (0, 1], or bytes), got {budget}"
        )
    peak = plain_peak(graph)
    # (rounded first: 0.29 * 100 is 28.999999999999996 in binary floating point)
    value = math.floor(round(budget * peak, 6)) if budget <= 1.0 else math.floor(budget)
    return check_budget(graph, value)


def check_budget(graph: RematGraph, budget_bytes: int) -> int:
    """Raise :class:`InfeasibleError` if no schedule can fit in ``budget_bytes``."""
    need = graph.min_budget
    if budget_bytes < need:
        peak = plain_peak(graph)
        raise InfeasibleError(
            f"a memory budget of {budget_bytes} is infeasible for {graph.name or 'this graph'}: "
            f"the minimum is {need} ({need / peak:.1%} of the plain peak {peak}), the largest "
            "memory any single node needs together with its inputs; raise the budget to at "
            "least that"
        )
    return int(budget_bytes)


@dataclass(frozen=True, repr=False)
class RematSolution(ResultRepr):
    """A schedule found by a solver, scored by the common evaluator.

    ``schedule`` is ``None`` only when no schedule was found (``status`` says why; ``bound`` is
    the best lower bound on the total cost the solver proved, if any). ``objective`` is the
    solver's own value of its model; ``report`` the evaluator's (authoritative) one.
    ``trace``: ``(seconds, total cost)`` of each improving schedule.
    """

    solver: str
    status: Status
    budget: int
    schedule: np.ndarray | None
    report: ScheduleReport | None
    objective: float | None = None
    bound: float | None = None
    solve_seconds: float = 0.0
    seconds_to_best: float | None = None
    trace: tuple[tuple[float, float], ...] = ()
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def feasible(self) -> bool:
        return self.report is not None and self.report.peak_memory <= self.budget

    @property
    def proven_optimal(self) -> bool:
        return self.status == "optimal"

    def summary(self) -> str:
        head = f"{self.solver}: {self.status} in {self.solve_seconds:.2f}s, budget {self.budget}"
        if self.report is None:
            bound = f"; best bound {self.bound:g}" if self.bound is not None else ""
            return f"{head}; no schedule{bound}"
        return f"{head}; {self.report.summary()}"

    def to_dict(self) -> dict[str, Any]:
        r = self.report
        return {
            "solver": self.solver,
            "status": self.status,
            "budget": self.budget,
            "schedule": None if self.schedule is None else [int(v) for v in self.schedule],
            "peak_memory": None if r is None else r.peak_memory,
            "total_cost": None if r is None else r.total_cost,
            "overhead": None if r is None else r.overhead,
            "recomputations": None if r is None else r.recomputations,
            "objective": self.objective,
            "bound": self.bound,
            "solve_seconds": self.solve_seconds,
            "seconds_to_best": self.seconds_to_best,
            "trace": [list(p) for p in self.trace],
            "info": self.info,
        }


def scored(
    graph: RematGraph,
    solver: str,
    status: Status,
    budget: int,
    schedule: np.ndarray | None,
    **kwargs: Any,
) -> RematSolution:
    """Build a :class:`RematSolution`, scoring ``schedule`` with the common evaluator."""
    report = None
    if schedule is not None:
        schedule = np.asarray(schedule, dtype=np.int64)
        report = evaluate_schedule(graph, schedule)
    return RematSolution(solver, status, budget, schedule, report, **kwargs)
