"""One call for the common case: ``solve(graph, budget, solver=...)``.

Paper: Bartan et al., "Moccasin" (ICML 2023, arXiv 2304.14463); baselines from Jain et al.,
"Checkmate" (MLSys 2020) and Chen et al., "Training Deep Nets with Sublinear Memory Cost" (2016).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import numpy as np

from .._deprecation import renamed_parameters
from .._validate import RngLike, check_choice
from ..errors import InvalidInputError
from ..progress import Progress
from .graph import RematGraph
from .solution import RematSolution, SolutionCallback, report_done, resolve_budget

__all__ = ["SOLVERS", "solve"]

SOLVERS = ("moccasin", "checkmate", "lp", "lp-randomized", "greedy", "none", "checkpoint")
Solver = Literal["moccasin", "checkmate", "lp", "lp-randomized", "greedy", "none", "checkpoint"]


@renamed_parameters(workers="threads")
def solve(
    graph: RematGraph,
    budget: float,
    *,
    solver: Solver = "moccasin",
    time_limit: float | None = 60.0,
    copies: int = 2,
    threads: int | None = None,
    progress: Progress | None = None,
    on_solution: SolutionCallback | None = None,
    rng: RngLike = None,
    hints: Sequence[Sequence[int] | np.ndarray] = (),
) -> RematSolution:
    """Minimise total compute of ``graph`` within a memory ``budget``.

    ``budget``: a fraction in ``(0, 1]`` of the plain topological order's peak, or bytes
    (``> 1``). ``solver``: ``"moccasin"`` (CP-SAT, default), ``"checkmate"`` (MILP on HiGHS),
    ``"lp"`` / ``"lp-randomized"`` (Checkmate's LP relaxation + deterministic / randomized
    rounding), ``"greedy"``, ``"none"`` (no rematerialisation) or ``"checkpoint"`` (sqrt(n)
    checkpointing of forward chains). ``copies`` (``C``) applies to MOCCASIN and greedy.
    ``threads``: threads of the solver (CP-SAT's workers, HiGHS's threads; default: CP-SAT uses
    the CPU count, HiGHS its own default). ``rng``: the seed of the randomized rounding
    (``"lp-randomized"``; ``None``: fresh) and of CP-SAT's search (``"moccasin"``; ``None``
    there means seed 0, as in :func:`~frugalml.remat.moccasin.moccasin`).

    ``progress(message, fraction)``: at every improving schedule of MOCCASIN and the Checkmate
    MILP, and once with fraction 1 when any solver is done; ``on_solution(seconds, cost,
    bound)``: at every improving schedule of MOCCASIN and the Checkmate MILP (see
    :mod:`frugalml.remat.solution`). ``hints``: seed schedules of MOCCASIN (e.g. checkpointing
    schedules; the cheapest that fits is its warm start, so the result is never costlier).
    The old keyword ``workers=`` still works, with a
    deprecation warning. Raises :class:`~frugalml.errors.InfeasibleError` below the minimum
    budget.
    """
    if not isinstance(graph, RematGraph):
        raise InvalidInputError(f"graph must be a RematGraph, got {type(graph).__name__}")
    solver = check_choice(solver, "solver", SOLVERS)
    b = resolve_budget(graph, budget)
    if solver == "moccasin":
        from .moccasin import moccasin

        return moccasin(graph, b, copies=copies, time_limit=time_limit, threads=threads,
                        progress=progress, on_solution=on_solution,
                        rng=0 if rng is None else rng, hints=hints)  # fmt: skip
    if len(hints):
        raise InvalidInputError(f"hints are seed schedules of MOCCASIN, not of solver {solver!r}")
    if solver == "checkmate":
        from .checkmate import checkmate_milp

        return checkmate_milp(graph, b, time_limit=time_limit, threads=threads,
                              progress=progress, on_solution=on_solution)  # fmt: skip
    if solver in ("lp", "lp-randomized"):
        from .checkmate import checkmate_lp_rounding

        method = "threshold" if solver == "lp" else "randomized"
        sol = checkmate_lp_rounding(graph, b, method=method, rng=rng, time_limit=time_limit)
    elif solver == "greedy":
        from .greedy import greedy

        sol = greedy(graph, b, copies=copies)
    elif solver == "none":
        from .baselines import no_remat

        sol = no_remat(graph, b)
    else:
        from .baselines import chain_checkpointing

        sol = chain_checkpointing(graph, b)
    report_done(progress, sol)
    return sol
