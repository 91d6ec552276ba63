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

__all__ = ["EXACT_TRACE_DIM", "SketchedHessian", "gram"]

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

    ``form``: ``"primal"``, ``"dual"`` or ``None`` (dual when ``m < d`` and ``lam > 0``).
    Raises :class:`~frugalml.errors.InvalidInputError` when the matrix is not numerically
    positive definite (``lam = 0`` with ``R`` rank deficient): use ``lam > 0`` or the QR of
    :class:`~frugalml.sketch.lstsq.SketchedFactor`.
    """

    def __init__(self, r: Any, lam: float, *, form: str | None = None):
        m, d = r.shape
        if form is None:
            form = "dual" if (m < d and lam > 0.0) else "primal"
        if form == "dual" and lam <= 0.0:
            raise InvalidInputError("the dual (Woodbury) form needs lam > 0; use form='primal'")
        self.m, self.d, self.lam, self.form = m, d, float(lam), form
        self._r = r.tocsr() if sp.issparse(r) else np.asarray(r, dtype=float)
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
        if self.form == "primal":
            return scipy.linalg.cho_solve(self._chol, g, check_finite=False)
        inner = scipy.linalg.cho_solve(self._chol, self._r @ g, check_finite=False)
        return (g - self._r.T @ inner) / self.lam

    def effective_dimension(self, probes: int = 32, rng: Any = None) -> float:
        """``tr(R^T R (R^T R + lam I)^{-1}) = k - lam tr(K^{-1})`` for the ``k x k`` factored
        matrix ``K`` (exact up to :data:`EXACT_TRACE_DIM`, else Hutchinson); ``lam = 0``:
        ``d``."""
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
