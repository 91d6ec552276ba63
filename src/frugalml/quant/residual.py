"""Residual (dual) quantization of the hardest kernels: ``W_k ~ s1 Q1 + s2 Q2``.

Reference: Y. Choukroun, E. Kravchik, F. Yang and P. Kisilev, "Low-bit Quantization of Neural
Networks for Efficient Inference", ICCV Workshops 2019 (arXiv:1902.06822), Section 3.3: kernels
whose low-bit MMSE quantization has a large relative error get a second low-bit tensor that
quantizes the residual, ``W - s1 Q1 ~ s2 Q2``; only the worst kernels across the network are
chosen, so the extra multiply-accumulates stay a small fraction of the total.

* :func:`rank_kernels` — relative error ``||W_k - Q(W_k)||^2 / ||W_k||^2`` of every output
  kernel ``k`` (axis 0 of a Linear ``(out, in)`` or Conv ``(out, in, k...)`` weight);
* :func:`residual_quantize` — the two-term approximation per output kernel, ``Q2`` fitted to
  the residual with the same bits, then both scales re-fitted jointly by least squares for the
  fixed codes (a 2x2 solve per kernel, kept only where it lowers the error);
* :func:`select_residual` — which kernels get the second term, across layers: a fraction of
  all kernels (the worst first) or every kernel above an error threshold, with the MAC cost.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from .._results import ResultRepr
from .._validate import check_array, check_choice, check_nonnegative_float, check_probability
from ..errors import InvalidInputError
from .baselines import SCALE_METHODS
from .uniform import Grid, as_channels, check_bits

__all__ = [
    "ResidualPlan",
    "ResidualTensor",
    "rank_kernels",
    "residual_quantize",
    "select_residual",
]


def _method(scale_method: Any):
    check_choice(scale_method, "scale_method", tuple(SCALE_METHODS))
    if scale_method == "histogram":
        raise InvalidInputError(
            "scale_method='histogram' is per tensor only; residual quantization is per output "
            "kernel: use 'mmse', 'minmax', 'percentile' or 'aciq'"
        )
    return SCALE_METHODS[scale_method]


def _per_channel_fit(w2: np.ndarray, bits: int, scale_method: str) -> tuple[np.ndarray, np.ndarray]:
    """Per-row scales ``(C,)`` and codes ``(C, n)`` (float64) of ``w2`` ``(C, n)``."""
    res = _method(scale_method)(w2, bits, signed=True, per_channel=True)
    grid = res.grid
    s = np.asarray(res.scale, dtype=np.float64)
    q = np.clip(np.rint(w2 / s[:, None]), grid.qmin, grid.qmax)
    return s, q


def _row_mse(w2: np.ndarray, approx: np.ndarray) -> np.ndarray:
    d = w2 - approx
    return np.einsum("cn,cn->c", d, d) / w2.shape[1]


@dataclass(frozen=True, eq=False, repr=False)
class ResidualTensor(ResultRepr):
    """``W ~ s1 Q1 + s2 Q2`` per output kernel (axis 0).

    ``codes1``/``codes2``: ``int8`` arrays of ``W``'s shape on the signed ``grid``;
    ``scale1``/``scale2``: ``(C,)`` float64 (``scale2 = 0`` and ``codes2 = 0`` for kernels
    without a second term, ``mask`` False); ``mse1``: per-kernel mean squared error of
    ``s1 Q1`` alone; ``mse``: of the returned approximation.
    """

    codes1: np.ndarray
    scale1: np.ndarray
    codes2: np.ndarray
    scale2: np.ndarray
    mask: np.ndarray
    mse1: np.ndarray
    mse: np.ndarray
    grid: Grid
    method: str

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.codes1.shape)

    def dequantize(self) -> np.ndarray:
        """``s1 Q1 + s2 Q2`` as float64, ``W``'s shape."""
        bshape = (self.scale1.size,) + (1,) * (self.codes1.ndim - 1)
        return self.codes1 * self.scale1.reshape(bshape) + self.codes2 * self.scale2.reshape(bshape)

    def summary(self) -> str:
        n = int(self.mask.sum())
        ratio = float(self.mse1.sum() / self.mse.sum()) if self.mse.sum() > 0 else float("inf")
        return (
            f"residual quantization ({self.method}, {self.grid.summary()}): "
            f"{n}/{self.mask.size} kernels with a second term, mean MSE "
            f"{self.mse1.mean():.6g} -> {self.mse.mean():.6g} ({ratio:.3g}x lower)"
        )


def residual_quantize(
    W: Any,
    bits: int,
    *,
    scale_method: str = "mmse",
    mask: Any = None,
) -> ResidualTensor:
    """Two-term per-kernel quantization ``W ~ s1 Q1 + s2 Q2`` (same bits for both terms).

    ``W``: weight with output kernels on axis 0 (finite, non-empty). ``s1, Q1``: per-kernel
    ``scale_method`` (a key of :data:`~frugalml.quant.baselines.SCALE_METHODS` other than
    ``"histogram"``) on ``W``; ``s2, Q2``: the same on the residual ``W - s1 Q1``; then
    ``(s1, s2)`` are re-fitted jointly by least squares for the fixed codes, per kernel, where
    that lowers the error and keeps both scales positive. ``mask`` (``(C,)`` bool, optional):
    only these kernels keep a second term (the others get ``s2 = 0``, ``Q2 = 0``, and their
    first term unchanged). Cost: two scale searches on ``W``'s size.
    """
    bits = check_bits(bits)
    _method(scale_method)
    w2 = as_channels(W, True, "W")
    shape = np.shape(W)
    channels = w2.shape[0]
    if mask is None:
        keep = np.ones(channels, dtype=bool)
    else:
        keep = check_array(mask, "mask", shape=(channels,), dtype=None, min_size=0)
        if keep.dtype != bool:
            raise InvalidInputError(f"mask must be a boolean array of shape ({channels},)")
    s1, q1 = _per_channel_fit(w2, bits, scale_method)
    first = q1 * s1[:, None]
    mse1 = _row_mse(w2, first)
    s2, q2 = _per_channel_fit(w2 - first, bits, scale_method)
    mse = _row_mse(w2, first + q2 * s2[:, None])
    # joint least-squares refit of (s1, s2) for the fixed codes
    a11 = np.einsum("cn,cn->c", q1, q1)
    a22 = np.einsum("cn,cn->c", q2, q2)
    a12 = np.einsum("cn,cn->c", q1, q2)
    b1 = np.einsum("cn,cn->c", q1, w2)
    b2 = np.einsum("cn,cn->c", q2, w2)
    det = a11 * a22 - a12 * a12
    ok = det > 1e-12 * np.maximum(a11 * a22, np.finfo(float).tiny)
    safe = np.where(ok, det, 1.0)
    t1 = np.where(ok, (b1 * a22 - b2 * a12) / safe, s1)
    t2 = np.where(ok, (b2 * a11 - b1 * a12) / safe, s2)
    ok &= (t1 > 0) & (t2 > 0)
    mse_joint = _row_mse(w2, q1 * t1[:, None] + q2 * t2[:, None])
    better = ok & (mse_joint < mse)
    s1_two = np.where(better, t1, s1)
    s2_two = np.where(better, t2, s2)
    mse_two = np.where(better, mse_joint, mse)
    # kernels without a second term keep the plain first term
    scale1 = np.where(keep, s1_two, s1)
    scale2 = np.where(keep, s2_two, 0.0)
    q2 = np.where(keep[:, None], q2, 0.0)
    grid = Grid(bits, signed=True)
    return ResidualTensor(
        codes1=q1.astype(np.int8).reshape(shape),
        scale1=scale1,
        codes2=q2.astype(np.int8).reshape(shape),
        scale2=scale2,
        mask=keep.copy(),
        mse1=mse1,
        mse=np.where(keep, mse_two, mse1),
        grid=grid,
        method=scale_method,
    )


def rank_kernels(W: Any, bits: int, *, scale_method: str = "mmse") -> np.ndarray:
    """Relative error ``||W_k - Q(W_k)||^2 / ||W_k||^2`` of each output kernel (axis 0) under
    per-kernel ``scale_method`` quantization; ``(C,)`` float64, 0 for all-zero kernels. Larger
    means the kernel benefits more from a residual term. Cost: one scale search on ``W``."""
    bits = check_bits(bits)
    w2 = as_channels(W, True, "W")
    s, q = _per_channel_fit(w2, bits, scale_method)
    err = _row_mse(w2, q * s[:, None])
    power = np.einsum("cn,cn->c", w2, w2) / w2.shape[1]
    return np.where(power > 0, err / np.where(power > 0, power, 1.0), 0.0)


@dataclass(frozen=True, eq=False, repr=False)
class ResidualPlan(ResultRepr):
    """Which kernels get a residual term, per layer.

    ``masks[layer]``: ``(C_layer,)`` bool. ``extra_macs``: MACs added by the second terms
    (selected kernels x that layer's MACs per kernel); ``total_macs``: MACs of every kernel
    once (the single-tensor model), so the residual model costs ``total_macs + extra_macs``.
    """

    masks: dict[str, np.ndarray]
    extra_macs: int
    total_macs: int

    @property
    def n_selected(self) -> int:
        return int(sum(int(m.sum()) for m in self.masks.values()))

    @property
    def n_kernels(self) -> int:
        return int(sum(m.size for m in self.masks.values()))

    @property
    def overhead(self) -> float:
        """``extra_macs / total_macs`` (0 when there are no MACs)."""
        return self.extra_macs / self.total_macs if self.total_macs else 0.0

    def summary(self) -> str:
        return (
            f"residual plan: {self.n_selected}/{self.n_kernels} kernels in "
            f"{sum(1 for m in self.masks.values() if m.any())}/{len(self.masks)} layers, "
            f"+{self.extra_macs} MACs on {self.total_macs} ({self.overhead:.2%})"
        )


def select_residual(
    rel_mse_by_layer: Mapping[str, Any],
    macs_by_layer: Mapping[str, int],
    *,
    fraction: float | None = None,
    mse_threshold: float | None = None,
) -> ResidualPlan:
    """Pick the kernels that get a second (residual) term, across all layers.

    ``rel_mse_by_layer[name]``: ``(C,)`` relative errors (e.g. from :func:`rank_kernels`);
    ``macs_by_layer[name]``: MACs of *one* kernel of that layer for one input (same keys).
    Exactly one criterion:

    * ``fraction`` in ``[0, 1]``: the ``round(fraction * N)`` worst kernels of all ``N``
      (largest relative error first; ties by layer order, then kernel index);
    * ``mse_threshold >= 0``: every kernel whose relative error exceeds it.

    ``O(N log N)``.
    """
    if (fraction is None) == (mse_threshold is None):
        raise InvalidInputError(
            "give exactly one of fraction= (share of kernels) or mse_threshold= (relative MSE)"
        )
    if not isinstance(rel_mse_by_layer, Mapping) or not isinstance(macs_by_layer, Mapping):
        raise InvalidInputError("rel_mse_by_layer and macs_by_layer must be dicts keyed by layer")
    if set(rel_mse_by_layer) != set(macs_by_layer):
        missing = sorted(set(rel_mse_by_layer) ^ set(macs_by_layer))
        raise InvalidInputError(
            f"rel_mse_by_layer and macs_by_layer must have the same layers; mismatched: {missing}"
        )
    names = list(rel_mse_by_layer)
    rels = []
    macs = {}
    for name in names:
        r = check_array(rel_mse_by_layer[name], f"rel_mse_by_layer[{name!r}]", ndim=1, min_size=0)
        if np.any(r < 0):
            raise InvalidInputError(f"rel_mse_by_layer[{name!r}] must be >= 0")
        rels.append(r)
        m = macs_by_layer[name]
        if isinstance(m, bool) or not isinstance(m, (int, np.integer)) or m < 0:
            raise InvalidInputError(
                f"macs_by_layer[{name!r}] must be a non-negative integer (MACs per kernel), "
                f"got {m!r}"
            )
        macs[name] = int(m)
    flat = np.concatenate(rels) if rels else np.zeros(0)
    chosen = np.zeros(flat.size, dtype=bool)
    if fraction is not None:
        frac = check_probability(fraction, "fraction")
        k = int(np.floor(frac * flat.size + 0.5))
        order = np.argsort(-flat, kind="stable")
        chosen[order[:k]] = True
    else:
        thr = check_nonnegative_float(mse_threshold, "mse_threshold")
        chosen = flat > thr
    masks: dict[str, np.ndarray] = {}
    start = 0
    extra = total = 0
    for name, r in zip(names, rels, strict=True):
        mask = chosen[start : start + r.size].copy()
        start += r.size
        masks[name] = mask
        extra += int(mask.sum()) * macs[name]
        total += r.size * macs[name]
    return ResidualPlan(masks=masks, extra_macs=extra, total_macs=total)
