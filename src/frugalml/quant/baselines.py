"""Baseline scale choices to compare with the MMSE scales of :mod:`frugalml.quant.mmse`.

Reference: Y. Choukroun, E. Kravchik, F. Yang and P. Kisilev, "Low-bit Quantization of Neural
Networks for Efficient Inference", ICCV Workshops 2019 (arXiv:1902.06822), which compares its
MMSE scales with min-max scaling and with analytical clipping; the ACIQ baseline is R. Banner,
Y. Nahshan and D. Soudry, "Post training 4-bit quantization of convolutional networks for
rapid-deployment", NeurIPS 2019 (arXiv:1810.05723).

* :func:`minmax_scale` — clip at the data's range (no clipping noise at all);
* :func:`percentile_scale` — clip at a percentile of ``|x|`` (or of ``x`` for asymmetric grids);
* :func:`aciq_scale` — ACIQ: fit a Laplace (``b = mean|x - mu|``) or Gaussian (``sigma``) prior,
  then take the clip ``alpha`` minimising the prior's *expected* error, clipping noise
  ``E[(|x| - alpha)^2; |x| > alpha]`` plus rounding noise ``Delta^2 / 12``, found numerically
  (:func:`aciq_clip_ratio`, Brent's method) rather than read from a table;
* :func:`histogram_observer_scale` — PyTorch's ``HistogramObserver`` (its own L2 search on a
  histogram), for comparison with a widely deployed calibrator.

All return a :class:`~frugalml.quant.mmse.ScaleResult` whose ``mse`` is the exact error of the
returned parameters on ``x``. :data:`SCALE_METHODS` maps the method names used by
:func:`frugalml.quant.convert.quantize_model` to functions of ``(x, bits, *, signed,
per_channel)``.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from typing import Any

import numpy as np

from .._optional import require
from .._validate import check_choice
from ..errors import InvalidInputError
from .mmse import mmse_scale
from .scale_result import ScaleResult, make_scale_result
from .scale_search import affine_params
from .uniform import Grid, MSEEvaluator, as_channels, check_bits

__all__ = [
    "ACIQ_CONVENTIONS",
    "PRIORS",
    "SCALE_METHODS",
    "aciq_clip_ratio",
    "aciq_params",
    "aciq_scale",
    "histogram_observer_scale",
    "minmax_scale",
    "percentile_scale",
]

#: distribution families of :func:`aciq_scale`
PRIORS = ("laplace", "gauss")

#: step size conventions of :func:`aciq_clip_ratio`: ``Delta = alpha / steps(bits)``
ACIQ_CONVENTIONS = ("paper", "signed", "unsigned", "asymmetric")


def _steps(bits: int, convention: str) -> float:
    """Number of grid steps in ``alpha`` (``Delta = alpha / steps``)."""
    if convention == "paper":  # 2^M levels over [-alpha, alpha]: Delta = 2 alpha / 2^M
        return 2.0 ** (bits - 1)
    if convention == "signed":  # narrow grid -(2^(M-1)-1)..2^(M-1)-1
        return 2.0 ** (bits - 1) - 1.0
    if convention == "unsigned":  # 0..2^M-1 over [0, alpha]
        return 2.0**bits - 1.0
    return (2.0**bits - 1.0) / 2.0  # 0..2^M-1 over [mu - alpha, mu + alpha]


def _clip_noise(a: float, prior: str) -> float:
    """Expected clipping noise of a unit prior at ``alpha = a``, both tails together:
    Laplace(0, 1): ``2 e^{-a}``; N(0, 1): ``2 ((1 + a^2) Q(a) - a phi(a))``. The one-sided
    (exponential / half-normal) priors of non-negative data give the same expressions."""
    if prior == "laplace":
        return 2.0 * math.exp(-a)
    tail = 0.5 * math.erfc(a / math.sqrt(2.0))
    pdf = math.exp(-0.5 * a * a) / math.sqrt(2.0 * math.pi)
    return 2.0 * ((1.0 + a * a) * tail - a * pdf)


@functools.lru_cache(maxsize=256)
def aciq_clip_ratio(bits: int, prior: str = "laplace", *, convention: str = "paper") -> float:
    """ACIQ's optimal clip ``alpha / b`` (Laplace scale ``b``) or ``alpha / sigma`` (Gaussian).

    Minimises the expected error ``clip_noise(alpha) + Delta^2 / 12`` with
    ``Delta = alpha / steps``, by bounded Brent search (the objective is convex in ``alpha``):

    * ``"paper"`` — Banner et al.'s setting, ``2^bits`` levels over ``[-alpha, alpha]``
      (``Delta = 2 alpha / 2^bits``); Laplace gives ``alpha/b ~ 2.83, 3.89, 5.03`` for 2, 3, 4
      bits;
    * ``"signed"`` — frugalml's narrow signed grid, ``Delta = alpha / (2^(bits-1) - 1)``;
    * ``"unsigned"`` — non-negative data on ``0..2^bits-1``, ``Delta = alpha / (2^bits - 1)``;
    * ``"asymmetric"`` — two-sided data on ``0..2^bits-1``, ``Delta = 2 alpha / (2^bits - 1)``.
    """
    import scipy.optimize

    bits = check_bits(bits)
    check_choice(prior, "prior", PRIORS)
    check_choice(convention, "convention", ACIQ_CONVENTIONS)
    steps = _steps(bits, convention)

    def expected(a: float) -> float:
        return _clip_noise(a, prior) + (a / steps) ** 2 / 12.0

    res = scipy.optimize.minimize_scalar(
        expected, bounds=(1e-6, 60.0), method="bounded", options={"xatol": 1e-10}
    )
    return float(res.x)


def _finish(
    ev: MSEEvaluator,
    scale: np.ndarray,
    zp: np.ndarray | None,
    grid: Grid,
    method: str,
    per_channel: bool,
) -> ScaleResult:
    """Sanitise the scales (``> 0``), compute the exact error, package."""
    scale = np.where(np.isfinite(scale) & (scale > 0), scale, 1.0)
    mse = ev(scale[None], None if zp is None else zp[None])[0]
    return make_scale_result(scale, zp, mse, grid, method, per_channel)


def _setup(
    x: Any, bits: int, signed: bool, per_channel: bool
) -> tuple[np.ndarray, Grid, MSEEvaluator, np.ndarray, np.ndarray, bool]:
    bits = check_bits(bits)
    x2 = as_channels(x, bool(per_channel))
    mn = np.minimum(x2.min(axis=1), 0.0)
    mx = np.maximum(x2.max(axis=1), 0.0)
    grid = Grid(bits, signed=bool(signed))
    asymmetric = not signed and bool(np.any(mn < 0))
    return x2, grid, MSEEvaluator(x2, grid.qmin, grid.qmax), mn, mx, asymmetric


def minmax_scale(
    x: Any, bits: int, *, signed: bool = True, per_channel: bool = False
) -> ScaleResult:
    """Min-max scale: ``max|x| / qmax`` (signed), ``max x / qmax`` (non-negative data), or the
    full range ``[min x, max x]`` with a zero point (``signed=False`` with negatives).
    ``O(x.size)``."""
    _, grid, ev, mn, mx, asym = _setup(x, bits, signed, per_channel)
    if asym:
        scale, zp = affine_params(mn, mx, grid.qmax, (mx - mn) > 0)
        return _finish(ev, scale, zp, grid, "minmax", bool(per_channel))
    return _finish(ev, np.maximum(-mn, mx) / grid.qmax, None, grid, "minmax", bool(per_channel))


def percentile_scale(
    x: Any,
    bits: int,
    *,
    percentile: float = 99.9,
    signed: bool = True,
    per_channel: bool = False,
) -> ScaleResult:
    """Clip at the ``percentile`` (in ``(0, 100]``) of ``|x|`` (per channel if asked).

    Asymmetric grids (``signed=False`` with negatives) clip to
    ``[P_{100-p}(x), P_p(x)]``, widened to contain 0. A zero clip (e.g. mostly-zero data) falls
    back to the min-max clip. ``O(x.size)`` (selection, not sorting).
    """
    if isinstance(percentile, bool) or not isinstance(percentile, (int, float, np.number)):
        raise InvalidInputError(f"percentile must be a number in (0, 100], got {percentile!r}")
    p = float(percentile)
    if not (0.0 < p <= 100.0):
        raise InvalidInputError(f"percentile must lie in (0, 100], got {percentile!r}")
    x2, grid, ev, mn, mx, asym = _setup(x, bits, signed, per_channel)
    method = "percentile"
    if asym:
        lo = np.minimum(np.percentile(x2, 100.0 - p, axis=1), 0.0)
        hi = np.maximum(np.percentile(x2, p, axis=1), 0.0)
        lo = np.where(hi - lo > 0, lo, mn)
        hi = np.where(hi - lo > 0, hi, mx)
        scale, zp = affine_params(lo, hi, grid.qmax, (hi - lo) > 0)
        return _finish(ev, scale, zp, grid, method, bool(per_channel))
    clip = np.percentile(np.abs(x2), p, axis=1)
    clip = np.where(clip > 0, clip, np.maximum(-mn, mx))
    return _finish(ev, clip / grid.qmax, None, grid, method, bool(per_channel))


def aciq_params(
    grid: Grid,
    prior: str,
    asymmetric: bool,
    nonneg: bool,
    mu: np.ndarray,
    spread: np.ndarray,
    mn: np.ndarray,
    mx: np.ndarray,
) -> tuple[np.ndarray, np.ndarray | None]:
    """ACIQ scale (and zero point) from fitted prior parameters, per channel (all ``(C,)``).

    Shared by :func:`aciq_scale` (moments of the data) and the histogram calibration of
    :mod:`frugalml.quant.calibrate` (moments of the histogram). ``O(C)``.

    ``spread`` is ``b`` (Laplace) or ``sigma`` (Gaussian), about ``mu`` for two-sided data and
    of the positive values for non-negative data. Clips never exceed the data's range, where
    clipping costs nothing and a wider range only coarsens the grid.
    """
    if asymmetric:
        alpha = aciq_clip_ratio(grid.bits, prior, convention="asymmetric") * spread
        lo = np.minimum(np.maximum(mu - alpha, mn), 0.0)
        hi = np.maximum(np.minimum(mu + alpha, mx), 0.0)
        lo = np.where(hi - lo > 0, lo, mn)
        hi = np.where(hi - lo > 0, hi, mx)
        return affine_params(lo, hi, grid.qmax, (hi - lo) > 0)
    top = np.maximum(-mn, mx)
    if nonneg:
        ratio = aciq_clip_ratio(grid.bits, prior, convention="unsigned")
        clip = ratio * spread
    else:
        convention = "signed" if grid.signed else "asymmetric"
        clip = aciq_clip_ratio(grid.bits, prior, convention=convention) * spread + np.abs(mu)
    clip = np.where(clip > 0, np.minimum(clip, top), top)
    return clip / grid.qmax, None


def aciq_scale(
    x: Any,
    bits: int,
    *,
    prior: str = "laplace",
    signed: bool = True,
    per_channel: bool = False,
) -> ScaleResult:
    """ACIQ analytical clipping (Banner et al. 2019) for a Laplace or Gaussian prior.

    Two-sided data: ``mu = mean(x)``, ``b = mean|x - mu|`` (Laplace) or ``sigma = std(x)``;
    the clip is ``aciq_clip_ratio(bits, prior) * b + |mu|`` on the symmetric signed grid (the
    grid is centred on 0, so a non-zero mean widens it), or the window ``mu +- alpha`` on an
    asymmetric grid. Non-negative data on an unsigned grid: the positive values are fitted with
    an exponential (``b = mean``) or half-normal (``sigma^2 = mean of squares``) prior; exact
    zeros cost nothing on a grid that contains 0, so they do not enter the fit. Clips are capped
    at the data's range. ``O(x.size)``; method ``"aciq-laplace"`` or ``"aciq-gauss"``.
    """
    check_choice(prior, "prior", PRIORS)
    x2, grid, ev, mn, mx, asym = _setup(x, bits, signed, per_channel)
    nonneg = not asym and not grid.signed
    if nonneg:
        npos = np.maximum(np.count_nonzero(x2 > 0, axis=1), 1)
        mu = np.zeros(x2.shape[0])
        if prior == "laplace":
            spread = x2.sum(axis=1) / npos
        else:
            spread = np.sqrt(np.einsum("cn,cn->c", x2, x2) / npos)
    else:
        mu = x2.mean(axis=1)
        centred = x2 - mu[:, None]
        if prior == "laplace":
            spread = np.abs(centred).mean(axis=1)
        else:
            spread = np.sqrt(np.einsum("cn,cn->c", centred, centred) / x2.shape[1])
    scale, zp = aciq_params(grid, prior, asym, nonneg, mu, spread, mn, mx)
    return _finish(ev, scale, zp, grid, f"aciq-{prior}", bool(per_channel))


def histogram_observer_scale(x: Any, bits: int, *, signed: bool = True) -> ScaleResult:
    """Per-tensor scale from PyTorch's ``torch.ao.quantization.HistogramObserver``.

    The observer is configured for the grid: signed -> ``qint8``, per-tensor symmetric,
    ``quant_min/quant_max = -(2^(b-1)-1), 2^(b-1)-1``; unsigned -> ``quint8``, per-tensor
    affine, ``0..2^b-1`` (its zero point is kept). Needs torch (``pip install
    'frugalml[quant]'``). ``O(x.size)`` plus the observer's ``O(bins^2)`` search.
    """
    torch = require("torch", what="the HistogramObserver baseline", extra="quant")
    from torch.ao.quantization import HistogramObserver

    x2, grid, ev, _, _, _ = _setup(x, bits, signed, False)
    if grid.signed:
        obs = HistogramObserver(
            dtype=torch.qint8,
            qscheme=torch.per_tensor_symmetric,
            quant_min=grid.qmin,
            quant_max=grid.qmax,
        )
    else:
        obs = HistogramObserver(
            dtype=torch.quint8,
            qscheme=torch.per_tensor_affine,
            quant_min=grid.qmin,
            quant_max=grid.qmax,
        )
    obs(torch.from_numpy(np.ascontiguousarray(x2.reshape(-1), dtype=np.float32)))
    scale_t, zp_t = obs.calculate_qparams()
    scale = np.array([float(scale_t.reshape(-1)[0])])
    zp = np.array([float(zp_t.reshape(-1)[0])])
    zp = np.clip(zp, grid.qmin, grid.qmax)
    return _finish(ev, scale, None if grid.signed else zp, grid, "histogram", False)


def _histogram_method(
    x: Any, bits: int, *, signed: bool = True, per_channel: bool = False
) -> ScaleResult:
    if per_channel:
        raise InvalidInputError(
            "the 'histogram' method (torch HistogramObserver) is per tensor only; use "
            "per_channel=False or another method ('mmse', 'minmax', 'percentile', 'aciq')"
        )
    return histogram_observer_scale(x, bits, signed=signed)


#: scale methods by name, each ``f(x, bits, *, signed=..., per_channel=...) -> ScaleResult``
SCALE_METHODS: dict[str, Callable[..., ScaleResult]] = {
    "mmse": mmse_scale,
    "minmax": minmax_scale,
    "percentile": percentile_scale,
    "aciq": aciq_scale,
    "histogram": _histogram_method,
}
