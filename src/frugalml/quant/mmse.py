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
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from .._results import ResultRepr
from .._validate import check_choice, check_int
from ..errors import InvalidInputError
from .uniform import (
    Grid,
    _as_channels,
    _Evaluator,
    _expand,
    check_bits,
    dequantize,
    fake_quantize,
    quantize,
)

__all__ = ["REFINE_MODES", "MMSEQuantizer", "ScaleResult", "mmse_scale"]

#: accepted values of ``refine`` in :func:`mmse_scale`
REFINE_MODES = ("both", "golden", "alternating", "none")

_INV_PHI = (math.sqrt(5.0) - 1.0) / 2.0
_GOLDEN_TOL = 1e-5  # final bracket width, relative to the bracket's upper end


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
        return _expand(self.scale, ndim), _expand(self.zero_point, ndim)

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


def _make_result(
    scale: np.ndarray,
    zero_point: np.ndarray | None,
    mse: np.ndarray,
    grid: Grid,
    method: str,
    per_channel: bool,
) -> ScaleResult:
    """Package ``(C,)`` arrays; ``C == 1`` per tensor becomes shape ``()``."""
    scale = np.asarray(scale, dtype=np.float64)
    zp = np.zeros(scale.shape, dtype=np.int64) if zero_point is None else zero_point
    zp = np.asarray(np.rint(zp), dtype=np.int64)
    mse = np.asarray(mse, dtype=np.float64)
    if not per_channel:
        scale, zp, mse = scale.reshape(()), zp.reshape(()), mse.reshape(())
    return ScaleResult(scale=scale, zero_point=zp, mse=mse, grid=grid, method=method)


# --------------------------------------------------------------------------- search engine
#
# The searches below are shared with the histogram calibration of frugalml.quant.calibrate:
# they only need an objective ``f(scales (m, C), zero_points (m, C) | None) -> mse (m, C)``.

Objective = Callable[[np.ndarray, np.ndarray | None], np.ndarray]


def _ratio_grid(n_grid: int, low: np.ndarray) -> np.ndarray:
    """Clip ratios ``(m, C)`` in ``(0, 1]``, ascending along axis 0: ``n_grid // 4`` geometric
    ratios from ``low`` (per channel) up to ``1/n_grid`` (exclusive), then ``k / n_grid``."""
    n_geo = max(2, n_grid // 4)
    first = 1.0 / n_grid
    low = np.minimum(low, first)
    steps = np.arange(n_geo)[:, None] / n_geo
    geo = low[None, :] * (first / low[None, :]) ** steps
    lin = np.broadcast_to((np.arange(1, n_grid + 1) / n_grid)[:, None], (n_grid, low.size))
    return np.concatenate([geo, lin], axis=0)


def _brackets(ratios: np.ndarray, idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Neighbours of the best grid index per channel, as a golden-section bracket."""
    cols = np.arange(ratios.shape[1])
    last = ratios.shape[0] - 1
    lo = np.where(idx > 0, ratios[np.maximum(idx - 1, 0), cols], 0.5 * ratios[0])
    hi = ratios[np.minimum(idx + 1, last), cols]
    return lo, hi


def _golden(
    f: Callable[[np.ndarray], np.ndarray],
    a: np.ndarray,
    b: np.ndarray,
    best_x: np.ndarray,
    best_f: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Vectorised golden-section minimisation of ``f`` on ``[a, b]`` per channel.

    ``f`` maps parameters ``(m, C)`` to values ``(m, C)``. Returns the best point evaluated
    (or the incoming ``best_x`` where nothing beat ``best_f``). Iterates until every bracket is
    ``_GOLDEN_TOL`` wide relative to its upper end: one evaluation (a data pass) per iteration.
    """
    best_x, best_f = best_x.copy(), best_f.copy()
    width = np.max((b - a) / np.maximum(b, np.finfo(float).tiny))
    if not width > _GOLDEN_TOL:
        return best_x, best_f
    n_iter = min(80, math.ceil(math.log(_GOLDEN_TOL / width) / math.log(_INV_PHI)))

    def keep(x: np.ndarray, fx: np.ndarray) -> None:
        better = fx < best_f
        best_x[better] = x[better]
        best_f[better] = fx[better]

    c = b - _INV_PHI * (b - a)
    d = a + _INV_PHI * (b - a)
    both = f(np.stack([c, d]))
    fc, fd = both[0], both[1]
    keep(c, fc)
    keep(d, fd)
    for _ in range(n_iter):
        left = fc <= fd  # the minimum lies in [a, d]
        a, b = np.where(left, a, c), np.where(left, d, b)
        x_new = np.where(left, b - _INV_PHI * (b - a), a + _INV_PHI * (b - a))
        f_new = f(x_new[None])[0]
        keep(x_new, f_new)
        c, fc, d, fd = (
            np.where(left, x_new, d),
            np.where(left, f_new, fd),
            np.where(left, c, x_new),
            np.where(left, fc, f_new),
        )
    return best_x, best_f


def _search_scale(
    f: Objective,
    top: np.ndarray,
    low_ratio: np.ndarray,
    qmax: int,
    n_grid: int,
    golden: bool,
) -> tuple[np.ndarray, np.ndarray]:
    """1-D clip search (zero point 0): scale = clip / qmax, clip in (0, top]. Returns the best
    scale and its MSE per channel (``(C,)`` each)."""
    ratios = _ratio_grid(n_grid, low_ratio)
    unit = top / qmax
    mse = f(ratios * unit, None)
    idx = np.argmin(mse, axis=0)
    cols = np.arange(top.size)
    best_r, best_f = ratios[idx, cols], mse[idx, cols]
    if golden:
        a, b = _brackets(ratios, idx)
        best_r, best_f = _golden(lambda r: f(r * unit, None), a, b, best_r, best_f)
    return best_r * unit, best_f


def _affine(
    lo: np.ndarray, hi: np.ndarray, qmax: int, safe: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Scale and integer zero point of the clip range ``[lo, hi]`` (``lo <= 0 <= hi``) on
    ``0..qmax``; ``safe`` (``(C,)``) marks channels whose range is non-degenerate."""
    span = hi - lo
    scale = np.where(safe, span / qmax, 1.0)
    scale = np.where(scale > 0, scale, 1.0)
    zp = np.clip(np.rint(-lo / scale), 0, qmax)
    return scale, zp


def _search_scale_fixed_zp(
    f: Objective,
    s0: np.ndarray,
    z: np.ndarray,
    best_f: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """1-D search of the scale around ``s0`` for fixed integer zero points ``z`` (all ``(C,)``):
    17 ratios in ``[0.75, 1.33]``, then golden section on the best one's neighbours. Returns
    the best scale and error (``best_f`` is the error to beat; ``s0`` is kept where nothing
    beats it)."""
    ratios = np.broadcast_to(np.linspace(0.75, 1.33, 17)[:, None], (17, s0.size))
    zz = np.broadcast_to(z, ratios.shape)
    mse = f(ratios * s0, zz)
    idx = np.argmin(mse, axis=0)
    cols = np.arange(s0.size)
    r_best, f_best = ratios[idx, cols], mse[idx, cols]
    a, b = _brackets(ratios, idx)
    r_best, f_best = _golden(lambda r: f(r * s0, np.broadcast_to(z, r.shape)), a, b, r_best, f_best)
    better = f_best < best_f
    return np.where(better, r_best * s0, s0), np.where(better, f_best, best_f)


def _search_affine(
    f: Objective,
    mn: np.ndarray,
    mx: np.ndarray,
    low_ratio: np.ndarray,
    qmax: int,
    n_grid: int,
    golden: bool,
    max_rounds: int = 8,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Asymmetric search (``mn <= 0 <= mx`` per channel). A coarse grid of clip ranges
    ``[u * mn, v * mx]`` maps to (scale, integer zero point); then, because the integer zero
    point makes the error jump, a hill climb over zero points: for the current ``z`` and its
    neighbours ``z +- 1``, a 1-D scale search with ``z`` fixed, moving each channel to the best,
    until no channel improves (at most ``max_rounds`` rounds). Returns scale, zero point, MSE
    per channel."""
    channels = mn.size
    safe = (mx - mn) > 0
    side = max(5, math.ceil(math.sqrt(n_grid)))
    ratios = _ratio_grid(side, low_ratio)  # (r, C)
    r = ratios.shape[0]
    u = np.repeat(ratios, r, axis=0)  # (r*r, C)
    v = np.tile(ratios, (r, 1))
    scale_all, zp_all = _affine(u * mn, v * mx, qmax, safe)
    mse = f(scale_all, zp_all)
    idx = np.argmin(mse, axis=0)
    cols = np.arange(channels)
    scale, zp, best_f = scale_all[idx, cols], zp_all[idx, cols], mse[idx, cols]
    if not golden:
        return scale, zp, best_f
    scale, best_f = _search_scale_fixed_zp(f, scale, zp, best_f)
    active = safe.copy()
    for _ in range(max_rounds):
        improved = np.zeros(channels, dtype=bool)
        for dz in (-1.0, 1.0):
            z_try = np.clip(zp + dz, 0, qmax)
            movable = active & (z_try != zp)
            if not np.any(movable):
                continue
            s_try, f_try = _search_scale_fixed_zp(f, scale, z_try, np.full(channels, np.inf))
            better = movable & (f_try < best_f)
            scale = np.where(better, s_try, scale)
            zp = np.where(better, z_try, zp)
            best_f = np.where(better, f_try, best_f)
            improved |= better
        if not np.any(improved):
            break
        active = improved
    return scale, zp, best_f


def _alternate(
    ev: _Evaluator,
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


def _check_options(n_grid: Any, refine: Any, max_refine: Any) -> tuple[int, str, int]:
    n_grid = check_int(n_grid, "n_grid", low=4, high=100_000)
    refine = check_choice(refine, "refine", REFINE_MODES)
    max_refine = check_int(max_refine, "max_refine", low=0)
    return n_grid, refine, max_refine


def _low_ratio(mean_abs: np.ndarray, top: np.ndarray) -> np.ndarray:
    """Smallest clip ratio of the geometric grid: ``0.1 * mean|x| / top`` (at least 1e-9)."""
    return np.clip(0.1 * mean_abs / top, 1e-9, 1.0)


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
    n_grid, refine, max_refine = _check_options(n_grid, refine, max_refine)
    x2 = _as_channels(x, bool(per_channel))
    mn = np.minimum(x2.min(axis=1), 0.0)
    mx = np.maximum(x2.max(axis=1), 0.0)
    asymmetric = not signed and bool(np.any(mn < 0))
    grid = Grid(bits, signed=bool(signed))
    ev = _Evaluator(x2, grid.qmin, grid.qmax)
    golden = refine in ("both", "golden")
    alternating = refine in ("both", "alternating") and max_refine > 0
    mean_abs = np.abs(x2).mean(axis=1)
    zp: np.ndarray | None
    if asymmetric:
        top = np.maximum(-mn, mx)
        low = _low_ratio(mean_abs, np.where(top > 0, top, 1.0))
        scale, zp, mse = _search_affine(ev, mn, mx, low, grid.qmax, n_grid, golden)
    else:
        top = np.maximum(-mn, mx)
        zero = top == 0
        top = np.where(zero, 1.0, top)
        scale, mse = _search_scale(ev, top, _low_ratio(mean_abs, top), grid.qmax, n_grid, golden)
        zp = None
    if alternating:
        scale, zp, mse = _alternate(ev, scale, zp, mse, max_refine)
    if not asymmetric:
        scale = np.where(zero, 1.0, scale)
        mse = np.where(zero, 0.0, mse)
    return _make_result(scale, zp, mse, grid, "mmse", bool(per_channel))


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
        self.n_grid, self.refine, self.max_refine = _check_options(n_grid, refine, max_refine)
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
