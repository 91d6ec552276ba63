"""The parameters a quantized layer is built from: weight / activation scales, codes, residuals.

The quantized layers of :mod:`frugalml.quant.modules` implement the inference scheme of
Choukroun, Kravchik, Yang and Kisilev, "Low-bit Quantization of Neural Networks for Efficient
Inference" (ICCV Workshops 2019, arXiv:1902.06822): per-kernel weight scales on a signed
symmetric grid, integer codes, optional residual tensors for some kernels, and one per-tensor
input scale (and zero point). The functions here check those parameters and bring them to the
form the layers store; each raises :class:`~frugalml.errors.InvalidInputError` naming what is
wrong. All are ``O(weight size)``.

Torch is required (extra ``quant``); this module imports it when it is imported.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from .._optional import require
from ..errors import InvalidInputError

require("torch", what="the quantized layers of frugalml.quant", extra="quant")

import torch  # noqa: E402

from .residual import ResidualTensor  # noqa: E402
from .scale_result import ScaleResult  # noqa: E402
from .uniform import Grid  # noqa: E402

__all__ = [
    "MIN_ACT_SCALE",
    "check_activation_result",
    "check_codes",
    "check_residual_fit",
    "check_weight_result",
    "nearest_kernel_codes",
    "per_kernel_values",
]

#: smallest activation scale: an all-zero calibration gives scale 0, and any scale represents 0
#: exactly
MIN_ACT_SCALE = 1e-12


def per_kernel_values(values: Any, n: int, what: str) -> np.ndarray:
    """``values`` as float64 ``(n,)``: one per output channel (a scalar is broadcast)."""
    arr = np.asarray(values, dtype=np.float64)
    if arr.ndim == 0 or arr.size == 1:
        arr = np.full(n, float(arr.reshape(-1)[0]))
    arr = arr.reshape(-1)
    if arr.shape != (n,):
        raise InvalidInputError(
            f"{what} must hold one value per output channel ({n}), got shape {np.shape(values)}"
        )
    return arr


def check_weight_result(result: Any, out: int) -> tuple[Grid, np.ndarray]:
    """The grid and the ``(out,)`` scales of a weight :class:`ScaleResult` (signed grid, zero
    point 0, finite scales ``>= 0``)."""
    if not isinstance(result, ScaleResult):
        raise InvalidInputError(
            f"weight must be a ScaleResult (e.g. from mmse_scale(W, bits, per_channel=True)), "
            f"got {type(result).__name__}"
        )
    grid = result.grid
    if not grid.signed:
        raise InvalidInputError(
            "weights need a signed symmetric grid (signed=True); got an unsigned grid"
        )
    if np.any(np.asarray(result.zero_point) != 0):
        raise InvalidInputError("weights need zero_point 0 (symmetric quantization)")
    scale = per_kernel_values(result.scale, out, "weight scale")
    if not np.all(np.isfinite(scale)) or np.any(scale < 0):
        raise InvalidInputError("weight scales must be finite and >= 0")
    return grid, scale


def check_activation_result(result: Any) -> tuple[Grid, float, int]:
    """``(grid, scale, zero_point)`` of a per-tensor activation :class:`ScaleResult`; the scale
    is at least :data:`MIN_ACT_SCALE`."""
    if not isinstance(result, ScaleResult):
        raise InvalidInputError(
            f"activation must be a ScaleResult or None, got {type(result).__name__}"
        )
    scale = np.asarray(result.scale, dtype=np.float64)
    zp = np.asarray(result.zero_point)
    if scale.size != 1 or zp.size != 1:
        raise InvalidInputError(
            f"activations are quantized per tensor: the activation ScaleResult must hold one "
            f"scale, got shape {scale.shape}"
        )
    s = float(scale.reshape(-1)[0])
    if not math.isfinite(s) or s < 0:
        raise InvalidInputError(f"activation scale must be finite and >= 0, got {s}")
    grid = result.grid
    z = int(zp.reshape(-1)[0])
    if not grid.qmin <= z <= grid.qmax:
        raise InvalidInputError(
            f"activation zero point {z} lies outside the grid [{grid.qmin}, {grid.qmax}]"
        )
    return grid, max(s, MIN_ACT_SCALE), z


def nearest_kernel_codes(w: np.ndarray, scale: np.ndarray, grid: Grid) -> np.ndarray:
    """Integer codes ``clip(round(w / s), qmin, qmax)`` per output channel (rows); 0 if s == 0."""
    s = scale.reshape((-1,) + (1,) * (w.ndim - 1))
    safe = np.where(s > 0, s, 1.0)
    q = np.clip(np.rint(w / safe), grid.qmin, grid.qmax)
    return np.where(s > 0, q, 0.0)


def check_codes(codes: Any, shape: tuple[int, ...], grid: Grid, what: str) -> np.ndarray:
    """Integer ``codes`` reshaped to ``shape`` (float64), checked to lie on ``grid``."""
    arr = codes.detach().cpu().numpy() if isinstance(codes, torch.Tensor) else np.asarray(codes)
    if arr.dtype == bool or not (
        np.issubdtype(arr.dtype, np.integer) or np.issubdtype(arr.dtype, np.floating)
    ):
        raise InvalidInputError(f"{what} must be an integer array, got dtype {arr.dtype}")
    if arr.size != math.prod(shape) or arr.shape[:1] != shape[:1]:
        raise InvalidInputError(
            f"{what} must have the weight's shape {shape} (or (out, -1)), got {arr.shape}"
        )
    arr = arr.astype(np.float64).reshape(shape)
    if not np.all(np.isfinite(arr)) or np.any(arr != np.rint(arr)):
        raise InvalidInputError(f"{what} must hold integers")
    if arr.size and (arr.min() < grid.qmin or arr.max() > grid.qmax):
        raise InvalidInputError(
            f"{what} must lie on the grid [{grid.qmin}, {grid.qmax}], got values in "
            f"[{arr.min():g}, {arr.max():g}]"
        )
    return arr


def check_residual_fit(rt: Any, shape: tuple[int, ...], grid: Grid) -> ResidualTensor:
    """``rt`` with its codes reshaped to ``shape`` (the selected kernels of the weight)."""
    if not isinstance(rt, ResidualTensor):
        raise InvalidInputError(f"residual_fit must be a ResidualTensor, got {type(rt).__name__}")
    if rt.grid.bits != grid.bits or not rt.grid.signed:
        raise InvalidInputError(
            f"residual_fit must be on the weights' {grid.bits}-bit signed grid, got "
            f"{rt.grid.summary()}"
        )
    c1 = check_codes(rt.codes1, shape, grid, "residual_fit.codes1")
    c2 = check_codes(rt.codes2, shape, grid, "residual_fit.codes2")
    s1 = per_kernel_values(rt.scale1, shape[0], "residual_fit.scale1")
    s2 = per_kernel_values(rt.scale2, shape[0], "residual_fit.scale2")
    if not (np.all(np.isfinite(s1)) and np.all(np.isfinite(s2))) or np.any(s1 < 0):
        raise InvalidInputError("residual_fit scales must be finite (and scale1 >= 0)")
    return ResidualTensor(
        codes1=c1,
        scale1=s1,
        codes2=c2,
        scale2=s2,
        mask=np.asarray(rt.mask),
        mse1=np.asarray(rt.mse1),
        mse=np.asarray(rt.mse),
        grid=rt.grid,
        method=rt.method,
    )
