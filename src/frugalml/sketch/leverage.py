"""Statistical leverage scores: exact (thin QR) and approximate (sketch + JL).

``l_i = ||e_i^T U||^2`` for an orthonormal basis ``U`` of range(A); ``sum_i l_i = rank(A)``.

* ``exact``: column-pivoted thin QR of ``A`` (dense; sparse input is densified), rank decided
  by ``|R_jj| > rcond |R_11|``. Cost ``O(n d^2)``.
* ``approx``: Drineas, Magdon-Ismail, Mahoney & Woodruff, "Fast approximation of matrix
  coherence and statistical leverage" (JMLR 2012): ``R`` from a QR of a sparse-sign sketch
  ``S_1 A`` (``m_1 = 4 d`` rows by default) and a Gaussian JL matrix ``G`` (``d x r``,
  ``r = 32`` columns), ``l_i ~ ||e_i^T A R^{-1} G||^2``. Cost ``O(nnz(A) s + n d r + m_1 d^2)``;
  each score is within a constant factor with high probability, which is all sampling needs.
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
import scipy.linalg
import scipy.sparse as sp

from .._validate import RngLike, check_choice, check_int, check_rng
from ..errors import InvalidInputError
from .base import as_operand

__all__ = ["leverage_scores", "numerical_rank_basis"]


def numerical_rank_basis(a: np.ndarray, rcond: float | None = None) -> np.ndarray:
    """Orthonormal basis (n, r) of range(a) from a column-pivoted QR, ``r`` = numerical rank."""
    q, r, _ = scipy.linalg.qr(a, mode="economic", pivoting=True, check_finite=False)
    diag = np.abs(np.diag(r))
    if diag.size == 0 or diag[0] == 0.0:
        raise InvalidInputError("A is zero; leverage scores are undefined")
    tol = (np.finfo(float).eps * max(a.shape) if rcond is None else rcond) * diag[0]
    rank = int(np.count_nonzero(diag > tol))
    return q[:, :rank]


def leverage_scores(
    a: Any,
    *,
    method: Literal["exact", "approx"] = "exact",
    rng: RngLike = None,
    sketch_size: int | None = None,
    jl_dim: int = 32,
) -> np.ndarray:
    """Leverage scores (n,) of the rows of ``a`` (n, d), dense or scipy.sparse.

    See the module docstring for the two methods. The scores sum to rank(A) (exactly for
    ``exact``, approximately for ``approx``).
    """
    a = as_operand(a, name="A")
    if a.ndim == 1:
        a = a[:, None]
    method = check_choice(method, "method", ("exact", "approx"))
    n, d = a.shape
    if method == "exact":
        dense = a.toarray() if sp.issparse(a) else a
        u = numerical_rank_basis(dense)
        return np.einsum("ij,ij->i", u, u)
    from .sparse import SparseSignSketch

    gen = check_rng(rng)
    m1 = check_int(sketch_size, "sketch_size", low=1) if sketch_size is not None else 4 * d
    m1 = min(max(m1, d), n)
    r_jl = check_int(jl_dim, "jl_dim", low=1)
    sa = SparseSignSketch(m1, nnz_per_col=min(8, m1)).draw(n, rng=gen).apply(a)
    _, r, piv = scipy.linalg.qr(sa, mode="economic", pivoting=True, check_finite=False)
    diag = np.abs(np.diag(r))
    if diag.size == 0 or diag[0] == 0.0:
        raise InvalidInputError("A is zero; leverage scores are undefined")
    rank = int(np.count_nonzero(diag > np.finfo(float).eps * max(sa.shape) * diag[0]))
    g = gen.standard_normal((rank, r_jl)) / np.sqrt(r_jl)
    # A[:, piv[:rank]] R11^{-1} G spans the same space as U G (up to the sketch's distortion)
    w = scipy.linalg.solve_triangular(r[:rank, :rank], g, check_finite=False)
    z = np.zeros((d, r_jl))
    z[piv[:rank]] = w
    y = a @ z
    y = np.asarray(y)
    return np.einsum("ij,ij->i", y, y)
