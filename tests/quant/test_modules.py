"""Tests of the quantized layers (frugalml.quant.modules) against hand-written references."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
from torch import nn  # noqa: E402
from torch.nn import functional as F  # noqa: E402

from frugalml.errors import InvalidInputError  # noqa: E402
from frugalml.quant.mmse import ScaleResult  # noqa: E402
from frugalml.quant.modules import (  # noqa: E402
    QuantizedConv1d,
    QuantizedConv2d,
    QuantizedLinear,
    layer_macs,
    quantize_layer,
)
from frugalml.quant.uniform import Grid  # noqa: E402


def sr(scale, bits, signed=True, zero_point=0):
    """A hand-made ScaleResult (independent of the scale searches)."""
    scale = np.asarray(scale, dtype=np.float64)
    return ScaleResult(
        scale=scale,
        zero_point=np.full(scale.shape, zero_point, dtype=np.int64),
        mse=np.zeros(scale.shape),
        grid=Grid(bits, signed),
        method="manual",
    )


def minmax_rows(w: torch.Tensor, bits: int) -> np.ndarray:
    """Per-output-channel min-max scale max|w_k| / (2^(b-1) - 1)."""
    w2 = w.detach().double().reshape(w.shape[0], -1).numpy()
    return np.abs(w2).max(axis=1) / (2 ** (bits - 1) - 1)


def ref_codes(w: torch.Tensor, scale: np.ndarray, bits: int) -> np.ndarray:
    q = 2 ** (bits - 1) - 1
    w64 = w.detach().double().numpy()
    s = scale.astype(np.float32).astype(np.float64).reshape((-1,) + (1,) * (w64.ndim - 1))
    return np.clip(np.round(w64 / s), -q, q)


def ref_fake_quant(x: torch.Tensor, scale: float, bits: int, signed: bool, zp: int = 0):
    lo, hi = (-(2 ** (bits - 1) - 1), 2 ** (bits - 1) - 1) if signed else (0, 2**bits - 1)
    x64 = x.double()
    s = float(np.float32(scale))
    return (torch.clamp(torch.round(x64 / s) + zp, lo, hi) - zp) * s


def rel(a: torch.Tensor, b: torch.Tensor) -> float:
    a, b = a.detach().double(), b.detach().double()
    return float((a - b).norm() / b.norm())


@pytest.fixture
def gen():
    return torch.Generator().manual_seed(0)


def test_linear_w4_codes_and_weight_only_forward(gen):
    torch.manual_seed(0)
    lin = nn.Linear(24, 10)
    s = minmax_rows(lin.weight, 4)
    q = QuantizedLinear(lin, sr(s, 4))
    codes = ref_codes(lin.weight, s, 4)
    assert q.w_codes.dtype == torch.int8
    np.testing.assert_array_equal(q.w_codes.numpy(), codes)
    assert np.abs(codes).max() == 7  # min-max scale: the extreme of every row is +-7
    deq = codes * s.astype(np.float32).reshape(-1, 1)
    np.testing.assert_allclose(q.dequantized_weight().numpy(), deq, rtol=1e-6)
    np.testing.assert_allclose(q.weight.numpy(), deq, rtol=1e-6)
    x = torch.randn(5, 3, 24, generator=gen)
    ref = F.linear(x.double(), torch.as_tensor(deq), lin.bias.double())
    assert rel(q(x), ref) < 1e-6
    assert rel(q.integer_forward(x), ref) < 1e-6
    assert q.w_bits == 4 and q.a_bits is None and not q.quantizes_input


@pytest.mark.parametrize("signed,zp", [(True, 0), (False, 0), (False, 37)])
def test_linear_activation_fake_quant_and_integer_path(gen, signed, zp):
    torch.manual_seed(1)
    lin = nn.Linear(32, 16)
    s = minmax_rows(lin.weight, 8)
    x = torch.randn(7, 32, generator=gen)
    if not signed and zp == 0:
        x = x.relu()
    a = 0.02
    q = QuantizedLinear(lin, sr(s, 8), sr(a, 8, signed=signed, zero_point=zp))
    xq = ref_fake_quant(x, a, 8, signed, zp)
    deq = torch.as_tensor(ref_codes(lin.weight, s, 8) * s.astype(np.float32).reshape(-1, 1))
    ref = F.linear(xq, deq, lin.bias.double())
    out = q(x)
    assert out.dtype == torch.float32 and out.shape == (7, 16)
    assert rel(out, ref) < 1e-5
    assert rel(q.integer_forward(x), out) < 1e-5
    # the input codes are integers inside the grid
    codes = q.input_codes(x)
    assert torch.equal(codes, codes.round())
    assert codes.min() >= (-127 if signed else 0) and codes.max() <= (127 if signed else 255)


def test_conv2d_groups_stride_padding_dilation(gen):
    torch.manual_seed(2)
    conv = nn.Conv2d(4, 6, 3, stride=2, padding=2, dilation=2, groups=2, bias=True)
    s = minmax_rows(conv.weight, 8)
    x = torch.randn(3, 4, 11, 9, generator=gen)
    q = QuantizedConv2d(conv, sr(s, 8), sr(0.03, 8))
    deq = torch.as_tensor(ref_codes(conv.weight, s, 8)) * torch.as_tensor(
        s.astype(np.float32).astype(np.float64)
    ).view(-1, 1, 1, 1)
    ref = F.conv2d(ref_fake_quant(x, 0.03, 8, True), deq, conv.bias.double(), 2, 2, 2, 2)
    out = q(x)
    assert out.shape == conv(x).shape
    assert rel(out, ref) < 1e-5
    assert rel(q.integer_forward(x), out) < 1e-5
    # unbatched input works too
    assert rel(q.integer_forward(x[0]), q(x[0])) < 1e-5
    # close to the float layer at 8 bits
    assert rel(out, conv(x)) < 0.05


@pytest.mark.parametrize("mode", ["zeros", "reflect", "circular", "replicate"])
def test_conv1d_padding_modes_with_zero_point(gen, mode):
    torch.manual_seed(3)
    conv = nn.Conv1d(3, 5, 3, padding="same", padding_mode=mode, bias=False)
    s = minmax_rows(conv.weight, 6)
    x = torch.randn(2, 3, 13, generator=gen) + 0.5
    q = QuantizedConv1d(conv, sr(s, 6), sr(0.05, 8, signed=False, zero_point=40))
    xq = ref_fake_quant(x, 0.05, 8, False, 40).float()
    ref_conv = nn.Conv1d(3, 5, 3, padding="same", padding_mode=mode, bias=False)
    with torch.no_grad():
        ref_conv.weight.copy_(q.dequantized_weight())
    out = q(x)
    assert rel(out, ref_conv(xq)) < 1e-5
    assert rel(q.integer_forward(x), out) < 1e-5


def test_residual_second_tensor(gen):
    torch.manual_seed(4)
    lin = nn.Linear(40, 12)
    s = minmax_rows(lin.weight, 3)
    mask = np.zeros(12, dtype=bool)
    mask[[1, 4, 7]] = True
    plain = QuantizedLinear(lin, sr(s, 3))
    q = QuantizedLinear(lin, sr(s, 3), sr(0.02, 8), mask, residual_method="minmax")
    assert q.n_residual == 3 and q.w2_codes.dtype == torch.int8
    w = lin.weight.detach().double()
    err_plain = ((w - plain.dequantized_weight(torch.float64)) ** 2).sum(1)
    err_res = ((w - q.dequantized_weight(torch.float64)) ** 2).sum(1)
    m = torch.as_tensor(mask)
    # kernels without residual are unchanged, the others improve a lot
    np.testing.assert_array_equal(q.w2_codes[~m].numpy(), 0)
    np.testing.assert_array_equal(q.w2_scale[~m].numpy(), 0)
    torch.testing.assert_close(q.w_codes[~m], plain.w_codes[~m])
    torch.testing.assert_close(err_res[~m], err_plain[~m])
    assert torch.all(err_res[m] < 0.3 * err_plain[m])
    # never worse than an independent two-term min-max fit: residual r = W - s Q, then
    # codes of r with scale max|r| / 3 (the residual module may refit both scales jointly)
    w1 = torch.as_tensor(ref_codes(lin.weight, s, 3)) * torch.as_tensor(
        s.astype(np.float32).astype(np.float64)
    ).view(-1, 1)
    r = (w - w1)[m]
    s2 = r.abs().amax(1, keepdim=True) / 3
    two_term = w1[m] + torch.clamp(torch.round(r / s2), -3, 3) * s2
    err_two = ((w[m] - two_term) ** 2).sum(1)
    assert torch.all(err_res[m] <= err_two * (1 + 1e-5))
    assert int(q.w2_codes.abs().max()) <= 3 and int(q.w_codes.abs().max()) <= 3
    x = torch.randn(6, 40, generator=gen)
    assert rel(q.integer_forward(x), q(x)) < 1e-5
    # export
    ex = q.export()
    assert ex["w_codes"].dtype == torch.int8 and ex["w2_codes"].dtype == torch.int8
    assert ex["w_scale"].dtype == torch.float32 and ex["w_scale"].shape == (12,)
    assert int(ex["w_bits"]) == 3 and int(ex["a_bits"]) == 8 and bool(ex["a_signed"])
    assert ex["residual_mask"].tolist() == mask.tolist()
    assert int(ex["w_codes"].abs().max()) <= 3


def test_export_without_residual_or_activation():
    lin = nn.Linear(4, 3, bias=False)
    q = QuantizedLinear(lin, sr(minmax_rows(lin.weight, 8), 8))
    assert set(q.export()) == {"w_codes", "w_scale", "w_bits"}
    # state dict round trip into an identically built layer
    q2 = QuantizedLinear(lin, sr(np.ones(3), 8))
    q2.load_state_dict(q.state_dict())
    assert torch.equal(q2.w_codes, q.w_codes) and torch.equal(q2.w_scale, q.w_scale)


def test_macs_match_brute_force_count():
    conv = nn.Conv2d(6, 9, (3, 2), stride=(2, 1), padding=(1, 0), dilation=(1, 2), groups=3)
    x = torch.zeros(2, 6, 9, 7)
    out = conv(x)
    assert layer_macs(conv, x.shape) == out.numel() * (6 // 3) * 3 * 2
    q = QuantizedConv2d(conv, sr(np.ones(9), 4), None, np.arange(9) < 3)
    assert q.macs(x.shape) == layer_macs(conv, x.shape)
    assert q.extra_macs(x.shape) == q.macs(x.shape) // 3
    conv1 = nn.Conv1d(4, 4, 5, padding="same")
    assert layer_macs(conv1, (3, 4, 10)) == 3 * 4 * 10 * 4 * 5
    lin = nn.Linear(7, 5)
    assert layer_macs(lin, (2, 3, 7)) == 2 * 3 * 7 * 5
    assert layer_macs(lin, (7,)) == 35


def test_quantize_layer_dispatch_and_errors():
    lin = nn.Linear(4, 3)
    assert isinstance(quantize_layer(lin, sr(np.ones(3), 4)), QuantizedLinear)
    assert isinstance(quantize_layer(nn.Conv1d(2, 3, 1), sr(np.ones(3), 4)), QuantizedConv1d)
    with pytest.raises(InvalidInputError):
        quantize_layer(nn.Conv3d(2, 3, 1), sr(np.ones(3), 4))
    with pytest.raises(InvalidInputError, match="per tensor"):
        QuantizedLinear(lin, sr(np.ones(3), 4), sr(np.ones(4), 8))
    with pytest.raises(InvalidInputError, match="one value per output channel"):
        QuantizedLinear(lin, sr(np.ones(5), 4))
    with pytest.raises(InvalidInputError, match="signed"):
        QuantizedLinear(lin, sr(np.ones(3), 4, signed=False))
    with pytest.raises(InvalidInputError, match="residual_mask"):
        QuantizedLinear(lin, sr(np.ones(3), 4), None, np.ones(2, dtype=bool))
    with pytest.raises(InvalidInputError, match="QuantizedLinear"):
        QuantizedLinear(nn.Conv1d(2, 3, 1), sr(np.ones(3), 4))
    with pytest.raises(InvalidInputError, match=r"2\.\.8"):
        sr(np.ones(3), 9)
    q = QuantizedLinear(lin, sr(np.ones(3), 4))
    with pytest.raises(InvalidInputError):
        q.input_codes(torch.zeros(2, 4))
    with pytest.raises(InvalidInputError):
        q(torch.zeros(2, 4, dtype=torch.int64))


def test_zero_weight_channel_and_zero_activation_scale(gen):
    lin = nn.Linear(5, 3)
    with torch.no_grad():
        lin.weight[1] = 0
    s = minmax_rows(lin.weight, 4)
    assert s[1] == 0
    q = QuantizedLinear(lin, sr(s, 4), sr(0.0, 8, signed=False))
    assert torch.all(q.w_codes[1] == 0)
    x = torch.randn(4, 5, generator=gen)
    out = q(x)
    assert torch.isfinite(out).all()
    torch.testing.assert_close(q.integer_forward(x), out)
