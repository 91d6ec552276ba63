"""Test objectives with exact gradients for derivative-free optimisation.

Each objective is a picklable callable (so process executors can run it) that accepts one
point (d,) -> float or a batch (m, d) -> (m,), and has ``gradient(x)``, a starting point
``x0`` and the optimal value ``f_star`` (closed form, or a converged L-BFGS solve with the
exact gradient for the logistic loss). Used as references by the tests and the benchmark of
:mod:`frugalml.coded.dfo` (Bartan & Pilanci, arXiv 1907.05984).
"""

from __future__ import annotations

from abc import ABC, abstractmethod

import numpy as np
from scipy import optimize

from ..._resources import check_memory
from ..._validate import (
    RngLike,
    check_int,
    check_nonnegative_float,
    check_positive_float,
    check_rng,
)

__all__ = ["LogisticLoss", "Quadratic", "Rosenbrock", "TestFunction"]


class TestFunction(ABC):
    """Base: batched evaluation and the reference facts (``x0``, ``f_star``, ``x_star``)."""

    __test__ = False  # not a pytest test class
    name = "function"
    dim: int
    x0: np.ndarray
    f_star: float

    @abstractmethod
    def value(self, x: np.ndarray) -> np.ndarray:
        """(m, d) -> (m,)."""

    @abstractmethod
    def gradient(self, x: np.ndarray) -> np.ndarray:
        """(d,) -> (d,) exact gradient."""

    def __call__(self, x: np.ndarray) -> float | np.ndarray:
        x = np.asarray(x, dtype=np.float64)
        if x.ndim == 1:
            return float(self.value(x[None, :])[0])
        return self.value(x)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(d={self.dim})"


class Quadratic(TestFunction):
    """f(x) = 1/2 (x - x*)^T A (x - x*), A = Q diag(lambda) Q^T with eigenvalues log-spaced
    in [1, condition]; f* = 0. Central differences are exact for it: (f(x+sw) - f(x-sw))/(2s)
    = grad f(x) . w for every s. Evaluation O(m d^2)."""

    name = "quadratic"

    def __init__(self, dim: int = 32, *, condition: float = 10.0, rng: RngLike = 0):
        self.dim = check_int(dim, "dim", low=1)
        condition = check_positive_float(condition, "condition")
        check_memory(
            3 * 8.0 * self.dim * self.dim,
            f"the {self.dim} x {self.dim} quadratic (matrix and QR factors)",
            fix="lower dim",
        )
        gen = check_rng(rng)
        q, _ = np.linalg.qr(gen.standard_normal((self.dim, self.dim)))
        lam = np.logspace(0.0, np.log10(max(condition, 1.0)), self.dim)
        self.a = (q * lam) @ q.T
        self.x_star = gen.standard_normal(self.dim)
        self.x0 = self.x_star + gen.standard_normal(self.dim) * 2.0
        self.f_star = 0.0

    def value(self, x: np.ndarray) -> np.ndarray:
        z = x - self.x_star
        return 0.5 * np.einsum("ij,jk,ik->i", z, self.a, z)

    def gradient(self, x: np.ndarray) -> np.ndarray:
        return self.a @ (np.asarray(x, dtype=np.float64) - self.x_star)


class Rosenbrock(TestFunction):
    """sum_i 100 (x_{i+1} - x_i^2)^2 + (1 - x_i)^2; minimum f* = 0 at (1, ..., 1); start
    x0 = (-1.2, 1, -1.2, 1, ...). Evaluation O(m d)."""

    name = "rosenbrock"

    def __init__(self, dim: int = 8):
        self.dim = check_int(dim, "dim", low=2)
        self.x0 = np.tile([-1.2, 1.0], (self.dim + 1) // 2)[: self.dim]
        self.x_star = np.ones(self.dim)
        self.f_star = 0.0

    def value(self, x: np.ndarray) -> np.ndarray:
        a, b = x[:, :-1], x[:, 1:]
        return np.sum(100.0 * (b - a * a) ** 2 + (1.0 - a) ** 2, axis=1)

    def gradient(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, dtype=np.float64)
        g = np.zeros_like(x)
        a, b = x[:-1], x[1:]
        g[:-1] += -400.0 * a * (b - a * a) - 2.0 * (1.0 - a)
        g[1:] += 200.0 * (b - a * a)
        return g


class LogisticLoss(TestFunction):
    """Regularised logistic regression loss on synthetic data:

    f(w) = (1/n) sum_i log(1 + exp(-y_i a_i . w)) + (lam / 2) ||w||^2,

    a_i ~ N(0, I_d), labels y_i = sign(a_i . w_true + noise). ``f_star`` and ``x_star`` from
    L-BFGS with the exact gradient (gradient norm < 1e-10). Evaluation O(m n d).
    """

    name = "logistic"

    def __init__(self, dim: int = 32, n_samples: int = 500, *, lam: float = 1e-2, rng: RngLike = 0):
        self.dim = check_int(dim, "dim", low=1)
        n = check_int(n_samples, "n_samples", low=2)
        self.lam = check_nonnegative_float(lam, "lam")
        check_memory(
            2 * 8.0 * n * self.dim,
            f"{n} logistic samples in dimension {self.dim}",
            fix="lower dim or n_samples",
        )
        gen = check_rng(rng)
        self.a = gen.standard_normal((n, self.dim))
        w_true = gen.standard_normal(self.dim)
        self.y = np.sign(self.a @ w_true + 0.5 * gen.standard_normal(n))
        self.y[self.y == 0] = 1.0
        self.x0 = np.zeros(self.dim)
        res = optimize.minimize(
            lambda w: self(w), self.x0, jac=self.gradient, method="L-BFGS-B",
            options={"gtol": 1e-10, "ftol": 1e-15, "maxiter": 10000},
        )  # fmt: skip
        self.x_star = res.x
        self.f_star = float(res.fun)

    def value(self, x: np.ndarray) -> np.ndarray:
        margins = (x @ self.a.T) * self.y  # (m, n)
        return np.mean(np.logaddexp(0.0, -margins), axis=1) + 0.5 * self.lam * np.sum(x * x, 1)

    def gradient(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, dtype=np.float64)
        margins = (self.a @ x) * self.y
        s = -self.y * 0.5 * (1.0 - np.tanh(0.5 * margins))  # -y * sigmoid(-margin)
        return self.a.T @ s / self.a.shape[0] + self.lam * x
