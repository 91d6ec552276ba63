"""Quantized ``Linear`` / ``Conv1d`` / ``Conv2d`` layers: low-bit weights, fake-quantized inputs.

The layers implement the inference scheme of Choukroun, Kravchik, Yang and Kisilev, "Low-bit
Quantization of Neural Networks for Efficient Inference" (ICCV Workshops 2019,
arXiv:1902.06822):

* **weights** are quantized *per output channel* ("kernel-wise") on a signed symmetric grid,
  ``W_k ~ s_k Q_k`` with integer codes ``Q_k`` in ``[-(2^(b-1)-1), 2^(b-1)-1]`` (stored as int8)
  and one float scale ``s_k`` per kernel;
* optionally, for a chosen subset of kernels (the ones quantized worst), a **second low-bit
  tensor** approximates the residual: ``W_k ~ s_k Q_k + r_k R_k`` with ``R_k`` integer codes of
  the same bit width (``r_k = 0`` and ``R_k = 0`` for the other kernels), fitted by
  :func:`~frugalml.quant.residual.residual_quantize`. A kernel with a residual costs one extra
  pass of integer multiply-accumulates (MACs);
* **activations** (the layer's input) are quantized *per tensor* with a static scale ``a`` and
  zero point ``z`` found on calibration data: a signed symmetric grid, or an unsigned grid
  ``[0, 2^b - 1]`` for non-negative inputs (after a ReLU), possibly with ``z != 0`` for
  asymmetric ranges.

Two forward paths compute the same function:

* :meth:`forward` simulates quantization in floating point ("fake quantization"): the input is
  rounded to its grid and back, and the layer runs on the dequantized weight
  ``s Q + r R``;
* :meth:`integer_forward` computes what integer hardware computes: the input codes ``q``
  (integers) are convolved/multiplied with the integer weight codes, the zero point is removed by
  the usual correction term ``acc = op(q, Q) - z op(1, Q)``, and only then is the accumulator
  scaled by ``a s_k`` (plus ``a r_k op(q - z, R)`` for the residual) and the bias added. The
  integer products are carried out in float64 on integer-valued tensors: every product is at most
  ``255 * 127`` in magnitude and a sum of fewer than ``2^53 / (255 * 127)`` of them is exact, so
  the accumulators are the exact integers (int64 convolutions are not available on every
  backend). The two paths agree up to float rounding of the final scaling (tested).

Torch is required (extra ``quant``); this module imports it when it is imported.
"""

from __future__ import annotations

import math
from abc import ABCMeta, abstractmethod
from collections.abc import Sequence
from typing import Any

import numpy as np

from .._optional import require
from ..errors import InvalidInputError

require("torch", what="the quantized layers of frugalml.quant", extra="quant")

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from torch import nn  # noqa: E402

from .baselines import SCALE_METHODS  # noqa: E402
from .dynamic import token_codes  # noqa: E402
from .groups import check_group_size, group_rows  # noqa: E402
from .layer_params import (  # noqa: E402
    check_activation_result,
    check_codes,
    check_residual_fit,
    check_weight_result,
    nearest_kernel_codes,
)
from .residual import ResidualTensor, residual_quantize  # noqa: E402
from .scale_result import ScaleResult  # noqa: E402
from .uniform import Grid, check_bits  # noqa: E402

__all__ = [
    "SUPPORTED_LAYERS",
    "QuantizedConv1d",
    "QuantizedConv2d",
    "QuantizedLayer",
    "QuantizedLinear",
    "layer_macs",
    "quantize_layer",
]

SUPPORTED_LAYERS: tuple[type, ...] = (nn.Linear, nn.Conv1d, nn.Conv2d)
"""Float layer types that have a quantized counterpart (exact types: subclasses, which may
override ``forward``, are not converted)."""


def _pair_or_single(value: Any) -> tuple[int, ...]:
    return tuple(value) if isinstance(value, (tuple, list)) else (int(value),)


class QuantizedLayer(nn.Module, metaclass=ABCMeta):
    """Common machinery of :class:`QuantizedLinear`, :class:`QuantizedConv1d` and
    :class:`QuantizedConv2d` (module doc).

    Parameters
    ----------
    module:
        the float layer (its weight and bias are read, not kept).
    weight:
        a per-output-channel :class:`~frugalml.quant.mmse.ScaleResult` on a signed grid with zero
        point 0, e.g. ``mmse_scale(W, bits, per_channel=True)`` (a per-tensor one is broadcast).
    activation:
        a per-tensor ``ScaleResult`` for the input, or ``None`` to keep the input in float
        (weight-only quantization).
    residual_mask:
        boolean ``(out,)``: kernels that get a second low-bit tensor. Both terms of these
        kernels come from :func:`~frugalml.quant.residual.residual_quantize` (first term and
        the second one fitted to its residual ``W_k - s_k Q_k`` with ``residual_method``, same
        bit width, then both scales re-fitted jointly by least squares); the other kernels keep
        the codes and scales of ``weight``.
    residual_method:
        key of :data:`~frugalml.quant.baselines.SCALE_METHODS` for the residual kernels
        (``"histogram"`` is per tensor only and falls back to ``"minmax"``).
    codes:
        optional integer weight codes (the weight's shape, or ``(out, -1)``) on ``weight``'s
        grid, used instead of round-to-nearest ``clip(round(W_k / s_k))`` (e.g. the
        error-compensated codes of :func:`~frugalml.quant.gptq.error_compensated_codes`); the
        scales still come from ``weight``.
    residual_fit:
        optional precomputed two-term fit of the ``residual_mask`` kernels (a
        :class:`~frugalml.quant.residual.ResidualTensor` for ``W[residual_mask]``, same bits),
        used instead of calling ``residual_quantize``; both of its terms replace those kernels'
        codes and scales.

    group_size:
        Linear only: one weight scale per kernel and group of ``group_size`` inputs
        (:mod:`frugalml.quant.groups`); ``weight`` then holds ``out * in / group_size`` scales
        (kernel-major) and no residual is allowed.
    dynamic_bits:
        Linear only, instead of ``activation``: quantize the input per token with scales
        computed at run time (:mod:`frugalml.quant.dynamic`), on a signed grid of these bits.

    Buffers: ``w_codes`` (int8, weight shape), ``w_scale`` (float32, ``(out,)``, or
    ``(out, in / group_size)``), ``in_scale`` (float32 ``(in,)`` or ``None``), ``bias``
    (float, or ``None``), ``w2_codes`` / ``w2_scale`` / ``residual_mask`` (``None`` without a
    residual), ``a_scale`` (float32, ``()``), ``a_zero_point`` and ``a_bits`` (int32, ``()``;
    ``None`` without input quantization). Construction costs ``O(weight size)`` plus the
    residual's scale search.
    """

    _nd: int = 0  # number of spatial dimensions (0 for Linear)
    _float_type: type = nn.Module  # the float layer type a subclass quantizes

    def __init__(
        self,
        module: nn.Module,
        weight: ScaleResult,
        activation: ScaleResult | None = None,
        residual_mask: Any = None,
        *,
        residual_method: str = "mmse",
        codes: Any = None,
        residual_fit: ResidualTensor | None = None,
        group_size: int | None = None,
        dynamic_bits: int | None = None,
    ) -> None:
        if not isinstance(module, self._float_type):
            raise InvalidInputError(
                f"{type(self).__name__} needs an nn.{self._float_type.__name__}, got {type(module)}"
            )
        super().__init__()
        w_float = module.weight.detach()
        if not torch.is_floating_point(w_float):
            raise InvalidInputError(
                f"the layer's weight must be floating point, got {w_float.dtype}"
            )
        device = w_float.device
        w = w_float.to(device="cpu", dtype=torch.float64).numpy()
        out = w.shape[0]
        self.group_size: int | None = None
        if group_size is not None:
            if self._nd:
                raise InvalidInputError(
                    "group-wise weight scales (group_size) are supported for Linear layers "
                    "only; quantize convolutions per kernel (group_size=None)"
                )
            self.group_size = check_group_size(group_size, w.shape[1])
        n_groups = 1 if self.group_size is None else w.shape[1] // self.group_size
        grid, scale = check_weight_result(weight, out * n_groups)
        self.w_grid: Grid = grid
        scale32 = scale.astype(np.float32)
        if codes is None:
            rows = w if self.group_size is None else group_rows(w, self.group_size)
            q1 = nearest_kernel_codes(rows, scale32.astype(np.float64), grid).reshape(w.shape)
        else:
            q1 = check_codes(codes, w.shape, grid, "codes")
        if self.group_size is not None:
            scale32 = scale32.reshape(out, n_groups)

        # optional second tensor on the residual of the selected kernels
        mask = None
        if residual_mask is not None:
            mask = np.asarray(residual_mask)
            if mask.dtype != bool or mask.shape != (out,):
                raise InvalidInputError(
                    f"residual_mask must be a boolean array of shape ({out},), got "
                    f"dtype {mask.dtype} and shape {mask.shape}"
                )
            if not mask.any():
                mask = None
        if mask is not None and self.group_size is not None:
            raise InvalidInputError(
                "residual tensors need per-kernel weight scales; use group_size=None with "
                "residual= or residual_mse="
            )
        if mask is not None:
            if residual_method not in SCALE_METHODS:
                listed = ", ".join(repr(k) for k in SCALE_METHODS)
                raise InvalidInputError(
                    f"residual_method must be one of {listed}; got {residual_method!r}"
                )
            rmethod = "minmax" if residual_method == "histogram" else residual_method
            # both terms of the selected kernels from residual_quantize (second term fitted to
            # the residual, then both scales re-fitted jointly), or from residual_fit; the
            # others keep `weight`
            if residual_fit is None:
                rt = residual_quantize(w[mask], grid.bits, scale_method=rmethod)
            else:
                rt = check_residual_fit(residual_fit, w[mask].shape, grid)
            q1[mask] = rt.codes1
            scale32[mask] = rt.scale1.astype(np.float32)
            q2 = np.zeros_like(q1)
            q2[mask] = rt.codes2
            s2 = np.zeros(out, dtype=np.float32)
            s2[mask] = rt.scale2.astype(np.float32)
            self.register_buffer("w2_codes", torch.as_tensor(q2.astype(np.int8), device=device))
            self.register_buffer("w2_scale", torch.as_tensor(s2, device=device))
            self.register_buffer("residual_mask", torch.as_tensor(mask, device=device))
        else:
            self.register_buffer("w2_codes", None)
            self.register_buffer("w2_scale", None)
            self.register_buffer("residual_mask", None)
        self.register_buffer("w_codes", torch.as_tensor(q1.astype(np.int8), device=device))
        self.register_buffer("w_scale", torch.as_tensor(scale32, device=device))
        bias = getattr(module, "bias", None)
        self.register_buffer("bias", None if bias is None else bias.detach().clone())

        # optional input quantization: per tensor (static) or per token (dynamic)
        self.a_grid: Grid | None = None
        self.a_dynamic = False
        if dynamic_bits is not None:
            if activation is not None:
                raise InvalidInputError("give activation= (static) or dynamic_bits=, not both")
            if self._nd:
                raise InvalidInputError(
                    "per-token dynamic input scales are supported for Linear layers only; "
                    "give convolutions a static activation= scale"
                )
            dbits = check_bits(dynamic_bits)
            self.a_dynamic = True
            self.a_grid = Grid(dbits, True)
            self.register_buffer("a_scale", None)
            self.register_buffer("a_zero_point", None)
            self.register_buffer("a_bits", torch.tensor(dbits, dtype=torch.int32, device=device))
        elif activation is not None:
            agrid, a_s, a_z = check_activation_result(activation)
            self.a_grid = agrid
            self.register_buffer("a_scale", torch.tensor(a_s, dtype=torch.float32, device=device))
            self.register_buffer(
                "a_zero_point", torch.tensor(a_z, dtype=torch.int32, device=device)
            )
            self.register_buffer(
                "a_bits", torch.tensor(agrid.bits, dtype=torch.int32, device=device)
            )
        else:
            self.register_buffer("a_scale", None)
            self.register_buffer("a_zero_point", None)
            self.register_buffer("a_bits", None)
        # optional second (residual) input tensor: x ~ a (q - z) + a2 q2
        self.a2_grid: Grid | None = None
        self.register_buffer("a2_scale", None)
        # optional per-input-channel multiplier applied before quantization (smoothing)
        self.register_buffer("in_scale", None)
        self._copy_geometry(module)

    @abstractmethod
    def _copy_geometry(self, module: nn.Module) -> None:
        """Copy the float layer's shape attributes (features, kernel, stride, ...)."""

    def set_input_residual(self, activation: ScaleResult) -> None:
        """Give the input a second low-bit tensor fitted to its quantization residual
        ``x - a (q - z)`` (the paper's residual tensors, applied to activations): the layer
        then costs one more integer pass over its MACs (two more with a weight residual).
        ``activation``: a per-tensor signed ScaleResult of the residual (zero point 0)."""
        if self.a_grid is None or self.a_dynamic:
            raise InvalidInputError(
                "an input residual needs static input quantization (activation=)"
            )
        agrid, a_s, a_z = check_activation_result(activation)
        if a_z != 0 or not agrid.signed:
            raise InvalidInputError("the input residual's grid must be signed with zero point 0")
        self.a2_grid = agrid
        self.a2_scale = torch.tensor(a_s, dtype=torch.float32, device=self.w_scale.device)

    def set_input_scale(self, scale: Any) -> None:
        """Multiply the input by ``scale`` ``(in,)`` (per input channel, float32) before it is
        quantized: the ``1 / s`` of smoothing (:mod:`frugalml.quant.smooth`), whose ``s`` the
        weight already carries. ``None`` removes it."""
        if scale is None:
            self.in_scale = None
            return
        if self._nd:
            raise InvalidInputError("input scales (smoothing) apply to Linear layers only")
        t = torch.as_tensor(np.asarray(scale, dtype=np.float32), device=self.w_scale.device)
        if t.shape != (self.in_features,) or not bool(torch.isfinite(t).all()):
            raise InvalidInputError(
                f"the input scale must be {self.in_features} finite values, got shape "
                f"{tuple(t.shape)}"
            )
        self.in_scale = t

    # ------------------------------------------------------------------ properties
    @property
    def w_bits(self) -> int:
        """Bit width of the weight codes."""
        return self.w_grid.bits

    @property
    def quantizes_input(self) -> bool:
        """Whether the input is fake-quantized (an activation ScaleResult was given)."""
        return self.a_grid is not None

    @property
    def n_kernels(self) -> int:
        """Number of output channels (kernels)."""
        return int(self.w_codes.shape[0])

    @property
    def n_residual(self) -> int:
        """Number of kernels with a second (residual) low-bit tensor."""
        return 0 if self.residual_mask is None else int(self.residual_mask.sum())

    @property
    def weight(self) -> torch.Tensor:
        """The dequantized weight ``s Q (+ r R)`` in float32 (read-only; for code that reads
        ``layer.weight``, such as parent modules' fast paths)."""
        return self.dequantized_weight()

    def dequantized_weight(self, dtype: torch.dtype = torch.float32) -> torch.Tensor:
        """The weight the float simulation uses, ``s_k Q_k + r_k R_k`` per kernel (``s_kj Q_kj``
        per kernel and group of inputs with ``group_size``)."""
        if self.group_size is not None:
            out, d = self.w_codes.shape
            codes = self.w_codes.to(dtype).view(out, d // self.group_size, self.group_size)
            return (codes * self.w_scale.to(dtype)[:, :, None]).view(out, d)
        shape = (-1,) + (1,) * (self.w_codes.dim() - 1)
        w = self.w_codes.to(dtype) * self.w_scale.to(dtype).view(shape)
        if self.w2_codes is not None:
            w = w + self.w2_codes.to(dtype) * self.w2_scale.to(dtype).view(shape)
        return w

    # ------------------------------------------------------------------ forward paths
    def scaled_input(self, x: torch.Tensor) -> torch.Tensor:
        """``x * in_scale`` (the smoothing multiplier), or ``x`` without one."""
        return x if self.in_scale is None else x * self.in_scale.to(x.dtype)

    def input_codes(self, x: torch.Tensor) -> torch.Tensor:
        """Integer codes ``clip(round(x / a) + z, qmin, qmax)`` of the (already scaled) input
        (same float dtype as ``x``, integer-valued). Requires static input quantization; for
        per-token scales see :func:`~frugalml.quant.dynamic.token_codes`."""
        if self.a_grid is None or self.a_dynamic:
            raise InvalidInputError(
                "this layer has no static input scale (activation=None or dynamic scales)"
            )
        s = self.a_scale.to(x.dtype)
        z = self.a_zero_point.to(x.dtype)
        return torch.clamp(torch.round(x / s) + z, self.a_grid.qmin, self.a_grid.qmax)

    def fake_quantize_input(self, x: torch.Tensor) -> torch.Tensor:
        """``(codes - z) a``: the input (times ``in_scale``) rounded to its grid, per tensor
        or per token (only the scaling without input quantization)."""
        x = self.scaled_input(x)
        if self.a_grid is None:
            return x
        if self.a_dynamic:
            codes, scale = token_codes(x, self.a_grid.bits)
            return codes * scale
        codes = self.input_codes(x)
        xq = (codes - self.a_zero_point.to(x.dtype)) * self.a_scale.to(x.dtype)
        if self.a2_grid is not None:
            xq = xq + self._residual_codes(x - xq) * self.a2_scale.to(x.dtype)
        return xq

    def _residual_codes(self, r: torch.Tensor) -> torch.Tensor:
        s2 = self.a2_scale.to(r.dtype)
        return torch.clamp(torch.round(r / s2), self.a2_grid.qmin, self.a2_grid.qmax)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Float simulation: fake-quantized input through the layer with the dequantized
        weight. Output shape as for the float layer; cost that of the float layer."""
        if not torch.is_floating_point(x):
            raise InvalidInputError(f"input must be a floating point tensor, got {x.dtype}")
        xq = self.fake_quantize_input(x)
        bias = None if self.bias is None else self.bias.to(x.dtype)
        return self._op(xq, self.dequantized_weight(x.dtype), bias)

    def integer_forward(self, x: torch.Tensor) -> torch.Tensor:
        """Integer-arithmetic path (module doc): integer input codes times integer weight
        codes, exact accumulation, zero-point correction, then scaling by ``a s_k`` (and
        ``a r_k`` for the residual pass) and the bias. With per-token input scales ``a`` is a
        vector over the rows; with weight groups the scaled partial sums of the groups are
        added. Without input quantization the float input multiplies the integer weight codes
        (weight-only quantization). Returns the output in ``x``'s dtype; equals
        :meth:`forward` up to float rounding."""
        if not torch.is_floating_point(x):
            raise InvalidInputError(f"input must be a floating point tensor, got {x.dtype}")
        dt = torch.float64
        xs = self.scaled_input(x)
        z = 0
        if self.a_grid is None:
            q, a = xs.to(dt), torch.ones((), dtype=dt, device=x.device)
        elif self.a_dynamic:
            codes, scale = token_codes(xs, self.a_grid.bits)
            q, a = codes.to(dt), scale.to(dt)
        else:
            q = self.input_codes(xs).to(dt)
            z = int(self.a_zero_point)
            a = self.a_scale.to(dt)
        if self.group_size is not None:
            out = self._grouped_accumulate(q, a)
        else:
            out = self._kernel_accumulate(q, z, a, xs)
        if self.bias is not None:
            shape = (-1,) + (1,) * self._nd
            out = out + self.bias.to(dt).view(shape)
        return out.to(x.dtype)

    def _grouped_accumulate(self, q: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
        """``sum_j a s_kj <q_j, Q_kj>`` over the input groups ``j`` (Linear, zero point 0)."""
        out_f, d = self.w_codes.shape
        g = self.group_size
        qg = q.reshape(*q.shape[:-1], d // g, g)
        wg = self.w_codes.to(q.dtype).view(out_f, d // g, g)
        acc = torch.einsum("...jc,kjc->...jk", qg, wg)  # exact integer sums per group
        return a * (acc * self.w_scale.to(q.dtype).T).sum(dim=-2)

    def _kernel_accumulate(
        self, q: torch.Tensor, z: int, a: torch.Tensor, xs: torch.Tensor
    ) -> torch.Tensor:
        """Per-kernel scales: ``a s_k op(q - z, Q_k)`` (plus the residual passes)."""
        dt = q.dtype

        def accumulate(codes: torch.Tensor) -> torch.Tensor:
            wq = codes.to(dt)
            acc = self._op(q, wq, None)
            if z != 0:  # op(q - z, Q) = op(q, Q) - z op(1, Q): the zero-point correction
                acc = acc - z * self._op(torch.ones_like(q), wq, None)
            return acc

        shape = (-1,) + (1,) * self._nd
        out = a * accumulate(self.w_codes) * self.w_scale.to(dt).view(shape)
        if self.w2_codes is not None:
            out = out + a * accumulate(self.w2_codes) * self.w2_scale.to(dt).view(shape)
        if self.a2_grid is not None:  # second input tensor: integer codes of the residual
            q2 = self._residual_codes(xs.to(dt) - (q - z) * a)
            a2 = self.a2_scale.to(dt)
            out = out + self._op(q2, self.w_codes.to(dt), None) * (a2 * self.w_scale.to(dt)).view(
                shape
            )
            if self.w2_codes is not None:
                out = out + self._op(q2, self.w2_codes.to(dt), None) * (
                    a2 * self.w2_scale.to(dt)
                ).view(shape)
        return out

    @abstractmethod
    def _op(self, x: torch.Tensor, w: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
        """The float layer's operation (linear or convolution) with weight ``w``."""

    # ------------------------------------------------------------------ bookkeeping
    def macs(self, input_shape: Sequence[int]) -> int:
        """Multiply-accumulates of one call on an input of ``input_shape`` (batch included),
        first tensor only."""
        return layer_macs(self, input_shape)

    def extra_macs(self, input_shape: Sequence[int]) -> int:
        """Extra multiply-accumulates of the residual tensors for ``input_shape``: the MACs of
        the ``n_residual`` kernels that get a second pass, and with an input residual one more
        pass over all kernels (and their residuals)."""
        macs = self.macs(input_shape)
        extra = macs * self.n_residual // self.n_kernels
        if self.a2_grid is not None:
            extra += macs + macs * self.n_residual // self.n_kernels
        return extra

    def export(self) -> dict[str, torch.Tensor]:
        """The layer's tensors (CPU copies): ``w_codes`` (int8), ``w_scale`` (float32,
        ``(out,)`` or ``(out, in / group_size)`` with ``group_size``), ``w_bits``, ``bias`` if
        any, ``in_scale`` with smoothing, ``a_bits`` / ``a_dynamic`` with per-token scales,
        ``w2_codes`` / ``w2_scale`` / ``residual_mask`` if there is
        a residual, ``a_scale`` / ``a_zero_point`` / ``a_bits`` / ``a_signed`` if the input is
        quantized."""
        out: dict[str, torch.Tensor] = {
            "w_codes": self.w_codes.detach().cpu().clone(),
            "w_scale": self.w_scale.detach().cpu().clone(),
            "w_bits": torch.tensor(self.w_bits, dtype=torch.int32),
        }
        if self.bias is not None:
            out["bias"] = self.bias.detach().cpu().clone()
        if self.w2_codes is not None:
            out["w2_codes"] = self.w2_codes.detach().cpu().clone()
            out["w2_scale"] = self.w2_scale.detach().cpu().clone()
            out["residual_mask"] = self.residual_mask.detach().cpu().clone()
        if self.group_size is not None:
            out["group_size"] = torch.tensor(self.group_size, dtype=torch.int32)
        if self.in_scale is not None:
            out["in_scale"] = self.in_scale.detach().cpu().clone()
        if self.a_dynamic:
            out["a_bits"] = self.a_bits.detach().cpu().clone()
            out["a_dynamic"] = torch.tensor(True)
        elif self.a_grid is not None:
            out["a_scale"] = self.a_scale.detach().cpu().clone()
            out["a_zero_point"] = self.a_zero_point.detach().cpu().clone()
            out["a_bits"] = self.a_bits.detach().cpu().clone()
            out["a_signed"] = torch.tensor(self.a_grid.signed)
        if self.a2_grid is not None:
            out["a2_scale"] = self.a2_scale.detach().cpu().clone()
            out["a2_bits"] = torch.tensor(self.a2_grid.bits, dtype=torch.int32)
        return out

    def extra_repr(self) -> str:
        a = f"a_bits={self.a_grid.bits}" if self.a_grid is not None else "a=float"
        if self.a_dynamic:
            a += " per-token"
        if self.group_size is not None:
            a += f", group_size={self.group_size}"
        if self.in_scale is not None:
            a += ", smoothed"
        r = f", residual={self.n_residual}/{self.n_kernels}" if self.n_residual else ""
        return f"{self._shape_repr()}, w_bits={self.w_bits}, {a}{r}"

    def _shape_repr(self) -> str:
        return ""


class QuantizedLinear(QuantizedLayer):
    """Quantized :class:`torch.nn.Linear` (see :class:`QuantizedLayer`): input ``(*, in)`` ->
    output ``(*, out)``; ``O(numel(x) * out)`` per call."""

    _float_type: type = nn.Linear

    def _copy_geometry(self, module: nn.Module) -> None:
        self.in_features = module.in_features
        self.out_features = module.out_features

    def _op(self, x: torch.Tensor, w: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
        return F.linear(x, w, bias)

    def _shape_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}"


class _QuantizedConvNd(QuantizedLayer):
    _float_type: type = nn.Conv1d

    def _copy_geometry(self, module: nn.Module) -> None:
        self.in_channels = module.in_channels
        self.out_channels = module.out_channels
        self.kernel_size = tuple(module.kernel_size)
        self.stride = tuple(module.stride)
        self.padding = module.padding if isinstance(module.padding, str) else tuple(module.padding)
        self.dilation = tuple(module.dilation)
        self.groups = module.groups
        self.padding_mode = module.padding_mode
        self._reversed_padding_repeated_twice = list(module._reversed_padding_repeated_twice)

    @abstractmethod
    def _conv(self, x: torch.Tensor, w: torch.Tensor, bias: torch.Tensor | None, padding: Any):
        """``F.conv1d`` / ``F.conv2d`` with the layer's stride, dilation and groups."""

    def _op(self, x: torch.Tensor, w: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
        if self.padding_mode != "zeros":
            x = F.pad(x, self._reversed_padding_repeated_twice, mode=self.padding_mode)
            return self._conv(x, w, bias, 0)
        return self._conv(x, w, bias, self.padding)

    def _shape_repr(self) -> str:
        return (
            f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
            f"stride={self.stride}, padding={self.padding}, dilation={self.dilation}, "
            f"groups={self.groups}"
        )


class QuantizedConv1d(_QuantizedConvNd):
    """Quantized :class:`torch.nn.Conv1d` (see :class:`QuantizedLayer`); keeps the source
    layer's stride, padding (and padding mode), dilation and groups. Input ``(N, C, L)`` or
    ``(C, L)``."""

    _nd = 1
    _float_type = nn.Conv1d

    def _conv(self, x, w, bias, padding):  # type: ignore[no-untyped-def]
        return F.conv1d(x, w, bias, self.stride, padding, self.dilation, self.groups)


class QuantizedConv2d(_QuantizedConvNd):
    """Quantized :class:`torch.nn.Conv2d` (see :class:`QuantizedLayer`); keeps the source
    layer's stride, padding (and padding mode), dilation and groups. Input ``(N, C, H, W)`` or
    ``(C, H, W)``."""

    _nd = 2
    _float_type = nn.Conv2d

    def _conv(self, x, w, bias, padding):  # type: ignore[no-untyped-def]
        return F.conv2d(x, w, bias, self.stride, padding, self.dilation, self.groups)


_QUANTIZED: dict[type, type[QuantizedLayer]] = {
    nn.Linear: QuantizedLinear,
    nn.Conv1d: QuantizedConv1d,
    nn.Conv2d: QuantizedConv2d,
}


def quantize_layer(
    module: nn.Module,
    weight: ScaleResult,
    activation: ScaleResult | None = None,
    residual_mask: Any = None,
    *,
    residual_method: str = "mmse",
    codes: Any = None,
    residual_fit: ResidualTensor | None = None,
    group_size: int | None = None,
    dynamic_bits: int | None = None,
) -> QuantizedLayer:
    """Build the quantized counterpart of ``module`` (an exact ``nn.Linear``, ``nn.Conv1d`` or
    ``nn.Conv2d``) with the arguments of :class:`QuantizedLayer`."""
    cls = _QUANTIZED.get(type(module))
    if cls is None:
        names = ", ".join(t.__name__ for t in SUPPORTED_LAYERS)
        raise InvalidInputError(f"can only quantize {names} layers, got {type(module).__name__}")
    return cls(
        module,
        weight,
        activation,
        residual_mask,
        residual_method=residual_method,
        codes=codes,
        residual_fit=residual_fit,
        group_size=group_size,
        dynamic_bits=dynamic_bits,
    )


def layer_macs(module: nn.Module, input_shape: Sequence[int]) -> int:
    """Multiply-accumulates of one call of a ``Linear`` / ``Conv1d`` / ``Conv2d`` (float or
    quantized) on an input of shape ``input_shape``.

    Linear: ``numel(x) / in * in * out``. Convolution: ``N * out * prod(out_spatial) *
    (in / groups) * prod(kernel)`` with the output size from the usual formula
    ``floor((L + 2 p - d (k - 1) - 1) / s) + 1`` (``padding="same"`` keeps ``L``).
    """
    shape = tuple(int(s) for s in input_shape)
    if isinstance(module, (nn.Linear, QuantizedLinear)):
        rows = math.prod(shape[:-1]) if len(shape) > 1 else 1
        return rows * module.in_features * module.out_features
    nd = len(module.kernel_size)
    if len(shape) not in (nd + 1, nd + 2):
        raise InvalidInputError(
            f"a {nd}-d convolution needs an input with {nd + 1} or {nd + 2} dimensions, "
            f"got shape {shape}"
        )
    batch = shape[0] if len(shape) == nd + 2 else 1
    spatial = shape[-nd:]
    kernel = _pair_or_single(module.kernel_size)
    stride = _pair_or_single(module.stride)
    dilation = _pair_or_single(module.dilation)
    out_spatial = []
    for i, length in enumerate(spatial):
        if isinstance(module.padding, str):
            if module.padding == "same":
                out_spatial.append(length)
                continue
            pad = 0
        else:
            pad = _pair_or_single(module.padding)[i]
        eff = dilation[i] * (kernel[i] - 1) + 1
        out_spatial.append(max((length + 2 * pad - eff) // stride[i] + 1, 0))
    per_output = (module.in_channels // module.groups) * math.prod(kernel)
    return batch * module.out_channels * math.prod(out_spatial) * per_output
