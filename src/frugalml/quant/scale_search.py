"""The searches behind every MSE-optimal scale: coarse grid, golden section, zero points.

Reference: Y. Choukroun, E. Kravchik, F. Yang and P. Kisilev, "Low-bit Quantization of Neural
Networks for Efficient Inference", ICCV Workshops 2019 (arXiv:1902.06822), Section 3: the scale
of a tensor is the minimiser of its quantization MSE, a piecewise quadratic, non-convex
function of the scale. The searches here only need an objective
``f(scales (m, C), zero_points (m, C) | None) -> mse (m, C)`` that evaluates ``m`` candidates for
``C`` channels at once, so they serve both the exact data MSE of
:func:`~frugalml.quant.mmse.mmse_scale` (a :class:`~frugalml.quant.uniform.MSEEvaluator`) and
the expected MSE of a histogram in :func:`~frugalml.quant.calibrate.mmse_from_histogram`:

* :func:`search_scale` — symmetric / unsigned grids (zero point 0): a coarse grid of clip
  ratios (:func:`ratio_grid`, geometric below ``1 / n_grid`` for heavy tails), then
  :func:`golden_section` on the best point's neighbours (:func:`golden_brackets`);
* :func:`search_affine` — asymmetric grids: a 2-D grid of clip ranges mapped to (scale, integer
  zero point) by :func:`affine_params`, then a hill climb over zero points with a 1-D scale
  search for each (:func:`search_scale_fixed_zero_point`).

Every search keeps the best candidate it evaluated; the cost is one objective call per grid,
plus one per golden-section iteration (at most 80).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

from .._validate import check_choice, check_int

__all__ = [
    "REFINE_MODES",
    "Objective",
    "affine_params",
    "check_search_options",
    "golden_brackets",
    "golden_section",
    "low_ratio",
    "ratio_grid",
    "search_affine",
    "search_scale",
    "search_scale_fixed_zero_point",
]

#: accepted values of ``refine`` in :func:`~frugalml.quant.mmse.mmse_scale`
REFINE_MODES = ("both", "golden", "alternating", "none")

_INV_PHI = (math.sqrt(5.0) - 1.0) / 2.0
_GOLDEN_TOL = 1e-5  # final bracket width, relative to the bracket's upper end

#: ``f(scales (m, C), zero_points (m, C) | None) -> mse (m, C)``
Objective = Callable[[np.ndarray, np.ndarray | None], np.ndarray]


def ratio_grid(n_grid: int, low: np.ndarray) -> np.ndarray:
    """Clip ratios ``(m, C)`` in ``(0, 1]``, ascending along axis 0: ``n_grid // 4`` geometric
    ratios from ``low`` (per channel) up to ``1/n_grid`` (exclusive), then ``k / n_grid``."""
    n_geo = max(2, n_grid // 4)
    first = 1.0 / n_grid
    low = np.minimum(low, first)
    steps = np.arange(n_geo)[:, None] / n_geo
    geo = low[None, :] * (first / low[None, :]) ** steps
    lin = np.broadcast_to((np.arange(1, n_grid + 1) / n_grid)[:, None], (n_grid, low.size))
    return np.concatenate([geo, lin], axis=0)


def golden_brackets(ratios: np.ndarray, idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Neighbours of the best grid index per channel, as a golden-section bracket."""
    cols = np.arange(ratios.shape[1])
    last = ratios.shape[0] - 1
    lo = np.where(idx > 0, ratios[np.maximum(idx - 1, 0), cols], 0.5 * ratios[0])
    hi = ratios[np.minimum(idx + 1, last), cols]
    return lo, hi


def golden_section(
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


def search_scale(
    f: Objective,
    top: np.ndarray,
    low_ratio: np.ndarray,
    qmax: int,
    n_grid: int,
    golden: bool,
) -> tuple[np.ndarray, np.ndarray]:
    """1-D clip search (zero point 0): scale = clip / qmax, clip in (0, top]. Returns the best
    scale and its MSE per channel (``(C,)`` each)."""
    ratios = ratio_grid(n_grid, low_ratio)
    unit = top / qmax
    mse = f(ratios * unit, None)
    idx = np.argmin(mse, axis=0)
    cols = np.arange(top.size)
    best_r, best_f = ratios[idx, cols], mse[idx, cols]
    if golden:
        a, b = golden_brackets(ratios, idx)
        best_r, best_f = golden_section(lambda r: f(r * unit, None), a, b, best_r, best_f)
    return best_r * unit, best_f


def affine_params(
    lo: np.ndarray, hi: np.ndarray, qmax: int, safe: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Scale and integer zero point of the clip range ``[lo, hi]`` (``lo <= 0 <= hi``) on
    ``0..qmax``; ``safe`` (``(C,)``) marks channels whose range is non-degenerate."""
    span = hi - lo
    scale = np.where(safe, span / qmax, 1.0)
    scale = np.where(scale > 0, scale, 1.0)
    zp = np.clip(np.rint(-lo / scale), 0, qmax)
    return scale, zp


def search_scale_fixed_zero_point(
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
    a, b = golden_brackets(ratios, idx)
    r_best, f_best = golden_section(
        lambda r: f(r * s0, np.broadcast_to(z, r.shape)), a, b, r_best, f_best
    )
    better = f_best < best_f
    return np.where(better, r_best * s0, s0), np.where(better, f_best, best_f)


def search_affine(
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
    ratios = ratio_grid(side, low_ratio)  # (r, C)
    r = ratios.shape[0]
    u = np.repeat(ratios, r, axis=0)  # (r*r, C)
    v = np.tile(ratios, (r, 1))
    scale_all, zp_all = affine_params(u * mn, v * mx, qmax, safe)
    mse = f(scale_all, zp_all)
    idx = np.argmin(mse, axis=0)
    cols = np.arange(channels)
    scale, zp, best_f = scale_all[idx, cols], zp_all[idx, cols], mse[idx, cols]
    if not golden:
        return scale, zp, best_f
    scale, best_f = search_scale_fixed_zero_point(f, scale, zp, best_f)
    active = safe.copy()
    for _ in range(max_rounds):
        improved = np.zeros(channels, dtype=bool)
        for dz in (-1.0, 1.0):
            z_try = np.clip(zp + dz, 0, qmax)
            movable = active & (z_try != zp)
            if not np.any(movable):
                continue
            s_try, f_try = search_scale_fixed_zero_point(f, scale, z_try, np.full(channels, np.inf))
            better = movable & (f_try < best_f)
            scale = np.where(better, s_try, scale)
            zp = np.where(better, z_try, zp)
            best_f = np.where(better, f_try, best_f)
            improved |= better
        if not np.any(improved):
            break
        active = improved
    return scale, zp, best_f


def check_search_options(n_grid: Any, refine: Any, max_refine: Any) -> tuple[int, str, int]:
    """Validate the search options of :func:`~frugalml.quant.mmse.mmse_scale`: ``n_grid`` in
    ``4..100000``, ``refine`` in :data:`REFINE_MODES`, ``max_refine >= 0``."""
    n_grid = check_int(n_grid, "n_grid", low=4, high=100_000)
    refine = check_choice(refine, "refine", REFINE_MODES)
    max_refine = check_int(max_refine, "max_refine", low=0)
    return n_grid, refine, max_refine


def low_ratio(mean_abs: np.ndarray, top: np.ndarray) -> np.ndarray:
    """Smallest clip ratio of the geometric grid: ``0.1 * mean|x| / top`` (at least 1e-9)."""
    return np.clip(0.1 * mean_abs / top, 1e-9, 1.0)
