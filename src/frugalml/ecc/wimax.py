"""The quasi-cyclic LDPC codes of IEEE 802.16e (mobile WiMAX), rate 1/2, n = 576 .. 2304.

Standard: IEEE Std 802.16e-2005, Section 8.4.9.2.5 ("Low density parity check code
(optional)"; the same codes are in IEEE Std 802.16-2009, 8.4.9.2.5). Each code is defined by a
12 x 24 *model* (base) matrix for the largest expansion factor z0 = 96: an entry -1 is a z x z
zero block, an entry p >= 0 the z x z identity cyclically shifted to the right by p (row r has
its one in column (r + p) mod z). The 19 code lengths are n = 24 z for z = 24, 28, ..., 96
(576, 672, ..., 2304); for rate 1/2 the shifts for a smaller z are floor(p z / z0).

Structure of the rate-1/2 model matrix ``H_b = [H_b1 | h_b | H_b2]``:

* ``H_b1`` (12 x 12): the information part, column degrees 3 and 6;
* ``h_b`` (column 12): three nonzero blocks, shifts 7 (rows 0 and 11) and 0 (row 5), so that
  over GF(2) the three blocks sum to the identity;
* ``H_b2`` (columns 13..23): the dual diagonal, identity blocks on the diagonal and the
  sub-diagonal (degree-2 parity columns).

The parity part ``[h_b | H_b2]`` is therefore invertible for every z (summing all block rows
leaves ``h_b``'s identity on the first parity block), H has full rank 12 z and the codes are
exactly rate 1/2: (576, 288) ... (2304, 1152). Row degrees are 6 (8 rows) and 7 (4 rows).

The model matrix below was written from the standard's table and checked entry by entry
against an independent public copy: ``mat/InitializeWiMaxLDPC.m`` of the Iterative Solutions
Coded Modulation Library (R. Iyer Seshadri and M. C. Valenti, github.com/wvu-wcrl/CML), which
also applies the floor(p z / 96) scaling for rate 1/2.
"""

from __future__ import annotations

import numpy as np

from .._validate import check_int
from ..errors import InvalidInputError
from .gf2 import gf2_row_reduce
from .linear_code import BinaryLinearCode, check_dense_size

__all__ = ["WIMAX_LENGTHS", "WIMAX_RATES", "ldpc_wimax", "wimax_base_matrix"]

#: the model matrix's expansion factor (n = 2304)
_Z0 = 96
#: the 19 code lengths n = 24 z, z = 24, 28, ..., 96
WIMAX_LENGTHS = tuple(range(576, 2305, 96))
#: the code rates implemented (the standard also has 2/3 A/B, 3/4 A/B and 5/6)
WIMAX_RATES = ("1/2",)

# IEEE Std 802.16e-2005, 8.4.9.2.5, rate 1/2 model matrix (z0 = 96; -1: zero block).
_RATE_1_2 = (
    (-1, 94, 73, -1, -1, -1, -1, -1, 55, 83, -1, -1, 7, 0, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1),
    (-1, 27, -1, -1, -1, 22, 79, 9, -1, -1, -1, 12, -1, 0, 0, -1, -1, -1, -1, -1, -1, -1, -1, -1),
    (-1, -1, -1, 24, 22, 81, -1, 33, -1, -1, -1, 0, -1, -1, 0, 0, -1, -1, -1, -1, -1, -1, -1, -1),
    (61, -1, 47, -1, -1, -1, -1, -1, 65, 25, -1, -1, -1, -1, -1, 0, 0, -1, -1, -1, -1, -1, -1, -1),
    (-1, -1, 39, -1, -1, -1, 84, -1, -1, 41, 72, -1, -1, -1, -1, -1, 0, 0, -1, -1, -1, -1, -1, -1),
    (-1, -1, -1, -1, 46, 40, -1, 82, -1, -1, -1, 79, 0, -1, -1, -1, -1, 0, 0, -1, -1, -1, -1, -1),
    (-1, -1, 95, 53, -1, -1, -1, -1, -1, 14, 18, -1, -1, -1, -1, -1, -1, -1, 0, 0, -1, -1, -1, -1),
    (-1, 11, 73, -1, -1, -1, 2, -1, -1, 47, -1, -1, -1, -1, -1, -1, -1, -1, -1, 0, 0, -1, -1, -1),
    (12, -1, -1, -1, 83, 24, -1, 43, -1, -1, -1, 51, -1, -1, -1, -1, -1, -1, -1, -1, 0, 0, -1, -1),
    (-1, -1, -1, -1, -1, 94, -1, 59, -1, -1, 70, 72, -1, -1, -1, -1, -1, -1, -1, -1, -1, 0, 0, -1),
    (-1, -1, 7, 65, -1, -1, -1, -1, 39, 49, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, 0, 0),
    (43, -1, -1, -1, -1, 66, -1, 41, -1, -1, -1, 26, 7, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, 0),
)


def _check_rate_length(n: int, rate: str) -> tuple[int, str]:
    if not isinstance(rate, str) or rate.strip() not in WIMAX_RATES:
        raise InvalidInputError(
            f"rate must be one of {', '.join(repr(r) for r in WIMAX_RATES)} (the 802.16e "
            f"rate-1/2 code; rates 2/3, 3/4 and 5/6 are not implemented); got {rate!r}"
        )
    n = check_int(n, "n", low=1)
    if n not in WIMAX_LENGTHS:
        raise InvalidInputError(
            f"n must be one of the 802.16e code lengths 24 z, z = 24, 28, ..., 96 "
            f"(576, 672, ..., 2304: multiples of 96 in [576, 2304]); got n = {n}"
        )
    return n, rate.strip()


def wimax_base_matrix(n: int = 576, rate: str = "1/2") -> np.ndarray:
    """The 802.16e model matrix for length ``n``, shifts scaled to z = n / 24.

    Returns a (12, 24) ``int64`` array: -1 for a zero block, else the right cyclic shift
    floor(p z / 96) of the identity (p the standard's shift for z0 = 96). O(1).
    """
    n, _ = _check_rate_length(n, rate)
    z = n // 24
    base = np.array(_RATE_1_2, dtype=np.int64)
    return np.where(base < 0, -1, (base * z) // _Z0)


def _expand(base: np.ndarray, z: int) -> np.ndarray:
    """(mb, nb) shifts -> (mb z, nb z) uint8 H: block (i, j) is the identity shifted right by
    ``base[i, j]`` (row r has its one in column (r + p) mod z), zero where -1."""
    mb, nb = base.shape
    h = np.zeros((mb * z, nb * z), dtype=np.uint8)
    r = np.arange(z)
    for i, j in zip(*np.nonzero(base >= 0), strict=True):
        h[i * z + r, j * z + (r + base[i, j]) % z] = 1
    return h


def ldpc_wimax(n: int = 576, rate: str = "1/2") -> BinaryLinearCode:
    """The IEEE 802.16e (mobile WiMAX) rate-1/2 quasi-cyclic LDPC code of length ``n``.

    IEEE Std 802.16e-2005, Section 8.4.9.2.5: the 12 x 24 rate-1/2 model matrix (see the module
    docstring; checked against the Coded Modulation Library's copy), expanded with z = n / 24
    and shifts floor(p z / 96). ``n`` must be one of :data:`WIMAX_LENGTHS` (576, 672, ...,
    2304) and ``rate`` ``"1/2"``; anything else raises :class:`InvalidInputError` naming the
    supported values. ``ldpc_wimax(576)`` is the (576, 288) code, named ``"ldpc-wimax-576-288"``.

    Returns a :class:`BinaryLinearCode` with
    H: (12 z, 24 z) ``uint8``, the expanded model matrix (76 z ones; full rank 12 z because
        the dual-diagonal parity part is invertible), its rows kept as the standard's checks;
    G: (12 z, 24 z) ``uint8``, systematic in the standard's bit order: a codeword is
        ``[m | p]`` with the message m in the first k = 12 z positions and the parity
        p = (H_p^{-1} H_s) m, H = [H_s | H_p] (the output of the standard's encoder).

    The Tanner graph has no 4-cycles (girth >= 6) at 18 of the 19 lengths; at n = 672
    (z = 28) the scaled shifts of model rows 6 and 10, columns 2 and 3 (0-based; 95, 53, 7, 65
    become 27, 15, 2, 18 and 27 - 15 + 18 - 2 = 28 = 0 mod z) close one 4-cycle of the base
    graph, 28 in the expanded graph (tested). Cost: one GF(2)
    Gauss-Jordan elimination of H (O(k) XOR passes over a (k, n / 8) byte matrix) plus
    :class:`BinaryLinearCode`'s rank checks; about 4 n^2 bytes of dense matrices (~21 MB at
    n = 2304).
    """
    n, rate = _check_rate_length(n, rate)
    name_guess = f"ldpc-wimax-{n}"
    check_dense_size(n, name_guess)
    z = n // 24
    h = _expand(wimax_base_matrix(n, rate), z)
    m = h.shape[0]
    k = n - m
    # [H_p | H_s] -> RREF [I | A] with A = H_p^{-1} H_s, since H_p is invertible.
    reduced, pivots = gf2_row_reduce(np.concatenate([h[:, k:], h[:, :k]], axis=1))
    if pivots.size != m or not np.array_equal(pivots, np.arange(m)):
        raise InvalidInputError(  # unreachable for the standard's matrices (tested)
            f"{name_guess}: the parity part of H is singular; the model matrix is corrupt"
        )
    a = reduced[:, m:]  # (m, k)
    g = np.concatenate([np.eye(k, dtype=np.uint8), a.T], axis=1)
    return BinaryLinearCode(f"ldpc-wimax-{n}-{k}", n, k, h, g)
