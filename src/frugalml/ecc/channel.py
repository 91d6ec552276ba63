"""BPSK over the AWGN channel and Monte-Carlo bit/frame error rate simulation.

The channel of Bennatan et al., "Deep Learning for Decoding of Linear Codes - A Syndrome-Based
Approach" (ISIT 2018, arXiv 1802.04741) and Choukroun & Wolf, "Error Correction Code
Transformer" (NeurIPS 2022, arXiv 2203.14966): bit c is sent as x = 1 - 2c (0 -> +1,
1 -> -1) and received as y = x + z, z ~ N(0, sigma^2) with

    sigma = sqrt(1 / (2 R 10^(Eb/N0 / 10)))

for code rate R (unit symbol energy, so Es = R Eb). The hard decision is bit = (y < 0) and
the log-likelihood ratio is llr = 2 y / sigma^2 (positive favours bit 0).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from .._resources import check_memory
from .._results import ResultRepr
from .._validate import RngLike, check_array, check_int, check_rng
from ..errors import InvalidInputError
from .codes import LinearCode
from .gf2 import as_bits

__all__ = [
    "EBN0_RANGE_DB",
    "BERResult",
    "bpsk_awgn",
    "bpsk_llr",
    "ebn0_to_sigma",
    "simulate",
]

EBN0_RANGE_DB = (-10.0, 30.0)

Decoder = Callable[[np.ndarray], Any]


def _check_ebn0(ebn0_db: Any) -> float:
    if isinstance(ebn0_db, bool) or not isinstance(ebn0_db, (int, float, np.integer, np.floating)):
        raise InvalidInputError(f"ebn0_db must be a real number, got {ebn0_db!r}")
    value = float(ebn0_db)
    low, high = EBN0_RANGE_DB
    if not (math.isfinite(value) and low <= value <= high):
        raise InvalidInputError(
            f"ebn0_db must be finite and in [{low:g}, {high:g}] dB, got {value}"
        )
    return value


def _check_rate(rate: Any) -> float:
    if isinstance(rate, bool) or not isinstance(rate, (int, float, np.integer, np.floating)):
        raise InvalidInputError(f"rate must be a real number, got {rate!r}")
    value = float(rate)
    if not (math.isfinite(value) and 0.0 < value <= 1.0):
        raise InvalidInputError(f"rate must lie in (0, 1], got {value}")
    return value


def ebn0_to_sigma(ebn0_db: float, rate: float) -> float:
    """Noise standard deviation sigma = sqrt(1 / (2 rate 10^(ebn0_db / 10))).

    ``ebn0_db`` must be finite in [-10, 30] dB and ``rate`` in (0, 1], else
    ``InvalidInputError``.
    """
    ebn0 = _check_ebn0(ebn0_db)
    r = _check_rate(rate)
    return math.sqrt(1.0 / (2.0 * r * 10.0 ** (ebn0 / 10.0)))


def bpsk_awgn(codewords: Any, ebn0_db: float, rate: float, rng: RngLike = None) -> np.ndarray:
    """Channel output y = (1 - 2c) + sigma z, z ~ N(0, 1): (..., n) bits -> (..., n) float64."""
    c = as_bits(codewords, "codewords")
    sigma = ebn0_to_sigma(ebn0_db, rate)
    gen = check_rng(rng)
    y = 1.0 - 2.0 * c.astype(np.float64)
    y += sigma * gen.standard_normal(c.shape)
    return y


def bpsk_llr(y: Any, sigma: float) -> np.ndarray:
    """Channel log-likelihood ratios log P(bit 0 | y) / P(bit 1 | y) = 2 y / sigma^2."""
    arr = check_array(y, "y", min_size=0)
    s = float(sigma)
    if not (math.isfinite(s) and s > 0):
        raise InvalidInputError(f"sigma must be finite and > 0, got {sigma!r}")
    return 2.0 * arr / (s * s)


@dataclass(frozen=True, repr=False)
class BERResult(ResultRepr):
    """Monte-Carlo error rates at one Eb/N0.

    ber: bit error rate over all n codeword bits of every frame; fer: frame (word) error
    rate; bit_errors, frame_errors, frames: the raw counts; seconds: wall time including
    channel simulation and decoding.
    """

    ebn0_db: float
    ber: float
    fer: float
    bit_errors: int
    frame_errors: int
    frames: int
    seconds: float

    def summary(self) -> str:
        return (
            f"Eb/N0 {self.ebn0_db:g} dB: BER {self.ber:.3e}, FER {self.fer:.3e} "
            f"({self.frame_errors} frame errors / {self.frames} frames, "
            f"{self.bit_errors} bit errors) in {self.seconds:.2f}s"
        )

    def to_dict(self) -> dict[str, float | int]:
        return {
            "ebn0_db": self.ebn0_db,
            "ber": self.ber,
            "fer": self.fer,
            "bit_errors": self.bit_errors,
            "frame_errors": self.frame_errors,
            "frames": self.frames,
            "seconds": self.seconds,
        }


def _result(ebn0: float, n: int, bit_err: int, frame_err: int, frames: int, t0: float):
    return BERResult(
        ebn0_db=ebn0,
        ber=bit_err / (frames * n) if frames else 0.0,
        fer=frame_err / frames if frames else 0.0,
        bit_errors=bit_err,
        frame_errors=frame_err,
        frames=frames,
        seconds=time.perf_counter() - t0,
    )


def simulate(
    code: LinearCode,
    decoder: Decoder,
    ebn0_db: float,
    *,
    min_frame_errors: int = 100,
    max_frames: int = 10**6,
    batch: int = 10**4,
    zero_codeword: bool = True,
    rng: RngLike = 0,
    progress: Callable[[BERResult], Any] | None = None,
) -> BERResult:
    """Estimate BER and FER of ``decoder`` on ``code`` over BPSK-AWGN at ``ebn0_db``.

    ``decoder`` maps received words y (B, n) float64 to decided codeword bits (B, n) 0/1.
    Frames are simulated in batches of ``batch`` (the last one cut to ``max_frames``) until at
    least ``min_frame_errors`` frame errors have been seen or ``max_frames`` frames sent
    (checked after every batch, so the count may overshoot ``min_frame_errors`` by up to one
    batch). With ``zero_codeword`` the all-zero codeword is sent (enough for linear codes and
    symmetric decoders), else codewords of uniformly random messages. ``progress``, if
    given, is called after each batch with the running :class:`BERResult`.
    Cost: frames x (decoder cost + O(n)) (+ O(k n) per frame to encode random messages).
    """
    if not isinstance(code, LinearCode):
        raise InvalidInputError(f"code must be a LinearCode, got {type(code).__name__}")
    if not callable(decoder):
        raise InvalidInputError("decoder must be callable: y (B, n) float -> bits (B, n)")
    ebn0 = _check_ebn0(ebn0_db)
    min_err = check_int(min_frame_errors, "min_frame_errors", low=1)
    max_fr = check_int(max_frames, "max_frames", low=1)
    bsz = check_int(batch, "batch", low=1)
    gen = check_rng(rng)
    n = code.n
    frames_per_batch = min(bsz, max_fr)
    check_memory(  # y and its noise (float64), codewords, decisions and their comparison
        40 * frames_per_batch * n,
        f"a batch of {frames_per_batch} frames of length n = {n}",
        fix="lower the batch size (--batch)",
    )
    sigma = ebn0_to_sigma(ebn0, code.rate)
    bit_err = frame_err = frames = 0
    t0 = time.perf_counter()
    while frames < max_fr and frame_err < min_err:
        b = min(bsz, max_fr - frames)
        if zero_codeword:
            cw = np.zeros((b, n), dtype=np.uint8)
            y = 1.0 + sigma * gen.standard_normal((b, n))
        else:
            cw = code.encode(gen.integers(0, 2, size=(b, code.k), dtype=np.uint8))
            y = (1.0 - 2.0 * cw) + sigma * gen.standard_normal((b, n))
        out = decoder(y)
        try:
            bits = as_bits(out, "decoder output")
        except InvalidInputError as exc:
            raise InvalidInputError(f"decoder returned invalid bits: {exc}") from exc
        if bits.shape != (b, n):
            raise InvalidInputError(
                f"decoder must return bits of shape (B, n) = ({b}, {n}), got {bits.shape}"
            )
        wrong = bits != cw
        bit_err += int(np.count_nonzero(wrong))
        frame_err += int(np.count_nonzero(wrong.any(axis=1)))
        frames += b
        if progress is not None:
            progress(_result(ebn0, n, bit_err, frame_err, frames, t0))
    return _result(ebn0, n, bit_err, frame_err, frames, t0)
