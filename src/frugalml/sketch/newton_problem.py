"""The objective of the Newton sketch: ``f(x) = loss(A x; y) + lam/2 ||x||^2`` and its
Hessian square root, on in-memory or row-sharded ``A``.

Derezinski, Bartan, Pilanci & Mahoney (NeurIPS 2020, arXiv 2007.01327); Bartan & Pilanci,
"Distributed Averaging Methods for Randomized Second Order Optimization" (arXiv 2002.06540).
``loss`` is least squares (``1/2 ||A x - y||^2``) or logistic
(``sum log(1 + exp(-y_i a_i^T x))``, labels +-1 or 0/1). The Hessian is ``B^T B + lam I`` with
``B = A`` (least squares) or ``B = diag(sqrt(p (1 - p))) A``, ``p = expit(A x)`` (logistic):
:func:`hessian_sqrt`. :class:`NewtonProblem` holds ``A`` in memory (dense or CSR);
:class:`ShardedNewtonProblem` streams the same quantities block by block over row-sharded ``A``.
Used by :func:`~frugalml.sketch.newton.distributed_newton` and its workers
(:mod:`.newton_tasks`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.linalg
import scipy.sparse as sp
import scipy.special

from .._validate import check_array, check_choice, check_nonnegative_float
from ..errors import InvalidInputError
from ..runtime.sharded import RowBlocks, as_row_blocks, is_row_sharded
from .base import as_operand
from .sketched_hessian import gram

__all__ = ["LOSSES", "NewtonProblem", "ShardedNewtonProblem", "hessian_sqrt", "scale_rows"]

LOSSES = ("least-squares", "logistic")


@dataclass(frozen=True)
class NewtonProblem:
    """``f(x) = loss(A x; y) + lam/2 ||x||^2``; ``a`` (n, d) dense or scipy.sparse CSR (never
    densified), ``y`` (n,) (logistic: +-1)."""

    a: Any
    y: np.ndarray
    lam: float
    loss: str

    @classmethod
    def build(cls, a: Any, y: Any, lam: float, loss: str) -> NewtonProblem:
        loss = check_choice(loss, "loss", LOSSES)
        a = as_operand(a, name="A") if sp.issparse(a) else check_array(a, "A", ndim=2)
        if a.ndim != 2:
            raise InvalidInputError(f"A must be 2-D (n, d), got shape {a.shape}")
        y = check_array(y, "y", shape=(a.shape[0],))
        lam = check_nonnegative_float(lam, "lam")
        if loss == "logistic":
            labels = np.unique(y)
            if labels.size > 2 or not (set(labels) <= {0.0, 1.0} or set(labels) <= {-1.0, 1.0}):
                raise InvalidInputError(
                    f"logistic regression needs binary labels (0/1 or -1/+1), got values "
                    f"{labels[:6].tolist()}{' ...' if labels.size > 6 else ''}"
                )
            y = np.where(y > 0, 1.0, -1.0)
            if lam == 0.0:
                raise InvalidInputError(
                    "logistic regression needs lam > 0 (separable data has no minimiser)"
                )
        elif lam == 0.0 and a.shape[0] < a.shape[1]:
            raise InvalidInputError("least squares with n < d needs lam > 0")
        return cls(a, y, lam, loss)

    def value(self, x: np.ndarray) -> float:
        return self.value_and_margins(x)[0]

    def value_and_margins(self, x: np.ndarray) -> tuple[float, np.ndarray]:
        """``(f(x), A x)``: one pass over ``A``; :meth:`gradient` reuses ``A x``."""
        z = self.a @ x
        if self.loss == "least-squares":
            r = z - self.y
            data = 0.5 * float(r @ r)
        else:
            data = float(np.sum(np.logaddexp(0.0, -self.y * z)))
        return data + 0.5 * self.lam * float(x @ x), z

    def gradient(self, x: np.ndarray, z: np.ndarray | None = None) -> np.ndarray:
        """``grad f(x)`` (d,); ``z = A x`` when known (saves a pass over ``A``)."""
        z = self.a @ x if z is None else z
        if self.loss == "least-squares":
            return self.a.T @ (z - self.y) + self.lam * x
        s = -self.y * scipy.special.expit(-self.y * z)
        return self.a.T @ s + self.lam * x

    def hessian_sqrt(self, x: np.ndarray) -> np.ndarray:
        """``B`` (n, d) with ``B^T B + lam I`` the Hessian at ``x``."""
        return hessian_sqrt(self.a, x, self.loss)

    def newton_direction(self, x: np.ndarray, g: np.ndarray) -> np.ndarray:
        """Exact Newton direction: forms the dense ``d x d`` Hessian (``O(n d^2)``, or
        ``O(sum_i nnz_i^2)`` for sparse ``A``) and solves it by Cholesky."""
        h = gram(self.hessian_sqrt(x))
        h[np.diag_indices_from(h)] += self.lam
        return scipy.linalg.solve(h, g, assume_a="pos")


def hessian_sqrt(a: Any, x: np.ndarray | None, loss: str) -> Any:
    """``B`` (n, d) with ``B^T B + lam I`` the Hessian at ``x``: ``A`` itself for least
    squares (``x`` unused), ``diag(sqrt(p (1 - p))) A`` with ``p = expit(A x)`` for logistic.
    Row-wise, so it applies to a row block (or sampled rows) of ``A`` as well; sparse ``A``
    gives a sparse CSR ``B`` with the same pattern."""
    if loss == "least-squares":
        return a
    p = scipy.special.expit(a @ x)
    return scale_rows(a, np.sqrt(p * (1.0 - p)))


def scale_rows(a: Any, w: np.ndarray) -> Any:
    """``diag(w) A`` for dense ``A`` or scipy.sparse ``A`` (then CSR, same pattern)."""
    if sp.issparse(a):
        return sp.csr_matrix(sp.diags(w) @ a)
    return a * w[:, None]


class ShardedNewtonProblem:
    """:class:`NewtonProblem` over row-sharded ``A`` (:class:`~frugalml.runtime.sharded.RowBlocks`):
    the objective, gradient and Hessian quantities are streamed block by block on the master,
    which never holds ``A`` whole. ``y`` (n,) is in memory."""

    def __init__(self, a: RowBlocks, y: np.ndarray, lam: float, loss: str):
        self.a, self.y, self.lam, self.loss = a, y, lam, loss
        self.shape = a.shape

    @classmethod
    def build(cls, a: Any, y: Any, lam: float, loss: str) -> ShardedNewtonProblem:
        rows = as_row_blocks(a, name="A")
        if rows.ndim != 2:
            raise InvalidInputError(f"A must be 2-D (n, d), got shape {rows.shape}")
        if is_row_sharded(y):
            y = as_row_blocks(y, name="y").to_array()
        # labels and lam checked by NewtonProblem.build on a 1-column stand-in (same rules)
        y = check_array(y, "y", shape=(rows.shape[0],))
        stand_in = NewtonProblem.build(np.zeros((rows.shape[0], 1)), y, lam, loss)
        n, d = rows.shape
        if stand_in.loss == "least-squares" and stand_in.lam == 0.0 and n < d:
            raise InvalidInputError("least squares with n < d needs lam > 0")
        return cls(rows, stand_in.y, stand_in.lam, stand_in.loss)

    def _pieces(self):
        for start, blk in self.a.blocks():
            yield np.asarray(blk, dtype=float), self.y[start : start + blk.shape[0]]

    def value(self, x: np.ndarray) -> float:
        data = 0.0
        for blk, yb in self._pieces():
            z = blk @ x
            if self.loss == "least-squares":
                r = z - yb
                data += 0.5 * float(r @ r)
            else:
                data += float(np.sum(np.logaddexp(0.0, -yb * z)))
        return data + 0.5 * self.lam * float(x @ x)

    def gradient(self, x: np.ndarray) -> np.ndarray:
        g = self.lam * x
        for blk, yb in self._pieces():
            z = blk @ x
            if self.loss == "least-squares":
                g = g + blk.T @ (z - yb)
            else:
                g = g + blk.T @ (-yb * scipy.special.expit(-yb * z))
        return g

    def hessian_r(self, x: np.ndarray) -> np.ndarray:
        """``R`` (<= d, d) with ``R^T R = B^T B`` at ``x`` (streamed QR)."""
        d = self.shape[1]
        r = np.zeros((0, d))
        for blk, _ in self._pieces():
            stacked = np.vstack([r, hessian_sqrt(blk, x, self.loss)])
            r = scipy.linalg.qr(stacked, mode="r", check_finite=False)[0][:d]
        return r

    def effective_dimension(self, x: np.ndarray) -> float:
        """Exact ``d_lambda`` of ``B`` at ``x`` from the singular values of ``R``."""
        s = np.linalg.svd(self.hessian_r(x), compute_uv=False)
        if self.lam == 0.0:
            return float(np.count_nonzero(s > np.finfo(float).eps * max(self.shape) * s[0]))
        s2 = s * s
        return float(np.sum(s2 / (s2 + self.lam)))

    def newton_direction(self, x: np.ndarray, g: np.ndarray) -> np.ndarray:
        r = self.hessian_r(x)
        h = r.T @ r + self.lam * np.eye(self.shape[1])
        return scipy.linalg.solve(h, g, assume_a="pos")
