"""The factorisation of a sketched matrix ``[S A; sqrt(lam) I]``: preconditioner and solver.

One thin QR of the sketched (augmented) matrix gives ``R`` with ``A R^{-1}`` well conditioned
when ``S`` is a subspace embedding (Rokhlin & Tygert, PNAS 2008; Avron, Maymounkov & Toledo,
Blendenpik, SISC 2010); a numerically rank-deficient ``R`` is replaced by its truncated SVD,
``M = V_r Sigma_r^{-1}``, as in LSRN (Meng, Saunders & Mahoney, SISC 2014), which gives
minimum-norm solutions. The same factor solves the sketch-and-solve problem and, in the
Newton sketch, applies ``(A^T S^T S A + lam I)^+``. Used by :func:`~frugalml.sketch.lstsq.lstsq`,
:mod:`.distributed`, :mod:`.newton` and :mod:`.privacy`.
"""

from __future__ import annotations

import numpy as np
import scipy.linalg

from ..errors import InvalidInputError
from .base import check_sketch_memory

__all__ = ["SketchedFactor", "check_factor_memory", "factor_nbytes"]


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
