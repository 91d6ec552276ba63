"""CVXPY for the convex programs of the polynomial networks: the import and the solver options.

Reference: B. Bartan and M. Pilanci, "Neural Spectrahedra and Semidefinite Lifts: Global Convex
Optimization of Polynomial Activation Neural Networks in Fully Polynomial-Time",
arXiv:2101.02429 (2021) — its lifted SDP and the output-weight refit are solved with Clarabel
(interior point) or SCS (splitting) through CVXPY.
"""

from __future__ import annotations

from typing import Any

__all__ = ["CLARABEL_EPS", "import_cvxpy", "solver_kwargs"]

#: Clarabel's gap and feasibility tolerances when ``eps=None``
CLARABEL_EPS = 1e-7


def import_cvxpy() -> Any:
    """The ``cvxpy`` module (:class:`~frugalml.errors.BackendUnavailableError` naming the
    ``convex`` extra without it)."""
    from .._highs import before_highspy
    from .._optional import require

    before_highspy()
    return require("cvxpy", what="convex training of polynomial networks", extra="convex")


def solver_kwargs(cp: Any, solver: str, eps: float | None, options: dict | None) -> dict:
    """Keyword arguments of ``cvxpy.Problem.solve`` for ``solver`` ``"clarabel"`` or ``"scs"``
    at tolerance ``eps`` (``None``: :data:`CLARABEL_EPS` for Clarabel, SCS's default), updated
    by ``options``."""
    kwargs: dict[str, Any] = {}
    if solver == "clarabel":
        kwargs["solver"] = cp.CLARABEL
        # Clarabel's own default (1e-8) often stalls just short of the target on these lifts
        # and reports AlmostSolved ("optimal_inaccurate") although ~1e-8 accurate
        eps = CLARABEL_EPS if eps is None else eps
        kwargs.update(tol_gap_abs=eps, tol_gap_rel=eps, tol_feas=eps)
    else:
        kwargs["solver"] = cp.SCS
        if eps is not None:
            kwargs.update(eps_abs=eps, eps_rel=eps)
    if options:
        kwargs.update(options)
    return kwargs
