"""Tests of the error-compensated (GPTQ / OBQ) weight rounding, frugalml.quant.gptq, and of
quantize_model(rounding="gptq")."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

torch = pytest.importorskip("torch")
from torch import nn  # noqa: E402

from frugalml.errors import InvalidInputError  # noqa: E402
from frugalml.quant.convert import quantize_model  # noqa: E402
from frugalml.quant.gptq import (  # noqa: E402
    GramAccumulator,
    error_compensated_codes,
    error_compensated_residual,
    fit_layer,
    input_columns,
    nearest_codes,
    output_error,
    refit_scales,
    row_output_error,
)
from frugalml.quant.mmse import mmse_scale  # noqa: E402
from frugalml.quant.modules import quantize_layer  # noqa: E402
from frugalml.quant.uniform import Grid  # noqa: E402


def correlated_layer(out=48, n=96, rows=2000, seed=0, bits=4):
    """Weight, inputs with strongly correlated features, their Gram and MMSE scales."""
    rng = np.random.default_rng(seed)
    Z = rng.standard_normal((rows, n // 4))
    X = Z @ rng.standard_normal((n // 4, n)) + 0.1 * rng.standard_normal((rows, n))
    W = rng.standard_normal((out, n)) * 0.1
    scale = np.asarray(mmse_scale(W, bits, per_channel=True).scale, dtype=np.float64)
    return W, X, X.T @ X, scale, Grid(bits)


def out_err(W, Q, scale, X):
    """||(W - s Q) X^T||^2."""
    return float((((W - Q * scale[:, None]) @ X.T) ** 2).sum())


# ------------------------------------------------------------------------- pure function
@pytest.mark.parametrize("bits", [2, 3, 4, 8])
def test_gptq_beats_nearest_on_correlated_inputs(bits):
    W, X, H, scale, grid = correlated_layer(bits=bits, seed=bits)
    q = error_compensated_codes(W, H, scale, grid)
    qn = nearest_codes(W, scale, grid)
    assert q.shape == W.shape and q.dtype == np.int8
    assert q.min() >= grid.qmin and q.max() <= grid.qmax
    e_gptq, e_near = out_err(W, q, scale, X), out_err(W, qn, scale, X)
    assert e_gptq < 0.8 * e_near
    # the helpers measure the same quantity
    assert row_output_error(W, q * scale[:, None], H).sum() == pytest.approx(e_gptq, rel=1e-8)
    rel = output_error(W, q * scale[:, None], H)
    assert rel == pytest.approx(e_gptq / float(((W @ X.T) ** 2).sum()), rel=1e-8)


def test_identity_and_diagonal_gram_give_nearest_rounding_exactly():
    W, _, _, scale, grid = correlated_layer()
    qn = nearest_codes(W, scale, grid)
    np.testing.assert_array_equal(error_compensated_codes(W, np.eye(W.shape[1]), scale, grid), qn)
    d = np.random.default_rng(1).uniform(0.1, 10.0, W.shape[1])
    np.testing.assert_array_equal(error_compensated_codes(W, np.diag(d), scale, grid), qn)
    np.testing.assert_array_equal(
        error_compensated_codes(W, np.eye(W.shape[1]), scale, grid, damp=0.0, block=5), qn
    )
    # the nearest codes are those of the quantized layers (round half to even, clipping)
    lin = nn.Linear(W.shape[1], W.shape[0])
    with torch.no_grad():
        lin.weight.copy_(torch.as_tensor(W))
    ref = quantize_layer(lin, mmse_scale(W, 4, per_channel=True)).w_codes.numpy()
    s32 = scale.astype(np.float32).astype(np.float64)
    np.testing.assert_array_equal(nearest_codes(W, s32, grid), ref)


def test_block_size_does_not_change_the_result():
    W, X, H, scale, grid = correlated_layer(out=40, n=300, seed=3)
    ref = error_compensated_codes(W, H, scale, grid, block=128)
    for block in (1, 7, 300, 1000):
        q = error_compensated_codes(W, H, scale, grid, block=block)
        assert np.mean(q != ref) <= 1e-3  # equal up to float ties
        assert np.abs(q.astype(int) - ref).max() <= 1
        assert out_err(W, q, scale, X) == pytest.approx(out_err(W, ref, scale, X), rel=1e-3)


def test_dead_inputs_are_rounded_to_nearest():
    W, X, _, scale, grid = correlated_layer(seed=4)
    dead = np.zeros(W.shape[1], dtype=bool)
    dead[[0, 5, 17, 50, 95]] = True
    X = X.copy()
    X[:, dead] = 0.0
    H = X.T @ X
    q = error_compensated_codes(W, H, scale, grid)
    qn = nearest_codes(W, scale, grid)
    np.testing.assert_array_equal(q[:, dead], qn[:, dead])
    assert out_err(W, q, scale, X) < out_err(W, qn, scale, X)
    # no live input at all: nearest rounding everywhere, also without damping
    zero = np.zeros_like(H)
    np.testing.assert_array_equal(error_compensated_codes(W, zero, scale, grid), qn)
    np.testing.assert_array_equal(error_compensated_codes(W, zero, scale, grid, damp=0.0), qn)


def test_singular_gram_and_zero_scales():
    W, X, _, scale, grid = correlated_layer(rows=20, seed=5)  # rank 20 < 96 inputs
    H = X.T @ X
    q = error_compensated_codes(W, H, scale, grid, damp=0.0)  # damping raised automatically
    assert q.min() >= grid.qmin and q.max() <= grid.qmax
    s = scale.copy()
    s[3] = 0.0
    q = error_compensated_codes(W, H, s, grid)
    assert not q[3].any()


def test_refit_and_fit_layer():
    W, _, H, scale, grid = correlated_layer(seed=6)
    q = error_compensated_codes(W, H, scale, grid)
    t = refit_scales(W, q, H, scale)
    assert np.all(t > 0)
    before = row_output_error(W, q * scale[:, None], H)
    after = row_output_error(W, q * t[:, None], H)
    assert np.all(after <= before + 1e-12 * before.max())
    assert after.sum() < before.sum()
    fit = fit_layer(W, H, scale, grid)
    np.testing.assert_array_equal(fit.codes, q)
    np.testing.assert_allclose(fit.scale, t)
    np.testing.assert_allclose(fit.row_err, after, rtol=1e-6, atol=1e-9 * before.max())
    near = row_output_error(W, nearest_codes(W, scale, grid) * scale[:, None], H)
    np.testing.assert_allclose(fit.row_err_nearest, near, rtol=1e-6)
    assert fit.rel_err < fit.rel_err_nearest
    plain = fit_layer(W, H, scale, grid, refit=False)
    np.testing.assert_array_equal(plain.scale, scale)
    assert fit.rel_err <= plain.rel_err


def test_error_compensated_residual_lowers_the_output_error():
    W, _, H, scale, grid = correlated_layer(seed=7)
    fit = fit_layer(W, H, scale, grid)
    rt = error_compensated_residual(W, H, fit.codes, fit.scale, grid)
    assert rt.mask.all() and rt.codes2.min() >= grid.qmin and rt.codes2.max() <= grid.qmax
    two = row_output_error(W, rt.dequantize(), H)
    assert two.sum() < 0.3 * fit.row_err.sum()
    assert np.all(rt.mse <= rt.mse1 * 1.5)


def test_bad_arguments():
    W, _, H, scale, grid = correlated_layer()
    with pytest.raises(InvalidInputError):
        error_compensated_codes(W, H[:-1, :-1], scale, grid)
    with pytest.raises(InvalidInputError):
        error_compensated_codes(W, H, scale[:-1], grid)
    with pytest.raises(InvalidInputError):
        error_compensated_codes(W, H, -scale, grid)
    with pytest.raises(InvalidInputError):
        error_compensated_codes(W, H, scale, 4)
    with pytest.raises(InvalidInputError):
        error_compensated_codes(W, H, scale, grid, block=0)
    with pytest.raises(InvalidInputError):
        error_compensated_codes(W, H, scale, grid, damp=-1.0)
    bad = H.copy()
    bad[0, 0] = np.nan
    with pytest.raises(InvalidInputError):
        error_compensated_codes(W, bad, scale, grid)
    with pytest.raises(InvalidInputError):
        error_compensated_codes(W, -np.eye(W.shape[1]), scale, grid)
    # codes outside the grid are refused by the quantized layers
    lin = nn.Linear(W.shape[1], W.shape[0])
    res = mmse_scale(lin.weight.detach().numpy(), 4, per_channel=True)
    with pytest.raises(InvalidInputError):
        quantize_layer(lin, res, codes=np.full(W.shape, 8))
    with pytest.raises(InvalidInputError):
        quantize_layer(lin, res, codes=np.zeros((W.shape[0], 3)))


# ------------------------------------------------------------------------- unfolding, Gram
CONVS = [
    nn.Conv1d(4, 6, 3),
    nn.Conv1d(4, 6, 4, padding="same", dilation=2),
    nn.Conv1d(4, 6, 3, stride=2, padding=2, groups=2, padding_mode="circular"),
    nn.Conv2d(3, 4, 3, padding=1),
    nn.Conv2d(4, 6, (2, 3), stride=(2, 1), padding=(1, 2), dilation=(1, 2)),
    nn.Conv2d(4, 4, 3, padding="same", groups=4, padding_mode="reflect"),
    nn.Conv2d(4, 6, 4, padding="same", groups=2),
    nn.Conv2d(3, 4, 3, padding="valid", bias=False),
]


@pytest.mark.filterwarnings("ignore:Using padding='same'")
@pytest.mark.parametrize("conv", CONVS, ids=lambda c: repr(c))
def test_input_columns_reproduce_the_convolution(conv):
    torch.manual_seed(0)
    nd = len(conv.kernel_size)
    x = torch.randn((2, conv.in_channels) + (9,) * nd, dtype=torch.float64)
    conv = conv.double()
    cols = input_columns(conv, x)  # (g, rows, d)
    g = conv.groups
    W = conv.weight.detach().reshape(g, conv.out_channels // g, -1)
    y = conv(x) if conv.bias is None else conv(x) - conv.bias.view((1, -1) + (1,) * nd)
    got = torch.bmm(cols, W.transpose(1, 2))  # (g, N * L, out / g)
    want = y.reshape(2, g, conv.out_channels // g, -1).permute(1, 0, 3, 2).reshape(got.shape)
    torch.testing.assert_close(got, want)
    # unbatched input, and the Gram accumulated over two batches
    torch.testing.assert_close(input_columns(conv, x[1]), input_columns(conv, x[1:]))
    acc = GramAccumulator(conv)
    acc.update(x[:1])
    acc.update(x[1:])
    assert acc.H.shape == (g, acc.dim, acc.dim) and acc.rows == cols.shape[1]
    torch.testing.assert_close(acc.H, torch.bmm(cols.transpose(1, 2), cols))


def test_gram_of_a_linear_layer():
    lin = nn.Linear(5, 3)
    acc = GramAccumulator(lin)
    assert torch.equal(acc.gram(), torch.zeros(5, 5, dtype=torch.float64))
    x = torch.randn(4, 7, 5)
    acc.update(x)
    X = x.reshape(-1, 5).double()
    torch.testing.assert_close(acc.gram(), X.T @ X, rtol=1e-5, atol=1e-5)
    assert acc.rows == 28
    with pytest.raises(InvalidInputError):
        GramAccumulator(nn.Conv3d(1, 1, 1))
    with pytest.raises(InvalidInputError):
        acc.update(torch.ones(2, 5, dtype=torch.int64))


# ------------------------------------------------------------------------- quantize_model
class ConvNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 16, 3, padding=1)
        self.conv2 = nn.Conv2d(16, 16, 3, padding=1, groups=2)
        self.conv3 = nn.Conv1d(16, 24, 3, padding=1)
        self.fc = nn.Linear(24 * 16, 10)

    def forward(self, x):
        x = torch.relu(self.conv1(x))  # (N, 16, 8, 8)
        x = torch.relu(self.conv2(x))
        x = torch.nn.functional.max_pool2d(x, 2)  # (N, 16, 4, 4)
        x = torch.relu(self.conv3(x.flatten(2)))  # (N, 24, 16)
        return self.fc(x.flatten(1))


def smooth_images(n, seed):
    """Spatially correlated images (neighbouring pixels alike), so the patches are correlated."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 3, 4, 4, generator=g)
    return torch.nn.functional.interpolate(x, size=(8, 8), mode="bilinear", align_corners=False)


@pytest.fixture(scope="module")
def convnet():
    torch.manual_seed(0)
    return ConvNet().eval()


def rel_output_error(model, qmodel, x):
    with torch.no_grad():
        ref, out = model(x), qmodel(x)
    return float(((out - ref) ** 2).sum() / (ref**2).sum())


@pytest.mark.parametrize("activations", [False, True])
def test_quantize_model_gptq_lowers_conv_output_error(convnet, activations):
    calib, test = smooth_images(512, 1), smooth_images(256, 2)
    kw = dict(w_bits=4, a_bits=8, quantize_activations=activations)
    near = quantize_model(convnet, calib, **kw)
    gptq = quantize_model(convnet, calib, rounding="gptq", **kw)
    assert gptq.rounding == "gptq" and near.rounding == "nearest"
    assert "gptq rounding" in gptq.summary()
    for lay in near.layers:
        assert lay.output_rel_err is None and lay.output_rel_err_nearest is None
    kinds = set()
    for lay in gptq.layers:
        kinds.add(lay.kind)
        assert lay.rounding == "gptq"
        assert 0 < lay.output_rel_err < lay.output_rel_err_nearest
        assert "output rel err" in lay.summary()
    assert kinds == {"Conv2d", "Conv1d", "Linear"}
    for x in (calib, test):
        assert rel_output_error(convnet, gptq.model, x) < 0.9 * rel_output_error(
            convnet, near.model, x
        )
    # integer arithmetic path still matches the float simulation
    q = gptq.model.conv2
    x = torch.relu(convnet.conv1(test[:4]))
    torch.testing.assert_close(q.integer_forward(x), q(x), rtol=1e-4, atol=1e-4)


def test_quantize_model_gptq_with_residual(convnet):
    calib, test = smooth_images(512, 3), smooth_images(256, 4)
    base = quantize_model(convnet, calib, rounding="gptq", quantize_activations=False)
    res = quantize_model(convnet, calib, rounding="gptq", residual=0.25, quantize_activations=False)
    n_res = sum(lay.residual_kernels for lay in res.layers)
    assert n_res == int(np.floor(0.25 * sum(lay.kernels for lay in res.layers) + 0.5))
    for lay, b in zip(res.layers, base.layers, strict=True):
        assert lay.output_rel_err <= b.output_rel_err * (1 + 1e-9)
        if lay.residual_kernels:
            assert lay.output_rel_err < b.output_rel_err
    assert rel_output_error(convnet, res.model, test) < rel_output_error(convnet, base.model, test)
    by_mse = quantize_model(
        convnet, calib, rounding="gptq", residual_mse=0.0, quantize_activations=False
    )
    assert all(lay.residual_kernels == lay.kernels for lay in by_mse.layers)
    q = res.model.fc
    assert q.n_residual > 0 or res.model.conv1.n_residual > 0
    x = torch.randn(3, 24 * 16)
    torch.testing.assert_close(q.integer_forward(x), q(x), rtol=1e-4, atol=1e-4)


class SharedInput(nn.Module):
    """Three projections of the same tensor (like attention's query/key/value)."""

    def __init__(self, clone: bool) -> None:
        super().__init__()
        self.clone = clone
        self.pre = nn.Linear(8, 16)
        self.q, self.k, self.v = nn.Linear(16, 6), nn.Linear(16, 6), nn.Linear(16, 6)

    def forward(self, x):
        h = self.pre(x)
        hs = [h.clone() for _ in range(3)] if self.clone else [h, h, h]
        return self.q(hs[0]) + self.k(hs[1]) * self.v(hs[2])


def test_layers_sharing_an_input_share_its_gram():
    torch.manual_seed(0)
    shared = SharedInput(clone=False).eval()
    cloned = SharedInput(clone=True).eval()
    cloned.load_state_dict(shared.state_dict())
    x = torch.randn(300, 8) @ torch.randn(8, 8)
    a = quantize_model(shared, x, rounding="gptq")
    b = quantize_model(cloned, x, rounding="gptq")
    for la, lb in zip(a.layers, b.layers, strict=True):
        assert la.output_rel_err == pytest.approx(lb.output_rel_err, rel=1e-6)
    for name in ("q", "k", "v"):
        assert torch.equal(getattr(a.model, name).w_codes, getattr(b.model, name).w_codes)


def test_gptq_on_a_transformer_and_bad_rounding():
    layer = nn.TransformerEncoderLayer(16, 2, 32, dropout=0.0, batch_first=True)
    model = nn.Sequential(layer, nn.Linear(16, 4)).eval()
    x = torch.randn(8, 5, 16)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        rep = quantize_model(model, x, rounding="gptq")
    assert len(rep.layers) == 3
    assert all(lay.output_rel_err is not None for lay in rep.layers)
    for bad in ("GPTQ", "round", "", None, 1, ["gptq"]):
        with pytest.raises(InvalidInputError, match="rounding"):
            quantize_model(model, x, rounding=bad)
