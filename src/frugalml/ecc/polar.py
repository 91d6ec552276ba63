"""Arikan polar codes for the syndrome-based decoders: Bhattacharyya-parameter construction.

Polar codes are a test bed of Bennatan, Choukroun & Kisilev, "Deep Learning for Decoding of
Linear Codes - A Syndrome-Based Approach" (ISIT 2018, arXiv 1802.04741) and of Choukroun & Wolf,
"Error Correction Code Transformer" (NeurIPS 2022, arXiv 2203.14966). Arikan, "Channel
polarization" (IEEE Trans. IT 55(7), 2009): the information set is the k synthetic channels of
smallest Bhattacharyya parameter, from the recursion z -> (2z - z^2, z^2) at a design SNR.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from .._validate import check_int
from ..errors import InvalidInputError
from .linear_code import BinaryLinearCode, check_dense_size

__all__ = ["polar_bhattacharyya", "polar_code", "polar_information_set"]


def polar_bhattacharyya(n: int, z0: float) -> np.ndarray:
    """Bhattacharyya parameters (n,) of the synthetic channels of a length-n polar code.

    ``z0`` in (0, 1) is the channel's parameter (exp(-Es/N0) for BPSK over AWGN, the erasure
    probability for a BEC). Index i, written in binary MSB first, takes at each bit the
    degraded branch z -> 2z - z^2 (bit 0) or the upgraded branch z -> z^2 (bit 1), matching
    the row convention x = u F^{(x)m}, F = [[1, 0], [1, 1]]. Computed in the log domain (of
    z and of 1 - z), so the recursion itself loses no precision near 0 or 1. Cost O(n).
    """
    n = _check_polar_length(n)
    z0 = float(z0)
    if not (0.0 < z0 < 1.0):
        raise InvalidInputError(f"z0 must lie in (0, 1), got {z0}")
    return np.exp(_polar_log_z(n, math.log(z0))[0])


def _check_polar_length(n: Any) -> int:
    n = check_int(n, "n", low=2)
    if n & (n - 1):
        raise InvalidInputError(f"polar length n must be a power of two, got {n}")
    return n


def _log1mexp(a: np.ndarray) -> np.ndarray:
    """log(1 - exp(a)) for a < 0, accurate at both ends (Maechler's two branches)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        near = a > -math.log(2.0)
        return np.where(near, np.log(-np.expm1(a)), np.log1p(-np.exp(a)))


def _polar_log_z(n: int, log_z0: float) -> tuple[np.ndarray, np.ndarray]:
    """(log z, log(1 - z)) of the synthetic channels, expanded outermost (MSB) level first.

    Minus: 1 - z' = (1 - z)^2, so log(1 - z') = 2 log(1 - z) and log z' = log1p(-(1 - z)^2);
    plus: log z' = 2 log z and log(1 - z') = log1p(-z^2). Carrying both logs keeps channels
    distinguishable near z = 0 (by log z) and near z = 1 (by log(1 - z)).
    """
    lz = np.array([log_z0])
    l1 = _log1mexp(lz)
    for _ in range(n.bit_length() - 1):
        minus_l1 = 2.0 * l1
        minus_lz = _log1mexp(minus_l1)
        plus_lz = 2.0 * lz
        plus_l1 = _log1mexp(plus_lz)
        lz = np.stack([minus_lz, plus_lz], axis=1).reshape(-1)
        l1 = np.stack([minus_l1, plus_l1], axis=1).reshape(-1)
    return lz, l1


def polar_information_set(n: int, k: int, design_snr_db: float = 0.0) -> np.ndarray:
    """Sorted (k,) indices of the k most reliable synthetic channels (smallest Bhattacharyya
    parameter at z0 = exp(-Es/N0), Es/N0 = ``design_snr_db``), ordered by log z then by
    log(1 - z) (so parameters that round to 1 stay ordered); exact ties go to the higher index.
    """
    n = _check_polar_length(n)
    k = check_int(k, "k", low=1, high=n)
    snr = _check_design_snr(design_snr_db)
    lz, l1 = _polar_log_z(n, -(10.0 ** (snr / 10.0)))  # z0 = exp(-Es/N0)
    order = np.lexsort((-np.arange(n), -l1, lz))
    return np.sort(order[:k]).astype(np.intp)


def _check_design_snr(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.floating, np.integer)):
        raise InvalidInputError(f"design_snr_db must be a real number, got {value!r}")
    value = float(value)
    if not (math.isfinite(value) and -20.0 <= value <= 30.0):
        raise InvalidInputError(f"design_snr_db must be finite and in [-20, 30] dB, got {value}")
    return value


def _kron_power(m: int) -> np.ndarray:
    f = np.array([[1, 0], [1, 1]], dtype=np.uint8)
    out = np.ones((1, 1), dtype=np.uint8)
    for _ in range(m):
        out = np.kron(out, f)
    return out


def polar_code(n: int, k: int, design_snr_db: float = 0.0) -> BinaryLinearCode:
    """Arikan polar code of length n (a power of two) and dimension k.

    Information set A from :func:`polar_information_set` at ``design_snr_db`` (Es/N0 in dB,
    z0 = exp(-Es/N0)); ``G = F^{(x)m}[A]`` and, since F^{-1} = F over GF(2),
    ``H = F^{(x)m}[:, frozen]^T``. Cost O(n^2).
    """
    n = _check_polar_length(n)
    k = check_int(k, "k", low=1, high=n)
    check_dense_size(n, f"polar-{n}-{k}")
    info = polar_information_set(n, k, design_snr_db)
    frozen = np.setdiff1d(np.arange(n), info)
    f = _kron_power(n.bit_length() - 1)
    return BinaryLinearCode(f"polar-{n}-{k}", n, k, f[:, frozen].T, f[info])
