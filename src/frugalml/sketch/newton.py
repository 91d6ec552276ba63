"""Distributed Newton sketch with debiased averaging, on any executor.

Derezinski, Bartan, Pilanci & Mahoney (NeurIPS 2020, arXiv 2007.01327); Bartan & Pilanci,
"Distributed Averaging Methods for Randomized Second Order Optimization" (arXiv 2002.06540);
naive averaging as in GIANT (Wang, Roosta, Xu & Mahoney, NeurIPS 2018).

Objective ``f(x) = loss(A x; y) + lam/2 ||x||^2`` with ``loss`` least squares
(``1/2 ||A x - y||^2``) or logistic (``sum log(1 + exp(-y_i a_i^T x))``, labels +-1 or 0/1).
Each iteration the master computes the exact gradient ``g`` and a Hessian square root ``B``
(``B^T B + lam I = H``: ``B = A`` for least squares, ``B = D^{1/2} A`` with
``D = diag(p (1 - p))`` for logistic) and sends ``(B, g)`` to ``q`` workers. Worker ``k`` draws
its sketch ``S_k`` (size ``m_k``) and returns ``mu_k (B^T S_k^T S_k B + lam_k I)^{-1} g`` with the
correction of :mod:`.debias` (``averaging="debiased"``), or ``(B^T S^T S B + lam I)^{-1} g``
(``"naive"``). The master averages what arrived (first ``k``, or by ``deadline``) with weights
``∝ m_k - d_lambda``, or uniform, or by **determinantal averaging** (Derezinski & Mahoney 2019):
workers solve the naive local problem, weights ``∝ det(B^T S_k^T S_k B + lam I)``, and the
average is rescaled by ``(m - d_lambda + 1)/m`` (exact for Gaussian sketches at ``lam = 0``,
from ``E[adj(W)] / E[det(W)]`` of a Wishart matrix), and steps ``x <- x - t d`` (``t = 1``
for quadratics, backtracking Armijo search for logistic). ``averaging="exact"`` takes the
exact Newton step (the baseline).
Least squares with ``lam = 0`` is the distributed iterative Hessian sketch.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import scipy.linalg
import scipy.special

from .._validate import (
    RngLike,
    check_array,
    check_choice,
    check_int,
    check_nonnegative_float,
    check_positive_float,
    check_rng,
)
from ..errors import InvalidInputError, TaskFailedError
from ..runtime import Executor, make_executor
from .debias import correction
from .distributed import worker_sizes
from .effective import effective_dimension
from .factory import SKETCHES, make_sketch
from .lstsq import SketchedFactor

__all__ = ["LOSSES", "NewtonProblem", "NewtonResult", "distributed_newton", "newton_task"]

LOSSES = ("least-squares", "logistic")
Averaging = Literal["debiased", "naive", "exact"]


@dataclass(frozen=True)
class NewtonProblem:
    """``f(x) = loss(A x; y) + lam/2 ||x||^2``; ``a`` (n, d), ``y`` (n,) (logistic: +-1)."""

    a: np.ndarray
    y: np.ndarray
    lam: float
    loss: str

    @classmethod
    def build(cls, a: Any, y: Any, lam: float, loss: str) -> NewtonProblem:
        loss = check_choice(loss, "loss", LOSSES)
        a = check_array(a, "A", ndim=2)
        y = check_array(y, "y", shape=(a.shape[0],))
        lam = check_nonnegative_float(lam, "lam")
        if loss == "logistic":
            labels = np.unique(y)
            if labels.size > 2 or not (set(labels) <= {0.0, 1.0} or set(labels) <= {-1.0, 1.0}):
                raise InvalidInputError(
                    f"logistic regression needs binary labels (0/1 or -1/+1), got values "
                    f"{labels[:6].tolist()}{' ...' if labels.size > 6 else ''}"
                )
            y = np.where(y > 0, 1.0, -1.0)
            if lam == 0.0:
                raise InvalidInputError(
                    "logistic regression needs lam > 0 (separable data has no minimiser)"
                )
        elif lam == 0.0 and a.shape[0] < a.shape[1]:
            raise InvalidInputError("least squares with n < d needs lam > 0")
        return cls(a, y, lam, loss)

    def value(self, x: np.ndarray) -> float:
        z = self.a @ x
        if self.loss == "least-squares":
            r = z - self.y
            data = 0.5 * float(r @ r)
        else:
            data = float(np.sum(np.logaddexp(0.0, -self.y * z)))
        return data + 0.5 * self.lam * float(x @ x)

    def gradient(self, x: np.ndarray) -> np.ndarray:
        z = self.a @ x
        if self.loss == "least-squares":
            return self.a.T @ (z - self.y) + self.lam * x
        s = -self.y * scipy.special.expit(-self.y * z)
        return self.a.T @ s + self.lam * x

    def hessian_sqrt(self, x: np.ndarray) -> np.ndarray:
        """``B`` (n, d) with ``B^T B + lam I`` the Hessian at ``x``."""
        if self.loss == "least-squares":
            return self.a
        p = scipy.special.expit(self.a @ x)
        return self.a * np.sqrt(p * (1.0 - p))[:, None]

    def newton_direction(self, x: np.ndarray, g: np.ndarray) -> np.ndarray:
        b = self.hessian_sqrt(x)
        h = b.T @ b + self.lam * np.eye(b.shape[1])
        return scipy.linalg.solve(h, g, assume_a="pos")


def newton_task(
    b: np.ndarray, g: np.ndarray, sketch: Any, seed: int, lam_local: float, step: float
) -> tuple[np.ndarray, float]:
    """One worker: ``(step (B^T S^T S B + lam_local I)^{-1} g, log det(...))``."""
    sb = sketch.draw(b.shape[0], data=b, rng=seed).apply(b)
    factor = SketchedFactor(sb, lam_local)
    return step * factor.apply_inverse_gram(g), factor.logdet


@dataclass(frozen=True)
class NewtonResult:
    """A distributed Newton run.

    x: (d,) final iterate. history: per iteration ``(f(x), ||g||, seconds so far, workers
    averaged)`` starting with the initial point. converged: ``||g|| <= tol * ||g_0||``.
    """

    x: np.ndarray
    averaging: str
    loss: str
    lam: float
    iterations: int
    converged: bool
    history: tuple[tuple[float, float, float, int], ...] = field(repr=False)
    sizes: tuple[int, ...] = ()
    corrections: tuple[tuple[float, float], ...] = ()
    #: per iteration, the seconds the master waited for the workers (``Gathered.elapsed``:
    #: simulated seconds when the executor runs on a simulated clock)
    round_seconds: tuple[float, ...] = ()

    @property
    def objective(self) -> float:
        return self.history[-1][0]

    def summary(self) -> str:
        status = "converged" if self.converged else "NOT converged"
        return (
            f"{self.averaging} Newton sketch ({self.loss}, lam={self.lam:g}): {self.iterations} "
            f"iterations, f = {self.objective:.10g}, ||g|| = {self.history[-1][1]:.3g}, "
            f"{self.history[-1][2]:.3g}s, {status}"
        )


def _sizes(m: int | Sequence[int] | None, q: int, d: int, d_lam: float) -> tuple[int, ...]:
    if m is None:
        return (int(max(4 * d, np.ceil(4 * d_lam) + 10)),) * q
    return worker_sizes(m, q)


def distributed_newton(
    a: Any,
    y: Any,
    *,
    loss: Literal["least-squares", "logistic"] = "least-squares",
    lam: float = 0.0,
    q: int = 4,
    m: int | Sequence[int] | None = None,
    sketch: str = "gaussian",
    averaging: Averaging = "debiased",
    weights: Literal["size", "uniform", "determinantal"] = "size",
    executor: Executor | None = None,
    k: int | None = None,
    deadline: float | None = None,
    max_iter: int = 50,
    tol: float = 1e-10,
    x0: Any = None,
    d_lambda: float | None = None,
    rng: RngLike = None,
    callback: Callable[[int, np.ndarray, float], None] | None = None,
) -> NewtonResult:
    """Minimise ``f`` by Newton steps with averaged sketched Hessians (module docstring).

    ``a`` (n, d), ``y`` (n,). ``m``: sketch size (default ``max(4 d, 4 d_lambda + 10)``) or one
    per worker. ``d_lambda``: the effective dimension of the Hessian square root (default:
    computed exactly at the start; for logistic, re-estimated from ``B`` every iteration — by
    SVD when ``n d^2 <= 5e8``, else from a sparse sketch of ``B``). Stops when
    ``||g|| <= tol ||g_0||`` or after ``max_iter``. ``callback(iteration, x, f)`` is called
    after every step.
    """
    prob = NewtonProblem.build(a, y, lam, loss)
    averaging = check_choice(averaging, "averaging", ("debiased", "naive", "exact"))
    weights = check_choice(weights, "weights", ("size", "uniform", "determinantal"))
    sketch = check_choice(sketch, "sketch", (*SKETCHES, "surrogate"))
    q = check_int(q, "q (number of workers)", low=1)
    max_iter = check_int(max_iter, "max_iter", low=1)
    tol = check_positive_float(tol, "tol")
    if k is not None:
        k = check_int(k, "k", low=1, high=q)
    if deadline is not None:
        deadline = check_positive_float(deadline, "deadline")
    d = prob.a.shape[1]
    x = np.zeros(d) if x0 is None else check_array(x0, "x0", shape=(d,)).copy()
    gen = check_rng(rng)
    fixed_dlam = d_lambda is not None
    d_lam = (
        float(d_lambda)
        if fixed_dlam
        else _effective_dimension(prob.hessian_sqrt(x), prob.lam, gen, sketch)
    )
    sizes = _sizes(m, q, d, d_lam)
    own = executor is None and averaging != "exact"
    ex = make_executor("local-thread") if own else executor
    t0 = time.perf_counter()
    g = prob.gradient(x)
    g0 = float(np.linalg.norm(g))
    fx = prob.value(x)
    history = [(fx, g0, 0.0, 0)]
    converged = g0 == 0.0
    its = 0
    corr = ()
    rounds: list[float] = []
    try:
        for its in range(1, max_iter + 1):
            if converged:
                its -= 1
                break
            b = prob.hessian_sqrt(x)
            if averaging == "exact":
                direction, used = prob.newton_direction(x, g), 0
            else:
                if prob.loss == "logistic" and not fixed_dlam and averaging == "debiased":
                    # naive averaging never uses d_lambda: skip the per-iteration estimate
                    d_lam = _effective_dimension(b, prob.lam, gen, sketch)
                # determinantal averaging debiases by its weights: workers solve the naive
                # local problem and the master rescales (see _averaged_direction)
                local_debias = averaging == "debiased" and weights != "determinantal"
                corr = tuple(
                    correction(prob.lam, d_lam, mk, debias=local_debias, sketch=sketch)
                    for mk in sizes
                )
                direction, used, waited = _averaged_direction(
                    ex,
                    b,
                    g,
                    sketch,
                    prob.lam,
                    sizes,
                    corr,
                    weights,
                    d_lam,
                    k,
                    deadline,
                    gen,
                    averaging == "debiased",
                )
                rounds.append(waited)
            x, g, fx = _step(prob, x, g, fx, direction)
            gn = float(np.linalg.norm(g))
            history.append((fx, gn, time.perf_counter() - t0, used))
            if callback is not None:
                callback(its, x, fx)
            if not np.isfinite(fx):
                break
            converged = gn <= tol * g0
    finally:
        if own:
            ex.close()
    return NewtonResult(
        x=x, averaging=averaging, loss=prob.loss, lam=prob.lam, iterations=its,
        converged=converged, history=tuple(history), sizes=sizes,
        corrections=tuple((c.lam_local, c.step) for c in corr),
        round_seconds=tuple(rounds),
    )  # fmt: skip


#: above this n d^2, d_lambda of the logistic Hessian is re-estimated from a sparse sketch
#: instead of an SVD (which would cost as much as forming the exact Hessian)
EXACT_DLAM_FLOPS = 5e8


def _effective_dimension(
    b: np.ndarray, lam: float, gen: np.random.Generator, sketch: str = "sparse-sign"
) -> float:
    """d_lambda of ``B^T B + lam I``: exact (SVD) when cheap, else from an ``8d``-row sketch —
    uniform rows when the workers sample uniformly (``O(d^3)``, no pass over ``B``; as accurate
    as the workers' own sketches assume), otherwise a sparse sign sketch (``O(nnz(B))``)."""
    n, d = b.shape
    if n * d * d <= EXACT_DLAM_FLOPS:
        return effective_dimension(b, lam)
    if sketch == "uniform" and n > 8 * d:
        rows = gen.choice(n, size=8 * d, replace=False)
        return effective_dimension(b[rows] * np.sqrt(n / (8.0 * d)), lam)
    return effective_dimension(b, lam, method="sketch", rng=gen)


def _make(sketch: str, m: int, lam: float):
    if sketch == "surrogate":  # built for the original lam; the worker uses lam' (debias)
        from .surrogate import SurrogateSketch

        return SurrogateSketch(m, lam=lam)
    return make_sketch(sketch, m)


def _averaged_direction(
    ex, b, g, sketch, lam, sizes, corr, weights, d_lam, k, deadline, gen, debias
):
    seeds = gen.integers(0, 2**63 - 1, size=len(sizes))
    handles = []
    for i, mk in enumerate(sizes):
        sk = _make(sketch, mk, lam)
        handles.append(ex.submit(newton_task, b, g, sk, int(seeds[i]), corr[i].lam_local,
                                 corr[i].step))  # fmt: skip
    got = ex.gather(handles, k=k, deadline=deadline)
    if got.pending:
        ex.cancel([handles[i] for i in got.pending])
    arrived = got.finished
    if not arrived:
        raise TaskFailedError(f"no worker returned a Newton direction ({got.summary()})")
    dirs = np.stack([got.results[i][0] for i in arrived])
    if weights == "determinantal":
        logdets = np.array([got.results[i][1] for i in arrived])
        w = np.exp(logdets - logdets.max())
        w = w / w.sum()
        direction = w @ dirs
        if debias:
            # Gaussian, lam = 0: E[adj(H_k)] / E[det(H_k)] = m / (m - d + 1) H^{-1} (Wishart
            # moments), so the determinantal average is rescaled by (m - d + 1)/m; with
            # d -> d_lambda for lam > 0 (approximate there)
            direction = direction * float(
                sum(wk * (sizes[i] - d_lam + 1.0) / sizes[i] for wk, i in zip(w, arrived,
                                                                                strict=True))
            )  # fmt: skip
        return direction, len(arrived), float(got.elapsed)
    if weights == "size":
        w = np.array([max(sizes[i] - d_lam, 1.0) for i in arrived])
    else:
        w = np.ones(len(arrived))
    w = w / w.sum()
    return w @ dirs, len(arrived), float(got.elapsed)


def _step(prob: NewtonProblem, x, g, f0: float, direction):
    """``(x, g, f)`` after the step; ``f0 = f(x)`` is known, so each trial costs one pass."""
    if prob.loss == "least-squares":
        x_new = x - direction
        return x_new, prob.gradient(x_new), prob.value(x_new)
    slope = float(g @ direction)
    t = 1.0
    if slope <= 0:  # not a descent direction (should not happen with a PD estimate)
        direction, slope = g, float(g @ g)
    # Armijo with a rounding allowance: near the optimum the decrease falls below eps |f|
    # and a strict test would reject every step and stall
    slack = 8.0 * np.finfo(float).eps * max(abs(f0), 1.0)
    while t > 1e-10:
        x_new = x - t * direction
        f_new = prob.value(x_new)
        if f_new <= f0 - 1e-4 * t * slope + slack:
            return x_new, prob.gradient(x_new), f_new
        t *= 0.5
    return x, g, f0
