"""Anytime estimation from a partial arrived set (randomized Hadamard polar codes).

References:

* exact expectations by enumeration: the mean of the unbiased estimate over *all* m-subsets
  of a fixed code equals U, and its mean relative squared error equals
  (K - 1)(N - m) / (m (N - 1)) (the law needs no randomness but the subset);
* the least-squares law (K - r)/K, averaged exactly over all 2^K data sign patterns for
  equal-norm blocks (flipping data signs is the same as flipping the code's signs);
* Monte-Carlo over fresh codes and uniform arrival sets with stated tolerances: the mean
  estimate within 4 standard errors of U elementwise, the mean error within 4 standard
  errors and 10% of the prediction (the relative standard error is ~1.4% at 400 trials).
"""

from __future__ import annotations

import itertools
from fractions import Fraction

import numpy as np
import pytest

from frugalml.coded.anytime import Estimate, anytime_estimate, unbiased_error
from frugalml.coded.baselines import GaussianMDS
from frugalml.coded.polar import PolarCode
from frugalml.errors import InvalidInputError

N, K = 64, 16
METHODS = ("unbiased", "lstsq", "hybrid")


def predicted_unbiased(n: int, k: int, m: int) -> float:
    """(K - 1)(N - m) / (m (N - 1)), correctly rounded."""
    return float(Fraction((k - 1) * (n - m), m * (n - 1)))


def rel_sq_err(est: np.ndarray, u: np.ndarray) -> float:
    return float(np.sum((est - u) ** 2) / np.sum(u**2))


def subset_mask(n: int, idx) -> np.ndarray:
    mask = np.zeros(n, dtype=bool)
    mask[list(idx)] = True
    return mask


def erase(y: np.ndarray, mask: np.ndarray) -> np.ndarray:
    out = np.array(y, copy=True)
    out[~mask] = np.nan
    return out


def unequal_data(rng: np.random.Generator, k: int, p: int) -> np.ndarray:
    return rng.standard_normal((k, p)) * np.geomspace(0.2, 5.0, k)[:, None]


def equal_norm_data(rng: np.random.Generator, k: int, p: int) -> np.ndarray:
    u = rng.standard_normal((k, p))
    return u / np.linalg.norm(u, axis=1, keepdims=True)


# -- exact expectations by enumeration --------------------------------------------------------


@pytest.mark.parametrize(
    ("n", "k", "ms"),
    [(8, 1, range(1, 9)), (8, 3, range(1, 9)), (8, 8, range(1, 9)), (16, 5, (1, 3, 15))],
)
def test_unbiased_exact_expectation_over_all_subsets(n, k, ms):
    rng = np.random.default_rng(n * 10 + k)
    code = PolarCode(n, k, rng=k)
    u = unequal_data(rng, k, 2)
    y = code.encode(u)
    for m in ms:
        ests, errs = [], []
        for idx in itertools.combinations(range(n), m):
            mask = subset_mask(n, idx)
            est = anytime_estimate(code, erase(y, mask), mask, "unbiased")
            assert est.predicted_rel_error == predicted_unbiased(n, k, m)
            ests.append(est.blocks)
            errs.append(rel_sq_err(est.blocks, u))
        np.testing.assert_allclose(np.mean(ests, axis=0), u, atol=1e-12)
        assert np.mean(errs) == pytest.approx(predicted_unbiased(n, k, m), rel=1e-10, abs=1e-12)


def test_lstsq_law_exact_over_data_signs():
    """Mean over all 2^K sign flips of equal-norm data of the lstsq error is (K - r)/K."""
    n, k = 8, 4
    code = PolarCode(n, k, rng=3)
    u0 = equal_norm_data(np.random.default_rng(0), k, 3)
    signs = np.array(list(itertools.product([-1.0, 1.0], repeat=k)))
    checked = 0
    for bits in range(1, 2**n):
        mask = ((bits >> np.arange(n)) & 1).astype(bool)
        r = np.linalg.matrix_rank(code.generator[:, mask])
        errs = []
        for s in signs:
            u = s[:, None] * u0
            est = anytime_estimate(code, erase(code.encode(u), mask), mask, "lstsq")
            assert est.method == "lstsq" and est.n_arrived == int(mask.sum())
            errs.append(rel_sq_err(est.blocks, u))
            if r == k:
                assert est.exact and est.predicted_rel_error == 0.0
                assert errs[-1] <= 1e-20
            else:
                assert est.predicted_rel_error == (k - r) / k
                assert not est.exact
                np.testing.assert_allclose(est.blocks[est.known], u[est.known], atol=1e-10)
        if r < k:
            checked += 1
            assert np.mean(errs) == pytest.approx((k - r) / k, rel=1e-10)
    assert checked > 50


# -- Monte-Carlo laws -------------------------------------------------------------------------


def run_trials(u: np.ndarray, m: int, trials: int, methods: tuple[str, ...], seed: int):
    """Fresh PolarCode(rng=...) and a uniform m-subset per trial; estimates per method."""
    out = {meth: [] for meth in methods}
    extra = {"rank": [], "decoded_known": [], "decodable": []}
    for t in range(trials):
        code = PolarCode(N, K, rng=seed + t)
        rng = np.random.default_rng(seed + t + 7_000_000)
        mask = subset_mask(N, rng.choice(N, m, replace=False))
        y = erase(code.encode(u), mask)
        for meth in methods:
            out[meth].append(anytime_estimate(code, y, mask, meth))
        extra["rank"].append(np.linalg.matrix_rank(code.generator[:, mask]))
        dec = code.decode(y, mask)
        extra["decoded_known"].append((dec.known, dec.blocks))
        extra["decodable"].append(dec.complete)
    return out, extra


@pytest.mark.parametrize("m", [8, 16, 32, 48])
def test_unbiased_and_variance_law_monte_carlo(m):
    trials = 400
    u = unequal_data(np.random.default_rng(1), K, 3)
    res, _ = run_trials(u, m, trials, ("unbiased",), seed=100_000 * m)
    ests = np.array([e.blocks for e in res["unbiased"]])
    errs = np.array([rel_sq_err(e.blocks, u) for e in res["unbiased"]])
    pred = predicted_unbiased(N, K, m)
    for e in res["unbiased"]:
        assert e.predicted_rel_error == pred
        assert e.method == "unbiased" and e.n_arrived == m and not e.known.any()
        assert e.blocks.shape == u.shape
    # unbiased: elementwise within 4 standard errors of U
    se = ests.std(axis=0, ddof=1) / np.sqrt(trials)
    z = np.abs(ests.mean(axis=0) - u) / se
    assert z.max() <= 4.0, f"m={m}: mean estimate off by {z.max():.2f} standard errors"
    # aggregate: E||mean - U||^2 / ||U||^2 = pred / trials exactly
    agg = rel_sq_err(ests.mean(axis=0), u)
    assert agg <= 2.0 * pred / trials, f"m={m}: {agg:.3g} vs expected {pred / trials:.3g}"
    # variance law: within 4 standard errors and 10%
    se_err = errs.std(ddof=1) / np.sqrt(trials)
    assert abs(errs.mean() - pred) <= 4 * se_err, (errs.mean(), pred, se_err)
    assert errs.mean() == pytest.approx(pred, rel=0.10)


@pytest.mark.parametrize("m", [4, 8, 12])
def test_lstsq_law_monte_carlo(m):
    trials = 300
    u = equal_norm_data(np.random.default_rng(2), K, 4)
    res, extra = run_trials(u, m, trials, ("lstsq",), seed=200_000 * m)
    errs = np.array([rel_sq_err(e.blocks, u) for e in res["lstsq"]])
    preds = np.array([e.predicted_rel_error for e in res["lstsq"]])
    ranks = np.array(extra["rank"])
    np.testing.assert_array_equal(preds, (K - ranks) / K)
    se = errs.std(ddof=1) / np.sqrt(trials)
    assert abs(errs.mean() - preds.mean()) <= 4 * se
    assert errs.mean() == pytest.approx(preds.mean(), rel=0.10)


@pytest.mark.parametrize("m", [16, 24, 40])
def test_lstsq_exact_once_full_rank(m):
    u = unequal_data(np.random.default_rng(3), K, 2)
    res, extra = run_trials(u, m, 60, ("lstsq",), seed=300_000 * m)
    full = 0
    for est, r in zip(res["lstsq"], extra["rank"], strict=True):
        if r == K:
            full += 1
            assert est.exact and est.predicted_rel_error == 0.0
            assert rel_sq_err(est.blocks, u) <= 1e-20
        else:
            assert est.predicted_rel_error == (K - r) / K
    assert full > (0 if m == K else 50)


@pytest.mark.parametrize("m", [8, 16, 20, 24, 40])
def test_hybrid_monte_carlo(m):
    trials = 150
    u = unequal_data(np.random.default_rng(4), K, 3)
    res, extra = run_trials(u, m, trials, ("unbiased", "hybrid"), seed=400_000 * m)
    e_unb = np.array([rel_sq_err(e.blocks, u) for e in res["unbiased"]])
    e_hyb = np.array([rel_sq_err(e.blocks, u) for e in res["hybrid"]])
    for est, (known, blocks), ok, err in zip(
        res["hybrid"], extra["decoded_known"], extra["decodable"], e_hyb, strict=True
    ):
        assert est.method == "hybrid" and est.n_arrived == m
        np.testing.assert_array_equal(est.known, known)
        np.testing.assert_array_equal(est.blocks[known], blocks[known])
        k_rest = int((~known).sum())
        if ok:
            assert est.exact and est.predicted_rel_error == 0.0
            assert err <= 1e-20
        else:
            assert est.predicted_rel_error == pytest.approx(
                unbiased_error(N, k_rest, m) * k_rest / K
            )
    assert e_hyb.mean() <= e_unb.mean() * (1 + 1e-9), (e_hyb.mean(), e_unb.mean())
    if m >= 40:
        assert np.mean(extra["decodable"]) > 0.5


def test_hybrid_unknown_blocks_use_the_residual():
    """Unknown blocks = (N/m) G_{u,S} G_{u,S}^T U_u: the decoded blocks' contribution is
    subtracted, so changing the data of decoded blocks leaves the estimate of the rest alone."""
    rng = np.random.default_rng(5)
    hits = 0
    for t in range(40):
        code = PolarCode(N, K, rng=t)
        mask = subset_mask(N, rng.choice(N, 16, replace=False))
        known = code.known_blocks(mask)
        if known.all() or not known.any():
            continue
        hits += 1
        u1 = unequal_data(rng, K, 2)
        u2 = u1.copy()
        u2[known] = 100.0 * rng.standard_normal((int(known.sum()), 2))
        e1 = anytime_estimate(code, erase(code.encode(u1), mask), mask, "hybrid")
        e2 = anytime_estimate(code, erase(code.encode(u2), mask), mask, "hybrid")
        np.testing.assert_array_equal(e1.known, known)
        np.testing.assert_allclose(e1.blocks[known], u1[known], atol=1e-10)
        np.testing.assert_allclose(e2.blocks[known], u2[known], atol=1e-9)
        g_u = code.generator[~known][:, mask]
        ref = (N / 16) * g_u @ (g_u.T @ u1[~known])
        np.testing.assert_allclose(e1.blocks[~known], ref, atol=1e-10)
        np.testing.assert_allclose(e2.blocks[~known], e1.blocks[~known], atol=1e-8)
    assert hits >= 10


# -- edge cases and bad input -----------------------------------------------------------------


def test_unbiased_error_closed_form():
    assert unbiased_error(N, K, N) == 0.0
    assert unbiased_error(N, K, 0) == float("inf")
    assert unbiased_error(N, 1, 5) == 0.0
    assert unbiased_error(1, 1, 1) == 0.0
    for m in (1, 7, 63):
        assert unbiased_error(N, K, m) == predicted_unbiased(N, K, m)


def test_all_arrived_is_exact_for_every_method():
    code = PolarCode(N, K, rng=0)
    u = unequal_data(np.random.default_rng(0), K, 2)
    y = code.encode(u)
    mask = np.ones(N, dtype=bool)
    for meth in METHODS:
        est = anytime_estimate(code, y, mask, meth)
        assert est.predicted_rel_error == 0.0
        assert rel_sq_err(est.blocks, u) <= 1e-20
    assert anytime_estimate(code, y, mask).method == "hybrid"  # the default


@pytest.mark.parametrize("method", METHODS)
def test_nothing_arrived(method):
    code = PolarCode(16, 4, rng=0)
    y = np.full((16, 2, 3), np.nan)
    for mask in (np.zeros(16, dtype=bool), []):
        est = anytime_estimate(code, y, mask, method)
        assert isinstance(est, Estimate)
        assert est.predicted_rel_error == float("inf")
        assert est.blocks.shape == (4, 2, 3)
        assert np.all(est.blocks == 0)
        assert not est.known.any() and not est.exact and est.n_arrived == 0


@pytest.mark.parametrize("method", METHODS)
def test_erased_rows_never_leak(method):
    code = PolarCode(16, 4, rng=1)
    u = unequal_data(np.random.default_rng(1), 4, 5)
    mask = np.random.default_rng(1).random(16) < 0.5
    est = anytime_estimate(code, erase(code.encode(u), mask), mask, method)
    assert np.all(np.isfinite(est.blocks))


@pytest.mark.parametrize("method", ["unbiased", "hybrid"])
@pytest.mark.parametrize("kwargs", [{"kernel": "arikan"}, {"levels": 2}, {"levels": 0}])
def test_sketch_estimators_need_full_hadamard(method, kwargs):
    code = PolarCode(16, 4, rng=0, **kwargs)
    y = code.encode(np.ones((4, 2)))
    with pytest.raises(InvalidInputError):
        anytime_estimate(code, y, np.ones(16, dtype=bool), method)
    # least squares works for any kernel and depth
    est = anytime_estimate(code, y, np.ones(16, dtype=bool), "lstsq")
    np.testing.assert_allclose(est.blocks, np.ones((4, 2)), atol=1e-10)


def test_bad_inputs():
    code = PolarCode(16, 4, rng=0)
    y = code.encode(np.ones((4, 2)))
    mask = np.ones(16, dtype=bool)
    with pytest.raises(InvalidInputError):
        anytime_estimate(code, y, mask, "median")
    mds = GaussianMDS(16, 4, rng=0)
    with pytest.raises(InvalidInputError):
        anytime_estimate(mds, mds.encode(np.ones((4, 2))), mask, "lstsq")
    for meth in METHODS:
        with pytest.raises(InvalidInputError):
            anytime_estimate(code, y[:15], mask, meth)
        with pytest.raises(InvalidInputError):
            anytime_estimate(code, y, mask[:15], meth)
        bad = y.copy()
        bad[2, 0] = np.inf
        with pytest.raises(InvalidInputError):
            anytime_estimate(code, bad, mask, meth)


@pytest.mark.parametrize("method", METHODS)
def test_float32_dtype_preserved(method):
    code = PolarCode(16, 4, rng=0)
    u = np.random.default_rng(0).standard_normal((4, 3)).astype(np.float32)
    y = code.encode(u)
    mask = np.zeros(16, dtype=bool)
    mask[:10] = True
    got = anytime_estimate(code, y, mask, method).blocks.dtype
    assert got == np.float32, (
        f"{method} estimate of float32 outputs came back as {got} (hybrid inherits the "
        "float64 upcast of PolarCode.decode)"
    )
