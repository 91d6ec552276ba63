"""Dense sub-Gaussian sketches: Gaussian (entries N(0, 1/m)) and Rademacher (+-1/sqrt(m)).

The realisation is never stored: ``S`` is generated block by block of ``block`` columns from a
per-block seed, so applying a 2048 x 2^17 sketch needs ``m x block`` floats of memory, and the
same realisation can be applied again (``S @ A`` then ``S @ b``). Cost ``O(m n k)`` flops plus
``m n`` random numbers per application.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.sparse as sp

from .._validate import RngLike, check_int
from .base import Sketch, SketchMatrix

__all__ = ["GaussianSketch", "RademacherSketch"]


class _GeneratedDense(SketchMatrix):
    def __init__(self, m: int, n: int, seed: int, kind: str, block: int):
        super().__init__(m, n)
        self.seed = seed
        self.kind = kind
        self.block = block

    def apply_nbytes(self, k: int) -> int:
        return 8 * self.m * (k + min(self.block, self.n))

    def _block(self, j: int, cols: int) -> np.ndarray:
        g = np.random.default_rng(np.random.SeedSequence(self.seed, spawn_key=(j,)))
        if self.kind == "gaussian":
            s = g.standard_normal((self.m, cols))
            s *= 1.0 / np.sqrt(self.m)
            return s
        bits = g.integers(0, 2, size=(self.m, cols), dtype=np.int8)
        s = bits.astype(np.float64)
        s *= 2.0 / np.sqrt(self.m)
        s -= 1.0 / np.sqrt(self.m)
        return s

    def _apply(self, x: Any) -> np.ndarray:
        out = np.zeros((self.m, x.shape[1]))
        for j, start in enumerate(range(0, self.n, self.block)):
            stop = min(start + self.block, self.n)
            s = self._block(j, stop - start)
            xb = x[start:stop]
            if sp.issparse(xb):
                out += (xb.T @ s.T).T
            else:
                out += s @ xb
        return out

    def apply_rows(self, x: Any, start: int) -> np.ndarray:
        x, vec = self._rows_operand(x, start)
        stop = start + x.shape[0]
        out = np.zeros((self.m, x.shape[1]))
        for j in range(start // self.block, (stop - 1) // self.block + 1):
            lo = j * self.block
            hi = min(lo + self.block, self.n)
            s = self._block(j, hi - lo)
            a, b = max(start, lo), min(stop, hi)
            xb = x[a - start : b - start]
            if sp.issparse(xb):
                out += (xb.T @ s[:, a - lo : b - lo].T).T
            else:
                out += s[:, a - lo : b - lo] @ xb
        return out[:, 0] if vec else out


class GaussianSketch(Sketch):
    """``S`` with i.i.d. N(0, 1/m) entries; ``E[S^T S] = I``. Exact error theory applies."""

    name = "gaussian"
    streams_rows = True
    _kind = "gaussian"

    def __init__(self, m: int, rng: RngLike = None, *, block: int = 4096):
        super().__init__(m, rng)
        self.block = check_int(block, "block", low=1)

    def _draw(self, n: int, rng: np.random.Generator, data: Any) -> SketchMatrix:
        seed = int(rng.integers(0, 2**63 - 1))
        return _GeneratedDense(self.m, n, seed, self._kind, self.block)


class RademacherSketch(GaussianSketch):
    """``S`` with i.i.d. +-1/sqrt(m) entries; ``E[S^T S] = I``."""

    name = "rademacher"
    _kind = "rademacher"
