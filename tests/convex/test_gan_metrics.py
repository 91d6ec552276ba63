"""Metrics for the convex GAN experiments against closed forms: Frechet distance of Gaussians,
MMD of Gaussians with a fixed bandwidth and of identical sets, sliced Wasserstein symmetry,
zero on identical sets and its Gaussian value; sample grid PNG."""

from __future__ import annotations

import numpy as np
import pytest

from frugalml.convex.gan.metrics import (
    fit_feature_map,
    frechet_distance,
    gaussian_frechet,
    mmd,
    save_sample_grid,
    sliced_wasserstein,
)
from frugalml.errors import InvalidInputError


def test_gaussian_frechet_closed_forms():
    # commuting (diagonal) covariances: ||mu1 - mu2||^2 + sum (sqrt a - sqrt b)^2
    a, b = np.array([1.0, 4.0, 9.0]), np.array([4.0, 1.0, 0.25])
    m1, m2 = np.array([0.0, 1.0, 2.0]), np.array([1.0, 1.0, 0.0])
    want = 5.0 + np.sum((np.sqrt(a) - np.sqrt(b)) ** 2)
    assert abs(gaussian_frechet(m1, np.diag(a), m2, np.diag(b)) - want) < 1e-12
    # non-commuting: invariant to a common rotation, symmetric, zero on itself
    rng = np.random.default_rng(0)
    A = rng.standard_normal((4, 4))
    B = rng.standard_normal((4, 4))
    C1, C2 = A @ A.T, B @ B.T
    Q, _ = np.linalg.qr(rng.standard_normal((4, 4)))
    f = gaussian_frechet(np.zeros(4), C1, np.ones(4), C2)
    assert abs(f - gaussian_frechet(np.ones(4), C2, np.zeros(4), C1)) < 1e-9
    assert abs(f - gaussian_frechet(np.zeros(4), Q @ C1 @ Q.T, Q @ np.ones(4), Q @ C2 @ Q.T)) < 1e-9
    assert abs(gaussian_frechet(np.zeros(4), C1, np.zeros(4), C1)) < 1e-9


def test_frechet_distance_samples():
    rng = np.random.default_rng(1)
    P = rng.standard_normal((200000, 2))
    Q = 2.0 * rng.standard_normal((200000, 2)) + np.array([1.0, 0.0])
    # 1 + 2 (2 - 1)^2 = 3, Monte-Carlo error well below 0.05 at this size
    assert abs(frechet_distance(P, Q) - 3.0) < 0.05


def test_mmd_identical_zero_and_gaussian_closed_form():
    rng = np.random.default_rng(2)
    P = rng.standard_normal((300, 3))
    assert mmd(P, P) == pytest.approx(0.0, abs=1e-12)
    d, h, s = 2, 1.5, 1.0
    mu = np.array([1.0, 0.5])
    X = s * rng.standard_normal((3000, d))
    Y = s * rng.standard_normal((3000, d)) + mu
    c = h * h / (h * h + 2 * s * s)
    want = 2 * c ** (d / 2) * (1 - np.exp(-(mu @ mu) / (2 * (h * h + 2 * s * s))))
    got = mmd(X, Y, bandwidth=h, unbiased=True)
    assert abs(got - want) < 0.01
    # brute force of the biased statistic on a small set
    A, B = X[:20], Y[:15]
    k = lambda x, y: np.exp(-np.sum((x - y) ** 2) / (2 * h * h))  # noqa: E731
    brute = (np.mean([[k(x, y) for y in A] for x in A]) + np.mean([[k(x, y) for y in B] for x in B])
             - 2 * np.mean([[k(x, y) for y in B] for x in A]))  # fmt: skip
    assert abs(mmd(A, B, bandwidth=h) - brute) < 1e-12


def test_sliced_wasserstein_properties_and_gaussian_value():
    rng = np.random.default_rng(3)
    P = rng.standard_normal((500, 4))
    Q = rng.standard_normal((400, 4)) + 0.5
    assert sliced_wasserstein(P, P) == 0.0
    assert sliced_wasserstein(P, Q, rng=1) == pytest.approx(sliced_wasserstein(Q, P, rng=1))
    # N(0, I) vs N(m, I): SW2^2 = E_theta (theta^T m)^2 = ||m||^2 / d
    m = np.array([2.0, 0.0, 0.0, 0.0])
    X = rng.standard_normal((5000, 4))
    Y = rng.standard_normal((5000, 4)) + m
    sw = sliced_wasserstein(X, Y, n_projections=1000, rng=2)
    assert abs(sw**2 - 1.0) < 0.12  # ~3 Monte-Carlo standard deviations


def test_feature_maps():
    rng = np.random.default_rng(4)
    X = rng.standard_normal((300, 5)) @ np.diag([5, 3, 1, 0.1, 0.1])
    fm = fit_feature_map(X, n_features=2)
    assert fm.kind == "pca" and fm(X).shape == (300, 2)
    assert np.allclose(np.cov(fm(X), rowvar=False)[0, 1], 0, atol=1e-8)
    pytest.importorskip("torch")
    y = (X[:, 0] > 0).astype(int)
    fc = fit_feature_map(X, y, n_features=8, epochs=20)
    assert fc.kind == "classifier" and fc(X).shape == (300, 8) and fc.accuracy > 0.9


def test_grid_png_and_errors(tmp_path):
    p = save_sample_grid(np.random.default_rng(0).random((10, 8, 8)), tmp_path / "g.png")
    assert p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    p = save_sample_grid(np.random.default_rng(0).random((5, 40)), tmp_path / "s.png")
    assert p.exists()
    with pytest.raises(InvalidInputError, match="same sample shape"):
        mmd(np.zeros((3, 2)), np.zeros((3, 3)))
    with pytest.raises(InvalidInputError, match="NaN or inf"):
        sliced_wasserstein(np.full((3, 2), np.nan), np.zeros((3, 2)))
