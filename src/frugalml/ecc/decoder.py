"""The one decoder call convention of :mod:`frugalml.ecc`: ``decoder(llr, *, sigma=None) ->
Decoded``.

The decoders compared by Bennatan, Choukroun & Kisilev, "Deep Learning for Decoding of Linear
Codes - A Syndrome-Based Approach" (ISIT 2018, arXiv 1802.04741) and Choukroun & Wolf, "Error
Correction Code Transformer" (NeurIPS 2022, arXiv 2203.14966) - hard decision, belief
propagation, ordered statistics, the neural syndrome decoders, their automorphism ensembles and
cascades - are all called the same way, as the decoder blocks of Sionna (Hoydis et al.,
"Sionna: An Open-Source Library for Next-Generation Physical Layer Research", arXiv
2203.11854): channel LLRs in, one result type out.

LLR convention (the one of the whole area). Bit ``c`` is sent as the BPSK symbol
``x = 1 - 2c`` (0 -> +1, 1 -> -1) and received over AWGN as ``y = x + z``, ``z ~ N(0,
sigma^2)``; its log-likelihood ratio is

    llr = log P(c = 0 | y) / P(c = 1 | y) = 2 y / sigma^2        (:func:`llr_scale`)

so a positive LLR favours bit 0 and the hard decision is ``bit = (llr < 0)``.

Calling a decoder (:class:`Decoder`):

* ``llr``: float array (..., n) with any number of leading batch dimensions (none: one word).
  Every decoder accepts NumPy arrays and torch tensors (the NumPy decoders copy a tensor to the
  CPU; the neural ones use their own device).
* ``sigma``: the noise standard deviation the LLRs were computed with. Decoders that use the
  LLRs as they are (:class:`HardDecision`, belief propagation, OSD) ignore it. The neural
  decoders were trained on channel outputs ``y``, not on LLRs, and recover
  ``y = llr / (2 / sigma^2)`` from it, so they require it.
  :func:`~frugalml.ecc.channel.simulate` always passes it and cascades pass it on.
* returns :class:`Decoded`: ``bits`` (..., n) uint8, ``valid`` (...) bool (the bits satisfy
  every parity check), and the extras of some decoders (``iterations`` of BP,
  ``fallback_used`` of a cascade).

The earlier entry points (``bp(y, sigma)``, ``osd(y, sigma)``, ``decode_llr``, ``.decode(y)``,
the ensemble's ``ens(y, sigma)``, all returning arrays or tuples) still work until frugalml 0.3,
with a :class:`~frugalml.errors.FrugalDeprecationWarning`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import numpy as np

from .._results import ResultRepr
from .._validate import check_array, check_positive_float
from ..errors import InvalidInputError
from .linear_code import BinaryLinearCode, check_code

__all__ = ["Decoded", "Decoder", "HardDecision", "check_llr", "llr_scale"]


def llr_scale(sigma: float) -> float:
    """``2 / sigma^2``: the factor from BPSK/AWGN channel outputs to LLRs (``llr = y * it``).

    Raises :class:`InvalidInputError` unless sigma is finite and > 0.
    """
    s = check_positive_float(sigma, "sigma")
    return 2.0 / s**2


def check_llr(llr: Any, n: int, name: str = "llr") -> tuple[np.ndarray, tuple[int, ...]]:
    """LLRs (..., n) as a float64 (B, n) array (B the product of the leading dimensions) and
    the leading shape (...). Torch tensors are copied to the CPU. Raises
    :class:`InvalidInputError` on a wrong last dimension or non-finite values. O(B n)."""
    if hasattr(llr, "detach") and hasattr(llr, "cpu"):  # a torch tensor (without importing torch)
        llr = llr.detach().cpu().numpy()
    arr = check_array(llr, name, dtype=np.float64, min_size=0)
    if arr.ndim == 0 or arr.shape[-1] != n:
        raise InvalidInputError(f"{name} must have shape (..., n) with n = {n}, got {arr.shape}")
    lead = tuple(int(d) for d in arr.shape[:-1])
    return arr.reshape(-1, n), lead


@dataclass(frozen=True, eq=False, repr=False)
class Decoded(ResultRepr):
    """What every decoder of :mod:`frugalml.ecc` returns.

    bits: (..., n) uint8 codeword estimate (the leading shape of the LLRs).
    valid: (...) bool, True where ``bits`` satisfies every parity check (for BP: it converged).
    iterations: (...) int64, BP iterations run per word (0: the hard decision was already a
        codeword); None for other decoders.
    fallback_used: (...) bool, True where a cascade (or an ensemble with a fallback) handed
        the word to its fallback decoder; None for other decoders.

    ``np.asarray(decoded)`` is ``decoded.bits``.
    """

    bits: np.ndarray
    valid: np.ndarray
    iterations: np.ndarray | None = None
    fallback_used: np.ndarray | None = None

    @classmethod
    def from_flat(
        cls,
        bits: np.ndarray,
        valid: np.ndarray,
        lead: tuple[int, ...],
        **extras: np.ndarray | None,
    ) -> Decoded:
        """A result from (B, n) bits and (B,) per-word arrays, reshaped to the leading
        shape ``lead`` (B = prod(lead))."""
        n = bits.shape[-1]
        fields = {
            key: None if value is None else np.asarray(value).reshape(lead)
            for key, value in extras.items()
        }
        return cls(
            bits=np.asarray(bits, dtype=np.uint8).reshape((*lead, n)),
            valid=np.asarray(valid, dtype=bool).reshape(lead),
            **fields,
        )

    @property
    def words(self) -> int:
        """Number of decoded words (the product of the leading dimensions)."""
        return int(self.valid.size)

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        return self.bits if dtype is None else self.bits.astype(dtype)

    def summary(self) -> str:
        words = self.words
        n = self.bits.shape[-1] if self.bits.ndim else 0
        valid = int(np.count_nonzero(self.valid))
        share = f" ({100.0 * valid / words:.1f}%)" if words else ""
        parts = [f"decoded {words} word(s) of length {n}: {valid} valid{share}"]
        if self.iterations is not None and words:
            parts.append(f"{float(np.mean(self.iterations)):.2f} BP iterations on average")
        if self.fallback_used is not None:
            parts.append(f"{int(np.count_nonzero(self.fallback_used))} to the fallback")
        return ", ".join(parts)


@runtime_checkable
class Decoder(Protocol):
    """A decoder of :mod:`frugalml.ecc`: ``decoder(llr, *, sigma=None) -> Decoded`` for its
    ``code`` (see the module docstring for the LLR convention and ``sigma``)."""

    code: BinaryLinearCode

    def __call__(self, llr: Any, *, sigma: float | None = None) -> Decoded: ...


class HardDecision:
    """The channel's hard decisions, no decoding: ``bits = (llr < 0)``.

    ``valid`` tells which words happen to be codewords. Cost O(n (n - k)) per word (the
    syndrome).
    """

    def __init__(self, code: BinaryLinearCode):
        self.code = check_code(code)

    def __call__(self, llr: Any, *, sigma: float | None = None) -> Decoded:
        """Decode LLRs (..., n); ``sigma`` is not used (checked when given)."""
        if sigma is not None:
            llr_scale(sigma)
        arr, lead = check_llr(llr, self.code.n)
        bits = (arr < 0).view(np.uint8)
        return Decoded.from_flat(bits, ~np.any(self.code.syndrome(bits), axis=-1), lead)

    def summary(self) -> str:
        return f"hard decision on {self.code.name} (no decoding)"

    def __repr__(self) -> str:
        return f"HardDecision({self.code.name})"
