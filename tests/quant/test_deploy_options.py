"""Per-token dynamic input scales, group-wise weight scales and their option checks, against
brute-force NumPy references."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from torch import nn  # noqa: E402

from frugalml.errors import InvalidInputError  # noqa: E402
from frugalml.quant import quantize_layer, quantize_model  # noqa: E402
from frugalml.quant.dynamic import fake_quantize_tokens, token_codes  # noqa: E402
from frugalml.quant.gptq import fit_layer_grouped, nearest_codes  # noqa: E402
from frugalml.quant.groups import check_group_size, group_scale_result  # noqa: E402


def test_token_codes_match_numpy():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((3, 7, 16)).astype(np.float32)
    x[1, 2] = 0.0  # a zero row: scale 1, codes 0
    codes, scale = token_codes(torch.from_numpy(x), 8)
    amax = np.abs(x).max(axis=-1, keepdims=True)
    want_scale = np.where(amax > 0, amax / np.float32(127), 1).astype(np.float32)
    want = np.clip(np.rint(x / want_scale), -127, 127)  # rint: half to even, as torch.round
    assert np.array_equal(codes.numpy(), want)
    assert np.array_equal(scale.numpy(), want_scale)
    assert codes.abs().max() == 127  # every non-zero row reaches the end of the grid
    fq = fake_quantize_tokens(torch.from_numpy(x), 4).numpy()
    assert np.abs(fq - x).max() <= (np.abs(x).max(axis=-1, keepdims=True) / 7 / 2 + 1e-6).max()


def test_group_scales_are_per_kernel_and_group():
    rng = np.random.default_rng(1)
    W = rng.standard_normal((5, 24))
    res = group_scale_result(W, 4, 8, "minmax")
    want = np.abs(W.reshape(5, 3, 8)).max(axis=2).reshape(-1) / 7
    assert np.allclose(np.asarray(res.scale), want)
    with pytest.raises(InvalidInputError, match="does not divide"):
        check_group_size(7, 24)
    with pytest.raises(InvalidInputError):
        check_group_size(1)


def test_grouped_linear_dequantizes_block_by_block():
    torch.manual_seed(0)
    lin = nn.Linear(32, 6)
    W = lin.weight.detach().double().numpy()
    res = group_scale_result(W, 4, 16, "mmse")
    q = quantize_layer(lin, res, None, group_size=16, dynamic_bits=8)
    s = np.asarray(res.scale, dtype=np.float32).astype(np.float64).reshape(6, 2)
    codes = np.clip(np.rint(W.reshape(6, 2, 16) / s[:, :, None]), -7, 7)
    deq = (codes * s[:, :, None]).reshape(6, 32)
    assert np.allclose(q.dequantized_weight(torch.float64).numpy(), deq)
    x = torch.randn(4, 9, 32)
    want = torch.nn.functional.linear(fake_quantize_tokens(x, 8).double(), torch.from_numpy(deq))
    want = want + lin.bias.detach().double()
    assert torch.allclose(q(x).double(), want, atol=1e-5)
    assert torch.allclose(q.integer_forward(x), q(x), atol=1e-5)


def test_grouped_gptq_is_nearest_for_diagonal_h_and_never_worse():
    rng = np.random.default_rng(2)
    W = rng.standard_normal((8, 32))
    res = group_scale_result(W, 4, 8, "mmse")
    S = np.repeat(np.asarray(res.scale).reshape(8, 4), 8, axis=1)
    fit = fit_layer_grouped(W, np.diag(rng.uniform(0.5, 2, 32)), S, res.grid)
    near = np.clip(np.rint(W / S), -7, 7)
    assert np.array_equal(fit.codes, near)
    X = rng.standard_normal((200, 32)) * np.linspace(0.1, 3, 32)
    X[:, 1] = X[:, 0] + 0.01 * X[:, 1]  # correlated inputs: compensation pays off
    fit = fit_layer_grouped(W, X.T @ X, S, res.grid)
    assert fit.row_err.sum() <= fit.row_err_nearest.sum()
    E = W - S * fit.codes
    assert np.isclose(fit.row_err.sum(), np.trace(E @ X.T @ X @ E.T), rtol=1e-6)
    # per-row scales keep their own path
    assert nearest_codes(W, np.abs(W).max(1) / 7, res.grid).shape == W.shape


def test_quantize_model_option_errors():
    net = nn.Sequential(nn.Linear(12, 8), nn.ReLU(), nn.Linear(8, 2)).eval()
    x = torch.randn(16, 12)
    with pytest.raises(InvalidInputError, match="act_mode"):
        quantize_model(net, x, act_mode="per-token")
    with pytest.raises(InvalidInputError, match="residual tensors need per-kernel"):
        quantize_model(net, x, group_size=4, residual=0.1)
    with pytest.raises(InvalidInputError, match="act_residual needs static"):
        quantize_model(net, x, act_mode="dynamic", act_residual=0.1)
    with pytest.raises(InvalidInputError, match="smooth"):
        quantize_model(net, x, smooth="max")
    with pytest.raises(InvalidInputError, match="smooth"):
        quantize_model(net, x, smooth=1.5)
    with pytest.raises(InvalidInputError, match="does not divide"):
        quantize_model(net, x, group_size=5)


def test_dynamic_model_quantizes_linear_per_token_and_conv_statically():
    net = nn.Sequential(nn.Conv1d(2, 4, 3), nn.Flatten(), nn.Linear(4 * 6, 3)).eval()
    x = torch.randn(32, 2, 8)
    rep = quantize_model(net, x, w_bits=8, a_bits=8, act_mode="dynamic", group_size=8)
    conv, lin = rep.model[0], rep.model[2]
    assert not conv.a_dynamic and conv.a_scale is not None and conv.group_size is None
    assert lin.a_dynamic and lin.group_size == 8
    with torch.no_grad():
        ref = net(x)
        assert torch.allclose(rep.model(x), ref, atol=0.05 * float(ref.abs().max()))
