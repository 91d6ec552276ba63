"""Sparse sign embeddings: CountSketch (one nonzero per column) and the SJLT / sparse sign
sketch with ``s`` nonzeros per column.

Each column of ``S`` (m, n) has ``s`` nonzeros ``+-1/sqrt(s)`` in distinct random rows, so
``E[S^T S] = I`` (diagonal ``s * 1/s``, off-diagonal terms have random signs). ``S`` is a
scipy CSC matrix; ``S @ A`` costs ``O(s nnz(A))`` and keeps sparse inputs sparse until the
(m, k) result. References: Clarkson & Woodruff (2013); Nelson & Nguyen, OSNAP (2013);
Meng & Mahoney (2013).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.sparse as sp

from .._validate import RngLike, check_int
from ..errors import InvalidInputError
from .base import Sketch, SketchMatrix

__all__ = ["CountSketch", "SparseSignSketch", "SparseSketchMatrix"]


class SparseSketchMatrix(SketchMatrix):
    """A drawn sketch ``S`` (m, n) held as a scipy.sparse matrix (``matrix``, CSC or CSR):
    ``S @ A`` costs ``O(nnz(S) k)`` for ``A`` (n, k), and a sparse ``A`` stays sparse until the
    dense (m, k) result. Used by the sparse sign sketches, CountSketch, LESS and ``S = I``."""

    def __init__(self, s: sp.spmatrix):
        super().__init__(*s.shape)
        self.matrix = s

    def _apply(self, x: Any) -> np.ndarray:
        y = self.matrix @ x
        return y.toarray() if sp.issparse(y) else np.asarray(y)

    def to_dense(self) -> np.ndarray:
        return self.matrix.toarray()

    def apply_rows(self, x: Any, start: int) -> np.ndarray:
        x, vec = self._rows_operand(x, start)
        y = self.matrix[:, start : start + x.shape[0]] @ x
        y = y.toarray() if sp.issparse(y) else np.asarray(y)
        return y[:, 0] if vec else y


def _distinct_rows(m: int, n: int, s: int, rng: np.random.Generator) -> np.ndarray:
    """(n, s) row indices, distinct within each column (rejection on the rare duplicates)."""
    if s == 1:
        return rng.integers(0, m, size=(n, 1))
    if 4 * s >= m:  # dense regime: exact sampling without replacement per column
        return np.argsort(rng.random((n, m)), axis=1)[:, :s]
    rows = rng.integers(0, m, size=(n, s))
    while True:
        srt = np.sort(rows, axis=1)
        bad = np.flatnonzero((srt[:, 1:] == srt[:, :-1]).any(axis=1))
        if bad.size == 0:
            return rows
        rows[bad] = rng.integers(0, m, size=(bad.size, s))


class SparseSignSketch(Sketch):
    """Sparse sign embedding with ``nnz_per_col`` nonzeros per column (default 8)."""

    name = "sparse-sign"
    streams_rows = True

    def __init__(self, m: int, rng: RngLike = None, *, nnz_per_col: int = 8):
        super().__init__(m, rng)
        self.nnz_per_col = check_int(nnz_per_col, "nnz_per_col", low=1)

    def draw_nbytes(self, n: int, d: int) -> int:
        s = min(self.nnz_per_col, self.m)
        dense = 16 * n * self.m if 4 * s >= self.m and s > 1 else 0  # argsort regime
        return 40 * n * s + dense

    def _draw(self, n: int, rng: np.random.Generator, data: Any) -> SketchMatrix:
        s = min(self.nnz_per_col, self.m)
        if s < 1:
            raise InvalidInputError("nnz_per_col must be >= 1")
        rows = _distinct_rows(self.m, n, s, rng).ravel()
        vals = rng.choice(np.array([-1.0, 1.0]), size=n * s) / np.sqrt(s)
        indptr = np.arange(0, n * s + 1, s)
        mat = sp.csc_matrix((vals, rows, indptr), shape=(self.m, n))
        return SparseSketchMatrix(mat)

    def params(self) -> dict[str, Any]:
        return {**super().params(), "nnz_per_col": self.nnz_per_col}


class CountSketch(SparseSignSketch):
    """CountSketch: one random +-1 per column (a sparse sign sketch with ``s = 1``)."""

    name = "countsketch"

    def __init__(self, m: int, rng: RngLike = None):
        super().__init__(m, rng, nnz_per_col=1)

    def params(self) -> dict[str, Any]:
        return {"sketch": self.name, "m": self.m}
