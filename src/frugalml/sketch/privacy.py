"""Privacy of Gaussian sketches: the Gaussian-mechanism sketch, (epsilon, delta) accounting and
a mutual-information leakage bound.

**Gaussian-mechanism sketch.** Worker ``k`` releases ``S_k X~`` with ``X~ = [A b; w I_{d+1}]``
(``S_k`` Gaussian ``m x (n + d + 1)``, N(0, 1/m)). Since ``E[X~^T X~] = X^T X + w^2 I``, solving
least squares on the released sketch is sketched **ridge regression with lambda = w^2**: privacy
costs exactly a ridge bias, which :func:`private_lstsq` reports.

**(epsilon, delta)-DP.** Releasing a Gaussian sketch with ``k`` rows (``k = q m`` for ``q``
workers: stacked Gaussian sketches are one Gaussian sketch) of a matrix whose rows have norm
``<= B`` and whose Gram matrix has smallest eigenvalue ``lambda_min`` (``w^2`` included) is
``(epsilon, delta)``-DP for neighbouring datasets that differ in one row, with
``epsilon = 2 B^2 (ln(4/delta) + sqrt(2 k ln(4/delta))) / lambda_min``
(Sheffet, "Old techniques in differentially private linear regression", ALT 2019, Thm 2;
earlier version: Sheffet, "Private approximations of the 2nd-moment matrix using existing
techniques in linear regression", arXiv 1507.00056). :func:`gaussian_sketch_epsilon` evaluates it,
:func:`gaussian_sketch_noise` inverts it for the ``w^2`` a target epsilon needs. We use
``lambda_min >= w^2`` (the data's own ``lambda_min`` is not released, so it is not spent).

**Mutual information.** Given ``A``, the rows of ``Y = [S_1; ...; S_q] A`` are i.i.d.
``N(0, G/m)`` with ``G = A^T A``, so ``I(A; Y) = I(G; Y)`` and, by the Gaussian maximum-entropy
bound, ``I(A; Y) <= (q m / 2) (log det E[G] - E[log det G])`` nats for any distribution of the
data with ``G`` invertible. For Gaussian data (i.i.d. N(0, 1) entries, ``G ~ Wishart(n, I_d)``)
this is ``(q m / 2) sum_{i=1}^d (log(n/2) - psi((n - i + 1)/2))  ~  q m d (d + 1) / (4 n)``:
linear in ``q m`` and falling like ``1/n`` — each extra worker leaks the same amount, and a
larger dataset hides each row better. :func:`leakage_bound` evaluates it for Gaussian data or, by
resampling rows, for the empirical distribution of a given dataset. (Bartan & Pilanci,
arXiv 2002.06538, bound the normalised leakage of worst-case data in the same ``q m / n`` form.)

**Who sees what.** In :func:`private_lstsq` the master is the data owner: it forms every
worker's release ``S_k [A b; w I]`` itself and ships only that ``m x (d + 1)`` matrix
(``O(m d)`` bytes per worker, inherent: it is what is released); ``A`` and ``b`` never leave
the master. Workers solve their sketched problem and return a ``d``-vector.
:class:`PrivateResult` reports the bytes that travelled.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.special

from .._results import ResultRepr
from .._validate import (
    RngLike,
    check_array,
    check_int,
    check_positive_float,
    check_probability,
    check_rng,
)
from ..errors import InvalidInputError, TaskFailedError
from ..runtime import Executor, make_executor
from .gaussian import GaussianSketch
from .sketched_factor import SketchedFactor

__all__ = [
    "PrivateResult",
    "gaussian_sketch_epsilon",
    "gaussian_sketch_noise",
    "leakage_bound",
    "private_lstsq",
    "private_sketch",
    "private_solve_task",
]


def _check_delta(delta: float) -> float:
    delta = check_probability(delta, "delta", allow_one=False)
    if delta <= 0:
        raise InvalidInputError("delta must be in (0, 1)")
    return delta


def gaussian_sketch_epsilon(
    k: int, lambda_min: float, delta: float, *, row_norm: float = 1.0
) -> float:
    """``epsilon`` of releasing a ``k``-row Gaussian sketch (module docstring, Sheffet 2019)."""
    k = check_int(k, "k (sketch rows)", low=1)
    lambda_min = check_positive_float(lambda_min, "lambda_min")
    delta = _check_delta(delta)
    b2 = check_positive_float(row_norm, "row_norm") ** 2
    log_term = np.log(4.0 / delta)
    return float(2.0 * b2 * (log_term + np.sqrt(2.0 * k * log_term)) / lambda_min)


def gaussian_sketch_noise(epsilon: float, delta: float, k: int, *, row_norm: float = 1.0) -> float:
    """The ``w^2`` (= ridge lambda) making a ``k``-row Gaussian sketch ``(epsilon, delta)``-DP."""
    epsilon = check_positive_float(epsilon, "epsilon")
    delta = _check_delta(delta)
    k = check_int(k, "k (sketch rows)", low=1)
    b2 = check_positive_float(row_norm, "row_norm") ** 2
    log_term = np.log(4.0 / delta)
    return float(2.0 * b2 * (log_term + np.sqrt(2.0 * k * log_term)) / epsilon)


def private_sketch(a: Any, b: Any, m: int, w: float, rng: RngLike = None) -> np.ndarray:
    """One release ``S [A b; w I_{d+1}]`` (m, d + 1) with a Gaussian ``S`` (m, n + d + 1)."""
    a = check_array(a, "A", ndim=2)
    b = check_array(b, "b", shape=(a.shape[0],))
    w = float(w)
    if not np.isfinite(w) or w < 0:
        raise InvalidInputError(f"w must be a finite number >= 0, got {w}")
    d1 = a.shape[1] + 1
    aug = np.vstack([np.column_stack([a, b]), w * np.eye(d1)])
    return GaussianSketch(check_int(m, "m", low=1), rng).apply(aug)


def private_solve_task(release: np.ndarray) -> np.ndarray:
    """One worker: the least-squares solution (d,) of a release ``[S A, S b]`` (m, d + 1).
    The worker sees nothing but the release."""
    d = release.shape[1] - 1
    return SketchedFactor(release[:, :d], rhs=release[:, d]).solve()


@dataclass(frozen=True, repr=False)
class PrivateResult(ResultRepr):
    """Least squares from ``q`` private sketches.

    x: (d,) average of the per-sketch solutions. lam: the implied ridge ``w^2``. epsilon, delta:
    the guarantee for all ``q`` releases together. leakage_nats: the Gaussian-data
    mutual-information bound for the same releases. ridge_x: (d,) the exact ridge solution with
    ``lam`` (what the private estimate concentrates around); relative_bias: ``||ridge_x - x_ls||
    / ||x_ls||``, the price of privacy in the solution. bytes_sent / bytes_received: bytes of
    the releases shipped to the workers and of their solutions (0 on ``local-thread``);
    release_nbytes: the data of one release, ``m (d + 1) 8``; seconds: wall time.
    """

    x: np.ndarray
    lam: float
    epsilon: float
    delta: float
    q: int
    m: int
    leakage_nats: float
    ridge_x: np.ndarray
    relative_bias: float
    bytes_sent: int = 0
    bytes_received: int = 0
    release_nbytes: int = 0
    seconds: float = 0.0

    def summary(self) -> str:
        return (
            f"{self.q} private Gaussian sketches of m={self.m}: ({self.epsilon:.3g}, "
            f"{self.delta:.2g})-DP, ridge lambda = w^2 = {self.lam:.4g}, relative bias of the "
            f"ridge solution {self.relative_bias:.3g}, MI bound {self.leakage_nats:.3g} nats; "
            f"workers received only their releases ({self.bytes_sent} B sent, "
            f"{self.bytes_received} B received)"
        )


def private_lstsq(
    a: Any,
    b: Any,
    *,
    m: int,
    q: int = 1,
    epsilon: float,
    delta: float = 1e-6,
    row_norm: float | None = None,
    executor: Executor | None = None,
    rng: RngLike = None,
) -> PrivateResult:
    """Least squares from ``q`` ``(epsilon, delta)``-DP Gaussian sketches of ``[A b]``.

    ``a`` (n, d), ``b`` (n,). ``row_norm``: the public bound ``B`` on the rows of ``[A b]``
    (default: their largest norm — which is then not private; pass a bound known a priori for
    a real guarantee). Rows above ``B`` raise: clip or rescale them first. ``executor``: where
    the ``q`` workers solve (default: a local thread pool); the master forms each release
    ``S_k [A b; w I]`` (m, d + 1) and ships only that — ``A`` and ``b`` never reach a worker.
    """
    a = check_array(a, "A", ndim=2)
    b = check_array(b, "b", shape=(a.shape[0],))
    n, d = a.shape
    q = check_int(q, "q", low=1)
    m = check_int(m, "m", low=d + 2)
    norms = np.sqrt(np.einsum("ij,ij->i", a, a) + b * b)
    bound = float(norms.max()) if row_norm is None else check_positive_float(row_norm, "row_norm")
    if norms.max() > bound * (1 + 1e-12):
        raise InvalidInputError(
            f"a row of [A b] has norm {norms.max():.4g} > row_norm={bound:.4g}: clip or rescale "
            "the rows (the privacy guarantee assumes the bound)"
        )
    lam = gaussian_sketch_noise(epsilon, delta, q * m, row_norm=bound)
    gen = check_rng(rng)
    t0 = time.perf_counter()
    own = executor is None
    ex = make_executor("local-thread") if own else executor
    try:
        # one release at a time: the master holds at most one m x (d + 1) release
        handles = [
            ex.submit(private_solve_task, private_sketch(a, b, m, np.sqrt(lam), gen))
            for _ in range(q)
        ]
        got = ex.gather(handles)
    finally:
        if own:
            ex.close()
    if len(got.results) < q:
        why = next(iter(got.failures.values()), None)
        detail = f" ({why.error_type}: {why.message})" if why is not None else ""
        raise TaskFailedError(
            f"{q - len(got.results)} of {q} private workers did not return{detail}; every "
            "release is needed for the stated guarantee, rerun"
        )
    x = np.mean([got.results[i] for i in range(q)], axis=0)
    ridge = np.linalg.solve(a.T @ a + lam * np.eye(d), a.T @ b)
    x_ls = np.linalg.lstsq(a, b, rcond=None)[0]
    bias = float(np.linalg.norm(ridge - x_ls) / max(np.linalg.norm(x_ls), 1e-300))
    return PrivateResult(
        x=x, lam=lam, epsilon=float(epsilon), delta=float(delta), q=q, m=m,
        leakage_nats=leakage_bound(n, d, q=q, m=m), ridge_x=ridge, relative_bias=bias,
        bytes_sent=got.total_bytes_sent, bytes_received=got.total_bytes_received,
        release_nbytes=m * (d + 1) * 8, seconds=time.perf_counter() - t0,
    )  # fmt: skip


def leakage_bound(
    n: int,
    d: int,
    *,
    q: int,
    m: int,
    data: Any = None,
    samples: int = 200,
    rng: RngLike = None,
) -> float:
    """Upper bound (nats) on ``I(A; S_1 A, ..., S_q A)`` for ``q`` Gaussian sketches of size m.

    ``data=None``: Gaussian data (closed form, module docstring). ``data`` (N, d): rows of ``A``
    i.i.d. from the empirical distribution of ``data``; ``E[log det G]`` by Monte-Carlo over
    ``samples`` resampled ``n``-row datasets.
    """
    n = check_int(n, "n", low=1)
    d = check_int(d, "d", low=1)
    q = check_int(q, "q", low=1)
    m = check_int(m, "m", low=1)
    if n < d:
        raise InvalidInputError(f"the bound needs n >= d (invertible Gram matrix); n={n}, d={d}")
    if data is None:
        i = np.arange(1, d + 1)
        gap = np.sum(np.log(n / 2.0) - scipy.special.digamma((n - i + 1) / 2.0))
        return float(q * m / 2.0 * gap)
    x = check_array(data, "data", ndim=2)
    if x.shape[1] != d:
        raise InvalidInputError(f"data has {x.shape[1]} columns, expected d={d}")
    gen = check_rng(rng)
    cov = x.T @ x / x.shape[0]
    sign, logdet_mean = np.linalg.slogdet(n * cov)
    if sign <= 0:
        raise InvalidInputError("data's second-moment matrix is singular: the bound is infinite")
    vals = []
    for _ in range(check_int(samples, "samples", low=2)):
        rows = x[gen.integers(0, x.shape[0], size=n)]
        s, ld = np.linalg.slogdet(rows.T @ rows)
        if s <= 0:
            return float("inf")
        vals.append(ld)
    return float(q * m / 2.0 * (logdet_mean - np.mean(vals)))
