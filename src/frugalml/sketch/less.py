"""LESS: leverage-score sparsified embeddings.

Derezinski, Liao, Dobriban & Mahoney, "Sparse sketches with small inversion bias" (COLT 2021)
and Derezinski, Lacotte, Pilanci & Mahoney, "Newton-LESS" (NeurIPS 2021). Each of the ``m``
rows of ``S`` holds ``s`` nonzeros at positions drawn i.i.d. from the leverage distribution
``p`` of the data, with values ``r / sqrt(m s p_i)`` and Rademacher signs ``r``:
``E[S^T S] = m * s * E[e_i e_i^T / (m s p_i)] = I`` (cross terms vanish with the signs).
With ``s ~ d`` nonzeros per row, LESS behaves like a Gaussian sketch (small inversion bias)
at ``O(m s k)`` cost instead of ``O(m n k)``. ``scores="uniform"`` gives LESS-uniform.
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
import scipy.sparse as sp

from .._validate import RngLike, check_choice, check_int, check_probability
from .base import Sketch, SketchMatrix
from .leverage import leverage_scores
from .sparse import SparseSketchMatrix

__all__ = ["LESSSketch"]


class LESSSketch(Sketch):
    """Leverage-score sparsified embedding with ``nnz_per_row`` nonzeros per row (default d)."""

    name = "less"
    data_dependent = True  # the scores, and the default nnz_per_row = d, come from the data

    def __init__(
        self,
        m: int,
        rng: RngLike = None,
        *,
        nnz_per_row: int | None = None,
        scores: Literal["exact", "approx", "uniform"] = "approx",
        mix: float = 0.1,
    ):
        super().__init__(m, rng)
        self.nnz_per_row = (
            None if nnz_per_row is None else check_int(nnz_per_row, "nnz_per_row", low=1)
        )
        self.scores = check_choice(scores, "scores", ("exact", "approx", "uniform"))
        self.mix = check_probability(mix, "mix")

    def draw_nbytes(self, n: int, d: int) -> int:
        s = self.nnz_per_row if self.nnz_per_row is not None else d
        return 48 * self.m * s + 24 * n * d

    def _draw(self, n: int, rng: np.random.Generator, data: Any) -> SketchMatrix:
        d = data.shape[1]
        s = self.nnz_per_row if self.nnz_per_row is not None else d
        if self.scores == "uniform":
            p = np.full(n, 1.0 / n)
        else:
            lev = leverage_scores(data, method=self.scores, rng=rng)
            p = (1.0 - self.mix) * lev / lev.sum() + self.mix / n
            p /= p.sum()
        cols = rng.choice(n, size=(self.m, s), replace=True, p=p)
        signs = rng.choice(np.array([-1.0, 1.0]), size=(self.m, s))
        vals = signs / np.sqrt(self.m * s * p[cols])
        rows = np.repeat(np.arange(self.m), s)
        mat = sp.csr_matrix((vals.ravel(), (rows, cols.ravel())), shape=(self.m, n))
        return SparseSketchMatrix(mat)

    def params(self) -> dict[str, Any]:
        return {
            **super().params(), "nnz_per_row": self.nnz_per_row, "scores": self.scores,
            "mix": self.mix,
        }  # fmt: skip
