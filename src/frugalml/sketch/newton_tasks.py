"""The worker side of the distributed Newton sketch: one sketched Newton direction per task.

Derezinski, Bartan, Pilanci & Mahoney (NeurIPS 2020, arXiv 2007.01327); Bartan & Pilanci
(arXiv 2002.06540). A worker draws its sketch ``S`` from the seed it was sent, forms ``S B``
(``B`` the Hessian square root at ``x``, from the ``A`` placed once with the executor: whole,
sampled rows, or streamed over row blocks) and returns
``step (B^T S^T S B + lam_local I)^{-1} g`` and ``log det(B^T S^T S B + lam_local I)``
(:class:`.SketchedHessian` when ``lam_local > 0``, else the QR of :class:`.SketchedFactor`).
Submitted by :func:`~frugalml.sketch.newton_round.averaged_direction`; the functions are
module-level so that every executor backend can ship them by reference. ``rng``: the integer
seed the master drew for the task (the same int gives the same sketch), or a Generator; the
0.1 keyword ``seed=`` still works, with a deprecation warning.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.sparse as sp

from .._deprecation import renamed_parameters
from .newton_problem import hessian_sqrt, scale_rows
from .sketched_factor import SketchedFactor
from .sketched_hessian import SketchedHessian
from .streaming import sketch_parts

__all__ = [
    "newton_rows_task",
    "newton_sampled_task",
    "newton_shared_task",
    "newton_task",
    "solve_sketched",
]


def solve_sketched(sb: Any, g: np.ndarray, lam_local: float) -> tuple[np.ndarray, float, Any]:
    """``((S B)^T S B + lam_local I)^{-1} g``, the log-determinant and the factor: Cholesky,
    primal or Woodbury dual (:class:`.SketchedHessian`) when ``lam_local > 0``, else the QR
    of :class:`.SketchedFactor` (stable for a rank-deficient ``S B``)."""
    if lam_local > 0.0:
        fac = SketchedHessian(sb, lam_local)  # primal, dual or (large sparse) CG
        return fac.solve(g), fac.logdet, fac
    dense = sb.toarray() if sp.issparse(sb) else sb
    factor = SketchedFactor(dense, lam_local)
    return factor.apply_inverse_gram(g), factor.logdet, None


@renamed_parameters(seed="rng")
def newton_task(
    b: np.ndarray,
    g: np.ndarray,
    sketch: Any,
    rng: int | np.random.Generator,
    lam_local: float,
    step: float,
) -> tuple[np.ndarray, float]:
    """One worker: ``(step (B^T S^T S B + lam_local I)^{-1} g, log det(...))``."""
    sb = sketch.draw(b.shape[0], data=b, rng=rng).apply(b)
    direction, logdet, _ = solve_sketched(sb, g, lam_local)
    return step * direction, logdet


@renamed_parameters(seed="rng")
def newton_sampled_task(
    a: Any,
    x: np.ndarray | None,
    loss: str,
    g: np.ndarray,
    sketch: Any,
    rng: int | np.random.Generator,
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
    smat = sketch.draw(a.shape[0], rng=rng)
    rows = a[smat.idx]
    sb = scale_rows(hessian_sqrt(rows, x, loss), smat.weights)
    direction, logdet, fac = solve_sketched(sb, g, lam_local)
    # the cg form's d_lambda would cost several more solves; the master keeps its estimate
    dlam = float("nan") if fac is None or fac.form == "cg" else fac.effective_dimension(rng=rng)
    return step * direction, logdet, dlam


@renamed_parameters(seed="rng")
def newton_shared_task(
    a: np.ndarray,
    x: np.ndarray | None,
    loss: str,
    g: np.ndarray,
    sketch: Any,
    rng: int | np.random.Generator,
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
        return newton_sampled_task(a, x, loss, g, sketch, rng, lam_local, step)[:2]
    if (loss == "least-squares" or not sketch.streams_rows or n * d * 8 <= _STREAM_BYTES
            or sp.issparse(a)):  # fmt: skip
        return newton_task(hessian_sqrt(a, x, loss), g, sketch, rng, lam_local, step)
    chunk = max(1, _CHUNK_BYTES // (8 * d))
    starts = tuple(range(0, n, chunk))
    parts = tuple(a[start : start + chunk] for start in starts)  # views, no copy
    return newton_rows_task(parts, (*starts, n), x, loss, g, sketch, rng, lam_local, step)


_STREAM_BYTES = 256 << 20
_CHUNK_BYTES = 32 << 20


@renamed_parameters(seed="rng")
def newton_rows_task(
    a_parts: tuple[Any, ...],
    a_offsets: tuple[int, ...],
    x: np.ndarray | None,
    loss: str,
    g: np.ndarray,
    sketch: Any,
    rng: int | np.random.Generator,
    lam_local: float,
    step: float,
) -> tuple[np.ndarray, float]:
    """One worker on row-sharded data: ``S B = sum_j S_j B_j`` streamed over the blocks of
    ``A`` (``B_j`` formed from ``A_j`` at ``x``), then the same solve as :func:`newton_task`."""
    smat = sketch.draw(a_offsets[-1], rng=rng)
    sb = sketch_parts(smat, a_parts, a_offsets, lambda blk: hessian_sqrt(blk, x, loss))
    direction, logdet, _ = solve_sketched(sb, g, lam_local)
    return step * direction, logdet
