"""The integer ONNX export: ONNX Runtime computes what the integer simulation computes.

Reference for every layer: :meth:`QuantizedLayer.integer_forward` (exact integer sums in
float64), itself tested against the float simulation in test_modules.py. Whole models can
differ where a float rounding difference in one layer moves a value of the next layer's input
across a rounding boundary (one code step); those tests bound the difference accordingly.
"""

from __future__ import annotations

import contextlib
import pickle
import warnings

import numpy as np
import pytest

torch = pytest.importorskip("torch")
onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

from torch import nn  # noqa: E402

from frugalml.errors import InvalidInputError  # noqa: E402
from frugalml.quant import export_onnx, load, quantize_model  # noqa: E402
from frugalml.quant.modules import QuantizedLayer  # noqa: E402
from frugalml.quant.onnx_export import initializer_bytes  # noqa: E402
from frugalml.quant.report import QuantizationWarning  # noqa: E402

LINEAR_CONFIGS = [
    dict(w_bits=8, a_bits=8),
    dict(w_bits=4, a_bits=8),
    dict(w_bits=3, a_bits=6),
    dict(w_bits=4, a_bits=4, residual=0.3, act_residual=0.5),
    dict(w_bits=8, a_bits=8, act_mode="dynamic"),
    dict(w_bits=4, a_bits=8, act_mode="dynamic", group_size=16),
    dict(w_bits=4, a_bits=8, group_size=16),
    dict(w_bits=4, a_bits=8, quantize_activations=False),
    dict(w_bits=4, a_bits=8, quantize_activations=False, group_size=32),
]


def _quantize(model, calib, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", QuantizationWarning)
        return quantize_model(model, calib, **kw).model


def _ort_run(path, *inputs):
    m = load(path, threads=1)
    return m(*[t.numpy() for t in inputs])


def _rel(a, b):
    return float(np.abs(a - b).max() / max(np.abs(b).max(), 1e-12))


@pytest.mark.parametrize(
    "kw", LINEAR_CONFIGS, ids=lambda kw: "-".join(f"{k}{v}" for k, v in kw.items())
)
def test_linear_layer_equals_integer_simulation(tmp_path, kw):
    torch.manual_seed(0)
    layer = nn.Linear(64, 24)
    x = torch.randn(6, 10, 64) * torch.linspace(0.2, 3.0, 64)  # 3-D input, uneven channels
    q = _quantize(layer, x, **kw)
    path = tmp_path / "layer.onnx"
    export_onnx(q, x[:2], path, dynamic_axes={"input_0": {0: "b", 1: "t"}})
    got = _ort_run(path, x)
    with torch.no_grad():
        want = q.integer_forward(x).numpy()
    assert got.shape == want.shape
    assert _rel(got, want) < 1e-5


@pytest.mark.parametrize(
    "conv, shape",
    [
        (lambda: nn.Conv2d(3, 8, 3, padding=1), (4, 3, 12, 12)),
        (lambda: nn.Conv2d(4, 8, 3, stride=2, groups=2, bias=False), (4, 4, 11, 11)),
        (lambda: nn.Conv1d(2, 6, 5, padding="same", dilation=2), (4, 2, 30)),
    ],
)
@pytest.mark.parametrize(
    "kw", [dict(w_bits=8, a_bits=8), dict(w_bits=4, a_bits=4, residual=0.4, act_residual=1.0)]
)
def test_conv_layer_equals_integer_simulation(tmp_path, conv, shape, kw):
    torch.manual_seed(1)
    layer = conv()
    x = torch.randn(*shape)
    q = _quantize(layer, x, **kw)
    path = tmp_path / "conv.onnx"
    export_onnx(q, x[:1], path)
    with torch.no_grad():
        want = q.integer_forward(x).numpy()
    assert _rel(_ort_run(path, x), want) < 1e-5


def test_cnn_w4a4_residual_end_to_end(tmp_path):
    from frugalml.quant.models import DigitsCNN

    torch.manual_seed(2)
    model = DigitsCNN(rng=0).eval()
    x = torch.rand(200, 1, 8, 8)
    q = _quantize(model, x[:64], w_bits=4, a_bits=4, residual=0.1, act_residual=0.1)
    path = tmp_path / "cnn.onnx"
    rep = export_onnx(q, x[:1], path)
    assert rep.layers == sum(1 for m in q.modules() if hasattr(m, "integer_forward"))
    got = _ort_run(path, x)
    with torch.no_grad():
        sim = q(x).numpy()
    # the same class for (almost) every input; logits within a few code steps
    assert (got.argmax(1) == sim.argmax(1)).mean() >= 0.98
    assert np.median(np.abs(got - sim)) < 1e-4 * np.abs(sim).max()


def test_int4_weights_are_packed_and_run_on_integer_kernels(tmp_path):
    torch.manual_seed(3)
    layer = nn.Linear(128, 256)
    x = torch.randn(4, 16, 128)
    q4 = _quantize(layer, x, w_bits=4, a_bits=8)
    q8 = _quantize(layer, x, w_bits=8, a_bits=8)
    p4, p8 = tmp_path / "w4.onnx", tmp_path / "w8.onnx"
    b4 = export_onnx(q4, x[:1], p4).initializer_bytes
    b8 = export_onnx(q8, x[:1], p8).initializer_bytes
    # the weight codes (plus one zero-point byte): two 4-bit codes per byte
    assert 128 * 256 <= b8["integer"] <= 128 * 256 + 8
    assert 128 * 256 // 2 <= b4["integer"] <= 128 * 256 // 2 + 8
    types = {t.data_type for t in onnx.load(str(p4)).graph.initializer}
    assert onnx.TensorProto.INT4 in types
    # ONNX Runtime fuses the QDQ MatMul into an integer GEMM (no float MatMul left)
    so = ort.SessionOptions()
    so.optimized_model_filepath = str(tmp_path / "opt.onnx")
    so.log_severity_level = 3
    ort.InferenceSession(str(p4), so, providers=["CPUExecutionProvider"])
    ops = {n.op_type for n in onnx.load(str(tmp_path / "opt.onnx")).graph.node}
    assert "MatMulIntegerToFloat" in ops and "MatMul" not in ops


def test_dynamic_export_uses_an_integer_gemm(tmp_path):
    layer = nn.Linear(32, 8)
    x = torch.randn(3, 5, 32)
    q = _quantize(layer, x, w_bits=8, a_bits=8, act_mode="dynamic")
    path = tmp_path / "d.onnx"
    export_onnx(q, x[:1], path)
    ops = [n.op_type for n in onnx.load(str(path)).graph.node]
    assert "MatMulIntegerToFloat" in ops and "MatMul" not in ops
    assert load(path).layers[0]["act_mode"] == "dynamic"


def test_minilm_exported_matches_simulation(tmp_path):
    from frugalml.quant.data import stdlib_docstrings
    from frugalml.quant.minilm import calibration_batches, embedding_agreement, load_minilm

    torch.set_num_threads(1)
    m = load_minilm()
    texts = stdlib_docstrings()
    q = _quantize(
        m,
        calibration_batches(m, texts[:8], 8),
        w_bits=4,
        a_bits=8,
        act_mode="dynamic",
        group_size=64,
    )

    class Enc(nn.Module):
        def __init__(self, model):
            super().__init__()
            self.model = model

        def forward(self, input_ids, attention_mask, token_type_ids):
            f = {
                "input_ids": input_ids,
                "attention_mask": attention_mask,
                "token_type_ids": token_type_ids,
            }
            return self.model(f)["sentence_embedding"]

    feats = calibration_batches(m, texts[8:40], 32)[0][0]
    names = ["input_ids", "attention_mask", "token_type_ids"]
    args = tuple(feats[k] for k in names)
    path = tmp_path / "minilm.onnx"
    dyn = {k: {0: "b", 1: "t"} for k in names}
    rep = export_onnx(Enc(q), args, path, input_names=names, dynamic_axes=dyn)
    assert rep.layers == sum(isinstance(mod, QuantizedLayer) for mod in q.modules())
    enc = Enc(q)
    assert not q.training  # the export leaves every module's mode as it was
    with torch.no_grad():
        sim = enc(*args).numpy()
        ref = Enc(m)(*args).numpy()
    got = load(path, threads=1).run({k: feats[k] for k in names})[0]
    # a quantized network is discontinuous: float rounding differences flip a few codes and
    # the flips spread, so the two runs are two equally good quantizations of FP32 (each
    # layer alone is exact, tests above); their agreement with FP32 must match
    assert embedding_agreement(sim, got).mean_cosine > 0.99
    assert (
        abs(embedding_agreement(ref, got).mean_cosine - embedding_agreement(ref, sim).mean_cosine)
        < 2e-3
    )


def _tiny_export(tmp_path):
    layer = nn.Linear(8, 4)
    x = torch.randn(5, 8)
    path = tmp_path / "ok.onnx"
    export_onnx(_quantize(layer, x, w_bits=8, a_bits=8), x, path)
    return path


def test_load_refuses_corrupted_foreign_and_pickled_files(tmp_path):
    good = _tiny_export(tmp_path)
    data = good.read_bytes()
    trunc = tmp_path / "trunc.onnx"
    trunc.write_bytes(data[: len(data) // 2])
    with pytest.raises(InvalidInputError, match=r"not a readable ONNX file|not a valid ONNX"):
        load(trunc)
    # a valid ONNX model that frugalml did not write
    g = onnx.helper.make_graph(
        [onnx.helper.make_node("Relu", ["x"], ["y"])],
        "g",
        [onnx.helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [2])],
        [onnx.helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [2])],
    )
    foreign = tmp_path / "foreign.onnx"
    onnx.save(onnx.helper.make_model(g), str(foreign))
    with pytest.raises(InvalidInputError, match="did not write"):
        load(foreign)
    # a pickle whose loading would run code: refused, and the code never runs
    marker = tmp_path / "pwned"

    class Payload:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    evil = tmp_path / "evil.onnx"
    evil.write_bytes(pickle.dumps(Payload()))
    with pytest.raises(InvalidInputError):
        load(evil)
    assert not marker.exists()
    empty = tmp_path / "empty.onnx"
    empty.write_bytes(b"")
    with pytest.raises(InvalidInputError, match="empty"):
        load(empty)
    with pytest.raises(InvalidInputError, match="does not exist"):
        load(tmp_path / "missing.onnx")


def test_export_errors_before_work_and_no_partial_file(tmp_path):
    layer = nn.Linear(8, 4)
    x = torch.randn(5, 8)
    q = _quantize(layer, x, w_bits=4, a_bits=8)
    with pytest.raises(InvalidInputError, match="does not exist"):
        export_onnx(q, x, tmp_path / "no" / "dir" / "m.onnx")
    with pytest.raises(InvalidInputError, match=r"\.onnx"):
        export_onnx(q, x, tmp_path / "m.bin")
    with pytest.raises(InvalidInputError, match=r"opset >= 21.*5-8 bit"):
        export_onnx(q, x, tmp_path / "m.onnx", opset=17)
    with pytest.raises(InvalidInputError, match="example_inputs"):
        export_onnx(q, "not a tensor", tmp_path / "m.onnx")
    existing = tmp_path / "keep.onnx"
    existing.write_bytes(b"user data")
    with pytest.raises(InvalidInputError, match="exists"):
        export_onnx(q, x, existing, overwrite=False)
    assert existing.read_bytes() == b"user data"

    class Branchy(nn.Module):
        def __init__(self):
            super().__init__()
            self.lin = nn.Linear(8, 4)

        def forward(self, x):
            return self.lin(x) if float(x.sum()) > 0 else -self.lin(x)

    bad = tmp_path / "bad.onnx"
    model = _quantize(Branchy(), x, w_bits=8, a_bits=8)
    with contextlib.suppress(InvalidInputError):
        export_onnx(model, torch.randn(3, 8), bad)
    assert not any(p.name.startswith("bad.onnx.") for p in tmp_path.iterdir())


def test_float_model_exports_too_and_sizes(tmp_path):
    torch.manual_seed(4)
    net = nn.Sequential(nn.Embedding(50, 16), nn.Linear(16, 16))
    ids = torch.randint(0, 50, (2, 7))
    path = tmp_path / "f.onnx"
    rep = export_onnx(net, ids, path)
    assert rep.layers == 0
    assert rep.initializer_bytes["embedding"] == 50 * 16 * 4
    model = load(path)
    with torch.no_grad():
        assert _rel(model(ids.numpy()), net(ids).numpy()) < 1e-6
    assert initializer_bytes(onnx.load(str(path)))["total"] == rep.initializer_bytes["total"]


def test_keyword_inputs_become_named_inputs(tmp_path):
    class TwoInputs(nn.Module):
        def __init__(self):
            super().__init__()
            self.lin = nn.Linear(8, 4)

        def forward(self, x, bias):
            return self.lin(x) + bias

    torch.manual_seed(5)
    x, b = torch.randn(5, 8), torch.randn(5, 4)
    q = _quantize(TwoInputs().eval(), [{"x": x, "bias": b}], w_bits=8, a_bits=8)
    path = tmp_path / "kw.onnx"
    export_onnx(q, {"x": x, "bias": b}, path)
    model = load(path)
    assert model.input_names == ["x", "bias"]
    with torch.no_grad():
        want = q.lin.integer_forward(x) + b
    assert _rel(model(x=x.numpy(), bias=b.numpy()), want.numpy()) < 1e-5
    with pytest.raises(InvalidInputError, match="missing"):
        model.run({"x": x.numpy()})
