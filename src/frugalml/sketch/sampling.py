"""Row-sampling sketches: uniform and leverage-score sampling (with replacement).

``S`` has one nonzero per row: row ``t`` picks index ``i_t ~ p`` and scales it by
``1/sqrt(m p_{i_t})``, so ``E[S^T S] = sum_i p_i e_i e_i^T / p_i = I`` (on the support of
``p``). Uniform: ``p_i = 1/n``. Leverage: ``p_i = (1 - mix) l_i / sum(l) + mix / n`` with ``l``
from :func:`~frugalml.sketch.leverage.leverage_scores` of the data matrix; ``mix > 0`` keeps
every row reachable (rows with zero leverage lie outside range(A) and are never needed for
``S A``, but they matter for ``S b``). Sampling sketches are biased for sketch-and-solve, so
their averaged error plateaus in the number of workers (see :mod:`.theory`).

References: Drineas, Mahoney & Muthukrishnan (2006); Ma, Mahoney & Yu (2015);
Bartan & Pilanci, arXiv 2002.06538.
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np

from .._validate import RngLike, check_choice, check_probability
from ..errors import InvalidInputError
from .base import Sketch, SketchMatrix
from .leverage import leverage_scores

__all__ = ["LeverageScoreSampling", "SamplingMatrix", "UniformSampling"]


class SamplingMatrix(SketchMatrix):
    """``S`` = diag(weights) @ (rows ``idx`` of the identity)."""

    def __init__(self, n: int, idx: np.ndarray, weights: np.ndarray):
        super().__init__(idx.shape[0], n)
        self.idx = idx
        self.weights = weights

    def apply_nbytes(self, k: int) -> int:
        return 16 * self.m * k

    def _apply(self, x: Any) -> np.ndarray:
        rows = x[self.idx]
        rows = rows.toarray() if hasattr(rows, "toarray") else np.array(rows, dtype=np.float64)
        rows *= self.weights[:, None]
        return rows

    def apply_rows(self, x: Any, start: int) -> np.ndarray:
        x, vec = self._rows_operand(x, start)
        out = np.zeros((self.m, x.shape[1]))
        hit = np.flatnonzero((self.idx >= start) & (self.idx < start + x.shape[0]))
        if hit.size:
            rows = x[self.idx[hit] - start]
            rows = rows.toarray() if hasattr(rows, "toarray") else np.asarray(rows, dtype=float)
            out[hit] = rows * self.weights[hit, None]
        return out[:, 0] if vec else out


def sample_rows(m: int, p: np.ndarray, rng: np.random.Generator) -> SamplingMatrix:
    """``m`` i.i.d. draws from ``p`` (n,), weighted ``1/sqrt(m p_i)``."""
    idx = rng.choice(p.shape[0], size=m, replace=True, p=p)
    return SamplingMatrix(p.shape[0], idx, 1.0 / np.sqrt(m * p[idx]))


class UniformSampling(Sketch):
    """Uniform row sampling with replacement, rows scaled by ``sqrt(n/m)``."""

    name = "uniform"
    streams_rows = True

    def draw_nbytes(self, n: int, d: int) -> int:
        return 16 * self.m

    def _draw(self, n: int, rng: np.random.Generator, data: Any) -> SketchMatrix:
        idx = rng.integers(0, n, size=self.m)
        return SamplingMatrix(n, idx, np.full(self.m, np.sqrt(n / self.m)))


class LeverageScoreSampling(Sketch):
    """Leverage-score row sampling (exact or approximate scores, optional uniform mixing)."""

    name = "leverage"
    data_dependent = True

    def __init__(
        self,
        m: int,
        rng: RngLike = None,
        *,
        scores: Literal["exact", "approx"] = "exact",
        mix: float = 0.0,
    ):
        super().__init__(m, rng)
        self.scores = check_choice(scores, "scores", ("exact", "approx"))
        self.mix = check_probability(mix, "mix")

    def probabilities(self, data: Any, rng: RngLike = None) -> np.ndarray:
        """Sampling distribution (n,) for the data matrix ``data`` (n, d)."""
        lev = leverage_scores(data, method=self.scores, rng=rng)
        if not lev.sum() > 0:
            raise InvalidInputError(
                "the data matrix is zero: leverage scores are undefined; use a uniform or "
                "projection sketch"
            )
        p = (1.0 - self.mix) * lev / lev.sum() + self.mix / lev.shape[0]
        return p / p.sum()

    def draw_nbytes(self, n: int, d: int) -> int:
        return 16 * self.m + 24 * n * d  # the scores: a QR (exact) or a sketch of the data

    def _draw(self, n: int, rng: np.random.Generator, data: Any) -> SketchMatrix:
        return sample_rows(self.m, self.probabilities(data, rng), rng)

    def params(self) -> dict[str, Any]:
        return {**super().params(), "scores": self.scores, "mix": self.mix}
