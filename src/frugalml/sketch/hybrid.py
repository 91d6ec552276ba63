"""Hybrid sketch of Bartan & Pilanci (arXiv 2002.06538): sample, then project.

``S = G P``: ``P`` samples ``m' = m_sample`` rows uniformly with replacement (scaled
``sqrt(n/m')``), ``G`` is an ``m x m'`` Gaussian or SRHT sketch. ``E[S^T S] = E[P^T E[G^T G] P]
= E[P^T P] = I``. The projection costs ``O(m m' k)`` (Gaussian) or ``O(m' k log m')`` (SRHT)
instead of ``O(m n k)``: sampling cuts the data to read, projection restores the
Gaussian-like (nearly unbiased) behaviour that plain sampling lacks.
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np

from .._validate import RngLike, check_choice, check_int
from ..errors import InvalidInputError
from .base import Sketch, SketchMatrix
from .gaussian import GaussianSketch
from .sampling import UniformSampling
from .srht import SRHTSketch

__all__ = ["HybridSketch"]


class _Composed(SketchMatrix):
    def __init__(self, inner: SketchMatrix, outer: SketchMatrix):
        super().__init__(outer.m, inner.n)
        self.inner = inner
        self.outer = outer

    def apply_nbytes(self, k: int) -> int:
        return self.inner.apply_nbytes(k) + self.outer.apply_nbytes(k)

    def _apply(self, x: Any) -> np.ndarray:
        return self.outer.apply(self.inner.apply(x))


class HybridSketch(Sketch):
    """Uniform sampling to ``m_sample`` rows followed by a Gaussian or SRHT projection to ``m``."""

    name = "hybrid"

    def __init__(
        self,
        m: int,
        rng: RngLike = None,
        *,
        m_sample: int | None = None,
        projection: Literal["gaussian", "srht"] = "gaussian",
    ):
        super().__init__(m, rng)
        self.m_sample = None if m_sample is None else check_int(m_sample, "m_sample", low=1)
        self.projection = check_choice(projection, "projection", ("gaussian", "srht"))

    def draw_nbytes(self, n: int, d: int) -> int:
        ms = self.m_sample if self.m_sample is not None else min(n, 4 * self.m)
        return 16 * ms + 8 * 4 * max(ms, self.m)

    def _draw(self, n: int, rng: np.random.Generator, data: Any) -> SketchMatrix:
        ms = self.m_sample if self.m_sample is not None else min(n, 4 * self.m)
        if ms < self.m:
            raise InvalidInputError(
                f"hybrid sketch: m_sample={ms} must be >= m={self.m} (sample, then project down)"
            )
        inner = UniformSampling(ms).draw(n, rng=rng)
        proj = GaussianSketch if self.projection == "gaussian" else SRHTSketch
        outer = proj(self.m).draw(ms, rng=rng)
        return _Composed(inner, outer)

    def params(self) -> dict[str, Any]:
        return {**super().params(), "m_sample": self.m_sample, "projection": self.projection}
