"""Activation calibration without labels: streaming histograms and MMSE clips from them.

Reference: Y. Choukroun, E. Kravchik, F. Yang and P. Kisilev, "Low-bit Quantization of Neural
Networks for Efficient Inference", ICCV Workshops 2019 (arXiv:1902.06822), Section 3.2: the
activations of each layer are quantized per tensor with the scale minimising the MSE over a
small calibration set (no labels, no retraining).

Activations are too large to keep, so :class:`ActivationHistogram` streams them into a fixed
histogram (2048 bins over ``[-r, r]``, or over ``[0, r]`` while every value seen is
non-negative; when a batch exceeds the range, ``r`` doubles and pairs of bins merge, which is
exact because the new edges are a subset of the old ones). Exact zeros (frequent after a ReLU)
are counted apart, since a grid that contains 0 represents them without error.

:func:`mmse_from_histogram` evaluates the *expected* squared error of a candidate clip from the
histogram, treating each bin's mass as spread uniformly over the bin. For the quantizer error
``e(t) = t - s * clip(round(t/s), lo, hi)`` the integral ``H(x) = int_0^x e(t)^2 dt`` has the
closed form ``H(x) = j s^3 / 12 + r^3 / 3`` (``j = round(x/s)``, ``r = x - s j``) inside the
grid's range and a cubic outside it, so a bin ``[a, b]`` with mass ``m`` costs exactly
``m (H(b) - H(a)) / (b - a)``. That is ``O(bins)`` per candidate, vectorised over candidates,
so the same search as :func:`~frugalml.quant.mmse.mmse_scale` (coarse grid + golden section)
runs at negligible cost.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import numpy as np

from .._validate import check_array, check_choice, check_int
from ..errors import InvalidInputError
from .baselines import PRIORS, aciq_params
from .scale_result import ScaleResult, make_scale_result
from .scale_search import (
    affine_params,
    check_search_options,
    low_ratio,
    search_affine,
    search_scale,
)
from .uniform import Grid, check_bits

__all__ = [
    "CALIBRATION_METHODS",
    "ActivationHistogram",
    "calibrate_activation",
    "histogram_mse",
    "mmse_from_histogram",
]

#: methods accepted by :func:`calibrate_activation`
CALIBRATION_METHODS = ("mmse", "minmax", "percentile", "aciq")


def _to_numpy(x: Any, name: str) -> np.ndarray:
    """Arrays, lists or (CPU or GPU) torch tensors -> finite float64 NumPy array."""
    if hasattr(x, "detach") and hasattr(x, "cpu"):  # a torch tensor, without importing torch
        x = x.detach().cpu().float().numpy()
    return check_array(x, name, dtype=np.float64, min_size=0)


class ActivationHistogram:
    """Streaming histogram of one tensor's values over calibration batches.

    ``bins`` (a multiple of 4, default 2048) equal bins over ``[-r, r]``, or ``[0, r]`` while
    all values seen are ``>= 0``; exact zeros are counted apart (``zeros``). ``count``, ``min``
    and ``max`` are exact. A value equal to the range's upper end ``r`` falls in the last bin,
    and stays just below that edge when the range later doubles. :meth:`update` costs
    ``O(batch size + bins * doublings)``.
    """

    def __init__(self, bins: int = 2048) -> None:
        self.bins = check_int(bins, "bins", low=16, high=1 << 24)
        if self.bins % 4:
            raise InvalidInputError(
                f"bins must be a multiple of 4 (so that doubling the range merges bins exactly), "
                f"got {bins}"
            )
        self.counts = np.zeros(self.bins, dtype=np.float64)
        self.zeros = 0
        self.count = 0
        self.r = 0.0  # half-width (symmetric) or width (one-sided); 0 until a non-zero value
        self.symmetric = False
        self._min = math.inf
        self._max = -math.inf

    @property
    def min(self) -> float:
        """Smallest value seen (``nan`` before any update)."""
        return self._min if self.count else math.nan

    @property
    def max(self) -> float:
        """Largest value seen (``nan`` before any update)."""
        return self._max if self.count else math.nan

    @property
    def edges(self) -> np.ndarray:
        """Bin edges, ``(bins + 1,)``."""
        lo = -self.r if self.symmetric else 0.0
        edges = np.linspace(lo, self.r, self.bins + 1)
        if self.symmetric:
            edges[self.bins // 2] = 0.0
        return edges

    def _double(self) -> None:
        """Double ``r``, merging pairs of bins into the matching half of the new range."""
        merged = self.counts.reshape(-1, 2).sum(axis=1)
        new = np.zeros_like(self.counts)
        if self.symmetric:  # old [-r, r] becomes the middle half of [-2r, 2r]
            quarter = self.bins // 4
            new[quarter : quarter + merged.size] = merged
        else:
            new[: merged.size] = merged
        self.counts = new
        self.r *= 2.0

    def _make_symmetric(self) -> None:
        """``[0, r]`` -> ``[-r, r]``: each new bin is twice as wide; the old mass fills the
        upper half."""
        merged = self.counts.reshape(-1, 2).sum(axis=1)
        new = np.zeros_like(self.counts)
        new[self.bins // 2 :] = merged
        self.counts = new
        self.symmetric = True

    def update(self, x: Any) -> ActivationHistogram:
        """Add the values of ``x`` (any shape; NumPy, list or torch tensor). Returns ``self``."""
        xa = _to_numpy(x, "x").reshape(-1)
        if xa.size == 0:
            return self
        lo, hi = float(xa.min()), float(xa.max())
        self.count += int(xa.size)
        self._min = min(self._min, lo)
        self._max = max(self._max, hi)
        nz = xa[xa != 0]
        self.zeros += int(xa.size - nz.size)
        if nz.size == 0:
            return self
        need = max(abs(lo), abs(hi))
        if self.r == 0.0:
            self.r = need
            self.symmetric = lo < 0
        else:
            if lo < 0 and not self.symmetric:
                self._make_symmetric()
            while need > self.r:
                self._double()
        start = -self.r if self.symmetric else 0.0
        width = (self.r - start) / self.bins
        idx = np.floor((nz - start) / width).astype(np.int64)
        np.clip(idx, 0, self.bins - 1, out=idx)
        self.counts += np.bincount(idx, minlength=self.bins)
        return self

    def mean_abs(self) -> float:
        """Mean of ``|x|`` over all values, from the bin centres (zeros included)."""
        centres = 0.5 * (self.edges[:-1] + self.edges[1:])
        return float(np.dot(self.counts, np.abs(centres)) / max(self.count, 1))

    def summary(self) -> str:
        side = f"[-{self.r:.6g}, {self.r:.6g}]" if self.symmetric else f"[0, {self.r:.6g}]"
        return (
            f"activation histogram: {self.count} values in {self.bins} bins over {side}, "
            f"min {self.min:.6g}, max {self.max:.6g}, {self.zeros} exact zeros"
        )


def _check_hist(hist: Any) -> ActivationHistogram:
    if not isinstance(hist, ActivationHistogram):
        raise InvalidInputError(f"hist must be an ActivationHistogram, got {type(hist).__name__}")
    if hist.count == 0:
        raise InvalidInputError(
            "the calibration histogram is empty; feed it at least one non-empty batch"
        )
    return hist


def _primitive(x: np.ndarray, s: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """``H(x) = int_0^x e(t)^2 dt`` for the quantizer with step ``s`` and integer codes
    ``lo..hi`` (``lo <= 0 <= hi``); ``x`` ``(E,)``, the others ``(m, 1)`` -> ``(m, E)``."""
    upper = s * (hi + 0.5)
    lower = s * (lo - 0.5)
    xc = np.clip(x, lower, upper)
    j = np.rint(xc / s)
    r = xc - s * j
    out = j * s**3 / 12.0 + r**3 / 3.0
    half3 = (0.5 * s) ** 3
    out = out + np.where(x > upper, ((x - s * hi) ** 3 - half3) / 3.0, 0.0)
    out = out + np.where(x < lower, ((x - s * lo) ** 3 + half3) / 3.0, 0.0)
    return out


def _hist_objective(hist: ActivationHistogram, grid: Grid):
    """Expected MSE ``f(scales (m, 1), zero_points (m, 1) | None) -> (m, 1)``."""
    edges = hist.edges
    width = edges[1] - edges[0]
    used = np.flatnonzero(hist.counts)
    lo_e, hi_e = edges[used], edges[used + 1]
    mass = hist.counts[used]
    total = float(hist.count)

    def f(scales: np.ndarray, zero_points: np.ndarray | None) -> np.ndarray:
        s = scales.reshape(-1, 1)
        z = np.zeros_like(s) if zero_points is None else zero_points.reshape(-1, 1)
        qlo, qhi = grid.qmin - z, grid.qmax - z
        per_bin = (_primitive(hi_e, s, qlo, qhi) - _primitive(lo_e, s, qlo, qhi)) / width
        return (per_bin @ mass / total).reshape(scales.shape)

    return f


def histogram_mse(hist: ActivationHistogram, result: ScaleResult) -> float:
    """Expected MSE of per-tensor parameters ``result`` on the histogrammed data (uniform mass
    within each bin, exact zeros exact). ``O(bins)``."""
    hist = _check_hist(hist)
    if result.per_channel:
        raise InvalidInputError("histogram_mse needs per-tensor parameters")
    f = _hist_objective(hist, result.grid)
    s = np.asarray(result.scale, dtype=np.float64).reshape(1, 1)
    z = np.asarray(result.zero_point, dtype=np.float64).reshape(1, 1)
    return float(f(s, z)[0, 0])


def _grid_for(hist: ActivationHistogram, bits: int, signed: bool | None) -> tuple[Grid, bool]:
    """Grid and whether it is asymmetric; ``signed=None``: unsigned iff ``min >= 0``."""
    if signed is None:
        signed = not hist.min >= 0
    elif not isinstance(signed, (bool, np.bool_)):
        raise InvalidInputError(f"signed must be True, False or None, got {signed!r}")
    grid = Grid(bits, signed=bool(signed))
    return grid, (not grid.signed and hist.min < 0)


def _package(
    hist: ActivationHistogram,
    grid: Grid,
    scale: float,
    zp: float | None,
    method: str,
) -> ScaleResult:
    scale_a = np.array([scale if np.isfinite(scale) and scale > 0 else 1.0])
    zp_a = None if zp is None else np.array([zp], dtype=np.float64)
    f = _hist_objective(hist, grid)
    mse = f(scale_a[None], None if zp_a is None else zp_a[None])[0]
    return make_scale_result(scale_a, zp_a, mse, grid, method, False)


def mmse_from_histogram(
    hist: ActivationHistogram,
    bits: int,
    *,
    signed: bool | None = None,
    n_grid: int = 200,
) -> ScaleResult:
    """MMSE clip of the histogrammed data (per tensor), method ``"mmse-histogram"``.

    ``signed=None``: unsigned grid if every value seen was ``>= 0``, else signed;
    ``signed=False`` with negative values: asymmetric (zero point). Coarse grid of ``n_grid``
    clips (plus geometric ones for heavy tails) in ``(0, max|x|]``, then golden section, on the
    exact expected error of the binned data. ``mse`` is that expected error.
    ``O(n_grid * bins)``.
    """
    hist = _check_hist(hist)
    bits = check_bits(bits)
    n_grid, _, _ = check_search_options(n_grid, "golden", 0)
    grid, asym = _grid_for(hist, bits, signed)
    f = _hist_objective(hist, grid)
    mn = np.array([min(hist.min, 0.0)])
    mx = np.array([max(hist.max, 0.0)])
    top = np.maximum(-mn, mx)
    if not top[0] > 0:  # all zeros
        return _package(hist, grid, 1.0, None if not asym else 0.0, "mmse-histogram")
    low = low_ratio(np.array([hist.mean_abs()]), top)
    if asym:
        scale, zp, _ = search_affine(f, mn, mx, low, grid.qmax, n_grid, True)
        return _package(hist, grid, float(scale[0]), float(zp[0]), "mmse-histogram")
    scale, _ = search_scale(f, top, low, grid.qmax, n_grid, True)
    return _package(hist, grid, float(scale[0]), None, "mmse-histogram")


def _quantile(hist: ActivationHistogram, q: float, *, absolute: bool) -> float:
    """The ``q``-quantile (``0..1``) of ``x`` or ``|x|`` from the histogram (linear
    interpolation within a bin; exact zeros at 0)."""
    counts, edges = hist.counts, hist.edges
    if absolute:
        if hist.symmetric:
            half = hist.bins // 2
            counts = counts[half:] + counts[:half][::-1]
            edges = edges[half:]
        masses = np.concatenate([[hist.zeros], counts])
        points = np.concatenate([[0.0], edges])
    else:
        # zeros sit at 0: split the bin grid at 0 by placing them as a point mass there
        zero_at = int(np.searchsorted(edges, 0.0))
        masses = np.concatenate([counts[:zero_at], [hist.zeros], counts[zero_at:]])
        points = np.concatenate([edges[: zero_at + 1], edges[zero_at:]])
    # masses[i] lies between points[i] and points[i+1] (a point mass when they are equal)
    cum = np.concatenate([[0.0], np.cumsum(masses)])
    target = q * cum[-1]
    i = int(np.clip(np.searchsorted(cum, target, side="left") - 1, 0, masses.size - 1))
    if masses[i] <= 0:
        return float(points[i])
    frac = (target - cum[i]) / masses[i]
    return float(points[i] + frac * (points[i + 1] - points[i]))


def _moments(hist: ActivationHistogram, prior: str, nonneg: bool) -> tuple[float, float]:
    """``(mu, spread)`` of the ACIQ prior from the histogram (bin centres + exact zeros)."""
    centres = 0.5 * (hist.edges[:-1] + hist.edges[1:])
    counts = hist.counts
    if nonneg:
        npos = max(float(counts.sum()), 1.0)
        if prior == "laplace":
            return 0.0, float(np.dot(counts, centres) / npos)
        return 0.0, math.sqrt(float(np.dot(counts, centres**2) / npos))
    n = float(hist.count)
    mu = float(np.dot(counts, centres) / n)
    if prior == "laplace":
        dev = float(np.dot(counts, np.abs(centres - mu)) + hist.zeros * abs(mu))
        return mu, dev / n
    var = float(np.dot(counts, (centres - mu) ** 2) + hist.zeros * mu * mu) / n
    return mu, math.sqrt(var)


def calibrate_activation(
    batches: Iterable[Any],
    bits: int,
    method: str = "mmse",
    *,
    signed: bool | None = None,
    percentile: float = 99.9,
    prior: str = "laplace",
    bins: int = 2048,
) -> ScaleResult:
    """Per-tensor activation scale from calibration batches (no labels).

    ``batches``: an iterable of arrays (or torch tensors), e.g. one layer's inputs over the
    calibration set; they are streamed into an :class:`ActivationHistogram`. ``method``:

    * ``"mmse"`` — :func:`mmse_from_histogram`;
    * ``"minmax"`` — the exact range seen;
    * ``"percentile"`` — the ``percentile`` of ``|x|`` (of ``x`` at both ends if asymmetric);
    * ``"aciq"`` — ACIQ with ``prior`` fitted to the histogram (see
      :func:`~frugalml.quant.baselines.aciq_scale`).

    ``signed=None`` picks an unsigned grid iff every value is ``>= 0``. The result's ``mse`` is
    the expected error on the histogrammed data. Empty data or NaN/inf values raise
    :class:`~frugalml.errors.InvalidInputError`. ``O(total values + bins * n_grid)``.
    """
    bits = check_bits(bits)
    check_choice(method, "method", CALIBRATION_METHODS)
    check_choice(prior, "prior", PRIORS)
    if isinstance(batches, np.ndarray) or hasattr(batches, "detach"):
        batches = [batches]
    hist = ActivationHistogram(bins)
    try:
        iterator = iter(batches)
    except TypeError as exc:
        raise InvalidInputError(
            f"batches must be an iterable of arrays, got {type(batches).__name__}"
        ) from exc
    for i, batch in enumerate(iterator):
        hist.update(_to_numpy(batch, f"calibration batch {i}"))
    if hist.count == 0:
        raise InvalidInputError("the calibration data is empty; pass at least one non-empty batch")
    if method == "mmse":
        return mmse_from_histogram(hist, bits, signed=signed)
    grid, asym = _grid_for(hist, bits, signed)
    mn, mx = min(hist.min, 0.0), max(hist.max, 0.0)
    top = max(-mn, mx)
    if method == "minmax":
        if asym:
            s, z = affine_params(np.array([mn]), np.array([mx]), grid.qmax, np.array([mx > mn]))
            return _package(hist, grid, float(s[0]), float(z[0]), "minmax")
        return _package(hist, grid, top / grid.qmax if top > 0 else 1.0, None, "minmax")
    if method == "percentile":
        if isinstance(percentile, bool) or not isinstance(percentile, (int, float, np.number)):
            raise InvalidInputError(f"percentile must be a number in (0, 100], got {percentile!r}")
        p = float(percentile)
        if not (0.0 < p <= 100.0):
            raise InvalidInputError(f"percentile must lie in (0, 100], got {percentile!r}")
        if asym:
            lo = min(_quantile(hist, 1.0 - p / 100.0, absolute=False), 0.0)
            hi = max(_quantile(hist, p / 100.0, absolute=False), 0.0)
            if not hi > lo:
                lo, hi = mn, mx
            s, z = affine_params(np.array([lo]), np.array([hi]), grid.qmax, np.array([hi > lo]))
            return _package(hist, grid, float(s[0]), float(z[0]), "percentile")
        clip = _quantile(hist, p / 100.0, absolute=True)
        clip = min(clip, top) if clip > 0 else top
        return _package(hist, grid, clip / grid.qmax if clip > 0 else 1.0, None, "percentile")
    nonneg = not asym and not grid.signed
    mu, spread = _moments(hist, prior, nonneg)
    s, z = aciq_params(
        grid,
        prior,
        asym,
        nonneg,
        np.array([mu]),
        np.array([spread]),
        np.array([mn]),
        np.array([mx]),
    )
    return _package(hist, grid, float(s[0]), None if z is None else float(z[0]), f"aciq-{prior}")
