"""One call for the common case: ``solve(graph, budget, solver=...)``.

Paper: Bartan et al., "Moccasin" (ICML 2023, arXiv 2304.14463); baselines from Jain et al.,
"Checkmate" (MLSys 2020) and Chen et al., "Training Deep Nets with Sublinear Memory Cost" (2016).
"""

from __future__ import annotations

from typing import Any, Literal

from .._validate import check_choice
from ..errors import InvalidInputError
from .graph import RematGraph
from .solution import ProgressCallback, RematSolution, resolve_budget

__all__ = ["SOLVERS", "solve"]

SOLVERS = ("moccasin", "checkmate", "lp", "lp-randomized", "greedy", "none", "checkpoint")
Solver = Literal["moccasin", "checkmate", "lp", "lp-randomized", "greedy", "none", "checkpoint"]


def solve(
    graph: RematGraph,
    budget: float,
    *,
    solver: Solver = "moccasin",
    time_limit: float | None = 60.0,
    copies: int = 2,
    workers: int | None = None,
    progress: ProgressCallback | None = None,
    rng: Any = None,
) -> RematSolution:
    """Minimise total compute of ``graph`` within a memory ``budget``.

    ``budget``: a fraction in ``(0, 1]`` of the plain topological order's peak, or bytes
    (``> 1``). ``solver``: ``"moccasin"`` (CP-SAT, default), ``"checkmate"`` (MILP on HiGHS),
    ``"lp"`` / ``"lp-randomized"`` (Checkmate's LP relaxation + deterministic / randomized
    rounding), ``"greedy"``, ``"none"`` (no rematerialisation) or ``"checkpoint"`` (sqrt(n)
    checkpointing of forward chains). ``copies`` (``C``) applies to MOCCASIN and greedy.
    Raises :class:`~frugalml.errors.InfeasibleError` below the minimum budget.
    """
    if not isinstance(graph, RematGraph):
        raise InvalidInputError(f"graph must be a RematGraph, got {type(graph).__name__}")
    solver = check_choice(solver, "solver", SOLVERS)
    b = resolve_budget(graph, budget)
    if solver == "moccasin":
        from .moccasin import moccasin

        return moccasin(graph, b, copies=copies, time_limit=time_limit, workers=workers,
                        progress=progress)  # fmt: skip
    if solver == "checkmate":
        from .checkmate import checkmate_milp

        return checkmate_milp(graph, b, time_limit=time_limit, threads=workers, progress=progress)
    if solver in ("lp", "lp-randomized"):
        from .checkmate import checkmate_lp_rounding

        method = "threshold" if solver == "lp" else "randomized"
        return checkmate_lp_rounding(graph, b, method=method, rng=rng, time_limit=time_limit)
    if solver == "greedy":
        from .greedy import greedy

        return greedy(graph, b, copies=copies)
    if solver == "none":
        from .baselines import no_remat

        return no_remat(graph, b)
    from .baselines import chain_checkpointing

    return chain_checkpointing(graph, b)
