"""Privacy of Gaussian sketches: (epsilon, delta) accounting, the mutual-information leakage
bound and private least squares (sketched ridge regression with lambda = w^2)."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.special

from frugalml.errors import InvalidInputError
from frugalml.sketch.privacy import (
    PrivateResult,
    gaussian_sketch_epsilon,
    gaussian_sketch_noise,
    leakage_bound,
    private_lstsq,
    private_sketch,
)

# -- (epsilon, delta) accounting ------------------------------------------------------------------


def sheffet_epsilon(k, lambda_min, delta, row_norm):
    """Independent transcription of Sheffet (2019), Thm 2."""
    log_term = np.log(4 / delta)
    return 2 * row_norm**2 * (log_term + np.sqrt(2 * k * log_term)) / lambda_min


@pytest.mark.parametrize("k", [1, 20, 640])
@pytest.mark.parametrize("delta", [1e-9, 1e-6, 0.01])
@pytest.mark.parametrize("row_norm", [0.5, 1.0, 3.0])
def test_epsilon_closed_form_and_noise_is_its_inverse(k, delta, row_norm):
    for lambda_min in (0.1, 1.0, 250.0):
        eps = gaussian_sketch_epsilon(k, lambda_min, delta, row_norm=row_norm)
        assert eps == pytest.approx(sheffet_epsilon(k, lambda_min, delta, row_norm), rel=1e-13)
        w2 = gaussian_sketch_noise(eps, delta, k, row_norm=row_norm)
        assert w2 == pytest.approx(lambda_min, rel=1e-13)
    for eps in (0.01, 0.5, 1.0, 8.0):
        w2 = gaussian_sketch_noise(eps, delta, k, row_norm=row_norm)
        assert gaussian_sketch_epsilon(k, w2, delta, row_norm=row_norm) == pytest.approx(
            eps, rel=1e-13
        )


def test_epsilon_monotonicity():
    lams = np.logspace(-2, 3, 12)
    eps = [gaussian_sketch_epsilon(50, lam, 1e-6) for lam in lams]
    assert np.all(np.diff(eps) < 0)  # more noise, more privacy
    np.testing.assert_allclose(np.array(eps) * lams, eps[0] * lams[0], rtol=1e-12)  # ~ 1/lam
    ks = [1, 2, 10, 100, 1000, 10**5]
    eps_k = [gaussian_sketch_epsilon(k, 1.0, 1e-6) for k in ks]
    assert np.all(np.diff(eps_k) > 0)  # more released rows, less privacy
    # eps = 2 (L + sqrt(2 k L)) with L = log(4/delta): the k-dependent part grows like sqrt(k)
    growth = [e - 2 * np.log(4e6) for e in eps_k]
    np.testing.assert_allclose(np.array(growth) / np.sqrt(ks), growth[0], rtol=1e-12)
    # a smaller delta costs privacy, a larger row bound costs quadratically
    assert gaussian_sketch_epsilon(10, 1.0, 1e-9) > gaussian_sketch_epsilon(10, 1.0, 1e-3)
    assert gaussian_sketch_epsilon(10, 1.0, 1e-6, row_norm=2.0) == pytest.approx(
        4 * gaussian_sketch_epsilon(10, 1.0, 1e-6), rel=1e-14
    )


@pytest.mark.parametrize(
    ("call", "needle"),
    [
        (lambda: gaussian_sketch_epsilon(10, 1.0, 0.0), "delta"),
        (lambda: gaussian_sketch_epsilon(10, 1.0, 1.0), "delta"),
        (lambda: gaussian_sketch_epsilon(10, 1.0, -0.1), "delta"),
        (lambda: gaussian_sketch_epsilon(10, 1.0, 1.5), "delta"),
        (lambda: gaussian_sketch_epsilon(10, 1.0, float("nan")), "delta"),
        (lambda: gaussian_sketch_epsilon(0, 1.0, 1e-6), "k .* must be >= 1"),
        (lambda: gaussian_sketch_epsilon(10, 0.0, 1e-6), "lambda_min must be > 0"),
        (lambda: gaussian_sketch_epsilon(10, 1.0, 1e-6, row_norm=0.0), "row_norm"),
        (lambda: gaussian_sketch_noise(0.0, 1e-6, 10), "epsilon must be > 0"),
        (lambda: gaussian_sketch_noise(-1.0, 1e-6, 10), "epsilon must be > 0"),
        (lambda: gaussian_sketch_noise(float("inf"), 1e-6, 10), "epsilon must be finite"),
        (lambda: gaussian_sketch_noise(1.0, 0.0, 10), "delta"),
        (lambda: gaussian_sketch_noise(1.0, 1.0, 10), "delta"),
        (lambda: gaussian_sketch_noise(1.0, 1e-6, 0), "k .* must be >= 1"),
    ],
)
def test_accounting_bad_input_raises(call, needle):
    with pytest.raises(InvalidInputError, match=needle):
        call()


# -- mutual-information leakage --------------------------------------------------------------------


def test_leakage_closed_form_is_wishart_log_det_gap():
    """(q m / 2) (d log n - E log det W), with
    E log det Wishart(n, I_d) = sum_i psi((n - i + 1)/2) + d log 2."""
    n, d, q, m = 40, 5, 3, 7
    i = np.arange(1, d + 1)
    e_logdet = np.sum(scipy.special.digamma((n - i + 1) / 2)) + d * np.log(2)
    expected = q * m / 2 * (d * np.log(n) - e_logdet)
    assert leakage_bound(n, d, q=q, m=m) == pytest.approx(expected, rel=1e-12)
    assert leakage_bound(n, d, q=q, m=m) > 0


def test_leakage_is_linear_in_q_times_m():
    one = leakage_bound(100, 4, q=1, m=1)
    for q, m in ((1, 10), (2, 5), (5, 2), (10, 1), (4, 25)):
        assert leakage_bound(100, 4, q=q, m=m) == pytest.approx(q * m * one, rel=1e-12)
    data = np.random.default_rng(0).standard_normal((1000, 4))
    emp = [leakage_bound(100, 4, q=q, m=m, data=data, samples=50, rng=1)
           for q, m in ((1, 6), (2, 3), (3, 2))]  # fmt: skip
    np.testing.assert_allclose(emp, emp[0], rtol=1e-12)


@pytest.mark.parametrize("d", [1, 3, 10])
def test_leakage_large_n_asymptote(d):
    """~ q m d (d + 1) / (4 n) with a relative correction O(d / n)."""
    q, m = 3, 11
    for n in (10**4, 10**6):
        approx = q * m * d * (d + 1) / (4 * n)
        assert leakage_bound(n, d, q=q, m=m) == pytest.approx(approx, rel=5 * d / n)
    # and it falls like 1 / n
    assert leakage_bound(10**6, d, q=q, m=m) == pytest.approx(
        leakage_bound(10**5, d, q=q, m=m) / 10, rel=1e-3
    )


def _empirical_vs_closed(n, d, samples, seed):
    """Gaussian data: the empirical (resampled) bound estimates the closed form. Its standard
    error is (1/2) sqrt(var log det W / samples), var log det Wishart(n, I_d) =
    sum_i psi'((n - i + 1)/2) (Bartlett decomposition)."""
    data = np.random.default_rng(seed).standard_normal((50000, d))
    closed = leakage_bound(n, d, q=1, m=1)
    emp = leakage_bound(n, d, q=1, m=1, data=data, samples=samples, rng=seed + 1)
    i = np.arange(1, d + 1)
    se = 0.5 * np.sqrt(np.sum(scipy.special.polygamma(1, (n - i + 1) / 2)) / samples)
    assert abs(emp - closed) < 4.5 * se, (emp, closed, se)
    assert se < 0.1 * closed
    return emp, closed


def test_leakage_empirical_gaussian_data_agrees_with_closed_form():
    _empirical_vs_closed(60, 4, samples=3000, seed=2)


@pytest.mark.slow
def test_leakage_empirical_many_samples():
    for seed, (n, d) in enumerate(((60, 4), (200, 8), (30, 2))):
        _empirical_vs_closed(n, d, samples=40000, seed=10 + seed)


def test_leakage_empirical_scale_invariant_and_bad_input():
    rng = np.random.default_rng(3)
    data = rng.standard_normal((2000, 3))
    base = leakage_bound(50, 3, q=1, m=1, data=data, samples=100, rng=4)
    # I(A; Y) does not change under A -> A T for invertible T: log det gap is invariant
    t = rng.standard_normal((3, 3))
    assert leakage_bound(50, 3, q=1, m=1, data=data @ t, samples=100, rng=4) == pytest.approx(
        base, rel=1e-8
    )
    with pytest.raises(InvalidInputError, match="columns"):
        leakage_bound(50, 4, q=1, m=1, data=data)
    with pytest.raises(InvalidInputError, match="singular"):
        leakage_bound(50, 3, q=1, m=1, data=np.column_stack([data[:, :2], data[:, 0]]))
    with pytest.raises(InvalidInputError, match="n >= d"):
        leakage_bound(2, 3, q=1, m=1)
    with pytest.raises(InvalidInputError, match="samples must be >= 2"):
        leakage_bound(50, 3, q=1, m=1, data=data, samples=1)
    with pytest.raises(InvalidInputError, match="q must be >= 1"):
        leakage_bound(50, 3, q=0, m=1)
    # too few distinct rows to resample an invertible Gram matrix: infinite leakage
    assert leakage_bound(3, 3, q=1, m=1, data=data[:3], samples=50, rng=0) == float("inf")


# -- the released sketch ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(11)
    a = rng.standard_normal((600, 3))
    b = a @ np.array([1.0, -2.0, 0.5]) + 0.5 * rng.standard_normal(600)
    scale = np.sqrt(np.einsum("ij,ij->i", a, a) + b * b).max()
    return a / scale, b / scale  # rows of [A b] have norm <= 1


def test_private_sketch_shape_and_second_moment(data):
    """E[Y^T Y] = X^T X + w^2 I. Monte-Carlo over 3000 releases, each entry checked against its
    exact standard error sqrt((M_jk^2 + M_jj M_kk) / (m T)) (Wishart(m, M/m) variance)."""
    a, b = data
    m, w, t = 10, 0.7, 3000
    x = np.column_stack([a, b])
    target = x.T @ x + w**2 * np.eye(4)
    rng = np.random.default_rng(12)
    acc = np.zeros((4, 4))
    for _ in range(t):
        y = private_sketch(a, b, m, w, rng)
        assert y.shape == (m, 4)
        acc += y.T @ y
    acc /= t
    se = np.sqrt((target**2 + np.outer(np.diag(target), np.diag(target))) / (m * t))
    assert np.all(np.abs(acc - target) < 4.5 * se)
    assert np.all(se < 0.05 * np.sqrt(np.outer(np.diag(target), np.diag(target))))


def test_private_sketch_is_a_gaussian_sketch_of_the_augmented_matrix(data):
    a, b = data
    y1 = private_sketch(a, b, 6, 0.3, rng=5)
    y2 = private_sketch(a, b, 6, 0.3, rng=5)
    np.testing.assert_array_equal(y1, y2)
    # w = 0: a plain Gaussian sketch of [A b]; its rank is min(m, d + 1)
    y0 = private_sketch(a, b, 6, 0.0, rng=5)
    assert np.linalg.matrix_rank(y0) == 4
    with pytest.raises(InvalidInputError, match="w must be"):
        private_sketch(a, b, 6, -1.0)
    with pytest.raises(InvalidInputError, match="w must be"):
        private_sketch(a, b, 6, float("nan"))
    with pytest.raises(InvalidInputError, match="shape"):
        private_sketch(a, b[:-1], 6, 0.3)
    with pytest.raises(InvalidInputError, match="m must be >= 1"):
        private_sketch(a, b, 0, 0.3)


# -- private least squares -------------------------------------------------------------------------


def test_private_lstsq_reports_its_guarantee(data):
    a, b = data
    res = private_lstsq(a, b, m=20, q=4, epsilon=2.0, delta=1e-5, row_norm=1.0, rng=0)
    assert isinstance(res, PrivateResult)
    assert res.lam == pytest.approx(gaussian_sketch_noise(2.0, 1e-5, 80, row_norm=1.0), rel=1e-14)
    assert gaussian_sketch_epsilon(80, res.lam, 1e-5) == pytest.approx(2.0, rel=1e-13)
    ridge = np.linalg.solve(a.T @ a + res.lam * np.eye(3), a.T @ b)
    np.testing.assert_allclose(res.ridge_x, ridge, rtol=1e-12)
    x_ls = np.linalg.lstsq(a, b, rcond=None)[0]
    assert res.relative_bias == pytest.approx(
        np.linalg.norm(ridge - x_ls) / np.linalg.norm(x_ls), rel=1e-12
    )
    assert res.leakage_nats == pytest.approx(leakage_bound(600, 3, q=4, m=20), rel=1e-14)
    assert (res.q, res.m, res.epsilon, res.delta) == (4, 20, 2.0, 1e-5)
    assert "(2, 1e-05)-DP" in res.summary() and "4 private Gaussian sketches" in res.summary()
    # default row bound: the largest row norm of [A b] (= 1 here)
    default = private_lstsq(a, b, m=20, q=4, epsilon=2.0, delta=1e-5, rng=0)
    assert default.lam == pytest.approx(res.lam, rel=1e-12)


def _augmented_error(a, b, lam, x, x_r):
    """Exact theory: each release solves sketch-and-solve on [A; w I; 0], [b; 0; w], whose
    residual is f = ||b - A x_r||^2 + lam ||x_r||^2 + lam."""
    dx = x - x_r
    r = b - a @ x_r
    f = r @ r + lam * x_r @ x_r + lam
    return (np.sum((a @ dx) ** 2) + lam * dx @ dx) / f


def test_averaging_repeated_releases_approaches_the_ridge_solution(data):
    """400 independent single releases (same lambda), averaged in disjoint groups of R = 1, 4,
    16: exact Gaussian sketch-and-solve theory on the augmented problem gives
    E err(xbar_R) = d / (R (m - d - 1)); checked within 4 standard errors of the group means,
    and the mean relative distance to the ridge solution falls like 1/sqrt(R)."""
    a, b = data
    d, m, total = 3, 12, 400
    runs = [private_lstsq(a, b, m=m, q=1, epsilon=10.0, row_norm=1.0, rng=s)
            for s in range(total)]  # fmt: skip
    lam = runs[0].lam
    assert all(r.lam == lam for r in runs)
    x_r = runs[0].ridge_x
    xs = np.array([r.x for r in runs])
    mean_dist = []
    for r in (1, 4, 16):
        groups = xs.reshape(total // r, r, d).mean(axis=1)
        errs = r * np.array([_augmented_error(a, b, lam, x, x_r) for x in groups])
        se = errs.std(ddof=1) / np.sqrt(errs.size)
        assert abs(errs.mean() - d / (m - d - 1)) < 4 * se, (r, errs.mean(), se)
        mean_dist.append(np.mean(np.linalg.norm(groups - x_r, axis=1)) / np.linalg.norm(x_r))
    assert mean_dist[0] > 1.5 * mean_dist[1] > 2.25 * mean_dist[2], mean_dist


def test_more_sketches_at_the_same_lambda_approach_the_ridge_solution(data):
    """Same lambda for every q (epsilon chosen by the accounting for q m rows): the q-sketch
    average concentrates around ridge_x. Mean over 40 seeds of the augmented error * q is the
    single-sketch error d / (m - d - 1) for every q."""
    a, b = data
    d, m, lam, delta = 3, 12, 0.05, 1e-6
    mean_dist = []
    for q in (1, 8, 64):
        eps = gaussian_sketch_epsilon(q * m, lam, delta, row_norm=1.0)
        errs, dists = [], []
        for s in range(40):
            res = private_lstsq(a, b, m=m, q=q, epsilon=eps, delta=delta, row_norm=1.0, rng=s)
            assert res.lam == pytest.approx(lam, rel=1e-12)
            errs.append(q * _augmented_error(a, b, lam, res.x, res.ridge_x))
            dists.append(np.linalg.norm(res.x - res.ridge_x) / np.linalg.norm(res.ridge_x))
        errs = np.array(errs)
        se = errs.std(ddof=1) / np.sqrt(errs.size)
        assert abs(errs.mean() - d / (m - d - 1)) < 4 * se
        mean_dist.append(np.mean(dists))
    assert mean_dist[0] > 2 * mean_dist[1] > 4 * mean_dist[2]


def test_private_lstsq_rejects_rows_above_the_bound(data):
    a, b = data
    with pytest.raises(InvalidInputError, match="row_norm"):
        private_lstsq(a, b, m=20, epsilon=1.0, row_norm=0.5)
    big = a.copy()
    big[7] = [2.0, 0.0, 0.0]
    with pytest.raises(InvalidInputError, match="clip or rescale"):
        private_lstsq(big, b, m=20, epsilon=1.0, row_norm=1.0)
    private_lstsq(a, b, m=20, epsilon=1.0, row_norm=1.0, rng=0)  # exactly at the bound: fine


@pytest.mark.parametrize(
    ("kwargs", "needle"),
    [
        ({"delta": 0.0}, "delta"),
        ({"delta": 1.0}, "delta"),
        ({"delta": -1e-6}, "delta"),
        ({"epsilon": 0.0}, "epsilon must be > 0"),
        ({"epsilon": -2.0}, "epsilon must be > 0"),
        ({"m": 4}, "m must be >= 5"),
        ({"q": 0}, "q must be >= 1"),
        ({"row_norm": 0.0}, "row_norm must be > 0"),
    ],
)
def test_private_lstsq_bad_input_raises(data, kwargs, needle):
    a, b = data
    args = {"m": 20, "epsilon": 1.0, **kwargs}
    with pytest.raises(InvalidInputError, match=needle):
        private_lstsq(a, b, **args)


def test_private_lstsq_bad_data_raises(data):
    a, b = data
    with pytest.raises(InvalidInputError, match="shape"):
        private_lstsq(a, b[:-1], m=20, epsilon=1.0)
    bad = a.copy()
    bad[0, 0] = np.inf
    with pytest.raises(InvalidInputError, match="NaN or inf"):
        private_lstsq(bad, b, m=20, epsilon=1.0)
