"""The regularised sketched Hessian ``H_S = R^T R + lam I`` and its solve, primal or dual.

``R = S B`` (m, d) is a sketched Hessian square root (dense, or scipy.sparse when ``B`` is
sparse and the sketch samples rows). One Newton-sketch worker needs ``H_S^{-1} g``,
``log det H_S`` and, for the debiasing correction, the effective dimension
``d_lam(H_S) = tr(R^T R H_S^{-1})``. Two factorisations, whichever is smaller:

* **primal** (``m >= d``): Cholesky of ``R^T R + lam I`` (d, d): ``O(m d^2 + d^3 / 3)`` flops
  (a symmetric rank-k update, about half the flops of the QR of ``[R; sqrt(lam) I]``, which
  costs ``2 (m + d) d^2``);
* **dual** (``m < d``, ``lam > 0``), the Woodbury identity
  ``(lam I + R^T R)^{-1} g = (g - R^T (lam I_m + R R^T)^{-1} R g) / lam``: Cholesky of the
  ``m x m`` kernel, ``O(m^2 d + m^3 / 3)`` dense or ``O(m nnz/row^2 + m^3 / 3)`` sparse; the
  ``d x d`` matrix is never formed, so ``d = 10^5`` features cost ``O(d)`` memory beyond ``R``.
  ``log det H_S = (d - m) log lam + log det(lam I_m + R R^T)`` (the nonzero spectra of
  ``R^T R`` and ``R R^T`` agree).

* **cg** (``R`` scipy.sparse, ``lam > 0``): no factorisation; conjugate gradients on
  ``(R^T R + lam I) x = g`` with a Jacobi preconditioner, two sparse products
  (``4 nnz(R)`` flops) per iteration, to relative residual :data:`CG_RTOL`. For sparse
  high-dimensional data (bag of words: ``m`` and ``d`` in the thousands, tens of nonzeros a
  row) the dense ``min(m, d)^2`` kernel and its ``min(m, d)^3 / 3`` Cholesky cost far more than
  the few hundred sparse products CG needs. ``logdet`` is not available (NaN: the
  determinantal weights need a factor form); ``d_lam`` is a Hutchinson estimate with
  :data:`CG_PROBES` probes, each a CG solve (to relative residual 1e-3) on the smaller of the
  primal ``d x d`` and dual ``m x m`` systems, ``d_lam = k - lam tr((K + lam I)^{-1})``.

``d_lam`` is exact (a triangular inverse) for factors up to :data:`EXACT_TRACE_DIM`, else a
Hutchinson estimate with ``probes`` Rademacher vectors (``O(probes k^2)``, absolute standard
error ``<= sqrt(2 (k - d_lam) / probes)`` for the ``k x k`` factor).

Woodbury (1950); Pilanci & Wainwright, "Newton Sketch" (SIAM J. Optim. 2017) for the sketched
Hessian; Hutchinson (1989) for the trace estimate.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.linalg
import scipy.sparse as sp

from ..errors import InvalidInputError

__all__ = ["CG_MIN_DIM", "CG_RTOL", "EXACT_TRACE_DIM", "SketchedHessian", "gram"]

#: relative residual of the cg form's solves, far below the sketch's own O(sqrt(d_lam / m))
#: error of the direction (bag of words n = 10^5, d = 10^4: 26-32 CG iterations a solve
#: against 55-58 at 1e-10, and 1e-6 suboptimality after the same number of Newton iterations)
CG_RTOL = 1e-4
#: sparse roots whose factor would be larger than this (min(m, d)) are solved by CG
CG_MIN_DIM = 2000
#: Hutchinson probes of the cg form's d_lam (bag of words, m = 4096 sampled rows, d = 10^4:
#: 2356 with 8 probes in 0.17 s against 2361 from the Cholesky factor in 1.17 s)
CG_PROBES = 8

#: factors up to this size get the exact trace of the inverse, larger ones Hutchinson's
EXACT_TRACE_DIM = 512


def gram(r: Any, *, outer: bool = False) -> np.ndarray:
    """Dense ``R^T R`` (d, d) or, with ``outer``, ``R R^T`` (m, m) for dense or sparse ``R``."""
    if sp.issparse(r):
        prod = (r @ r.T) if outer else (r.T @ r)
        return np.asarray(prod.toarray())
    r = np.asarray(r)
    return r @ r.T if outer else r.T @ r  # NumPy uses a symmetric rank-k update (syrk)


class SketchedHessian:
    """Factor of ``R^T R + lam I`` for ``R`` (m, d) dense or scipy.sparse; ``lam >= 0``.

    ``form``: ``"primal"``, ``"dual"``, ``"cg"`` or ``None`` (cg for a sparse ``R`` with
    ``min(m, d) > CG_MIN_DIM`` and ``lam > 0``, else dual when ``m < d`` and ``lam > 0``,
    else primal).
    Raises :class:`~frugalml.errors.InvalidInputError` when the matrix is not numerically
    positive definite (``lam = 0`` with ``R`` rank deficient): use ``lam > 0`` or the QR of
    :class:`~frugalml.sketch.lstsq.SketchedFactor`.
    """

    def __init__(self, r: Any, lam: float, *, form: str | None = None):
        m, d = r.shape
        if form is None:  # the cheapest exact form; CG where a dense factor would be large
            if sp.issparse(r) and lam > 0.0 and min(m, d) > CG_MIN_DIM:
                form = "cg"
            else:
                form = "dual" if (m < d and lam > 0.0) else "primal"
        if form in ("dual", "cg") and lam <= 0.0:
            raise InvalidInputError(f"the {form} form needs lam > 0; use form='primal'")
        if form == "cg" and not sp.issparse(r):
            raise InvalidInputError("the cg form is for a scipy.sparse root R")
        self.m, self.d, self.lam, self.form = m, d, float(lam), form
        self._r = r.tocsr() if sp.issparse(r) else np.asarray(r, dtype=float)
        if form == "cg":
            self._chol = None
            self._diag = np.asarray(self._r.multiply(self._r).sum(axis=0)).ravel() + lam
            self.logdet = float("nan")
            self.cg_iterations = 0
            return
        k = gram(self._r, outer=form == "dual")
        k[np.diag_indices_from(k)] += lam
        try:
            self._chol = scipy.linalg.cho_factor(k, lower=True, overwrite_a=True,
                                                 check_finite=False)  # fmt: skip
        except np.linalg.LinAlgError as exc:
            raise InvalidInputError(
                f"the sketched Hessian ({m} x {d} root, lam={lam:g}) is not positive definite; "
                "use lam > 0 or a larger sketch"
            ) from exc
        diag = np.diag(self._chol[0])
        if not np.all(diag > 0.0):
            raise InvalidInputError(
                f"the sketched Hessian ({m} x {d} root, lam={lam:g}) is singular; use lam > 0"
            )
        self.logdet = float(2.0 * np.sum(np.log(diag)))
        if form == "dual":
            self.logdet += (d - m) * float(np.log(lam))

    def solve(self, g: np.ndarray) -> np.ndarray:
        """``(R^T R + lam I)^{-1} g`` for ``g`` (d,)."""
        if self.form == "cg":
            return self._solve_cg(g)
        if self.form == "primal":
            return scipy.linalg.cho_solve(self._chol, g, check_finite=False)
        inner = scipy.linalg.cho_solve(self._chol, self._r @ g, check_finite=False)
        return (g - self._r.T @ inner) / self.lam

    def _solve_cg(self, g: np.ndarray) -> np.ndarray:
        from scipy.sparse.linalg import LinearOperator, cg

        r, lam, d = self._r, self.lam, self.d
        count = [0]

        def matvec(v: np.ndarray) -> np.ndarray:
            count[0] += 1
            return r.T @ (r @ v) + lam * v

        op = LinearOperator((d, d), matvec=matvec, dtype=np.float64)
        pre = LinearOperator((d, d), matvec=lambda v: v / self._diag, dtype=np.float64)
        x, info = cg(op, g, rtol=CG_RTOL, atol=0.0, maxiter=10 * d, M=pre)
        self.cg_iterations += count[0]
        if info != 0:
            raise InvalidInputError(
                f"CG on the sketched Hessian ({self.m} x {d} root, lam={lam:g}) did not reach "
                f"relative residual {CG_RTOL:g} in {count[0]} iterations; use a larger lam"
            )
        return x

    def _effective_dimension_cg(self, rng: Any) -> float:
        from scipy.sparse.linalg import LinearOperator, cg

        r, lam = self._r, self.lam
        dual = self.m < self.d
        k = self.m if dual else self.d
        if dual:
            diag = np.asarray(r.multiply(r).sum(axis=1)).ravel() + lam
            op = LinearOperator((k, k), matvec=lambda v: r @ (r.T @ v) + lam * v, dtype=float)
        else:
            diag = self._diag
            op = LinearOperator((k, k), matvec=lambda v: r.T @ (r @ v) + lam * v, dtype=float)
        pre = LinearOperator((k, k), matvec=lambda v: v / diag, dtype=float)
        z = np.random.default_rng(rng).choice((-1.0, 1.0), size=(CG_PROBES, k))
        tr_inv = 0.0
        for zj in z:
            x, _ = cg(op, zj, rtol=1e-3, atol=0.0, maxiter=10 * k, M=pre)
            tr_inv += float(zj @ x)
        return float(min(max(k - lam * tr_inv / CG_PROBES, 0.0), k))

    def effective_dimension(self, probes: int = 32, rng: Any = None) -> float:
        """``tr(R^T R (R^T R + lam I)^{-1}) = k - lam tr(K^{-1})`` for the ``k x k`` factored
        matrix ``K`` (exact up to :data:`EXACT_TRACE_DIM`, else Hutchinson); ``lam = 0``:
        ``d``. The cg form: Hutchinson over CG solves (:data:`CG_PROBES` probes)."""
        if self.form == "cg":
            return self._effective_dimension_cg(rng)
        k = self._chol[0].shape[0]
        if self.lam == 0.0:
            return float(self.d)
        low = np.tril(self._chol[0])
        if k <= EXACT_TRACE_DIM:
            inv = scipy.linalg.solve_triangular(low, np.eye(k), lower=True, check_finite=False)
            tr_inv = float(np.sum(inv * inv))
        else:
            gen = np.random.default_rng(rng)
            z = gen.choice((-1.0, 1.0), size=(k, probes))
            w = scipy.linalg.solve_triangular(low, z, lower=True, check_finite=False)
            tr_inv = float(np.sum(w * w)) / probes
        return float(min(max(k - self.lam * tr_inv, 0.0), k))
