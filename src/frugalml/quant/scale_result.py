"""The quantization parameters of one tensor: :class:`ScaleResult`, shared by every scale method.

Reference: Y. Choukroun, E. Kravchik, F. Yang and P. Kisilev, "Low-bit Quantization of Neural
Networks for Efficient Inference", ICCV Workshops 2019 (arXiv:1902.06822): a tensor (per
tensor) or each output kernel (per channel) is represented by a scale, an integer zero point
and integer codes on a uniform grid. :func:`~frugalml.quant.mmse.mmse_scale`, the baselines of
:mod:`frugalml.quant.baselines` and the histogram calibration of
:mod:`frugalml.quant.calibrate` all return a :class:`ScaleResult` built by
:func:`make_scale_result`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from .._results import ResultRepr
from ..errors import InvalidInputError
from .uniform import Grid, dequantize, expand_channels, fake_quantize, quantize

__all__ = ["ScaleResult", "make_scale_result"]


@dataclass(frozen=True, eq=False, repr=False)
class ScaleResult(ResultRepr):
    """Quantization parameters of one tensor.

    ``scale``, ``zero_point`` (integers) and ``mse`` (mean squared error per element) have shape
    ``()`` for a per-tensor result and ``(C,)`` for a per-channel one (channel = axis 0).
    Represented values are ``scale * (code - zero_point)`` with codes on ``grid``.
    """

    scale: np.ndarray
    zero_point: np.ndarray
    mse: np.ndarray
    grid: Grid
    method: str

    @property
    def per_channel(self) -> bool:
        """Whether the parameters are per output channel."""
        return np.ndim(self.scale) == 1

    def _params(self, ndim: int, n_channels: int | None) -> tuple[np.ndarray, np.ndarray]:
        if self.per_channel and (ndim == 0 or n_channels != self.scale.shape[0]):
            raise InvalidInputError(
                f"these per-channel parameters are for {self.scale.shape[0]} channels "
                f"(axis 0), got an array with leading dimension {n_channels}"
            )
        return expand_channels(self.scale, ndim), expand_channels(self.zero_point, ndim)

    def quantize(self, x: Any) -> np.ndarray:
        """Integer codes of ``x`` (``int32``), see :func:`~frugalml.quant.uniform.quantize`."""
        xa = np.asarray(x)
        s, z = self._params(xa.ndim, xa.shape[0] if xa.ndim else None)
        return quantize(xa, s, self.grid, z)

    def dequantize(self, codes: Any) -> np.ndarray:
        """``scale * (codes - zero_point)``."""
        c = np.asarray(codes)
        s, z = self._params(c.ndim, c.shape[0] if c.ndim else None)
        return dequantize(c, s, self.grid, z)

    def fake_quantize(self, x: Any) -> np.ndarray:
        """``x`` rounded onto the grid, in ``x``'s float dtype."""
        xa = np.asarray(x)
        s, z = self._params(xa.ndim, xa.shape[0] if xa.ndim else None)
        return fake_quantize(xa, s, self.grid, z)

    def summary(self) -> str:
        scale = np.atleast_1d(self.scale)
        mse = np.atleast_1d(self.mse)
        where = f"{scale.size} channels" if self.per_channel else "per tensor"
        text = (
            f"{self.method} scales ({self.grid.summary()}, {where}): "
            f"scale {scale.min():.6g}..{scale.max():.6g}, mean MSE {mse.mean():.6g}"
        )
        if np.any(self.zero_point != 0):
            zp = np.atleast_1d(self.zero_point)
            text += f", zero point {int(zp.min())}..{int(zp.max())}"
        return text


def make_scale_result(
    scale: np.ndarray,
    zero_point: np.ndarray | None,
    mse: np.ndarray,
    grid: Grid,
    method: str,
    per_channel: bool,
) -> ScaleResult:
    """Package per-channel arrays ``(C,)`` as a :class:`ScaleResult` (zero points rounded to
    int64; ``None`` means 0); a per-tensor result (``per_channel=False``, ``C == 1``) gets
    shape ``()``. ``O(C)``."""
    scale = np.asarray(scale, dtype=np.float64)
    zp = np.zeros(scale.shape, dtype=np.int64) if zero_point is None else zero_point
    zp = np.asarray(np.rint(zp), dtype=np.int64)
    mse = np.asarray(mse, dtype=np.float64)
    if not per_channel:
        scale, zp, mse = scale.reshape(()), zp.reshape(()), mse.reshape(())
    return ScaleResult(scale=scale, zero_point=zp, mse=mse, grid=grid, method=method)
