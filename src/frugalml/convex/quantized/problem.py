"""The quantized-network training problem: activation, losses, data checks and the conic solve
shared by the SDP relaxation, the refit, the enumeration and the baseline.

Paper: Bartan & Pilanci, "Training Quantized Neural Networks to Global Optimality via
Semidefinite Programming" (ICML 2021, arXiv 2105.01420).

The network is ``f(x) = sum_j alpha_j sigma(x^T u_j)`` with ``u_j in {-1, +1}^d`` and
``sigma(t) = a t^2 + b t + c``; the objective is ``loss(f(X), y) + beta sum_j |alpha_j|`` with
the losses (sums over samples) ``"squared"`` ``1/2 ||r||^2``, ``"absolute"`` ``||r||_1``,
``"logistic"`` and ``"hinge"`` (labels in ``{-1, +1}``). Each helper is ``O(n)`` or one
conic solve.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np

from ..._highs import before_highspy
from ..._optional import require
from ..._validate import check_array, check_choice, check_positive_float
from ...errors import InvalidInputError, SolverFailedError
from ..activation import Polynomial

__all__ = [
    "CLASSIFICATION_LOSSES",
    "LOSSES",
    "SOLVERS",
    "as_activation",
    "check_quantized_data",
    "check_quantized_problem",
    "import_cvxpy",
    "is_even",
    "quantized_cvx_loss",
    "quantized_loss",
    "solve_program",
]

LOSSES = ("squared", "absolute", "logistic", "hinge")
CLASSIFICATION_LOSSES = ("logistic", "hinge")
SOLVERS = ("clarabel", "scs")


def as_activation(activation: Any, a: Any, b: Any, c: Any) -> Polynomial:
    """Normalise ``activation`` (a :class:`~frugalml.convex.activation.Polynomial` or any object
    with attributes ``a``, ``b``, ``c``) or the coefficients ``a, b, c`` (``b``, ``c`` default
    0) into a :class:`Polynomial` ``sigma(t) = a t^2 + b t + c`` (``a != 0``)."""
    if activation is not None:
        if a is not None or b is not None or c is not None:
            raise InvalidInputError("pass either activation= or the coefficients a, b, c, not both")
        if isinstance(activation, Polynomial):
            return activation
        if not all(hasattr(activation, k) for k in ("a", "b", "c")):
            raise InvalidInputError(
                "activation must be a frugalml.convex.activation.Polynomial or an object with "
                f"attributes a, b, c (sigma(t) = a t^2 + b t + c); got {activation!r}"
            )
        a, b, c = activation.a, activation.b, activation.c
    if a is None:
        raise InvalidInputError(
            "give the activation: a (and optionally b, c) for sigma(t) = a t^2 + b t + c, "
            "or activation=Polynomial(a, b, c)"
        )
    return Polynomial(a, 0.0 if b is None else b, 0.0 if c is None else c)


def is_even(act: Polynomial) -> bool:
    """``sigma(-t) = sigma(t)`` (``b = 0``): then ``u`` and ``-u`` are the same neuron."""
    return act.b == 0.0


def quantized_loss(loss: str, yhat: np.ndarray, y: np.ndarray) -> float:
    """The loss of predictions ``yhat`` (n,) against ``y`` (n,), a sum over samples. ``O(n)``."""
    if loss == "squared":
        r = yhat - y
        return float(0.5 * (r @ r))
    if loss == "absolute":
        return float(np.abs(yhat - y).sum())
    if loss == "logistic":
        return float(np.logaddexp(0.0, -y * yhat).sum())
    return float(np.maximum(0.0, 1.0 - y * yhat).sum())  # hinge


def quantized_cvx_loss(cp: Any, loss: str, yhat: Any, y: np.ndarray) -> Any:
    """The CVXPY expression of :func:`quantized_loss` (``cp`` the cvxpy module, ``yhat`` an
    affine expression of length n)."""
    if loss == "squared":
        return 0.5 * cp.sum_squares(yhat - y)
    if loss == "absolute":
        return cp.norm1(yhat - y)
    if loss == "logistic":
        return cp.sum(cp.logistic(-cp.multiply(y, yhat)))
    return cp.sum(cp.pos(1.0 - cp.multiply(y, yhat)))  # hinge


def check_quantized_data(X: Any, y: Any, loss: str) -> tuple[np.ndarray, np.ndarray]:
    """Finite ``X`` (n, d) and ``y`` (n,) (one output only); labels in ``{-1, +1}`` for the
    classification losses."""
    Xa = check_array(X, "X", ndim=2)
    ya = check_array(y, "y", ndim=1)
    if ya.shape[0] != Xa.shape[0]:
        raise InvalidInputError(f"y has {ya.shape[0]} entries but X has {Xa.shape[0]} rows")
    if loss in CLASSIFICATION_LOSSES and not np.all(np.isin(ya, (-1.0, 1.0))):
        raise InvalidInputError(f"the {loss} loss needs labels in {{-1, +1}}; map y first")
    return Xa, ya


def check_quantized_problem(
    X: Any,
    y: Any,
    *,
    activation: Any,
    a: Any,
    b: Any,
    c: Any,
    beta: Any,
    loss: str,
    solver: str,
) -> tuple[np.ndarray, np.ndarray, Polynomial, float, str, str]:
    """The checks shared by the solvers of the quantized problem, in this order: ``loss`` in
    :data:`LOSSES`, ``solver`` in :data:`SOLVERS`, ``beta > 0``, the activation
    (:func:`as_activation`) and the data (:func:`check_quantized_data`).

    Returns ``(X (n, d), y (n,), activation, beta, loss, solver)``. ``O(n d)``.
    """
    loss = check_choice(loss, "loss", LOSSES)
    solver = check_choice(solver, "solver", SOLVERS)
    beta = check_positive_float(beta, "beta")
    act = as_activation(activation, a, b, c)
    Xa, ya = check_quantized_data(X, y, loss)
    return Xa, ya, act, beta, loss, solver


def import_cvxpy() -> Any:
    """The ``cvxpy`` module (:class:`~frugalml.errors.BackendUnavailableError` without it)."""
    before_highspy()
    return require("cvxpy", what="the quantized-network convex programs", extra="convex")


def solve_program(
    prob: Any, cp: Any, solver: str, solver_options: dict[str, Any] | None, loss: str
) -> float:
    """Solve with Clarabel (defaults; 1e-7 tolerances for the logistic loss, whose
    exponential-cone iterations stall near 1e-8) or SCS (``eps`` 1e-7); ``solver_options``
    override. CVXPY's ``optimal_inaccurate`` is accepted (for Clarabel it is AlmostSolved, a
    stall just above its 1e-8 tolerances; its warning is silenced, the status is kept where it
    is reported). Raises :class:`SolverFailedError` without a usable solution."""
    opts: dict[str, Any] = {}
    if solver == "scs":
        opts = {"eps_abs": 1e-7, "eps_rel": 1e-7, "max_iters": 200_000}
    elif loss == "logistic":
        opts = {"tol_gap_abs": 1e-7, "tol_gap_rel": 1e-7, "tol_feas": 1e-7}
    opts.update(solver_options or {})
    name = cp.CLARABEL if solver == "clarabel" else cp.SCS
    try:
        with warnings.catch_warnings():
            if solver == "clarabel":  # AlmostSolved: stalled at ~1e-8; kept in the status
                warnings.filterwarnings("ignore", message="Solution may be inaccurate")
            prob.solve(solver=name, **opts)
    except cp.error.SolverError as exc:
        raise SolverFailedError(
            f"the {solver} solver failed ({exc}); try the other solver or rescale X",
            status="solver_error",
        ) from exc
    if prob.status not in ("optimal", "optimal_inaccurate") or prob.value is None:
        raise SolverFailedError(
            f"the {solver} solver returned status {prob.status!r}", status=str(prob.status)
        )
    return float(prob.value)
