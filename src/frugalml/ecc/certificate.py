"""Certified maximum-likelihood decisions, and Monte-Carlo bounds on the ML decoder's errors.

Papers: Taipale & Pursley, "An improvement to generalized-minimum-distance decoding" (IEEE
Trans. IT 37(1), 1991) for the sufficient condition of optimality; the lower bound on ML errors
(a decoder that finds a codeword more likely than the one sent proves that ML decoding fails on
that frame) is the standard one of the list- and OSD-decoding literature (e.g. Fossorier & Lin,
"Soft-decision decoding of linear block codes based on ordered statistics", IEEE Trans. IT
41(5), 1995). It is the reference that "the BP-to-ML gap" of Bennatan, Choukroun & Kisilev
(ISIT 2018, arXiv 1802.04741) is measured against in :mod:`frugalml.ecc`.

Certificate. For channel outputs ``y`` (BPSK, bit 0 -> +1), hard decisions ``z = (y < 0)`` and a
codeword ``x``, let ``D`` be the positions where ``x`` differs from ``z``. Every other codeword
differs from ``x`` in at least ``d`` positions (``d`` the minimum distance or a lower bound on
it), hence from ``z`` in at least ``d - |D|`` positions outside ``D``; each costs its reliability
``|y_j|`` in correlation. So ``x`` is the ML codeword when

    sum_{i in D} |y_i|  <=  sum of the (d - |D|) smallest |y_j| over j not in D.

ML error bounds (:func:`ml_error_bounds`). Send the all-zero codeword (enough for a linear code
on this symmetric channel). On a frame where the zero codeword is certified, ML decoding is
right. On the other frames an OSD of the given order looks for a more likely codeword: if it
finds one (correlation above ``sum_i y_i``), ML decoding provably errs there - the *lower
bound*; the frames where OSD's answer is wrong give the *hybrid* count, the errors of the
decoder "certified ML, else OSD", an upper estimate of ML's. With order 2 on BCH(63, 45) the two
agree to a few percent. The certificate skips most frames at high SNR, so the ML reference
reaches 50 frame errors where OSD alone would need hours.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .._results import ResultRepr
from .._validate import RngLike, check_int, check_rng
from ..errors import InvalidInputError
from .channel import ebn0_to_sigma
from .linear_code import BinaryLinearCode
from .osd import OrderedStatistics

__all__ = ["MLBounds", "ml_certificate", "ml_error_bounds"]


def ml_certificate(y: np.ndarray, x: np.ndarray, valid: np.ndarray, d: int) -> np.ndarray:
    """Which codewords ``x`` (B, n) are provably the ML codewords for channel outputs ``y``
    (B, n) (the condition in the module docstring).

    ``valid`` (B,) marks the rows of ``x`` that are codewords (the others are never certified);
    ``d`` must be a lower bound on the code's minimum distance. Cost O(B n log n).
    """
    y = np.asarray(y)
    a = np.abs(y).astype(np.float64)
    diff = np.asarray(x).astype(bool) ^ (y < 0)
    cost = np.where(diff, a, 0.0).sum(axis=1)
    need = np.clip(d - diff.sum(axis=1), 0, y.shape[1])
    rest = np.sort(np.where(diff, np.inf, a), axis=1)
    csum = np.concatenate([np.zeros((y.shape[0], 1)), np.cumsum(rest, axis=1)], axis=1)
    bound = csum[np.arange(y.shape[0]), need]
    return np.asarray(valid, dtype=bool) & (cost <= bound)


@dataclass(frozen=True, repr=False)
class MLBounds(ResultRepr):
    """Monte-Carlo bounds on the ML decoder's errors at one Eb/N0 (see the module docstring).

    ``frames``: frames sent; ``certified``: frames on which the sent codeword is certified ML;
    ``lower_frame_errors`` / ``lower_bit_errors``: frames on which a more likely codeword was
    found (ML errs), and the bits in which that codeword differs from the one sent;
    ``hybrid_frame_errors`` / ``hybrid_bit_errors``: errors of "certified ML, else OSD".
    """

    code: str
    ebn0_db: float
    order: int
    frames: int
    certified: int
    lower_frame_errors: int
    lower_bit_errors: int
    hybrid_frame_errors: int
    hybrid_bit_errors: int
    n: int

    @property
    def ber_lower(self) -> float:
        """BER of the provable ML errors (the more likely codewords found)."""
        return self.lower_bit_errors / (self.frames * self.n) if self.frames else 0.0

    @property
    def fer_lower(self) -> float:
        return self.lower_frame_errors / self.frames if self.frames else 0.0

    @property
    def ber_hybrid(self) -> float:
        return self.hybrid_bit_errors / (self.frames * self.n) if self.frames else 0.0

    @property
    def fer_hybrid(self) -> float:
        return self.hybrid_frame_errors / self.frames if self.frames else 0.0

    def summary(self) -> str:
        return (
            f"ML bounds on {self.code} at {self.ebn0_db:g} dB, {self.frames} frames "
            f"({self.certified} certified): FER >= {self.fer_lower:.3g} "
            f"({self.lower_frame_errors} frame errors), BER ~ {self.ber_lower:.3g}; "
            f"certified-else-OSD-{self.order}: FER {self.fer_hybrid:.3g}, BER {self.ber_hybrid:.3g}"
        )


def ml_error_bounds(
    code: BinaryLinearCode,
    ebn0_db: float,
    *,
    order: int = 2,
    min_distance: int | None = None,
    min_frame_errors: int = 50,
    max_frames: int = 10**7,
    batch: int = 10**5,
    rng: RngLike = 0,
) -> MLBounds:
    """Monte-Carlo bounds on the ML decoder's frame and bit errors (module docstring).

    Simulates the all-zero codeword over BPSK-AWGN in batches of ``batch`` until
    ``min_frame_errors`` provable ML errors or ``max_frames`` frames. ``min_distance`` defaults
    to the code's ``designed_distance`` (a code without one needs it). Cost per frame O(n log n)
    for the certificate plus, on the uncertified frames only, an OSD of ``order``.
    """
    if not isinstance(code, BinaryLinearCode):
        raise InvalidInputError(f"code must be a BinaryLinearCode, got {type(code).__name__}")
    d = min_distance if min_distance is not None else code.designed_distance
    if d is None:
        raise InvalidInputError(
            f"{code.name} has no designed distance; pass min_distance= (a lower bound on the "
            "minimum distance)"
        )
    d = check_int(d, "min_distance", low=1, high=code.n)
    min_err = check_int(min_frame_errors, "min_frame_errors", low=1)
    max_fr = check_int(max_frames, "max_frames", low=1)
    bsz = check_int(batch, "batch", low=1)
    gen = check_rng(rng)
    sigma = ebn0_to_sigma(ebn0_db, code.rate)
    osd = OrderedStatistics(code, order=order)
    zero = np.zeros((1, code.n), dtype=np.uint8)
    frames = certified = lo_f = lo_b = hy_f = hy_b = 0
    while frames < max_fr and lo_f < min_err:
        b = min(bsz, max_fr - frames)
        y = 1.0 + sigma * gen.standard_normal((b, code.n))
        ok = ml_certificate(y, np.broadcast_to(zero, y.shape), np.ones(b, dtype=bool), d)
        certified += int(ok.sum())
        rest = np.flatnonzero(~ok)
        if rest.size:
            yr = y[rest]
            x = osd(yr * (2.0 / sigma**2)).bits
            wrong = x.any(axis=1)
            gain = yr.sum(axis=1) - np.einsum("bn,bn->b", yr, 1.0 - 2.0 * x)
            better = wrong & (gain < -1e-9)  # corr(x) > corr(0): ML cannot answer 0
            lo_f += int(better.sum())
            lo_b += int(x[better].sum())
            hy_f += int(wrong.sum())
            hy_b += int(x[wrong].sum())
        frames += b
    return MLBounds(
        code.name, float(ebn0_db), order, frames, certified, lo_f, lo_b, hy_f, hy_b, code.n
    )
