"""Residual quantization (:mod:`frugalml.quant.residual`): the two-term approximation against
its own reconstruction and the single-term error, the kernel ranking against per-kernel MMSE
runs, and the cross-layer selection against a brute-force sort with hand-counted MACs."""

from __future__ import annotations

import numpy as np
import pytest

from frugalml.errors import InvalidInputError
from frugalml.quant.mmse import mmse_scale
from frugalml.quant.residual import (
    ResidualPlan,
    rank_kernels,
    residual_quantize,
    select_residual,
)


def conv_weight(rng, shape=(24, 8, 3, 3)):
    return rng.standard_normal(shape) * rng.lognormal(size=(shape[0],) + (1,) * (len(shape) - 1))


@pytest.mark.parametrize(("bits", "factor"), [(2, 3.0), (3, 6.0), (4, 10.0), (8, 1000.0)])
def test_residual_lowers_mse_by_a_large_factor(bits, factor):
    rng = np.random.default_rng(bits)
    w = conv_weight(rng)
    rt = residual_quantize(w, bits)
    approx = rt.dequantize()
    assert approx.shape == w.shape
    per_kernel = np.mean((w - approx) ** 2, axis=(1, 2, 3))
    np.testing.assert_allclose(per_kernel, rt.mse, rtol=1e-9)
    single = mmse_scale(w, bits, per_channel=True)
    np.testing.assert_allclose(rt.mse1, single.mse, rtol=1e-9)
    assert np.all(rt.mse <= rt.mse1)
    assert rt.mse1.sum() / rt.mse.sum() > factor
    qmax = 2 ** (bits - 1) - 1
    for codes in (rt.codes1, rt.codes2):
        assert codes.dtype == np.int8 and codes.shape == w.shape
        assert np.abs(codes).max() <= qmax
    assert np.all(rt.scale1 > 0) and np.all(rt.scale2 > 0)
    assert "second term" in rt.summary()


def test_residual_mask_and_linear_shape():
    rng = np.random.default_rng(5)
    w = rng.standard_normal((6, 20))
    mask = np.array([True, False, True, False, False, True])
    rt = residual_quantize(w, 4, mask=mask)
    np.testing.assert_array_equal(rt.mask, mask)
    assert np.all(rt.scale2[~mask] == 0) and np.all(rt.codes2[~mask] == 0)
    np.testing.assert_allclose(rt.mse[~mask], rt.mse1[~mask])
    assert np.all(rt.mse[mask] < rt.mse1[mask])
    # kernels without a second term are exactly the single-term quantization
    single = mmse_scale(w, 4, per_channel=True)
    np.testing.assert_allclose(rt.scale1[~mask], single.scale[~mask])
    approx = rt.dequantize()
    np.testing.assert_allclose(approx[~mask], single.fake_quantize(w)[~mask])
    with pytest.raises(InvalidInputError, match="mask"):
        residual_quantize(w, 4, mask=np.ones(5, dtype=bool))
    with pytest.raises(InvalidInputError, match="boolean"):
        residual_quantize(w, 4, mask=np.ones(6))


def test_residual_other_scale_methods_and_zero_kernel():
    rng = np.random.default_rng(6)
    w = rng.standard_normal((4, 30))
    w[2] = 0.0
    for method in ("minmax", "percentile", "aciq", "mmse"):
        rt = residual_quantize(w, 3, scale_method=method)
        assert rt.mse[2] == 0.0
        assert np.all(rt.mse <= rt.mse1)
        assert rt.method == method
    with pytest.raises(InvalidInputError, match="per tensor only"):
        residual_quantize(w, 3, scale_method="histogram")
    with pytest.raises(InvalidInputError, match="scale_method"):
        residual_quantize(w, 3, scale_method="kl")


def test_rank_kernels_matches_per_kernel_mmse():
    rng = np.random.default_rng(7)
    w = conv_weight(rng, (10, 4, 5))
    w[3] = 0.0
    w[5, 0, 0] = 40.0  # one outlier makes kernel 5 hard to quantize
    rel = rank_kernels(w, 3)
    assert rel.shape == (10,)
    for k in range(10):
        if k == 3:
            assert rel[k] == 0.0
            continue
        mse = float(mmse_scale(w[k], 3).mse)
        assert rel[k] == pytest.approx(mse / np.mean(w[k] ** 2), rel=1e-6)
    assert np.argmax(rel) == 5


def brute_force_selection(rels, k):
    flat = [(-r, li, i) for li, rs in enumerate(rels) for i, r in enumerate(rs)]
    flat.sort()
    return {(li, i) for _, li, i in flat[:k]}


@pytest.mark.parametrize("fraction", [0.0, 0.1, 0.25, 0.5, 1.0])
def test_select_residual_fraction_picks_worst_across_layers(fraction):
    rng = np.random.default_rng(8)
    rels = {"conv1": rng.random(16), "conv2": rng.random(32) * 0.5, "fc": rng.random(10) * 2}
    macs = {"conv1": 27 * 1024, "conv2": 144 * 256, "fc": 512}
    plan = select_residual(rels, macs, fraction=fraction)
    assert isinstance(plan, ResidualPlan)
    n = 58
    k = int(np.floor(fraction * n + 0.5))
    want = brute_force_selection(list(rels.values()), k)
    got = {(li, i) for li, name in enumerate(rels) for i in np.flatnonzero(plan.masks[name])}
    assert got == want
    assert plan.n_selected == k and plan.n_kernels == n
    assert plan.total_macs == 16 * 27 * 1024 + 32 * 144 * 256 + 10 * 512
    extra = sum(int(plan.masks[name].sum()) * macs[name] for name in rels)
    assert plan.extra_macs == extra
    assert plan.overhead == pytest.approx(extra / plan.total_macs)
    assert "residual plan" in plan.summary()


def test_select_residual_threshold_and_ties():
    rels = {"a": np.array([0.1, 0.5, 0.5]), "b": np.array([0.5, 0.01])}
    macs = {"a": 10, "b": 100}
    plan = select_residual(rels, macs, mse_threshold=0.2)
    np.testing.assert_array_equal(plan.masks["a"], [False, True, True])
    np.testing.assert_array_equal(plan.masks["b"], [True, False])
    assert plan.extra_macs == 2 * 10 + 100 and plan.total_macs == 30 + 200
    # ties broken by layer order, then index: 2 of the three 0.5s
    plan = select_residual(rels, macs, fraction=0.4)
    np.testing.assert_array_equal(plan.masks["a"], [False, True, True])
    np.testing.assert_array_equal(plan.masks["b"], [False, False])
    none = select_residual(rels, macs, mse_threshold=1.0)
    assert none.extra_macs == 0 and none.n_selected == 0


def test_select_residual_end_to_end_with_rank_kernels():
    rng = np.random.default_rng(9)
    layers = {"l1": conv_weight(rng, (12, 3, 3, 3)), "l2": conv_weight(rng, (20, 12))}
    rels = {name: rank_kernels(w, 4) for name, w in layers.items()}
    plan = select_residual(rels, {"l1": 27, "l2": 12}, fraction=0.25)
    total_before = total_after = 0.0
    for name, w in layers.items():
        rt = residual_quantize(w, 4, mask=plan.masks[name])
        total_before += rt.mse1.sum()
        total_after += rt.mse.sum()
    assert total_after < total_before


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({}, "exactly one"),
        ({"fraction": 0.1, "mse_threshold": 0.1}, "exactly one"),
        ({"fraction": 1.5}, "fraction"),
        ({"mse_threshold": -1.0}, "mse_threshold"),
    ],
)
def test_select_residual_bad_criteria(kwargs, match):
    with pytest.raises(InvalidInputError, match=match):
        select_residual({"a": np.ones(3)}, {"a": 5}, **kwargs)


def test_select_residual_bad_layers():
    with pytest.raises(InvalidInputError, match="same layers"):
        select_residual({"a": np.ones(3)}, {"b": 5}, fraction=0.5)
    with pytest.raises(InvalidInputError, match="non-negative integer"):
        select_residual({"a": np.ones(3)}, {"a": -5}, fraction=0.5)
    with pytest.raises(InvalidInputError, match="NaN"):
        select_residual({"a": np.array([np.nan])}, {"a": 5}, fraction=0.5)
    with pytest.raises(InvalidInputError, match=">= 0"):
        select_residual({"a": np.array([-0.1])}, {"a": 5}, fraction=0.5)


def test_bad_weights():
    with pytest.raises(InvalidInputError, match=r"bits must be 2\.\.8"):
        residual_quantize(np.ones((2, 2)), 1)
    with pytest.raises(InvalidInputError, match=r"bits must be 2\.\.8"):
        rank_kernels(np.ones((2, 2)), 9)
    with pytest.raises(InvalidInputError, match="NaN"):
        residual_quantize(np.array([[1.0, np.nan]]), 4)
    with pytest.raises(InvalidInputError, match="at least 1"):
        rank_kernels(np.zeros((0, 3)), 4)
