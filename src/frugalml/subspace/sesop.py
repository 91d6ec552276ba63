"""SESOP: sequential subspace optimisation for smooth minimisation.

Narkiss & Zibulevsky, "Sequential Subspace Optimization Method for Large-Scale Unconstrained
Problems" (Technion CCIT report 559, 2005); the ancestor of the saddle-point method of
Choukroun, Zibulevsky & Kisilev (arXiv 2008.09149, :mod:`.pd_sesop`).

Iteration ``k`` minimises ``f(x_k + D alpha)`` over the small subspace spanned by

* ``"gradient"``: ``grad f(x_k)``;
* ``"steps"``: the last ``memory`` steps ``x_i - x_{i-1}``;
* ``"nemirovski"``: ``x_k - x_0`` and ``sum_i w_i grad f(x_i)`` with ``w_0 = 1``,
  ``w_i = 1/2 + sqrt(1/4 + w_{i-1}^2)`` (these two give the optimal worst-case rate
  ``O(1/k^2)`` for convex ``f``).

The columns of ``D`` are orthonormalised (dependent ones dropped), and the inner problem is
solved by Newton's method in the subspace (Hessian ``D^T H D`` from ``dim D`` Hessian-vector
products: the user's ``hvp`` or finite differences of ``grad``; Armijo backtracking, a
Levenberg shift when the small Hessian is not positive definite) or by BFGS
(``scipy.optimize``). On a quadratic with exact inner minimisation and ``memory >= 1`` the
iterates coincide with those of conjugate gradients (every subspace lies in the Krylov space
and contains the CG step), which the tests check.
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .._results import ResultRepr
from .._validate import check_array, check_choice, check_int, check_positive_float
from ..errors import InvalidInputError
from ..progress import Progress
from .directions import DIRECTIONS, nemirovski_weight, orthonormal_basis
from .saddle_problem import NonFiniteError

__all__ = ["SesopResult", "sesop_minimize"]


@dataclass(frozen=True, repr=False)
class SesopResult(ResultRepr):
    """Outcome of :func:`sesop_minimize`.

    ``history`` maps ``"f"``, ``"grad_norm"``, ``"grad_evals"`` (gradient evaluations,
    Hessian-vector products included: each counts 1) to arrays with one entry per iterate
    (the first is ``x0``).
    """

    x: np.ndarray
    fun: float
    grad_norm: float
    converged: bool
    iterations: int
    grad_evals: int
    f_evals: int
    seconds: float
    history: dict[str, np.ndarray] = field(default_factory=dict)

    def summary(self) -> str:
        state = "converged" if self.converged else "stopped"
        return (
            f"sesop: {state} after {self.iterations} iterations, {self.grad_evals} gradient "
            f"evaluations, {self.f_evals} function evaluations, {self.seconds:.3g}s; "
            f"f = {self.fun:.6g}, ||grad|| = {self.grad_norm:.3e}"
        )


class _Oracle:
    def __init__(self, f, grad, hvp, n):
        self.f, self.grad, self.hvp_fn, self.n = f, grad, hvp, n
        self.grad_evals = 0
        self.f_evals = 0
        self.x_good: np.ndarray | None = None

    def fun(self, x: np.ndarray) -> float:
        self.f_evals += 1
        v = float(self.f(x))
        if not math.isfinite(v):
            raise FloatingPointError("non-finite objective value")
        return v

    def g(self, x: np.ndarray) -> np.ndarray:
        self.grad_evals += 1
        out = np.asarray(self.grad(x), dtype=np.float64)
        if out.shape != (self.n,):
            raise InvalidInputError(f"grad(x) must return shape ({self.n},), got {out.shape}")
        if not np.isfinite(out).all():
            raise FloatingPointError("non-finite gradient")
        return out

    def hv(self, x: np.ndarray, v: np.ndarray, gx: np.ndarray) -> np.ndarray:
        if self.hvp_fn is not None:
            self.grad_evals += 1
            out = np.asarray(self.hvp_fn(x, v), dtype=np.float64)
            if out.shape != (self.n,) or not np.isfinite(out).all():
                raise FloatingPointError("non-finite or mis-shaped Hessian-vector product")
            return out
        t = math.sqrt(np.finfo(float).eps) * max(1.0, float(np.linalg.norm(x)))
        return (self.g(x + t * v) - gx) / t


def sesop_minimize(
    f: Callable[[np.ndarray], float],
    grad: Callable[[np.ndarray], np.ndarray],
    x0: Any,
    *,
    memory: int = 1,
    directions: Sequence[str] = DIRECTIONS,
    inner: str = "newton",
    hvp: Callable[[np.ndarray, np.ndarray], np.ndarray] | None = None,
    tol: float = 1e-8,
    max_iter: int = 1000,
    max_evals: int | None = None,
    newton_steps: int = 20,
    inner_tol: float = 1e-10,
    callback: Callable[[int, np.ndarray], Any] | None = None,
    progress: Progress | None = None,
) -> SesopResult:
    """Minimise a smooth ``f: R^n -> R`` by sequential subspace optimisation.

    Parameters
    ----------
    f, grad:
        ``f(x) -> float`` and ``grad(x) -> (n,)`` for ``x`` of shape ``(n,)``.
    x0:
        Starting point, shape ``(n,)``.
    memory:
        Number ``M >= 1`` of previous steps in the subspace.
    directions:
        Subset of ``("gradient", "steps", "nemirovski")``; ``"gradient"`` is required.
    inner:
        ``"newton"`` (subspace Newton with ``hvp`` or finite differences) or ``"bfgs"``.
    hvp:
        Optional ``hvp(x, v) -> H(x) v`` (counted as one gradient evaluation).
    tol:
        Stop when ``||grad f(x)|| <= tol``.
    max_iter, max_evals:
        Iteration and gradient-evaluation budgets.
    newton_steps, inner_tol:
        Inner Newton: at most ``newton_steps`` steps, until the subspace gradient norm is
        ``<= inner_tol * ||grad f(x_k)||``.
    callback:
        ``callback(k, x_k)`` after every iteration (and for ``k = 0``).
    progress:
        ``progress(message, fraction)`` every 50 iterations (the library's progress type;
        fraction = the larger of the used iteration and evaluation budgets).

    Cost per iteration: one gradient per inner Newton step plus ``dim D <= M + 3``
    Hessian-vector products per Newton step; ``O(n (M + 3)^2)`` linear algebra.

    Raises ``InvalidInputError`` for ``memory < 1``, unknown options or shapes, and
    :class:`~frugalml.subspace.saddle_problem.NonFiniteError` (with ``.x`` the last finite iterate,
    ``.y = None``) when ``f`` or ``grad`` return NaN/inf.
    """
    x = check_array(x0, "x0", ndim=1).copy()
    n = x.shape[0]
    if not (callable(f) and callable(grad)):
        raise InvalidInputError("f and grad must be callables of x")
    if hvp is not None and not callable(hvp):
        raise InvalidInputError("hvp must be a callable hvp(x, v) -> H v")
    memory = check_int(memory, "memory", low=1)
    inner = check_choice(inner, "inner", ("newton", "bfgs"))
    dirs = (directions,) if isinstance(directions, str) else tuple(directions)
    for d in dirs:
        check_choice(d, "direction", DIRECTIONS)
    if "gradient" not in dirs:
        raise InvalidInputError(f"directions must include 'gradient'; got {dirs}")
    tol = check_positive_float(tol, "tol")
    max_iter = check_int(max_iter, "max_iter", low=1)
    max_evals = None if max_evals is None else check_int(max_evals, "max_evals", low=1)
    newton_steps = check_int(newton_steps, "newton_steps", low=1)
    inner_tol = check_positive_float(inner_tol, "inner_tol")

    orc = _Oracle(f, grad, hvp, n)
    t0 = time.perf_counter()
    hist: dict[str, list[float]] = {"f": [], "grad_norm": [], "grad_evals": []}
    x_start = x.copy()
    steps: deque = deque(maxlen=memory)
    d2 = np.zeros(n)
    w = 0.0
    it = 0
    converged = False
    try:
        fx = orc.fun(x)
        gx = orc.g(x)
        while True:
            orc.x_good = x
            gn = float(np.linalg.norm(gx))
            hist["f"].append(fx)
            hist["grad_norm"].append(gn)
            hist["grad_evals"].append(orc.grad_evals)
            if callback is not None:
                callback(it, x.copy())
            if progress is not None and it % 50 == 0:
                frac = it / max_iter
                if max_evals is not None:
                    frac = max(frac, orc.grad_evals / max_evals)
                progress(f"sesop: grad norm {gn:.2e}", min(1.0, frac))
            if gn <= tol:
                converged = True
                break
            if it >= max_iter or (max_evals is not None and orc.grad_evals >= max_evals):
                break
            cols = [gx]
            if "steps" in dirs:
                cols += list(steps)
            if "nemirovski" in dirs:
                w = nemirovski_weight(w) if w > 0 else 1.0
                d2 = d2 + w * gx
                cols += [x - x_start, d2]
            D, _ = orthonormal_basis(np.column_stack(cols))
            if inner == "newton":
                a, fx_new, gx_new = _newton(orc, x, fx, gx, D, newton_steps, inner_tol)
            else:
                a, fx_new, gx_new = _bfgs(orc, x, fx, gx, D, inner_tol)
            if not np.any(a):
                break  # no progress possible (rounding floor)
            step = D @ a
            x = x + step
            fx, gx = fx_new, gx_new
            steps.append(step)
            it += 1
    except FloatingPointError as exc:
        good = orc.x_good if orc.x_good is not None else x_start
        raise NonFiniteError(f"sesop_minimize: {exc}", x=good.copy(), y=None, iteration=it,
                             grad_evals=orc.grad_evals) from None  # fmt: skip
    return SesopResult(
        x=x, fun=fx, grad_norm=float(np.linalg.norm(gx)), converged=converged, iterations=it,
        grad_evals=orc.grad_evals, f_evals=orc.f_evals, seconds=time.perf_counter() - t0,
        history={k: np.asarray(v, dtype=np.float64) for k, v in hist.items()},
    )  # fmt: skip


def _newton(orc, x, fx, gx, D, newton_steps, inner_tol):
    k = D.shape[1]
    a = np.zeros(k)
    gsub = D.T @ gx
    g0 = np.linalg.norm(gsub)
    for _ in range(newton_steps):
        if np.linalg.norm(gsub) <= inner_tol * max(g0, 1e-300) or g0 == 0.0:
            break
        xc = x + D @ a
        Hs = np.column_stack([D.T @ orc.hv(xc, D[:, j], gx) for j in range(k)])
        Hs = 0.5 * (Hs + Hs.T)
        lam_min = float(np.linalg.eigvalsh(Hs)[0])
        if lam_min <= 1e-12 * max(1.0, float(np.abs(Hs).max())):
            Hs = Hs + (abs(lam_min) + 1e-8 * max(1.0, float(np.abs(Hs).max()))) * np.eye(k)
        delta = -np.linalg.solve(Hs, gsub)
        slope = float(gsub @ delta)
        if abs(slope) <= 100 * np.finfo(float).eps * (1.0 + abs(fx)):
            # the predicted decrease is below the rounding of f: accept the Newton step if it
            # reduces the subspace gradient instead (Armijo cannot see it)
            f_new = orc.fun(x + D @ (a + delta))
            g_new = orc.g(x + D @ (a + delta))
            if np.linalg.norm(D.T @ g_new) >= np.linalg.norm(gsub):
                break
            a, fx, gx = a + delta, f_new, g_new
            gsub = D.T @ gx
            continue
        t = 1.0
        for _bt in range(40):
            f_new = orc.fun(x + D @ (a + t * delta))
            if f_new <= fx + 1e-4 * t * slope:
                break
            t *= 0.5
        else:
            break
        a = a + t * delta
        fx = f_new
        gx = orc.g(x + D @ a)
        gsub = D.T @ gx
    return a, fx, gx


def _bfgs(orc, x, fx, gx, D, inner_tol):
    import scipy.optimize

    cache: dict[bytes, tuple[float, np.ndarray]] = {}

    def phi(a):
        key = a.tobytes()
        if key not in cache:
            xa = x + D @ a
            cache[key] = (orc.fun(xa), orc.g(xa))
        fa, ga = cache[key]
        return fa, D.T @ ga

    cache[np.zeros(D.shape[1]).tobytes()] = (fx, gx)
    g0 = float(np.linalg.norm(D.T @ gx))
    res = scipy.optimize.minimize(phi, np.zeros(D.shape[1]), jac=True, method="BFGS",
                                  options={"gtol": max(inner_tol * g0, 1e-300)})  # fmt: skip
    a = res.x
    fa, ga = cache.get(a.tobytes(), (None, None))
    if fa is None:
        fa, ga = orc.fun(x + D @ a), orc.g(x + D @ a)
    if fa > fx:  # never accept an ascent step
        return np.zeros(D.shape[1]), fx, gx
    return a, fa, ga
