"""Run bookkeeping shared by every saddle-point solver: the result type and the recorder.

:class:`Recorder` keeps the history of a run (gradient evaluations, seconds, residual,
distance to a known saddle, the problem's extra metrics), runs the stopping and divergence
tests at every iterate, calls ``callback`` and ``progress``, and builds the
:class:`SaddleResult`. The solvers are those of Choukroun, Zibulevsky & Kisilev,
"Primal-Dual Sequential Subspace Optimization for Saddle-point Problems" (arXiv 2008.09149)
and their first-order baselines (:mod:`.baselines`); all count gradient evaluations as
:mod:`.saddle_problem` describes.

Cost of :meth:`Recorder.record`: the target metric at every iterate, the other metrics at
every ``history_every``-th one; its own time is excluded from the recorded seconds.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .._results import ResultRepr
from .._validate import check_int, check_positive_float
from ..errors import InvalidInputError
from ..progress import Progress
from .saddle_problem import NonFiniteError, SaddleProblem

__all__ = ["Callback", "Recorder", "SaddleResult"]

#: per-iterate callback of the solvers: ``callback(iteration, x, y)``
Callback = Callable[[int, np.ndarray, np.ndarray], Any]


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
