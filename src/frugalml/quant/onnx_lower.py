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
* **per-token dynamic input scales** (per-kernel weights): the scale of each row is computed
  in the graph (``ReduceMax(|x|) / qmax``), ``QuantizeLinear`` per row puts the codes into
  ``uint8`` with zero point 128, and ONNX Runtime's ``MatMulIntegerToFloat`` (u8 x s8 GEMM,
  int32 sums, zero point removed exactly, times the weight scales) computes the product; the
  per-row scale and the bias follow.
* **group-wise weight scales**: QDQ with a blocked ``DequantizeLinear`` (opset 21) of the
  packed weight codes and the input's ``QuantizeLinear`` / ``DequantizeLinear`` (per tensor
  or per row). ONNX Runtime has no integer GEMM with per-group scales whose activation
  rounding is defined by the graph (``MatMulNBits`` re-quantizes activations its own way and
  measured 1.8x slower than FP32 at 1000 rows here), so it dequantizes these weights once
  when the session starts and multiplies in float: the file keeps the 4-bit codes, the
  numbers are the simulation's, the speed is float's.
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

__all__ = ["INT4_MIN_OPSET", "MS_DOMAIN", "OPSET", "LayerSpec", "WeightTerm", "lower_layer"]

MS_DOMAIN = "com.microsoft"
"""Domain of ONNX Runtime's contrib operators (``MatMulIntegerToFloat``)."""

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

    def op(
        self,
        op_type: str,
        inputs: list[str],
        out: str | None = None,
        *,
        domain: str = "",
        **attrs: Any,
    ) -> str:
        out = out or self.name(op_type.lower())
        self.nodes.append(
            self.onnx.helper.make_node(
                op_type, inputs, [out], name=self.name(op_type), domain=domain or None, **attrs
            )
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


def _rows(g: _Graph, x: str, d: int) -> str:
    """``x`` ``(..., d)`` as a matrix ``(rows, d)``."""
    return g.op("Reshape", [x, g.const([-1, d], np.int64, "shape")])


def _unrows(g: _Graph, y: str, x: str, out: int) -> str:
    """``y`` ``(rows, out)`` back to ``x``'s leading dimensions: ``(..., out)``."""
    lead = g.op(
        "Slice", [g.op("Shape", [x]), g.const([0], np.int64, "s"), g.const([-1], np.int64, "e")]
    )
    shape = g.op("Concat", [lead, g.const([out], np.int64, "out")], axis=0)
    return g.op("Reshape", [y, shape])


def _token_quantize(g: _Graph, x2: str, bits: int) -> tuple[str, str, str]:
    """Per-row scales of ``x2`` ``(rows, d)`` and its codes in uint8 (code + 128), as
    :func:`frugalml.quant.dynamic.token_codes`: ``a_t = max|x_t| / qmax`` (1 for a zero row),
    ``QuantizeLinear`` per row (axis 0, round half to even). Returns (codes, per-row scale
    ``(rows,)``, zero points ``(rows,)``)."""
    qmax = float(2 ** (bits - 1) - 1)
    amax = g.op("ReduceMax", [g.op("Abs", [x2]), g.const([1], np.int64, "axes")], keepdims=0)
    s0 = g.op("Div", [amax, g.const(qmax, np.float32, "qmax")])
    pos = g.op("Greater", [s0, g.const(0.0, np.float32, "zero")])
    s = g.op("Where", [pos, s0, g.const(1.0, np.float32, "one")])
    zp = g.op("Expand", [g.const(128, np.uint8, "a_zero"), g.op("Shape", [s])])
    # a b-bit grid inside the uint8 container: |x / a| <= qmax, so no clipping is needed
    return g.op("QuantizeLinear", [x2, s, zp], axis=0), s, zp


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


def _linear_dynamic(g: _Graph, spec: LayerSpec, x: str) -> list[str]:
    """Per-token input scales, per-kernel weights: ``MatMulIntegerToFloat`` (u8 x s8 GEMM,
    int32 sums times the weight scales) per weight term, then the per-row scale."""
    assert spec.act is not None
    out_f, d = spec.terms[0].codes.shape
    x2 = _rows(g, x, d)
    codes, s, _ = _token_quantize(g, x2, spec.act[1])
    one = g.const(np.float32(1.0), np.float32, "one")
    z128 = g.const(128, np.uint8, "a_zero")
    parts = []
    for i, t in enumerate(spec.terms):
        wq = g.weight(t.codes.T, spec.w_bits, f"w{i}")
        ws = g.const(t.scale.reshape(-1), np.float32, "w_scale")
        parts.append(g.op("MatMulIntegerToFloat", [codes, wq, one, ws, z128], domain=MS_DOMAIN))
    s_col = g.op("Unsqueeze", [s, g.const([1], np.int64, "axes")])
    y = g.op("Mul", [_add_all(g, parts), s_col])
    if spec.bias is not None:
        y = g.op("Add", [y, g.const(spec.bias, np.float32, "bias")])
    return [_unrows(g, y, x, out_f)]


def _linear_grouped(g: _Graph, spec: LayerSpec, x: str) -> list[str]:
    """Group-wise weight scales: QDQ with blocked ``DequantizeLinear`` of the (packed) weight
    codes; the input quantized per tensor (static) or per token (dynamic) by
    ``QuantizeLinear`` / ``DequantizeLinear``, or left float."""
    out_f, d = spec.terms[0].codes.shape
    ws = []
    for i, t in enumerate(spec.terms):
        wq = g.weight(t.codes.T, spec.w_bits, f"w{i}")
        sc = g.const(t.scale.T, np.float32, "w_scale")  # (G, out)
        ws.append(g.op("DequantizeLinear", [wq, sc], axis=0, block_size=spec.group_size))
    if spec.act is None:
        return [g.op("MatMul", [x, w]) for w in ws]
    # the input's dequantization is written out ((codes - z) * a): ONNX Runtime would fuse
    # Q -> DQ -> MatMul <- DQ(blocked W) into MatMulIntegerToFloat, which mishandles blocked
    # weight scales and per-row zero points
    if spec.act[0] == "static":
        _, bits, signed, a, z = spec.act
        xq, _, _ = _clip_quantize(g, x, bits, signed, a, z)
        centred = g.op(
            "Sub",
            [g.op("Cast", [xq], to=g.onnx.TensorProto.FLOAT), g.const(float(z), np.float32, "z")],
        )
        xd = g.op("Mul", [centred, g.const(np.float32(a), np.float32, "a_scale")])
        return [g.op("MatMul", [xd, w]) for w in ws]
    x2 = _rows(g, x, d)
    codes, s, _ = _token_quantize(g, x2, spec.act[1])
    centred = g.op(
        "Sub",
        [g.op("Cast", [codes], to=g.onnx.TensorProto.FLOAT), g.const(128.0, np.float32, "shift")],
    )
    s_col = g.op("Unsqueeze", [s, g.const([1], np.int64, "axes")])
    xd = g.op("Mul", [centred, s_col])
    return [_unrows(g, g.op("MatMul", [xd, w]), x, out_f) for w in ws]


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
        if spec.act2 is not None and (spec.group_size is not None or spec.act[0] == "dynamic"):
            raise InvalidInputError(
                f"layer {spec.name!r}: an input residual needs a static per-tensor scale "
                "and per-kernel weight scales"
            )
        if spec.group_size is not None:
            parts = _linear_grouped(g, spec, x)
        elif spec.act is not None and spec.act[0] == "dynamic":
            parts = _linear_dynamic(g, spec, x)
            _add_all(g, parts, out=y)
            return g.nodes, g.inits
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
