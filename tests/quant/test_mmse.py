"""MMSE scales (:mod:`frugalml.quant.mmse`) against independent references: a brute-force dense
scan of scales (computed here, not with quant_mse), the min-max scale, per-row searches, and a
brute-force scan over (zero point, scale) for asymmetric grids."""

from __future__ import annotations

import numpy as np
import pytest

from frugalml.errors import InvalidInputError
from frugalml.quant.mmse import MMSEQuantizer, ScaleResult, mmse_scale
from frugalml.quant.uniform import Grid

N = 10_000


def sample(kind, size, rng):
    if kind == "gauss":
        return rng.standard_normal(size)
    if kind == "laplace":
        return rng.laplace(size=size)
    if kind == "uniform":
        return rng.uniform(-1.0, 1.0, size)
    if kind == "student2":  # heavy tails: finite mean, infinite variance
        return rng.standard_t(2.0, size)
    raise AssertionError(kind)


def direct_mse(x, s, qmin, qmax, z=0.0):
    """Mean squared error of each scale in ``s`` (1-D), computed naively in blocks."""
    out = []
    for block in np.array_split(np.asarray(s, dtype=np.float64), max(1, len(s) // 50)):
        codes = np.clip(np.round(x[None, :] / block[:, None]) + z, qmin, qmax) - z
        out.append(np.mean((x[None, :] - block[:, None] * codes) ** 2, axis=1))
    return np.concatenate(out)


def dense_scan(x, grid, n=2500):
    top = np.abs(x).max()
    clips = np.concatenate([np.geomspace(top * 1e-4, top, n), np.linspace(top / n, top, n)])
    mse = direct_mse(x, clips / grid.qmax, grid.qmin, grid.qmax)
    return float(mse.min())


@pytest.mark.parametrize("kind", ["gauss", "laplace", "uniform", "student2"])
@pytest.mark.parametrize("bits", [2, 3, 4, 8])
def test_per_tensor_matches_dense_scan(kind, bits):
    rng = np.random.default_rng(100 * bits + len(kind))
    x = sample(kind, N, rng)
    res = mmse_scale(x, bits)
    grid = Grid(bits)
    best = dense_scan(x, grid)
    assert float(res.mse) <= best * (1 + 1e-3)
    # the reported MSE is the exact error of the reported scale
    exact = direct_mse(x, [float(res.scale)], grid.qmin, grid.qmax)[0]
    assert float(res.mse) == pytest.approx(exact, rel=1e-10)
    minmax = direct_mse(x, [np.abs(x).max() / grid.qmax], grid.qmin, grid.qmax)[0]
    assert float(res.mse) <= minmax
    assert res.scale.shape == () and res.mse.shape == () and int(res.zero_point) == 0
    assert res.method == "mmse" and res.grid == grid


@pytest.mark.parametrize("case", ["cauchy", "outlier"])
def test_extreme_tails_match_dense_scan(case):
    """Cauchy data, and a Gaussian with one 40-sigma outlier searched on a 4-point coarse grid
    (the optimum clip then lies below the coarse grid's first point)."""
    rng = np.random.default_rng(7)
    grid = Grid(4)
    if case == "cauchy":
        x = rng.standard_cauchy(N)
        res = mmse_scale(x, 4)
    else:
        x = rng.standard_normal(N)
        x[0] = 40.0
        res = mmse_scale(x, 4, n_grid=4)
        assert float(res.scale) * grid.qmax < 0.25 * 40.0
    assert float(res.mse) <= dense_scan(x, grid) * (1 + 1e-3)


@pytest.mark.parametrize("seed", range(4))
def test_per_channel_random_shapes_never_worse_than_minmax(seed):
    rng = np.random.default_rng(seed)
    ndim = int(rng.integers(2, 5))
    shape = tuple(int(v) for v in rng.integers(2, 9, size=ndim))
    kinds = ["gauss", "laplace", "uniform", "student2"]
    w = sample(kinds[seed], shape, rng) * rng.lognormal(size=(shape[0],) + (1,) * (ndim - 1))
    bits = int(rng.integers(2, 9))
    res = mmse_scale(w, bits, per_channel=True)
    grid = Grid(bits)
    assert res.scale.shape == res.mse.shape == res.zero_point.shape == (shape[0],)
    for c in range(shape[0]):
        row = w[c].reshape(-1)
        minmax = direct_mse(row, [np.abs(row).max() / grid.qmax], grid.qmin, grid.qmax)[0]
        exact = direct_mse(row, [res.scale[c]], grid.qmin, grid.qmax)[0]
        assert res.mse[c] == pytest.approx(exact, rel=1e-9, abs=1e-300)
        assert res.mse[c] <= minmax * (1 + 1e-12)


def test_per_channel_equals_independent_rows():
    rng = np.random.default_rng(11)
    w = rng.standard_normal((6, 400)) * np.array([0.01, 0.1, 1.0, 10.0, 3.0, 0.5])[:, None]
    res = mmse_scale(w, 4, per_channel=True)
    for c in range(6):
        row = mmse_scale(w[c], 4)
        assert res.mse[c] == pytest.approx(float(row.mse), rel=1e-6)
        grid = Grid(4)
        assert res.mse[c] <= dense_scan(w[c], grid, n=1500) * (1 + 1e-3)


def test_refinement_stages_only_improve():
    rng = np.random.default_rng(12)
    x = rng.laplace(size=5000)
    grid = Grid(3)
    minmax = direct_mse(x, [np.abs(x).max() / grid.qmax], grid.qmin, grid.qmax)[0]
    none = float(mmse_scale(x, 3, refine="none").mse)
    golden = float(mmse_scale(x, 3, refine="golden").mse)
    alt = float(mmse_scale(x, 3, refine="alternating").mse)
    both = float(mmse_scale(x, 3, refine="both").mse)
    assert both <= golden <= none <= minmax
    assert alt <= none
    # coarse grid with only 4 points: refinements still reach the optimum
    assert float(mmse_scale(x, 3, n_grid=4).mse) <= dense_scan(x, grid) * (1 + 1e-3)


def test_alternating_result_is_a_least_squares_fixed_point():
    """With refine='alternating' the returned scale is (close to) <x,q>/<q,q> of its codes."""
    rng = np.random.default_rng(13)
    x = rng.standard_normal(20_000)
    res = mmse_scale(x, 4, refine="alternating", max_refine=200)
    s = float(res.scale)
    q = np.clip(np.round(x / s), -7, 7)
    assert s == pytest.approx(np.dot(x, q) / np.dot(q, q), rel=1e-6)


def test_unsigned_non_negative_data():
    rng = np.random.default_rng(14)
    x = np.maximum(rng.standard_normal(N), 0.0)
    res = mmse_scale(x, 4, signed=False)
    grid = Grid(4, signed=False)
    assert res.grid == grid and int(res.zero_point) == 0
    top = x.max()
    clips = np.linspace(top / 4000, top, 4000)
    best = direct_mse(x, clips / grid.qmax, 0, grid.qmax).min()
    assert float(res.mse) <= best * (1 + 1e-3)
    # the unsigned grid has twice the resolution of the signed one on this data
    assert float(res.mse) < float(mmse_scale(x, 4).mse) / 2


@pytest.mark.parametrize("bits", [2, 4])
def test_asymmetric_matches_brute_force(bits):
    rng = np.random.default_rng(15 + bits)
    x = rng.standard_normal(4000) * 0.7 + 1.0  # mostly positive, some negatives
    res = mmse_scale(x, bits, signed=False)
    grid = Grid(bits, signed=False)
    assert res.grid == grid
    z = int(res.zero_point)
    exact = direct_mse(x, [float(res.scale)], 0, grid.qmax, z)[0]
    assert float(res.mse) == pytest.approx(exact, rel=1e-10)
    best = np.inf
    span = x.max() - x.min()
    scales = np.linspace(span / grid.qmax / 20, span / grid.qmax * 1.2, 1500)
    for zz in range(grid.qmax + 1):
        best = min(best, direct_mse(x, scales, 0, grid.qmax, zz).min())
    assert float(res.mse) <= best * (1 + 1e-3)
    lo, hi = x.min(), x.max()
    s_mm = (hi - lo) / grid.qmax
    minmax = direct_mse(x, [s_mm], 0, grid.qmax, np.clip(np.round(-lo / s_mm), 0, grid.qmax))
    assert float(res.mse) <= minmax[0]
    # and it beats the symmetric signed grid on shifted data
    assert float(res.mse) < float(mmse_scale(x, bits).mse)


def test_asymmetric_per_channel():
    rng = np.random.default_rng(16)
    w = rng.standard_normal((5, 300)) + np.array([-2.0, -0.5, 0.0, 0.5, 3.0])[:, None]
    w[2] = np.abs(w[2])  # a channel without negatives
    res = mmse_scale(w, 3, signed=False, per_channel=True)
    for c in range(5):
        exact = direct_mse(w[c], [res.scale[c]], 0, 7, res.zero_point[c])[0]
        assert res.mse[c] == pytest.approx(exact, rel=1e-10)
    assert res.zero_point[2] == 0


def test_zero_channel_and_constant_data():
    w = np.zeros((3, 10))
    w[1] = np.linspace(-1, 1, 10)
    res = mmse_scale(w, 4, per_channel=True)
    assert res.scale[0] == 1.0 and res.scale[2] == 1.0
    assert res.mse[0] == 0.0 and res.mse[2] == 0.0
    assert res.scale[1] > 0
    const = mmse_scale(np.full(50, 2.5), 8)
    assert float(const.mse) < 1e-20
    assert float(mmse_scale(np.zeros(7), 2, signed=False).scale) == 1.0


def test_scale_result_methods_and_quantizer():
    rng = np.random.default_rng(17)
    w = rng.standard_normal((4, 3, 2)).astype(np.float32)
    q = MMSEQuantizer(4, per_channel=True)
    with pytest.raises(InvalidInputError, match="not fitted"):
        q.quantize(w)
    assert q.fit(w) is q
    assert q.scale_.shape == (4,) and q.mse_.shape == (4,) and q.zero_point_.shape == (4,)
    codes = q.quantize(w)
    assert codes.dtype == np.int32 and codes.shape == w.shape
    assert codes.min() >= -7 and codes.max() <= 7
    deq = q.dequantize(codes)
    np.testing.assert_allclose(deq, codes * q.scale_[:, None, None])
    fq = q.fake_quantize(w)
    assert fq.dtype == np.float32
    np.testing.assert_allclose(fq, deq, rtol=1e-6)
    per_elem = np.mean((w.astype(np.float64) - deq) ** 2, axis=(1, 2))
    np.testing.assert_allclose(per_elem, q.mse_, rtol=1e-9)
    with pytest.raises(InvalidInputError, match="channels"):
        q.quantize(np.ones((5, 3, 2)))
    assert "MMSEQuantizer" in repr(q)
    res = q.result_
    assert isinstance(res, ScaleResult) and res.per_channel
    assert "4 channels" in res.summary()
    assert "mmse" in mmse_scale(w, 3).summary()


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"bits": 1}, r"bits must be 2\.\.8"),
        ({"bits": 9}, r"bits must be 2\.\.8"),
        ({"bits": 4, "x": [1.0, np.nan]}, "NaN"),
        ({"bits": 4, "x": np.zeros(0)}, "at least 1 element"),
        ({"bits": 4, "n_grid": 2}, "n_grid"),
        ({"bits": 4, "refine": "newton"}, "refine"),
        ({"bits": 4, "max_refine": -1}, "max_refine"),
        ({"bits": 4, "x": 3.0, "per_channel": True}, "channel"),
    ],
)
def test_bad_inputs(kwargs, match):
    kwargs = dict(kwargs)
    x = kwargs.pop("x", np.ones(10))
    with pytest.raises(InvalidInputError, match=match):
        mmse_scale(x, **kwargs)
