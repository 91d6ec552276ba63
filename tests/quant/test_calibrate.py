"""Activation calibration (:mod:`frugalml.quant.calibrate`): the streaming histogram against
``numpy.histogram`` of all the data, the closed-form per-bin error against quadrature, and the
histogram MMSE clip against the exact MMSE clip of the raw data."""

from __future__ import annotations

import math

import numpy as np
import pytest

from frugalml.errors import InvalidInputError
from frugalml.quant.calibrate import (
    ActivationHistogram,
    _primitive,
    calibrate_activation,
    histogram_mse,
    mmse_from_histogram,
)
from frugalml.quant.mmse import mmse_scale
from frugalml.quant.uniform import Grid, quant_mse


def raw_mse(x, res):
    return float(
        quant_mse(
            x,
            np.atleast_1d(res.scale),
            res.grid,
            zero_points=np.atleast_1d(res.zero_point),
        )[0]
    )


def test_histogram_streaming_equals_numpy_histogram():
    rng = np.random.default_rng(0)
    batches = [rng.uniform(0, 1, 1000), rng.uniform(0, 3.7, 1000), rng.normal(0, 9, 1000)]
    batches[1][:5] = 0.0
    h = ActivationHistogram(bins=64)
    for b in batches:
        h.update(b)
    x = np.concatenate(batches)
    assert h.count == x.size and h.zeros == 5
    assert h.min == x.min() and h.max == x.max()
    assert h.symmetric and h.r >= np.abs(x).max()
    # the range only ever doubled from the first batch's
    assert math.log2(h.r / batches[0].max()) == pytest.approx(round(math.log2(h.r / 1.0)), abs=1)
    # the first batch's maximum set the range: it sits in the bin just below that edge
    nz = x[x != 0]
    nz[nz == batches[0].max()] = np.nextafter(batches[0].max(), 0.0)
    want, _ = np.histogram(nz, bins=h.edges)
    np.testing.assert_array_equal(h.counts, want)
    assert h.counts.sum() + h.zeros == h.count
    assert "64 bins" in h.summary()


def test_histogram_one_sided_until_negative():
    h = ActivationHistogram(bins=16)
    h.update(np.array([0.0, 1.0, 2.0]))
    assert not h.symmetric and h.r == 2.0
    h.update(np.array([7.5]))
    assert h.r == 8.0
    h.update(np.array([-0.5]))
    assert h.symmetric and h.r == 8.0
    want, _ = np.histogram([1.0, np.nextafter(2.0, 0), 7.5, -0.5], bins=h.edges)
    np.testing.assert_array_equal(h.counts, want)
    assert h.zeros == 1


def test_histogram_all_zero_first_then_data():
    h = ActivationHistogram(bins=16)
    h.update(np.zeros(10))
    assert h.r == 0.0 and h.zeros == 10
    h.update(np.array([0.5, 1.0]))
    assert h.r == 1.0 and h.counts.sum() == 2


def test_histogram_accepts_torch_tensors():
    torch = pytest.importorskip("torch")
    h = ActivationHistogram()
    h.update(torch.randn(3, 5, requires_grad=True))
    assert h.count == 15


def test_histogram_bad_bins():
    with pytest.raises(InvalidInputError, match="multiple of 4"):
        ActivationHistogram(bins=30)
    with pytest.raises(InvalidInputError, match="bins"):
        ActivationHistogram(bins=4)


@pytest.mark.parametrize("qlo,qhi", [(-7, 7), (0, 15), (-3, 12)])
def test_primitive_matches_quadrature(qlo, qhi):
    """H(x) = int_0^x e(t)^2 dt for the clipped quantizer, against adaptive quadrature."""
    import scipy.integrate

    s = 0.37

    def err2(t):
        return (t - s * min(max(round(t / s), qlo), qhi)) ** 2

    points = [s * (k + 0.5) for k in range(qlo - 1, qhi + 1)]
    for x in (-9.0, -2.6, -0.1, 0.0, 0.05, 0.4, 1.3, 2.59, 4.0, 7.7):
        lo, hi = sorted((0.0, x))
        brk = [p for p in points if lo < p < hi]
        val, _ = scipy.integrate.quad(err2, lo, hi, points=brk or None, limit=400)
        val = val if x >= 0 else -val
        got = _primitive(np.array([x]), np.array([[s]]), np.array([[qlo]]), np.array([[qhi]]))
        assert got[0, 0] == pytest.approx(val, rel=1e-8, abs=1e-12)


def test_histogram_mse_close_to_raw_mse():
    rng = np.random.default_rng(1)
    x = rng.standard_normal(100_000)
    h = ActivationHistogram().update(x)
    res = mmse_scale(x, 4)
    assert histogram_mse(h, res) == pytest.approx(float(res.mse), rel=2e-3)


@pytest.mark.parametrize("kind", ["gauss", "relu", "laplace", "shifted"])
@pytest.mark.parametrize("bits", [2, 4, 8])
def test_histogram_mmse_close_to_exact_mmse(kind, bits):
    rng = np.random.default_rng(bits)
    gen = {
        "gauss": lambda n: rng.standard_normal(n),
        "relu": lambda n: np.maximum(rng.standard_normal(n), 0.0),
        "laplace": lambda n: rng.laplace(size=n),
        "shifted": lambda n: rng.standard_normal(n) + 1.0,
    }[kind]
    batches = [gen(10_000) * (1 + 0.5 * i) for i in range(4)]
    x = np.concatenate(batches)
    signed = False if kind == "shifted" else None
    res = calibrate_activation(batches, bits, signed=signed)
    assert res.method == "mmse-histogram" and res.scale.shape == ()
    assert res.grid.signed == (kind in ("gauss", "laplace"))
    exact = mmse_scale(x, bits, signed=res.grid.signed)
    got = raw_mse(x, res)
    assert got <= float(exact.mse) * 1.01
    assert float(res.mse) == pytest.approx(got, rel=0.02)


def test_calibrate_methods():
    rng = np.random.default_rng(2)
    batches = [np.maximum(rng.standard_normal((8, 100)), 0) for _ in range(3)]
    x = np.concatenate([b.ravel() for b in batches])
    mm = calibrate_activation(batches, 8, "minmax")
    assert mm.grid == Grid(8, signed=False)
    assert float(mm.scale) == pytest.approx(x.max() / 255)
    pc = calibrate_activation(batches, 8, "percentile", percentile=99.0)
    assert float(pc.scale) * 255 == pytest.approx(np.percentile(x, 99.0), rel=0.02)
    ac = calibrate_activation(batches, 4, "aciq")
    assert ac.method == "aciq-laplace" and float(ac.scale) > 0
    signed = calibrate_activation([rng.standard_normal(5000)], 4, "percentile", percentile=99)
    assert signed.grid.signed
    ref = np.percentile(np.abs(rng.standard_normal(200_000)), 99.0)
    assert float(signed.scale) * 7 == pytest.approx(ref, rel=0.05)
    asym = calibrate_activation([rng.standard_normal(5000) + 2], 4, "minmax", signed=False)
    assert asym.grid == Grid(4, signed=False) and int(asym.zero_point) > 0
    for method in ("mmse", "minmax", "percentile", "aciq"):
        r = calibrate_activation(batches, 4, method)
        assert raw_mse(x, r) == pytest.approx(float(r.mse), rel=0.05)
    # MMSE on the histogram beats the other calibrators on the raw data too
    best = raw_mse(x, calibrate_activation(batches, 4, "mmse"))
    for method in ("minmax", "percentile", "aciq"):
        assert best <= raw_mse(x, calibrate_activation(batches, 4, method)) * 1.001


def test_calibrate_single_array_and_torch():
    rng = np.random.default_rng(3)
    x = rng.standard_normal(1000)
    a = calibrate_activation(x, 4)
    b = calibrate_activation([x], 4)
    assert float(a.scale) == float(b.scale)
    torch = pytest.importorskip("torch")
    c = calibrate_activation([torch.from_numpy(x)], 4)
    assert float(c.scale) == pytest.approx(float(a.scale))


def test_calibrate_errors():
    with pytest.raises(InvalidInputError, match="empty"):
        calibrate_activation([], 4)
    with pytest.raises(InvalidInputError, match="empty"):
        calibrate_activation([np.zeros(0)], 4)
    with pytest.raises(InvalidInputError, match="NaN"):
        calibrate_activation([np.ones(3), np.array([1.0, np.nan])], 4)
    with pytest.raises(InvalidInputError, match=r"bits must be 2\.\.8"):
        calibrate_activation([np.ones(3)], 1)
    with pytest.raises(InvalidInputError, match=r"bits must be 2\.\.8"):
        calibrate_activation([np.ones(3)], 9)
    with pytest.raises(InvalidInputError, match="method"):
        calibrate_activation([np.ones(3)], 4, "kl")
    with pytest.raises(InvalidInputError, match="iterable"):
        calibrate_activation(5, 4)
    with pytest.raises(InvalidInputError, match="empty"):
        mmse_from_histogram(ActivationHistogram(), 4)


def test_all_zero_activations():
    res = calibrate_activation([np.zeros(10)], 4)
    assert float(res.scale) == 1.0 and float(res.mse) == 0.0
