"""Minimum-MSE (MMSE) quantization scales, per tensor or per output channel.

Reference: Y. Choukroun, E. Kravchik, F. Yang and P. Kisilev, "Low-bit Quantization of Neural
Networks for Efficient Inference", ICCV Workshops 2019 (arXiv:1902.06822), Section 3: the
scale of each tensor (weights: of each output kernel) is the minimiser of the mean squared
quantization error, ``alpha* = argmin_alpha ||x - alpha * clip(round(x / alpha))||^2 / n``.

The error is not convex in ``alpha`` (it is piecewise quadratic, with a kink wherever an element
crosses a rounding boundary), so :func:`mmse_scale` searches in three stages and keeps the best
scale it has evaluated (so it is never worse than any candidate, min-max included):

1. **coarse grid** — ``n_grid`` clip values ``max|x| * k / n_grid`` (``k = 1..n_grid``, the
   last one is min-max) plus ``n_grid // 4`` geometric ones below ``max|x| / n_grid`` (down to
   ``0.1 * mean|x|``, which matters for heavy-tailed data whose optimum clip is a tiny fraction
   of the maximum), all evaluated exactly in one chunked pass of
   :func:`~frugalml.quant.uniform.quant_mse`;
2. **golden-section search** on the bracket formed by the best grid point's neighbours,
   vectorised over channels (one pass over the data per iteration);
3. **alternating closed-form refinement** (the paper's iterative scheme): with the integer codes
   ``q`` fixed, the best scale is the least-squares ``alpha = <x, q> / <q, q>``; re-rounding with
   the new scale can only lower the error again, so the sequence descends monotonically.

Unsigned grids (``signed=False``): non-negative data (after a ReLU) use ``0..2^b-1`` with zero
point 0 and the same 1-D search over ``(0, max x]``. If the data has negative values, the grid
is *asymmetric*: a clip range ``[lo, hi]`` with ``lo <= 0 <= hi`` maps to
``scale = (hi - lo) / (2^b - 1)`` and zero point ``z = round(-lo / scale)``; ``(lo, hi)`` is
searched on a coarse 2-D grid of shrink factors of ``(min x, max x)``; since the integer zero
point makes the error jump, the best point is then polished by a hill climb over zero points
(``z``, ``z +- 1``, each with a 1-D golden-section search of the scale for that fixed ``z``),
and finally by an alternating refinement that fits
``x ~ scale * q + offset`` by least squares for fixed codes ``q``, rounds the zero point
``z = round(-offset / scale)`` and refits the scale for that integer ``z``.

The grid and golden-section searches live in :mod:`frugalml.quant.scale_search` (shared with
the histogram calibration), the result type in :mod:`frugalml.quant.scale_result`; this module
holds the alternating refinement, :func:`mmse_scale` and :class:`MMSEQuantizer`.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..errors import InvalidInputError
from .scale_result import ScaleResult, make_scale_result
from .scale_search import (
    REFINE_MODES,
    check_search_options,
    low_ratio,
    search_affine,
    search_scale,
)
from .uniform import Grid, MSEEvaluator, as_channels, check_bits

__all__ = ["REFINE_MODES", "MMSEQuantizer", "ScaleResult", "mmse_scale"]


def _alternate(
    ev: MSEEvaluator,
    scale: np.ndarray,
    zp: np.ndarray | None,
    mse: np.ndarray,
    max_refine: int,
) -> tuple[np.ndarray, np.ndarray | None, np.ndarray]:
    """Alternating closed-form refinement from ``(scale, zp)`` with error ``mse`` (all ``(C,)``).

    Zero point ``None`` (symmetric/unsigned): ``scale <- <x, q> / <q, q>`` for the current
    codes ``q``, then re-round. With a zero point: least-squares fit ``x ~ s * c + t`` on the raw
    codes ``c``, ``z = round(-t / s)``, then ``s = <x, c - z> / <c - z, c - z>``. Keeps the best
    parameters seen, so the result is never worse than the input.
    """
    x2 = ev.x2
    best_s, best_f = scale.copy(), mse.copy()
    best_z = None if zp is None else zp.copy()
    s = scale.copy()
    z = None if zp is None else zp.copy()
    q, _ = ev.codes(s, z)
    for _ in range(max_refine):
        if z is None:
            num = np.einsum("cn,cn->c", x2, q)
            den = np.einsum("cn,cn->c", q, q)
            ok = (den > 0) & (num > 0)
            s_new = np.where(ok, num / np.where(ok, den, 1.0), s)
            z_new = None
        else:
            raw = q + z[:, None]
            cm = raw.mean(axis=1)
            xm = x2.mean(axis=1)
            rc = raw - cm[:, None]
            var = np.einsum("cn,cn->c", rc, rc)
            cov = np.einsum("cn,cn->c", rc, x2 - xm[:, None])
            ok = (var > 0) & (cov > 0)
            slope = np.where(ok, cov / np.where(ok, var, 1.0), s)
            offset = xm - slope * cm
            z_new = np.where(ok, np.clip(np.rint(-offset / slope), 0, ev.qmax), z)
            off = raw - z_new[:, None]
            num = np.einsum("cn,cn->c", x2, off)
            den = np.einsum("cn,cn->c", off, off)
            ok = (den > 0) & (num > 0)
            s_new = np.where(ok, num / np.where(ok, den, 1.0), s)
        same_s = np.all(np.abs(s_new - s) <= 1e-13 * s)
        if same_s and (z is None or np.array_equal(z_new, z)):
            break
        s, z = s_new, z_new
        q, f_new = ev.codes(s, z)
        better = f_new < best_f
        best_s[better] = s[better]
        best_f[better] = f_new[better]
        if best_z is not None and z is not None:
            best_z[better] = z[better]
    return best_s, best_z, best_f


def mmse_scale(
    x: Any,
    bits: int,
    *,
    signed: bool = True,
    per_channel: bool = False,
    n_grid: int = 100,
    refine: str = "both",
    max_refine: int = 30,
) -> ScaleResult:
    """Minimum-MSE quantization scale of ``x`` (see the module docstring for the search).

    Parameters
    ----------
    x:
        Data, any shape, finite and non-empty. With ``per_channel=True`` axis 0 is the channel
        (output channels of a Linear ``(out, in)`` or Conv ``(out, in, k...)`` weight).
    bits:
        2..8.
    signed:
        ``True``: symmetric narrow grid, zero point 0. ``False``: ``0..2^b-1``; zero point 0
        for non-negative data, otherwise an asymmetric range with a zero point.
    n_grid:
        Coarse grid size (``>= 4``); the asymmetric search uses a ``ceil(sqrt(n_grid))``-per-side
        2-D grid.
    refine:
        ``"both"`` (golden section, then alternating), ``"golden"``, ``"alternating"`` or
        ``"none"`` (coarse grid only).
    max_refine:
        Iteration cap of the alternating refinement.

    Returns a :class:`ScaleResult` (``method="mmse"``) whose ``mse`` is the exact error of the
    returned parameters, never above the min-max scale's. All-zero channels get scale 1.

    Cost: ``O((n_grid + golden iterations + max_refine) * x.size)`` time (about
    ``1.25 n_grid + 20 + max_refine`` data passes per tensor; the asymmetric search about
    ``1.6 n_grid + 35 (1 + 2 rounds) + max_refine``), ``O(x.size)`` memory.
    """
    bits = check_bits(bits)
    n_grid, refine, max_refine = check_search_options(n_grid, refine, max_refine)
    x2 = as_channels(x, bool(per_channel))
    mn = np.minimum(x2.min(axis=1), 0.0)
    mx = np.maximum(x2.max(axis=1), 0.0)
    asymmetric = not signed and bool(np.any(mn < 0))
    grid = Grid(bits, signed=bool(signed))
    ev = MSEEvaluator(x2, grid.qmin, grid.qmax)
    golden = refine in ("both", "golden")
    alternating = refine in ("both", "alternating") and max_refine > 0
    mean_abs = np.abs(x2).mean(axis=1)
    zp: np.ndarray | None
    if asymmetric:
        top = np.maximum(-mn, mx)
        low = low_ratio(mean_abs, np.where(top > 0, top, 1.0))
        scale, zp, mse = search_affine(ev, mn, mx, low, grid.qmax, n_grid, golden)
    else:
        top = np.maximum(-mn, mx)
        zero = top == 0
        top = np.where(zero, 1.0, top)
        scale, mse = search_scale(ev, top, low_ratio(mean_abs, top), grid.qmax, n_grid, golden)
        zp = None
    if alternating:
        scale, zp, mse = _alternate(ev, scale, zp, mse, max_refine)
    if not asymmetric:
        scale = np.where(zero, 1.0, scale)
        mse = np.where(zero, 0.0, mse)
    return make_scale_result(scale, zp, mse, grid, "mmse", bool(per_channel))


class MMSEQuantizer:
    """Object API around :func:`mmse_scale`: ``fit`` on data, then quantize like data.

    After :meth:`fit`: ``scale_``, ``zero_point_``, ``mse_`` (shape ``()`` or ``(C,)``) and
    ``result_`` (the :class:`ScaleResult`).
    """

    def __init__(
        self,
        bits: int,
        signed: bool = True,
        per_channel: bool = False,
        *,
        n_grid: int = 100,
        refine: str = "both",
        max_refine: int = 30,
    ) -> None:
        self.bits = check_bits(bits)
        self.signed = bool(signed)
        self.per_channel = bool(per_channel)
        self.n_grid, self.refine, self.max_refine = check_search_options(n_grid, refine, max_refine)
        self.result_: ScaleResult | None = None

    def _fitted(self) -> ScaleResult:
        if self.result_ is None:
            raise InvalidInputError(f"this {type(self).__name__} is not fitted yet; call fit()")
        return self.result_

    @property
    def scale_(self) -> np.ndarray:
        return self._fitted().scale

    @property
    def zero_point_(self) -> np.ndarray:
        return self._fitted().zero_point

    @property
    def mse_(self) -> np.ndarray:
        return self._fitted().mse

    def fit(self, x: Any) -> MMSEQuantizer:
        """Find the MMSE scale of ``x``; returns ``self``."""
        self.result_ = mmse_scale(
            x,
            self.bits,
            signed=self.signed,
            per_channel=self.per_channel,
            n_grid=self.n_grid,
            refine=self.refine,
            max_refine=self.max_refine,
        )
        return self

    def quantize(self, x: Any) -> np.ndarray:
        """Integer codes (``int32``) of ``x`` with the fitted parameters."""
        return self._fitted().quantize(x)

    def dequantize(self, codes: Any) -> np.ndarray:
        """Real values of integer ``codes``."""
        return self._fitted().dequantize(codes)

    def fake_quantize(self, x: Any) -> np.ndarray:
        """``x`` rounded onto the fitted grid."""
        return self._fitted().fake_quantize(x)

    def __repr__(self) -> str:
        return (
            f"MMSEQuantizer(bits={self.bits}, signed={self.signed}, per_channel={self.per_channel})"
        )
