"""Offline data sets for the convex GAN experiments (all in ``[0, 1]``-ish float64).

* :func:`load_digits_images` — scikit-learn's 8x8 digits (1797 images, labels), scaled to
  ``[0, 1]``; progressive resolutions 2 -> 4 -> 8.
* :func:`load_image_patches` — grayscale patches cut at random from scikit-learn's two sample
  photographs (``china.jpg``, ``flower.jpg``), ``[0, 1]``, no labels; 4 -> 8 -> 16 -> 32.
* :func:`load_mnist1d` — MNIST-1D (Greydanus 2020, length-40 signals, 10 classes) generated
  locally with the ``mnist1d`` package's generator (no download); 5 -> 10 -> 20 -> 40.

Downsampling for the progressive stages is average pooling
(:func:`frugalml.convex.gan.progressive.downsample`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..._deprecation import renamed_parameters
from ..._mnist1d import generate_mnist1d
from ..._optional import require
from ..._resources import check_memory
from ..._results import ResultRepr
from ..._validate import RngLike, check_choice, check_int, check_rng, seed_from_rng
from ...errors import InvalidInputError

__all__ = ["DATASETS", "GanData", "load_dataset", "load_digits_images", "load_image_patches",
           "load_mnist1d"]  # fmt: skip

DATASETS = ("digits", "patches", "mnist1d")


@dataclass(frozen=True, repr=False)
class GanData(ResultRepr):
    """``X`` ``(n, *shape)`` samples, ``y`` ``(n,)`` int labels or ``None``, ``n_stages`` the
    natural number of progressive stages, ``name``."""

    name: str
    X: np.ndarray
    y: np.ndarray | None
    n_stages: int

    def summary(self) -> str:
        labels = "labelled" if self.y is not None else "unlabelled"
        return (
            f"{self.name}: {self.X.shape[0]} {labels} samples of shape {self.X.shape[1:]}, "
            f"{self.n_stages} stages"
        )


def load_digits_images() -> GanData:
    """sklearn digits as ``(1797, 8, 8)`` in ``[0, 1]`` with labels; 3 stages (2, 4, 8)."""
    datasets = require("sklearn.datasets", what="the digits data set", extra="convex")
    d = datasets.load_digits()
    return GanData("digits", d.images.astype(np.float64) / 16.0, d.target.astype(np.int64), 3)


def load_image_patches(n: int = 2000, size: int = 32, *, rng: RngLike = 0) -> GanData:
    """``n`` random ``size x size`` grayscale patches of sklearn's sample images in
    ``[0, 1]`` (no labels); ``log2(size) - 1`` stages (4 -> ... -> size)."""
    n = check_int(n, "n", low=2)
    size = check_int(size, "size", low=4)
    gen = check_rng(rng)
    check_memory(8 * n * size * size, f"{n} patches of {size} x {size}", fix="lower n")
    datasets = require("sklearn.datasets", what="the sample-image patches", extra="convex")
    images = [img.astype(np.float64).mean(axis=2) / 255.0
              for img in datasets.load_sample_images().images]  # fmt: skip
    smallest = min(min(img.shape) for img in images)
    if size > smallest:
        raise InvalidInputError(
            f"patch size {size} exceeds the sample images' smallest side {smallest}"
        )
    out = np.empty((n, size, size))
    which = gen.integers(0, len(images), n)
    for i in range(n):
        img = images[which[i]]
        r = gen.integers(0, img.shape[0] - size + 1)
        c = gen.integers(0, img.shape[1] - size + 1)
        out[i] = img[r : r + size, c : c + size]
    stages = max(1, int(np.log2(size)) - 1)
    return GanData("patches", out, None, stages)


@renamed_parameters(seed="rng")
def load_mnist1d(n: int = 4000, *, rng: int | np.random.Generator = 0) -> GanData:
    """MNIST-1D generated offline: ``(n', 40)`` signals (``n' = 10 (n // 10)``, train and test
    pooled) with labels; 4 stages (5 -> 10 -> 20 -> 40). ``rng``: an int seed (the same seed
    gives the same data) or a Generator (an int seed is drawn from it); ``seed=`` is its
    deprecated spelling. The package's generator reseeds the global NumPy/Python generators:
    their states are restored afterwards. ``O(n)``."""
    seed = seed_from_rng(rng)
    xtr, ytr, xte, yte = generate_mnist1d(n, seed, what="the MNIST-1D data set", extra="convex")
    X = np.concatenate([xtr, xte])
    y = np.concatenate([ytr, yte])
    return GanData("mnist1d", X, y, 4)


def load_dataset(name: str, *, quick: bool = False, rng: RngLike = 0) -> GanData:
    """One of :data:`DATASETS` (``quick`` uses fewer patches / MNIST-1D samples)."""
    name = check_choice(name, "dataset", DATASETS)
    if name == "digits":
        return load_digits_images()
    if name == "patches":
        return load_image_patches(n=1000 if quick else 3000, size=16 if quick else 32, rng=rng)
    return load_mnist1d(n=2000 if quick else 4000)
