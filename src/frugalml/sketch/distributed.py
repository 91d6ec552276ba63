"""Distributed sketch-and-solve: ``q`` workers solve sketched problems, the master averages.

Bartan & Pilanci, "Distributed Sketching Methods for Privacy Preserving Regression"
(arXiv 2002.06538) and "Distributed Sketching for Randomized Optimization" (arXiv 2203.09755).
Worker ``k`` draws its own sketch ``S_k`` (size ``m_k``) and returns
``x_k = argmin ||S_k(A x - b)||^2 + lam ||x||^2``; the master averages whatever has arrived
(first ``k`` of ``q``, or by a deadline) with inverse-variance (default) or uniform weights.
The exact predicted error of :mod:`.theory` is reported beside the measured one (Gaussian
sketches, ``lam = 0``). Runs on any :mod:`frugalml.runtime` executor; each task ships ``A`` and
``b`` to its worker (``O(q n d)`` data movement on remote backends).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from .._validate import (
    RngLike,
    check_choice,
    check_int,
    check_nonnegative_float,
    check_positive_float,
    check_rng,
)
from ..errors import InvalidInputError, TaskFailedError
from ..runtime import Executor, Gathered, make_executor
from .base import Sketch
from .factory import SKETCHES, make_sketch
from .lstsq import SketchedFactor, _validate, lstsq
from .theory import gaussian_weighted_error

__all__ = ["DistributedResult", "distributed_lstsq", "sketch_and_solve_task", "worker_sizes"]


def sketch_and_solve_task(
    a: Any, b: np.ndarray, sketch: Sketch, seed: int, lam: float
) -> np.ndarray:
    """One worker: draw ``S`` from ``seed``, return the (min-norm) sketched solution (d,)."""
    s_mat = sketch.draw(a.shape[0], data=a, rng=seed)
    return SketchedFactor(s_mat.apply(a), lam, rhs=s_mat.apply(b)).solve()


@dataclass(frozen=True)
class DistributedResult:
    """Averaged solution of a distributed sketch-and-solve run.

    x: (d,) weighted average of the arrived workers' solutions. estimates: (q_arrived, d) in
    ``arrived`` order (sorted worker indices). weights: (q_arrived,). sizes: sketch size of every
    worker (q,). predicted_error: exact ``E||A(xbar - x*)||^2 / f(x*)`` for the arrived set
    (Gaussian, lam = 0; else None). measured_error: ``||A(xbar - x*)||^2 / f(x*)`` against a
    high-accuracy reference (None when ``reference=False``). f_star: ``f(x*)``.
    """

    x: np.ndarray
    estimates: np.ndarray
    arrived: tuple[int, ...]
    weights: np.ndarray
    sizes: tuple[int, ...]
    sketch: dict[str, Any]
    lam: float
    predicted_error: float | None
    measured_error: float | None
    f_star: float | None
    seconds: float
    gathered: Gathered = field(repr=False)

    @property
    def q(self) -> int:
        return len(self.sizes)

    def summary(self) -> str:
        parts = [
            f"{len(self.arrived)}/{self.q} workers averaged ({self.sketch.get('sketch')} sketches, "
            f"m={min(self.sizes)}..{max(self.sizes)}) in {self.seconds:.3g}s"
        ]
        if self.measured_error is not None:
            parts.append(f"measured ||A(xbar-x*)||^2/f(x*) = {self.measured_error:.4g}")
        if self.predicted_error is not None:
            parts.append(f"exact theory {self.predicted_error:.4g}")
        return "; ".join(parts)


def worker_sizes(m: int | Sequence[int], q: int) -> tuple[int, ...]:
    """One sketch size per worker from one size or a sequence of ``q`` sizes."""
    if isinstance(m, (int, np.integer)):
        return (check_int(m, "m", low=1),) * q
    sizes = tuple(check_int(mk, "m_k", low=1) for mk in m)
    if len(sizes) != q:
        raise InvalidInputError(
            f"got {len(sizes)} sketch sizes for q={q} workers; give one per worker"
        )
    return sizes


def distributed_lstsq(
    a: Any,
    b: Any,
    q: int,
    m: int | Sequence[int],
    *,
    sketch: str = "gaussian",
    sketch_options: dict[str, Any] | None = None,
    executor: Executor | None = None,
    k: int | None = None,
    deadline: float | None = None,
    lam: float = 0.0,
    weights: Literal["inverse-variance", "uniform"] = "inverse-variance",
    reference: bool = True,
    rng: RngLike = None,
) -> DistributedResult:
    """Average ``q`` sketched least-squares solutions computed on ``executor``.

    ``a`` (n, d) dense or scipy.sparse, ``b`` (n,). ``m``: one sketch size or one per worker
    (heterogeneous workers). ``k`` / ``deadline``: average the first ``k`` arrivals or whatever
    arrived by ``deadline`` seconds (default: all ``q``). ``weights="inverse-variance"`` weighs
    worker ``k`` by ``m_k - d - 1`` (optimal for Gaussian sketches), ``"uniform"`` by 1.
    ``executor`` defaults to a local thread pool (closed afterwards). Raises
    :class:`~frugalml.errors.TaskFailedError` when no worker returned.
    """
    lam = check_nonnegative_float(lam, "lam")
    a, b = _validate(a, b, lam)
    d = a.shape[1]
    q = check_int(q, "q (number of workers)", low=1)
    sizes = worker_sizes(m, q)
    if lam == 0.0 and min(sizes) <= d + 1:
        raise InvalidInputError(
            f"sketch size m={min(sizes)} must exceed d + 1 = {d + 1} for sketch-and-solve "
            f"(the exact error f(x*) d/(m-d-1) is finite only then); use m >= 2d, e.g. {4 * d}"
        )
    weights = check_choice(weights, "weights", ("inverse-variance", "uniform"))
    sketch = check_choice(sketch, "sketch", tuple(SKETCHES))
    if k is not None:
        k = check_int(k, "k", low=1, high=q)
    if deadline is not None:
        deadline = check_positive_float(deadline, "deadline")
    gen = check_rng(rng)
    seeds = gen.integers(0, 2**63 - 1, size=q)
    sketches = [make_sketch(sketch, mk, **(sketch_options or {})) for mk in sizes]
    own = executor is None
    ex = make_executor("local-thread") if own else executor
    t0 = time.perf_counter()
    try:
        handles = [
            ex.submit(sketch_and_solve_task, a, b, sketches[i], int(seeds[i]), lam)
            for i in range(q)
        ]
        got = ex.gather(handles, k=k, deadline=deadline)
        if got.pending:
            ex.cancel([handles[i] for i in got.pending])
    finally:
        if own:
            ex.close()
    seconds = time.perf_counter() - t0
    arrived = got.finished
    if not arrived:
        why = "; ".join(str(f) for f in list(got.failures.values())[:3])
        raise TaskFailedError(
            f"no worker returned a solution ({got.summary()})"
            + (f": {why}" if why else "")
            + "; raise the deadline or check the workers"
        )
    est = np.stack([np.asarray(got.results[i], dtype=float) for i in arrived])
    arr_sizes = [sizes[i] for i in arrived]
    if weights == "inverse-variance":
        raw = np.array([max(mk - d - 1, 1) for mk in arr_sizes], dtype=float)
    else:
        raw = np.ones(len(arrived))
    w = raw / raw.sum()
    xbar = w @ est
    predicted = None
    if sketch == "gaussian" and lam == 0.0:
        predicted = gaussian_weighted_error(arr_sizes, d, w)
    measured = f_star = None
    if reference:
        ref = lstsq(a, b, method="sketch-and-precondition", lam=lam, tol=1e-14, rng=gen)
        resid = b - a @ ref.x
        f_star = float(resid @ resid + lam * ref.x @ ref.x)
        err = np.asarray(a @ (xbar - ref.x)).ravel()
        measured = (
            float(err @ err + lam * (xbar - ref.x) @ (xbar - ref.x)) / f_star
            if (f_star > 0)
            else 0.0
        )
    return DistributedResult(
        x=xbar, estimates=est, arrived=arrived, weights=w, sizes=sizes,
        sketch={"sketch": sketch, **(sketch_options or {})}, lam=lam,
        predicted_error=predicted, measured_error=measured, f_star=f_star, seconds=seconds,
        gathered=got,
    )  # fmt: skip
