"""Exact error theory of (distributed) sketch-and-solve against Monte-Carlo simulation."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.stats

from frugalml.errors import InvalidInputError
from frugalml.sketch import GaussianSketch, UniformSampling
from frugalml.sketch.datasets import synthetic_regression
from frugalml.sketch.lstsq import SketchedFactor
from frugalml.sketch.theory import (
    BiasVariance,
    bias_variance,
    gaussian_averaged_error,
    gaussian_error_distribution,
    gaussian_single_error,
    gaussian_weighted_error,
    inverse_variance_weights,
)


def ls_solution(a, b):
    x = np.linalg.lstsq(a, b, rcond=None)[0]
    return x, float(np.sum((b - a @ x) ** 2))


# -- closed forms ----------------------------------------------------------------------------------


@pytest.mark.parametrize(("m", "d"), [(12, 10), (20, 5), (40, 10), (400, 3), (3, 1)])
def test_distribution_mean_is_the_single_error(m, d):
    law = gaussian_error_distribution(m, d)
    single = gaussian_single_error(m, d)
    assert single == d / (m - d - 1)
    assert law.mean() == pytest.approx(single, rel=1e-12)
    # (d/(m-d+1)) F(d, m-d+1) = chi2_d / chi2_{m-d+1}: check the quantiles by simulation-free
    # identity with the beta-prime law: X = chi2_d/chi2_k <=> X/(1+X) ~ Beta(d/2, k/2)
    k = m - d + 1
    for p in (0.1, 0.5, 0.9):
        xq = law.ppf(p)
        assert scipy.stats.beta(d / 2, k / 2).cdf(xq / (1 + xq)) == pytest.approx(p, rel=1e-9)


@pytest.mark.parametrize("q", [1, 2, 7, 64])
def test_averaged_error_is_single_over_q(q):
    assert gaussian_averaged_error(30, 8, q) == pytest.approx(8 / 21 / q, rel=1e-15)


def test_inverse_variance_weights_are_optimal():
    d = 6
    sizes = [9, 15, 20, 40, 100]
    w = inverse_variance_weights(sizes, d)
    raw = np.array(sizes) - d - 1
    np.testing.assert_allclose(w, raw / raw.sum(), rtol=1e-15)
    assert w.sum() == pytest.approx(1.0, abs=1e-15)
    best = gaussian_weighted_error(sizes, d, w)
    assert best == pytest.approx(d / raw.sum(), rel=1e-12)
    uniform = gaussian_weighted_error(sizes, d, np.full(5, 0.2))
    assert uniform == pytest.approx(sum(0.04 * d / r for r in raw), rel=1e-12)
    assert best <= uniform
    # no other weights summing to 1 do better (the weighted error is a convex quadratic)
    rng = np.random.default_rng(0)
    for _ in range(200):
        other = rng.dirichlet(np.ones(5))
        assert gaussian_weighted_error(sizes, d, other) >= best * (1 - 1e-12)
    # equal sizes: inverse-variance weights are uniform and the error is single / q
    eq = inverse_variance_weights([30] * 4, d)
    np.testing.assert_allclose(eq, 0.25)
    assert gaussian_weighted_error([30] * 4, d, eq) == pytest.approx(
        gaussian_averaged_error(30, d, 4), rel=1e-12
    )


def test_bias_variance_identity_on_exact_inputs():
    """With T copies of two points u, -u + 2c the estimates are exact: B = ||A c||^2."""
    rng = np.random.default_rng(1)
    a = rng.standard_normal((20, 3))
    x_star = rng.standard_normal(3)
    c, delta = rng.standard_normal(3), rng.standard_normal(3)
    est = np.array([x_star + c + delta, x_star + c - delta] * 50)
    bv = bias_variance(a, x_star, est, f_star=2.0)
    t = est.shape[0]
    ac, ad = a @ c, a @ delta
    v = ac @ ac + ad @ ad
    b2 = (t * (ac @ ac) - v) / (t - 1)
    assert bv.trials == t
    assert bv.single == pytest.approx(v / 2.0, rel=1e-12)
    assert bv.bias2 == pytest.approx(b2 / 2.0, rel=1e-12)
    np.testing.assert_allclose(bv.predict(np.array([1, 4])),
                               [bv.single, bv.bias2 + (bv.single - bv.bias2) / 4])  # fmt: skip
    assert isinstance(bv.predict(2), float)
    # scipy.sparse A gives the same estimates
    import scipy.sparse as sp

    bs = bias_variance(sp.csr_matrix(a), x_star, est, f_star=2.0)
    assert bs.single == pytest.approx(bv.single) and bs.bias2 == pytest.approx(bv.bias2)


# -- the law of one Gaussian sketch-and-solve error, by simulation ------------------------------


def _single_errors(trials, n, d, m, seed, *, own_gaussian=False):
    p = synthetic_regression(n, d, rng=seed)
    a, b = p.a, p.b
    xs, f = ls_solution(a, b)
    rng = np.random.default_rng(seed + 100)
    sketch = GaussianSketch(m, rng=rng)
    out = np.empty(trials)
    for t in range(trials):
        if own_gaussian:  # plain numpy: checks the theory independently of frugalml's sketch
            s = rng.standard_normal((m, n)) / np.sqrt(m)
            x = np.linalg.lstsq(s @ a, s @ b, rcond=None)[0]
        else:
            smat = sketch.draw(n)
            x = SketchedFactor(smat.apply(a)).solve(smat.apply(b))
        out[t] = np.sum((a @ (x - xs)) ** 2) / f
    return out


@pytest.mark.parametrize("own_gaussian", [False, True])
def test_single_error_follows_the_scaled_f_law(own_gaussian):
    """KS test of 2000 single-sketch errors (n=60, d=4, m=12) against (d/(m-d+1)) F(d, m-d+1)."""
    m, d = 12, 4
    errs = _single_errors(2000, 60, d, m, seed=3, own_gaussian=own_gaussian)
    law = gaussian_error_distribution(m, d)
    assert scipy.stats.kstest(errs, law.cdf).pvalue > 0.01
    # power: the same sample rejects a law with the right shape and a 14% wrong scale
    wrong = scipy.stats.f(d, m - d + 1, scale=d / (m - d - 1))
    assert scipy.stats.kstest(errs, wrong.cdf).pvalue < 0.01


@pytest.mark.slow
@pytest.mark.parametrize(("n", "d", "m"), [(80, 5, 15), (200, 10, 40)])
def test_single_error_law_many_samples(n, d, m):
    errs = _single_errors(20000, n, d, m, seed=4)
    law = gaussian_error_distribution(m, d)
    assert scipy.stats.kstest(errs, law.cdf).pvalue > 0.01
    se = errs.std(ddof=1) / np.sqrt(errs.size)
    assert abs(errs.mean() - gaussian_single_error(m, d)) < 4 * se


# -- bias-variance: the plateau of averaged biased sketches ----------------------------------------


def _uniform_solutions(a, b, m, count, rng):
    sketch = UniformSampling(m)
    n = a.shape[0]
    out = np.empty((count, a.shape[1]))
    for t in range(count):
        s = sketch.draw(n, rng=rng)
        out[t] = np.linalg.lstsq(s.apply(a), s.apply(b), rcond=None)[0]
    return out


def _check_bias_variance_prediction(trials, reps, seed):
    """Predict E||A(xbar_q - x*)||^2/f = B + (V - B)/q from ``trials`` single solutions and
    compare with ``reps`` independent averages of q solutions, q in {1, 4, 16}.

    Tolerance: 4 combined standard errors -- that of the Monte-Carlo mean (sample std /
    sqrt(reps)) and that of the prediction (spread of the prediction over 20 batches of the
    single solutions / sqrt(20)).
    """
    p = synthetic_regression(400, 4, df=1.0, rng=seed)  # multivariate-t rows: coherent
    a, b = p.a, p.b
    xs, f = ls_solution(a, b)
    lev = np.sum(np.linalg.qr(a)[0] ** 2, axis=1)
    assert lev.max() > 25 * 4 / 400  # far from incoherent (d/n)
    rng = np.random.default_rng(seed + 1)
    m = 40
    singles = _uniform_solutions(a, b, m, trials, rng)
    bv = bias_variance(a, xs, singles, f)
    assert isinstance(bv, BiasVariance) and bv.trials == trials
    batches = [bias_variance(a, xs, g, f) for g in np.array_split(singles, 20)]
    for q in (1, 4, 16):
        errs = np.empty(reps)
        for r in range(reps):
            xbar = _uniform_solutions(a, b, m, q, rng).mean(axis=0)
            errs[r] = np.sum((a @ (xbar - xs)) ** 2) / f
        se_mc = errs.std(ddof=1) / np.sqrt(reps)
        se_pred = np.std([g.predict(q) for g in batches], ddof=1) / np.sqrt(len(batches))
        tol = 4 * np.hypot(se_mc, se_pred)
        assert abs(bv.predict(q) - errs.mean()) < tol, (q, bv.predict(q), errs.mean(), tol)
        assert tol < 0.3 * bv.predict(q)  # the check has teeth
    return bv


def test_bias_variance_predicts_averaged_uniform_sampling():
    bv = _check_bias_variance_prediction(trials=3000, reps=800, seed=0)
    # sampling is biased on coherent data: B is well above the Gaussian-sketch noise floor
    assert bv.bias2 > 5 * np.sqrt(2 / 4) / bv.trials * bv.single


@pytest.mark.slow
def test_bias_variance_predicts_averaged_uniform_sampling_many_trials():
    _check_bias_variance_prediction(trials=30000, reps=2000, seed=5)


def test_gaussian_sketches_have_no_bias():
    """Gaussian sketch-and-solve is unbiased: B / V is at noise level. For isotropic u the
    estimate B has standard deviation ~ V sqrt(2/d) / T, so B / V < 5 sqrt(2/d) / T."""
    n, d, m, t = 200, 5, 20, 2000
    p = synthetic_regression(n, d, rng=7)
    a, b = p.a, p.b
    xs, f = ls_solution(a, b)
    sketch = GaussianSketch(m, rng=8)
    est = np.empty((t, d))
    for i in range(t):
        s = sketch.draw(n)
        est[i] = SketchedFactor(s.apply(a)).solve(s.apply(b))
    bv = bias_variance(a, xs, est, f)
    assert bv.bias2 / bv.single < 5 * np.sqrt(2 / d) / t
    se = np.sqrt(2.0 / t) * bv.single  # rough: relative std of one error ~ 1.4 here
    assert abs(bv.single - gaussian_single_error(m, d)) < 4 * se


# -- bad input -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("call", "needle"),
    [
        (lambda: gaussian_single_error(11, 10), r"m > d \+ 1"),
        (lambda: gaussian_single_error(5, 10), r"m > d \+ 1"),
        (lambda: gaussian_single_error(20, 0), "d must be >= 1"),
        (lambda: gaussian_single_error(20.5, 3), "integer"),
        (lambda: gaussian_averaged_error(20, 3, 0), "q must be >= 1"),
        (lambda: gaussian_averaged_error(4, 3, 2), r"m > d \+ 1"),
        (lambda: gaussian_error_distribution(4, 3), r"m > d \+ 1"),
        (lambda: inverse_variance_weights([20, 4], 3), r"m > d \+ 1"),
        (lambda: inverse_variance_weights([], 3), "at least one"),
        (lambda: gaussian_weighted_error([20, 30], 3, [0.5, 0.6]), "sum to 1"),
        (lambda: gaussian_weighted_error([20, 30], 3, [1.0]), "2 sizes but 1 weights"),
        (lambda: gaussian_weighted_error([20, 30], 3, [np.nan, 1.0]), "NaN"),
        (lambda: gaussian_weighted_error([20, 4], 3, [0.5, 0.5]), r"m > d \+ 1"),
    ],
)
def test_bad_input_raises(call, needle):
    with pytest.raises(InvalidInputError, match=needle):
        call()


def test_bias_variance_bad_input():
    a = np.eye(4)[:, :2]
    x = np.zeros(2)
    with pytest.raises(InvalidInputError, match="at least 2 samples"):
        bias_variance(a, x, np.ones((1, 2)), 1.0)
    with pytest.raises(InvalidInputError, match="f\\(x\\*\\) must be > 0"):
        bias_variance(a, x, np.ones((3, 2)), 0.0)
    with pytest.raises(InvalidInputError, match="dimension"):
        bias_variance(a, x, np.ones(3), 1.0)


@pytest.mark.parametrize(
    ("name", "n", "d", "m"), [("srht", 1024, 32, 128), ("srdct", 600, 30, 120)]
)
def test_orthogonal_single_error_matches_srht_monte_carlo(name, n, d, m):
    """SRHT / SRDCT single-sketch error vs (d/(m-d)) (N-m)/(N-d) (an asymptotic formula: allow
    4 standard errors plus 3% for finite size). 600 trials."""
    from frugalml.sketch import make_sketch
    from frugalml.sketch.distributed import sketch_and_solve_task
    from frugalml.sketch.theory import gaussian_single_error, orthogonal_single_error

    rng = np.random.default_rng(21)
    a = rng.standard_normal((n, d))
    b = a @ rng.standard_normal(d) + rng.standard_normal(n)
    xs = np.linalg.lstsq(a, b, rcond=None)[0]
    f = float(np.sum((b - a @ xs) ** 2))
    sk = make_sketch(name, m)
    errs = []
    for t in range(600):
        u = a @ (sketch_and_solve_task(a, b, sk, t, 0.0) - xs)
        errs.append(float(u @ u) / f)
    errs = np.array(errs)
    pred = orthogonal_single_error(m, d, n)
    se = errs.std(ddof=1) / np.sqrt(errs.size)
    assert abs(errs.mean() - pred) <= 4 * se + 0.03 * pred
    # and it is clearly below the Gaussian value
    assert errs.mean() < gaussian_single_error(m, d) - 4 * se
    with pytest.raises(InvalidInputError):
        orthogonal_single_error(10, 10, 100)
