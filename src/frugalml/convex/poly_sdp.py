"""Global training of two-layer polynomial-activation networks by a semidefinite program.

Reference: B. Bartan and M. Pilanci, "Neural Spectrahedra and Semidefinite Lifts: Global Convex
Optimization of Polynomial Activation Neural Networks in Fully Polynomial-Time",
arXiv:2101.02429 (2021).

The network is ``f(x) = sum_j sigma(x^T u_j) alpha_j`` with ``sigma(t) = a t^2 + b t + c``
(:class:`~frugalml.convex.activation.Polynomial`), ``||u_j||_2 = 1`` and the non-convex
training problem ``min loss(f(X), y) + beta sum_j |alpha_j|``. Its global optimum equals that
of the convex semidefinite program over two PSD matrices ``Z, Z'`` of size ``(d+1) x (d+1)``,
blocks ``Z = [[Z1, Z2], [Z2^T, Z4]]`` (``Z1`` d x d, ``Z2`` d x 1, ``Z4`` scalar)::

    min  loss(y_hat, y) + beta (Z4 + Z4')
    s.t. y_hat_i = a x_i^T (Z1 - Z1') x_i + b x_i^T (Z2 - Z2') + c (Z4 - Z4'),
         tr(Z1) = Z4,  tr(Z1') = Z4',  Z, Z' PSD.

**Conventions fixed here** (derive them from one neuron): ``Z = |alpha| [u; 1][u; 1]^T`` has
``x^T Z1 x = |alpha| (x^T u)^2``, ``x^T Z2 = |alpha| x^T u``, ``Z4 = tr(Z1) = |alpha|``, so the
``b`` term carries coefficient ``b`` (not ``2b``; ``Z2`` is ``sum_j |alpha_j| u_j``), neurons
with ``alpha_j > 0`` live in ``Z`` and those with ``alpha_j < 0`` in ``Z'``, and the penalty
``beta (Z4 + Z4')`` is ``beta sum_j |alpha_j|``. Equivalently ``y_hat_i = <C o S_i, Z - Z'>``
with the lifted second moment ``S_i = [x_i; 1][x_i; 1]^T`` and the coefficient mask
``C = [[a 11^T, (b/2) 1], [(b/2) 1^T, c]]`` (``o`` the entrywise product); the problem is
built from the ``(n, (d+1)^2)`` feature matrix of the ``vec(C o S_i)``, so constructing it
is vectorised (one matrix expression per output, no per-sample Python loop).
:func:`frugalml.convex.decompose.decompose` turns a solution back into a network with the same
objective and at most ``2 (d+1)`` neurons per output.

Losses (sums over samples and outputs, not means): ``"squared"`` ``1/2 ||y_hat - y||^2``,
``"absolute"`` ``||y_hat - y||_1``, ``"huber"`` ``sum h(y_hat - y)`` with
``h(r) = r^2/2`` for ``|r| <= delta`` and ``delta (|r| - delta/2)`` beyond, and for labels
``y in {-1, +1}`` ``"logistic"`` ``sum log(1 + exp(-y y_hat))`` and ``"hinge"``
``sum max(0, 1 - y y_hat)`` (:mod:`.losses`; the moments, the feature matrix and the size
limits of the lift are in :mod:`.lift`).

Vector outputs ``y`` (n, k): one pair ``(Z_k, Z'_k)`` per output column; the objective is the
sum of the per-column losses plus ``beta sum_k (Z4_k + Z4'_k)``, i.e. the network
``f(x) = sum_j sigma(x^T u_j) alpha_j`` with ``alpha_j`` in R^k and penalty
``beta sum_j ||alpha_j||_1`` (the problem separates over outputs).

Convolutional variant (:func:`solve_poly_conv_sdp`): ``f(x) = sum_j alpha_j (1/P) sum_p
sigma(x_p^T u_j)`` over the ``P`` patches ``x_p in R^f`` of ``x`` (window ``f``, ``stride``;
``stride = f`` gives non-overlapping patches) with average pooling. By linearity the lift is
the same with ``S_i`` replaced by the average patch second moment
``(1/P) sum_p [x_p; 1][x_p; 1]^T`` (``(f+1) x (f+1)``).

Cost: features ``O(n P (d+1)^2)``; an interior-point (Clarabel) iteration factors a KKT system
with about ``n + k (d+1)^2`` rows whose dense block is the feature matrix, roughly
``O(k n (d+1)^4 + k (d+1)^6)`` per iteration, tens of iterations. SCS (first-order, splitting)
costs ``O(k (n (d+1)^2 + (d+1)^3))`` per iteration but needs many more iterations and reaches
lower accuracy.
"""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .._resources import check_memory
from .._results import ResultRepr
from .._validate import check_array, check_choice, check_int, check_positive_float
from ..errors import InvalidInputError, SolverFailedError
from ..progress import Progress
from ._checks import check_activation, check_data
from ._cvxpy import CLARABEL_EPS, import_cvxpy, solver_kwargs
from .activation import Polynomial
from .lift import (
    MAX_VARIABLES,
    check_lift_size,
    check_sdp_memory,
    lifted_features,
    lifted_moments,
    patches,
    sdp_nbytes,
)
from .losses import CLASSIFICATION_LOSSES, LOSSES, cvx_loss, loss_value

# the losses, the lift and its size limits live in .losses and .lift; their names stay
# importable from here
__all__ = [
    "CLARABEL_EPS",
    "CLASSIFICATION_LOSSES",
    "FIRST_ORDER_LOSSES",
    "LOSSES",
    "MAX_VARIABLES",
    "SOLVERS",
    "PolySDPSolution",
    "SolverFailedError",
    "check_sdp_memory",
    "lifted_moments",
    "loss_value",
    "patches",
    "sdp_nbytes",
    "solve_poly_conv_sdp",
    "solve_poly_sdp",
]

SOLVERS = ("clarabel", "scs", "first-order")
#: the first-order solver (:mod:`.first_order`) needs a smooth loss
FIRST_ORDER_LOSSES = ("squared", "huber", "logistic")
_POOLINGS = ("average",)
_FAILED_FEASIBILITY = ("infeasible", "unbounded", "infeasible_inaccurate", "unbounded_inaccurate")


def _quiet(message: str, fraction: float) -> None:
    """The progress callback used when none is given."""


@dataclass(frozen=True, repr=False)
class PolySDPSolution(ResultRepr):
    """Solution of the lifted SDP.

    Z, Zp: (k, D, D) optimal PSD matrices ``Z_k``, ``Z'_k`` with ``D = d + 1`` (``D = f + 1``
    for the convolutional variant). objective: the SDP optimum as reported by the solver
    (``loss + beta sum_k (Z4_k + Z4'_k)``), equal to the global optimum of the non-convex
    training problem. build_seconds: features, the CVXPY expressions and CVXPY's compilation;
    solve_seconds: the solver itself; seconds: everything (validation included).
    vector_output: whether ``y`` was 2-D (predictions are then (n, k)).
    filter_size, stride: the patch geometry of the convolutional variant (``None`` if dense).
    X (n, d), y (n,) or (n, k): the training data, kept for polishing the decomposition.
    """

    Z: np.ndarray
    Zp: np.ndarray
    activation: Polynomial
    beta: float
    loss: str
    huber_delta: float
    objective: float
    status: str
    solver: str
    build_seconds: float
    solve_seconds: float
    seconds: float
    vector_output: bool
    X: np.ndarray = field(repr=False)
    y: np.ndarray = field(repr=False)
    filter_size: int | None = None
    stride: int | None = None

    @property
    def n_outputs(self) -> int:
        return int(self.Z.shape[0])

    @property
    def input_dim(self) -> int:
        """``d`` (or ``f`` for the convolutional variant): ``D - 1``."""
        return int(self.Z.shape[1]) - 1

    def predict(self, X: Any) -> np.ndarray:
        """SDP prediction ``y_hat`` for X (n, d): (n,) or (n, k). ``O(n P (d+1)^2 k)``."""
        X = check_array(X, "X", ndim=2)
        moments = lifted_moments(X, self.filter_size, self.stride, expected=self.input_dim)
        feats = lifted_features(moments, self.activation)
        out = feats @ (self.Z - self.Zp).reshape(self.n_outputs, -1).T
        return out if self.vector_output else out[:, 0]

    def data_objective(self) -> float:
        """The objective re-evaluated in NumPy at the returned ``Z, Z'`` on the training data."""
        y2 = self.y if self.y.ndim == 2 else self.y[:, None]
        yhat = self.predict(self.X)
        yhat2 = yhat if yhat.ndim == 2 else yhat[:, None]
        reg = float(np.sum(self.Z[:, -1, -1]) + np.sum(self.Zp[:, -1, -1]))
        return loss_value(yhat2, y2, self.loss, self.huber_delta) + self.beta * reg

    def summary(self) -> str:
        kind = (
            f"dense, d={self.input_dim}"
            if self.filter_size is None
            else f"conv, f={self.filter_size}, stride={self.stride}"
        )
        ranks = []
        for k in range(self.n_outputs):
            for M in (self.Z[k], self.Zp[k]):
                ev = np.linalg.eigvalsh(M)
                ranks.append(int(np.sum(ev > 1e-7 * max(ev.max(), 1e-300))))
        return (
            f"poly SDP ({kind}, k={self.n_outputs}, {self.loss} loss, "
            f"beta={self.beta:g}, {self.activation.summary()}): objective {self.objective:.8g}, "
            f"status {self.status} ({self.solver}), numerical ranks {ranks}, "
            f"build {self.build_seconds:.3g}s, solve {self.solve_seconds:.3g}s, "
            f"total {self.seconds:.3g}s"
        )


# ------------------------------------------------------------------------- solving


def _solve_lifted(
    moments: np.ndarray,
    X: np.ndarray,
    y: np.ndarray,
    opts: _Options,
    t_start: float,
    filter_size: int | None = None,
    stride: int | None = None,
) -> PolySDPSolution:
    activation, beta, loss, solver = opts.activation, opts.beta, opts.loss, opts.solver
    huber_delta, eps, progress = opts.huber_delta, opts.eps, opts.progress
    say = progress or _quiet
    say("building SDP", 0.0)
    cp = import_cvxpy()
    D = moments.shape[1]
    y2 = y if y.ndim == 2 else y[:, None]
    k = y2.shape[1]
    F = lifted_features(moments, activation)
    Zs, Zps, objective_terms, constraints = [], [], [], []
    for col in range(k):
        Z = cp.Variable((D, D), PSD=True, name=f"Z{col}")
        Zp = cp.Variable((D, D), PSD=True, name=f"Zp{col}")
        yhat = F @ (cp.vec(Z, order="F") - cp.vec(Zp, order="F"))
        objective_terms.append(cvx_loss(cp, yhat, y2[:, col], loss, huber_delta))
        objective_terms.append(beta * (Z[D - 1, D - 1] + Zp[D - 1, D - 1]))
        constraints += [
            cp.trace(Z[: D - 1, : D - 1]) == Z[D - 1, D - 1],
            cp.trace(Zp[: D - 1, : D - 1]) == Zp[D - 1, D - 1],
        ]
        Zs.append(Z)
        Zps.append(Zp)
    problem = cp.Problem(cp.Minimize(cp.sum(objective_terms)), constraints)
    build_seconds = time.perf_counter() - t_start
    kwargs = solver_kwargs(cp, solver, eps, opts.solver_options)
    other = "scs" if solver == "clarabel" else "clarabel"
    say(f"solving ({solver})", 0.1)
    t_solve = time.perf_counter()
    try:
        with warnings.catch_warnings():
            # CVXPY's generic notice; an inaccurate status gets our own warning below
            warnings.filterwarnings("ignore", message="Solution may be inaccurate")
            problem.solve(verbose=opts.verbose, **kwargs)
    except TypeError as exc:  # an option the solver does not know
        raise InvalidInputError(f"bad solver_options for {solver}: {exc}") from exc
    except cp.error.SolverError as exc:
        raise SolverFailedError(
            f"the {solver} solver failed on the lifted SDP ({exc}); try solver={other!r}, a "
            "looser eps, or rescale X",
            status="solver_error",
        ) from exc
    wall_solve = time.perf_counter() - t_solve
    status = str(problem.status)
    if status in _FAILED_FEASIBILITY:
        raise SolverFailedError(
            f"the {solver} solver reported status {status!r}, but the lifted SDP is always "
            f"feasible (Z = Z' = 0) and bounded below, so this is a numerical failure; try "
            f"solver={other!r} or rescale X",
            status=status,
        )
    if status not in ("optimal", "optimal_inaccurate") or Zs[0].value is None:
        raise SolverFailedError(
            f"the {solver} solver stopped with status {status!r}; try solver={other!r} or "
            "raise its iteration limit via solver_options",
            status=status,
        )
    if status == "optimal_inaccurate":
        warnings.warn(
            f"the {solver} solver stopped short of its tolerances (status {status!r}); the "
            "objective and the decomposed network are less accurate than requested (compare "
            f"solution.data_objective() with solution.objective); try solver={other!r} or "
            "another eps",
            RuntimeWarning,
            stacklevel=3,
        )

    def _sym(var: Any) -> np.ndarray:
        M = np.asarray(var.value, dtype=float)
        return 0.5 * (M + M.T)

    stats = problem.solver_stats
    solve_seconds = (
        float(stats.solve_time) if stats is not None and stats.solve_time else wall_solve
    )
    compile_seconds = getattr(problem, "compilation_time", None)
    if compile_seconds:  # CVXPY's canonicalisation, inside problem.solve
        build_seconds += float(compile_seconds)
    say("done", 1.0)
    return PolySDPSolution(
        Z=np.stack([_sym(Z) for Z in Zs]),
        Zp=np.stack([_sym(Zp) for Zp in Zps]),
        activation=activation,
        beta=beta,
        loss=loss,
        huber_delta=huber_delta,
        objective=float(problem.value),
        status=status,
        solver=solver,
        build_seconds=build_seconds,
        solve_seconds=solve_seconds,
        seconds=time.perf_counter() - t_start,
        vector_output=y.ndim == 2,
        X=X,
        y=y,
        filter_size=filter_size,
        stride=stride,
    )


def _solve_first_order(X: np.ndarray, y: np.ndarray, opts: _Options, t0: float) -> PolySDPSolution:
    from .first_order import first_order_sdp

    activation, beta, loss, huber_delta = opts.activation, opts.beta, opts.loss, opts.huber_delta
    eps, options = opts.eps, opts.solver_options
    say = opts.progress or _quiet
    say("solving (first-order)", 0.0)
    res = first_order_sdp(
        X, y, a=activation.a, b=activation.b, c=activation.c, beta=beta, loss=loss,
        huber_delta=huber_delta, tol=eps if eps is not None else 1e-7, **(options or {}),
    )  # fmt: skip
    say("done", 1.0)
    return PolySDPSolution(
        Z=res.Z,
        Zp=res.Zp,
        activation=activation,
        beta=beta,
        loss=loss,
        huber_delta=huber_delta,
        objective=res.objective,
        status="optimal" if res.converged else "optimal_inaccurate",
        solver="first-order",
        build_seconds=0.0,
        solve_seconds=res.seconds,
        seconds=time.perf_counter() - t0,
        vector_output=y.ndim == 2,
        X=X,
        y=y,
    )


@dataclass(frozen=True)
class _Options:
    """The validated options that :func:`solve_poly_sdp` and :func:`solve_poly_conv_sdp`
    share, as the solvers (:func:`_solve_lifted`, :func:`_solve_first_order`) take them."""

    activation: Polynomial
    beta: float
    loss: str
    solver: str
    huber_delta: float
    eps: float | None
    verbose: bool
    solver_options: dict | None
    progress: Progress | None


def _check_options(
    activation: Any,
    beta: Any,
    loss: str,
    solver: str,
    huber_delta: Any,
    eps: Any,
    verbose: bool,
    solver_options: dict | None,
    progress: Progress | None,
) -> _Options:
    activation = check_activation(activation)
    beta = check_positive_float(beta, "beta")
    check_choice(loss, "loss", LOSSES)
    check_choice(solver, "solver", SOLVERS)
    if solver == "first-order" and loss not in FIRST_ORDER_LOSSES:
        raise InvalidInputError(
            f"solver='first-order' handles the smooth losses {FIRST_ORDER_LOSSES}; for "
            f"loss={loss!r} use solver='clarabel' or 'scs'"
        )
    huber_delta = check_positive_float(huber_delta, "huber_delta")
    if eps is not None:
        eps = check_positive_float(eps, "eps")
    return _Options(
        activation, beta, loss, solver, huber_delta, eps, verbose, solver_options, progress
    )


# ------------------------------------------------------------------------- public API


def solve_poly_sdp(
    X: Any,
    y: Any,
    *,
    activation: Polynomial | tuple[float, float, float],
    beta: float,
    loss: str = "squared",
    solver: str = "clarabel",
    huber_delta: float = 1.0,
    eps: float | None = None,
    verbose: bool = False,
    solver_options: dict | None = None,
    progress: Progress | None = None,
) -> PolySDPSolution:
    """Globally train ``f(x) = sum_j sigma(x^T u_j) alpha_j`` by the lifted SDP (module doc).

    Parameters
    ----------
    X:
        (n, d) inputs, finite.
    y:
        (n,) or (n, k) targets; labels in ``{-1, +1}`` for ``"logistic"`` and ``"hinge"``.
    activation:
        a :class:`Polynomial` ``sigma(t) = a t^2 + b t + c`` (or the tuple ``(a, b, c)``).
    beta:
        > 0, weight of ``sum_j |alpha_j|``.
    loss:
        ``"squared"``, ``"absolute"``, ``"huber"`` (threshold ``huber_delta``), ``"logistic"``
        or ``"hinge"``.
    solver:
        ``"clarabel"`` (interior point, accurate; refused above ``2 k (d+1)^2 > 2e5``),
        ``"scs"`` (splitting; larger problems, ~1e-4 relative accuracy) or ``"first-order"``
        (:func:`~frugalml.convex.first_order.first_order_sdp`: conditional gradient with a
        certified optimality gap, torch on CPU or GPU; smooth losses).
    eps:
        solver tolerance (Clarabel's gap and feasibility tolerances, SCS's ``eps_abs`` and
        ``eps_rel``, the first-order solver's certified relative gap); ``None``: 1e-7 for
        Clarabel (its own 1e-8 default often ends in "optimal_inaccurate" on these lifts) and
        the first-order solver, SCS's default (1e-5 in CVXPY).
    solver_options:
        extra keyword arguments for ``cvxpy.Problem.solve`` (e.g. ``{"max_iters": 10**5}``),
        or for ``first_order_sdp`` (e.g. ``{"device": "cuda", "method": "alm"}``).
    verbose:
        echo the conic solver's own log (CVXPY's ``verbose``).
    progress:
        ``progress(message, fraction)`` (:data:`frugalml.progress.Progress`) at the phases
        ``"building SDP"``, ``"solving (<solver>)"`` and ``"done"``.

    Returns
    -------
    PolySDPSolution with ``Z, Zp`` (k, d+1, d+1). Raises :class:`InvalidInputError` on bad input,
    :class:`SolverFailedError` (with the solver's ``status``) when the solver fails,
    :class:`~frugalml.errors.BackendUnavailableError` without CVXPY.
    """
    t0 = time.perf_counter()
    opts = _check_options(
        activation, beta, loss, solver, huber_delta, eps, verbose, solver_options, progress
    )
    X, y = check_data(X, y, loss)
    k = 1 if y.ndim == 1 else y.shape[1]
    check_lift_size(X.shape[1] + 1, k, solver, "d", X.shape[0])
    if solver == "first-order":
        return _solve_first_order(X, y, opts, t0)
    return _solve_lifted(lifted_moments(X), X, y, opts, t0)


def solve_poly_conv_sdp(
    X: Any,
    y: Any,
    *,
    filter_size: int,
    activation: Polynomial | tuple[float, float, float],
    beta: float,
    stride: int = 1,
    pooling: str = "average",
    loss: str = "squared",
    solver: str = "clarabel",
    huber_delta: float = 1.0,
    eps: float | None = None,
    verbose: bool = False,
    solver_options: dict | None = None,
    progress: Progress | None = None,
) -> PolySDPSolution:
    """Globally train the convolutional network
    ``f(x) = sum_j alpha_j (1/P) sum_p sigma(x_p^T u_j)`` (module doc).

    X (n, d) are 1-D signals; the patches are ``x_p = x[p stride : p stride + filter_size]``,
    ``P = (d - filter_size) // stride + 1`` of them (``stride = filter_size``: non-overlapping).
    Only ``pooling="average"`` is supported. The lift is ``(f+1) x (f+1)``, so the cost is that
    of :func:`solve_poly_sdp` with ``d = f`` plus ``O(n P f^2)`` for the features. The other
    arguments are those of :func:`solve_poly_sdp`.
    """
    t0 = time.perf_counter()
    opts = _check_options(
        activation, beta, loss, solver, huber_delta, eps, verbose, solver_options, progress
    )
    check_choice(pooling, "pooling", _POOLINGS)
    if solver == "first-order":
        raise InvalidInputError(
            "solver='first-order' is not available for the convolutional lift; use "
            "'clarabel' or 'scs' (the lift is only (f+1) x (f+1))"
        )
    X, y = check_data(X, y, loss)
    filter_size = check_int(filter_size, "filter_size", low=1, high=X.shape[1])
    stride = check_int(stride, "stride", low=1)
    k = 1 if y.ndim == 1 else y.shape[1]
    check_lift_size(filter_size + 1, k, solver, "filter_size", X.shape[0])
    n_patches = (X.shape[1] - filter_size) // stride + 1
    check_memory(
        8 * X.shape[0] * n_patches * (filter_size + 1) ** 2,
        f"the patch moments ({n_patches} patches of {filter_size} per sample)",
        fix="use a larger stride or fewer samples",
    )
    moments = lifted_moments(X, filter_size, stride)
    return _solve_lifted(moments, X, y, opts, t0, filter_size, stride)
