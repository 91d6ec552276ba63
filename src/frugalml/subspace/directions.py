"""Subspace directions shared by SESOP and PD-SESOP: their names, Nemirovski's weights and the
orthonormalisation of the direction columns.

SESOP: Narkiss & Zibulevsky, "Sequential Subspace Optimization Method for Large-Scale
Unconstrained Problems" (Technion CCIT report 559, 2005); PD-SESOP: Choukroun, Zibulevsky &
Kisilev, "Primal-Dual Sequential Subspace Optimization for Saddle-point Problems" (arXiv
2008.09149).
"""

from __future__ import annotations

import math

import numpy as np
import scipy.linalg

__all__ = ["DIRECTIONS", "nemirovski_weight", "orthonormal_basis"]

#: direction families of both methods (PD-SESOP adds ``"hamiltonian"``)
DIRECTIONS = ("gradient", "steps", "nemirovski")


def nemirovski_weight(w_prev: float) -> float:
    """``w_k = 1/2 + sqrt(1/4 + w_{k-1}^2)`` (Nemirovski's optimal-method weights)."""
    return 0.5 + math.sqrt(0.25 + w_prev * w_prev)


def orthonormal_basis(columns: np.ndarray, rtol: float = 1e-10) -> tuple[np.ndarray, np.ndarray]:
    """Orthonormal basis of the span of ``columns`` (shape ``(d, k)``) and its transform.

    Returns ``(B, T)`` with ``B = columns @ T``, ``B^T B = I`` and ``B`` of shape ``(d, r)``,
    ``r`` the numerical rank: columns are scaled to unit norm, then a column-pivoted QR drops
    those within relative ``rtol`` of the span of the others. Zero columns are dropped.
    ``O(d k^2)``.
    """
    d, k = columns.shape
    norms = np.linalg.norm(columns, axis=0)
    keep = np.flatnonzero(norms > 0)
    T = np.zeros((k, 0))
    if keep.size == 0:
        return np.zeros((d, 0)), T
    scaled = columns[:, keep] / norms[keep]
    q, r, piv = scipy.linalg.qr(scaled, mode="economic", pivoting=True)
    diag = np.abs(np.diag(r))
    rank = int(np.count_nonzero(diag > rtol * diag[0]))
    r_inv = scipy.linalg.solve_triangular(r[:rank, :rank], np.eye(rank))
    T = np.zeros((k, rank))
    T[keep[piv[:rank]], :] = r_inv / norms[keep[piv[:rank]], None]
    return q[:, :rank], T
