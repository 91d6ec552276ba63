"""Independent reference constructions shared by the sketch tests."""

from __future__ import annotations

import numpy as np


def dct_matrix(n: int) -> np.ndarray:
    """Orthonormal DCT-II matrix from its definition: C[k, i] = c_k cos(pi k (2i + 1) / 2n)."""
    k = np.arange(n)[:, None]
    i = np.arange(n)[None, :]
    c = np.cos(np.pi * k * (2 * i + 1) / (2 * n)) * np.sqrt(2.0 / n)
    c[0] /= np.sqrt(2.0)
    return c
