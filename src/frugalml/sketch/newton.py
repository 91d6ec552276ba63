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

**Data placed once.** ``A`` is shared with the executor before the first iteration
(:meth:`~frugalml.runtime.BaseExecutor.share`); per iteration only ``x`` (logistic), ``g``, the
sketch spec and a seed travel to each worker, and a ``d``-vector comes back: ``O(d)`` bytes per
task per round, never ``O(n d)``. Each worker forms its Hessian square root ``B`` at ``x``
from the shared ``A`` itself (:func:`hessian_sqrt`). Row-sharded ``A`` (a list of row
blocks, a ``.npy`` path, a ``dask.array``: :mod:`frugalml.runtime.sharded`) is placed block by
block; workers stream ``S B = sum_j S_j B_j`` over the blocks and the master streams the
gradient, the objective and (exactly, by a streamed QR of ``B``) ``d_lambda`` block by block,
never holding ``A`` whole. :class:`NewtonResult` reports the bytes moved per round.

This module holds the master loop; the objective is :mod:`.newton_problem`, the worker tasks
:mod:`.newton_tasks`, one round of submitting and averaging :mod:`.newton_round`, and the
``d_lambda`` estimates :mod:`.newton_dlambda` (their public names are importable from here as
before).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import scipy.sparse as sp

from .._deprecation import renamed_parameters
from .._resources import check_memory
from .._results import ResultRepr
from .._validate import (
    RngLike,
    check_array,
    check_choice,
    check_int,
    check_positive_float,
    check_rng,
)
from ..errors import InvalidInputError
from ..progress import Progress
from ..runtime import Executor, Shared, make_executor
from ..runtime.sharded import PlacedRows, is_row_sharded
from .debias import correction
from .distributed import check_round_memory, check_task_count, owns, worker_sizes
from .factory import SKETCHES
from .newton_dlambda import DLAM_ROWS, estimate_effective_dimension, sampled_effective_dimension
from .newton_dlambda import EXACT_DLAM_FLOPS as EXACT_DLAM_FLOPS
from .newton_problem import LOSSES, NewtonProblem, ShardedNewtonProblem, hessian_sqrt
from .newton_round import averaged_direction, make_round_sketch, round_nbytes
from .newton_tasks import (
    newton_rows_task,
    newton_sampled_task,
    newton_shared_task,
    newton_task,
)
from .streaming import check_streams_rows

__all__ = [
    "LOSSES",
    "NewtonProblem",
    "NewtonResult",
    "ShardedNewtonProblem",
    "distributed_newton",
    "hessian_sqrt",
    "newton_rows_task",
    "newton_sampled_task",
    "newton_shared_task",
    "newton_task",
]

Averaging = Literal["debiased", "naive", "exact"]


@dataclass(frozen=True, repr=False)
class NewtonResult(ResultRepr):
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
    #: per iteration, the seconds the master waited for the workers (``Gathered.seconds``:
    #: simulated seconds when the executor runs on a simulated clock)
    round_seconds: tuple[float, ...] = ()
    #: per iteration, bytes of the task calls sent to the workers (all ``q`` tasks together;
    #: 0 on ``local-thread``, where nothing is copied)
    round_bytes_sent: tuple[int, ...] = ()
    #: per iteration, bytes of the results received
    round_bytes_received: tuple[int, ...] = ()
    #: bytes this run shared with the executor once, before the first iteration (``A``)
    bytes_placed: int = 0

    @property
    def objective(self) -> float:
        return self.history[-1][0]

    @property
    def bytes_sent(self) -> int:
        """Bytes sent to the workers over all iterations."""
        return int(sum(self.round_bytes_sent))

    @property
    def bytes_received(self) -> int:
        """Bytes received from the workers over all iterations."""
        return int(sum(self.round_bytes_received))

    def summary(self) -> str:
        status = "converged" if self.converged else "NOT converged"
        moved = ""
        if self.round_bytes_sent:
            per = self.bytes_sent / (len(self.round_bytes_sent) * max(len(self.sizes), 1))
            moved = (
                f", placed {self.bytes_placed} B once, sent {self.bytes_sent} B "
                f"({per:.0f} B per task per round), received {self.bytes_received} B"
            )
        return (
            f"{self.averaging} Newton sketch ({self.loss}, lam={self.lam:g}): {self.iterations} "
            f"iterations, f = {self.objective:.10g}, ||g|| = {self.history[-1][1]:.3g}, "
            f"{self.history[-1][2]:.3g}s, {status}{moved}"
        )


def master_nbytes(n: int, d: int, sharded: bool = False, sampled: bool = False) -> int:
    """Bytes the master holds besides ``A``: the exact Hessian / its solve (``3 d^2``) and,
    on in-memory data, the SVD of the Hessian square root for ``d_lambda`` (``2 n d``).
    ``sampled``: a uniform-sampling sketch (dense or sparse ``A``), whose ``d_lambda`` comes from
    sampled rows and the workers (:func:`.sampled_effective_dimension`): ``O(n + d)`` vectors
    and one ``k x k`` factor, ``k <= DLAM_ROWS``."""
    if sampled:
        k = min(d, DLAM_ROWS)
        return 8 * (8 * n + 2 * k * k + k * d)
    return 8 * (3 * d * d + (0 if sharded else 2 * n * d))


def _sizes(m: int | Sequence[int] | None, q: int, d: int, d_lam: float) -> tuple[int, ...]:
    if m is None:
        return (int(max(4 * d, np.ceil(4 * d_lam) + 10)),) * q
    return worker_sizes(m, q)


@renamed_parameters(callback="on_step")
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
    progress: Progress | None = None,
    on_step: Callable[[int, np.ndarray, float], None] | None = None,
) -> NewtonResult:
    """Minimise ``f`` by Newton steps with averaged sketched Hessians (module docstring).

    ``a`` (n, d): an array, a :class:`~frugalml.runtime.Shared` reference made by
    ``executor`` (used as it is), or row-sharded data (list of row blocks, ``.npy`` path,
    ``dask.array``, :class:`~frugalml.runtime.sharded.RowBlocks`; sketches that stream over
    rows only). ``y`` (n,). ``m``: sketch size (default ``max(4 d, 4 d_lambda + 10)``) or one
    per worker. ``d_lambda``: the effective dimension of the Hessian square root (default:
    computed exactly at the start; for logistic, re-estimated from ``B`` every iteration — by
    SVD when ``n d^2 <= 5e8``, else from a sparse sketch of ``B``; on sharded data always
    exactly, by a streamed QR). Stops when ``||g|| <= tol ||g_0||`` or after ``max_iter``.
    ``progress(message, fraction)`` (:data:`frugalml.progress.Progress`) is called after every
    step with ``fraction = iteration / max_iter`` and once with 1.0 at the end;
    ``on_step(iteration, x, f)`` is called after every step with the iterate (``callback=`` of
    0.1, still accepted with a deprecation warning). ``A`` is placed once with the executor and
    released at the end; per round only ``x`` and ``g`` travel.
    """
    for name, func in (("progress", progress), ("on_step", on_step)):
        if func is not None and not callable(func):
            raise InvalidInputError(f"{name} must be callable, got {type(func).__name__}")
    a_ref = None
    if isinstance(a, Shared):
        a_ref = a
        if executor is None or not owns(executor, a):
            raise InvalidInputError(
                "A is a shared reference of another executor; pass the executor that made it "
                "as executor= (or pass the array itself)"
            )
        a = a.get()
    sharded = not sp.issparse(a) and is_row_sharded(a)
    prob = (
        ShardedNewtonProblem.build(a, y, lam, loss) if sharded
        else NewtonProblem.build(a, y, lam, loss)
    )  # fmt: skip
    averaging = check_choice(averaging, "averaging", ("debiased", "naive", "exact"))
    weights = check_choice(weights, "weights", ("size", "uniform", "determinantal"))
    sketch = check_choice(sketch, "sketch", (*SKETCHES, "surrogate"))
    q = check_int(q, "q (number of workers)", low=1)
    n, d = prob.shape if sharded else prob.a.shape
    check_task_count(q, d)
    # uniform row sampling on in-memory data (dense or sparse): workers read only their
    # sampled rows, and d_lambda comes from sampled rows, then from the workers' own factors
    sampled = not sharded and averaging != "exact" and sketch == "uniform"
    # the exact baseline on sparse A forms only the d x d Hessian (no n x d SVD)
    light = sharded or (sp.issparse(prob.a) and averaging == "exact")
    check_memory(
        master_nbytes(n, d, light, sampled),
        f"the {d} x {d} Hessian and the effective dimension of a {n} x {d} problem",
        fix="reduce the number of features d (e.g. a PCA or a random projection of A)",
    )
    max_iter = check_int(max_iter, "max_iter", low=1)
    tol = check_positive_float(tol, "tol")
    if k is not None:
        k = check_int(k, "k", low=1, high=q)
    if deadline is not None:
        deadline = check_positive_float(deadline, "deadline")
    if sharded and averaging != "exact":
        check_streams_rows(make_round_sketch(sketch, max(prob.shape[1], 1), prob.lam))
    d = prob.a.shape[1]
    x = np.zeros(d) if x0 is None else check_array(x0, "x0", shape=(d,)).copy()
    gen = check_rng(rng)
    fixed_dlam = d_lambda is not None

    def dlam_at(x_now: np.ndarray) -> float:
        if sharded:
            return prob.effective_dimension(x_now)
        if sampled:
            return sampled_effective_dimension(prob, x_now, gen)
        return estimate_effective_dimension(prob.hessian_sqrt(x_now), prob.lam, gen, sketch)

    # the exact baseline never uses d_lambda: no estimate there
    d_lam = (
        float(d_lambda) if fixed_dlam else float(d) if averaging == "exact" else dlam_at(x)
    )  # fmt: skip
    sizes = _sizes(m, q, d, d_lam)
    own = executor is None and averaging != "exact"
    if averaging != "exact" and sampled:
        check_memory(
            master_nbytes(n, d, sharded, sampled) + min(q, 2) * round_nbytes(sizes, prob.a, d),
            f"{q} sampled {max(sizes)} x {d} sketched Hessians",
            fix="lower the sketch size m (--sketch-size) or the number of workers q (--workers)",
        )
    elif averaging != "exact":
        check_round_memory(
            executor, sizes, n, d, per_task=8 * 3 * d * d, master=master_nbytes(n, d, sharded)
        )
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
    sent: list[int] = []
    received: list[int] = []
    placed_refs: list[Shared] = []
    placed_rows: PlacedRows | None = None
    data: tuple[Any, ...] = ()
    try:
        if averaging != "exact":
            if sharded:
                placed_rows = prob.a.place(ex)
                data = (newton_rows_task, placed_rows.parts, placed_rows.offsets)
            else:
                if a_ref is None:
                    a_ref = ex.share(prob.a)
                    placed_refs.append(a_ref)
                task = newton_sampled_task if sketch == "uniform" else newton_shared_task
                data = (task, a_ref)
        for its in range(1, max_iter + 1):
            if converged:
                its -= 1
                break
            if averaging == "exact":
                direction, used = prob.newton_direction(x, g), 0
            else:
                if (prob.loss == "logistic" and not fixed_dlam and averaging == "debiased"
                        and not sampled):  # fmt: skip
                    # naive averaging never uses d_lambda: skip the per-iteration estimate;
                    # on the sampled path the workers' estimates of the last round are used
                    d_lam = dlam_at(x)
                # determinantal averaging debiases by its weights: workers solve the naive
                # local problem and the master rescales (see averaged_direction)
                local_debias = averaging == "debiased" and weights != "determinantal"
                corr = tuple(
                    correction(prob.lam, d_lam, mk, debias=local_debias, sketch=sketch)
                    for mk in sizes
                )
                x_sent = x if prob.loss == "logistic" else None
                direction, used, waited, moved, worker_dlam = averaged_direction(
                    ex,
                    (*data, x_sent, prob.loss),
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
                if (sampled and prob.loss == "logistic" and not fixed_dlam
                        and worker_dlam is not None):  # fmt: skip
                    # each worker's d_lambda of its own sketched Hessian (at its lam_local):
                    # kept below the smallest sketch so that the correction stays defined
                    d_lam = min(worker_dlam, 0.9 * min(sizes))
                rounds.append(waited)
                sent.append(moved[0])
                received.append(moved[1])
            x, g, fx = _step(prob, x, g, fx, direction)
            gn = float(np.linalg.norm(g))
            history.append((fx, gn, time.perf_counter() - t0, used))
            if on_step is not None:
                on_step(its, x, fx)
            if progress is not None:
                progress(f"Newton step {its}/{max_iter}: f = {fx:.6g}", its / max_iter)
            if not np.isfinite(fx):
                break
            converged = gn <= tol * g0
    finally:
        for ref in placed_refs:
            ex.release(ref)
        if placed_rows is not None:
            placed_rows.release()
        if own:
            ex.close()
    bytes_placed = sum(r.nbytes for r in placed_refs)
    if placed_rows is not None:
        bytes_placed += placed_rows.nbytes_placed
    if progress is not None:
        progress(f"done: {its} Newton steps, f = {fx:.6g}", 1.0)
    return NewtonResult(
        x=x, averaging=averaging, loss=prob.loss, lam=prob.lam, iterations=its,
        converged=converged, history=tuple(history), sizes=sizes,
        corrections=tuple((c.lam_local, c.step) for c in corr),
        round_seconds=tuple(rounds), round_bytes_sent=tuple(sent),
        round_bytes_received=tuple(received), bytes_placed=bytes_placed,
    )  # fmt: skip


def _step(prob: NewtonProblem, x, g, f0: float, direction):
    """``(x, g, f)`` after the step; ``f0 = f(x)`` is known, so each trial costs one pass."""
    margins = isinstance(prob, NewtonProblem)  # A x of the accepted point serves the gradient
    if prob.loss == "least-squares":
        x_new = x - direction
        if margins:
            f_new, z = prob.value_and_margins(x_new)
            return x_new, prob.gradient(x_new, z), f_new
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
        f_new, z = prob.value_and_margins(x_new) if margins else (prob.value(x_new), None)
        if f_new <= f0 - 1e-4 * t * slope + slack:
            return x_new, (prob.gradient(x_new, z) if margins else prob.gradient(x_new)), f_new
        t *= 0.5
    return x, g, f0
