"""Fast orthogonal transforms used by the randomized Hadamard / cosine sketches.

:func:`fwht` is the orthonormal Walsh-Hadamard transform along axis 0,
``H_N = H_2 (x) H_2 (x) ... (x) H_2`` (Sylvester order, ``N = 2^p``), scaled by ``N^{-1/2}``.
It is vectorised as a Kronecker product of small Hadamard blocks: ``x`` is viewed as a
``2^{p_1} x ... x 2^{p_t} x k`` tensor and each mode is multiplied by its ``H_{2^{p_i}}``
with one batched BLAS-3 call. With block exponents ``p_i <= 7`` this costs
``O(N k sum_i 2^{p_i})`` flops in ``t = ceil(p / 7)`` passes over the data, instead of the
``p`` memory-bound passes of the textbook butterfly (which :func:`fwht_butterfly` keeps as
the reference implementation).

:func:`dct` is the orthonormal DCT-II along axis 0 from :mod:`scipy.fft` (any length).

Reference for the SRHT built on them: Ailon & Chazelle (2009); Tropp (2011).
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import scipy.fft
import scipy.linalg

from .._validate import check_int
from ..errors import InvalidInputError

__all__ = ["dct", "fwht", "fwht_butterfly", "hadamard_block", "next_pow2"]

#: largest Kronecker factor, as a power of two (H_128: 128 flops per entry per pass)
MAX_BLOCK_BITS = 7


def next_pow2(n: int) -> int:
    """Smallest power of two ``>= n`` (``n >= 1``)."""
    if n < 1:
        raise InvalidInputError(f"length must be >= 1, got {n}")
    return 1 << (int(n) - 1).bit_length()


@lru_cache(maxsize=16)
def hadamard_block(bits: int) -> np.ndarray:
    """Unnormalised Sylvester Hadamard matrix of order ``2^bits`` (read-only, cached)."""
    h = scipy.linalg.hadamard(1 << bits).astype(np.float64)
    h.setflags(write=False)
    return h


def _split_bits(p: int, max_bits: int) -> list[int]:
    t = max(1, -(-p // max_bits))
    base, extra = divmod(p, t)
    return [base + (1 if i < extra else 0) for i in range(t)]


def fwht(x: np.ndarray, *, max_block_bits: int = MAX_BLOCK_BITS) -> np.ndarray:
    """Orthonormal Walsh-Hadamard transform of ``x`` along axis 0 (a new array).

    ``x``: (N,) or (N, k) with ``N`` a power of two. Returns ``H_N x / sqrt(N)``, same shape,
    float64. Cost ``O(N k 2^{max_block_bits} ceil(log2 N / max_block_bits))`` BLAS-3 flops.
    """
    x = np.asarray(x, dtype=np.float64)
    max_block_bits = check_int(max_block_bits, "max_block_bits", low=1, high=12)
    n = x.shape[0]
    if n < 1 or n & (n - 1):
        raise InvalidInputError(f"fwht needs a power-of-two length, got {n}; pad with zeros")
    if n == 1:
        return x.copy()
    vec = x.ndim == 1
    k = 1 if vec else int(np.prod(x.shape[1:]))
    y = np.ascontiguousarray(x.reshape(n, k))
    p = n.bit_length() - 1
    left = 1
    for bits in _split_bits(p, max_block_bits):
        size = 1 << bits
        right = n // (left * size)
        view = y.reshape(left, size, right * k)
        y = np.matmul(hadamard_block(bits), view).reshape(n, k)
        left *= size
    y *= 1.0 / np.sqrt(n)
    return y.reshape(x.shape)


def fwht_butterfly(x: np.ndarray) -> np.ndarray:
    """Reference textbook butterfly FWHT (orthonormal, along axis 0); ``log2 N`` passes."""
    x = np.array(x, dtype=np.float64)
    n = x.shape[0]
    if n < 1 or n & (n - 1):
        raise InvalidInputError(f"fwht needs a power-of-two length, got {n}; pad with zeros")
    flat = x.reshape(n, -1)
    h = 1
    while h < n:
        v = flat.reshape(n // (2 * h), 2, h, -1)
        a = v[:, 0].copy()
        v[:, 0] += v[:, 1]
        v[:, 1] = a - v[:, 1]
        h *= 2
    return x / np.sqrt(n)


def dct(x: np.ndarray, *, workers: int | None = None) -> np.ndarray:
    """Orthonormal DCT-II of ``x`` along axis 0 (any length), via :func:`scipy.fft.dct`."""
    return scipy.fft.dct(np.asarray(x, dtype=np.float64), type=2, norm="ortho", axis=0,
                         workers=workers)  # fmt: skip
