"""Straggler-resilient evolution strategies with coded search directions (:class:`CodedES`).

Bartan & Pilanci, "Distributed Black-Box Optimization via Error Correcting Codes"
(arXiv 1907.05984). Every iteration draws K directions, encodes them into N coded directions
(:class:`~.estimator.CodedDirections`), sends worker j the central difference along w_j, and
stops waiting as soon as the arrived outputs are decodable (or at a deadline, then takes the
anytime estimate); the decoded gradient estimate drives a gradient step or a sign step
(l_inf attacks, Ilyas et al. 2018, arXiv 1804.08598), optionally with Adam moments and a
projection (a callable and/or an l_inf ball).

The uncoded baselines with the same interface are in :mod:`.baselines`, the results
(:class:`~.results.StepInfo`, :class:`~.results.ESResult`) in :mod:`.results`.

Two ways to run the workers:

* ``executor``: any :mod:`frugalml.runtime` executor, e.g. a ``FaultInjector`` with a
  straggler model on the wall or simulated clock. The master checks decodability on every
  arrival (``on_result``) and cancels the rest, as :func:`frugalml.coded.coded_matmul` does.
* ``executor=None``: every finite difference is evaluated in this process (one batched call
  with ``batched=True``) and completion times are drawn from ``stragglers`` (a
  :class:`~frugalml.runtime.StragglerModel`): the simulated clock. The stopping time is the
  first prefix of the arrival order that is decodable (one vectorised SC pass over every
  prefix for the polar code, binary search with O(log N) checks otherwise).

Per iteration the cost is 2N function evaluations (N + 1 with forward differences), plus
one evaluation of f at the new iterate for the loss history (``monitor_evaluations``).

Divergence: a gradient step larger than 2 / L (L the gradient's Lipschitz constant near the
iterates) makes plain ES diverge -- e.g. the default ``step=0.1`` on the Rosenbrock function,
whose L is in the thousands at its usual start. :meth:`CodedES.run` stops as soon as an
iterate or its loss is non-finite, or the loss has grown past ``f(x0) + max_growth *
max(|f(x0)|, 1)``; the result then has ``diverged=True`` and ``stopped_by="diverged"``, and a
:class:`DivergenceWarning` is issued (``on_divergence="raise"`` raises :class:`DivergedError`
instead). Smaller steps, ``adam=True`` (a step of about ``step`` per coordinate whatever the
gradient's scale) or ``step_rule="sign"`` avoid it.

Data placed once: with an executor, the objective (with whatever it holds: data, a model) is
placed with it once (``executor.share``) on the first round of a :meth:`CodedES.run` and
released when the run ends (or on :meth:`CodedES.close` after manual :meth:`CodedES.step`
calls); per round a task carries only the objective's reference, the iterate x (d,), its
coded direction w_j (d,) and a few scalars, so the bytes per round are O(N d) whatever the
objective's size. ``StepInfo`` and ``ESResult`` report the bytes moved.
"""

from __future__ import annotations

import math
import time
import warnings
from collections.abc import Callable
from typing import Any, Literal

import numpy as np

from ..._resources import check_memory
from ..._validate import (
    RngLike,
    check_array,
    check_choice,
    check_int,
    check_nonnegative_float,
    check_positive_float,
    check_probability,
    check_rng,
)
from ...errors import FrugalError, InvalidInputError, TaskFailedError
from ...progress import Progress
from ...runtime import Executor, StragglerModel
from .._shared import place, release
from ..base import RealLinearCode
from .differences import call_objective, evaluate_differences, finite_difference
from .estimator import CodedDirections
from .results import ESResult, StepInfo

__all__ = ["CodedES", "DivergedError", "DivergenceWarning", "Wait"]

Wait = Literal["decodable", "all"] | int


class DivergenceWarning(RuntimeWarning):
    """An evolution strategy stopped because its iterates diverged (see ``ESResult.diverged``)."""


class DivergedError(FrugalError, RuntimeError):
    """An evolution strategy diverged (``on_divergence="raise"``; the CLI reports it so)."""


class CodedES:
    """Evolution strategy with coded search directions (see the module docstring).

    Parameters
    ----------
    objective:
        f(x) -> float for x of shape (d,) (or (m, d) -> (m,) with ``batched=True``). Must be
        picklable for process executors. Non-finite values are erasures.
    x0:
        (d,) finite starting point.
    n_directions, n_workers:
        K directions and N workers (K <= N; default K = min(d, N // 2), uncoded: K = N).
    code, directions, decoder, anytime, design_erasure, encoding:
        See :class:`~.estimator.CodedDirections` (``encoding``: ``"fast"`` code transform,
        ``"dense"`` G^T V, ``"auto"``; the iterates are the same up to float rounding).
    sigma:
        Finite-difference step s > 0.
    step:
        Step size (learning rate) > 0.
    step_rule:
        ``"gradient"`` (x -= step * d) or ``"sign"`` (x -= step * sign(d)), d the (Adam-)
        direction.
    antithetic:
        Central differences (2 evaluations per worker) or forward differences (1, plus f(x)).
    adam, betas:
        Use Adam moments of the gradient estimates (eps 1e-8).
    projection:
        Callable applied to every new iterate (d,) -> (d,).
    linf_ball:
        ``(center (d,), radius)``: iterates are clipped to the l_inf ball (before
        ``projection``).
    executor:
        A runtime executor; None evaluates in this process on the simulated clock. The
        objective is placed with it once per :meth:`run` (see the module docstring).
    stragglers:
        Completion-time model for ``executor=None`` (None: every worker arrives at time 0).
    deadline:
        Seconds to wait per iteration (simulated seconds on the simulated clock); then the
        anytime estimate is used.
    wait:
        ``"decodable"`` (stop at the first decodable arrived set), ``"all"``, or an int m
        (the first m finite arrivals).
    batched:
        The objective evaluates a batch (m, d) -> (m,).
    max_growth:
        Divergence bound of :meth:`run`: stop when f(x_t) > f(x0) + max_growth * max(|f(x0)|,
        1) (None: only non-finite iterates or losses count as divergence).
    on_divergence:
        ``"warn"`` (stop, ``diverged=True`` in the result, a :class:`DivergenceWarning`) or
        ``"raise"`` (:class:`DivergedError`).
    rng:
        Seed or generator: directions, code randomisation, simulated straggler times.

    ``x0`` must have the objective's dimension when the objective declares one (an int
    attribute ``dim``, as the test functions of :mod:`.functions` do).
    """

    name = "coded-es"

    def __init__(
        self,
        objective: Callable[[np.ndarray], Any],
        x0: np.ndarray,
        *,
        n_directions: int | None = None,
        n_workers: int = 64,
        code: str | RealLinearCode = "polar",
        directions: str = "orthogonal",
        sigma: float = 1e-3,
        step: float = 0.1,
        step_rule: Literal["gradient", "sign"] = "gradient",
        antithetic: bool = True,
        adam: bool = False,
        betas: tuple[float, float] = (0.9, 0.999),
        projection: Callable[[np.ndarray], np.ndarray] | None = None,
        linf_ball: tuple[np.ndarray, float] | None = None,
        executor: Executor | None = None,
        stragglers: StragglerModel | None = None,
        deadline: float | None = None,
        wait: Wait = "decodable",
        decoder: Literal["sc", "lstsq"] = "sc",
        anytime: Literal["hybrid", "unbiased", "lstsq"] = "hybrid",
        design_erasure: float = 0.25,
        encoding: Literal["auto", "fast", "dense"] = "auto",
        batched: bool = False,
        max_growth: float | None = 1e6,
        on_divergence: Literal["warn", "raise"] = "warn",
        rng: RngLike = None,
    ):
        if not callable(objective):
            raise InvalidInputError("objective must be callable: f(x) -> float")
        self.objective = objective
        x = check_array(x0, "x0", ndim=1)
        self.dim = x.size
        declared = getattr(objective, "dim", None)
        is_int = isinstance(declared, (int, np.integer)) and not isinstance(declared, bool)
        if is_int and int(declared) != self.dim:
            raise InvalidInputError(
                f"x0 has {self.dim} entries but the objective {objective!r} has dimension "
                f"{int(declared)}; give an x0 of shape ({int(declared)},)"
            )
        self.max_growth = (
            None if max_growth is None else check_positive_float(max_growth, "max_growth")
        )
        self.on_divergence = check_choice(on_divergence, "on_divergence", ("warn", "raise"))
        self.sigma = check_positive_float(sigma, "sigma")
        self.step_size = check_positive_float(step, "step")
        self.step_rule = check_choice(step_rule, "step_rule", ("gradient", "sign"))
        self.antithetic = bool(antithetic)
        self.adam = bool(adam)
        b1 = check_probability(betas[0], "betas[0]", allow_one=False)
        b2 = check_probability(betas[1], "betas[1]", allow_one=False)
        self.betas = (b1, b2)
        self.batched = bool(batched)
        if projection is not None and not callable(projection):
            raise InvalidInputError("projection must be a callable (d,) -> (d,) or None")
        self.projection = projection
        self.linf_ball = None
        if linf_ball is not None:
            try:
                center, radius = linf_ball
            except (TypeError, ValueError):
                raise InvalidInputError("linf_ball must be a pair (center, radius)") from None
            center = check_array(center, "linf_ball center", shape=(self.dim,))
            self.linf_ball = (center, check_nonnegative_float(radius, "linf_ball radius"))
        if executor is not None and not isinstance(executor, Executor):
            raise InvalidInputError("executor must implement the frugalml.runtime Executor API")
        if executor is not None and stragglers is not None:
            raise InvalidInputError(
                "stragglers= is for executor=None (simulated in process); wrap the executor "
                "in frugalml.runtime.FaultInjector(executor, stragglers=...) instead"
            )
        if stragglers is not None and not isinstance(stragglers, StragglerModel):
            raise InvalidInputError("stragglers must be a frugalml.runtime.StragglerModel")
        self.executor = executor
        self.stragglers = stragglers
        self.deadline = None if deadline is None else check_nonnegative_float(deadline, "deadline")
        n = check_int(n_workers, "n_workers", low=1)
        if n_directions is None:
            n_directions = n if code == "none" else max(1, min(self.dim, n // 2))
        k = check_int(n_directions, "n_directions", low=1)
        # the generator (K, N) (polar: the full N x N transform), the directions (K, d), the
        # coded directions (N, d) and the 2N evaluation points (2N, d), float64; a full block
        # of d orthogonal directions (K >= d) also needs its d x d QR
        gen_cols = n if code == "polar" else min(k, n)
        qr = self.dim**2 if directions == "orthogonal" and k >= self.dim else 0
        check_memory(
            8.0 * (n * gen_cols + k * self.dim + 3.0 * n * self.dim + qr),
            f"coded ES with N={n} workers, K={k} directions in dimension d={self.dim}",
            fix="use fewer workers (n_workers) or directions, or a smaller dimension",
        )
        self._gen = check_rng(rng)
        self.coder = CodedDirections(
            self.dim, n_directions, n, code=code, directions=directions, decoder=decoder,
            anytime=anytime, design_erasure=design_erasure, encoding=encoding, rng=self._gen,
        )  # fmt: skip
        self.n_workers, self.n_directions = n, self.coder.k
        if wait in ("decodable", "all"):
            self.wait: Wait = wait
        elif isinstance(wait, (int, np.integer)) and not isinstance(wait, bool):
            self.wait = check_int(wait, "wait", low=1, high=n)
        else:
            raise InvalidInputError(
                f"wait must be 'decodable', 'all' or a number of arrivals 1..{n}, got {wait!r}"
            )
        self.x = x.copy()
        self.iteration = 0
        self._objective_ref: Any = None  # the objective as placed with the executor
        self._round_bytes = (0, 0, 0)  # sent, received, placed in the last executor round
        self._m = np.zeros(self.dim)
        self._v = np.zeros(self.dim)
        try:
            self.loss = self._evaluate_at(self.x, "x0")
        except (ValueError, IndexError, TypeError) as exc:
            if isinstance(exc, FrugalError):
                raise
            raise InvalidInputError(
                f"the objective failed at x0 of shape {x.shape} ({type(exc).__name__}: {exc}); "
                "check that x0 has the dimension the objective expects"
            ) from exc
        self.f0 = self.loss
        if not math.isfinite(self.loss):
            raise InvalidInputError(
                f"objective(x0) = {self.loss}; start from a point where f is finite"
            )

    # -- evaluation --------------------------------------------------------------------------
    def _evaluate_at(self, x: np.ndarray, where: str) -> float:
        try:
            return float(call_objective(self.objective, x[None, :], self.batched)[0])
        except InvalidInputError as exc:
            raise InvalidInputError(f"{exc} (evaluating f at {where})") from None

    def _stop_ok(self, mask: np.ndarray) -> bool:
        if self.wait == "all":
            return bool(mask.all())
        if self.wait == "decodable":
            return self.coder.decodable(mask)
        return int(mask.sum()) >= self.wait

    def _simulated_round(self, w: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
        n = self.n_workers
        f0 = None if self.antithetic else self.loss
        vals = evaluate_differences(
            self.objective, self.x, w, self.sigma, antithetic=self.antithetic, f0=f0,
            batched=self.batched,
        )  # fmt: skip
        times = self.stragglers.sample(n, self._gen) if self.stragglers else np.zeros(n)
        order = np.argsort(times, kind="stable")
        finite = np.isfinite(vals)
        limit = n
        if self.deadline is not None:
            limit = int(np.searchsorted(times[order], self.deadline, side="right"))

        def prefix(t: int) -> np.ndarray:
            mask = np.zeros(n, dtype=bool)
            mask[order[:t]] = True
            return mask

        if self.wait == "all":
            ok_at = n if limit == n else None
        elif self.wait == "decodable":
            ok_at = self.coder.first_decodable(order, finite, limit)
        else:  # the first time m finite outputs have arrived
            count = np.cumsum(finite[order[:limit]])
            enough = count >= self.wait
            ok_at = int(np.argmax(enough)) + 1 if enough.any() else None
        if ok_at is not None:
            t_stop = ok_at
            clock = float(times[order[t_stop - 1]]) if t_stop else 0.0
        else:
            t_stop = limit
            clock = self.deadline if self.deadline is not None else float(times.max())
        arrived = prefix(t_stop)
        return vals, arrived, arrived & ~finite, clock

    def _executor_round(self, w: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
        ex = self.executor
        n = self.n_workers
        vals = np.full(n, np.nan)
        arrived = np.zeros(n, dtype=bool)
        finite = np.zeros(n, dtype=bool)
        f0 = None if self.antithetic else self.loss

        def on_result(i: int, value: Any) -> bool:
            vals[i] = value
            arrived[i] = True
            finite[i] = math.isfinite(value)
            if self.wait == "all":
                return False
            return self._stop_ok(finite)

        placed = 0
        if self._objective_ref is None:  # first round: place the objective once
            self._objective_ref = place(ex, self.objective)
            placed = int(getattr(self._objective_ref, "nbytes", 0))
        objective = self._objective_ref
        t0 = time.perf_counter()
        x = self.x.copy()
        args = (self.sigma, self.antithetic, f0, self.batched)
        handles = [ex.submit(finite_difference, objective, x, w[j], *args) for j in range(n)]
        got = ex.gather(handles, deadline=self.deadline, on_result=on_result)
        self._round_bytes = (got.total_bytes_sent, got.total_bytes_received, placed)
        if got.pending:
            ex.cancel([handles[i] for i in got.pending])
        for i, fail in got.failures.items():
            if fail.error_type == "InvalidInputError":
                raise InvalidInputError(f"worker {i}: {fail.message}")
            arrived[i] = True  # a failed worker is an erasure
        if got.failures and not got.results and not got.pending:
            first = next(iter(got.failures.values()))
            raise TaskFailedError(f"every worker failed, e.g. {first}")
        clock = got.seconds if got.clock == "simulated" else time.perf_counter() - t0
        return vals, arrived, arrived & ~finite, float(clock)

    # -- iteration ---------------------------------------------------------------------------
    def _direction(self, g: np.ndarray) -> np.ndarray:
        d = g
        if self.adam:
            b1, b2 = self.betas
            t = self.iteration + 1
            self._m = b1 * self._m + (1 - b1) * g
            self._v = b2 * self._v + (1 - b2) * g * g
            d = (self._m / (1 - b1**t)) / (np.sqrt(self._v / (1 - b2**t)) + 1e-8)
        return np.sign(d) if self.step_rule == "sign" else d

    def _project(self, x: np.ndarray) -> np.ndarray:
        if self.linf_ball is not None:
            c, r = self.linf_ball
            x = np.clip(x, c - r, c + r)
        if self.projection is not None:
            x = check_array(self.projection(x), "projection(x)", shape=(self.dim,))
        return x

    def step(self) -> StepInfo:
        """One iteration: draw, evaluate, decode, update. Returns the new loss and times."""
        t0 = time.perf_counter()
        v = self.coder.sample()
        t_draw = time.perf_counter()
        w = self.coder.encode(v)
        t_enc = time.perf_counter()
        self._round_bytes = (0, 0, 0)
        if self.executor is None:
            vals, arrived, erased, clock = self._simulated_round(w)
        else:
            vals, arrived, erased, clock = self._executor_round(w)
        t1 = time.perf_counter()
        est = self.coder.estimate(vals, arrived, v, erased)
        decode_seconds = time.perf_counter() - t1
        self.x = self._project(self.x - self.step_size * self._direction(est.gradient))
        self.iteration += 1
        self.loss = self._evaluate_at(self.x, f"iteration {self.iteration}")
        evals = self.n_workers * (2 if self.antithetic else 1)
        return StepInfo(self.iteration, self.loss, est, clock, time.perf_counter() - t0,
                        decode_seconds, evals, *self._round_bytes, draw_seconds=t_draw - t0,
                        encode_seconds=t_enc - t_draw, eval_seconds=t1 - t_enc)  # fmt: skip

    def close(self) -> None:
        """Release the objective placed with the executor (a later step places it again).
        :meth:`run` does this when it ends; call it after manual :meth:`step` calls."""
        ref, self._objective_ref = self._objective_ref, None
        if ref is not None and self.executor is not None:
            release(self.executor, [ref])

    def __enter__(self):
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def run(
        self,
        n_iter: int,
        *,
        target: float | None = None,
        stop: Callable[[np.ndarray, float], bool] | None = None,
        progress: Progress | None = None,
    ) -> ESResult:
        """Iterate up to ``n_iter`` times, stopping early once f(x) <= ``target`` or
        ``stop(x, loss)`` is true. ``progress(message, fraction)`` is called per iteration.

        With an executor the objective is placed once, on the first round, and released when
        the run ends (also on an error)."""
        n_iter = check_int(n_iter, "n_iter", low=0)
        try:
            return self._run(n_iter, target, stop, progress)
        finally:
            self.close()

    def _run(
        self,
        n_iter: int,
        target: float | None,
        stop: Callable[[np.ndarray, float], bool] | None,
        progress: Progress | None,
    ) -> ESResult:
        if target is not None:
            target = float(target)
        losses = [self.loss]
        sim, wall, evals, arr, era, exact, methods = [], [], [], [], [], [], []
        sent, received, placed = [], [], 0
        stopped_by = "iterations"
        if target is not None and self.loss <= target:
            stopped_by = "target"
        elif stop is not None and stop(self.x.copy(), self.loss):
            stopped_by = "stop"
        for it in range(n_iter if stopped_by == "iterations" else 0):
            info = self.step()
            losses.append(info.loss)
            sim.append(info.sim_seconds)
            wall.append(info.wall_seconds)
            evals.append(info.evaluations)
            arr.append(info.estimate.n_arrived)
            era.append(info.estimate.n_erased)
            exact.append(info.estimate.exact)
            methods.append(info.estimate.method)
            sent.append(info.bytes_sent)
            received.append(info.bytes_received)
            placed += info.bytes_placed
            if progress is not None:
                progress(f"{self.name} iteration {it + 1}: f = {info.loss:.4g}", (it + 1) / n_iter)
            why = self._divergence(info.loss)
            if why is not None:
                stopped_by = "diverged"
                message = (
                    f"{self.name} diverged at iteration {info.iteration}: {why}; lower the step "
                    f"(step={self.step_size:g}) or use adam=True or step_rule='sign'"
                )
                if self.on_divergence == "raise":
                    raise DivergedError(message)
                warnings.warn(message, DivergenceWarning, stacklevel=3)
                break
            if target is not None and info.loss <= target:
                stopped_by = "target"
                break
            if stop is not None and stop(self.x.copy(), info.loss):
                stopped_by = "stop"
                break
        return ESResult(
            name=self.name, x=self.x.copy(), losses=np.array(losses), sim_seconds=np.array(sim),
            wall_seconds=np.array(wall), evaluations=np.array(evals, dtype=np.int64),
            arrivals=np.array(arr, dtype=np.int64), erasures=np.array(era, dtype=np.int64),
            exact=np.array(exact, dtype=bool), methods=tuple(methods), stopped_by=stopped_by,
            monitor_evaluations=len(losses), bytes_sent=np.array(sent, dtype=np.int64),
            bytes_received=np.array(received, dtype=np.int64), bytes_placed=placed,
            diverged=stopped_by == "diverged",
        )  # fmt: skip

    def _divergence(self, loss: float) -> str | None:
        """Why the current iterate counts as diverged, or None."""
        if not np.all(np.isfinite(self.x)):
            return "the iterate has non-finite entries"
        if not math.isfinite(loss):
            return f"f(x) = {loss}"
        if self.max_growth is not None:
            bound = self.f0 + self.max_growth * max(abs(self.f0), 1.0)
            if loss > bound:
                return f"f(x) = {loss:.4g} grew past {bound:.4g} (f(x0) = {self.f0:.4g})"
        return None

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(d={self.dim}, K={self.n_directions}, N={self.n_workers}, "
            f"code={self.coder.code_name!r}, directions={self.coder.directions!r}, "
            f"wait={self.wait!r})"
        )
