"""Group-wise weight scales: one scale per output channel and per group of input columns.

The per-kernel scales of Choukroun, Kravchik, Yang and Kisilev, "Low-bit Quantization of
Neural Networks for Efficient Inference" (ICCV Workshops 2019, arXiv:1902.06822) are refined
along the input dimension, as in GPTQ (Frantar et al. 2022) and the INT4 kernels of ONNX
Runtime (``MatMulNBits``) and torchao: a Linear weight ``W`` ``(out, in)`` is split into
``in / g`` consecutive groups of ``g`` columns, and each ``(kernel, group)`` block gets its own
MMSE (or baseline) scale on the signed symmetric grid. The integer accumulation stays exact
within a group; the layer adds ``in / g`` scaled partial sums per output.

Pure NumPy; ``O(out * in)`` plus the scale searches.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .._validate import check_int
from ..errors import InvalidInputError
from .baselines import SCALE_METHODS
from .scale_result import ScaleResult

__all__ = ["check_group_size", "group_rows", "group_scale_result"]


def check_group_size(group_size: Any, in_features: int | None = None) -> int | None:
    """``None`` (per-kernel scales) or an integer ``>= 2`` that divides ``in_features`` (when
    given). Raises :class:`~frugalml.errors.InvalidInputError` otherwise."""
    if group_size is None:
        return None
    g = check_int(group_size, "group_size", low=2)
    if in_features is not None and in_features % g:
        raise InvalidInputError(
            f"group_size {g} does not divide the layer's {in_features} inputs; choose a "
            f"divisor (e.g. 32, 64 or 128 for transformer widths) or skip= the layer"
        )
    return g


def group_rows(W2: np.ndarray, group_size: int) -> np.ndarray:
    """``W2`` ``(out, in)`` viewed as ``(out * in / g, g)``: one row per (kernel, group),
    kernel-major (row ``k * G + j`` is group ``j`` of kernel ``k``)."""
    out, d = W2.shape
    check_group_size(group_size, d)
    return W2.reshape(out * (d // group_size), group_size)


def group_scale_result(W2: np.ndarray, bits: int, group_size: int, method: str) -> ScaleResult:
    """Scales of every (kernel, group) block of ``W2`` ``(out, in)`` with
    ``SCALE_METHODS[method]`` on the signed grid: a per-channel :class:`ScaleResult` over the
    ``out * in / g`` rows of :func:`group_rows` (``histogram``, per tensor only, falls back to
    min-max)."""
    if method not in SCALE_METHODS:
        listed = ", ".join(repr(k) for k in SCALE_METHODS)
        raise InvalidInputError(f"method must be one of {listed}; got {method!r}")
    fn = SCALE_METHODS["minmax" if method == "histogram" else method]
    return fn(group_rows(W2, group_size), bits, signed=True, per_channel=True)
