"""The closed-form generator of the convex WGAN with a quadratic discriminator (singular-value
thresholding) and the discriminator it recovers.

Reference: A. Sahiner, T. Ergen, B. Ozturkler, B. Bartan, J. Pauly, M. Mardani, M. Pilanci,
"Hidden Convexity of Wasserstein GANs: Interpretable Generative Models with Closed-Form
Solutions", ICLR 2022, arXiv:2107.05680.

With ``X / sqrt(n) = U S V^T``, ``Z / sqrt(m) = P D Q^T`` and the truncation index
``k = #{i: sigma_i^2 > beta}`` the optimal linear generator is
``W* = Q_k D_k^{-1} (S_k^2 - beta I)^{1/2} V_k^T`` with ``||W*||_F^2 = sum_{i<=k}
(sigma_i^2 - beta) / d_i^2``, and the discriminator is ``D(x) = sum_{i<=k} (v_i^T x)^2 / d_i^2``
(derivation: :mod:`frugalml.convex.gan.wgan`). Cost: one SVD of ``X`` and one of ``Z``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ..._results import ResultRepr
from ..._validate import RngLike, check_rng
from ...errors import InvalidInputError
from .linalg import RANK_RTOL, as_matrix, orient_rows, thin_svd

__all__ = [
    "QuadraticDiscriminator",
    "check_beta_range",
    "closed_form_generator",
    "truncation_beta",
]


def truncation_beta(sq_singular: np.ndarray, k: int) -> float:
    """The ``beta`` whose truncation index is ``k``: just above ``sigma_{k+1}^2`` (so the
    ``(k+1)``-th component is dropped with the least shrinkage of the kept ones), or
    ``sigma_k^2 / 2`` when there is no positive ``(k+1)``-th."""
    s2 = np.asarray(sq_singular, dtype=float)
    if not 1 <= k <= s2.size:
        raise InvalidInputError(f"truncation index must lie in [1, {s2.size}], got {k}")
    if k < s2.size and s2[k] > 1e-12 * s2[0] and s2[k] < s2[k - 1]:
        # just above sigma_{k+1}^2 (robust to rounding), never beyond the midpoint to sigma_k^2
        return float(min(s2[k] * (1 + 1e-6), (s2[k] + s2[k - 1]) / 2))
    return float(s2[k - 1] / 2)


def check_beta_range(beta: float, top_sq: float, what: str) -> None:
    if beta >= top_sq:
        raise InvalidInputError(
            f"beta={beta:.6g} is >= the largest {what} {top_sq:.6g}: the optimal generator is "
            f"W = 0 (degenerate, every sample equals the bias); use 0 < beta < {top_sq:.6g}"
        )


@dataclass(frozen=True, repr=False)
class QuadraticDiscriminator(ResultRepr):
    """``D(x) = sum_j weights_j ((x - center)^T U[:, j])^2``; ``U`` is ``(d, k)``."""

    U: np.ndarray
    weights: np.ndarray
    center: np.ndarray

    def summary(self) -> str:
        return f"quadratic discriminator: {self.U.shape[0]} inputs, {self.U.shape[1]} directions"

    def __call__(self, X: Any) -> np.ndarray:
        """Discriminator values for ``X`` of shape ``(n, d)`` (or images); returns ``(n,)``."""
        M, _ = as_matrix(X)
        return ((M - self.center) @ self.U) ** 2 @ self.weights

    @property
    def multiplier(self) -> np.ndarray:
        """The ``(d, d)`` Lagrange multiplier ``U diag(weights) U^T``."""
        return (self.U * self.weights) @ self.U.T


def closed_form_generator(
    X: np.ndarray,
    Z: np.ndarray,
    beta: float,
    *,
    svd: str = "auto",
    rng: RngLike = 0,
    x_ref: np.ndarray | None = None,
    z_ref: np.ndarray | None = None,
) -> dict[str, Any]:
    """The closed-form quadratic-discriminator WGAN generator for ``G = Z W`` (no centring).

    ``X`` ``(n, d)``, ``Z`` ``(m, r)``. Returns a dict with ``W`` ``(r, d)``, ``k``,
    ``sq_singular`` (eigenvalues of ``X^T X / n`` computed), ``V`` ``(d, k)``, ``latent_sv``
    ``d_1..d_k``, ``objective`` ``||W||_F^2``. ``x_ref``/``z_ref``: vectors that fix the signs
    of the singular vectors (default the means of ``X`` and ``Z``). Raises
    ``InvalidInputError`` for beta outside ``(0, sigma_1^2)`` or a latent of rank below the
    truncation index.
    """
    gen = check_rng(rng)
    n, m, r = X.shape[0], Z.shape[0], Z.shape[1]
    _, s, Vt = thin_svd(X / np.sqrt(n), min(r + 1, *X.shape), svd, gen)
    s2 = s**2
    check_beta_range(beta, float(s2[0]), "squared singular value of X/sqrt(n)")
    k = int(np.count_nonzero(s2 > beta))
    _, dz, Qt = np.linalg.svd(Z / np.sqrt(m), full_matrices=False)
    rank_z = int(np.count_nonzero(dz > RANK_RTOL * dz[0])) if dz.size and dz[0] > 0 else 0
    if k > rank_z:
        admissible = float(s2[rank_z]) if rank_z < s2.size else float("nan")
        raise InvalidInputError(
            f"the latent dimension (rank {rank_z} of Z, {r} columns) is smaller than the "
            f"truncation index k={k} (components with sigma^2 > beta={beta:.6g}); raise "
            f"latent_dim to >= {k} or beta to >= {admissible:.6g}"
        )
    x_ref = X.mean(axis=0) if x_ref is None else x_ref
    z_ref = Z.mean(axis=0) if z_ref is None else z_ref
    Vt_k = Vt[:k] * orient_rows(Vt[:k], x_ref)[:, None]
    Qt_k = Qt[:k] * orient_rows(Qt[:k], z_ref)[:, None]
    scale = np.sqrt(s2[:k] - beta) / dz[:k]
    W = (Qt_k.T * scale) @ Vt_k
    return {
        "W": W, "k": k, "sq_singular": s2, "V": Vt_k.T, "latent_sv": dz[:k],
        "objective": float(np.sum((s2[:k] - beta) / dz[:k] ** 2)),
    }  # fmt: skip
