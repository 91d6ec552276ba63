"""ONNX subgraphs that compute a quantized layer with integer operands.

The export of :mod:`frugalml.quant.onnx_export` replaces each quantized layer of a model by the
nodes built here. They compute what :meth:`~frugalml.quant.modules.QuantizedLayer.integer_forward`
computes (the integer inference scheme of Choukroun, Kravchik, Yang and Kisilev, "Low-bit
Quantization of Neural Networks for Efficient Inference", ICCV Workshops 2019,
arXiv:1902.06822), in forms ONNX Runtime executes with integer kernels:

* **static per-tensor input scale, one weight scale per kernel** (the paper's scheme): the
  standard QDQ form. The input is clipped to its grid's range, ``QuantizeLinear`` /
  ``DequantizeLinear`` (8-bit containers: a 2-8 bit grid is a subset of them), the weight is an
  integer initializer behind ``DequantizeLinear`` (per output channel), then ``MatMul`` /
  ``Conv``. ONNX Runtime fuses ``Q -> DQ -> MatMul <- DQ(W)`` into ``MatMulIntegerToFloat``
  (int8 GEMM, float output); other runtimes that read QDQ models (TensorRT, OpenVINO) read it
  the same way. Convolutions keep the QDQ form; ONNX Runtime runs them after dequantizing
  (it has no integer convolution with a float output).
* **per-token dynamic input scales or group-wise weight scales**: explicit integer ops. The
  scale of each row is computed in the graph (``ReduceMax(|x|) / qmax``), the codes are shifted
  into ``uint8`` (code + 128) and ``MatMulInteger`` (u8 x s8 -> int32) accumulates them with the
  zero point 128 removed exactly; the int32 sums are scaled per output channel (per group and
  summed over the groups with group-wise scales) and per row.
* **residual tensors** stay what they are: a second integer weight initializer (and a second
  GEMM) for kernels with a weight residual, a second quantized input tensor (the residual
  ``x - a q`` quantized with its own scale) for layers with an input residual; nothing is
  folded back into float weights.
* **storage**: codes of 4 bits or fewer are stored as packed ``INT4`` initializers (two codes
  per byte) and widened by a ``Cast`` to ``int8``, which ONNX Runtime folds once when the
  session is created; 5-8 bit codes are stored as ``int8``.

Pure construction of ``onnx`` protos from NumPy arrays; ``O(weights)`` per layer.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .._optional import require
from ..errors import InvalidInputError

__all__ = ["INT4_MIN_OPSET", "OPSET", "LayerSpec", "WeightTerm", "lower_layer"]

OPSET = 21
"""Default ONNX opset of the export (INT4 tensors and blocked quantization need 21)."""

INT4_MIN_OPSET = 21
"""First opset with ``INT4`` tensors."""


@dataclass(frozen=True)
class WeightTerm:
    """One integer weight tensor of a layer: ``codes`` int8 (the weight's shape) and
    ``scale`` float32 ``(out,)``, or ``(out, in / group_size)`` with group-wise scales."""

    codes: np.ndarray
    scale: np.ndarray


@dataclass(frozen=True)
class LayerSpec:
    """What the lowering needs of a quantized layer (built by the exporter from the layer's
    buffers). ``kind``: ``"linear"``, ``"conv1d"`` or ``"conv2d"``; ``act``: ``None`` (float
    input), ``("static", bits, signed, scale, zero_point)`` or ``("dynamic", bits)``;
    ``act2``: ``None`` or ``(bits, scale)`` of the input residual; ``conv``: the convolution
    attributes (``strides``, ``pads``, ``dilations``, ``group``)."""

    name: str
    kind: str
    w_bits: int
    terms: tuple[WeightTerm, ...]
    bias: np.ndarray | None
    act: tuple[Any, ...] | None
    act2: tuple[int, float] | None = None
    in_scale: np.ndarray | None = None
    group_size: int | None = None
    conv: dict[str, list[int] | int] = field(default_factory=dict)


class _Graph:
    """Collects the nodes and initializers of one layer, with names under ``prefix``."""

    def __init__(self, prefix: str, opset: int) -> None:
        self.onnx = require("onnx", what="the ONNX export of frugalml.quant", extra="quant")
        self.prefix = prefix
        self.opset = opset
        self.nodes: list[Any] = []
        self.inits: list[Any] = []
        self._n = 0

    def name(self, what: str) -> str:
        self._n += 1
        return f"{self.prefix}/{what}_{self._n}"

    def const(self, value: Any, dtype: Any, what: str = "c") -> str:
        from onnx import numpy_helper

        name = self.name(what)
        self.inits.append(numpy_helper.from_array(np.asarray(value, dtype=dtype), name))
        return name

    def op(self, op_type: str, inputs: list[str], out: str | None = None, **attrs: Any) -> str:
        out = out or self.name(op_type.lower())
        self.nodes.append(
            self.onnx.helper.make_node(op_type, inputs, [out], name=self.name(op_type), **attrs)
        )
        return out

    def weight(self, codes: np.ndarray, bits: int, what: str) -> str:
        """An int8 tensor of ``codes``: a packed INT4 initializer widened by ``Cast`` when the
        codes fit 4 bits, else an int8 initializer."""
        codes = np.ascontiguousarray(codes, dtype=np.int8)
        if bits <= 4:
            if self.opset < INT4_MIN_OPSET:
                raise InvalidInputError(
                    f"{bits}-bit weights are stored as INT4, which needs opset >= "
                    f"{INT4_MIN_OPSET} (got opset {self.opset}); export with opset="
                    f"{INT4_MIN_OPSET} or quantize the weights with 5-8 bits"
                )
            import ml_dtypes
            from onnx import numpy_helper

            name = self.name(what + "_int4")
            self.inits.append(numpy_helper.from_array(codes.astype(ml_dtypes.int4), name))
            return self.op("Cast", [name], to=self.onnx.TensorProto.INT8)
        return self.const(codes, np.int8, what + "_int8")


def _grid(bits: int, signed: bool) -> tuple[int, int]:
    return (-(2 ** (bits - 1) - 1), 2 ** (bits - 1) - 1) if signed else (0, 2**bits - 1)


def _clip_quantize(g: _Graph, x: str, bits: int, signed: bool, a: float, z: int) -> tuple:
    """``QuantizeLinear`` of ``x`` onto the grid: clip to the grid's float range first, so an
    8-bit container holds exactly the codes of a ``bits``-bit grid. Returns (codes, scale,
    zero point) names; the container is int8 (signed grid) or uint8."""
    qmin, qmax = _grid(bits, signed)
    a32 = np.float32(a)
    lo = np.float32(qmin - z) * a32
    hi = np.float32(qmax - z) * a32
    xc = g.op("Clip", [x, g.const(lo, np.float32, "lo"), g.const(hi, np.float32, "hi")])
    s = g.const(a32, np.float32, "a_scale")
    zp = g.const(z, np.int8 if signed else np.uint8, "a_zero")
    return g.op("QuantizeLinear", [xc, s, zp]), s, zp


def _static_uint8(g: _Graph, x: str, bits: int, signed: bool, a: float, z: int) -> tuple:
    """Input codes in a uint8 container for ``MatMulInteger``: (codes, zero point name)."""
    qmin, qmax = _grid(bits, signed)
    shift = 128 if signed else 0
    a32 = np.float32(a)
    lo = np.float32(qmin - z) * a32
    hi = np.float32(qmax - z) * a32
    xc = g.op("Clip", [x, g.const(lo, np.float32, "lo"), g.const(hi, np.float32, "hi")])
    zp = g.const(z + shift, np.uint8, "a_zero")
    return g.op("QuantizeLinear", [xc, g.const(a32, np.float32, "a_scale"), zp]), zp


def _dynamic_uint8(g: _Graph, x: str, bits: int) -> tuple[str, str, str]:
    """Per-row scales and codes (uint8, code + 128): (codes, zero point, scale ``(..., 1)``),
    as :func:`frugalml.quant.dynamic.token_codes`."""
    qmax = float(2 ** (bits - 1) - 1)
    amax = g.op("ReduceMax", [g.op("Abs", [x]), g.const([-1], np.int64, "axes")], keepdims=1)
    s0 = g.op("Div", [amax, g.const(qmax, np.float32, "qmax")])
    pos = g.op("Greater", [s0, g.const(0.0, np.float32, "zero")])
    s = g.op("Where", [pos, s0, g.const(1.0, np.float32, "one")])
    r = g.op("Round", [g.op("Div", [x, s])])
    r = g.op("Clip", [r, g.const(-qmax, np.float32, "lo"), g.const(qmax, np.float32, "hi")])
    u = g.op("Add", [r, g.const(128.0, np.float32, "shift")])
    codes = g.op("Cast", [u], to=g.onnx.TensorProto.UINT8)
    return codes, g.const(128, np.uint8, "a_zero"), s


def _add_all(g: _Graph, terms: list[str], out: str | None = None) -> str:
    acc = terms[0]
    for t in terms[1:]:
        acc = g.op("Add", [acc, t])
    if out is not None:
        acc = g.op("Identity", [acc], out=out)
    return acc


def _linear_qdq(g: _Graph, spec: LayerSpec, x: str) -> list[str]:
    """Static per-tensor input, per-kernel weights: QDQ MatMuls (one per weight term and
    input tensor)."""
    ws = []
    for i, t in enumerate(spec.terms):
        wq = g.weight(t.codes.T, spec.w_bits, f"w{i}")
        ws.append(
            g.op(
                "DequantizeLinear",
                [wq, g.const(t.scale.reshape(-1), np.float32, "w_scale")],
                axis=1,
            )
        )
    if spec.act is None:
        return [g.op("MatMul", [x, w]) for w in ws]
    _, bits, signed, a, z = spec.act
    xq, s, zp = _clip_quantize(g, x, bits, signed, a, z)
    xd = g.op("DequantizeLinear", [xq, s, zp])
    outs = [g.op("MatMul", [xd, w]) for w in ws]
    if spec.act2 is not None:
        bits2, a2 = spec.act2
        r = g.op("Sub", [x, xd])
        rq, s2, z2 = _clip_quantize(g, r, bits2, True, a2, 0)
        rd = g.op("DequantizeLinear", [rq, s2, z2])
        outs += [g.op("MatMul", [rd, w]) for w in ws]
    return outs


def _linear_integer(g: _Graph, spec: LayerSpec, x: str) -> str:
    """Per-token input scales and/or group-wise weight scales: ``MatMulInteger`` on uint8
    input codes, int32 sums scaled per channel (and group), then per row."""
    assert spec.act is not None
    if spec.act[0] == "dynamic":
        codes, zp, row_scale = _dynamic_uint8(g, x, spec.act[1])
    else:
        _, bits, signed, a, z = spec.act
        codes, zp = _static_uint8(g, x, bits, signed, a, z)
        row_scale = g.const(np.float32(a), np.float32, "a_scale")
    out_f, d = spec.terms[0].codes.shape
    parts = []
    for i, t in enumerate(spec.terms):
        if spec.group_size is None:
            wq = g.weight(t.codes.T, spec.w_bits, f"w{i}")
            acc = g.op("MatMulInteger", [codes, wq, zp])
            accf = g.op("Cast", [acc], to=g.onnx.TensorProto.FLOAT)
            parts.append(g.op("Mul", [accf, g.const(t.scale.reshape(-1), np.float32, "w_scale")]))
            continue
        gs = spec.group_size
        G = d // gs
        flat = g.op("Reshape", [codes, g.const([-1, G, gs], np.int64, "shape")])
        grouped = g.op("Transpose", [flat], perm=[1, 0, 2])  # (G, rows, gs)
        wg = t.codes.reshape(out_f, G, gs).transpose(1, 2, 0)  # (G, gs, out)
        wq = g.weight(wg, spec.w_bits, f"w{i}")
        acc = g.op("MatMulInteger", [grouped, wq, zp])  # (G, rows, out) int32
        accf = g.op("Cast", [acc], to=g.onnx.TensorProto.FLOAT)
        sc = g.const(t.scale.T.reshape(G, 1, out_f), np.float32, "w_scale")
        summed = g.op(
            "ReduceSum", [g.op("Mul", [accf, sc]), g.const([0], np.int64, "axes")], keepdims=0
        )
        parts.append(summed)  # (rows, out)
    y = _add_all(g, parts)
    if spec.group_size is not None:
        # back to the input's leading dimensions
        lead = g.op(
            "Slice",
            [g.op("Shape", [x]), g.const([0], np.int64, "s"), g.const([-1], np.int64, "e")],
        )
        shape = g.op("Concat", [lead, g.const([out_f], np.int64, "out")], axis=0)
        y = g.op("Reshape", [y, shape])
    return g.op("Mul", [y, row_scale])


def _conv(g: _Graph, spec: LayerSpec, x: str) -> list[str]:
    ws = []
    for i, t in enumerate(spec.terms):
        wq = g.weight(t.codes, spec.w_bits, f"w{i}")
        ws.append(
            g.op(
                "DequantizeLinear",
                [wq, g.const(t.scale.reshape(-1), np.float32, "w_scale")],
                axis=0,
            )
        )
    attrs = {k: v for k, v in spec.conv.items()}
    if spec.act is None:
        return [g.op("Conv", [x, w], **attrs) for w in ws]
    if spec.act[0] != "static":
        raise InvalidInputError(
            f"layer {spec.name!r}: convolutions export static input scales only"
        )
    _, bits, signed, a, z = spec.act
    xq, s, zp = _clip_quantize(g, x, bits, signed, a, z)
    xd = g.op("DequantizeLinear", [xq, s, zp])
    outs = [g.op("Conv", [xd, w], **attrs) for w in ws]
    if spec.act2 is not None:
        bits2, a2 = spec.act2
        r = g.op("Sub", [x, xd])
        rq, s2, z2 = _clip_quantize(g, r, bits2, True, a2, 0)
        rd = g.op("DequantizeLinear", [rq, s2, z2])
        outs += [g.op("Conv", [rd, w], **attrs) for w in ws]
    return outs


def lower_layer(spec: LayerSpec, x: str, y: str, *, opset: int = OPSET) -> tuple[list, list]:
    """Nodes and initializers computing ``y = layer(x)`` for the layer ``spec`` (names
    prefixed by ``spec.name``). ``x`` / ``y``: the names of the input and output values in
    the enclosing graph. Returns ``(nodes, initializers)``. ``O(weights)``."""
    g = _Graph(spec.name, opset)
    if spec.in_scale is not None:
        x = g.op("Mul", [x, g.const(spec.in_scale, np.float32, "in_scale")])
    if spec.kind == "linear":
        integer = spec.act is not None and (spec.act[0] == "dynamic" or spec.group_size is not None)
        if integer:
            if spec.act2 is not None:
                raise InvalidInputError(
                    f"layer {spec.name!r}: an input residual needs a static per-tensor scale "
                    "and per-kernel weight scales"
                )
            parts = [_linear_integer(g, spec, x)]
        elif spec.group_size is not None:  # float input, group-wise weights
            parts = []
            for i, t in enumerate(spec.terms):
                wq = g.weight(t.codes.T, spec.w_bits, f"w{i}")
                ws = g.const(t.scale.T, np.float32, "w_scale")  # (G, out)
                wd = g.op("DequantizeLinear", [wq, ws], axis=0, block_size=spec.group_size)
                parts.append(g.op("MatMul", [x, wd]))
        else:
            parts = _linear_qdq(g, spec, x)
        if spec.bias is not None:
            parts.append(g.const(spec.bias, np.float32, "bias"))
        _add_all(g, parts, out=y)
    elif spec.kind in ("conv1d", "conv2d"):
        parts = _conv(g, spec, x)
        if spec.bias is not None:
            nd = 1 if spec.kind == "conv1d" else 2
            parts.append(g.const(spec.bias.reshape((-1,) + (1,) * nd), np.float32, "bias"))
        _add_all(g, parts, out=y)
    else:  # pragma: no cover - the exporter only builds the kinds above
        raise InvalidInputError(f"cannot lower a layer of kind {spec.kind!r}")
    return g.nodes, g.inits
