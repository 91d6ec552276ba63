"""Uniform grids (:mod:`frugalml.quant.uniform`): the grid ranges, quantize/dequantize against
direct formulas, and :func:`quant_mse` against a per-candidate direct computation (per tensor,
per channel, with zero points, across chunk boundaries)."""

from __future__ import annotations

import numpy as np
import pytest

from frugalml.errors import InvalidInputError
from frugalml.quant import uniform
from frugalml.quant.uniform import (
    Grid,
    check_bits,
    dequantize,
    fake_quantize,
    quant_mse,
    quantize,
)


def direct_mse(x, s, qmin, qmax, z=0):
    codes = np.clip(np.round(x / s) + z, qmin, qmax)
    return float(np.mean((x - s * (codes - z)) ** 2))


@pytest.mark.parametrize("bits", range(2, 9))
def test_grid_ranges(bits):
    g = Grid(bits)
    assert (g.qmin, g.qmax) == (-(2 ** (bits - 1) - 1), 2 ** (bits - 1) - 1)
    assert g.levels == 2**bits - 1
    u = Grid(bits, signed=False)
    assert (u.qmin, u.qmax, u.levels) == (0, 2**bits - 1, 2**bits)
    assert str(bits) in g.summary()


@pytest.mark.parametrize("bad", [1, 9, 0, -3, 2.5, True, "4", None])
def test_bad_bits(bad):
    with pytest.raises(InvalidInputError, match=r"bits must be 2\.\.8"):
        check_bits(bad)
    with pytest.raises(InvalidInputError, match=r"bits must be 2\.\.8"):
        Grid(bad)


def test_check_bits_accepts_integral():
    assert check_bits(np.int64(5)) == 5
    assert check_bits(4.0) == 4


def test_quantize_matches_formula_and_round_trip():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((6, 5, 3)).astype(np.float32)
    scale = rng.uniform(0.1, 0.5, size=(6, 1, 1))
    g = Grid(4)
    codes = quantize(x, scale, g)
    assert codes.dtype == np.int32
    want = np.clip(np.rint(x.astype(np.float64) / scale), -7, 7)
    np.testing.assert_array_equal(codes, want)
    deq = dequantize(codes, scale, g)
    np.testing.assert_allclose(deq, codes * scale)
    fq = fake_quantize(x, scale, g)
    assert fq.dtype == np.float32
    np.testing.assert_allclose(fq, (codes * scale).astype(np.float32))
    # values already on the grid are fixed points
    np.testing.assert_allclose(fake_quantize(deq, scale, g), deq)


def test_quantize_zero_point_unsigned():
    g = Grid(3, signed=False)
    x = np.array([-1.0, -0.26, 0.0, 0.24, 0.9, 5.0])
    codes = quantize(x, 0.25, g, zero_point=2)
    np.testing.assert_array_equal(codes, [0, 1, 2, 3, 6, 7])
    np.testing.assert_allclose(dequantize(codes, 0.25, g, 2), [-0.5, -0.25, 0, 0.25, 1.0, 1.25])


def test_rounding_ties_to_even():
    g = Grid(8)
    np.testing.assert_array_equal(quantize([0.5, 1.5, 2.5, -0.5], 1.0, g), [0, 2, 2, 0])


def test_quantize_errors():
    g = Grid(4)
    with pytest.raises(InvalidInputError, match="NaN"):
        quantize([1.0, np.nan], 0.1, g)
    with pytest.raises(InvalidInputError, match="> 0"):
        quantize([1.0], 0.0, g)
    with pytest.raises(InvalidInputError, match="broadcast"):
        quantize(np.ones((4, 3)), np.ones(4), g)
    with pytest.raises(InvalidInputError, match="zero_point"):
        quantize([1.0], 0.1, Grid(4, signed=False), zero_point=16)
    with pytest.raises(InvalidInputError, match="integers"):
        quantize([1.0], 0.1, g, zero_point=0.5)
    with pytest.raises(InvalidInputError, match="codes must be integers"):
        dequantize([8], 0.1, g)
    with pytest.raises(InvalidInputError, match="Grid"):
        quantize([1.0], 0.1, 4)


@pytest.mark.parametrize("signed", [True, False])
def test_quant_mse_per_tensor_matches_direct(signed):
    rng = np.random.default_rng(1)
    x = rng.laplace(size=(37, 11))
    g = Grid(3, signed=signed)
    scales = rng.uniform(0.05, 2.0, size=9)
    zps = rng.integers(0, g.qmax + 1, size=9) if not signed else None
    got = quant_mse(x, scales, g, zero_points=zps)
    assert got.shape == (9,)
    for i, s in enumerate(scales):
        z = 0 if zps is None else zps[i]
        assert got[i] == pytest.approx(direct_mse(x, s, g.qmin, g.qmax, z), rel=1e-12)


def test_quant_mse_per_channel_matches_direct():
    rng = np.random.default_rng(2)
    x = rng.standard_normal((5, 4, 3)) * np.arange(1, 6)[:, None, None]
    g = Grid(4)
    scales = rng.uniform(0.05, 1.0, size=(7, 5))
    got = quant_mse(x, scales, g, axis=0)
    assert got.shape == (7, 5)
    for i in range(7):
        for c in range(5):
            want = direct_mse(x[c], scales[i, c], g.qmin, g.qmax)
            assert got[i, c] == pytest.approx(want, rel=1e-12)


def test_quant_mse_chunking(monkeypatch):
    """Tiny chunks (several candidates per chunk, then column blocks) give the same answer."""
    rng = np.random.default_rng(3)
    x = rng.standard_normal((6, 50))
    g = Grid(2)
    scales = rng.uniform(0.1, 2.0, size=(13, 6))
    full = quant_mse(x, scales, g, axis=0)
    for chunk in (1000, 64, 7):
        monkeypatch.setattr(uniform, "_CHUNK_ELEMS", chunk)
        np.testing.assert_allclose(quant_mse(x, scales, g, axis=0), full, rtol=1e-12)
        flat = quant_mse(x, scales[:, 0], g)
        want = [direct_mse(x, s, g.qmin, g.qmax) for s in scales[:, 0]]
        np.testing.assert_allclose(flat, want, rtol=1e-12)


def test_quant_mse_float32_input_accumulates_in_float64():
    rng = np.random.default_rng(4)
    x = rng.standard_normal(100_000).astype(np.float32)
    g = Grid(8)
    got = quant_mse(x, np.array([0.03]), g)[0]
    want = direct_mse(x.astype(np.float64), 0.03, g.qmin, g.qmax)
    assert got == pytest.approx(want, rel=1e-10)


def test_quant_mse_errors():
    g = Grid(4)
    x = np.ones((3, 4))
    with pytest.raises(InvalidInputError, match=r"shape \(m,\)"):
        quant_mse(x, np.ones((2, 3)), g)
    with pytest.raises(InvalidInputError, match=r"shape \(m, 3\)"):
        quant_mse(x, np.ones((2, 4)), g, axis=0)
    with pytest.raises(InvalidInputError, match="axis"):
        quant_mse(x, np.ones(2), g, axis=1)
    with pytest.raises(InvalidInputError, match="NaN"):
        quant_mse([1.0, np.inf], np.ones(2), g)
    with pytest.raises(InvalidInputError, match="at least 1 element"):
        quant_mse(np.zeros(0), np.ones(2), g)
    with pytest.raises(InvalidInputError, match="> 0"):
        quant_mse(x, np.array([1.0, -1.0]), g)
    with pytest.raises(InvalidInputError, match="zero_points"):
        quant_mse(x, np.ones(2), g, zero_points=np.zeros(3))
