"""First-order baselines for saddle-point problems ``min_x max_y f(x, y)``.

The methods that Choukroun, Zibulevsky & Kisilev, "Primal-Dual Sequential Subspace
Optimization for Saddle-point Problems" (arXiv 2008.09149), compare PD-SESOP with. All take a
:class:`~.saddle_problem.SaddleProblem` and return a :class:`~.recorder.SaddleResult`,
counting gradient evaluations as :mod:`.saddle_problem` describes; every solver takes
``history_every=k`` to keep only every k-th iterate in the history, for runs of millions of
iterations (the stopping test still runs at every iterate):

* :func:`gda` — simultaneous gradient descent-ascent ``z+ = z - lr G(z)``, with
  ``G = (grad_x f, -grad_y f)``; diverges on bilinear games for every step size.
* :func:`extragradient` — Korpelevich (1976): ``w = z - lr G(z)``, ``z+ = z - lr G(w)``
  (2 evaluations per iteration).
* :func:`optimistic_gda` — Popov (1980) / Daskalakis et al. (2018):
  ``z+ = z - 2 lr G(z) + lr G(z-)`` (1 evaluation per iteration).
* :func:`proximal_point` — exact proximal point ``z+ = z - eta G(z+)`` for problems whose
  gradient map is affine (one linear solve per step; a reference, not a first-order method).
* :func:`admm_equality_ls` — ADMM (Boyd et al. 2011, section 5) for equality-constrained least
  squares, with the x-update solved by warm-started conjugate gradients.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

from .._validate import check_array, check_int, check_positive_float
from ..errors import InvalidInputError
from ..progress import Progress
from .recorder import Callback, Recorder, SaddleResult
from .saddle_problem import SaddleProblem

__all__ = ["admm_equality_ls", "extragradient", "gda", "optimistic_gda", "proximal_point"]


def _norm2(gx: np.ndarray, gy: np.ndarray) -> float:
    return math.hypot(float(np.linalg.norm(gx)), float(np.linalg.norm(gy)))


def _default_lr(problem: SaddleProblem, lr: float | None, factor: float, method: str) -> float:
    if lr is not None:
        return check_positive_float(lr, "lr")
    if problem.lipschitz is None:
        raise InvalidInputError(
            f"{method} needs a step size: pass lr= or build the problem with lipschitz="
        )
    return factor / problem.lipschitz


def _check_problem(problem: Any) -> SaddleProblem:
    if not isinstance(problem, SaddleProblem):
        raise InvalidInputError(
            f"problem must be a frugalml.subspace.SaddleProblem, got {type(problem).__name__}"
        )
    return problem


Step = Callable[[np.ndarray, np.ndarray, np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]


def _iterate(
    problem: SaddleProblem,
    x: np.ndarray,
    y: np.ndarray,
    method: str,
    step: Step,
    opts: dict[str, Any],
    params: dict[str, float],
) -> SaddleResult:
    """Shared loop of the gradient baselines and the proximal point: ``step`` is the update
    ``(x, y, grad_x, grad_y) -> (x+, y+)`` (it may call ``problem.gradients`` for extra
    evaluations, which the problem counts); the gradient at the new point is evaluated here.
    ``opts`` are the :class:`~.recorder.Recorder` options, ``params`` go into the result."""
    rec = Recorder(problem, method, **opts)
    try:
        gx, gy = problem.gradients(x, y)
        stop = rec.record(x, y, _norm2(gx, gy))
        while not stop:
            x, y = step(x, y, gx, gy)
            rec.iterations += 1
            gx, gy = problem.gradients(x, y)
            stop = rec.record(x, y, _norm2(gx, gy))
    except FloatingPointError as exc:
        raise rec.fail(exc) from None
    return rec.result(x, y, **params)


def _first_order(
    method: str,
    lr_factor: float,
    make_step: Callable[[SaddleProblem, float], Step],
    problem: Any,
    x0: Any,
    y0: Any,
    lr: float | None,
    opts: dict[str, Any],
) -> SaddleResult:
    """The one driver of the gradient baselines: check the problem and start, pick the default
    step ``lr_factor / L``, and run :func:`_iterate` with the update ``make_step(problem, lr)``."""
    problem = _check_problem(problem)
    x, y = problem.check_point(x0, y0)
    lr = _default_lr(problem, lr, lr_factor, method)
    return _iterate(problem, x, y, method, make_step(problem, lr), opts, {"lr": lr})


def _gda_step(problem: SaddleProblem, lr: float) -> Step:
    return lambda x, y, gx, gy: (x - lr * gx, y + lr * gy)


def _extragradient_step(problem: SaddleProblem, lr: float) -> Step:
    def step(x, y, gx, gy):
        hx, hy = problem.gradients(x - lr * gx, y + lr * gy)
        return x - lr * hx, y + lr * hy

    return step


def _optimistic_step(problem: SaddleProblem, lr: float) -> Step:
    previous: list[tuple[np.ndarray, np.ndarray]] = []  # G(z-), G(z) itself at the start

    def step(x, y, gx, gy):
        px, py = previous[0] if previous else (gx, gy)
        previous[:] = [(gx, gy)]
        return x - lr * (2 * gx - px), y + lr * (2 * gy - py)

    return step


def gda(
    problem: SaddleProblem,
    x0: Any,
    y0: Any,
    *,
    lr: float | None = None,
    tol: float = 1e-8,
    max_iter: int = 100_000,
    max_evals: int | None = None,
    target: str | None = None,
    callback: Callback | None = None,
    progress: Progress | None = None,
    history_every: int = 1,
) -> SaddleResult:
    """Simultaneous gradient descent-ascent ``x -= lr grad_x``, ``y += lr grad_y``.

    One gradient evaluation per iteration; ``lr`` defaults to ``0.5 / L``. Stops at
    ``tol`` on the target metric, at ``max_iter``/``max_evals``, or when the target grew by a
    factor 1e8 (``diverged=True``). O(cost of a gradient) per iteration.
    """
    opts = dict(tol=tol, max_iter=max_iter, max_evals=max_evals, target=target,
                callback=callback, progress=progress, history_every=history_every)  # fmt: skip
    return _first_order("gda", 0.5, _gda_step, problem, x0, y0, lr, opts)


def extragradient(
    problem: SaddleProblem,
    x0: Any,
    y0: Any,
    *,
    lr: float | None = None,
    tol: float = 1e-8,
    max_iter: int = 100_000,
    max_evals: int | None = None,
    target: str | None = None,
    callback: Callback | None = None,
    progress: Progress | None = None,
    history_every: int = 1,
) -> SaddleResult:
    """Extragradient: ``w = z - lr G(z)``, ``z+ = z - lr G(w)`` (2 evaluations / iteration).

    Arguments and stopping rules as :func:`gda`. Converges on bilinear games for
    ``lr < 1/L`` at rate ``1 - O(1/kappa^2)`` per iteration; ``lr`` defaults to ``0.9 / L``.
    """
    opts = dict(tol=tol, max_iter=max_iter, max_evals=max_evals, target=target,
                callback=callback, progress=progress, history_every=history_every)  # fmt: skip
    return _first_order("extragradient", 0.9, _extragradient_step, problem, x0, y0, lr, opts)


def optimistic_gda(
    problem: SaddleProblem,
    x0: Any,
    y0: Any,
    *,
    lr: float | None = None,
    tol: float = 1e-8,
    max_iter: int = 100_000,
    max_evals: int | None = None,
    target: str | None = None,
    callback: Callback | None = None,
    progress: Progress | None = None,
    history_every: int = 1,
) -> SaddleResult:
    """Optimistic GDA ``z+ = z - lr (2 G(z) - G(z-))`` (1 evaluation / iteration).

    Arguments and stopping rules as :func:`gda`. Converges on bilinear games for
    ``lr <= 1/(2L)``; ``lr`` defaults to ``0.45 / L``.
    """
    opts = dict(tol=tol, max_iter=max_iter, max_evals=max_evals, target=target,
                callback=callback, progress=progress, history_every=history_every)  # fmt: skip
    return _first_order("optimistic_gda", 0.45, _optimistic_step, problem, x0, y0, lr, opts)


def proximal_point(
    problem: SaddleProblem,
    x0: Any,
    y0: Any,
    *,
    eta: float = 1.0,
    tol: float = 1e-8,
    max_iter: int = 10_000,
    max_evals: int | None = None,
    target: str | None = None,
    callback: Callback | None = None,
    progress: Progress | None = None,
    history_every: int = 1,
) -> SaddleResult:
    """Exact proximal point ``z+ = z - eta G(z+)`` for affine ``G(z) = J z + c``.

    Needs ``problem.linear_system``; solves ``(I + eta J) z+ = z - eta c`` with one LU
    factorisation (``O((n+m)^3)`` once, ``O((n+m)^2)`` per step). Each step is counted as one
    gradient evaluation (the gradient at the new point that the residual needs), but it is an
    oracle method: it uses the matrix, not just gradients. On a bilinear game each singular
    direction contracts by ``1/sqrt(1 + eta^2 sigma^2)`` per step.
    """
    import scipy.linalg

    problem = _check_problem(problem)
    eta = check_positive_float(eta, "eta")
    if problem.linear_system is None:
        raise InvalidInputError(
            "proximal_point needs an affine problem built with linear_system=(J, c)"
        )
    x, y = problem.check_point(x0, y0)
    jac, off = problem.linear_system
    n = problem.n
    lu = scipy.linalg.lu_factor(np.eye(jac.shape[0]) + eta * jac)

    def step(x, y, gx, gy):
        z = scipy.linalg.lu_solve(lu, np.concatenate([x, y]) - eta * off)
        return z[:n], z[n:]

    opts = dict(tol=tol, max_iter=max_iter, max_evals=max_evals, target=target,
                callback=callback, progress=progress, history_every=history_every)  # fmt: skip
    return _iterate(problem, x, y, "proximal_point", step, opts, {"eta": eta})


def admm_equality_ls(
    problem: SaddleProblem,
    x0: Any,
    y0: Any | None = None,
    *,
    rho: float = 1.0,
    cg_tol: float = 1e-2,
    cg_max: int = 50,
    tol: float = 1e-8,
    max_iter: int = 10_000,
    max_evals: int | None = None,
    target: str | None = None,
    callback: Callback | None = None,
    progress: Progress | None = None,
    history_every: int = 1,
) -> SaddleResult:
    """ADMM for ``min 1/2 ||F x - g||^2  s.t.  E x = h`` (Boyd et al. 2011, section 5.1).

    Splitting ``f(x) + I_C(z)``, ``x = z``, ``C = {z : E z = h}``:

    * x-update: ``(F^T F + rho I) x = F^T g + rho (z - u)``, solved by conjugate gradients
      warm-started at the previous ``x``, reducing the warm-started residual by ``cg_tol``
      (so the x-updates become exact as ADMM converges; each CG product
      ``F^T F v`` is one gradient evaluation of ``f``; so is forming the right-hand side);
    * z-update: projection of ``x + u`` onto ``C`` (a Cholesky solve with ``E E^T``,
      factorised once; counted as one evaluation since it multiplies by ``E`` and ``E^T``);
    * u-update: ``u += x - z``.

    ``problem`` must come from :func:`frugalml.subspace.problems.constrained_least_squares`
    (it carries ``F, g, E, h`` in ``problem.data``). The recorded iterate is ``x`` with the
    scaled multiplier ``lambda = rho u`` mapped to the problem's dual variable, so the
    problem's metrics (constraint violation ``||E x - h||``, distance) apply unchanged;
    ``residual`` is NaN (ADMM never evaluates the Lagrangian's gradient).
    """
    import scipy.linalg

    problem = _check_problem(problem)
    data = getattr(problem, "data", None)
    if not isinstance(data, dict) or not {"F", "g", "E", "h"} <= set(data):
        raise InvalidInputError(
            "admm_equality_ls needs a problem from problems.constrained_least_squares "
            "(with data F, g, E, h)"
        )
    rho = check_positive_float(rho, "rho")
    cg_tol = check_positive_float(cg_tol, "cg_tol")
    cg_max = check_int(cg_max, "cg_max", low=1)
    F, g, E, h = data["F"], data["g"], data["E"], data["h"]
    x = check_array(x0, "x0", shape=(problem.n,)).copy()
    lam0 = np.zeros(problem.m) if y0 is None else check_array(y0, "y0", shape=(problem.m,))
    chol = scipy.linalg.cho_factor(E @ E.T)

    def project(v: np.ndarray) -> np.ndarray:
        return v - E.T @ scipy.linalg.cho_solve(chol, E @ v - h)

    def fgrad_op(v: np.ndarray) -> np.ndarray:  # F^T F v: one evaluation
        problem.grad_evals += 1
        return F.T @ (F @ v)

    rec = Recorder(problem, "admm", tol=tol, max_iter=max_iter, max_evals=max_evals,
                   target=target, callback=callback, progress=progress,
                   history_every=history_every)  # fmt: skip
    u = E.T @ lam0 / rho
    problem.grad_evals += 1
    z = project(x)
    ftg = F.T @ g
    stop = rec.record(x, _dual(E, chol, rho, u), math.nan)
    while not stop:
        rhs = ftg + rho * (z - u)
        # CG on (F^T F + rho I) x = rhs, warm start
        r = rhs - (fgrad_op(x) + rho * x)
        p = r.copy()
        rr = r @ r
        rr_stop = cg_tol * cg_tol * rr  # reduce the warm-started residual by cg_tol
        for _ in range(cg_max):
            if rr <= rr_stop or rr == 0.0:
                break
            ap = fgrad_op(p) + rho * p
            a = rr / (p @ ap)
            x = x + a * p
            r = r - a * ap
            rr_new = r @ r
            p = r + (rr_new / rr) * p
            rr = rr_new
        problem.grad_evals += 1
        z = project(x + u)
        u = u + x - z
        rec.iterations += 1
        if not np.isfinite(x).all():
            raise rec.fail(FloatingPointError("non-finite ADMM iterate"))
        stop = rec.record(x, _dual(E, chol, rho, u), math.nan)
    return rec.result(x, _dual(E, chol, rho, u), rho=rho)


def _dual(E: np.ndarray, chol: Any, rho: float, u: np.ndarray) -> np.ndarray:
    import scipy.linalg

    # x-optimality at the fixed point: grad f(x) + rho u = 0 and grad f(x*) + E^T lambda* = 0,
    # so rho u = E^T lambda*, i.e. lambda* = (E E^T)^-1 E (rho u)
    return scipy.linalg.cho_solve(chol, E @ (rho * u))
