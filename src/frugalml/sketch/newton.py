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
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import scipy.linalg
import scipy.sparse as sp
import scipy.special

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
from ..runtime import Executor, Shared, make_executor
from ..runtime.sharded import PlacedRows, RowBlocks, as_row_blocks, is_row_sharded
from .base import as_operand
from .debias import correction
from .distributed import check_round_memory, check_task_count, owns, worker_sizes
from .effective import effective_dimension
from .factory import SKETCHES, make_sketch
from .sketched_factor import SketchedFactor
from .sketched_hessian import SketchedHessian, gram
from .streaming import check_streams_rows, sketch_parts

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

LOSSES = ("least-squares", "logistic")
Averaging = Literal["debiased", "naive", "exact"]


@dataclass(frozen=True)
class NewtonProblem:
    """``f(x) = loss(A x; y) + lam/2 ||x||^2``; ``a`` (n, d) dense or scipy.sparse CSR (never
    densified), ``y`` (n,) (logistic: +-1)."""

    a: Any
    y: np.ndarray
    lam: float
    loss: str

    @classmethod
    def build(cls, a: Any, y: Any, lam: float, loss: str) -> NewtonProblem:
        loss = check_choice(loss, "loss", LOSSES)
        a = as_operand(a, name="A") if sp.issparse(a) else check_array(a, "A", ndim=2)
        if a.ndim != 2:
            raise InvalidInputError(f"A must be 2-D (n, d), got shape {a.shape}")
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
        return self.value_and_margins(x)[0]

    def value_and_margins(self, x: np.ndarray) -> tuple[float, np.ndarray]:
        """``(f(x), A x)``: one pass over ``A``; :meth:`gradient` reuses ``A x``."""
        z = self.a @ x
        if self.loss == "least-squares":
            r = z - self.y
            data = 0.5 * float(r @ r)
        else:
            data = float(np.sum(np.logaddexp(0.0, -self.y * z)))
        return data + 0.5 * self.lam * float(x @ x), z

    def gradient(self, x: np.ndarray, z: np.ndarray | None = None) -> np.ndarray:
        """``grad f(x)`` (d,); ``z = A x`` when known (saves a pass over ``A``)."""
        z = self.a @ x if z is None else z
        if self.loss == "least-squares":
            return self.a.T @ (z - self.y) + self.lam * x
        s = -self.y * scipy.special.expit(-self.y * z)
        return self.a.T @ s + self.lam * x

    def hessian_sqrt(self, x: np.ndarray) -> np.ndarray:
        """``B`` (n, d) with ``B^T B + lam I`` the Hessian at ``x``."""
        return hessian_sqrt(self.a, x, self.loss)

    def newton_direction(self, x: np.ndarray, g: np.ndarray) -> np.ndarray:
        """Exact Newton direction: forms the dense ``d x d`` Hessian (``O(n d^2)``, or
        ``O(sum_i nnz_i^2)`` for sparse ``A``) and solves it by Cholesky."""
        h = gram(self.hessian_sqrt(x))
        h[np.diag_indices_from(h)] += self.lam
        return scipy.linalg.solve(h, g, assume_a="pos")


def hessian_sqrt(a: Any, x: np.ndarray | None, loss: str) -> Any:
    """``B`` (n, d) with ``B^T B + lam I`` the Hessian at ``x``: ``A`` itself for least
    squares (``x`` unused), ``diag(sqrt(p (1 - p))) A`` with ``p = expit(A x)`` for logistic.
    Row-wise, so it applies to a row block (or sampled rows) of ``A`` as well; sparse ``A``
    gives a sparse CSR ``B`` with the same pattern."""
    if loss == "least-squares":
        return a
    p = scipy.special.expit(a @ x)
    return _scale_rows(a, np.sqrt(p * (1.0 - p)))


def _scale_rows(a: Any, w: np.ndarray) -> Any:
    """``diag(w) A`` for dense ``A`` or scipy.sparse ``A`` (then CSR, same pattern)."""
    if sp.issparse(a):
        return sp.csr_matrix(sp.diags(w) @ a)
    return a * w[:, None]


def _solve_sketched(sb: Any, g: np.ndarray, lam_local: float) -> tuple[np.ndarray, float, Any]:
    """``((S B)^T S B + lam_local I)^{-1} g``, the log-determinant and the factor: Cholesky,
    primal or Woodbury dual (:class:`.SketchedHessian`) when ``lam_local > 0``, else the QR
    of :class:`.SketchedFactor` (stable for a rank-deficient ``S B``)."""
    if lam_local > 0.0:
        fac = SketchedHessian(sb, lam_local)  # primal, dual or (large sparse) CG
        return fac.solve(g), fac.logdet, fac
    dense = sb.toarray() if sp.issparse(sb) else sb
    factor = SketchedFactor(dense, lam_local)
    return factor.apply_inverse_gram(g), factor.logdet, None


def newton_task(
    b: np.ndarray, g: np.ndarray, sketch: Any, seed: int, lam_local: float, step: float
) -> tuple[np.ndarray, float]:
    """One worker: ``(step (B^T S^T S B + lam_local I)^{-1} g, log det(...))``."""
    sb = sketch.draw(b.shape[0], data=b, rng=seed).apply(b)
    direction, logdet, _ = _solve_sketched(sb, g, lam_local)
    return step * direction, logdet


def newton_sampled_task(
    a: Any,
    x: np.ndarray | None,
    loss: str,
    g: np.ndarray,
    sketch: Any,
    seed: int,
    lam_local: float,
    step: float,
) -> tuple[np.ndarray, float, float]:
    """One worker with a uniform row-sampling sketch on shared ``A`` (n, d), dense or sparse:
    draws the ``m`` row indices, forms ``S B`` from those rows of ``A`` alone (``O(m d)``, or
    ``O(m nnz/row)`` sparse — never ``B`` (n, d)), and solves by :class:`.SketchedHessian`
    (primal Cholesky ``O(m d^2 + d^3/3)`` when ``m >= d``, Woodbury dual ``O(m^2 d + m^3/3)``
    when ``m < d``). Same direction as :func:`newton_task` on ``B`` with the same seed.
    Returns ``(step H_S^{-1} g, log det H_S, d_lambda of H_S)`` (the last NaN at
    ``lam_local = 0``); the master uses the ``d_lambda`` estimates for the next round."""
    smat = sketch.draw(a.shape[0], rng=seed)
    rows = a[smat.idx]
    sb = _scale_rows(hessian_sqrt(rows, x, loss), smat.weights)
    direction, logdet, fac = _solve_sketched(sb, g, lam_local)
    # the cg form's d_lambda would cost several more solves; the master keeps its estimate
    dlam = float("nan") if fac is None or fac.form == "cg" else fac.effective_dimension(rng=seed)
    return step * direction, logdet, dlam


def newton_shared_task(
    a: np.ndarray,
    x: np.ndarray | None,
    loss: str,
    g: np.ndarray,
    sketch: Any,
    seed: int,
    lam_local: float,
    step: float,
) -> tuple[np.ndarray, float]:
    """One worker on shared data: forms ``B`` at ``x`` from ``A`` (n, d) placed once with the
    executor, then :func:`newton_task`. Only ``x`` and ``g`` (d,) change between rounds.

    For logistic loss on a large ``A`` (over 256 MiB) and a sketch that streams over rows,
    ``S B`` is accumulated over row chunks of about 32 MiB, so the worker never holds a copy
    of ``B`` (n, d) beside the shared ``A``: memory O(chunk + m d) instead of O(n d)."""
    n, d = a.shape
    if getattr(sketch, "name", "") == "uniform":
        return newton_sampled_task(a, x, loss, g, sketch, seed, lam_local, step)[:2]
    if (loss == "least-squares" or not sketch.streams_rows or n * d * 8 <= _STREAM_BYTES
            or sp.issparse(a)):  # fmt: skip
        return newton_task(hessian_sqrt(a, x, loss), g, sketch, seed, lam_local, step)
    chunk = max(1, _CHUNK_BYTES // (8 * d))
    starts = tuple(range(0, n, chunk))
    parts = tuple(a[start : start + chunk] for start in starts)  # views, no copy
    return newton_rows_task(parts, (*starts, n), x, loss, g, sketch, seed, lam_local, step)


_STREAM_BYTES = 256 << 20
_CHUNK_BYTES = 32 << 20


def newton_rows_task(
    a_parts: tuple[Any, ...],
    a_offsets: tuple[int, ...],
    x: np.ndarray | None,
    loss: str,
    g: np.ndarray,
    sketch: Any,
    seed: int,
    lam_local: float,
    step: float,
) -> tuple[np.ndarray, float]:
    """One worker on row-sharded data: ``S B = sum_j S_j B_j`` streamed over the blocks of
    ``A`` (``B_j`` formed from ``A_j`` at ``x``), then the same solve as :func:`newton_task`."""
    smat = sketch.draw(a_offsets[-1], rng=seed)
    sb = sketch_parts(smat, a_parts, a_offsets, lambda blk: hessian_sqrt(blk, x, loss))
    direction, logdet, _ = _solve_sketched(sb, g, lam_local)
    return step * direction, logdet


class ShardedNewtonProblem:
    """:class:`NewtonProblem` over row-sharded ``A`` (:class:`~frugalml.runtime.sharded.RowBlocks`):
    the objective, gradient and Hessian quantities are streamed block by block on the master,
    which never holds ``A`` whole. ``y`` (n,) is in memory."""

    def __init__(self, a: RowBlocks, y: np.ndarray, lam: float, loss: str):
        self.a, self.y, self.lam, self.loss = a, y, lam, loss
        self.shape = a.shape

    @classmethod
    def build(cls, a: Any, y: Any, lam: float, loss: str) -> ShardedNewtonProblem:
        rows = as_row_blocks(a, name="A")
        if rows.ndim != 2:
            raise InvalidInputError(f"A must be 2-D (n, d), got shape {rows.shape}")
        if is_row_sharded(y):
            y = as_row_blocks(y, name="y").to_array()
        # labels and lam checked by NewtonProblem.build on a 1-column stand-in (same rules)
        y = check_array(y, "y", shape=(rows.shape[0],))
        stand_in = NewtonProblem.build(np.zeros((rows.shape[0], 1)), y, lam, loss)
        n, d = rows.shape
        if stand_in.loss == "least-squares" and stand_in.lam == 0.0 and n < d:
            raise InvalidInputError("least squares with n < d needs lam > 0")
        return cls(rows, stand_in.y, stand_in.lam, stand_in.loss)

    def _pieces(self):
        for start, blk in self.a.blocks():
            yield np.asarray(blk, dtype=float), self.y[start : start + blk.shape[0]]

    def value(self, x: np.ndarray) -> float:
        data = 0.0
        for blk, yb in self._pieces():
            z = blk @ x
            if self.loss == "least-squares":
                r = z - yb
                data += 0.5 * float(r @ r)
            else:
                data += float(np.sum(np.logaddexp(0.0, -yb * z)))
        return data + 0.5 * self.lam * float(x @ x)

    def gradient(self, x: np.ndarray) -> np.ndarray:
        g = self.lam * x
        for blk, yb in self._pieces():
            z = blk @ x
            if self.loss == "least-squares":
                g = g + blk.T @ (z - yb)
            else:
                g = g + blk.T @ (-yb * scipy.special.expit(-yb * z))
        return g

    def hessian_r(self, x: np.ndarray) -> np.ndarray:
        """``R`` (<= d, d) with ``R^T R = B^T B`` at ``x`` (streamed QR)."""
        d = self.shape[1]
        r = np.zeros((0, d))
        for blk, _ in self._pieces():
            stacked = np.vstack([r, hessian_sqrt(blk, x, self.loss)])
            r = scipy.linalg.qr(stacked, mode="r", check_finite=False)[0][:d]
        return r

    def effective_dimension(self, x: np.ndarray) -> float:
        """Exact ``d_lambda`` of ``B`` at ``x`` from the singular values of ``R``."""
        s = np.linalg.svd(self.hessian_r(x), compute_uv=False)
        if self.lam == 0.0:
            return float(np.count_nonzero(s > np.finfo(float).eps * max(self.shape) * s[0]))
        s2 = s * s
        return float(np.sum(s2 / (s2 + self.lam)))

    def newton_direction(self, x: np.ndarray, g: np.ndarray) -> np.ndarray:
        r = self.hessian_r(x)
        h = r.T @ r + self.lam * np.eye(self.shape[1])
        return scipy.linalg.solve(h, g, assume_a="pos")


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
    #: per iteration, the seconds the master waited for the workers (``Gathered.elapsed``:
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
    sampled rows and the workers (:func:`_sampled_effective_dimension`): ``O(n + d)`` vectors
    and one ``k x k`` factor, ``k <= DLAM_ROWS``."""
    if sampled:
        k = min(d, DLAM_ROWS)
        return 8 * (8 * n + 2 * k * k + k * d)
    return 8 * (3 * d * d + (0 if sharded else 2 * n * d))


#: at most this many sampled rows for the first d_lambda estimate on the sampled path
DLAM_ROWS = 4096


def _sampled_effective_dimension(
    prob: NewtonProblem, x: np.ndarray, gen: np.random.Generator
) -> float:
    """``d_lambda`` of ``B^T B + lam I`` at ``x`` from ``r = min(n, 4 d, DLAM_ROWS)`` uniformly
    sampled rows of ``B`` scaled by ``sqrt(n / r)``: Cholesky of the primal or dual factor
    (:class:`.SketchedHessian`), ``O(r d min(r, d))`` flops (``O(r nnz/row^2 + r^3)`` sparse),
    never ``B`` (n, d). An estimate (it saturates below ``r``); the workers refine it every
    round. The rank bound ``d`` at ``lam = 0``."""
    n, d = prob.a.shape
    if prob.lam == 0.0:
        return float(d)
    r = int(min(n, 4 * d, DLAM_ROWS))
    rows = np.sort(gen.choice(n, size=r, replace=False)) if r < n else np.arange(n)
    b = hessian_sqrt(prob.a[rows], x, prob.loss) * np.sqrt(n / r)
    return SketchedHessian(b, prob.lam).effective_dimension(rng=gen)


def _round_nbytes(sizes: Sequence[int], a: Any, d: int) -> int:
    """Bytes one sampled-path task holds: its rows of ``A`` and ``S B`` (dense ``m d``, or
    the sampled nonzeros), and the ``k x k`` factor, ``k = min(m, d)``."""
    m = max(sizes)
    per_row = 12 * max(a.nnz // max(a.shape[0], 1), 1) if sp.issparse(a) else 8 * d
    rows = 2 * m * per_row
    k = min(m, d)
    return rows + 2 * 8 * k * k


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

    ``a`` (n, d): an array, a :class:`~frugalml.runtime.Shared` reference made by
    ``executor`` (used as it is), or row-sharded data (list of row blocks, ``.npy`` path,
    ``dask.array``, :class:`~frugalml.runtime.sharded.RowBlocks`; sketches that stream over
    rows only). ``y`` (n,). ``m``: sketch size (default ``max(4 d, 4 d_lambda + 10)``) or one
    per worker. ``d_lambda``: the effective dimension of the Hessian square root (default:
    computed exactly at the start; for logistic, re-estimated from ``B`` every iteration — by
    SVD when ``n d^2 <= 5e8``, else from a sparse sketch of ``B``; on sharded data always
    exactly, by a streamed QR). Stops when ``||g|| <= tol ||g_0||`` or after ``max_iter``.
    ``callback(iteration, x, f)`` is called after every step. ``A`` is placed once with the
    executor and released at the end; per round only ``x`` and ``g`` travel.
    """
    if callback is not None and not callable(callback):
        raise InvalidInputError(f"callback must be callable, got {type(callback).__name__}")
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
        check_streams_rows(_make(sketch, max(prob.shape[1], 1), prob.lam))
    d = prob.a.shape[1]
    x = np.zeros(d) if x0 is None else check_array(x0, "x0", shape=(d,)).copy()
    gen = check_rng(rng)
    fixed_dlam = d_lambda is not None

    def dlam_at(x_now: np.ndarray) -> float:
        if sharded:
            return prob.effective_dimension(x_now)
        if sampled:
            return _sampled_effective_dimension(prob, x_now, gen)
        return _effective_dimension(prob.hessian_sqrt(x_now), prob.lam, gen, sketch)

    # the exact baseline never uses d_lambda: no estimate there
    d_lam = (
        float(d_lambda) if fixed_dlam else float(d) if averaging == "exact" else dlam_at(x)
    )  # fmt: skip
    sizes = _sizes(m, q, d, d_lam)
    own = executor is None and averaging != "exact"
    if averaging != "exact" and sampled:
        check_memory(
            master_nbytes(n, d, sharded, sampled) + min(q, 2) * _round_nbytes(sizes, prob.a, d),
            f"{q} sampled {max(sizes)} x {d} sketched Hessians",
            fix="lower the sketch size m (--m) or the number of workers q (--q)",
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
                # local problem and the master rescales (see _averaged_direction)
                local_debias = averaging == "debiased" and weights != "determinantal"
                corr = tuple(
                    correction(prob.lam, d_lam, mk, debias=local_debias, sketch=sketch)
                    for mk in sizes
                )
                x_sent = x if prob.loss == "logistic" else None
                direction, used, waited, moved, worker_dlam = _averaged_direction(
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
            if callback is not None:
                callback(its, x, fx)
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
    return NewtonResult(
        x=x, averaging=averaging, loss=prob.loss, lam=prob.lam, iterations=its,
        converged=converged, history=tuple(history), sizes=sizes,
        corrections=tuple((c.lam_local, c.step) for c in corr),
        round_seconds=tuple(rounds), round_bytes_sent=tuple(sent),
        round_bytes_received=tuple(received), bytes_placed=bytes_placed,
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
    ex, call, g, sketch, lam, sizes, corr, weights, d_lam, k, deadline, gen, debias
):
    """``call``: the task function and its data arguments (shared references, or sharded
    parts and offsets, then ``x`` and the loss); each task adds ``g``, its sketch and seed."""
    seeds = gen.integers(0, 2**63 - 1, size=len(sizes))
    handles = []
    for i, mk in enumerate(sizes):
        sk = _make(sketch, mk, lam)
        handles.append(ex.submit(*call, g, sk, int(seeds[i]), corr[i].lam_local,
                                 corr[i].step))  # fmt: skip
    got = ex.gather(handles, k=k, deadline=deadline)
    moved = (got.total_bytes_sent, got.total_bytes_received)
    if got.pending:
        ex.cancel([handles[i] for i in got.pending])
    arrived = got.finished
    if not arrived:
        raise TaskFailedError(f"no worker returned a Newton direction ({got.summary()})")
    dirs = np.stack([got.results[i][0] for i in arrived])
    est = [got.results[i][2] for i in arrived if len(got.results[i]) > 2]
    est = [e for e in est if np.isfinite(e)]
    worker_dlam = float(np.mean(est)) if est else None
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
        return direction, len(arrived), float(got.elapsed), moved, worker_dlam
    if weights == "size":
        w = np.array([max(sizes[i] - d_lam, 1.0) for i in arrived])
    else:
        w = np.ones(len(arrived))
    w = w / w.sum()
    return w @ dirs, len(arrived), float(got.elapsed), moved, worker_dlam


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
