"""Effective dimension ``d_lambda = tr(A^T A (A^T A + lambda I)^{-1}) = sum s_i^2/(s_i^2 + lam)``.

It decides how large a sketch must be for a regularised problem (``m > d_lambda``) and the
debiasing corrections of :mod:`.debias` (Derezinski, Bartan, Pilanci & Mahoney, NeurIPS 2020,
arXiv 2007.01327).

* ``exact``: singular values of ``A`` (dense SVD, ``O(n d^2)``; sparse input is densified).
* ``sketch``: the exact formula on ``S A`` (sparse sign, ``8 d`` rows): approximate, cheap.
* ``hutchinson``: ``d_lambda = d - lambda tr((A^T A + lambda I)^{-1})`` with Hutchinson's trace
  estimator over ``probes`` Rademacher vectors; each ``(A^T A + lambda I)^{-1} z`` is a
  conjugate-gradient solve that only multiplies by ``A`` and ``A^T`` (``O(nnz(A))`` per CG
  iteration), so large or sparse ``A`` never forms ``A^T A``. Returns the estimate; the standard
  error is ``EffectiveDimension.stderr``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import scipy.sparse as sp
import scipy.sparse.linalg as spla

from .._results import ResultRepr
from .._validate import RngLike, check_choice, check_int, check_nonnegative_float, check_rng
from ..errors import InvalidInputError
from .base import as_operand

__all__ = ["EffectiveDimension", "effective_dimension", "effective_dimension_estimate"]


@dataclass(frozen=True, repr=False)
class EffectiveDimension(ResultRepr):
    """A randomized estimate of ``d_lambda`` with its Monte-Carlo standard error."""

    value: float
    stderr: float
    probes: int

    def summary(self) -> str:
        return f"d_lambda ~ {self.value:.6g} +- {self.stderr:.2g} ({self.probes} probes)"


def _as_matrix(a: Any) -> Any:
    a = as_operand(a, name="A")
    if a.ndim != 2:
        raise InvalidInputError(f"A must be 2-D (n, d), got shape {a.shape}")
    return a


def effective_dimension(
    a: Any,
    lam: float,
    *,
    method: Literal["exact", "hutchinson", "sketch"] = "exact",
    probes: int = 64,
    rng: RngLike = None,
) -> float:
    """``d_lambda`` of ``A`` (n, d) for ``lam >= 0`` (``d_0 = rank(A)``); see module docstring.

    ``method="sketch"``: the same formula on the singular values of a sparse-sign sketch
    ``S A`` with ``8 d`` rows (``O(nnz(A) + d^3)``): an approximation whose relative error is
    a few percent (the sketch distorts the spectrum by ``~ sqrt(d/m)``), meant for the step
    sizes of :mod:`.debias` on problems too large for an SVD.
    """
    a = _as_matrix(a)
    lam = check_nonnegative_float(lam, "lam")
    method = check_choice(method, "method", ("exact", "hutchinson", "sketch"))
    if method == "hutchinson":
        return effective_dimension_estimate(a, lam, probes=probes, rng=rng).value
    if method == "sketch" and a.shape[0] > 8 * a.shape[1]:
        from .sparse import SparseSignSketch

        a = SparseSignSketch(8 * a.shape[1]).apply(a, rng=check_rng(rng))
    dense = a.toarray() if sp.issparse(a) else a
    s = np.linalg.svd(dense, compute_uv=False)
    if lam == 0.0:
        return float(np.count_nonzero(s > np.finfo(float).eps * max(dense.shape) * s[0]))
    s2 = s * s
    return float(np.sum(s2 / (s2 + lam)))


def effective_dimension_estimate(
    a: Any, lam: float, *, probes: int = 64, rng: RngLike = None, tol: float = 1e-8
) -> EffectiveDimension:
    """Hutchinson estimate of ``d_lambda`` (``lam > 0``) with CG solves; see module docstring."""
    a = _as_matrix(a)
    lam = check_nonnegative_float(lam, "lam")
    if lam == 0.0:
        raise InvalidInputError("the Hutchinson estimator needs lam > 0 (d_0 is the rank of A)")
    probes = check_int(probes, "probes", low=2)
    gen = check_rng(rng)
    d = a.shape[1]
    op = spla.LinearOperator(
        (d, d), matvec=lambda v: np.asarray(a.T @ (a @ v)).ravel() + lam * v, dtype=np.float64
    )
    vals = []
    for _ in range(probes):
        z = gen.choice(np.array([-1.0, 1.0]), size=d)
        y, info = spla.cg(op, z, rtol=tol, maxiter=10 * d)
        if info != 0:
            raise InvalidInputError(f"CG did not converge in the trace estimate (info={info})")
        vals.append(d - lam * float(z @ y))
    vals = np.array(vals)
    return EffectiveDimension(
        value=float(vals.mean()), stderr=float(vals.std(ddof=1) / np.sqrt(probes)), probes=probes
    )
