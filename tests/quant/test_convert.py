"""Tests of quantize_model (frugalml.quant.convert) on a small CNN and a small Transformer."""

from __future__ import annotations

import copy
import warnings

import numpy as np
import pytest

torch = pytest.importorskip("torch")
from torch import nn  # noqa: E402

from frugalml.errors import InvalidInputError  # noqa: E402
from frugalml.quant.baselines import SCALE_METHODS  # noqa: E402
from frugalml.quant.convert import (  # noqa: E402
    QuantizationReport,
    QuantizationWarning,
    quantize_model,
)
from frugalml.quant.modules import (  # noqa: E402
    QuantizedConv1d,
    QuantizedConv2d,
    QuantizedLayer,
    QuantizedLinear,
)


class SmallCNN(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 8, 3, padding=1)
        self.conv2 = nn.Conv2d(8, 8, 3, stride=2, groups=2)
        self.conv3 = nn.Conv1d(8, 12, 3, padding=1)
        self.fc = nn.Linear(12 * 49, 10)

    def forward(self, x):
        x = torch.relu(self.conv1(x))  # (N, 8, 16, 16)
        x = torch.relu(self.conv2(x))  # (N, 8, 7, 7)
        x = torch.relu(self.conv3(x.flatten(2)))  # (N, 12, 49)
        return self.fc(x.flatten(1))


class TinyEncoder(nn.Module):
    """BERT-like: token ids and an attention mask passed as keyword arguments."""

    def __init__(self) -> None:
        super().__init__()
        self.embed = nn.Embedding(50, 32)
        layer = nn.TransformerEncoderLayer(32, 4, 64, dropout=0.1, batch_first=True)
        self.encoder = nn.TransformerEncoder(layer, 2)
        self.norm = nn.LayerNorm(32)
        self.head = nn.Linear(32, 8)

    def forward(self, input_ids, attention_mask=None):
        h = self.embed(input_ids)
        pad = None if attention_mask is None else attention_mask == 0
        h = self.encoder(h, src_key_padding_mask=pad)
        return self.head(self.norm(h[:, 0]))


def rel(a, b) -> float:
    return float((a.double() - b.double()).norm() / b.double().norm())


@pytest.fixture(scope="module")
def cnn():
    torch.manual_seed(0)
    return SmallCNN().eval()


@pytest.fixture(scope="module")
def images():
    g = torch.Generator().manual_seed(1)
    return torch.randn(96, 3, 16, 16, generator=g)


@pytest.fixture(scope="module")
def tokens():
    g = torch.Generator().manual_seed(2)
    ids = torch.randint(0, 50, (48, 12), generator=g)
    mask = torch.ones(48, 12, dtype=torch.long)
    mask[::3, 9:] = 0
    return ids, mask


def quantized_layers(model):
    return {n: m for n, m in model.named_modules() if isinstance(m, QuantizedLayer)}


def test_cnn_w8a8_close_to_float(cnn, images):
    with warnings.catch_warnings():
        warnings.simplefilter("error", QuantizationWarning)
        rep = quantize_model(cnn, images[:64], w_bits=8, a_bits=8)
    assert isinstance(rep, QuantizationReport)
    q = rep.model
    assert isinstance(q.conv1, QuantizedConv2d) and isinstance(q.conv2, QuantizedConv2d)
    assert isinstance(q.conv3, QuantizedConv1d) and isinstance(q.fc, QuantizedLinear)
    assert isinstance(cnn.conv1, nn.Conv2d)  # the caller's model is untouched
    assert [lay.name for lay in rep.layers] == ["conv1", "conv2", "conv3", "fc"]
    assert rep.skipped == () and rep.extra_macs == 0
    with torch.no_grad():
        err = rel(q(images[64:]), cnn(images[64:]))
    assert err < 0.02
    # inputs after a ReLU get an unsigned grid, the raw image a signed one
    signed = {lay.name: lay.a_signed for lay in rep.layers}
    assert signed == {"conv1": True, "conv2": False, "conv3": False, "fc": False}
    assert "conv3" in rep.summary()


def test_transformer_dict_inputs_warnings_and_eval(tokens):
    torch.manual_seed(3)
    model = TinyEncoder()  # training mode, dropout active
    ids, mask = tokens
    calib = [{"input_ids": ids[i : i + 16], "attention_mask": mask[i : i + 16]} for i in (0, 16)]
    with pytest.warns(QuantizationWarning) as record:
        rep = quantize_model(model, calib, w_bits=8, a_bits=8)
    messages = [str(w.message) for w in record]
    assert any("training mode" in m for m in messages)
    unsupported = next(m for m in messages if "unsupported" in m)
    for name in ("embed", "norm", "encoder.layers.0.self_attn", "encoder.layers.1.norm2"):
        assert name in unsupported
    assert model.training and isinstance(model.head, nn.Linear)  # original untouched
    q = rep.model
    assert not any(m.training for m in q.modules())
    names = set(quantized_layers(q))
    assert names == {
        "encoder.layers.0.linear1",
        "encoder.layers.0.linear2",
        "encoder.layers.1.linear1",
        "encoder.layers.1.linear2",
        "head",
    }
    assert "embed" in rep.skipped and "encoder.layers.0.self_attn.out_proj" in rep.skipped
    # the quantized feed-forward layers really run (PyTorch's fused fast path is off)
    calls = []
    q.encoder.layers[0].linear1.register_forward_hook(lambda *a: calls.append(1))
    model.eval()
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # nested-tensor prototype (float model)
        out_q = q(input_ids=ids[32:], attention_mask=mask[32:])
        out_f = model(input_ids=ids[32:], attention_mask=mask[32:])
    assert calls
    assert 0 < rel(out_q, out_f) < 0.02
    macs = {lay.name: lay.macs for lay in rep.layers}
    assert macs["head"] == 32 * 8 and macs["encoder.layers.1.linear2"] == 12 * 64 * 32


def test_features_dict_as_single_positional_argument(tokens):
    """SentenceTransformer style: model(features) with one dict, batches given as 1-tuples."""

    class Wrapper(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.inner = TinyEncoder()

        def forward(self, features):
            return self.inner(**features)

    torch.manual_seed(5)
    model = Wrapper().eval()
    ids, mask = tokens
    calib = [({"input_ids": ids[:20], "attention_mask": mask[:20]},)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", QuantizationWarning)
        rep = quantize_model(model, calib, w_bits=8, method="minmax")
    assert {lay.name: lay.macs for lay in rep.layers}["inner.head"] == 32 * 8
    feats = {"input_ids": ids[20:], "attention_mask": mask[20:]}
    with torch.no_grad():
        assert rel(rep.model(feats), model(feats)) < 0.05


def test_w4_weights_reproduce_dequantized_codes(cnn, images):
    rep = quantize_model(cnn, images[:32], w_bits=4, method="minmax", quantize_activations=False)
    ref_model = copy.deepcopy(cnn)
    for name, layer in quantized_layers(rep.model).items():
        w = getattr(cnn, name).weight.detach().double()
        w2 = w.reshape(w.shape[0], -1)
        s = (w2.abs().amax(1) / 7).float().double()  # min-max, stored in float32
        codes = torch.clamp(torch.round(w / s.view((-1,) + (1,) * (w.dim() - 1))), -7, 7)
        assert torch.equal(layer.w_codes.double(), codes)
        torch.testing.assert_close(layer.w_scale.double(), s)
        deq = codes * s.view((-1,) + (1,) * (w.dim() - 1))
        torch.testing.assert_close(layer.dequantized_weight(torch.float64), deq)
        with torch.no_grad():
            getattr(ref_model, name).weight.copy_(deq.float())
    with torch.no_grad():
        torch.testing.assert_close(rep.model(images[32:40]), ref_model(images[32:40]))


def test_w4_mmse_scales_and_codes(cnn, images):
    rep = quantize_model(cnn, images[:32], w_bits=4, quantize_activations=False)
    mm = quantize_model(cnn, images[:32], w_bits=4, method="minmax", quantize_activations=False)
    for lay, lay_mm in zip(rep.layers, mm.layers, strict=True):
        layer = getattr(rep.model, lay.name)
        w = getattr(cnn, lay.name).weight.detach().double()
        expect = SCALE_METHODS["mmse"](
            w.reshape(w.shape[0], -1).numpy(), 4, signed=True, per_channel=True
        )
        np.testing.assert_allclose(layer.w_scale.numpy(), np.asarray(expect.scale), rtol=1e-6)
        s = layer.w_scale.double().view((-1,) + (1,) * (w.dim() - 1))
        codes = torch.clamp(torch.round(w / s), -7, 7)
        assert torch.equal(layer.w_codes.double(), codes)
        direct = float(((w - codes * s) ** 2).mean())
        assert lay.weight_mse == pytest.approx(direct, rel=1e-9)
        assert lay.weight_mse <= lay_mm.weight_mse * (1 + 1e-9)  # MMSE beats min-max


def test_integer_forward_equals_forward_in_model(cnn, images):
    rep = quantize_model(cnn, images[:64], w_bits=5, a_bits=7, residual=0.3)
    inputs = {}
    hooks = [
        m.register_forward_pre_hook(lambda mod, args, n=n: inputs.__setitem__(n, args[0]))
        for n, m in quantized_layers(rep.model).items()
    ]
    with torch.no_grad():
        rep.model(images[64:80])
    for h in hooks:
        h.remove()
    assert len(inputs) == 4
    for name, x in inputs.items():
        layer = getattr(rep.model, name)
        with torch.no_grad():
            assert rel(layer.integer_forward(x), layer(x)) < 1e-5, name


def test_minmax_activation_scales_match_observed_ranges(cnn, images):
    seen = {}
    hooks = [
        getattr(cnn, n).register_forward_pre_hook(
            lambda mod, args, n=n: seen.setdefault(n, []).append(args[0].detach())
        )
        for n in ("conv1", "conv2", "conv3", "fc")
    ]
    with torch.no_grad():
        cnn(images[:64])
    for h in hooks:
        h.remove()
    rep = quantize_model(cnn, images[:64], w_bits=8, a_bits=8, method="minmax")
    for lay in rep.layers:
        x = torch.cat(seen[lay.name])
        if lay.name == "conv1":
            expect = float(x.abs().max()) / 127
        else:
            assert float(x.min()) >= 0
            expect = float(x.max()) / 255
        assert lay.a_scale == pytest.approx(expect, rel=1e-6)
        assert lay.a_zero_point == 0


def test_macs_from_calibration_shapes(cnn, images):
    rep = quantize_model(cnn, images[:10], w_bits=8, method="minmax")
    per_sample = {
        "conv1": 8 * 16 * 16 * 3 * 9,
        "conv2": 8 * 7 * 7 * 4 * 9,
        "conv3": 12 * 49 * 8 * 3,
        "fc": 588 * 10,
    }
    assert {lay.name: lay.macs for lay in rep.layers} == per_sample
    assert rep.total_macs == sum(per_sample.values())


def test_residual_lowers_output_error(cnn, images):
    x_test = images[64:]
    with torch.no_grad():
        ref = cnn(x_test)

    def err(rep):
        with torch.no_grad():
            return rel(rep.model(x_test), ref)

    kw = {"w_bits": 3, "quantize_activations": False}  # isolate the weights
    none = quantize_model(cnn, images[:64], **kw)
    some = quantize_model(cnn, images[:64], residual=0.25, **kw)
    every = quantize_model(cnn, images[:64], residual=1.0, **kw)
    by_mse = quantize_model(cnn, images[:64], residual_mse=0.0, **kw)
    kernels = sum(lay.kernels for lay in none.layers)
    n_some = sum(lay.residual_kernels for lay in some.layers)
    assert abs(n_some - 0.25 * kernels) <= 1
    assert none.extra_macs == 0 and 0 < some.extra_macs < some.total_macs
    assert every.extra_macs == pytest.approx(every.total_macs)
    assert sum(lay.residual_kernels for lay in by_mse.layers) == kernels
    assert err(every) < err(some) < err(none)
    for lay_n, lay_s in zip(none.layers, some.layers, strict=True):
        assert lay_s.weight_mse <= lay_n.weight_mse * (1 + 1e-9)
        assert lay_s.base_weight_mse == pytest.approx(lay_n.weight_mse, rel=1e-9)
    # the worst kernels (largest relative error) are the ones that got the residual
    worst_rel = max(lay.weight_rel_mse for lay in none.layers)
    assert worst_rel > 0


def test_skip_leaves_layers_float(cnn, images):
    rep = quantize_model(cnn, images[:32], w_bits=4, method="minmax", skip=["fc", "conv2"])
    assert type(rep.model.fc) is nn.Linear and type(rep.model.conv2) is nn.Conv2d
    assert torch.equal(rep.model.fc.weight, cnn.fc.weight)
    assert set(rep.skipped) == {"fc", "conv2"}
    assert isinstance(rep.model.conv1, QuantizedConv2d)
    # a parent name covers its children
    model = nn.Sequential(nn.Linear(4, 4), nn.Sequential(nn.Linear(4, 4), nn.ReLU())).eval()
    rep2 = quantize_model(model, torch.randn(8, 4), method="minmax", skip="1")
    assert isinstance(rep2.model[0], QuantizedLinear) and type(rep2.model[1][0]) is nn.Linear


def test_calibration_inputs_tensor_tuples_and_batches():
    class TwoInputs(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.a = nn.Linear(6, 5)
            self.b = nn.Linear(3, 5)
            self.sizes: list[int] = []

        def forward(self, x, y):
            self.sizes.append(x.shape[0])
            return self.a(x) + self.b(y)

    model = TwoInputs().eval()
    g = torch.Generator().manual_seed(4)
    x, y = torch.randn(150, 6, generator=g), torch.randn(150, 3, generator=g)
    rep = quantize_model(model, [(x[:70], y[:70]), (x[70:], y[70:])], method="minmax")
    assert rep.calib_batches == 2 and rep.model.sizes == [70, 80]

    single = nn.Sequential(nn.Linear(6, 4)).eval()
    counts = []
    single.register_forward_pre_hook(lambda mod, args: counts.append(args[0].shape[0]))
    rep = quantize_model(single, x, method="minmax")
    assert counts == [64, 64, 22] and rep.calib_batches == 3
    gen_rep = quantize_model(single, (t for t in x.split(50)), method="minmax")
    assert gen_rep.calib_batches == 3
    # the model may itself be one supported layer
    lin = nn.Linear(6, 4).eval()
    assert isinstance(quantize_model(lin, x, method="minmax").model, QuantizedLinear)


@pytest.mark.parametrize("method", ["percentile", "aciq", "histogram"])
def test_other_methods_run(cnn, images, method):
    rep = quantize_model(cnn, images[:64], w_bits=8, a_bits=8, method=method)
    assert rep.method == method and len(rep.layers) == 4
    with torch.no_grad():
        assert rel(rep.model(images[64:]), cnn(images[64:])) < 0.05


def test_not_called_layer_is_left_float_with_warning():
    class Unused(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.used = nn.Linear(4, 4)
            self.spare = nn.Linear(4, 4)
            self.vol = nn.Conv3d(1, 1, 1)

        def forward(self, x):
            return self.used(x)

    with pytest.warns(QuantizationWarning) as record:
        rep = quantize_model(Unused().eval(), torch.randn(8, 4), method="minmax")
    text = " | ".join(str(w.message) for w in record)
    assert "spare" in text and "never called" in text
    assert "vol (Conv3d)" in text
    assert set(rep.skipped) == {"spare", "vol"} and rep.not_called == ("spare",)
    assert type(rep.model.spare) is nn.Linear


def test_invalid_inputs(cnn, images):
    x = images[:8]
    for bits in (1, 9, 2.5, True):
        with pytest.raises(InvalidInputError, match=r"2\.\.8"):
            quantize_model(cnn, x, w_bits=bits)
        with pytest.raises(InvalidInputError, match=r"2\.\.8"):
            quantize_model(cnn, x, a_bits=bits)
    bad = x.clone()
    bad[3, 0, 0, 0] = float("nan")
    with pytest.raises(InvalidInputError, match="NaN"):
        quantize_model(cnn, bad)
    with pytest.raises(InvalidInputError, match="NaN"):
        quantize_model(cnn, [x, bad])
    with pytest.raises(InvalidInputError, match="empty"):
        quantize_model(cnn, [])
    with pytest.raises(InvalidInputError, match="method"):
        quantize_model(cnn, x, method="kmeans")
    with pytest.raises(InvalidInputError, match="skip"):
        quantize_model(cnn, x, skip=["nope"])
    with pytest.raises(InvalidInputError, match="not both"):
        quantize_model(cnn, x, residual=0.1, residual_mse=0.01)
    with pytest.raises(InvalidInputError):
        quantize_model(cnn, x, residual=1.5)
    with pytest.raises(InvalidInputError):
        quantize_model(cnn, 5)
    with pytest.raises(InvalidInputError):
        quantize_model(cnn, [object()])
    with pytest.raises(InvalidInputError):
        quantize_model("model", x)


def test_non_finite_activation_inside_model():
    class Log(nn.Module):
        def forward(self, x):
            return torch.log(x)

    model = nn.Sequential(Log(), nn.Linear(3, 2)).eval()
    with pytest.raises(InvalidInputError, match="'1'"):
        quantize_model(model, -torch.ones(4, 3))


def _fingerprint(rep):
    state = {k: v.detach().clone() for k, v in rep.model.state_dict().items()}
    layers = [(lay.name, lay.weight_mse, lay.a_scale, lay.residual_kernels) for lay in rep.layers]
    return state, layers


@pytest.mark.parametrize("rounding", ["nearest", "gptq"])
def test_steps_compose_to_quantize_model(cnn, images, rounding):
    """prepare -> calibrate -> plan -> convert, called one by one, is quantize_model."""
    from frugalml.quant.calibration_pass import calibrate_layers
    from frugalml.quant.convert import convert_layers
    from frugalml.quant.plan import plan_weights
    from frugalml.quant.prepare import prepare_model

    opts = dict(w_bits=4, a_bits=6, method="mmse", rounding=rounding)
    rep = quantize_model(cnn, images[:64], residual=0.2, **opts)
    prepared = prepare_model(cnn)
    assert prepared.candidates == ["conv1", "conv2", "conv3", "fc"] and not prepared.was_training
    cal = calibrate_layers(prepared, images[:64], gram=rounding == "gptq")
    assert cal.batches == 1 and cal.not_called == [] and "1 batches" in cal.summary()
    plan = plan_weights(
        prepared.modules, cal, w_bits=4, method="mmse", rounding=rounding, residual=0.2
    )
    assert sum(int(m.sum()) for m in plan.masks.values()) == sum(
        lay.residual_kernels for lay in rep.layers
    )
    model, reports, qlayers = convert_layers(prepared, cal, plan, **opts)
    assert list(qlayers) == [lay.name for lay in reports]
    state, layers = _fingerprint(rep)
    state2 = model.state_dict()
    assert state.keys() == state2.keys()
    assert all(torch.equal(state[k], state2[k]) for k in state)
    assert layers == [(r.name, r.weight_mse, r.a_scale, r.residual_kernels) for r in reports]


def test_device_cpu_explicit_and_bad_device(cnn, images):
    a = quantize_model(cnn, images[:64], w_bits=4, a_bits=8)
    b = quantize_model(cnn, images[:64], w_bits=4, a_bits=8, device="cpu")
    c = quantize_model(cnn, images[:64], w_bits=4, a_bits=8, device=torch.device("cpu"))
    for other in (b, c):
        assert all(
            torch.equal(v, a.model.state_dict()[k]) for k, v in other.model.state_dict().items()
        )
        assert all(t.device.type == "cpu" for t in other.model.state_dict().values())
    with pytest.raises(InvalidInputError, match="device"):
        quantize_model(cnn, images[:8], device="nonsense")
    with pytest.raises(InvalidInputError, match="device"):
        quantize_model(cnn, images[:8], device=0.5)


def test_moved_names_stay_importable_from_their_old_modules():
    from frugalml.quant import convert, gptq, gram, mmse, report, scale_result

    assert convert.LayerReport is report.LayerReport
    assert convert.QuantizationReport is report.QuantizationReport
    assert convert.QuantizationWarning is report.QuantizationWarning
    assert convert.CALIB_BATCH_SIZE == 64 and convert.ROUNDING_MODES == ("nearest", "gptq")
    assert mmse.ScaleResult is scale_result.ScaleResult
    assert gptq.GramAccumulator is gram.GramAccumulator
    assert gptq.input_columns is gram.input_columns
    for mod in (convert, gptq, mmse):
        assert all(hasattr(mod, name) for name in mod.__all__)
