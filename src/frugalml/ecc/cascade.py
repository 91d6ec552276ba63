"""A cascade of two decoders: the second one decodes the first one's detected failures.

Bennatan, Choukroun & Kisilev, "Deep Learning for Decoding of Linear Codes - A Syndrome-Based
Approach" (ISIT 2018, arXiv 1802.04741) compare their fast neural decoder with the near-ML
ordered-statistics decoder of Fossorier & Lin (IEEE Trans. IT 41(5), 1995). A syndrome decoder
knows when it failed (its output is not a codeword), so the two combine: the neural decoder
answers the easy majority of words fast, and OSD sees only the words whose output fails a
parity check. On BCH(63, 45) this cascade (the shipped GRU, :func:`~frugalml.ecc.pretrained`,
then OSD-2) is the recommended decoder.

Both decoders follow :mod:`frugalml.ecc.decoder`'s convention; the cascade does too, passing
``sigma`` on to both. Every output of the first decoder with ``valid`` False goes to the
fallback, whose bits and ``valid`` replace it; ``fallback_used`` records which words did.
Cost: the first decoder on every word plus the fallback on the fraction that failed.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..errors import InvalidInputError
from .decoder import Decoded, Decoder, check_llr
from .linear_code import BinaryLinearCode

__all__ = ["CascadeDecoder"]


def _describe(obj: Any) -> str:
    summary = getattr(obj, "summary", None)
    return str(summary()) if callable(summary) else type(obj).__name__


class CascadeDecoder:
    """``first``, then ``fallback`` on the words where ``first``'s output is not a codeword.

    Parameters
    ----------
    first:
        A :class:`~frugalml.ecc.decoder.Decoder`, typically a fast one (a
        :class:`~frugalml.ecc.neural.SyndromeDecoder`, an automorphism ensemble, BP).
    fallback:
        A :class:`~frugalml.ecc.decoder.Decoder` of the same code, typically an expensive
        near-ML one (:class:`~frugalml.ecc.osd.OrderedStatistics`).

    ``cascade(llr, sigma=sigma)`` decodes channel LLRs (..., n) into a
    :class:`~frugalml.ecc.decoder.Decoded` with ``fallback_used``; ``sigma`` is passed on to
    both decoders (a neural one requires it).
    """

    def __init__(self, first: Decoder, fallback: Decoder):
        for name, dec in (("first", first), ("fallback", fallback)):
            if not isinstance(dec, Decoder):
                raise InvalidInputError(
                    f"{name} must be a frugalml.ecc Decoder (decoder(llr, sigma=...) -> "
                    f"Decoded with a .code), got {type(dec).__name__}"
                )
        code = first.code
        other = fallback.code
        if not isinstance(code, BinaryLinearCode) or not isinstance(other, BinaryLinearCode):
            raise InvalidInputError("both decoders must have a BinaryLinearCode as .code")
        if code is not other and (
            code.n != other.n or code.k != other.k or not np.array_equal(code.H, other.H)
        ):
            raise InvalidInputError(
                f"the decoders are for different codes: {code.name} and {other.name}"
            )
        self.first = first
        self.fallback = fallback
        self.code = code

    def __call__(self, llr: Any, *, sigma: float | None = None) -> Decoded:
        """Decode channel LLRs (..., n) (see the class)."""
        arr, lead = check_llr(llr, self.code.n)
        first = self.first(arr, sigma=sigma)
        if not isinstance(first, Decoded):
            raise InvalidInputError(f"first decoder returned {type(first).__name__}, not Decoded")
        bits = np.array(first.bits, dtype=np.uint8).reshape(arr.shape)
        valid = np.array(first.valid, dtype=bool).reshape(arr.shape[0])
        failed = ~valid
        rows = np.flatnonzero(failed)
        if rows.size:
            second = self.fallback(arr[rows], sigma=sigma)
            if not isinstance(second, Decoded):
                raise InvalidInputError(
                    f"fallback decoder returned {type(second).__name__}, not Decoded"
                )
            bits[rows] = np.asarray(second.bits, dtype=np.uint8).reshape(rows.size, -1)
            valid[rows] = np.asarray(second.valid, dtype=bool).reshape(rows.size)
        return Decoded.from_flat(bits, valid, lead, fallback_used=failed)

    def summary(self) -> str:
        return (
            f"cascade on {self.code.name}: {_describe(self.first)}; then "
            f"{_describe(self.fallback)} on its detected failures"
        )

    def __repr__(self) -> str:
        return f"CascadeDecoder({type(self.first).__name__} -> {type(self.fallback).__name__})"
