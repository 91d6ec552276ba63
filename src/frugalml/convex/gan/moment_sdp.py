"""The convex WGAN programs over the generated moments, solved with CVXPY: the quadratic
discriminator's SDP and the linear / quadratic / polynomial moment-matching program.

Reference: A. Sahiner, T. Ergen, B. Ozturkler, B. Bartan, J. Pauly, M. Mardani, M. Pilanci,
"Hidden Convexity of Wasserstein GANs: Interpretable Generative Models with Closed-Form
Solutions", ICLR 2022, arXiv:2107.05680.

``"polynomial"`` ``sigma(t) = a t^2 + b t + c``: ``max_{||u||=1} |a u^T (A_X - H_G) u +
b u^T (mu_X - mu_G)| <= beta`` is an exact SDP by the S-lemma (trust-region subproblem): for
``s = +-1`` there is ``lambda_s`` with
``[[lambda_s I - s a (A_X - H), -s b (mu_X - mu)/2], [., beta - lambda_s]] >= 0``.
Interior point on ``(d+1) x (d+1)`` matrices: small ``d`` only.
"""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..._optional import require
from ..._resources import check_memory
from ..._results import ResultRepr
from ..._validate import check_choice, check_positive_float
from ...errors import SolverFailedError
from .linalg import as_matrix

__all__ = ["DISCRIMINATORS", "MomentSDPSolution", "moment_sdp", "quadratic_sdp"]

DISCRIMINATORS = ("linear", "quadratic", "polynomial")


@dataclass(frozen=True, repr=False)
class MomentSDPSolution(ResultRepr):
    """Optimal generated moments of a convex WGAN program.

    H: ``(d, d)`` second moment ``E[g g^T]``; mu: ``(d,)`` mean; objective: ``tr(H)``;
    multiplier: ``(d, d)`` dual matrix of ``A_X - H <= beta I`` (quadratic program only,
    else ``None``); status: CVXPY's status; seconds: build + solve wall time.
    """

    H: np.ndarray
    mu: np.ndarray
    objective: float
    multiplier: np.ndarray | None
    status: str
    seconds: float

    def summary(self) -> str:
        return (
            f"moment SDP: tr(H) = {self.objective:.6g}, status {self.status}, {self.seconds:.3g}s"
        )


def _cvxpy() -> Any:
    return require("cvxpy", what="the CVXPY programs of ConvexWGAN", extra="convex")


def _solve(cp: Any, problem: Any, solver: str, eps: float) -> str:
    kwargs: dict[str, Any] = {"solver": solver}
    if solver == "CLARABEL":
        kwargs.update(tol_gap_abs=eps, tol_gap_rel=eps, tol_feas=eps)
    elif solver == "SCS":
        kwargs.update(eps_abs=eps, eps_rel=eps, max_iters=200_000)
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="Solution may be inaccurate")
            problem.solve(**kwargs)
    except cp.error.SolverError as exc:
        raise SolverFailedError(
            f"CVXPY solver {solver} failed ({exc}); try cvxpy_solver='SCS' or rescale X",
            status="solver_error",
        ) from exc
    status = str(problem.status)
    if status not in ("optimal", "optimal_inaccurate"):
        raise SolverFailedError(
            f"CVXPY solver {solver} stopped with status {status!r}; try another solver",
            status=status,
        )
    return status


def quadratic_sdp(
    X: Any, beta: float, *, center: bool = False, solver: str = "CLARABEL", eps: float = 1e-9
) -> MomentSDPSolution:
    """Quadratic-discriminator WGAN as an SDP over the generated second moment ``H``::

        min tr(H)  s.t.  A_X - H <= beta I,  H - A_X <= beta I,  H >= 0

    with ``A_X = X^T X / n`` (``center=True``: the covariance). ``X`` ``(n, d)``; CVXPY with
    Clarabel (interior point, ``O(d^6)`` per iteration: small ``d`` only). The optimum is
    ``sum_i (sigma_i^2 - beta)_+``, attained by the closed-form generator.
    """
    M, _ = as_matrix(X)
    beta = check_positive_float(beta, "beta")
    cp = _cvxpy()
    t0 = time.perf_counter()
    mu = M.mean(axis=0)
    Mc = M - mu if center else M
    A = Mc.T @ Mc / M.shape[0]
    d = A.shape[0]
    H = cp.Variable((d, d), PSD=True)
    upper = beta * np.eye(d) - (A - H)  # >= 0  <=>  A - H <= beta I
    lower = beta * np.eye(d) + (A - H)
    cons = [(upper + upper.T) / 2 >> 0, (lower + lower.T) / 2 >> 0]
    problem = cp.Problem(cp.Minimize(cp.trace(H)), cons)
    status = _solve(cp, problem, solver, eps)
    Hv = (H.value + H.value.T) / 2
    lam = cons[0].dual_value
    lam = None if lam is None else (np.asarray(lam) + np.asarray(lam).T) / 2
    return MomentSDPSolution(
        H=Hv, mu=mu if center else np.zeros(d), objective=float(problem.value),
        multiplier=lam, status=status, seconds=time.perf_counter() - t0,
    )  # fmt: skip


def moment_sdp(
    X: Any,
    beta: float,
    discriminator: str,
    *,
    activation: tuple[float, float, float] = (1.0, 1.0, 0.0),
    solver: str = "CLARABEL",
    eps: float = 1e-9,
) -> MomentSDPSolution:
    """The convex WGAN program for a ``"linear"``, ``"quadratic"`` or ``"polynomial"``
    discriminator over the generated moments ``(H, mu)`` with ``[[H, mu], [mu^T, 1]] >= 0``
    (realisable by some distribution), minimising ``tr(H) = E||g||^2``.

    ``activation = (a, b, c)`` for ``"polynomial"`` (``c`` cancels). Small ``d`` only.
    """
    M, _ = as_matrix(X)
    beta = check_positive_float(beta, "beta")
    discriminator = check_choice(discriminator, "discriminator", DISCRIMINATORS)
    n, d = M.shape
    tri = (d + 1) * (d + 2) // 2
    check_memory(
        8 * (2 * n * d + 200 * tri * tri),
        f"the moment SDP over ({d}+1) x ({d}+1) matrices",
        fix="reduce the data dimension (e.g. a PCA) or use the quadratic discriminator "
        "(closed form)",
    )
    cp = _cvxpy()
    t0 = time.perf_counter()
    A = M.T @ M / n
    mx = M.mean(axis=0)
    Y = cp.Variable((d + 1, d + 1), PSD=True)  # [[H, mu], [mu^T, 1]]
    H, mu = Y[:d, :d], Y[:d, d]
    cons = [Y[d, d] == 1]
    if discriminator == "linear":
        a, b = 0.0, 1.0
    elif discriminator == "quadratic":
        a, b = 1.0, 0.0
    else:
        a, b = float(activation[0]), float(activation[1])
    mult = None
    if a == 0.0:
        cons.append(cp.norm(b * (mx - mu), 2) <= beta)
    elif b == 0.0:
        quad = [beta * np.eye(d) - a * (A - H), beta * np.eye(d) + a * (A - H)]
        cons += [(q + q.T) / 2 >> 0 for q in quad]
        mult = cons[1]
    else:
        for sgn in (1.0, -1.0):
            lam = cp.Variable()
            top = lam * np.eye(d) - sgn * a * (A - H)
            col = cp.reshape(-sgn * b * (mx - mu) / 2, (d, 1), order="F")
            block = cp.bmat([[top, col], [col.T, cp.reshape(beta - lam, (1, 1), order="F")]])
            cons.append((block + block.T) / 2 >> 0)
    problem = cp.Problem(cp.Minimize(cp.trace(H)), cons)
    status = _solve(cp, problem, solver, eps)
    Yv = (Y.value + Y.value.T) / 2
    lamv = None
    if mult is not None and mult.dual_value is not None:
        lamv = (np.asarray(mult.dual_value) + np.asarray(mult.dual_value).T) / 2
    return MomentSDPSolution(
        H=Yv[:d, :d], mu=Yv[:d, d].copy(), objective=float(problem.value), multiplier=lamv,
        status=status, seconds=time.perf_counter() - t0,
    )  # fmt: skip
