"""Randomized least squares and ridge regression.

``lstsq(A, b, method=..., lam=0)`` solves ``min_x ||A x - b||^2 + lam ||x||^2`` for
``A`` (n, d) dense or scipy.sparse, ``b`` (n,), with one of

* ``"sketch-and-solve"``: ``x = argmin ||S A x - S b||^2 + lam ||x||^2`` for one sketch ``S``
  (m, n). Cost: one sketch application + ``O(m d^2)``. Error
  ``||A(x - x*)||^2 ~ f(x*) d / (m - d - 1)`` for Gaussian ``S`` (:mod:`.theory`).
* ``"sketch-and-precondition"`` (Rokhlin & Tygert 2008; Blendenpik, Avron, Maymounkov &
  Toledo 2010; LSRN, Meng, Saunders & Mahoney 2014): factor
  ``[S A; sqrt(lam) I] = Q U Sigma V^T`` (thin QR, then an SVD of the d x d factor),
  precondition with ``M = V Sigma^{-1}`` (rank-revealing: a rank-deficient ``A`` gets the
  minimum-norm solution) and run LSQR/LSMR from
  :mod:`scipy.sparse.linalg` on ``[A; sqrt(lam) I] M``, **warm-started from the sketch-and-solve
  answer** — the variant that Meier, Nakatsukasa, Townsend & Webb ("Are sketch-and-precondition
  least squares solvers numerically stable?", SIMAX 2024) show to be stable, where the zero
  start is not. ``kappa(A M) <= (1 + eps)/(1 - eps)`` for an ``eps``-subspace embedding, so
  LSQR needs ``O(log(1/tol))`` iterations of ``O(nnz(A))`` each, whatever ``kappa(A)`` is.
  ``solver="cg"`` replaces LSQR/LSMR by conjugate gradients on the preconditioned normal
  equations with one fused, blocked pass over ``A`` per iteration (LSQR makes two) and a
  float64 true-gradient refinement check (:mod:`.pcg`); ``precision="mixed"`` factors the
  sketch in float32 (half the QR time) while every pass over ``A`` stays float64, so the answer
  still reaches ``tol`` in float64 terms (the float32 factor only has to precondition; when
  its condition estimate passes ``MIXED_COND_LIMIT / eps32``, or CG with it stalls, it falls
  back to float64). These are the defaults (with a sparse sign sketch of 3 nonzeros per
  column and ``m`` from :func:`cg_sketch_size`); a dense A's finiteness is then checked on
  ``S A`` (a sparse sign sketch hits every row, so a NaN/inf in ``A`` reaches ``S A``), with no
  pass over ``A`` of its own.
* ``"ihs"``: iterative Hessian sketch (Pilanci & Wainwright, JMLR 2016):
  ``x+ = x + (A^T S^T S A + lam I)^{-1} (A^T (b - A x) - lam x)``. With ``refresh=True`` a new
  sketch is drawn every iteration (the original IHS); by default one sketch is kept and
  Polyak momentum with ``alpha = (1 - r)^2, beta = r`` is added ("iterative sketching with
  momentum", Ozaki & Epperly et al. 2024), converging at rate ``~ sqrt(r)``, where
  ``r = (sqrt(d) + 2)^2 / m`` is the Marchenko-Pastur ratio ``d/m`` with a margin for
  finite-``d`` fluctuations; a growing iteration restarts with a wider margin.

Returns :class:`LstsqResult`. This module holds the dispatcher; the pieces are
:mod:`.sketched_factor` (the QR/SVD of the sketch), :mod:`.precondition` (LSQR/LSMR/CG on
the preconditioned problem) and :mod:`.ihs` (the iterative Hessian sketch); the names that
lived here before (``SketchedFactor``, ``factor_nbytes``, ``CG_NNZ_PER_COL``, ``MAX_RESTARTS``,
...) are still importable from this module.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import scipy.sparse as sp

from .._results import ResultRepr
from .._validate import (
    RngLike,
    check_choice,
    check_int,
    check_nonnegative_float,
    check_positive_float,
    check_rng,
)
from ..errors import InvalidInputError
from ._checks import check_finite_rows, check_lstsq_problem
from .base import Sketch, check_sketch_memory
from .factory import resolve_sketch
from .ihs import MAX_RESTARTS as MAX_RESTARTS
from .ihs import STALL as STALL
from .ihs import ihs_iterations
from .precondition import (
    CG_NNZ_PER_COL,
    MIXED_COND_LIMIT,
    REFINE_COND,
    cg_sketch_size,
    precondition_cg,
    precondition_krylov,
)
from .sketched_factor import SketchedFactor, check_factor_memory
from .sketched_factor import factor_nbytes as factor_nbytes
from .sparse import SparseSignSketch, SparseSketchMatrix

__all__ = [
    "CG_NNZ_PER_COL",
    "METHODS",
    "PRECISIONS",
    "SOLVERS",
    "LstsqResult",
    "SketchedFactor",
    "cg_sketch_size",
    "default_sketch_size",
    "lstsq",
]

METHODS = ("sketch-and-solve", "sketch-and-precondition", "ihs")
#: iterative solvers for sketch-and-precondition
SOLVERS = ("lsqr", "lsmr", "cg")
#: precisions of the sketched factorisation (the iteration is always float64)
PRECISIONS = ("double", "mixed")
Method = Literal["sketch-and-solve", "sketch-and-precondition", "ihs"]


@dataclass(frozen=True, repr=False)
class LstsqResult(ResultRepr):
    """Solution of a (ridge) least-squares problem by a randomized method.

    x: (d,) solution. iterations: LSQR/LSMR/CG/IHS iterations (0 for sketch-and-solve).
    residual_norm: ``sqrt(||b - A x||^2 + lam ||x||^2)``. rank: numerical rank of the sketched
    (augmented) matrix. setup_seconds: sketch + factorisation; seconds: total. history: per
    iteration, IHS's and CG's preconditioned gradient norm relative to the residual norm (CG:
    one more entry per true-gradient recomputation). solver: the sketch-and-precondition
    iteration (``""`` for the other methods); precision: ``"mixed"`` when the float32 factor
    was used, ``"double"`` otherwise (also after a mixed-precision fallback).
    """

    x: np.ndarray
    method: str
    sketch: dict[str, Any]
    sketch_size: int
    lam: float
    iterations: int
    converged: bool
    residual_norm: float
    rank: int
    setup_seconds: float
    seconds: float
    history: tuple[float, ...] = field(default=(), repr=False)
    solver: str = ""
    precision: str = "double"

    def summary(self) -> str:
        it = f", {self.iterations} iterations" if self.method != "sketch-and-solve" else ""
        if self.solver:
            it = f" ({self.solver}, {self.precision} precision factor){it}"
        conv = "" if self.converged else " (NOT converged: raise maxiter or loosen tol)"
        return (
            f"{self.method} with a {self.sketch.get('sketch')} sketch of m={self.sketch_size}"
            f"{it}: residual {self.residual_norm:.6g}, rank {self.rank}, "
            f"{self.seconds:.3g}s (setup {self.setup_seconds:.3g}s){conv}"
        )


def default_sketch_size(method: str, n: int, d: int, solver: str = "lsqr") -> int:
    """Default ``m``, capped at ``n``: ``4 d`` for sketch-and-solve; for preconditioning
    :func:`cg_sketch_size` with ``solver="cg"`` and ``8 d`` with LSQR/LSMR (fewer iterations
    pay for the larger QR); ``4 (sqrt(d) + 2)^2`` for IHS, whose momentum step relies on the
    sketched spectrum being close to its Marchenko-Pastur limit (at small ``d`` the edge
    fluctuations are large)."""
    if method == "sketch-and-precondition" and solver == "cg":
        return cg_sketch_size(n, d)
    if method == "sketch-and-precondition":
        m = 8 * d
    elif method == "ihs":
        m = int(np.ceil(4 * (np.sqrt(d) + 2.0) ** 2))
    else:
        m = 4 * d
    return int(min(n, max(m, d + 10)))


class _IdentitySketch(Sketch):
    """``S = I`` (n, n): the default when the sketch size reaches ``n`` (``S A = A``; the
    preconditioner is then ``A``'s own R factor)."""

    name = "identity"

    def _draw(self, n: int, rng: np.random.Generator, data: Any) -> SparseSketchMatrix:
        return SparseSketchMatrix(sp.identity(n, format="csc"))


def _hits_every_row(s_mat) -> bool:
    """Whether every column of the sketch matrix ``S`` (m, n) has a stored nonzero, so that a
    NaN or inf in any row of ``A`` makes ``S A`` non-finite (NaN and inf never cancel to a
    finite value: ``inf - inf`` is NaN). True for sparse sign sketches and CountSketch."""
    if not isinstance(s_mat, SparseSketchMatrix):
        return False
    mat = s_mat.matrix
    if not sp.isspmatrix_csc(mat) or mat.shape[1] == 0:
        return False
    return bool(np.diff(mat.indptr).min() >= 1 and np.all(mat.data != 0))


def lstsq(
    a: Any,
    b: Any,
    *,
    method: Method = "sketch-and-precondition",
    sketch: str | Sketch | None = None,
    sketch_size: int | None = None,
    lam: float = 0.0,
    tol: float = 1e-12,
    maxiter: int | None = None,
    solver: Literal["lsqr", "lsmr", "cg"] | None = None,
    refresh: bool = False,
    refine: bool | None = None,
    precision: Literal["double", "mixed"] | None = None,
    rng: RngLike = None,
) -> LstsqResult:
    """Solve ``min ||A x - b||^2 + lam ||x||^2`` by a randomized method (module docstring).

    ``a`` (n, d) dense or scipy.sparse, ``b`` (n,). ``sketch``: a family name from
    :data:`~frugalml.sketch.SKETCHES` or a :class:`Sketch` (its ``m`` wins over
    ``sketch_size``); ``None``: a sparse sign sketch, with :data:`CG_NNZ_PER_COL` nonzeros per
    column and ``m =`` :func:`cg_sketch_size` for the CG solver (8 nonzeros per column
    otherwise); when the default sketch size reaches ``n`` (small ``n / d``), ``S = I`` instead
    (no compression is possible, and a square random sketch may be singular).

    Defaults of ``method="sketch-and-precondition"``: ``solver="cg"`` and ``precision="mixed"``
    (the fastest measured combination, dense and sparse ``A``, and equally accurate: the float32
    factor only preconditions, and falls back to float64 for too ill-conditioned sketches or
    when CG with it stalls, e.g. for rank-deficient ``A``). The default precision is
    ``"mixed"`` only with CG (which has that fallback), ``"double"`` otherwise. Pass
    ``solver="lsqr"`` (or ``"lsmr"``) for the earlier behaviour. The other methods take no
    solver and ``precision="double"``.

    ``tol``: LSQR/LSMR ``atol = btol``; for IHS, the stop when the
    preconditioned gradient norm (about ``||A(x - x*)||``) falls below ``tol * ||b - A x||``.
    ``refine`` (sketch-and-precondition): restart LSQR/LSMR once from the recomputed residual
    (iterative refinement); ``None`` does so when ``cond(S A) > 1e6``, where one round cuts the
    error of an ill-conditioned solve about tenfold (measured at kappa = 1e8: 8e-9 -> 8e-10 in
    ``||A(x - x*)|| / ||b - A x*||`` for 4 extra iterations).
    Rank-deficient ``A``: the minimum-norm solution (sketch-and-precondition and IHS; the
    sketch's row space must cover A's, which holds w.h.p. for projections, not for sampling).

    ``solver="cg"`` (sketch-and-precondition only): conjugate gradients on the preconditioned
    normal equations, one fused pass over ``A`` per iteration (:mod:`.pcg`); ``tol`` is then
    the target of ``||M^T (A^T (b - A x) - lam x)|| / sqrt(||b - A x||^2 + lam ||x||^2)``,
    which is within the preconditioner's distortion of the relative residual-space error
    ``||A (x - x*)|| / ||b - A x*||``; the stop is checked on a recomputed (not updated)
    gradient, so ``refine`` is not needed. ``precision="mixed"`` (sketch-and-precondition only):
    factor ``S A`` in float32; the iteration stays float64 (module docstring). Cost of the
    cg solver: sketch + ``O(m d^2)`` QR + ``(iterations + rounds)`` passes of ``4 n d`` flops.
    """
    method = check_choice(method, "method", METHODS)
    if solver is not None:
        solver = check_choice(solver, "solver", SOLVERS)
    if precision is not None:
        precision = check_choice(precision, "precision", PRECISIONS)
    if method != "sketch-and-precondition":
        if solver == "cg":
            raise InvalidInputError(
                f"solver='cg' applies to method='sketch-and-precondition', not {method!r}; "
                "drop solver= or use method='sketch-and-precondition'"
            )
        if precision == "mixed":
            raise InvalidInputError(
                f"precision='mixed' applies to method='sketch-and-precondition' (whose "
                f"iteration repairs the float32 factor), not {method!r}; use precision='double'"
            )
    lam = check_nonnegative_float(lam, "lam")
    tol = check_positive_float(tol, "tol")
    # a dense A's finiteness is checked on S A when the sketch hits every row (below)
    a, b = check_lstsq_problem(a, b, lam, check_finite=False)
    n, d = a.shape
    dense = not sp.issparse(a)
    if solver is None:
        solver = "cg" if method == "sketch-and-precondition" else "lsqr"
    if precision is None:
        # the float32 factor's safety net (a stalled solve refactors in float64) is CG's
        precision = "mixed" if method == "sketch-and-precondition" and solver == "cg" else "double"
    gen = check_rng(rng)
    m = (
        default_sketch_size(method, n, d, solver)
        if sketch_size is None
        else check_int(sketch_size, "sketch_size", low=1)
    )
    if sketch is None and sketch_size is None and m >= n:
        # no compression possible: a random square sketch could only lose rank (a 40 x 40
        # sparse sign matrix with 3 nonzeros per column was singular in a test), so S = I
        sketch = _IdentitySketch(n)
    elif sketch is None:
        cg = method == "sketch-and-precondition" and solver == "cg"
        sketch = SparseSignSketch(m, gen, nnz_per_col=CG_NNZ_PER_COL) if cg else "sparse-sign"
    sk = resolve_sketch(sketch, m, gen)
    m = sk.m
    # a sparse sign sketch hits every row of A, so a NaN/inf in A shows up in S A: the check
    # rides on the sketching pass; other sketches (sampling) need the pass of their own
    deferred = dense and isinstance(sk, (SparseSignSketch, _IdentitySketch))
    if dense and not deferred:
        check_finite_rows(a)
    if lam == 0.0:
        need = d + 2 if method == "sketch-and-solve" else d
        if m < need:
            why = (
                "sketch-and-solve needs m > d + 1 (its expected error f(x*) d/(m-d-1) is finite "
                "only then)" if method == "sketch-and-solve"
                else f"{method} needs m >= d for the sketch to embed range(A)"
            )  # fmt: skip
            raise InvalidInputError(
                f"sketch size m={m} is too small for d={d}: {why}; use m >= 2d (e.g. {4 * d})"
            )
    maxiter = (
        (200 if method == "sketch-and-precondition" else 500)
        if maxiter is None
        else (check_int(maxiter, "maxiter", low=1))
    )
    check_factor_memory(m, d, n, lam)
    t0 = time.perf_counter()
    s_mat = sk.draw(n, data=a, rng=gen)
    if deferred and not _hits_every_row(s_mat):
        check_finite_rows(a)
        deferred = False
    sa, sb = _sketch_validated(s_mat, a, b)
    if deferred and not np.isfinite(sa).all():
        check_finite_rows(a)  # raises the same message as the up-front check
        raise InvalidInputError(
            f"S A overflowed although A is finite (max |A| = {np.abs(a).max():.3g}); "
            "rescale A (e.g. divide by its largest entry) and solve again"
        )
    factor = None
    if precision == "mixed":
        # accepted only when eps32 * cond_1(R) <= MIXED_COND_LIMIT: a worse float32 factor
        # may be numerically singular, and a rank-truncated one would hide directions from
        # the stopping test; then factor in float64 (the sketch itself is reused)
        factor = SketchedFactor(
            sa.astype(np.float32), lam, rhs=sb.astype(np.float32),
            rcond=np.finfo(np.float32).eps / MIXED_COND_LIMIT, truncate=False,
        )  # fmt: skip
        if not factor.full_rank:
            factor = None
    if factor is None:
        factor = SketchedFactor(sa, lam, rhs=sb)
    precision_used = "mixed" if factor.dtype == np.float32 else "double"
    x = factor.solve()
    t_setup = time.perf_counter() - t0
    iterations, converged, history = 0, True, ()
    rnorm = None
    if method == "sketch-and-precondition" and solver == "cg":
        x, iterations, converged, rnorm, history = precondition_cg(
            a, b, lam, factor, x, tol, maxiter
        )
        if not converged and precision_used == "mixed" and iterations < maxiter:
            # a float32 factor that passed the condition test but does not precondition
            # (e.g. A rank-deficient up to float32 rounding): redo it in float64
            factor = SketchedFactor(sa, lam, rhs=sb)
            precision_used = "double"
            x, extra, converged, rnorm, more = precondition_cg(
                a, b, lam, factor, factor.solve(), tol, maxiter - iterations
            )
            iterations, history = iterations + extra, history + more
    elif method == "sketch-and-precondition":
        x, iterations, converged = precondition_krylov(a, b, lam, factor, x, tol, maxiter, solver)
        if refine if refine is not None else factor.cond_estimate > REFINE_COND:
            x, extra, converged = precondition_krylov(a, b, lam, factor, x, tol, maxiter, solver)
            iterations += extra
    elif method == "ihs":
        x, iterations, converged, history = ihs_iterations(
            a, b, lam, factor, x, tol, maxiter, refresh, sk, gen, m, d
        )
    if rnorm is None:
        resid = b - a @ x
        rnorm = float(np.sqrt(resid @ resid + lam * (x @ x)))
    return LstsqResult(
        x=x, method=method, sketch=sk.params(), sketch_size=m, lam=lam, iterations=iterations,
        converged=converged, residual_norm=rnorm, rank=factor.rank, setup_seconds=t_setup,
        seconds=time.perf_counter() - t0, history=history,
        solver=solver if method == "sketch-and-precondition" else "",
        precision=precision_used,
    )  # fmt: skip


def _sketch_validated(s_mat, a, b) -> tuple[np.ndarray, np.ndarray]:
    """``S A`` (m, d) and ``S b`` (m,) for operands that :func:`check_lstsq_problem` has checked.

    :meth:`SketchMatrix.apply` would check A's values again: one more full pass over ``A``
    (0.05-0.07 s at n = 100000, d = 500, as long as 2 CG iterations). The memory check stays.
    """
    k = a.shape[1] + 1
    check_sketch_memory(s_mat.apply_nbytes(k), s_mat.m, s_mat.n, f"S @ A with {k} columns")
    return s_mat._apply(a), s_mat._apply(b[:, None])[:, 0]
