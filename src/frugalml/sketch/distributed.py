"""Distributed sketch-and-solve: ``q`` workers solve sketched problems, the master averages.

Bartan & Pilanci, "Distributed Sketching Methods for Privacy Preserving Regression"
(arXiv 2002.06538) and "Distributed Sketching for Randomized Optimization" (arXiv 2203.09755).
Worker ``k`` draws its own sketch ``S_k`` (size ``m_k``) and returns
``x_k = argmin ||S_k(A x - b)||^2 + lam ||x||^2``; the master averages whatever has arrived
(first ``k`` of ``q``, or by a deadline) with inverse-variance (default) or uniform weights.
The exact predicted error of :mod:`.theory` is reported beside the measured one (Gaussian
sketches, ``lam = 0``). Runs on any :mod:`frugalml.runtime` executor.

**Data placed once.** ``A`` and ``b`` are shared with the executor once
(:meth:`~frugalml.runtime.BaseExecutor.share`: identity on threads, a memory-mapped file on the
process pool, the object store on Ray, ...) and every task carries only the references, its
sketch spec and its seed; what travels per task is ``O(1)`` in ``n d`` (a few hundred bytes),
plus the ``d``-vector it returns. Row-sharded data (a list of row blocks, a ``.npy`` path, a
``dask.array``: :func:`frugalml.runtime.sharded.as_row_blocks`) is placed block by block (or,
for a ``.npy`` file on a backend on this machine, only its path travels) and each worker
streams ``S A = sum_j S_j A_j`` over the blocks. The result reports the bytes moved.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from .._deprecation import renamed_parameters
from .._resources import check_memory
from .._results import ResultRepr
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
from ..runtime import Executor, Gathered, Shared, fmt_bytes, make_executor
from ..runtime.sharded import PlacedRows, as_row_blocks, is_row_sharded
from ._checks import check_lstsq_problem
from .base import Sketch
from .factory import SKETCHES, make_sketch
from .lstsq import lstsq
from .sketched_factor import SketchedFactor, factor_nbytes
from .streaming import check_streams_rows, sketch_parts, streamed_lstsq
from .theory import gaussian_weighted_error

__all__ = [
    "DistributedResult",
    "distributed_lstsq",
    "sketch_and_solve_rows_task",
    "sketch_and_solve_task",
    "worker_sizes",
]


@renamed_parameters(seed="rng")
def sketch_and_solve_task(
    a: Any, b: np.ndarray, sketch: Sketch, rng: int | np.random.Generator, lam: float
) -> np.ndarray:
    """One worker: draw ``S`` from ``rng`` (the integer seed the master drew for the task, or
    a Generator), return the (min-norm) sketched solution (d,)."""
    s_mat = sketch.draw(a.shape[0], data=a, rng=rng)
    return SketchedFactor(s_mat.apply(a), lam, rhs=s_mat.apply(b)).solve()


@renamed_parameters(seed="rng")
def sketch_and_solve_rows_task(
    a_parts: tuple[Any, ...],
    a_offsets: tuple[int, ...],
    b_parts: tuple[Any, ...],
    b_offsets: tuple[int, ...],
    sketch: Sketch,
    rng: int | np.random.Generator,
    lam: float,
) -> np.ndarray:
    """One worker on row-sharded data: ``S A = sum_j S_j A_j`` streamed over the blocks
    (``a_parts`` with first rows ``a_offsets``, same for ``b``); returns the solution (d,).
    Same answer as :func:`sketch_and_solve_task` on the stacked data for the same seed."""
    s_mat = sketch.draw(a_offsets[-1], rng=rng)
    sa = sketch_parts(s_mat, a_parts, a_offsets)
    sb = sketch_parts(s_mat, b_parts, b_offsets)
    return SketchedFactor(sa, lam, rhs=sb).solve()


@dataclass(frozen=True, repr=False)
class DistributedResult(ResultRepr):
    """Averaged solution of a distributed sketch-and-solve run.

    x: (d,) weighted average of the arrived workers' solutions. estimates: (q_arrived, d) in
    ``arrived`` order (sorted worker indices). weights: (q_arrived,). sizes: sketch size of every
    worker (q,). predicted_error: exact ``E||A(xbar - x*)||^2 / f(x*)`` for the arrived set
    (Gaussian, lam = 0; else None). measured_error: ``||A(xbar - x*)||^2 / f(x*)`` against a
    high-accuracy reference (None when ``reference=False``). f_star: ``f(x*)``.
    bytes_sent / bytes_received: bytes of the task calls / results that travelled (0 on
    ``local-thread``, where nothing is copied); bytes_placed: bytes this call shared with the
    executor (``A`` and ``b`` once; 0 when they were passed as references or ``.npy`` paths).
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
    bytes_sent: int = 0
    bytes_received: int = 0
    bytes_placed: int = 0

    @property
    def q(self) -> int:
        return len(self.sizes)

    @property
    def bytes_per_task(self) -> float:
        """Mean bytes sent per submitted task."""
        return self.bytes_sent / max(self.q, 1)

    def summary(self) -> str:
        parts = [
            f"{len(self.arrived)}/{self.q} workers averaged ({self.sketch.get('sketch')} sketches, "
            f"m={min(self.sizes)}..{max(self.sizes)}) in {self.seconds:.3g}s"
        ]
        if self.measured_error is not None:
            parts.append(f"measured ||A(xbar-x*)||^2/f(x*) = {self.measured_error:.4g}")
        if self.predicted_error is not None:
            parts.append(f"exact theory {self.predicted_error:.4g}")
        parts.append(
            f"placed {fmt_bytes(self.bytes_placed)} once, sent {fmt_bytes(self.bytes_sent)} "
            f"({fmt_bytes(self.bytes_per_task)}/task), received "
            f"{fmt_bytes(self.bytes_received)}"
        )
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


#: master-side bytes per submitted task (handle, call, seed, result bookkeeping)
TASK_BYTES = 4096


def check_task_count(q: int, d: int) -> None:
    """Refuse a number of tasks whose bookkeeping alone would exhaust memory."""
    check_memory(
        q * (TASK_BYTES + 16 * d),
        f"the bookkeeping of q={q} worker tasks",
        fix="use fewer workers (q, --workers)",
    )


def check_round_memory(
    executor: Any, sizes: Sequence[int], n: int, d: int, *, per_task: int = 0, master: int = 0
) -> None:
    """Refuse a round of sketched solves that would not fit in this machine's memory: each
    task holds its ``m_k x d`` sketched matrix and factor (plus ``per_task`` bytes); on a
    local executor as many tasks run at once as it has workers. ``master``: bytes the caller
    holds meanwhile. Remote executors' memory is not this machine's: one task is counted."""
    q = len(sizes)
    biggest = max(sizes)
    task = factor_nbytes(biggest, d) + 8 * biggest * min(n, 4096) + per_task
    workers = getattr(executor, "workers", None)
    local = getattr(executor, "backend", None) in ("local", "local-thread")
    at_once = min(q, workers) if local and isinstance(workers, int) and workers > 0 else 1
    check_memory(
        master + at_once * task + q * (TASK_BYTES + 16 * d),
        f"{q} sketched {biggest} x {d} problems ({at_once} at a time)",
        fix="lower the sketch size m (--sketch-size) or the number of workers q (--workers)",
    )


def owns(executor: Any, ref: Shared) -> bool:
    """True when ``ref`` was made by ``executor`` (any executor with an ``owns`` method)."""
    check = getattr(executor, "owns", None)
    return bool(check(ref)) if check is not None else False


def _resolve_ref(x: Any, ex: Executor, name: str) -> Any:
    """The value of a :class:`Shared` made by ``ex`` (validated on the master)."""
    if not owns(ex, x):
        raise InvalidInputError(
            f"{name} is a shared reference of another {x.backend} executor; pass that "
            "executor as executor= (or pass the array itself)"
        )
    return x.get()


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

    ``a`` (n, d): dense or scipy.sparse; a :class:`~frugalml.runtime.Shared` reference made by
    ``executor`` (used as it is, not placed again); or row-sharded data — a list of row blocks,
    the path of a ``.npy`` file, a ``dask.array`` or a
    :class:`~frugalml.runtime.sharded.RowBlocks` (sketches that stream over rows only:
    gaussian, rademacher, sparse-sign, countsketch, uniform). ``b`` (n,): array, reference,
    or row-sharded likewise. ``m``: one sketch size or one per worker (heterogeneous
    workers). ``k`` / ``deadline``: average the first ``k`` arrivals or whatever arrived by
    ``deadline`` seconds (default: all ``q``). ``weights="inverse-variance"`` weighs worker
    ``k`` by ``m_k - d - 1`` (optimal for Gaussian sketches), ``"uniform"`` by 1.
    ``executor`` defaults to a local thread pool (closed afterwards). ``A`` and ``b`` are
    placed once with the executor and released at the end (module docstring). ``reference``:
    also compute the exact solution for the measured error (streamed QR on sharded data).
    Raises :class:`~frugalml.errors.TaskFailedError` when no worker returned.
    """
    lam = check_nonnegative_float(lam, "lam")
    own = executor is None
    ex = make_executor("local-thread") if own else executor
    try:
        return _distributed_lstsq(
            a, b, q, m, sketch, sketch_options, ex, k, deadline, lam, weights, reference, rng
        )
    finally:
        if own:
            ex.close()


def _distributed_lstsq(
    a, b, q, m, sketch, sketch_options, ex, k, deadline, lam, weights, reference, rng
) -> DistributedResult:
    sharded = is_row_sharded(a) or is_row_sharded(b)
    a_ref = b_ref = None
    if sharded:
        a_rows = as_row_blocks(a, name="A")
        if a_rows.ndim != 2:
            raise InvalidInputError(f"A must be 2-D (n, d), got shape {a_rows.shape}")
        if is_row_sharded(b):
            b_rows = as_row_blocks(b, name="b")
        else:
            if isinstance(b, Shared):
                b = _resolve_ref(b, ex, "b")
            b_arr = check_array(b, "b", ndim=1)
            b_rows = as_row_blocks([b_arr], name="b", check_finite=False)
        if b_rows.ndim != 1 or b_rows.shape[0] != a_rows.shape[0]:
            raise InvalidInputError(
                f"b has shape {b_rows.shape} but A has {a_rows.shape[0]} rows; need b (n,)"
            )
        n, d = a_rows.shape
        if lam == 0.0 and n < d:
            raise InvalidInputError(
                f"A is {n} x {d} with n < d: the least-squares problem is underdetermined; "
                "pass lam > 0 (ridge) or use a direct solver"
            )
    else:
        if isinstance(a, Shared):
            a_ref, a = a, _resolve_ref(a, ex, "A")
        if isinstance(b, Shared):
            b_ref, b = b, _resolve_ref(b, ex, "b")
        a, b = check_lstsq_problem(a, b, lam)
        d = a.shape[1]
    q = check_int(q, "q (number of workers)", low=1)
    check_task_count(q, d)
    sizes = worker_sizes(m, q)
    n = a_rows.shape[0] if sharded else a.shape[0]
    check_round_memory(ex, sizes, n, d)
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
    if sharded:
        check_streams_rows(sketches[0])
    t0 = time.perf_counter()
    placed_refs: list[Shared] = []
    placed_rows: list[PlacedRows] = []
    try:
        if sharded:
            pa = a_rows.place(ex)
            placed_rows.append(pa)
            pb = b_rows.place(ex)
            placed_rows.append(pb)
            calls = [
                (sketch_and_solve_rows_task, pa.parts, pa.offsets, pb.parts, pb.offsets)
                for _ in range(q)
            ]
        else:
            if a_ref is None:
                a_ref = ex.share(a)
                placed_refs.append(a_ref)
            if b_ref is None:
                b_ref = ex.share(b)
                placed_refs.append(b_ref)
            calls = [(sketch_and_solve_task, a_ref, b_ref) for _ in range(q)]
        handles = [ex.submit(*calls[i], sketches[i], int(seeds[i]), lam) for i in range(q)]
        got = ex.gather(handles, k=k, deadline=deadline)
        if got.pending:
            ex.cancel([handles[i] for i in got.pending])
    finally:
        for ref in placed_refs:
            ex.release(ref)
        for pr in placed_rows:
            pr.release()
    bytes_placed = sum(r.nbytes for r in placed_refs) + sum(p.nbytes_placed for p in placed_rows)
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
        if sharded:
            x_ref, f_star = streamed_lstsq(a_rows, b_rows, lam)
            err2 = sum(float(np.sum((np.asarray(blk, float) @ (xbar - x_ref)) ** 2))
                       for _, blk in a_rows.blocks())  # fmt: skip
        else:
            ref = lstsq(a, b, method="sketch-and-precondition", lam=lam, tol=1e-14, rng=gen)
            x_ref = ref.x
            resid = b - a @ x_ref
            f_star = float(resid @ resid + lam * x_ref @ x_ref)
            err = np.asarray(a @ (xbar - x_ref)).ravel()
            err2 = float(err @ err)
        dx = xbar - x_ref
        measured = float(err2 + lam * dx @ dx) / f_star if (f_star > 0) else 0.0
    return DistributedResult(
        x=xbar, estimates=est, arrived=arrived, weights=w, sizes=sizes,
        sketch={"sketch": sketch, **(sketch_options or {})}, lam=lam,
        predicted_error=predicted, measured_error=measured, f_star=f_star, seconds=seconds,
        gathered=got, bytes_sent=got.total_bytes_sent, bytes_received=got.total_bytes_received,
        bytes_placed=bytes_placed,
    )  # fmt: skip
