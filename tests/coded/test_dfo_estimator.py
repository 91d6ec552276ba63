"""Coded gradient estimates (frugalml.coded.dfo.estimator) against independent references:
brute-force central differences along each direction of the rotated basis, exact gradients of
test functions, and every arrival pattern of small codes."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.optimize import approx_fprime

from frugalml.coded import PolarCode
from frugalml.coded.dfo import (
    CodedDirections,
    LogisticLoss,
    Quadratic,
    Rosenbrock,
    estimate_gradient,
    evaluate_differences,
    sample_directions,
)
from frugalml.errors import InvalidInputError


def cosine(a, b):
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


def brute_force_gradient(f, x, v, sigma):
    """sum_i CD_i v_i / ||v_i||^2 with the central difference along each v_i evaluated
    directly (no code): the full-information estimate over the rotated basis V."""
    cd = np.array([(f(x + sigma * vi) - f(x - sigma * vi)) / (2 * sigma) for vi in v])
    return (v / np.sum(v * v, axis=1, keepdims=True)).T @ cd


# -- directions -------------------------------------------------------------------------------


@pytest.mark.parametrize("d", [8, 13, 32])
def test_orthogonal_directions_are_an_orthogonal_basis_of_norm_sqrt_d(d):
    v = sample_directions("orthogonal", d, d, rng=0)
    np.testing.assert_allclose(v @ v.T, d * np.eye(d), atol=1e-9)


def test_hadamard_directions_are_pm1_and_orthogonal_for_powers_of_two():
    v = sample_directions("hadamard", 16, 16, rng=1)
    assert set(np.unique(v)) == {-1.0, 1.0}
    np.testing.assert_allclose(v @ v.T, 16 * np.eye(16))
    w = sample_directions("hadamard", 10, 12, rng=1)  # d not a power of two: norms still sqrt d
    np.testing.assert_allclose(np.sum(w * w, axis=1), 12.0)


@pytest.mark.parametrize("kind", ["orthogonal", "hadamard", "gaussian"])
def test_directions_are_isotropic(kind):
    """E[v v^T] = I (Monte-Carlo over 4000 rows; entries of the mean have sd <~ 0.03)."""
    d = 8
    v = np.concatenate([sample_directions(kind, 8, d, rng=s) for s in range(500)])
    np.testing.assert_allclose(v.T @ v / v.shape[0], np.eye(d), atol=0.1)


def test_more_directions_than_dimension_stack_blocks():
    v = sample_directions("orthogonal", 20, 8, rng=3)
    assert v.shape == (20, 8)
    np.testing.assert_allclose(v[:8] @ v[:8].T, 8 * np.eye(8), atol=1e-9)


# -- exactness --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def quad():
    return Quadratic(16, condition=20.0, rng=4)


def test_coded_estimate_equals_brute_force_for_every_decodable_pattern_n8(quad):
    """All 256 arrival patterns of an (8, 4) polar code in d = 4: exact where SC decodes, and
    where SC cannot but the arrived rows of G have rank K (least squares); else an estimate."""
    f = Quadratic(4, condition=5.0, rng=1)
    x = f.x0
    coder = CodedDirections(4, 4, 8, code="polar", directions="orthogonal", rng=2)
    v, w = coder.draw()
    vals = evaluate_differences(f, x, w, 1e-3)
    ref = brute_force_gradient(f, x, v, 1e-3)
    np.testing.assert_allclose(ref, f.gradient(x), rtol=1e-8)
    n_dec = n_lstsq = 0
    for bits in itertools.product([False, True], repeat=8):
        mask = np.array(bits)
        est = coder.estimate(vals, mask, v)
        if coder.decodable(mask):
            n_dec += 1
            assert est.exact and est.method == "sc"
            np.testing.assert_allclose(est.gradient, ref, rtol=1e-8, atol=1e-10)
        elif np.linalg.matrix_rank(coder.generator[:, mask]) == 4:
            n_lstsq += 1
            assert est.exact and est.method == "lstsq"
            np.testing.assert_allclose(est.gradient, ref, rtol=1e-8, atol=1e-10)
        else:
            assert not est.exact and est.method.startswith("anytime")
    assert 0 < n_dec < 256 and n_lstsq > 0


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 10_000), code=st.sampled_from(["polar", "mds"]))
def test_coded_estimate_exact_with_20_percent_erasures(quad, seed, code):
    """K = d = 16 orthogonal directions, N = 64, a random 20% of workers erased."""
    rng = np.random.default_rng(seed)
    mask = np.ones(64, dtype=bool)
    mask[rng.choice(64, 13, replace=False)] = False
    coder = CodedDirections(16, 16, 64, code=code, directions="orthogonal", rng=seed)
    v, w = coder.draw()
    vals = evaluate_differences(quad, quad.x0, w, 1e-2)
    est = coder.estimate(vals, mask, v)
    if coder.decodable(mask):
        assert est.exact
        ref = brute_force_gradient(quad, quad.x0, v, 1e-2)
        np.testing.assert_allclose(est.gradient, ref, rtol=1e-8, atol=1e-9)
        np.testing.assert_allclose(est.gradient, quad.gradient(quad.x0), rtol=1e-7, atol=1e-8)
    if code == "mds":
        assert coder.decodable(mask)  # any K of N decode


def test_cosine_coded_vs_drop_stragglers_on_same_pattern(quad):
    """Goal of the issue: 20% stragglers, K = d: coded cosine >= 0.999, dropping does not."""
    rng = np.random.default_rng(7)
    mask = np.ones(64, dtype=bool)
    mask[rng.choice(64, 13, replace=False)] = False
    g = quad.gradient(quad.x0)
    for code in ("polar", "mds"):
        est = estimate_gradient(quad, quad.x0, n_workers=64, n_directions=16, code=code,
                                arrived=mask, rng=5)  # fmt: skip
        assert est.exact and cosine(est.gradient, g) >= 0.999
    for directions in ("gaussian", "orthogonal"):
        drop = estimate_gradient(quad, quad.x0, n_workers=64, code="none",
                                 directions=directions, arrived=mask, rng=5)  # fmt: skip
        assert drop.method == "drop" and drop.n_arrived == 51
        assert cosine(drop.gradient, g) < 0.99


def test_non_quadratic_matches_brute_force_to_second_order():
    """Logistic loss: the coded decode is the brute-force estimate up to O(sigma^2)."""
    f = LogisticLoss(8, 200, rng=2)
    x = np.full(8, 0.3)
    coder = CodedDirections(8, 8, 16, code="polar", rng=1)
    v, w = coder.draw()
    errs = []
    for sigma in (1e-2, 1e-3):
        est = coder.estimate(evaluate_differences(f, x, w, sigma), np.ones(16, bool), v)
        ref = brute_force_gradient(f, x, v, sigma)
        errs.append(np.linalg.norm(est.gradient - ref) / np.linalg.norm(ref))
    assert errs[1] < 1e-6 and errs[1] < errs[0] / 20  # second order: /100 per decade
    assert cosine(est.gradient, f.gradient(x)) > 0.999999


def test_k_less_than_d_gives_scaled_projection(quad):
    coder = CodedDirections(16, 4, 16, code="mds", rng=3)
    v, w = coder.draw()
    est = coder.estimate(evaluate_differences(quad, quad.x0, w, 1e-3), np.ones(16, bool), v)
    q = v / np.sqrt(16)  # orthonormal rows
    proj = q.T @ (q @ quad.gradient(quad.x0))
    np.testing.assert_allclose(est.gradient, (16 / 4) * proj, rtol=1e-8)


def test_nonfinite_values_are_erasures(quad):
    coder = CodedDirections(16, 16, 64, code="mds", rng=0)
    v, w = coder.draw()
    vals = evaluate_differences(quad, quad.x0, w, 1e-3)
    vals[[1, 5, 9]] = [np.nan, np.inf, -np.inf]
    est = coder.estimate(vals, np.ones(64, bool), v)
    assert est.n_erased == 3 and est.n_arrived == 61 and est.exact
    assert list(np.flatnonzero(est.erased)) == [1, 5, 9]
    np.testing.assert_allclose(est.gradient, quad.gradient(quad.x0), rtol=1e-7)
    assert "3 erased" in est.summary()


def test_objective_nan_region_is_reported_as_erasure():
    """f is NaN where x[0] > 5 + t: exactly the workers whose +-sigma w_j leave the region."""
    sigma = 0.1
    coder = CodedDirections(4, 4, 16, code="mds", rng=1)
    v, w = coder.draw()
    x = np.full(4, 5.0)
    t = float(np.median(np.abs(sigma * w[:, 0])))

    def f(z):
        return np.nan if z[0] > 5.0 + t else float(z @ z)

    expected = np.abs(sigma * w[:, 0]) > t
    est = coder.estimate(evaluate_differences(f, x, w, sigma), np.ones(16, bool), v)
    np.testing.assert_array_equal(est.erased, expected)
    assert est.n_arrived == 16 - expected.sum() >= 4
    if est.exact:
        np.testing.assert_allclose(est.gradient, 2 * x, rtol=1e-6)


def test_anytime_estimate_below_decodability_and_lstsq_decoder(quad):
    coder = CodedDirections(16, 16, 32, code="polar", rng=1)
    v, w = coder.draw()
    vals = evaluate_differences(quad, quad.x0, w, 1e-3)
    mask = np.zeros(32, bool)
    mask[:10] = True  # fewer than K: never decodable
    est = coder.estimate(vals, mask, v)
    assert not est.exact and est.method == "anytime-hybrid"
    lst = CodedDirections(16, 16, 32, code="polar", decoder="lstsq", rng=1)
    v, w = lst.draw()
    vals = evaluate_differences(quad, quad.x0, w, 1e-3)
    order = np.random.default_rng(0).permutation(32)
    for m in range(16, 33):
        mask = np.zeros(32, bool)
        mask[order[:m]] = True
        if lst.decodable(mask):
            assert np.linalg.matrix_rank(lst.generator[:, mask]) == 16
            est = lst.estimate(vals, mask, v)
            assert est.method == "lstsq" and est.exact
            np.testing.assert_allclose(est.gradient, quad.gradient(quad.x0), rtol=1e-6)
            break
    else:
        pytest.fail("never decodable")


def test_sc_decodability_matches_the_polar_code():
    coder = CodedDirections(8, 8, 16, code="polar", rng=2)
    assert isinstance(coder.code, PolarCode)
    rng = np.random.default_rng(0)
    for _ in range(50):
        mask = rng.random(16) < 0.7
        assert coder.decodable(mask) == coder.code.decodable(mask)


def test_forward_differences_first_order():
    f = Quadratic(6, rng=2)
    est = estimate_gradient(f, f.x0, n_workers=8, n_directions=6, code="mds",
                            antithetic=False, sigma=1e-6, rng=0)  # fmt: skip
    np.testing.assert_allclose(est.gradient, f.gradient(f.x0), rtol=1e-4)


# -- test functions ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "f", [Quadratic(5, rng=0), Rosenbrock(5), LogisticLoss(5, 100, rng=0)], ids=repr
)
def test_function_gradients_match_finite_differences(f):
    x = np.linspace(-0.7, 0.9, f.dim)
    num = approx_fprime(x, f, 1e-7)
    np.testing.assert_allclose(f.gradient(x), num, rtol=1e-4, atol=1e-5)
    batch = np.stack([x, 2 * x])
    np.testing.assert_allclose(f(batch), [f(x), f(2 * x)])


def test_function_optima():
    assert Rosenbrock(6)(np.ones(6)) == 0.0
    q = Quadratic(5, rng=0)
    assert q(q.x_star) == pytest.approx(0.0, abs=1e-15)
    lg = LogisticLoss(5, 100, rng=0)
    assert np.linalg.norm(lg.gradient(lg.x_star)) < 1e-8
    assert lg(lg.x_star) == pytest.approx(lg.f_star)


# -- bad input --------------------------------------------------------------------------------


def _q(x):
    return float(x @ x)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"sigma": 0.0}, "sigma must be > 0"),
        ({"sigma": -1.0}, "sigma must be > 0"),
        ({"n_directions": 9, "n_workers": 8}, "exceeds n_workers"),
        ({"code": "turbo"}, "code must be one of"),
        ({"directions": "sobol"}, "directions must be one of"),
        ({"n_workers": 12, "n_directions": 4}, "power of two"),
        ({"code": "none", "n_directions": 4, "n_workers": 8}, "must equal"),
        ({"code": "replication", "n_directions": 3, "n_workers": 8}, "divisible"),
        ({"decoder": "ml"}, "decoder must be one of"),
    ],
)
def test_bad_estimator_input(kwargs, match):
    kw = {"n_workers": 8, "n_directions": 4, **kwargs}
    with pytest.raises(InvalidInputError, match=match):
        estimate_gradient(_q, np.ones(4), **kw)


@pytest.mark.parametrize(
    "x, match", [(np.ones((2, 2)), "dimension"), (np.array([1.0, np.nan]), "NaN or inf")]
)
def test_bad_point(x, match):
    with pytest.raises(InvalidInputError, match=match):
        estimate_gradient(_q, x, n_workers=8, n_directions=2)


@pytest.mark.parametrize(
    "objective, batched, match",
    [
        (lambda x: "high", False, "real number"),
        (lambda x: np.ones(3), False, "scalar"),
        (lambda x: np.ones((x.shape[0], 2)), True, r"shape \(16,\)"),
        (lambda x: None, True, "batched objective"),
    ],
)
def test_bad_objective_output(objective, batched, match):
    with pytest.raises(InvalidInputError, match=match):
        estimate_gradient(objective, np.ones(4), n_workers=8, n_directions=4, batched=batched)


def test_bad_estimate_arguments():
    coder = CodedDirections(4, 4, 8, code="mds", rng=0)
    v, _ = coder.draw()
    with pytest.raises(InvalidInputError, match="shape"):
        coder.estimate(np.ones(7), np.ones(8, bool), v)
    with pytest.raises(InvalidInputError, match="shape"):
        coder.estimate(np.ones(8), np.ones(8, bool), v[:3])
