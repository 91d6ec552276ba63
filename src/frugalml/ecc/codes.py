"""Binary linear block codes for syndrome-based neural decoding: BCH, polar and LDPC.

The codes are the test beds of Bennatan, Choukroun & Kisilev, "Deep Learning for
Decoding of Linear Codes - A Syndrome-Based Approach" (ISIT 2018, arXiv 1802.04741) and of
Choukroun & Wolf, "Error Correction Code Transformer" (NeurIPS 2022, arXiv 2203.14966).

A code is a :class:`BinaryLinearCode` (:mod:`.linear_code`): a binary generator matrix ``G`` (k,
n) and parity-check matrix ``H`` (n - k, n), both full rank with ``G H^T = 0`` over GF(2)
(checked on construction). Encoding is ``c = m G`` and the syndrome of a word ``b`` is ``s = b
H^T``, both mod 2, vectorised over any leading batch shape.

* :func:`bch_code` (:mod:`.bch`) - narrow-sense primitive binary BCH codes, length n = 2^m - 1.
  The generator polynomial is the product of the minimal polynomials of alpha^1..alpha^(d-1),
  alpha a root of the textbook primitive polynomial of GF(2^m) (x^6 + x + 1 for n = 63; the
  same generator polynomial as ``galois.BCH(n, k)`` and the literature's matrices), or of the
  Conway polynomial with ``field="conway"`` (name ``"bch-<n>-<k>-conway"``; an equivalent code
  with a different Tanner graph); computed here with NumPy log/antilog tables, so no galois JIT
  compilation and no optional dependency. ``G`` is systematic (message in the last k positions)
  and ``H`` is the cyclic parity-check matrix of h(x) = (x^n - 1) / g(x).
* :func:`polar_code` (:mod:`.polar`) - Arikan polar codes, information set from the
  Bhattacharyya-parameter recursion z -> (2z - z^2, z^2) at a design SNR.
* :func:`ldpc_from_alist`, :func:`to_alist` (:mod:`.alist`) - LDPC codes in MacKay's alist
  format, and :func:`ldpc_regular` (:mod:`.ldpc`), random (dv, dc)-regular codes with 4-cycles
  removed.
* :func:`ldpc_wimax` (:mod:`.wimax`) - the IEEE 802.16e (WiMAX) rate-1/2 quasi-cyclic LDPC
  codes, n = 576 .. 2304.
* :func:`get_code` - any of the above by name ("bch-63-45", "polar-64-32", ...).

This module builds a code by name and re-exports the constructions, so
``from frugalml.ecc.codes import bch_code`` keeps working. ``LinearCode`` is the deprecated
name of :class:`BinaryLinearCode` (until frugalml 0.3).
"""

from __future__ import annotations

import re
from typing import Any

from .._deprecation import warn_renamed
from .._validate import RngLike
from ..errors import InvalidInputError
from .alist import bundled_alist, ldpc_from_alist, resolve_alist, to_alist
from .bch import bch_code, bch_dimensions, bch_equivalence
from .ldpc import ldpc_regular
from .linear_code import BinaryLinearCode, check_frames
from .polar import polar_bhattacharyya, polar_code, polar_information_set
from .wimax import ldpc_wimax

__all__ = [
    "CODE_NAME_FORMATS",
    "BinaryLinearCode",
    "bch_code",
    "bch_dimensions",
    "bch_equivalence",
    "bundled_alist",
    "check_frames",
    "get_code",
    "ldpc_from_alist",
    "ldpc_regular",
    "ldpc_wimax",
    "polar_bhattacharyya",
    "polar_code",
    "polar_information_set",
    "to_alist",
]

CODE_NAME_FORMATS = (
    "bch-<n>-<k>",
    "bch-<n>-<k>-conway",
    "polar-<n>-<k>",
    "ldpc-regular-<n>-<dv>-<dc>",
    "ldpc-wimax-<n>-<k>",
    "ldpc-<path.alist>",
)


def get_code(name: str, *, rng: RngLike = 0) -> BinaryLinearCode:
    """Build a code from its name.

    Formats: ``"bch-<n>-<k>"`` (textbook field), ``"bch-<n>-<k>-conway"``,
    ``"polar-<n>-<k>"`` (design SNR 0 dB),
    ``"ldpc-wimax-<n>-<k>"`` (IEEE 802.16e rate 1/2, n = 576 .. 2304 in steps of 96),
    ``"ldpc-regular-<n>-<dv>-<dc>"`` (random, from ``rng``; the default seed 0 makes the name
    reproducible) and ``"ldpc-<path.alist>"`` (a file; a bare file name not found in the
    working directory is looked up among the bundled ones, e.g. ``"ldpc-ldpc_96_48.alist"``).
    Unknown names raise ``InvalidInputError`` listing the formats.
    """
    if not isinstance(name, str):
        raise InvalidInputError(f"code name must be a string, got {type(name).__name__}")
    s = name.strip()
    if mt := re.fullmatch(r"bch-(\d+)-(\d+)(?:-(conway|textbook))?", s):
        return bch_code(int(mt[1]), int(mt[2]), field=mt[3] or "textbook")
    if mt := re.fullmatch(r"polar-(\d+)-(\d+)", s):
        return polar_code(int(mt[1]), int(mt[2]))
    if mt := re.fullmatch(r"ldpc-regular-(\d+)-(\d+)-(\d+)", s):
        return ldpc_regular(int(mt[1]), int(mt[2]), int(mt[3]), rng)
    if mt := re.fullmatch(r"ldpc-wimax-(\d+)-(\d+)", s):
        n, k = int(mt[1]), int(mt[2])
        if 2 * k != n:
            raise InvalidInputError(
                f"{s!r}: the 802.16e codes implemented are rate 1/2 (k = n / 2), "
                "e.g. 'ldpc-wimax-576-288'"
            )
        return ldpc_wimax(n)
    if mt := re.fullmatch(r"ldpc-(.+\.alist)", s):
        return ldpc_from_alist(resolve_alist(mt[1]), name=s)
    formats = ", ".join(repr(f) for f in CODE_NAME_FORMATS)
    raise InvalidInputError(f"unknown code name {name!r}; expected one of the formats {formats}")


def __getattr__(name: str) -> Any:
    """``LinearCode``: the deprecated name of :class:`BinaryLinearCode` (with a warning)."""
    if name == "LinearCode":
        warn_renamed("LinearCode", "BinaryLinearCode", "frugalml.ecc.codes")
        return BinaryLinearCode
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
