"""Saddle-point problems ``min_x max_y f(x, y)``: a common interface and first-order baselines.

The interface (:class:`SaddleProblem`) is what every solver in :mod:`frugalml.subspace` talks
to: partial gradients, optional Hessian-vector products, an optional known saddle point, and a
counter of **gradient evaluations** that every method uses the same way (Choukroun,
Zibulevsky & Kisilev, arXiv 2008.09149, compare their method with these baselines):

* one evaluation of the pair ``(grad_x f, grad_y f)`` at a point counts **1**;
* one Hessian-vector product ``(Hxx p + Hxy q, Hyx p + Hyy q)`` counts **1** when it is a
  finite difference of gradients or a problem-supplied product of the same cost (for the
  bilinear and quadratic problems of :mod:`.problems` it is the same matrix-vector products as
  one gradient), and **2** when computed by torch double-backward.

Baselines (all with the same signature and result type :class:`SaddleResult`; every solver
takes ``history_every=k`` to keep only every k-th iterate in the history, for runs of millions
of iterations; the stopping test still runs at every iterate):

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
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .._results import ResultRepr
from .._validate import check_array, check_int, check_positive_float
from ..errors import FrugalError, InvalidInputError
from ..progress import Progress

__all__ = [
    "NonFiniteError",
    "SaddleProblem",
    "SaddleResult",
    "admm_equality_ls",
    "extragradient",
    "gda",
    "optimistic_gda",
    "proximal_point",
]

Callback = Callable[[int, np.ndarray, np.ndarray], Any]


class NonFiniteError(FrugalError, FloatingPointError):
    """An objective, gradient or Hessian-vector product returned NaN or inf.

    ``x`` and ``y`` hold the last iterate whose gradients were finite (copies), ``iteration``
    the iteration at which it happened and ``grad_evals`` the evaluations spent so far.
    """

    def __init__(self, message: str, *, x: Any, y: Any, iteration: int, grad_evals: int):
        self.x = x
        self.y = y
        self.iteration = iteration
        self.grad_evals = grad_evals
        super().__init__(
            f"{message} at iteration {iteration} (after {grad_evals} gradient evaluations); "
            "the last finite iterate is in the error's .x and .y; reduce the step size or "
            "the proximal parameter, or check the objective"
        )


class SaddleProblem:
    """``min_x max_y f(x, y)`` given by its partial gradients.

    Parameters
    ----------
    grad_x, grad_y:
        ``grad_x(x, y) -> (n,)`` and ``grad_y(x, y) -> (m,)`` for ``x`` of shape ``(n,)`` and
        ``y`` of shape ``(m,)`` (may be ``None`` when ``grads`` is given).
    grads:
        Optional ``grads(x, y) -> (grad_x, grad_y)`` computing both at once (e.g. one
        backward pass).
    n, m:
        Primal and dual dimensions.
    value:
        Optional ``f(x, y) -> float``.
    hvp:
        Optional ``hvp(x, y, p, q) -> (Hxx p + Hxy q, Hyx p + Hyy q)`` (the Jacobian of
        ``(grad_x, grad_y)`` applied to ``(p, q)``). Without it, a finite difference of
        gradients is used (one evaluation).
    x_star, y_star:
        A known saddle point (enables the ``distance`` metric).
    affine:
        The gradient map is affine (``f`` quadratic): Hessian-vector products are then exact
        by linearity and ``pd_sesop(inner="exact_quadratic")`` applies.
    bilinear:
        ``Hxx = 0`` and ``Hyy = 0`` (``f = x^T A y + b^T x + c^T y``): one product
        ``hvp(x, y, p, q) = (A q, A^T p)`` serves a primal and a dual direction at once.
    linear_system:
        Optional ``(J, c)`` with ``(grad_x, -grad_y)(z) = J z + c`` for ``z = (x, y)``; needed
        only by :func:`proximal_point`.
    lipschitz:
        Optional Lipschitz constant of the gradient map (default step sizes use it).
    metrics:
        Extra named metrics ``name -> fn(x, y) -> float`` recorded in every history (e.g. the
        constraint violation).

    Complexity: each :meth:`gradients` or :meth:`hvp` call costs what the user functions cost;
    the counter :attr:`grad_evals` is incremented by 1 (2 for torch double-backward HVPs).
    """

    def __init__(
        self,
        grad_x: Callable[[np.ndarray, np.ndarray], np.ndarray] | None,
        grad_y: Callable[[np.ndarray, np.ndarray], np.ndarray] | None,
        n: int,
        m: int,
        *,
        grads: Callable[[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]] | None = None,
        value: Callable[[np.ndarray, np.ndarray], float] | None = None,
        hvp: Callable[..., tuple[np.ndarray, np.ndarray]] | None = None,
        x_star: Any = None,
        y_star: Any = None,
        affine: bool = False,
        bilinear: bool = False,
        linear_system: tuple[np.ndarray, np.ndarray] | None = None,
        lipschitz: float | None = None,
        metrics: Mapping[str, Callable[[np.ndarray, np.ndarray], float]] | None = None,
        hvp_cost: int = 1,
        name: str = "saddle",
    ):
        if grads is None and not (callable(grad_x) and callable(grad_y)):
            raise InvalidInputError(
                "grad_x and grad_y must be callables f(x, y) -> array (or pass grads=)"
            )
        if grads is not None and not callable(grads):
            raise InvalidInputError("grads must be a callable (x, y) -> (grad_x, grad_y)")
        self._grads = grads
        self.n = check_int(n, "n", low=1)
        self.m = check_int(m, "m", low=1)
        self._grad_x, self._grad_y = grad_x, grad_y
        self._value, self._hvp = value, hvp
        self.x_star = None if x_star is None else check_array(x_star, "x_star", shape=(self.n,))
        self.y_star = None if y_star is None else check_array(y_star, "y_star", shape=(self.m,))
        if (self.x_star is None) != (self.y_star is None):
            raise InvalidInputError("give both x_star and y_star, or neither")
        self.bilinear = bool(bilinear)
        self.affine = bool(affine) or self.bilinear
        if linear_system is not None:
            jac = check_array(linear_system[0], "J", shape=(self.n + self.m, self.n + self.m))
            off = check_array(linear_system[1], "c", shape=(self.n + self.m,))
            linear_system = (jac, off)
        self.linear_system = linear_system
        self.lipschitz = None if lipschitz is None else check_positive_float(lipschitz, "L")
        self.metrics = dict(metrics or {})
        self.hvp_cost = check_int(hvp_cost, "hvp_cost", low=1)
        self.name = name
        self.grad_evals = 0
        self._zs_norm = (
            None
            if self.x_star is None
            else max(1.0, math.hypot(np.linalg.norm(self.x_star), np.linalg.norm(self.y_star)))
        )

    # -- oracle ---------------------------------------------------------------------------------

    @property
    def has_solution(self) -> bool:
        return self.x_star is not None

    def reset_count(self) -> None:
        self.grad_evals = 0

    def value(self, x: np.ndarray, y: np.ndarray) -> float:
        """``f(x, y)`` (not counted as a gradient evaluation)."""
        if self._value is None:
            raise InvalidInputError(f"problem {self.name!r} was built without value=")
        return float(self._value(x, y))

    def gradients(self, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(grad_x f(x, y), grad_y f(x, y))`` as float64 arrays; counts one evaluation.

        Raises :class:`NonFiniteError`-compatible ``FloatingPointError`` (caught and re-raised
        with the iterate by the solvers) when a gradient has NaN or inf.
        """
        self.grad_evals += 1
        if self._grads is not None:
            gx, gy = self._grads(x, y)
        else:
            gx, gy = self._grad_x(x, y), self._grad_y(x, y)
        gx = np.asarray(gx, dtype=np.float64)
        gy = np.asarray(gy, dtype=np.float64)
        self._check(gx, gy, "gradient")
        return gx, gy

    def hvp(
        self,
        x: np.ndarray,
        y: np.ndarray,
        p: np.ndarray,
        q: np.ndarray,
        g: tuple[np.ndarray, np.ndarray] | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """``(Hxx p + Hxy q, Hyx p + Hyy q)`` at ``(x, y)``.

        Uses the problem's ``hvp`` (counted ``hvp_cost``) or a one-sided finite difference of
        gradients (counted 1; ``g`` = gradients at ``(x, y)`` if already known, else one more
        evaluation). For affine problems the difference is exact up to rounding, so the step
        is taken large (``||t (p, q)|| = max(1, ||(x, y)||)``).
        """
        if self._hvp is not None:
            self.grad_evals += self.hvp_cost
            hx, hy = self._hvp(x, y, p, q)
            hx = np.asarray(hx, dtype=np.float64)
            hy = np.asarray(hy, dtype=np.float64)
            self._check(hx, hy, "Hessian-vector product")
            return hx, hy
        dn = math.hypot(np.linalg.norm(p), np.linalg.norm(q))
        if dn == 0.0:
            return np.zeros(self.n), np.zeros(self.m)
        zn = max(1.0, math.hypot(np.linalg.norm(x), np.linalg.norm(y)))
        t = zn / dn if self.affine else math.sqrt(np.finfo(float).eps) * zn / dn
        if g is None:
            g = self.gradients(x, y)
        gx1, gy1 = self.gradients(x + t * p, y + t * q)
        return (gx1 - g[0]) / t, (gy1 - g[1]) / t

    def _check(self, gx: np.ndarray, gy: np.ndarray, what: str) -> None:
        if gx.shape != (self.n,) or gy.shape != (self.m,):
            raise InvalidInputError(
                f"{what} of problem {self.name!r} has shapes {gx.shape}, {gy.shape}; "
                f"expected ({self.n},) and ({self.m},)"
            )
        if not (np.isfinite(gx).all() and np.isfinite(gy).all()):
            raise FloatingPointError(f"non-finite {what}")

    # -- metrics --------------------------------------------------------------------------------

    def distance(self, x: np.ndarray, y: np.ndarray) -> float:
        """``||(x, y) - (x*, y*)|| / max(1, ||(x*, y*)||)`` (relative distance to the saddle)."""
        if self.x_star is None:
            raise InvalidInputError(f"problem {self.name!r} has no known saddle point")
        d = math.hypot(np.linalg.norm(x - self.x_star), np.linalg.norm(y - self.y_star))
        return d / self._zs_norm

    def metric_names(self) -> list[str]:
        names = ["residual"]
        if self.has_solution:
            names.append("distance")
        return names + list(self.metrics)

    def check_point(self, x0: Any, y0: Any) -> tuple[np.ndarray, np.ndarray]:
        x = check_array(x0, "x0", shape=(self.n,)).copy()
        y = check_array(y0, "y0", shape=(self.m,)).copy()
        return x, y


@dataclass(frozen=True, repr=False)
class SaddleResult(ResultRepr):
    """Outcome of a saddle-point solver.

    ``history`` maps ``"evals"``, ``"seconds"``, ``"residual"`` (``||(grad_x, grad_y)||`` at
    the iterate, NaN where a method did not evaluate it there), ``"distance"`` (when the saddle
    is known) and the problem's extra metrics to arrays with one entry per recorded iterate
    (the first is the starting point).
    """

    method: str
    x: Any
    y: Any
    converged: bool
    diverged: bool
    iterations: int
    grad_evals: int
    seconds: float
    target: str
    tol: float
    history: dict[str, np.ndarray] = field(default_factory=dict)
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def final(self) -> float:
        """Last value of the target metric."""
        return float(self.history[self.target][-1])

    def evals_to(self, tol: float, metric: str | None = None) -> int | None:
        """Gradient evaluations when ``metric`` (default: the target) first fell to ``tol``."""
        h = self.history[metric or self.target]
        hit = np.flatnonzero(h <= tol)
        return None if hit.size == 0 else int(self.history["evals"][hit[0]])

    def seconds_to(self, tol: float, metric: str | None = None) -> float | None:
        h = self.history[metric or self.target]
        hit = np.flatnonzero(h <= tol)
        return None if hit.size == 0 else float(self.history["seconds"][hit[0]])

    def summary(self) -> str:
        state = "converged" if self.converged else ("diverged" if self.diverged else "stopped")
        return (
            f"{self.method}: {state} after {self.iterations} iterations, "
            f"{self.grad_evals} gradient evaluations, {self.seconds:.3g}s; "
            f"{self.target} = {self.final:.3e} (tol {self.tol:.1e})"
        )


class Recorder:
    """Shared bookkeeping of every solver: history, stopping test, divergence, callbacks."""

    def __init__(
        self,
        problem: SaddleProblem,
        method: str,
        *,
        tol: float,
        max_iter: int,
        max_evals: int | None,
        target: str | None,
        callback: Callback | None = None,
        progress: Progress | None = None,
        divergence: float = 1e8,
        history_every: int = 1,
    ):
        self.problem = problem
        self.history_every = check_int(history_every, "history_every", low=1)
        self.records = 0
        self.method = method
        self.tol = check_positive_float(tol, "tol")
        self.max_iter = check_int(max_iter, "max_iter", low=1)
        self.max_evals = None if max_evals is None else check_int(max_evals, "max_evals", low=1)
        names = problem.metric_names()
        if target is None:
            target = "distance" if problem.has_solution else "residual"
        if target not in names:
            raise InvalidInputError(
                f"target must be one of {', '.join(map(repr, names))} for problem "
                f"{problem.name!r}; got {target!r}"
            )
        self.target = target
        self.callback, self.progress = callback, progress
        self.divergence = divergence
        self.hist: dict[str, list[float]] = {k: [] for k in ["evals", "seconds", *names]}
        self.start_evals = problem.grad_evals
        self.t0 = time.perf_counter()
        self.paused = 0.0
        self.iterations = 0
        self.converged = False
        self.diverged = False
        self.first = None
        self.last_good: tuple[np.ndarray, np.ndarray] | None = None

    @property
    def evals(self) -> int:
        return self.problem.grad_evals - self.start_evals

    def record(self, x: np.ndarray, y: np.ndarray, residual: float = math.nan) -> bool:
        """Record the iterate; return True when the solver should stop.

        The stopping test runs at every call; the history keeps every ``history_every``-th
        iterate plus the last one (so ``evals_to(tol)`` is exact for the target when the
        solver converged, and a stride of iterates otherwise).
        """
        t_in = time.perf_counter()
        p = self.problem
        if self.target == "residual":
            value = residual
        elif self.target == "distance":
            value = p.distance(x, y)
        else:
            value = float(p.metrics[self.target](x, y))
        self.last_good = (x, y)
        if self.first is None:
            self.first = value if math.isfinite(value) else None
        stop = False
        if value <= self.tol:
            self.converged = stop = True
        elif not math.isfinite(value) or (
            self.first is not None and value > self.divergence * max(self.first, 1e-300)
        ):
            self.diverged = stop = True
        if self.iterations >= self.max_iter:
            stop = True
        if self.max_evals is not None and self.evals >= self.max_evals:
            stop = True
        if stop or self.records % self.history_every == 0:
            h = self.hist
            h["evals"].append(self.evals)
            h["seconds"].append(t_in - self.t0 - self.paused)
            h["residual"].append(residual)
            if p.has_solution:
                h["distance"].append(value if self.target == "distance" else p.distance(x, y))
            for name, fn in p.metrics.items():
                h[name].append(value if self.target == name else float(fn(x, y)))
        self.records += 1
        if self.callback is not None:
            self.callback(self.iterations, x, y)
        if self.progress is not None and self.iterations % 50 == 0:
            frac = self.iterations / self.max_iter
            if self.max_evals is not None:
                frac = max(frac, self.evals / self.max_evals)
            self.progress(f"{self.method}: {self.target} {value:.2e}", min(1.0, frac))
        self.paused += time.perf_counter() - t_in
        return stop

    def fail(self, exc: FloatingPointError, x: Any = None, y: Any = None) -> NonFiniteError:
        if x is None:
            x, y = self.last_good if self.last_good is not None else (None, None)
        return NonFiniteError(
            f"{self.method}: {exc}",
            x=None if x is None else np.array(x, copy=True),
            y=None if y is None else np.array(y, copy=True),
            iteration=self.iterations,
            grad_evals=self.evals,
        )

    def result(self, x: Any, y: Any, **info: Any) -> SaddleResult:
        return SaddleResult(
            method=self.method,
            x=x,
            y=y,
            converged=self.converged,
            diverged=self.diverged,
            iterations=self.iterations,
            grad_evals=self.evals,
            seconds=time.perf_counter() - self.t0 - self.paused,
            target=self.target,
            tol=self.tol,
            history={k: np.asarray(v, dtype=np.float64) for k, v in self.hist.items()},
            info=info,
        )


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


def _first_order(
    problem: SaddleProblem,
    x0: Any,
    y0: Any,
    method: str,
    make_step: Callable[[float], Step],
    lr: float | None,
    lr_factor: float,
    opts: dict[str, Any],
) -> SaddleResult:
    """Shared driver of the gradient baselines: ``make_step(lr)`` returns the update
    ``(x, y, grad_x, grad_y) -> (x+, y+)`` (it may call ``problem.gradients`` for extra
    evaluations, which the problem counts); the gradient at the new point is evaluated here."""
    problem = _check_problem(problem)
    x, y = problem.check_point(x0, y0)
    lr = _default_lr(problem, lr, lr_factor, method)
    step = make_step(lr)
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
    return rec.result(x, y, lr=lr)


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

    def make_step(lr: float) -> Step:
        return lambda x, y, gx, gy: (x - lr * gx, y + lr * gy)

    opts = dict(tol=tol, max_iter=max_iter, max_evals=max_evals, target=target,
                callback=callback, progress=progress, history_every=history_every)  # fmt: skip
    return _first_order(problem, x0, y0, "gda", make_step, lr, 0.5, opts)


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

    Converges on bilinear games for ``lr < 1/L`` at rate ``1 - O(1/kappa^2)`` per iteration;
    ``lr`` defaults to ``0.9 / L``.
    """

    def make_step(lr: float) -> Step:
        def step(x, y, gx, gy):
            hx, hy = problem.gradients(x - lr * gx, y + lr * gy)
            return x - lr * hx, y + lr * hy

        return step

    opts = dict(tol=tol, max_iter=max_iter, max_evals=max_evals, target=target,
                callback=callback, progress=progress, history_every=history_every)  # fmt: skip
    return _first_order(problem, x0, y0, "extragradient", make_step, lr, 0.9, opts)


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

    Converges on bilinear games for ``lr <= 1/(2L)``; ``lr`` defaults to ``0.45 / L``.
    """

    def make_step(lr: float) -> Step:
        previous: list[tuple[np.ndarray, np.ndarray]] = []  # G(z-), G(z) itself at the start

        def step(x, y, gx, gy):
            px, py = previous[0] if previous else (gx, gy)
            previous[:] = [(gx, gy)]
            return x - lr * (2 * gx - px), y + lr * (2 * gy - py)

        return step

    opts = dict(tol=tol, max_iter=max_iter, max_evals=max_evals, target=target,
                callback=callback, progress=progress, history_every=history_every)  # fmt: skip
    return _first_order(problem, x0, y0, "optimistic_gda", make_step, lr, 0.45, opts)


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
    rec = Recorder(problem, "proximal_point", tol=tol, max_iter=max_iter, max_evals=max_evals,
                   target=target, callback=callback, progress=progress,
                   history_every=history_every)  # fmt: skip
    try:
        gx, gy = problem.gradients(x, y)
        stop = rec.record(x, y, _norm2(gx, gy))
        z = np.concatenate([x, y])
        while not stop:
            z = scipy.linalg.lu_solve(lu, z - eta * off)
            x, y = z[:n], z[n:]
            rec.iterations += 1
            gx, gy = problem.gradients(x, y)
            stop = rec.record(x, y, _norm2(gx, gy))
    except FloatingPointError as exc:
        raise rec.fail(exc) from None
    return rec.result(x, y, eta=eta)


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
