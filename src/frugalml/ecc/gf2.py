"""Linear algebra over GF(2) on 0/1 ``uint8`` matrices.

The workhorse is :func:`gf2_row_reduce`, Gauss-Jordan elimination to the reduced row echelon
form (RREF). Rows are bit-packed eight columns to a byte (``np.packbits``) and every pivot step
is one vectorised XOR of the pivot row into all rows that have a one in the pivot column, so an
(m, n) matrix costs O(min(m, n)) Python steps of O(m n / 8) byte operations each.

Everything here is plain NumPy (no galois), and inputs are validated: a matrix must be 2-D,
finite and hold only the values 0 and 1.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .._validate import check_array
from ..errors import InvalidInputError

__all__ = [
    "as_bits",
    "gf2_independent_rows",
    "gf2_matmul",
    "gf2_nullspace",
    "gf2_rank",
    "gf2_row_reduce",
    "systematic_form",
]

# float64 BLAS sums of 0/1 products are exact below 2**53; float32 below 2**24.
_F32_EXACT = 1 << 24


def as_bits(x: Any, name: str, *, ndim: int | None = None) -> np.ndarray:
    """``x`` as a ``uint8`` array of 0/1 values (bool and integer input accepted) or raise.

    Non-integral floats and values other than 0 and 1 are rejected, naming ``name``.
    """
    arr = check_array(x, name, dtype=None, min_size=0)
    if ndim is not None and arr.ndim != ndim:
        raise InvalidInputError(f"{name} must have {ndim} dimension(s), got shape {arr.shape}")
    if arr.dtype == np.uint8:
        bad = arr > 1
    elif arr.dtype == bool:
        return arr.astype(np.uint8)
    else:
        bad = (arr != 0) & (arr != 1)
    if np.any(bad):
        first = arr[bad].reshape(-1)[0]
        raise InvalidInputError(
            f"{name} must hold bits (0 or 1), found {int(np.count_nonzero(bad))} other "
            f"value(s), e.g. {first!r}"
        )
    return arr.astype(np.uint8, copy=False)


def gf2_matmul(a: Any, b: Any) -> np.ndarray:
    """``a @ b`` over GF(2) for 0/1 arrays: (..., m, p) @ (p, q) -> (..., m, q) ``uint8``.

    Uses floating-point BLAS (exact for these integer sums) and reduces mod 2;
    cost O(m p q) flops. Inputs are assumed to be bits (not re-validated: this is the inner
    loop of encoders and syndrome computations, whose public callers validate).
    """
    a = np.asarray(a)
    b = np.asarray(b)
    dtype = np.float32 if a.shape[-1] < _F32_EXACT else np.float64
    prod = np.matmul(a.astype(dtype, copy=False), b.astype(dtype, copy=False))
    return (np.rint(prod).astype(np.int64) & 1).astype(np.uint8)


def gf2_row_reduce(m: Any) -> tuple[np.ndarray, np.ndarray]:
    """Reduced row echelon form of an (r, n) 0/1 matrix over GF(2).

    Returns ``(R, pivots)``: ``R`` (r, n) ``uint8`` in RREF (the nonzero rows first, each with
    a leading one in column ``pivots[i]`` that is the only one in its column) and ``pivots``,
    the increasing pivot columns (``intp``, length rank). Pivots are chosen greedily left to
    right, so ``pivots`` are the first columns that are independent of the ones before them.
    Cost O(min(r, n)) vectorised XOR passes over the packed (r, n / 8) matrix.
    """
    a = as_bits(m, "M", ndim=2)
    rows, n = a.shape
    packed = np.packbits(a, axis=1)  # (rows, ceil(n / 8)), column c at bit 7 - c % 8
    pivots: list[int] = []
    r = 0
    for c in range(n):
        if r == rows:
            break
        byte, shift = c >> 3, 7 - (c & 7)
        below = np.flatnonzero((packed[r:, byte] >> shift) & 1)
        if below.size == 0:
            continue
        p = r + int(below[0])
        if p != r:
            packed[[r, p]] = packed[[p, r]]
        hit = np.flatnonzero((packed[:, byte] >> shift) & 1)
        hit = hit[hit != r]
        if hit.size:
            # the pivot row is zero left of column c, so only bytes from `byte` on change
            packed[hit, byte:] ^= packed[r, byte:]
        pivots.append(c)
        r += 1
    reduced = np.unpackbits(packed, axis=1, count=n) if n else a.copy()
    return reduced.astype(np.uint8, copy=False), np.asarray(pivots, dtype=np.intp)


def gf2_rank(m: Any) -> int:
    """Rank of a 0/1 matrix over GF(2) (see :func:`gf2_row_reduce` for the cost)."""
    return int(gf2_row_reduce(m)[1].size)


def gf2_nullspace(m: Any) -> np.ndarray:
    """Basis of the right null space {x : M x = 0} over GF(2), as rows.

    Returns an (n - rank, n) ``uint8`` matrix ``N`` with ``M @ N.T == 0 (mod 2)`` and full row
    rank. Row j is the identity on the j-th non-pivot ("free") column of ``M``'s RREF, so the
    free columns form an information set of the null space.
    """
    reduced, pivots = gf2_row_reduce(m)
    n = reduced.shape[1]
    free = np.setdiff1d(np.arange(n), pivots)
    basis = np.zeros((free.size, n), dtype=np.uint8)
    basis[np.arange(free.size), free] = 1
    if pivots.size and free.size:
        basis[:, pivots] = reduced[: pivots.size][:, free].T
    return basis


def gf2_independent_rows(m: Any) -> np.ndarray:
    """Indices (increasing) of a maximal set of linearly independent rows of ``M``.

    Chosen greedily top to bottom: row i is kept iff it is not in the span of the rows above
    it. Used to drop redundant parity checks while keeping the sparse original rows.
    """
    a = as_bits(m, "M", ndim=2)
    return gf2_row_reduce(a.T)[1]


def systematic_form(h: Any) -> tuple[np.ndarray, np.ndarray]:
    """Systematic form of a parity-check (or any) matrix over GF(2).

    Returns ``(H_sys, perm)`` with ``perm`` (n,) a column permutation (the pivot columns of
    ``H``'s RREF first, then the others, each group increasing) and ``H_sys = [I_r | A]``
    (r = rank H rows; dependent rows are dropped) spanning the same row space as
    ``H[:, perm]``. A generator of the code {x : H x = 0} is then ``[A.T | I_{n-r}]`` in the
    permuted coordinates, i.e. ``G[:, perm] = [A.T | I]``.
    """
    reduced, pivots = gf2_row_reduce(h)
    n = reduced.shape[1]
    free = np.setdiff1d(np.arange(n), pivots)
    perm = np.concatenate([pivots, free]).astype(np.intp)
    return reduced[: pivots.size][:, perm].copy(), perm
