"""Quantized two-layer networks (:mod:`frugalml.convex.quantized`): the SDP relaxation is a lower
bound on the exact (enumerated) optimum, which lower-bounds every rounded network; the lift,
the arcsine-corrected sign sampling and the enumeration are checked against direct
computations."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("cvxpy")

from frugalml.convex.activation import Polynomial
from frugalml.convex.quantized import (
    QuantizedNetwork,
    all_sign_neurons,
    exhaustive_quantized,
    lift_matrices,
    refit_output_weights,
    round_quantized,
    sample_sign_neurons,
    sign_backprop,
    solve_quantized_sdp,
)
from frugalml.errors import InvalidInputError

REL = 1e-6  # interior-point accuracy (Clarabel's gaps are ~1e-8)


def signs(rng, shape):
    return np.where(rng.standard_normal(shape) >= 0, 1.0, -1.0)


def planted(n, d, *, k=3, noise=0.05, act=(1.0, 0.5, 0.0), seed=0, classify=False):
    """A teacher with ``k`` sign neurons; rows of X scaled so that x^T u is O(1)."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d)) / np.sqrt(d)
    U = signs(rng, (d, k))
    alpha = rng.choice([-1.0, 1.0], k) * rng.uniform(0.5, 1.5, k)
    a, b, c = act
    t = X @ U
    y = ((a * t + b) * t + c) @ alpha + noise * rng.standard_normal(n)
    if classify:
        y = np.where(y >= np.median(y), 1.0, -1.0)
    return X, y


def leq(lo, hi, rel=REL):
    return lo <= hi + rel * max(abs(hi), 1.0)


# ------------------------------------------------------------------------------ the sandwich


@pytest.mark.parametrize("d", [4, 6, 8])
@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("act", [(1.0, 0.0, 0.0), (0.5, 0.5, 0.1)])
def test_sdp_bound_exhaustive_rounded_sandwich(d, seed, act):
    X, y = planted(30, d, seed=seed, act=(1.0, 0.5, 0.0), noise=0.3)
    a, b, c = act
    kw = dict(a=a, b=b, c=c, beta=0.1, loss="squared")
    sol = solve_quantized_sdp(X, y, **kw)
    opt, exact = exhaustive_quantized(X, y, **kw)
    net = round_quantized(sol, X, y, n_samples=500, rng=seed)
    assert leq(sol.lower_bound, opt)
    assert leq(opt, net.train_objective)
    assert net.certified_gap >= -1e-6
    assert np.isclose(net.objective(X, y), net.train_objective)
    assert np.isclose(exact.objective(X, y), opt)
    assert set(np.unique(net.U)) <= {-1.0, 1.0}


@pytest.mark.parametrize("loss", ["absolute", "logistic", "hinge"])
def test_sandwich_other_losses(loss):
    X, y = planted(30, 4, seed=3, classify=loss != "absolute")
    kw = dict(a=1.0, b=0.5, c=0.0, beta=0.05, loss=loss)
    sol = solve_quantized_sdp(X, y, **kw)
    opt, _ = exhaustive_quantized(X, y, **kw)
    net = round_quantized(sol, X, y, n_samples=300, rng=0)
    rel = 1e-5 if loss == "logistic" else REL  # Clarabel runs at 1e-7 on exponential cones
    assert leq(sol.lower_bound, opt, rel)
    assert leq(opt, net.train_objective, rel)
    assert net.certified_gap >= -1e-5


def test_planted_rounding_reaches_exhaustive_optimum():
    # measured (seed 0, n=80, d=6, 3 teacher neurons, sigma = t^2 + t/2, beta = 0.1):
    # SDP bound 0.385464, exhaustive optimum 0.386185, rounded 0.386192 (1.7e-5 above the
    # optimum, certified gap 0.19%); over 6 problems x 3 rounding seeds at most 0.69% above
    X, y = planted(80, 6, k=3, seed=0)
    kw = dict(a=1.0, b=0.5, c=0.0, beta=0.1)
    sol = solve_quantized_sdp(X, y, **kw)
    opt, _ = exhaustive_quantized(X, y, **kw)
    net = round_quantized(sol, X, y, rng=0)
    assert leq(sol.lower_bound, opt)
    assert leq(opt, net.train_objective)
    assert net.train_objective <= 1.01 * opt
    assert net.certified_gap < 0.05
    assert "certified gap" in net.summary()
    assert "lower bound" in sol.summary()


def test_max_neurons_keeps_top_k_and_refits():
    X, y = planted(40, 5, seed=2)
    sol = solve_quantized_sdp(X, y, a=1.0, b=0.5, beta=0.1)
    full = round_quantized(sol, X, y, n_samples=300, rng=0)
    small = round_quantized(sol, X, y, n_samples=300, rng=0, max_neurons=2)
    assert small.width <= 2 < full.width
    assert leq(full.train_objective, small.train_objective)
    assert leq(sol.lower_bound, small.train_objective)


def test_large_beta_gives_the_empty_network_with_zero_gap():
    X, y = planted(30, 4, seed=1)
    sol = solve_quantized_sdp(X, y, a=1.0, b=0.5, beta=1e4)
    net = round_quantized(sol, X, y, rng=0)
    assert net.width == 0 and net.U.shape == (4, 0)
    np.testing.assert_array_equal(net.predict(X), np.zeros(30))
    assert np.isclose(net.train_objective, 0.5 * y @ y)
    assert abs(net.certified_gap) < 1e-6


# ------------------------------------------------------------------------------ the lift


@pytest.mark.parametrize("act", [(1.0, 0.0, 0.0), (0.7, -0.4, 0.3)])
def test_single_neuron_lift_reproduces_the_network(act):
    rng = np.random.default_rng(5)
    n, d = 25, 5
    X = rng.standard_normal((n, d))
    u = signs(rng, d)
    alpha = -1.7
    poly = Polynomial(*act)
    net = QuantizedNetwork(U=u[:, None], alpha=np.array([alpha]), activation=poly,
                           loss="squared", beta=0.3)  # fmt: skip
    v = np.append(u, 1.0)
    Z = abs(alpha) * np.outer(v, v)
    zero = np.zeros_like(Z)
    F = lift_matrices(X, poly)
    # negative output weight: the neuron lives in Z'
    yhat = F @ (zero - Z).reshape(-1)
    np.testing.assert_allclose(yhat, net.predict(X), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(yhat, alpha * poly(X @ u), rtol=1e-12, atol=1e-12)
    # the lifted point is feasible (diag = Z4 1) and its SDP objective is the network's
    assert np.allclose(np.diag(Z), Z[-1, -1])
    y = rng.standard_normal(n)
    sdp_obj = 0.5 * np.sum((yhat - y) ** 2) + 0.3 * (Z[-1, -1] + zero[-1, -1])
    assert np.isclose(sdp_obj, net.objective(X, y))


def test_sdp_solution_predict_and_feasibility():
    X, y = planted(30, 5, seed=4)
    sol = solve_quantized_sdp(X, y, a=1.0, b=0.5, beta=0.1)
    for M in (sol.Z, sol.Zp):
        assert np.linalg.eigvalsh(M).min() >= -1e-7 * max(1.0, M[-1, -1])
        np.testing.assert_allclose(np.diag(M), M[-1, -1], atol=1e-7)
    obj = 0.5 * np.sum((sol.predict(X) - y) ** 2) + 0.1 * (sol.Z[-1, -1] + sol.Zp[-1, -1])
    assert np.isclose(obj, sol.lower_bound, rtol=1e-6)


# ------------------------------------------------------------------------------ sampling


def test_arcsin_sampling_of_a_rank_one_lift_returns_the_vector():
    rng = np.random.default_rng(0)
    for d in (3, 7, 12):
        u = signs(rng, d)
        v = np.append(u, 1.0)
        samples = sample_sign_neurons(2.5 * np.outer(v, v), 200, rng=d)
        assert samples.shape == (200, d)
        assert np.all(samples == u[None, :])  # the last coordinate fixes the global sign


def test_arcsin_correction_matches_the_second_moment():
    # C = 0.75 v1 v1^T + 0.25 v2 v2^T (entries +-1, +-0.5): sin(pi/2 C) is PSD, so the
    # corrected signs reproduce C; plain Goemans-Williamson gives (2/pi) arcsin(C) instead
    v1 = np.array([1.0, 1.0, -1.0, 1.0, 1.0])
    v2 = np.array([1.0, -1.0, -1.0, -1.0, 1.0])
    C = 0.75 * np.outer(v1, v1) + 0.25 * np.outer(v2, v2)
    assert np.linalg.eigvalsh(np.sin(np.pi / 2 * C)).min() > -1e-12
    m = 40000
    for corrected, target in ((True, C), (False, 2 / np.pi * np.arcsin(C))):
        u = sample_sign_neurons(C, m, rng=1, arcsin_correction=corrected)
        w = np.hstack([u, np.ones((m, 1))])
        moment = w.T @ w / m
        assert np.abs(moment - target).max() < 0.02  # ~4 standard errors (1/sqrt(m) = 0.005)
    assert np.abs(2 / np.pi * np.arcsin(C) - C).max() > 0.16  # the bias the correction removes


# ------------------------------------------------------------------------------ exhaustive


def test_even_activation_enumeration_loses_nothing_and_kkt_holds():
    X, y = planted(30, 4, seed=6, act=(1.0, 0.0, 0.0))
    beta = 0.05
    opt, net = exhaustive_quantized(X, y, a=1.0, beta=beta)
    assert net.n_candidates == 8  # 2^(d-1): u and -u are one neuron when b = 0
    both = refit_output_weights(X, y, all_sign_neurons(4, even=False), a=1.0, beta=beta)
    assert np.isclose(both.train_objective, opt, rtol=1e-7)
    # KKT of the lasso over the full dictionary: |H^T r| <= beta, = -beta sign(alpha) on support
    U = all_sign_neurons(4, even=True)
    alpha = np.zeros(U.shape[1])
    idx = [np.flatnonzero((net.U[:, [j]] == U).all(0))[0] for j in range(net.width)]
    alpha[idx] = net.alpha
    H = (X @ U) ** 2
    g = H.T @ (H @ alpha - y)
    assert np.all(np.abs(g) <= beta * (1 + 1e-5))
    # interior points leave nearly-active weights at ~1e-5 where |g_j| is within 1e-3 of beta
    big = np.abs(alpha) > 1e-3 * np.abs(alpha).max()
    np.testing.assert_allclose(g[big], -beta * np.sign(alpha[big]), rtol=1e-5)


def test_all_sign_neurons():
    U = all_sign_neurons(3, even=False)
    assert U.shape == (3, 8) and len({tuple(c) for c in U.T}) == 8
    E = all_sign_neurons(3, even=True)
    assert E.shape == (3, 4) and np.all(E[-1] == 1.0)


def test_exhaustive_agrees_with_scs():
    X, y = planted(30, 5, seed=7)
    kw = dict(a=1.0, b=0.5, c=0.0, beta=0.1)
    opt_c, _ = exhaustive_quantized(X, y, **kw)
    opt_s, _ = exhaustive_quantized(X, y, solver="scs", **kw)
    assert abs(opt_c - opt_s) <= 1e-4 * opt_c
    assert leq(opt_c, opt_s)


def test_activation_object_and_polynomial_coefficients_agree():
    X, y = planted(20, 4, seed=8)
    s1 = solve_quantized_sdp(X, y, a=0.5, b=0.25, c=0.1, beta=0.1)
    s2 = solve_quantized_sdp(X, y, activation=Polynomial(0.5, 0.25, 0.1), beta=0.1)
    assert np.isclose(s1.lower_bound, s2.lower_bound, rtol=1e-7)


# ------------------------------------------------------------------------------ baseline


def test_sign_backprop_refit_improves_and_respects_the_optimum():
    pytest.importorskip("torch")
    X, y = planted(40, 4, seed=9)
    kw = dict(a=1.0, b=0.5, c=0.0, beta=0.1)
    opt, _ = exhaustive_quantized(X, y, **kw)
    res = sign_backprop(X, y, width=4, steps=300, lr=1e-2, rng=0, **kw)
    assert set(np.unique(res.network.U)) <= {-1.0, 1.0}
    assert np.isclose(res.network.objective(X, y), res.objective)
    assert leq(res.refit_objective, res.objective)
    assert leq(opt, res.refit_objective)
    assert len(res.history) == 6 and "sign backprop" in res.summary()


# ------------------------------------------------------------------------------ bad input


def test_bad_input():
    X, y = planted(20, 4, seed=10)
    with pytest.raises(InvalidInputError, match="beta"):
        solve_quantized_sdp(X, y, a=1.0, beta=0.0)
    with pytest.raises(InvalidInputError, match="beta"):
        exhaustive_quantized(X, y, a=1.0, beta=-1.0)
    Xn = X.copy()
    Xn[0, 0] = np.nan
    with pytest.raises(InvalidInputError, match="NaN"):
        solve_quantized_sdp(Xn, y, a=1.0, beta=0.1)
    yn = y.copy()
    yn[3] = np.inf
    with pytest.raises(InvalidInputError, match="NaN"):
        exhaustive_quantized(X, yn, a=1.0, beta=0.1)
    with pytest.raises(InvalidInputError, match="too many"):
        exhaustive_quantized(np.ones((5, 13)), np.ones(5), a=1.0, beta=0.1)
    for loss in ("logistic", "hinge"):
        with pytest.raises(InvalidInputError, match="labels"):
            solve_quantized_sdp(X, y, a=1.0, beta=0.1, loss=loss)
        with pytest.raises(InvalidInputError, match="labels"):
            exhaustive_quantized(X, y, a=1.0, beta=0.1, loss=loss)
    with pytest.raises(InvalidInputError, match="loss"):
        solve_quantized_sdp(X, y, a=1.0, beta=0.1, loss="l3")
    with pytest.raises(InvalidInputError, match="rows"):
        solve_quantized_sdp(X, y[:-1], a=1.0, beta=0.1)
    with pytest.raises(InvalidInputError, match="activation"):
        solve_quantized_sdp(X, y, beta=0.1)
    with pytest.raises(InvalidInputError, match="not both"):
        solve_quantized_sdp(X, y, a=1.0, activation=Polynomial(1.0), beta=0.1)
    with pytest.raises(InvalidInputError):
        refit_output_weights(X, y, np.full((4, 2), 0.5), a=1.0, beta=0.1)
    sol = solve_quantized_sdp(X, y, a=1.0, beta=0.1)
    with pytest.raises(InvalidInputError, match="shape"):
        round_quantized(sol, X[:, :3], y)


@pytest.mark.slow
@pytest.mark.parametrize("d", [10, 12])
def test_sandwich_large_d(d):
    # measured (n=100, 3 teacher neurons, ReLU-fit activation, beta=0.1): rounded within 0.43%
    # (d=10) and 0.15% (d=12) of the exhaustive optimum; exhaustive ~1 s and ~6 s
    act = Polynomial.fit_relu()
    X, y = planted(100, d, k=3, noise=0.1, act=(act.a, act.b, act.c))
    sol = solve_quantized_sdp(X, y, activation=act, beta=0.1)
    opt, _ = exhaustive_quantized(X, y, activation=act, beta=0.1)
    net = round_quantized(sol, X, y, rng=0)
    assert leq(sol.lower_bound, opt)
    assert leq(opt, net.train_objective)
    assert net.train_objective <= 1.01 * opt


def test_progress_and_old_import_paths():
    """``solve_quantized_sdp(progress=)`` reports its phases; the split modules of the package
    are the ones ``frugalml.convex.quantized`` exports."""
    from frugalml.convex import quantized
    from frugalml.convex.quantized import network, rounding, sdp

    X, y = planted(30, 3, seed=4)
    calls = []
    sol = solve_quantized_sdp(X, y, a=1.0, b=0.5, beta=0.1,
                              progress=lambda m, f: calls.append((m, f)))  # fmt: skip
    assert calls == [("building SDP", 0.0), ("solving (clarabel)", 0.1), ("done", 1.0)]
    assert sol.lower_bound == solve_quantized_sdp(X, y, a=1.0, b=0.5, beta=0.1).lower_bound
    assert quantized.round_quantized is rounding.round_quantized
    assert quantized.QuantizedNetwork is network.QuantizedNetwork
    assert quantized.solve_quantized_sdp is sdp.solve_quantized_sdp
