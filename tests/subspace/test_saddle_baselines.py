"""Baselines against theory: extragradient and optimistic GDA converge on bilinear games, GDA
diverges at every step size, exact proximal point contracts each singular direction by
1/sqrt(1 + eta^2 s^2), ADMM reaches the KKT solution; uniform gradient counting; bad input."""

from __future__ import annotations

import numpy as np
import pytest

from frugalml.errors import InvalidInputError
from frugalml.subspace import (
    NonFiniteError,
    SaddleProblem,
    admm_equality_ls,
    bilinear_game,
    constrained_least_squares,
    extragradient,
    gda,
    optimistic_gda,
    proximal_point,
    quadratic_game,
)


@pytest.fixture
def game():
    return bilinear_game(10, 3.0, rng=1)


def direct_saddle(p):
    A, b, c = p.data["A"], p.data["b"], p.data["c"]
    return np.linalg.solve(A.T, -c), np.linalg.solve(A, -b)


@pytest.mark.parametrize("method", [extragradient, optimistic_gda])
def test_extragradient_and_ogda_converge_on_bilinear(game, method):
    xs, ys = direct_saddle(game)
    z = np.zeros(10)
    res = method(game, z, z, tol=1e-9, max_iter=100_000)
    assert res.converged and not res.diverged
    assert np.allclose(res.x, xs, atol=1e-8) and np.allclose(res.y, ys, atol=1e-8)


@pytest.mark.parametrize("lr_factor", [0.01, 0.1, 0.5])
def test_gda_diverges_on_bilinear_for_every_step(game, lr_factor):
    # GDA on a bilinear game multiplies each singular component by |1 + i lr s| > 1
    z = np.zeros(10)
    res = gda(game, z, z, lr=lr_factor / game.lipschitz, max_iter=400)
    d = res.history["distance"]
    A = game.data["A"]
    s = np.linalg.svd(A, compute_uv=False)
    lr = lr_factor / game.lipschitz
    assert d[-1] > d[0]
    # growth per step is at least the smallest modulus sqrt(1 + lr^2 s_min^2)
    assert d[-1] >= d[0] * np.sqrt(1 + (lr * s.min()) ** 2) ** 400 * 0.999


def test_gda_converges_on_strongly_monotone_quadratic():
    p = quadratic_game(10, mu=0.5, L=1.0, coupling=0.5, rng=0)
    res = gda(p, np.zeros(10), np.zeros(10), tol=1e-9, max_iter=100_000)
    assert res.converged


def test_proximal_point_contraction_matches_svd_theory(game):
    A = game.data["A"]
    xs, ys = direct_saddle(game)
    U, s, Vt = np.linalg.svd(A)
    eta, k = 0.7, 5
    x0 = np.zeros(10)
    res = proximal_point(game, x0, x0, eta=eta, max_iter=k, tol=1e-300)
    # in the SVD basis each pair (u_i^T x, v_i^T y) rotates and shrinks by 1/sqrt(1+eta^2 s^2)
    ex0, ey0 = U.T @ (x0 - xs), Vt @ (x0 - ys)
    shrink = (1 + (eta * s) ** 2) ** (-k / 2)
    pred = np.sqrt(np.sum((shrink * np.hypot(ex0, ey0)) ** 2))
    got = np.hypot(np.linalg.norm(res.x - xs), np.linalg.norm(res.y - ys))
    assert got == pytest.approx(pred, rel=1e-10)


def test_uniform_gradient_counting(game):
    z = np.zeros(10)
    k = 7
    # each method: 1 evaluation at the start, then per iteration GDA 1, EG 2, OGDA 1, PPM 1
    for method, per in ((gda, 1), (extragradient, 2), (optimistic_gda, 1), (proximal_point, 1)):
        game.reset_count()
        res = method(game, z, z, max_iter=k, tol=1e-300)
        assert res.iterations == k
        assert res.grad_evals == 1 + per * k == game.grad_evals
        assert res.history["evals"][-1] == res.grad_evals
    calls = []
    p = SaddleProblem(lambda x, y: calls.append("x") or y, lambda x, y: calls.append("y") or -x,
                      2, 2, lipschitz=1.0)  # fmt: skip
    extragradient(p, np.ones(2), np.ones(2), max_iter=3, tol=1e-300)
    assert p.grad_evals == len(calls) // 2 == 7


def test_admm_reaches_kkt_solution():
    p = constrained_least_squares(30, 45, 8, kappa=5.0, rng=2)
    res = admm_equality_ls(p, np.zeros(30), rho=5.0, target="kkt_error", tol=1e-9,
                           max_iter=5000)  # fmt: skip
    assert res.converged, res.summary()
    assert np.allclose(res.x, p.x_star, atol=1e-8)
    assert np.allclose(res.y, p.y_star, atol=1e-6)
    assert res.history["violation"][-1] <= 1e-9


def test_bad_input(game):
    z = np.zeros(10)
    with pytest.raises(InvalidInputError, match="lr"):
        gda(game, z, z, lr=-1.0)
    with pytest.raises(InvalidInputError, match="eta"):
        proximal_point(game, z, z, eta=0.0)
    with pytest.raises(InvalidInputError, match="x0"):
        extragradient(game, np.zeros(9), z)
    with pytest.raises(InvalidInputError, match="SaddleProblem"):
        optimistic_gda("bilinear", z, z)
    with pytest.raises(InvalidInputError, match="constrained_least_squares"):
        admm_equality_ls(game, z)
    no_l = SaddleProblem(lambda x, y: y, lambda x, y: x, 2, 2)
    with pytest.raises(InvalidInputError, match="step size"):
        gda(no_l, np.zeros(2), np.zeros(2))
    with pytest.raises(InvalidInputError, match="linear_system"):
        proximal_point(no_l, np.zeros(2), np.zeros(2))
    with pytest.raises(InvalidInputError, match="x_star"):
        SaddleProblem(lambda x, y: y, lambda x, y: x, 2, 2, x_star=np.zeros(3),
                      y_star=np.zeros(2))  # fmt: skip
    with pytest.raises(InvalidInputError, match="kappa"):
        bilinear_game(5, 0.5)


def test_non_finite_gradient_carries_last_good_iterate():
    def gx(x, y):
        return y if np.abs(x).max() < 1e3 else np.full_like(x, np.nan)

    p = SaddleProblem(gx, lambda x, y: x, 2, 2, lipschitz=1.0)
    with pytest.raises(NonFiniteError) as info:
        gda(p, np.ones(2), np.ones(2), lr=0.5, max_iter=10_000)
    err = info.value
    assert np.abs(err.x).max() < 1e3 and np.isfinite(err.y).all()
    assert err.iteration > 0 and "last finite iterate" in str(err)
