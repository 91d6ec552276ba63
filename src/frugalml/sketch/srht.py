"""Subsampled randomized Hadamard / cosine transforms (SRHT, SRDCT).

``S = sqrt(N/m) P H D``: ``D`` random signs, ``H`` the orthonormal Walsh-Hadamard transform of
the input zero-padded to ``N = 2^ceil(log2 n)`` rows (or the orthonormal DCT-II with ``N = n``),
``P`` picks ``m`` of the ``N`` rows uniformly without replacement. ``E[S^T S] = I``:
each row of ``H D`` is kept with probability ``m/N`` and reweighted by ``N/m``.
Cost ``O(N k log N)`` (see :mod:`.transforms`); sparse operands are densified.

References: Ailon & Chazelle (2009); Tropp, "Improved analysis of the subsampled randomized
Hadamard transform" (2011); Bartan & Pilanci, arXiv 2002.06538 (distributed SRHT averaging).
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
import scipy.sparse as sp

from .._validate import RngLike, check_choice
from ..errors import InvalidInputError
from .base import Sketch, SketchMatrix
from .transforms import dct, fwht, next_pow2

__all__ = ["SRHTSketch"]


class _SRHTMatrix(SketchMatrix):
    def __init__(self, m: int, n: int, signs: np.ndarray, rows: np.ndarray, transform: str):
        super().__init__(m, n)
        self.signs = signs
        self.rows = rows
        self.transform = transform
        self.padded = signs.shape[0]

    def apply_nbytes(self, k: int) -> int:
        return 8 * k * (2 * self.padded + self.n + self.m)

    def _apply(self, x: Any) -> np.ndarray:
        if sp.issparse(x):
            x = x.toarray()
        y = np.zeros((self.padded, x.shape[1]))
        np.multiply(x, self.signs[: self.n, None], out=y[: self.n])
        y = fwht(y) if self.transform == "hadamard" else dct(y)
        out = y[self.rows]
        out *= np.sqrt(self.padded / self.m)
        return out


class SRHTSketch(Sketch):
    """Subsampled randomized Hadamard (``transform="hadamard"``) or cosine (``"dct"``) sketch."""

    name = "srht"

    def __init__(
        self, m: int, rng: RngLike = None, *, transform: Literal["hadamard", "dct"] = "hadamard"
    ):
        super().__init__(m, rng)
        self.transform = check_choice(transform, "transform", ("hadamard", "dct"))

    def draw_nbytes(self, n: int, d: int) -> int:
        big = next_pow2(n) if self.transform == "hadamard" else n
        return 8 * (2 * big + 2 * min(self.m, big))

    def _draw(self, n: int, rng: np.random.Generator, data: Any) -> SketchMatrix:
        big = next_pow2(n) if self.transform == "hadamard" else n
        if self.m > big:
            raise InvalidInputError(
                f"SRHT sketch size m={self.m} exceeds the transform length {big} (n={n}); "
                "use m <= n or a Gaussian sketch"
            )
        signs = rng.choice(np.array([-1.0, 1.0]), size=big)
        rows = np.sort(rng.choice(big, size=self.m, replace=False))
        return _SRHTMatrix(self.m, n, signs, rows, self.transform)

    def params(self) -> dict[str, Any]:
        return {**super().params(), "transform": self.transform}
