"""Resolution changes of the progressive convex GAN: average pooling and nearest-neighbour
upsampling of ``(n, L)`` signals and ``(n, h, w)`` images.

Reference: A. Sahiner et al., "Hidden Convexity of Wasserstein GANs: Interpretable Generative
Models with Closed-Form Solutions", ICLR 2022, arXiv:2107.05680 (Figure 2, ProCoGAN: stages from
low to high resolution). Each is ``O(size of X)``.
"""

from __future__ import annotations

import numpy as np

__all__ = ["downsample", "upsample"]


def downsample(X: np.ndarray, factor: int) -> np.ndarray:
    """Average-pool ``(n, L)`` or ``(n, h, w)`` by ``factor`` per spatial axis."""
    if factor == 1:
        return X
    if X.ndim == 2:
        n, L = X.shape
        return X.reshape(n, L // factor, factor).mean(axis=2)
    n, h, w = X.shape
    return X.reshape(n, h // factor, factor, w // factor, factor).mean(axis=(2, 4))


def upsample(X: np.ndarray) -> np.ndarray:
    """Nearest-neighbour 2x upsampling of ``(n, L)`` or ``(n, h, w)``."""
    if X.ndim == 2:
        return np.repeat(X, 2, axis=1)
    return np.repeat(np.repeat(X, 2, axis=1), 2, axis=2)
