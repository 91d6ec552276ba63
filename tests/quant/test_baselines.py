"""Baseline scales (:mod:`frugalml.quant.baselines`): min-max and percentile against direct
formulas, ACIQ's clip ratios against the values published by Banner et al. (2019) and against
a brute-force minimisation of the same expected error, torch's HistogramObserver wrapper, and
the method registry."""

from __future__ import annotations

import math

import numpy as np
import pytest

from frugalml.errors import InvalidInputError
from frugalml.quant.baselines import (
    SCALE_METHODS,
    aciq_clip_ratio,
    aciq_scale,
    histogram_observer_scale,
    minmax_scale,
    percentile_scale,
)
from frugalml.quant.mmse import mmse_scale
from frugalml.quant.uniform import Grid


def direct_mse(x, s, qmin, qmax, z=0.0):
    codes = np.clip(np.round(x / s) + z, qmin, qmax) - z
    return float(np.mean((x - s * codes) ** 2))


# Banner, Nahshan & Soudry (2019): alpha*/b for a Laplace(0, b) prior with 2^M levels
PUBLISHED_LAPLACE = {2: 2.83, 3: 3.89, 4: 5.03, 5: 6.20, 6: 7.41, 7: 8.64, 8: 9.89}
# and alpha*/sigma for a Gaussian prior
PUBLISHED_GAUSS = {2: 1.71, 3: 2.15, 4: 2.55, 5: 2.94, 6: 3.29, 7: 3.61, 8: 3.92}


@pytest.mark.parametrize("bits", [2, 3, 4, 5, 6, 7, 8])
def test_aciq_ratio_matches_published_values(bits):
    assert aciq_clip_ratio(bits, "laplace") == pytest.approx(PUBLISHED_LAPLACE[bits], rel=0.02)
    assert aciq_clip_ratio(bits, "gauss") == pytest.approx(PUBLISHED_GAUSS[bits], rel=0.02)


@pytest.mark.parametrize("convention", ["paper", "signed", "unsigned", "asymmetric"])
@pytest.mark.parametrize("prior", ["laplace", "gauss"])
def test_aciq_ratio_minimises_expected_error_by_brute_force(convention, prior):
    """Dense scan of the expected error, with the clipping noise by numerical quadrature."""
    import scipy.integrate

    bits = 3
    steps = {"paper": 4.0, "signed": 3.0, "unsigned": 7.0, "asymmetric": 3.5}[convention]
    if prior == "laplace":

        def pdf(t):
            return 0.5 * math.exp(-abs(t))
    else:

        def pdf(t):
            return math.exp(-0.5 * t * t) / math.sqrt(2 * math.pi)

    def expected(a):
        tail, _ = scipy.integrate.quad(lambda t: (t - a) ** 2 * pdf(t), a, a + 60.0)
        return 2 * tail + (a / steps) ** 2 / 12

    coarse = np.linspace(0.5, 8.0, 76)
    centre = coarse[np.argmin([expected(a) for a in coarse])]
    fine = np.linspace(centre - 0.1, centre + 0.1, 201)
    best = fine[np.argmin([expected(a) for a in fine])]
    assert aciq_clip_ratio(bits, prior, convention=convention) == pytest.approx(best, abs=2e-3)


def test_aciq_scale_laplace_data():
    rng = np.random.default_rng(0)
    x = rng.laplace(scale=0.3, size=200_000)
    res = aciq_scale(x, 4)
    b = np.mean(np.abs(x - x.mean()))
    clip = aciq_clip_ratio(4, convention="signed") * b + abs(x.mean())
    assert float(res.scale) == pytest.approx(clip / 7, rel=1e-9)
    assert res.method == "aciq-laplace"
    # on data that really is Laplace, ACIQ is within a few percent of the MMSE optimum
    best = float(mmse_scale(x, 4).mse)
    assert best <= float(res.mse) <= 1.05 * best
    g = aciq_scale(x, 4, prior="gauss")
    assert g.method == "aciq-gauss" and float(g.mse) > float(res.mse)


def test_aciq_unsigned_and_asymmetric():
    rng = np.random.default_rng(1)
    relu = np.maximum(rng.laplace(size=50_000), 0.0)
    res = aciq_scale(relu, 4, signed=False)
    pos = relu[relu > 0]
    clip = min(aciq_clip_ratio(4, convention="unsigned") * pos.mean(), relu.max())
    assert float(res.scale) == pytest.approx(clip / 15, rel=1e-9)
    assert int(res.zero_point) == 0
    shifted = rng.laplace(size=50_000) + 1.5
    asym = aciq_scale(shifted, 4, signed=False)
    assert 0 < int(asym.zero_point) < 15
    grid = Grid(4, signed=False)
    exact = direct_mse(shifted, float(asym.scale), 0, 15, int(asym.zero_point))
    assert float(asym.mse) == pytest.approx(exact, rel=1e-10)
    assert float(asym.mse) < float(minmax_scale(shifted, 4, signed=False).mse)
    assert asym.grid == grid


def test_minmax_exact():
    x = np.array([[-3.0, 1.0, 0.5], [0.2, 0.4, -0.1]])
    res = minmax_scale(x, 3)
    assert float(res.scale) == pytest.approx(1.0)
    pc = minmax_scale(x, 3, per_channel=True)
    np.testing.assert_allclose(pc.scale, [1.0, 0.4 / 3])
    for c in range(2):
        assert pc.mse[c] == pytest.approx(direct_mse(x[c], pc.scale[c], -3, 3), rel=1e-12)
    uns = minmax_scale(np.abs(x), 3, signed=False)
    assert float(uns.scale) == pytest.approx(3.0 / 7)
    asym = minmax_scale(x, 3, signed=False)  # range [-3, 1] on 0..7
    assert float(asym.scale) == pytest.approx(4.0 / 7)
    assert int(asym.zero_point) == round(3.0 / (4.0 / 7))


def test_percentile():
    rng = np.random.default_rng(2)
    x = rng.standard_normal((3, 1000))
    res = percentile_scale(x, 4, percentile=99.0)
    assert float(res.scale) == pytest.approx(np.percentile(np.abs(x), 99.0) / 7)
    pc = percentile_scale(x, 4, percentile=95.0, per_channel=True)
    np.testing.assert_allclose(pc.scale, np.percentile(np.abs(x), 95.0, axis=1) / 7)
    assert float(percentile_scale(x, 4, percentile=100).scale) == pytest.approx(
        float(minmax_scale(x, 4).scale)
    )
    asym = percentile_scale(x + 1.0, 4, percentile=99.0, signed=False)
    lo, hi = np.percentile(x + 1.0, [1.0, 99.0])
    assert float(asym.scale) == pytest.approx((hi - lo) / 15)
    sparse = np.zeros(1000)
    sparse[:3] = [1.0, -2.0, 0.5]
    assert float(percentile_scale(sparse, 4, percentile=50).scale) == pytest.approx(2.0 / 7)
    for bad in (0, -1, 101, "high", True):
        with pytest.raises(InvalidInputError, match="percentile"):
            percentile_scale(x, 4, percentile=bad)


@pytest.mark.parametrize(
    "data",
    ["gauss", "laplace", "uniform", "student"],
)
@pytest.mark.parametrize("per_channel", [False, True])
def test_mmse_beats_every_baseline(data, per_channel):
    rng = np.random.default_rng(3)
    shape = (8, 2000)
    x = {
        "gauss": lambda: rng.standard_normal(shape),
        "laplace": lambda: rng.laplace(size=shape),
        "uniform": lambda: rng.uniform(-1, 1, shape),
        "student": lambda: rng.standard_t(3.0, shape),
    }[data]()
    for bits in (2, 4):
        best = mmse_scale(x, bits, per_channel=per_channel).mse
        for name in ("minmax", "percentile", "aciq"):
            other = SCALE_METHODS[name](x, bits, signed=True, per_channel=per_channel).mse
            assert np.all(best <= other * (1 + 1e-9)), (name, bits)


def test_histogram_observer():
    pytest.importorskip("torch")
    rng = np.random.default_rng(4)
    x = rng.standard_normal(20_000).astype(np.float32)
    res = histogram_observer_scale(x, 8)
    assert res.method == "histogram" and res.grid == Grid(8)
    assert int(res.zero_point) == 0
    assert 0 < float(res.scale) <= np.abs(x).max() / 127 * 1.01
    assert float(res.mse) == pytest.approx(
        direct_mse(x.astype(np.float64), float(res.scale), -127, 127), rel=1e-9
    )
    assert float(mmse_scale(x, 8).mse) <= float(res.mse)
    uns = histogram_observer_scale(np.abs(x), 4, signed=False)
    assert uns.grid == Grid(4, signed=False) and 0 <= int(uns.zero_point) <= 15
    asym = SCALE_METHODS["histogram"](x + 1.0, 4, signed=False, per_channel=False)
    assert 0 <= int(asym.zero_point) <= 15
    with pytest.raises(InvalidInputError, match="per tensor only"):
        SCALE_METHODS["histogram"](x.reshape(100, 200), 4, signed=True, per_channel=True)


def test_registry_common_signature():
    assert set(SCALE_METHODS) == {"mmse", "minmax", "percentile", "aciq", "histogram"}
    x = np.random.default_rng(5).standard_normal((4, 50))
    for name, fn in SCALE_METHODS.items():
        if name == "histogram":
            continue
        res = fn(x, 3, signed=True, per_channel=True)
        assert res.scale.shape == (4,) and np.all(res.scale > 0)
        assert np.all(np.isfinite(res.mse))


@pytest.mark.parametrize("fn", [minmax_scale, percentile_scale, aciq_scale])
def test_bad_inputs(fn):
    with pytest.raises(InvalidInputError, match=r"bits must be 2\.\.8"):
        fn(np.ones(4), 1)
    with pytest.raises(InvalidInputError, match=r"bits must be 2\.\.8"):
        fn(np.ones(4), 9)
    with pytest.raises(InvalidInputError, match="NaN"):
        fn(np.array([1.0, math.nan]), 4)
    with pytest.raises(InvalidInputError, match="at least 1"):
        fn(np.zeros(0), 4)
    with pytest.raises(InvalidInputError, match="prior"):
        aciq_scale(np.ones(4), 4, prior="cauchy")
    with pytest.raises(InvalidInputError, match="convention"):
        aciq_clip_ratio(4, convention="other")


def test_zero_data_gives_unit_scale():
    for name in ("minmax", "percentile", "aciq", "mmse"):
        res = SCALE_METHODS[name](np.zeros((2, 5)), 4, signed=True, per_channel=True)
        np.testing.assert_array_equal(res.scale, [1.0, 1.0])
        np.testing.assert_array_equal(res.mse, [0.0, 0.0])
