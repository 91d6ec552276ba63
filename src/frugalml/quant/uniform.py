"""Uniform integer grids: quantize, dequantize, and the exact quantization MSE of many scales.

Reference: Y. Choukroun, E. Kravchik, F. Yang and P. Kisilev, "Low-bit Quantization of Neural
Networks for Efficient Inference", ICCV Workshops 2019 (arXiv:1902.06822).

The paper quantizes a tensor ``x`` with a scale ``alpha`` onto a uniform grid of integers,
``Q(x) = alpha * clip(round(x / alpha), qmin, qmax)``, and picks ``alpha`` to minimise the mean
squared error ``||x - Q(x)||^2 / n``. This module holds the grid (:class:`Grid`), the
element-wise maps (:func:`quantize`, :func:`dequantize`, :func:`fake_quantize`) and
:func:`quant_mse`, which evaluates that error for a whole batch of candidate scales at once
(per tensor or per output channel) — the inner loop of every scale search in
:mod:`frugalml.quant`.

Conventions:

* signed grids are symmetric and *narrow*: ``qmin = -(2^(b-1) - 1)``, ``qmax = 2^(b-1) - 1``
  (``-127..127`` for 8 bits, ``-1..1`` (ternary) for 2 bits), so integer kernels stay symmetric;
* unsigned grids are ``0 .. 2^b - 1``; with a ``zero_point`` ``z`` the represented values are
  ``scale * (code - z)``, an asymmetric range;
* rounding is to the nearest integer, ties to even (``numpy.rint``, the same as ``torch.round``).
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass
from typing import Any

import numpy as np

from .._validate import check_array, check_choice
from ..errors import InvalidInputError

__all__ = [
    "Grid",
    "MSEEvaluator",
    "as_channels",
    "check_bits",
    "check_grid",
    "dequantize",
    "expand_channels",
    "fake_quantize",
    "quant_mse",
    "quantize",
]

#: float64 elements per temporary buffer in :func:`quant_mse` (8 MiB; two such buffers at most)
_CHUNK_ELEMS = 1 << 20


def check_bits(bits: Any) -> int:
    """Return ``bits`` as an ``int`` in ``2..8`` or raise :class:`InvalidInputError`."""
    if isinstance(bits, bool) or not isinstance(bits, numbers.Integral):
        if isinstance(bits, float) and bits.is_integer():
            bits = int(bits)
        else:
            raise InvalidInputError(f"bits must be 2..8 (an integer), got {bits!r}")
    bits = int(bits)
    if not 2 <= bits <= 8:
        raise InvalidInputError(f"bits must be 2..8, got {bits}")
    return bits


@dataclass(frozen=True)
class Grid:
    """A uniform integer grid of ``bits`` bits.

    ``signed=True``: the symmetric narrow grid ``-(2^(b-1)-1) .. 2^(b-1)-1`` (zero point 0);
    ``signed=False``: ``0 .. 2^b - 1`` (non-negative data, or asymmetric with a zero point).
    """

    bits: int
    signed: bool = True

    def __post_init__(self) -> None:
        object.__setattr__(self, "bits", check_bits(self.bits))
        if not isinstance(self.signed, (bool, np.bool_)):
            raise InvalidInputError(f"signed must be True or False, got {self.signed!r}")
        object.__setattr__(self, "signed", bool(self.signed))

    @property
    def qmin(self) -> int:
        """Smallest integer code."""
        return -(2 ** (self.bits - 1) - 1) if self.signed else 0

    @property
    def qmax(self) -> int:
        """Largest integer code."""
        return 2 ** (self.bits - 1) - 1 if self.signed else 2**self.bits - 1

    @property
    def levels(self) -> int:
        """Number of integer codes, ``qmax - qmin + 1``."""
        return self.qmax - self.qmin + 1

    def summary(self) -> str:
        kind = "signed" if self.signed else "unsigned"
        return f"{self.bits}-bit {kind} grid [{self.qmin}, {self.qmax}]"


def check_grid(grid: Any) -> Grid:
    """``grid`` itself if it is a :class:`Grid`, else :class:`InvalidInputError`."""
    if not isinstance(grid, Grid):
        raise InvalidInputError(
            f"grid must be a frugalml.quant.uniform.Grid, got {type(grid).__name__}; "
            "build one with Grid(bits, signed=...)"
        )
    return grid


def _check_scale(scale: Any, name: str = "scale") -> np.ndarray:
    s = check_array(scale, name, dtype=np.float64)
    if np.any(s <= 0):
        raise InvalidInputError(f"{name} must be > 0 everywhere, got min {float(s.min()):g}")
    return s


def _check_zero_point(zero_point: Any, grid: Grid, name: str = "zero_point") -> np.ndarray:
    z = check_array(zero_point, name, dtype=np.float64)
    if np.any(z != np.rint(z)):
        raise InvalidInputError(f"{name} must hold integers, got {zero_point!r}")
    if np.any(z < grid.qmin) or np.any(z > grid.qmax):
        raise InvalidInputError(
            f"{name} must lie in the grid's range [{grid.qmin}, {grid.qmax}], "
            f"got values in [{z.min():g}, {z.max():g}]"
        )
    return z


def _broadcast(x: np.ndarray, other: np.ndarray, name: str) -> None:
    try:
        shape = np.broadcast_shapes(x.shape, other.shape)
    except ValueError as exc:
        raise InvalidInputError(
            f"{name} of shape {other.shape} does not broadcast against x of shape {x.shape}; "
            "per-channel values need shape (C, 1, ..., 1)"
        ) from exc
    if shape != x.shape:
        raise InvalidInputError(
            f"{name} of shape {other.shape} would enlarge x of shape {x.shape}; "
            "per-channel values need shape (C, 1, ..., 1)"
        )


def _float_dtype(arr: np.ndarray) -> np.dtype:
    return arr.dtype if arr.dtype in (np.float32, np.float64) else np.dtype(np.float64)


def quantize(x: Any, scale: Any, grid: Grid, zero_point: Any = 0) -> np.ndarray:
    """Integer codes ``clip(rint(x / scale) + zero_point, qmin, qmax)`` as ``int32``.

    ``scale`` (``> 0``) and ``zero_point`` broadcast to ``x`` (per channel: shape
    ``(C, 1, ..., 1)``). ``O(x.size)``.
    """
    grid = check_grid(grid)
    xa = check_array(x, "x", dtype=None, min_size=0)
    s = _check_scale(scale)
    z = _check_zero_point(zero_point, grid)
    _broadcast(xa, s, "scale")
    _broadcast(xa, z, "zero_point")
    t = np.rint(xa.astype(np.float64, copy=False) / s)
    if np.any(z != 0):
        t = t + z
    np.clip(t, grid.qmin, grid.qmax, out=t)
    return t.astype(np.int32)


def dequantize(codes: Any, scale: Any, grid: Grid, zero_point: Any = 0) -> np.ndarray:
    """Real values ``scale * (codes - zero_point)``; codes must lie on ``grid``. ``O(size)``.

    Returns ``float32`` when ``scale`` is ``float32``, else ``float64``.
    """
    grid = check_grid(grid)
    c = check_array(codes, "codes", dtype=None, min_size=0)
    if c.size and (np.any(c != np.rint(c)) or c.min() < grid.qmin or c.max() > grid.qmax):
        raise InvalidInputError(
            f"codes must be integers in [{grid.qmin}, {grid.qmax}] ({grid.summary()})"
        )
    dtype = _float_dtype(np.asarray(scale))
    s = _check_scale(scale)
    z = _check_zero_point(zero_point, grid)
    _broadcast(c, s, "scale")
    _broadcast(c, z, "zero_point")
    return ((c.astype(np.float64) - z) * s).astype(dtype, copy=False)


def fake_quantize(x: Any, scale: Any, grid: Grid, zero_point: Any = 0) -> np.ndarray:
    """``dequantize(quantize(x))``: ``x`` rounded onto the grid, in ``x``'s float dtype."""
    xa = check_array(x, "x", dtype=None, min_size=0)
    codes = quantize(xa, scale, grid, zero_point)
    out = dequantize(codes, np.asarray(scale, dtype=np.float64), grid, zero_point)
    return out.astype(_float_dtype(xa), copy=False)


def quant_mse(
    x: Any,
    scales: Any,
    grid: Grid,
    axis: int | None = None,
    *,
    zero_points: Any = None,
) -> np.ndarray:
    """Exact mean squared quantization error of ``x`` for each candidate scale.

    Parameters
    ----------
    x:
        Data, any shape (converted to ``float64``).
    scales:
        Candidates. ``axis=None`` (per tensor): shape ``(m,)``, result ``(m,)``.
        ``axis=0`` (per channel, channel = first axis of ``x``, ``C = x.shape[0]``): shape
        ``(m, C)``, result ``(m, C)``, the error of channel ``c`` averaged over its elements.
    zero_points:
        Optional integer zero points, same shape as ``scales`` (asymmetric grids); default 0.

    Every candidate is evaluated directly, ``mean((x - s * clip(rint(x/s) + z, qmin, qmax)
    + s * z)^2)`` with float64 accumulation; the candidates are processed in chunks through two
    reused buffers of 8 MiB, so the memory stays bounded for any ``m`` and any size of ``x``.
    Cost ``O(m * x.size)`` time, ``O(x.size)`` extra memory.
    """
    grid = check_grid(grid)
    check_choice(axis, "axis", (None, 0))
    xa = check_array(x, "x", dtype=np.float64)
    s = _check_scale(scales, "scales")
    if axis is None:
        if s.ndim != 1:
            raise InvalidInputError(
                f"per-tensor scales must have shape (m,), got {s.shape}; for per-channel "
                "candidates pass axis=0 and shape (m, C)"
            )
        x2 = xa.reshape(1, -1)
        s2 = s[:, None]
    else:
        if xa.ndim == 0:
            raise InvalidInputError("per-channel quant_mse needs x with at least 1 dimension")
        channels = xa.shape[0]
        if s.ndim != 2 or s.shape[1] != channels:
            raise InvalidInputError(
                f"per-channel scales must have shape (m, {channels}) for x of shape "
                f"{xa.shape}, got {s.shape}"
            )
        x2 = xa.reshape(channels, -1)
        s2 = s
    z2 = None
    if zero_points is not None:
        z = _check_zero_point(zero_points, grid, "zero_points")
        if z.shape != s.shape:
            raise InvalidInputError(
                f"zero_points must have the shape of scales {s.shape}, got {z.shape}"
            )
        z2 = z[:, None] if axis is None else z
    out = MSEEvaluator(x2, grid.qmin, grid.qmax)(s2, z2)
    return out.reshape(s.shape)


class MSEEvaluator:
    """Unchecked core of :func:`quant_mse` on ``x2`` of shape ``(C, n)`` (float64), reusing its
    work buffers across calls (the scale searches call it many times).

    ``ev(s, z)`` evaluates ``m`` candidates ``(m, C)`` in ``O(m C n)`` time with two work
    buffers of at most 8 MiB; the inputs are not validated (callers check them)."""

    def __init__(self, x2: np.ndarray, qmin: int, qmax: int) -> None:
        self.x2 = x2
        self.qmin = qmin
        self.qmax = qmax
        self._buf = np.empty(0)
        self._sq = np.empty(0)

    def _buffers(self, size: int) -> tuple[np.ndarray, np.ndarray]:
        if self._buf.size < size:
            self._buf = np.empty(size)
            self._sq = np.empty(size)
        return self._buf[:size], self._sq[:size]

    def __call__(self, s: np.ndarray, z: np.ndarray | None = None) -> np.ndarray:
        """Mean squared error for scales ``s`` (and zero points ``z``) of shape ``(m, C)``."""
        x2 = self.x2
        channels, n = x2.shape
        m = s.shape[0]
        out = np.zeros((m, channels))
        per_candidate = channels * n
        if per_candidate <= _CHUNK_ELEMS:
            k, width = max(1, _CHUNK_ELEMS // per_candidate), n
        else:
            k, width = 1, max(1, _CHUNK_ELEMS // channels)
        use_z = z is not None and bool(np.any(z != 0))
        for i in range(0, m, k):
            si = s[i : i + k, :, None]
            zi = z[i : i + k, :, None] if use_z and z is not None else None
            kk = si.shape[0]
            for j in range(0, n, width):
                xb = x2[None, :, j : j + width]
                shape = (kk, channels, xb.shape[2])
                buf, sq = self._buffers(kk * channels * xb.shape[2])
                t = buf.reshape(shape)
                np.divide(xb, si, out=t)
                np.rint(t, out=t)
                if zi is not None:
                    t += zi
                np.clip(t, self.qmin, self.qmax, out=t)
                if zi is not None:
                    t -= zi
                t *= si
                np.subtract(xb, t, out=t)
                u = sq.reshape(shape)
                np.multiply(t, t, out=u)
                out[i : i + kk] += u.sum(axis=2)
        out /= n
        return out

    def codes(self, s: np.ndarray, z: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Offset codes ``clip(rint(x/s) + z, qmin, qmax) - z`` (float64, ``(C, n)``) for one
        scale per channel ``s`` ``(C,)``, and their mean squared error ``(C,)``."""
        x2 = self.x2
        sc = s[:, None]
        q = x2 / sc
        np.rint(q, out=q)
        if z is not None:
            q += z[:, None]
        np.clip(q, self.qmin, self.qmax, out=q)
        if z is not None:
            q -= z[:, None]
        d = x2 - sc * q
        mse = np.einsum("cn,cn->c", d, d) / x2.shape[1]
        return q, mse


def as_channels(x: Any, per_channel: bool, name: str = "x") -> np.ndarray:
    """Check ``x`` (finite, non-empty) and view it as ``(C, n)`` float64: one row per output
    channel (first axis) when ``per_channel``, else a single row."""
    xa = check_array(x, name, dtype=np.float64)
    if per_channel:
        if xa.ndim == 0:
            raise InvalidInputError(
                f"per-channel quantization needs {name} with a channel axis (axis 0), got a scalar"
            )
        return xa.reshape(xa.shape[0], -1)
    return xa.reshape(1, -1)


def expand_channels(values: np.ndarray, ndim: int) -> np.ndarray:
    """Per-channel values ``(C,)`` as ``(C, 1, ..., 1)`` for an ``ndim``-dimensional tensor;
    scalars stay scalars."""
    v = np.asarray(values)
    if v.ndim == 0:
        return v
    return v.reshape((v.shape[0],) + (1,) * (ndim - 1))
