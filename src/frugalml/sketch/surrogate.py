"""Surrogate (determinantal) sketches: exactly unbiased inverse-Hessian estimates.

Derezinski, Bartan, Pilanci & Mahoney, "Debiasing Distributed Second Order Optimization with
Surrogate Sketching and Scaled Regularization" (NeurIPS 2020, arXiv 2007.01327); the
determinantal rescaling of i.i.d. designs follows Derezinski, Liang & Mahoney (2020).

Construction for ``A`` (n, d), ``lam > 0`` and expected sketch size ``m > d_lambda``: with
``gamma = m - d_lambda`` and a row distribution ``p`` (uniform or ridge leverage scores),

1. ``P``: a Poisson(``gamma``) number of rows drawn i.i.d. from ``p``;
2. ``T``: an independent L-ensemble DPP with ``L = A A^T / lam``, expected size ``d_lambda``;
3. ``S`` has one row ``e_i^T / sqrt(m p_i)`` per item of ``P + T``.

``P + T`` is the Poisson process rescaled by ``det(A^T S_g^T S_g A + lam I)`` (Cauchy-Binet), and
for Poisson processes ``E[adj(B + sum_x w_x w_x^T)] = adj(B + E[sum_x w_x w_x^T])``; hence,
with ``lam' = lam (1 - d_lambda/m)`` and ``mu = 1 - d_lambda/m``,
``E[mu (A^T S^T S A + lam' I)^{-1}] = (A^T A + lam I)^{-1}`` **exactly** (checked by
high-count Monte-Carlo and by exact enumeration in the tests). The argument needs ``lam > 0``:
at ``lam = 0`` configurations with a singular ``A^T S^T S A`` count in ``E[adj]`` but carry no
probability, and the estimate is biased (22-47% on small enumerated problems), so ``lam = 0``
is refused — use a Gaussian sketch with the exact ``(m - d - 1)/m`` step there.
``E[S^T S] != I`` here: the determinantal part over-represents influential rows, which is what
cancels the inversion bias.

Samplers: ``exact`` uses a thin SVD of ``A`` (``O(n d^2)``, then ``O(n k^2)`` per DPP sample);
``approx`` (large ``n``) draws ``oversample * d_lambda`` candidate rows by approximate ridge
leverage scores, rescales them so that their Gram matrix estimates ``A^T A``, and runs the
exact DPP on the candidates only (``O(c d^2)`` with ``c`` candidates) — the "oversample, then a
DPP step on the small problem" scheme; it is not exactly unbiased (its bias is measured in
the benchmark).
"""

from __future__ import annotations

import hashlib
from typing import Any, Literal

import numpy as np
import scipy.linalg
import scipy.sparse as sp

from .._validate import RngLike, check_choice, check_nonnegative_float, check_positive_float
from ..errors import InvalidInputError
from .base import Sketch, SketchMatrix
from .dpp import sample_l_ensemble
from .sampling import SamplingMatrix

__all__ = ["SurrogateSketch"]


class SurrogateSketch(Sketch):
    """Determinantal surrogate sketch of expected size ``m`` for regularisation ``lam``.

    The realised number of rows is random (mean ``m``). Use with the corrections of
    :func:`frugalml.sketch.debias.correction` (``lam' = lam (1 - d_lambda/m)``,
    ``mu = 1 - d_lambda/m``).
    """

    name = "surrogate"
    data_dependent = True

    def __init__(
        self,
        m: int,
        rng: RngLike = None,
        *,
        lam: float = 0.0,
        p: Literal["uniform", "leverage"] = "leverage",
        sampler: Literal["exact", "approx"] = "exact",
        oversample: float = 8.0,
    ):
        super().__init__(m, rng)
        self.lam = check_nonnegative_float(lam, "lam")
        if self.lam == 0.0:
            raise InvalidInputError(
                "the surrogate sketch is exactly unbiased only for lam > 0; for unregularised "
                "least squares use a Gaussian sketch (step (m - d - 1)/m)"
            )
        self.p = check_choice(p, "p", ("uniform", "leverage"))
        self.sampler = check_choice(sampler, "sampler", ("exact", "approx"))
        self.oversample = check_positive_float(oversample, "oversample")
        self._cache: tuple[Any, Any] | None = None

    def _spectrum(self, a: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
        # keyed by content (O(n d) to hash, vs O(n d^2) for the SVD): never a stale spectrum
        key = hashlib.blake2b(np.ascontiguousarray(a).tobytes(), digest_size=16).digest()
        key = (a.shape, key)
        if self._cache is not None and self._cache[0] == key:
            return self._cache[1]
        u, s, _ = scipy.linalg.svd(a, full_matrices=False, check_finite=False)
        keep = s > np.finfo(float).eps * max(a.shape) * (s[0] if s.size else 0.0)
        u, s = u[:, keep], s[keep]
        s2 = s * s
        d_lam = float(np.sum(s2 / (s2 + self.lam)))
        out = (u, s2, d_lam)
        self._cache = (key, out)
        return out

    def effective_dimension(self, data: Any) -> float:
        """``d_lambda`` of ``data`` (from the SVD used for sampling)."""
        a = data.toarray() if sp.issparse(data) else np.asarray(data, dtype=float)
        return self._spectrum(a)[2]

    def draw_nbytes(self, n: int, d: int) -> int:
        return 8 * (3 * n * d + 2 * self.m)  # the SVD of the data and the sampled rows

    def _draw(self, n: int, rng: np.random.Generator, data: Any) -> SketchMatrix:
        a = data.toarray() if sp.issparse(data) else data
        if self.sampler == "approx":
            return self._draw_approx(n, rng, a)
        u, s2, d_lam = self._spectrum(a)
        gamma = self._gamma(d_lam)
        if self.p == "uniform":
            p = np.full(n, 1.0 / n)
        else:
            lev = np.maximum(np.einsum("ij,ij->i", u, u * (s2 / (s2 + self.lam))), 0.0)
            p = 0.9 * lev / lev.sum() + 0.1 / n  # every row reachable: p > 0 everywhere
        return self._assemble(n, gamma, p, sample_l_ensemble(u, s2 / self.lam, rng), rng)

    def _gamma(self, d_lam: float) -> float:
        gamma = self.m - d_lam
        if gamma <= 0:
            raise InvalidInputError(
                f"surrogate sketch: m={self.m} must exceed d_lambda={d_lam:.4g}; use a larger m"
            )
        return gamma

    def _assemble(
        self, n: int, gamma: float, p: np.ndarray, items_t: np.ndarray, rng: np.random.Generator
    ) -> SketchMatrix:
        """Rows of the DPP part plus a Poisson(gamma) i.i.d. sample from p, each 1/sqrt(m p_i)."""
        items_p = rng.choice(n, size=rng.poisson(gamma), replace=True, p=p)
        idx = np.concatenate([items_p, items_t]).astype(np.intp)
        return SamplingMatrix(n, idx, 1.0 / np.sqrt(self.m * p[idx]))

    def _draw_approx(self, n: int, rng: np.random.Generator, a: np.ndarray) -> SketchMatrix:
        from .leverage import leverage_scores

        d = a.shape[1]
        aug = np.vstack([a, np.sqrt(self.lam) * np.eye(d)])
        lev = leverage_scores(aug, method="approx", rng=rng)[:n]  # ridge leverage scores
        d_lam_est = float(lev.sum())
        gamma = self._gamma(d_lam_est)
        p = 0.9 * lev / lev.sum() + 0.1 / n
        c = int(np.ceil(self.oversample * max(d_lam_est, 1.0)))
        cand = rng.choice(n, size=c, replace=True, p=p)
        sub = a[cand] / np.sqrt(c * p[cand])[:, None]  # sub^T sub estimates A^T A
        u, s, _ = scipy.linalg.svd(sub, full_matrices=False, check_finite=False)
        keep = s > np.finfo(float).eps * max(sub.shape) * (s[0] if s.size else 0.0)
        items_t = cand[sample_l_ensemble(u[:, keep], s[keep] ** 2 / self.lam, rng)]
        return self._assemble(n, gamma, p, items_t, rng)

    def params(self) -> dict[str, Any]:
        return {**super().params(), "lam": self.lam, "p": self.p, "sampler": self.sampler}
