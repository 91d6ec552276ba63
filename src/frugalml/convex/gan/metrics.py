"""Sample-quality metrics without pretrained networks, and sample grids.

Used to evaluate the convex WGANs of A. Sahiner et al., arXiv:2107.05680.

* :func:`frechet_distance` — ``||mu_1 - mu_2||^2 + tr(C_1 + C_2 - 2 (C_1^{1/2} C_2
  C_1^{1/2})^{1/2})`` between Gaussian fits of two feature sets (the FID formula),
  ``O(n f^2 + f^3)``.
* :class:`FeatureMap` — the features: the penultimate layer of a small MLP classifier trained
  in-house on the real data when labels exist (digits, MNIST-1D), else the top principal
  components of the real data (image patches have no labels) — :func:`fit_feature_map`.
* :func:`sliced_wasserstein` — ``(E_theta W_p^p(theta^T P, theta^T Q))^{1/p}`` over random unit
  directions (1-D ``W_p`` by sorting / quantile matching), ``O(L (n log n + n d))``.
* :func:`mmd` — squared maximum mean discrepancy with an RBF kernel, median-heuristic
  bandwidth (biased V-statistic, ``>= 0``; or the unbiased U-statistic), ``O(n^2 d)``.
* :func:`save_sample_grid` — a PNG grid of images (or line plots of 1-D signals), atomic.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..._io import atomic_write_bytes, check_output_path
from ..._optional import require
from ..._plot import pyplot
from ..._resources import check_memory
from ..._results import ResultRepr
from ..._validate import RngLike, check_array, check_int, check_positive_float, check_rng
from ...errors import InvalidInputError
from .._torch import torch_device

__all__ = [
    "FeatureMap",
    "fit_feature_map",
    "frechet_distance",
    "gaussian_frechet",
    "mmd",
    "save_sample_grid",
    "sliced_wasserstein",
]


def _flat(X: Any, name: str) -> np.ndarray:
    arr = check_array(X, name, ndim=(1, 2, 3, 4))
    if arr.ndim == 1:
        arr = arr[:, None]
    return arr.reshape(arr.shape[0], -1)


def _pair(P: Any, Q: Any) -> tuple[np.ndarray, np.ndarray]:
    A, B = _flat(P, "P"), _flat(Q, "Q")
    if A.shape[1] != B.shape[1]:
        raise InvalidInputError(
            f"P and Q must have the same sample shape; got {A.shape[1]} and {B.shape[1]} features"
        )
    return A, B


def _sqrt_psd(C: np.ndarray) -> np.ndarray:
    w, V = np.linalg.eigh((C + C.T) / 2)
    return (V * np.sqrt(np.clip(w, 0, None))) @ V.T


def gaussian_frechet(mu1, C1, mu2, C2) -> float:
    """Frechet (2-Wasserstein) distance squared between ``N(mu1, C1)`` and ``N(mu2, C2)``."""
    S = _sqrt_psd(np.asarray(C1, dtype=float))
    inner = np.linalg.eigvalsh(S @ np.asarray(C2, dtype=float) @ S)
    cross = float(np.sum(np.sqrt(np.clip(inner, 0, None))))
    diff = np.asarray(mu1, dtype=float) - np.asarray(mu2, dtype=float)
    return float(diff @ diff + np.trace(C1) + np.trace(C2) - 2 * cross)


def frechet_distance(P: Any, Q: Any, features: FeatureMap | None = None) -> float:
    """Frechet distance (squared, as FID) between the Gaussian fits of ``features(P)`` and
    ``features(Q)`` (raw samples when ``features`` is None). ``P`` ``(n, ...)``, ``Q``
    ``(m, ...)``."""
    A, B = _pair(P, Q)
    if features is not None:
        A, B = features(A), features(B)
    if min(A.shape[0], B.shape[0]) < 2:
        raise InvalidInputError("frechet_distance needs at least 2 samples per set")
    return gaussian_frechet(A.mean(0), np.cov(A, rowvar=False).reshape(A.shape[1], -1),
                            B.mean(0), np.cov(B, rowvar=False).reshape(B.shape[1], -1))  # fmt: skip


def sliced_wasserstein(
    P: Any, Q: Any, *, n_projections: int = 256, p: int = 2, rng: RngLike = 0
) -> float:
    """Sliced ``p``-Wasserstein distance between the empirical measures of ``P`` and ``Q``
    (``n_projections`` random unit directions, the same for both; unequal sizes via quantile
    functions on a common grid). Symmetric, zero for identical sets."""
    A, B = _pair(P, Q)
    L = check_int(n_projections, "n_projections", low=1)
    p = check_int(p, "p", low=1)
    check_memory(
        8 * (3 * max(A.shape[0], B.shape[0]) * L * 2 + A.shape[1] * L),
        f"{L} projections of {A.shape[0]} + {B.shape[0]} samples",
        fix="lower n_projections or the number of samples",
    )
    theta = check_rng(rng).standard_normal((A.shape[1], L))
    theta /= np.linalg.norm(theta, axis=0)
    pa, pb = np.sort(A @ theta, axis=0), np.sort(B @ theta, axis=0)
    if pa.shape[0] != pb.shape[0]:
        q = max(pa.shape[0], pb.shape[0])
        grid = (np.arange(q) + 0.5) / q
        pa = np.quantile(pa, grid, axis=0, method="inverted_cdf")
        pb = np.quantile(pb, grid, axis=0, method="inverted_cdf")
    return float(np.mean(np.abs(pa - pb) ** p) ** (1.0 / p))


def _sqdist(A: np.ndarray, B: np.ndarray) -> np.ndarray:
    d = np.sum(A**2, 1)[:, None] + np.sum(B**2, 1)[None, :] - 2 * A @ B.T
    return np.maximum(d, 0.0)


def mmd(P: Any, Q: Any, *, bandwidth: float | None = None, unbiased: bool = False) -> float:
    """Squared MMD with ``k(x, y) = exp(-||x - y||^2 / (2 h^2))``; ``h`` defaults to the median
    pairwise distance of the pooled samples (median heuristic)."""
    A, B = _pair(P, Q)
    total = A.shape[0] + B.shape[0]
    check_memory(
        8 * 3 * total * total,
        f"the {total} x {total} kernel matrices of the MMD",
        fix="compare fewer samples (e.g. a random subset of a few thousand)",
    )
    Daa, Dbb, Dab = _sqdist(A, A), _sqdist(B, B), _sqdist(A, B)
    if bandwidth is None:
        pooled = np.concatenate([Daa[np.triu_indices_from(Daa, 1)],
                                 Dbb[np.triu_indices_from(Dbb, 1)], Dab.ravel()])  # fmt: skip
        med = float(np.median(np.sqrt(pooled))) if pooled.size else 1.0
        h = med if med > 0 else 1.0
    else:
        h = check_positive_float(bandwidth, "bandwidth")
    Kaa, Kbb, Kab = (np.exp(-D / (2 * h * h)) for D in (Daa, Dbb, Dab))
    n, m = A.shape[0], B.shape[0]
    if unbiased:
        if min(n, m) < 2:
            raise InvalidInputError("the unbiased MMD needs at least 2 samples per set")
        return float((Kaa.sum() - np.trace(Kaa)) / (n * (n - 1))
                     + (Kbb.sum() - np.trace(Kbb)) / (m * (m - 1)) - 2 * Kab.mean())  # fmt: skip
    return float(max(Kaa.mean() + Kbb.mean() - 2 * Kab.mean(), 0.0))


@dataclass(frozen=True, repr=False)
class FeatureMap(ResultRepr):
    """Features for the Frechet distance. ``kind`` is ``"classifier"`` (penultimate layer of
    an MLP trained on the real labels; ``accuracy`` its held-out accuracy) or ``"pca"``."""

    kind: str
    mean: np.ndarray
    layers: tuple[tuple[np.ndarray, np.ndarray], ...]
    accuracy: float | None = None

    def summary(self) -> str:
        dim = self.layers[-1][0].shape[1] if self.layers else self.mean.shape[0]
        acc = "" if self.accuracy is None else f", held-out accuracy {self.accuracy:.3g}"
        return f"{self.kind} features ({dim} dimensions{acc})"

    def __call__(self, X: Any) -> np.ndarray:
        H = _flat(X, "X") - self.mean
        for W, b in self.layers:
            H = H @ W + b
            if self.kind == "classifier":
                H = np.maximum(H, 0.0)
        return H


def fit_feature_map(
    X: Any,
    y: Any = None,
    *,
    n_features: int = 32,
    epochs: int = 60,
    rng: RngLike = 0,
    device: Any = "cpu",
) -> FeatureMap:
    """Train the feature map on real data ``X`` ``(n, ...)``: with labels ``y`` an MLP
    ``d -> 128 -> n_features -> classes`` (Adam, minibatches of 128, 20 % held out for the
    reported accuracy; torch), features = ReLU of the
    ``n_features`` layer; without labels the top ``n_features`` principal components.
    ``device``: torch device of the MLP's training (``"cpu"`` default, ``"cuda"``; the
    initialisation and the minibatch order do not depend on it)."""
    A = _flat(X, "X")
    n_features = check_int(n_features, "n_features", low=1)
    gen = check_rng(rng)
    mean = A.mean(axis=0)
    if y is None:
        _, _, Vt = np.linalg.svd(A - mean, full_matrices=False)
        k = min(n_features, Vt.shape[0])
        return FeatureMap("pca", mean, ((Vt[:k].T.copy(), np.zeros(k)),))
    labels = check_array(y, "y", ndim=1, dtype=np.int64, shape=(A.shape[0],))
    torch = require("torch", what="the classifier feature map", extra="torch")
    dev = torch_device(torch, device)
    torch.manual_seed(int(gen.integers(2**31 - 1)))
    classes = int(labels.max()) + 1
    perm = gen.permutation(A.shape[0])
    cut = int(0.8 * A.shape[0])
    tr, te = perm[:cut], perm[cut:]
    Xt = torch.tensor(A - mean, dtype=torch.float32, device=dev)
    yt = torch.tensor(labels, device=dev)
    net = torch.nn.Sequential(
        torch.nn.Linear(A.shape[1], 128), torch.nn.ReLU(),
        torch.nn.Linear(128, n_features), torch.nn.ReLU(),
        torch.nn.Linear(n_features, classes),
    ).to(dev)  # fmt: skip
    opt = torch.optim.Adam(net.parameters(), lr=2e-3, weight_decay=1e-4)
    for _ in range(check_int(epochs, "epochs", low=1)):
        order = tr[gen.permutation(tr.size)]
        for start in range(0, order.size, 128):
            idx = torch.as_tensor(order[start : start + 128], device=dev)
            opt.zero_grad()
            loss = torch.nn.functional.cross_entropy(net(Xt[idx]), yt[idx])
            loss.backward()
            opt.step()
    with torch.no_grad():
        acc = float((net(Xt[te]).argmax(1) == yt[te]).float().mean()) if te.size else None
    layers = tuple(
        (net[i].weight.detach().cpu().numpy().T.astype(np.float64).copy(),
         net[i].bias.detach().cpu().numpy().astype(np.float64).copy())
        for i in (0, 2)
    )  # fmt: skip
    return FeatureMap("classifier", mean, layers, acc)


#: pixels per grid cell (1.2 inches at 100 dpi) and matplotlib's limit per image side
GRID_CELL_PIXELS = 120
MAX_GRID_PIXELS = 1 << 16


def save_sample_grid(
    samples: Any, path: str | Path, *, ncols: int = 8, title: str | None = None
) -> Path:
    """Write a grid of ``(n, h, w)`` images (gray) or ``(n, L)`` signals (line plots) as PNG,
    atomically. Returns the path."""
    S = check_array(samples, "samples", ndim=(2, 3))
    ncols = check_int(ncols, "ncols", low=1)
    path = check_output_path(path, "path")
    n = S.shape[0]
    cols = min(ncols, n)
    rows = -(-n // cols)
    if max(rows, cols) * GRID_CELL_PIXELS > MAX_GRID_PIXELS:
        raise InvalidInputError(
            f"a grid of {rows} x {cols} samples is too large for a PNG (at most "
            f"{MAX_GRID_PIXELS // GRID_CELL_PIXELS} per side); draw fewer samples (--samples), use "
            "more columns (--ncols), or write the array (.npy)"
        )
    plt = pyplot()
    fig, axes = plt.subplots(rows, cols, figsize=(1.2 * cols, 1.2 * rows), squeeze=False)
    for i, ax in enumerate(axes.ravel()):
        ax.set_axis_off()
        if i >= n:
            continue
        if S.ndim == 3:
            ax.imshow(S[i], cmap="gray", vmin=float(np.min(S)), vmax=float(np.max(S)))
        else:
            ax.plot(S[i], lw=0.8)
    if title:
        fig.suptitle(title)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100, bbox_inches="tight")
    plt.close(fig)
    return atomic_write_bytes(path, buf.getvalue())
