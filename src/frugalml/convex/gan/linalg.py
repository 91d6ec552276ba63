"""Linear algebra shared by the convex WGAN generators: sample matrices, thin (or randomized)
SVDs, sign orientation of singular vectors, PSD factors and whitened Gaussian latents.

Reference: A. Sahiner, T. Ergen, B. Ozturkler, B. Bartan, J. Pauly, M. Mardani, M. Pilanci,
"Hidden Convexity of Wasserstein GANs: Interpretable Generative Models with Closed-Form
Solutions", ICLR 2022, arXiv:2107.05680.

Moments are empirical means: ``A_X = X^T X / n`` for ``X`` ``(n, d)``, whose eigenvalues are the
squared singular values of ``X / sqrt(n)``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..._resources import check_memory
from ..._validate import check_array
from ...errors import InvalidInputError

__all__ = [
    "RANK_RTOL",
    "SVD_MODES",
    "as_matrix",
    "check_latent_memory",
    "gaussian_latent",
    "orient_rows",
    "psd_factor",
    "thin_svd",
]

SVD_MODES = ("auto", "exact", "randomized")
#: relative tolerance below which singular values of the latent count as zero
RANK_RTOL = 1e-9


def as_matrix(X: Any, name: str = "X") -> tuple[np.ndarray, tuple[int, ...]]:
    """``(n, d)`` float64 matrix and the per-sample shape of ``X``.

    ``X`` is ``(n, d)``, ``(n, L)`` signals, ``(n, h, w)`` images, a list of equally shaped
    arrays, etc.; images of inconsistent shape and NaN/inf raise ``InvalidInputError``.
    """
    if isinstance(X, list | tuple):
        shapes = {np.shape(x) for x in X}
        if len(shapes) > 1:
            raise InvalidInputError(
                f"{name} holds samples of inconsistent shape {sorted(shapes)}; resize or crop "
                "them to one shape first"
            )
    arr = check_array(X, name, ndim=(2, 3, 4), min_size=2)
    if arr.shape[0] < 2:
        raise InvalidInputError(f"{name} needs at least 2 samples, got {arr.shape[0]}")
    return arr.reshape(arr.shape[0], -1), tuple(arr.shape[1:])


def thin_svd(
    M: np.ndarray, rank: int | None, mode: str, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Thin SVD ``M = U diag(s) Vt`` (descending), at most ``rank`` components if given."""
    full = min(M.shape)
    use_rand = mode == "randomized" or (
        mode == "auto" and rank is not None and M.size > 4_000_000 and rank < full // 4
    )
    if use_rand and rank is not None and rank < full:
        from sklearn.utils.extmath import randomized_svd

        U, s, Vt = randomized_svd(
            M, n_components=rank, n_oversamples=20, n_iter=8,
            random_state=int(rng.integers(2**31 - 1)),
        )  # fmt: skip
        return U, s, Vt
    U, s, Vt = np.linalg.svd(M, full_matrices=False)
    if rank is not None:
        U, s, Vt = U[:, :rank], s[:rank], Vt[:rank]
    return U, s, Vt


def check_latent_memory(n: int, r: int, d: int, what: str = "the latent") -> None:
    """Refuse an ``(n, r)`` latent and ``(r, d)`` generator that would not fit in memory:
    the latent, its whitening (``r x r``), the generated ``(n, d)`` and the working copies."""
    check_memory(
        8 * (4 * n * r + 3 * r * r + 3 * r * d + 3 * n * d),
        f"{what} of {n} x {r} (latent dimension {r}, {d} outputs)",
        fix="lower the latent dimension (latent_dim, --latent-dim), the stage noise "
        "(--stage-noise) or the number of samples",
    )


def gaussian_latent(n: int, r: int, rng: np.random.Generator) -> np.ndarray:
    """``(n, r)`` standard Gaussian latent, then exactly centred and whitened
    (``Z^T 1 = 0``, ``Z^T Z / n = I`` when ``n > r``), so that fresh Gaussian latents reproduce
    the moments fitted on it in expectation."""
    Z = rng.standard_normal((n, r))
    Z -= Z.mean(axis=0)
    if n > r:
        w, V = np.linalg.eigh(Z.T @ Z / n)
        Z = Z @ (V / np.sqrt(w)) @ V.T
    return Z


def orient_rows(Vt: np.ndarray, mean_row: np.ndarray) -> np.ndarray:
    """Signs that make ``mean_row @ v_i >= 0`` for each row ``v_i`` of ``Vt``; where that
    projection is negligible, the largest-magnitude entry of ``v_i`` is made positive."""
    proj = Vt @ mean_row
    scale = np.linalg.norm(mean_row) + 1e-300
    idx = np.argmax(np.abs(Vt), axis=1)
    fallback = np.sign(Vt[np.arange(Vt.shape[0]), idx])
    sign = np.where(np.abs(proj) > 1e-8 * scale, np.sign(proj), fallback)
    return np.where(sign < 0, -1.0, 1.0)


def psd_factor(C: np.ndarray, tol: float = 1e-9) -> np.ndarray:
    """``L`` (rank x d) with ``L^T L = C`` (eigenvalues below ``tol * max`` dropped)."""
    w, V = np.linalg.eigh((C + C.T) / 2)
    order = np.argsort(w)[::-1]
    w, V = w[order], V[:, order]
    keep = w > tol * max(float(w[0]), 1e-300)
    return np.sqrt(w[keep])[:, None] * V[:, keep].T
