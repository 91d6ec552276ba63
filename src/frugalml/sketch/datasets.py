"""Regression problems for tests and benchmarks: synthetic with controlled conditioning and
coherence, and scikit-learn's bundled real datasets (diabetes, digits, breast cancer).

Coherence (the largest leverage score, between ``d/n`` and 1) decides how badly uniform
sampling does: ``synthetic_regression(coherence=...)`` draws rows from a multivariate
Student-t with ``df`` degrees of freedom (Ma, Mahoney & Yu 2015): ``df = inf`` (Gaussian rows)
is incoherent, ``df = 1`` very coherent.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .._resources import check_memory
from .._results import ResultRepr
from .._validate import RngLike, check_choice, check_int, check_positive_float, check_rng
from ..errors import InvalidInputError

__all__ = ["REAL_DATASETS", "Regression", "load_real", "synthetic_regression"]

REAL_DATASETS = ("diabetes", "digits", "breast-cancer")


@dataclass(frozen=True, repr=False)
class Regression(ResultRepr):
    """A least-squares problem ``A`` (n, d), ``b`` (n,) with a name."""

    name: str
    a: np.ndarray
    b: np.ndarray

    def summary(self) -> str:
        return f"{self.name}: A {self.a.shape[0]} x {self.a.shape[1]}"

    @property
    def shape(self) -> tuple[int, int]:
        return self.a.shape


def synthetic_regression(
    n: int,
    d: int,
    *,
    kappa: float = 1.0,
    df: float = float("inf"),
    noise: float = 1.0,
    rng: RngLike = None,
) -> Regression:
    """``A = Q Sigma V^T`` with ``Q`` an orthonormal basis of the range of ``Z`` (rows of ``Z``
    multivariate-t with ``df`` degrees of freedom; ``inf`` = Gaussian), so ``A`` has ``Z``'s
    leverage scores and condition number ``kappa`` (log-spaced singular values);
    ``b = A x_true + noise * (||A x_true|| / sqrt(n)) N(0, I)``. Cost ``O(n d^2)``."""
    n = check_int(n, "n", low=2)
    d = check_int(d, "d", low=1, high=n)
    kappa = check_positive_float(kappa, "kappa")
    if kappa < 1:
        raise InvalidInputError(f"kappa must be >= 1, got {kappa}")
    gen = check_rng(rng)
    check_memory(8 * (4 * n * d + 2 * d * d), f"a synthetic {n} x {d} problem", fix="lower n or d")
    z = gen.standard_normal((n, d))
    if np.isfinite(df):
        df = check_positive_float(df, "df")
        z /= np.sqrt(gen.chisquare(df, size=n) / df)[:, None]
    # range(A) = range(Z) keeps Z's leverage scores; A = Q Sigma V^T fixes the spectrum
    u, _ = np.linalg.qr(z)
    sig = np.logspace(0, -np.log10(kappa), d)
    v, _ = np.linalg.qr(gen.standard_normal((d, d)))
    a = (u * sig) @ v.T
    x = gen.standard_normal(d)
    b = a @ x + noise * np.linalg.norm(a @ x) / np.sqrt(n) * gen.standard_normal(n)
    name = f"synthetic n={n} d={d} kappa={kappa:g} df={df:g}"
    return Regression(name, a, b)


def load_real(name: str) -> Regression:
    """One of scikit-learn's bundled datasets as a least-squares problem (standardised
    features plus an intercept column): ``diabetes`` (442 x 11, disease progression),
    ``digits`` (1797 x 62 after dropping constant pixels, digit label as a number),
    ``breast-cancer`` (569 x 31, 0/1 label)."""
    name = check_choice(name, "dataset", REAL_DATASETS)
    from .._optional import require

    datasets = require("sklearn.datasets", what="the bundled real datasets", extra="sketch")

    loader = {
        "diabetes": datasets.load_diabetes,
        "digits": datasets.load_digits,
        "breast-cancer": datasets.load_breast_cancer,
    }[name]
    x, y = loader(return_X_y=True)
    x = np.asarray(x, dtype=float)
    std = x.std(axis=0)
    keep = std > 0
    x = (x[:, keep] - x[:, keep].mean(axis=0)) / std[keep]
    a = np.hstack([x, np.ones((x.shape[0], 1))])
    return Regression(name, a, np.asarray(y, dtype=float))
