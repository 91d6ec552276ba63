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

Returns :class:`LstsqResult`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import scipy.linalg
import scipy.sparse as sp
import scipy.sparse.linalg as spla

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
from ..errors import InvalidInputError
from .base import Sketch, as_operand, check_sketch_memory
from .factory import resolve_sketch
from .pcg import normal_residual, pcg_normal
from .sparse import SparseSignSketch, _SparseMatrix

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
#: precision="mixed": a float32 factor whose LAPACK 1-norm condition estimate times eps32
#: exceeds this is redone in float64. Householder QR's error is column-wise small, so the
#: float32 R is the exact factor of a nearby matrix and preconditions well far beyond
#: cond ~ 1/eps32: measured on coherent problems (n = 60000, d = 500, sparse sign m = 8d), CG
#: needed 23/23/26 iterations with the float32 factor against 23/23/25 with the float64 one at
#: cond(A) = 1e5/1e6/1e7, where this product was 0.47/5.7/39; 10 keeps a margin
MIXED_COND_LIMIT = 10.0
#: IHS: restarts from the best iterate before giving up (see ``_ihs``)
MAX_RESTARTS = 8
#: IHS: iterations without a new best gradient norm before stopping at the rounding floor
STALL = 10
#: sketch-and-precondition: condition number of S A above which refine=None refines once
REFINE_COND = 1e6
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


class SketchedFactor:
    """Factorisation of the sketched matrix ``[S A; sqrt(lam) I]`` (m (+d), d) used as a
    preconditioner ``M`` (``A M`` well conditioned) and to solve the sketched problem.

    A thin QR gives ``R``; when ``R`` is numerically full rank (LAPACK ``trcon`` reciprocal
    condition estimate above ``rcond``) ``M = R^{-1}``, applied by triangular solves. Otherwise
    an SVD ``R = U Sigma V^T`` truncated to rank ``r`` gives ``M = V_r Sigma_r^{-1}`` (d, r) and
    minimum-norm solutions. Passing ``rhs = S b`` up front lets the QR of ``[S A, S b]`` deliver
    ``Q^T S b`` without forming ``Q``. ``logdet``: ``log det(A^T S^T S A + lam I)`` (``-inf``
    when singular), from the same factor. Cost ``O(m d^2)``.

    A float32 ``sa`` (and ``rhs``) is factored in float32 (about half the time of float64; the
    rank tolerance then uses float32's epsilon); the factor is stored and applied in float64.
    ``truncate=False`` skips the SVD when ``R`` is not numerically full rank: the factor is then
    marked unusable (``full_rank`` False, ``rank`` 0) -- for a caller that will refactor.
    """

    def __init__(
        self,
        sa: np.ndarray,
        lam: float = 0.0,
        rcond: float | None = None,
        rhs: np.ndarray | None = None,
        truncate: bool = True,
    ):
        m, d = sa.shape
        dt = np.float32 if sa.dtype == np.float32 else np.float64
        self.dtype = np.dtype(dt)
        aug = np.vstack([sa, np.sqrt(lam) * np.eye(d, dtype=dt)]) if lam > 0 else sa
        rows = aug.shape[0]
        tol = np.finfo(dt).eps * max(rows, d) if rcond is None else rcond
        self.m, self.d = m, d
        self._q = None
        self._qtb = None
        if rhs is not None:
            rhs = np.asarray(rhs, dtype=dt)
            rhs_aug = np.concatenate([rhs, np.zeros(rows - m, dtype=dt)]) if rows > m else rhs
            if rows >= d:
                full = scipy.linalg.qr(np.column_stack([aug, rhs_aug]), mode="r",
                                       check_finite=False)[0]  # fmt: skip
                r = full[:d, :d].astype(np.float64)
                self._qtb = full[:d, d].astype(np.float64)
            else:  # fewer rows than columns: factor aug itself
                r, self._qtb = aug.astype(np.float64), rhs_aug.astype(np.float64)
        elif rows >= d:
            q, r = np.linalg.qr(aug)
            self._q, r = q.astype(np.float64, copy=False), r.astype(np.float64, copy=False)
        else:
            self._q, r = np.eye(rows), aug.astype(np.float64)
        if not np.any(r):
            raise InvalidInputError(
                "the sketched matrix S A is zero: A is zero or the sketch missed every nonzero "
                "row; use a larger or denser sketch"
            )
        rcond_est = self._rcond(r) if rows >= d else 0.0
        self._triangular = rcond_est > tol
        if self._triangular:
            self._r = r
            self.rank = d
            self.cond_estimate = float(1.0 / rcond_est)
            self._u = None
            # det(gram) = det(R^T R)
            self.logdet = float(2.0 * np.sum(np.log(np.abs(np.diag(r)))))
        elif not truncate:
            self.rank, self._u, self.cond_estimate, self.logdet = 0, None, float("inf"), -np.inf
        else:
            u, sig, vt = scipy.linalg.svd(r, full_matrices=False, check_finite=False)
            self.rank = int(np.count_nonzero(sig > tol * sig[0]))
            self._u = u[:, : self.rank]
            self._pinv = vt[: self.rank].T / sig[: self.rank]  # V_r Sigma_r^{-1}
            self.cond_estimate = float(sig[0] / sig[self.rank - 1])
            self.logdet = float(2.0 * np.sum(np.log(sig))) if self.rank == d else -np.inf

    @property
    def full_rank(self) -> bool:
        """True when ``M = R^{-1}`` (triangular solves), False for the truncated SVD."""
        return bool(self._triangular)

    @staticmethod
    def _rcond(r: np.ndarray) -> float:
        if np.any(np.diag(r) == 0.0):
            return 0.0
        rc, info = scipy.linalg.lapack.dtrcon(np.asfortranarray(r), norm="1")
        return float(rc) if info == 0 else 0.0

    def matvec(self, y: np.ndarray) -> np.ndarray:
        """``M y`` (d,) for ``y`` (rank,)."""
        if self._triangular:
            return scipy.linalg.solve_triangular(self._r, y, check_finite=False)
        return self._pinv @ y

    def rmatvec(self, v: np.ndarray) -> np.ndarray:
        """``M^T v`` (rank,) for ``v`` (d,)."""
        if self._triangular:
            return scipy.linalg.solve_triangular(self._r, v, trans="T", check_finite=False)
        return self._pinv.T @ v

    @property
    def precond(self) -> np.ndarray:
        """The preconditioner ``M`` as an explicit (d, rank) matrix."""
        if self._triangular:
            return scipy.linalg.solve_triangular(self._r, np.eye(self.d), check_finite=False)
        return self._pinv

    def solve(self, sb: np.ndarray | None = None) -> np.ndarray:
        """Minimum-norm ``argmin ||S A x - s_b||^2 + lam ||x||^2`` (d,) for ``s_b = S b`` (m,);
        ``sb`` may be omitted when it was given as ``rhs``."""
        if sb is None:
            if self._qtb is None:
                raise InvalidInputError("pass sb (S b): no right-hand side was factored")
            qtb = self._qtb
        else:
            if self._q is None:
                raise InvalidInputError(
                    "this factor was built for one right-hand side (rhs=); call solve() "
                    "without sb, or build it without rhs"
                )
            qtb = self._q[: self.m].T @ sb
        if self._triangular:
            return scipy.linalg.solve_triangular(self._r, qtb, check_finite=False)
        return self._pinv @ (self._u.T @ qtb)

    def apply_inverse_gram(self, g: np.ndarray) -> np.ndarray:
        """``(A^T S^T S A + lam I)^+ g`` (d,)."""
        return self.matvec(self.rmatvec(g))


def factor_nbytes(m: int, d: int, lam: float = 0.0) -> int:
    """Peak bytes of sketching ``A`` (n, d) to ``m`` rows and factoring it
    (:class:`SketchedFactor`): ``S A``, ``S b``, the stacked ``[S A, S b]`` and its QR."""
    rows = m + (d if lam > 0 else 0)
    return 8 * (m * (d + 1) + 2 * rows * (d + 1) + 2 * d * d)


def check_factor_memory(m: int, d: int, n: int, lam: float = 0.0) -> None:
    """Refuse (:class:`~frugalml.errors.TooLargeError`) a sketch size whose ``m x d``
    sketched matrix and factorisation would not fit in memory, before any work."""
    check_sketch_memory(factor_nbytes(m, d, lam), m, n, f"the {m} x {d} sketched matrix S A")


#: nonzeros per column of the default sparse sign sketch of the CG solver: at n = 100000,
#: d = 500 (m = 8d/12d/16d/24d) CG took 25/21.5/20/18 passes with 2 and 24/20.5/19/17 with 3
#: nonzeros; a third nonzero costs less than the pass it saves, 8 cost about 0.25 s more in the
#: sketch for 7 passes fewer in total (measured by benchmarks/bench_lstsq_regimes.py)
CG_NNZ_PER_COL = 3


def cg_sketch_size(n: int, d: int) -> int:
    """Default ``m`` of the CG solver, from a cost model: the float32 QR costs ``2 m d^2`` flops
    (measured 0.05/0.08/0.12/0.19 s at m = 8d/12d/16d/24d, d = 500, one thread) and saves
    passes of ``8 n d`` bytes (35-48 ms each at n = 100000) as ``m`` grows. Its minimum:
    ``24 d`` for ``n >= 1000 d``, ``16 d`` for ``n >= 200 d``, ``12 d`` for ``n >= 75 d``, else
    ``6 d``; capped at ``n``."""
    k = 24 if n >= 1000 * d else 16 if n >= 200 * d else 12 if n >= 75 * d else 6
    return int(min(n, max(k * d, d + 10)))


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


def _validate(a: Any, b: Any, lam: float, check_finite: bool = True) -> tuple[Any, np.ndarray]:
    """Checked ``A`` (float64 dense or CSR) and ``b``; ``check_finite=False`` leaves a dense
    ``A``'s values unchecked (the caller must then call :func:`_check_finite`)."""
    if check_finite or sp.issparse(a):
        a = as_operand(a, name="A")
    else:
        a = check_array(a, "A", ndim=(1, 2), finite=False)
    if a.ndim != 2:
        raise InvalidInputError(f"A must be 2-D (n, d), got shape {a.shape}")
    b = check_array(b, "b", ndim=1)
    if b.shape[0] != a.shape[0]:
        raise InvalidInputError(f"b has {b.shape[0]} entries but A has {a.shape[0]} rows")
    n, d = a.shape
    if lam == 0.0 and n < d:
        raise InvalidInputError(
            f"A is {n} x {d} with n < d: the least-squares problem is underdetermined; "
            "pass lam > 0 (ridge) or use a direct solver"
        )
    return a, b


#: rows per chunk of the finiteness check (a 4096 x d boolean temporary, not an n x d one)
FINITE_CHUNK = 4096


def _check_finite(a: np.ndarray, name: str = "A") -> None:
    """Raise :class:`InvalidInputError` (the message of :func:`check_array`) when dense ``a``
    holds a NaN or inf; chunked, so no full-size boolean temporary. Cost: one pass over ``a``."""
    bad = 0
    for i in range(0, a.shape[0], FINITE_CHUNK):
        blk = a[i : i + FINITE_CHUNK]
        if not np.isfinite(blk).all():
            bad += int(blk.size - np.count_nonzero(np.isfinite(blk)))
    if bad:
        raise InvalidInputError(f"{name} contains {bad} NaN or inf value(s); clean the input")


class _IdentitySketch(Sketch):
    """``S = I`` (n, n): the default when the sketch size reaches ``n`` (``S A = A``; the
    preconditioner is then ``A``'s own R factor)."""

    name = "identity"

    def _draw(self, n: int, rng: np.random.Generator, data: Any) -> _SparseMatrix:
        return _SparseMatrix(sp.identity(n, format="csc"))


def _hits_every_row(s_mat) -> bool:
    """Whether every column of the sketch matrix ``S`` (m, n) has a stored nonzero, so that a
    NaN or inf in any row of ``A`` makes ``S A`` non-finite (NaN and inf never cancel to a
    finite value: ``inf - inf`` is NaN). True for sparse sign sketches and CountSketch."""
    if not isinstance(s_mat, _SparseMatrix):
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
    a, b = _validate(a, b, lam, check_finite=False)
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
        _check_finite(a)
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
        _check_finite(a)
        deferred = False
    sa, sb = _sketch_validated(s_mat, a, b)
    if deferred and not np.isfinite(sa).all():
        _check_finite(a)  # raises the same message as the up-front check
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
        x, iterations, converged, rnorm, history = _cg(a, b, lam, factor, x, tol, maxiter)
        if not converged and precision_used == "mixed" and iterations < maxiter:
            # a float32 factor that passed the condition test but does not precondition
            # (e.g. A rank-deficient up to float32 rounding): redo it in float64
            factor = SketchedFactor(sa, lam, rhs=sb)
            precision_used = "double"
            x, extra, converged, rnorm, more = _cg(
                a, b, lam, factor, factor.solve(), tol, maxiter - iterations
            )
            iterations, history = iterations + extra, history + more
    elif method == "sketch-and-precondition":
        x, iterations, converged = _precondition(a, b, lam, factor, x, tol, maxiter, solver)
        if refine if refine is not None else factor.cond_estimate > REFINE_COND:
            x, extra, converged = _precondition(a, b, lam, factor, x, tol, maxiter, solver)
            iterations += extra
    elif method == "ihs":
        x, iterations, converged, history = _ihs(
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
    """``S A`` (m, d) and ``S b`` (m,) for operands that :func:`_validate` has checked.

    :meth:`SketchMatrix.apply` would check A's values again: one more full pass over ``A``
    (0.05-0.07 s at n = 100000, d = 500, as long as 2 CG iterations). The memory check stays.
    """
    k = a.shape[1] + 1
    check_sketch_memory(s_mat.apply_nbytes(k), s_mat.m, s_mat.n, f"S @ A with {k} columns")
    return s_mat._apply(a), s_mat._apply(b[:, None])[:, 0]


def _cg(a, b, lam, factor, x0, tol, maxiter):
    """:func:`~frugalml.sketch.pcg.pcg_normal` with ``factor`` as the preconditioner; a solve
    that stalls within ``eps64 cond(R)`` of zero (the rounding floor of a backward-stable
    solver, ``||A dx|| / ||r|| <~ eps kappa``) counts as converged."""
    floor = np.finfo(np.float64).eps * factor.cond_estimate
    out = pcg_normal(
        a, b, x0, factor.matvec, factor.rmatvec, lam=lam, tol=tol, maxiter=maxiter, floor=floor
    )
    if out[2] and not factor.full_rank:
        # CG only sees range(M): a sketch that lost rank A does not have would let it stop on a
        # wrong x. The gradient's part outside range(M) must be rounding-sized (it is for a
        # rank-deficient A, whose null space S A shares): one more pass, rank-deficient only
        g, rnorm = normal_residual(a, b, out[0], lam)
        v = factor.precond / np.linalg.norm(factor.precond, axis=0)  # V_r (d, r)
        sigma1 = 1.0 / float(np.linalg.norm(factor.precond, axis=0).min())
        if np.linalg.norm(g - v @ (v.T @ g)) > np.sqrt(np.finfo(float).eps) * sigma1 * rnorm:
            out = (out[0], out[1], False, *out[3:])
    return out


def _precondition(a, b, lam, factor, x0, tol, maxiter, solver):
    n, d = a.shape
    pre, pre_t = factor.matvec, factor.rmatvec
    r = factor.rank
    root = np.sqrt(lam)

    if lam > 0:

        def matvec(y):
            z = pre(np.ravel(y))
            return np.concatenate([a @ z, root * z])

        def rmatvec(u):
            u = np.ravel(u)
            return pre_t(a.T @ u[:n] + root * u[n:])

        rhs = np.concatenate([b - a @ x0, -root * x0])
        shape = (n + d, r)
    else:

        def matvec(y):
            return a @ pre(np.ravel(y))

        def rmatvec(u):
            return pre_t(a.T @ np.ravel(u))

        rhs = b - a @ x0
        shape = (n, r)
    op = spla.LinearOperator(shape, matvec=matvec, rmatvec=rmatvec, dtype=np.float64)
    if solver == "lsqr":
        out = spla.lsqr(op, rhs, atol=tol, btol=tol, iter_lim=maxiter)
        y, istop, its = out[0], out[1], out[2]
        converged = istop != 7
    else:
        out = spla.lsmr(op, rhs, atol=tol, btol=tol, maxiter=maxiter)
        y, istop, its = out[0], out[1], out[2]
        converged = istop != 7
    return x0 + pre(y), int(its), bool(converged)


def _ihs(a, b, lam, factor, x, tol, maxiter, refresh, sk, gen, m, d):
    """IHS iterations with an adaptive safeguard.

    The momentum parameters assume the sketched Hessian's spectrum of a Gaussian embedding,
    ``[(1 - sqrt(r))^2, (1 + sqrt(r))^2]`` with ``r = (sqrt(d) + 2)^2 / m`` (the asymptotic
    ``d/m`` widened by about two standard deviations of the edge fluctuations); a sketch whose
    distortion is larger (sampling sketches, small m) can make the iteration grow. When the
    preconditioned gradient norm grows past 4x its best value (or overflows) the run restarts
    from the best iterate with a wider assumed spectrum (momentum ratio doubled; for refreshed
    IHS the step halved), at most ``MAX_RESTARTS`` times. After ``STALL`` iterations without
    progress the run stops; it counts as converged when the best gradient norm is within
    ``1e3 eps cond(S A)`` of the residual (the rounding floor of an ill-conditioned problem).
    """
    n = a.shape[0]
    # Marchenko-Pastur edge with a margin for finite-d fluctuations: (sqrt(d) + 2)^2 / m
    ratio = min((np.sqrt(d) + 2.0) ** 2 / m, 0.95)

    def params(r):
        return (1.0, 0.0) if refresh else ((1.0 - r) ** 2, r)

    alpha, beta = params(ratio)
    prev = x.copy()
    best_x, best_crit, best_rnorm, best_it = x.copy(), np.inf, np.inf, 0
    floor = 1e3 * np.finfo(float).eps * factor.cond_estimate
    history = []
    converged = False
    restarts = 0
    its = 0
    for its in range(1, maxiter + 1):
        g, rnorm = normal_residual(a, b, x, lam)  # one fused pass, recomputed
        if refresh and its > 1:
            s_mat = sk.draw(n, data=a, rng=gen)
            factor = SketchedFactor(s_mat.apply(a), lam)
        pg = factor.rmatvec(g)
        crit = float(np.linalg.norm(pg))
        finite = np.isfinite(crit) and np.isfinite(rnorm)
        history.append(crit / max(rnorm, np.finfo(float).tiny) if finite else float("inf"))
        if finite and crit <= tol * rnorm:
            converged = True
            its -= 1
            break
        if finite and crit < best_crit:
            best_x, best_crit, best_rnorm, best_it = x.copy(), crit, rnorm, its
        if not finite or crit > 4.0 * best_crit:
            if restarts == MAX_RESTARTS:
                break
            restarts += 1
            ratio = min(0.95, 2.0 * ratio + 0.05)
            alpha, beta = params(ratio)
            if refresh:
                alpha = 0.5**restarts
            x, prev = best_x.copy(), best_x.copy()
            continue
        if its - best_it >= STALL:
            # rounding floor reached (ill-conditioned A): the gradient cannot get smaller
            converged = best_crit <= floor * best_rnorm
            break
        step = factor.matvec(pg)
        nxt = x + alpha * step + beta * (x - prev)
        prev, x = x, nxt
    if not converged:
        x = best_x
    return x, its, converged, tuple(history)
