"""Convex WGAN (Sahiner et al., arXiv:2107.05680): the closed-form generator against the CVXPY
SDP, the recovered discriminator against the SDP's dual, the linear and polynomial programs
against their closed forms, the ReLU game against a CVXPY solve, and the bad-input errors."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("cvxpy")

from frugalml.convex.gan import (
    ConvexWGAN,
    closed_form_generator,
    moment_sdp,
    quadratic_sdp,
    relu_game_cvxpy,
    relu_wgan,
    truncation_beta,
)
from frugalml.convex.gan.wgan import _poly_constraint
from frugalml.errors import InvalidInputError


def data(seed=0, n=50, d=5, shift=1.0):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, d)) @ rng.standard_normal((d, d)) + shift


def whitened_latent(m, r, seed=1):
    """``Z`` with ``Z^T Z / m = I`` exactly (all latent singular values 1)."""
    q, _ = np.linalg.qr(np.random.default_rng(seed).standard_normal((m, r)))
    return q * np.sqrt(m)


def rel(a, b):
    return abs(a - b) / max(abs(b), 1e-300)


@pytest.mark.parametrize("beta", [0.3, 1.0, 4.0])
def test_closed_form_equals_sdp(beta):
    X = data()
    Z = whitened_latent(50, 5)
    g = ConvexWGAN("quadratic", beta=beta, bias=False).fit(X, Z)
    sol = quadratic_sdp(X, beta)
    # with Z^T Z / m = I, ||W||_F^2 = tr(H): the closed form's objective equals the SDP optimum
    assert rel(g.objective_, sol.objective) < 1e-6
    # independent closed form of the optimum: sum_i (sigma_i^2 - beta)_+
    s2 = np.linalg.eigvalsh(X.T @ X / X.shape[0])
    assert rel(sol.objective, float(np.sum(np.maximum(s2 - beta, 0)))) < 1e-6
    # the constraint is active at both optima
    A = X.T @ X / X.shape[0]
    assert rel(g.constraint_, beta) < 1e-9
    assert rel(float(np.linalg.norm(A - sol.H, 2)), beta) < 1e-6
    assert np.allclose(g.second_moment_, sol.H, atol=1e-6 * np.abs(A).max())
    # the recovered discriminator is the SDP's dual variable of A - H <= beta I
    assert np.allclose(g.discriminator_.multiplier, sol.multiplier, atol=1e-5)


def test_closed_form_general_latent_is_optimal():
    """Non-whitened Z: the closed form beats every feasible generator we can build, the CVXPY
    path (SDP + minimum-norm realisation) returns the same W, and ||W||^2 matches the formula."""
    X = data(2, n=60, d=4)
    rng = np.random.default_rng(3)
    Z = rng.standard_normal((60, 4)) * np.array([3.0, 1.0, 0.5, 2.0])
    beta = 0.5
    g = ConvexWGAN("quadratic", beta=beta, bias=False).fit(X, Z)
    g2 = ConvexWGAN("quadratic", beta=beta, bias=False, solver="cvxpy").fit(X, Z)
    assert np.allclose(g.W_, g2.W_, atol=1e-6)
    assert rel(g.objective_, float(np.sum(g.W_**2))) < 1e-12
    A = X.T @ X / 60
    M = Z.T @ Z / 60
    for _ in range(200):  # random directions scaled onto the feasible set
        W = rng.standard_normal((4, 4))
        H = W.T @ M @ W
        # smallest t with t^2 H >= A - beta I (generalized eigenvalue problem)
        L = np.linalg.cholesky(H)
        Li = np.linalg.inv(L)
        t2 = max(float(np.linalg.eigvalsh(Li @ (A - beta * np.eye(4)) @ Li.T).max()), 0.0)
        if np.linalg.norm(A - t2 * H, 2) <= beta * (1 + 1e-9):
            assert t2 * np.sum(W**2) >= g.objective_ * (1 - 1e-9)


def test_bias_matches_mean_and_centred_moment():
    X = data(4, n=80, d=6, shift=3.0)
    g = ConvexWGAN("quadratic", beta=0.2).fit(X, rng=0)
    assert np.allclose(g.mean_, X.mean(0), atol=1e-10)
    C = np.cov(X, rowvar=False, bias=True)
    assert rel(float(np.linalg.norm(C - g.second_moment_, 2)), 0.2) < 1e-9
    S = g.sample(20000, rng=1)
    assert S.shape == (20000, 6)
    assert np.allclose(S.mean(0), X.mean(0), atol=0.1 * np.sqrt(np.diag(C)).max())


def test_randomized_svd_agrees_with_exact():
    rng = np.random.default_rng(5)
    X = rng.standard_normal((400, 60)) @ np.diag(3.0 * 0.8 ** np.arange(60))
    Z = whitened_latent(400, 10)
    beta = truncation_beta(np.linalg.svd(X / 20, compute_uv=False) ** 2, 6)
    ex = closed_form_generator(X, Z, beta, svd="exact")
    rs = closed_form_generator(X, Z, beta, svd="randomized", rng=0)
    assert ex["k"] == rs["k"] == 6
    assert rel(rs["objective"], ex["objective"]) < 1e-6
    assert np.allclose(rs["W"].T @ rs["W"], ex["W"].T @ ex["W"], atol=1e-6)


def test_linear_discriminator_matches_means():
    X = data(6, shift=2.0)
    beta = 0.3
    g = ConvexWGAN("linear", beta=beta).fit(X, rng=0)
    mu = X.mean(0)
    # mean matching: generated mean on the segment to the data mean, at distance beta
    assert rel(g.constraint_, beta) < 1e-9
    assert np.allclose(g.mean_, mu * (1 - beta / np.linalg.norm(mu)), atol=1e-10)
    g2 = ConvexWGAN("linear", beta=beta, solver="cvxpy").fit(X, rng=0)
    assert np.allclose(g2.mean_, g.mean_, atol=1e-6)
    small = ConvexWGAN("linear", beta=1e-6).fit(X, rng=0)
    assert np.allclose(small.mean_, mu, atol=1e-5)


@pytest.mark.parametrize("act", [(1.0, 0.0, 0.0), (0.0, 1.0, 0.0)])
def test_polynomial_reduces_to_closed_forms(act):
    X = data(7)
    beta = 0.4
    sol = moment_sdp(X, beta, "polynomial", activation=act)
    if act[1] == 0.0:  # pure quadratic: sum (sigma^2 - beta)_+
        s2 = np.linalg.eigvalsh(X.T @ X / X.shape[0])
        want = float(np.sum(np.maximum(s2 - beta, 0)))
    else:  # pure linear: (||mu|| - beta)^2 with H = mu mu^T
        want = (np.linalg.norm(X.mean(0)) - beta) ** 2
    assert rel(sol.objective, want) < 1e-6


def test_polynomial_constraint_active_and_realised():
    X = data(8)
    beta = 0.5
    g = ConvexWGAN("polynomial", beta=beta, activation=(0.5, 2.0, 1.0)).fit(X, rng=0)
    assert rel(g.constraint_, beta) < 1e-5
    sol = moment_sdp(X, beta, "polynomial", activation=(0.5, 2.0, 1.0))
    assert np.allclose(g.mean_, sol.mu, atol=1e-7)
    assert np.allclose(g.second_moment_, sol.H, atol=1e-6)


def test_trust_region_value_against_brute_force():
    rng = np.random.default_rng(9)
    for _ in range(5):
        Q = rng.standard_normal((3, 3))
        Q = Q + Q.T
        q = rng.standard_normal(3)
        u = rng.standard_normal((200000, 3))
        u /= np.linalg.norm(u, axis=1, keepdims=True)
        vals = np.einsum("ij,jk,ik->i", u, Q, u) + u @ q
        brute = np.abs(vals).max()
        got = _poly_constraint(Q, q)
        assert got >= brute - 1e-9 and got <= brute + 2e-2


def test_relu_game_matches_cvxpy_and_certificate():
    rng = np.random.default_rng(10)
    X = rng.standard_normal((50, 3)) + np.array([2.0, 0.0, 1.0])
    Z = rng.standard_normal((50, 3))
    r = relu_wgan(X, Z, beta=0.1, n_arrangements=5, rho=20, max_iter=20000, tol=1e-8,
                  outer_iter=3, rng=1)  # fmt: skip
    value, W = relu_game_cvxpy(X, Z, r.gates, r.pattern, beta=0.1, rho=20)
    assert np.allclose(W, r.W, atol=1e-3)
    assert r.dual - 1e-6 <= value <= r.primal + 1e-6
    assert r.gap <= 1e-6 * max(1.0, abs(r.primal)) + 1e-9
    assert rel(r.primal, value) < 1e-6
    assert r.sample(7, rng=0).shape == (7, 3)
    assert r.discriminator(X).shape == (50,)


def test_relu_consistent_pattern_reached():
    rng = np.random.default_rng(11)
    X = rng.standard_normal((60, 3)) + np.array([2.0, 0.0, 1.0])
    r = relu_wgan(X, beta=0.1, n_arrangements=6, rho=20, max_iter=5000, tol=1e-6,
                  outer_iter=40, rng=1)  # fmt: skip
    assert r.pattern_changes == 0


def test_bad_inputs():
    X = data()
    s1 = float(np.linalg.svd(X / np.sqrt(50), compute_uv=False)[0] ** 2)
    with pytest.raises(InvalidInputError, match="beta must be > 0"):
        ConvexWGAN("quadratic", beta=0.0).fit(X)  # stored as given, validated by fit
    with pytest.raises(InvalidInputError, match="degenerate"):
        ConvexWGAN("quadratic", beta=s1 * 1.01, bias=False).fit(X, rng=0)
    with pytest.raises(InvalidInputError, match=r"latent dimension .* smaller than the trunc"):
        ConvexWGAN("quadratic", beta=1e-3, latent_dim=2).fit(X, rng=0)
    with pytest.raises(InvalidInputError, match="inconsistent shape"):
        ConvexWGAN().fit([np.zeros((4, 4)), np.zeros((4, 5))])
    with pytest.raises(InvalidInputError, match="NaN or inf"):
        ConvexWGAN().fit(np.full((5, 3), np.nan))
    with pytest.raises(InvalidInputError, match="degenerate"):
        ConvexWGAN("linear", beta=1e3).fit(X)
    with pytest.raises(InvalidInputError, match="discriminator must be one of"):
        ConvexWGAN("relu").fit(X)
    with pytest.raises(InvalidInputError, match="no closed form"):
        ConvexWGAN("polynomial", solver="closed-form").fit(X)
    with pytest.raises(InvalidInputError, match="activation must be"):
        ConvexWGAN("polynomial", activation=(1.0, 2.0)).fit(X)
    with pytest.raises(InvalidInputError, match="truncation applies"):
        ConvexWGAN("linear", truncation=2).fit(X)
    with pytest.raises(InvalidInputError, match="not fitted"):
        ConvexWGAN().sample(3)
    with pytest.raises(InvalidInputError, match="degenerate"):
        relu_wgan(X, beta=1e6)


def test_scikit_learn_estimator_api():
    """ConvexWGAN is a scikit-learn BaseEstimator: parameters stored as given, clone, repr,
    set_params; the fitted attributes end with an underscore."""
    from sklearn.base import BaseEstimator, clone

    g = ConvexWGAN("linear", beta=0.3, latent_dim=3)
    assert isinstance(g, BaseEstimator)
    assert g.get_params()["latent_dim"] == 3 and g.get_params()["activation"] == (1.0, 1.0, 0.0)
    assert repr(g) == "ConvexWGAN(beta=0.3, discriminator='linear', latent_dim=3)"
    X = data(12, shift=2.0)
    fitted = g.fit(X, rng=0)
    c = clone(fitted)
    assert c.get_params() == g.get_params() and not hasattr(c, "W_")
    assert np.array_equal(c.fit(X, rng=0).W_, fitted.W_)
    assert g.set_params(beta=0.2) is g and g.beta == 0.2
    assert fitted.sample(3, rng=0).shape == (3, 5)  # uses the fitted state, not the parameters


def test_fit_reports_progress():
    calls = []
    ConvexWGAN("quadratic", beta=0.3).fit(data(), rng=0, progress=lambda m, f: calls.append((m, f)))
    assert calls == [("closed form", 0.0), ("done", 1.0)]
