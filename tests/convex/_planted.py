"""Planted two-layer teacher data shared by the first-order solver tests."""

from __future__ import annotations

import numpy as np


def planted_data(n, d, seed, classify=False):
    gen = np.random.default_rng(seed)
    X = gen.standard_normal((n, d)) / np.sqrt(d)
    U = gen.standard_normal((d, 3))
    U /= np.linalg.norm(U, axis=0)
    z = (0.5 * (X @ U) ** 2 + 0.5 * (X @ U)) @ np.array([1.0, -0.7, 0.5])
    if classify:
        return X, np.where(z + 0.1 * gen.standard_normal(n) > np.median(z), 1.0, -1.0)
    return X, z + 0.05 * gen.standard_normal(n)
