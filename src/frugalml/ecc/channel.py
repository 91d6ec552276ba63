"""BPSK over the AWGN channel and Monte-Carlo bit/frame error rate simulation.

The channel of Bennatan et al., "Deep Learning for Decoding of Linear Codes - A Syndrome-Based
Approach" (ISIT 2018, arXiv 1802.04741) and Choukroun & Wolf, "Error Correction Code
Transformer" (NeurIPS 2022, arXiv 2203.14966): bit c is sent as x = 1 - 2c (0 -> +1,
1 -> -1) and received as y = x + z, z ~ N(0, sigma^2) with

    sigma = sqrt(1 / (2 R 10^(Eb/N0 / 10)))

for code rate R (unit symbol energy, so Es = R Eb). The hard decision is bit = (y < 0) and
the log-likelihood ratio is llr = 2 y / sigma^2 (positive favours bit 0; the convention of
:mod:`frugalml.ecc.decoder`). :func:`simulate` hands every decoder these LLRs and sigma.
"""

from __future__ import annotations

import inspect
import math
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from .._deprecation import REMOVED_IN
from .._resources import check_memory
from .._results import ResultRepr
from .._validate import RngLike, check_array, check_int, check_rng
from ..errors import FrugalDeprecationWarning, InvalidInputError
from ..progress import Progress
from .decoder import Decoded, Decoder, llr_scale
from .gf2 import as_bits
from .linear_code import BinaryLinearCode

__all__ = [
    "EBN0_RANGE_DB",
    "BERResult",
    "bpsk_awgn",
    "bpsk_llr",
    "ebn0_to_sigma",
    "simulate",
]

EBN0_RANGE_DB = (-10.0, 30.0)


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


def _same_code(a: Any, b: BinaryLinearCode) -> bool:
    """Whether ``a`` has the parity checks of ``b`` (the same object, or equal n, k and H)."""
    if a is b:
        return True
    return (
        getattr(a, "n", None) == b.n
        and getattr(a, "k", None) == b.k
        and np.array_equal(np.asarray(getattr(a, "H", ())), b.H)
    )


def _takes_one_argument(func: Callable[..., Any]) -> bool:
    """Whether ``func`` accepts exactly one positional argument (the 0.1 ``progress(result)``
    callbacks) rather than the ``progress(message, fraction)`` of :mod:`frugalml.progress`."""
    try:
        params = inspect.signature(func).parameters.values()
    except (TypeError, ValueError):  # no signature (some builtins): assume the current type
        return False
    positional = [
        p
        for p in params
        if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) and p.default is p.empty
    ]
    varargs = any(p.kind is p.VAR_POSITIONAL for p in params)
    return len(positional) == 1 and not varargs


def _deprecated(message: str) -> None:
    warnings.warn(
        f"simulate: {message} is deprecated and will be removed in frugalml {REMOVED_IN}",
        FrugalDeprecationWarning,
        stacklevel=3,
    )


def simulate(
    code: BinaryLinearCode,
    decoder: Decoder,
    ebn0_db: float,
    *,
    min_frame_errors: int = 100,
    max_frames: int = 10**6,
    batch: int = 10**4,
    zero_codeword: bool = True,
    rng: RngLike = 0,
    progress: Progress | None = None,
    on_batch: Callable[[BERResult], Any] | None = None,
) -> BERResult:
    """Estimate BER and FER of ``decoder`` on ``code`` over BPSK-AWGN at ``ebn0_db``.

    ``decoder`` is any :class:`~frugalml.ecc.decoder.Decoder` of this code: it is called as
    ``decoder(llr, sigma=sigma)`` on the channel LLRs ``llr = y * 2 / sigma^2`` of a batch
    (B, n) and its :class:`~frugalml.ecc.decoder.Decoded` bits are compared with the codewords
    sent. Frames are simulated in batches of ``batch`` (the last one cut to ``max_frames``)
    until at least ``min_frame_errors`` frame errors have been seen or ``max_frames`` frames
    sent (checked after every batch, so the count may overshoot ``min_frame_errors`` by up to
    one batch). With ``zero_codeword`` the all-zero codeword is sent (enough for linear codes
    and symmetric decoders), else codewords of uniformly random messages.

    ``progress(message, fraction)`` is called after each batch, ``fraction`` being the larger
    of frames / max_frames and frame errors / min_frame_errors (capped at 1); ``on_batch``, if
    given, receives the running :class:`BERResult` after each batch.
    Cost: frames x (decoder cost + O(n)) (+ O(k n) per frame to encode random messages).

    Deprecated until frugalml 0.3: a plain callable ``decoder(y) -> bits`` on the channel
    outputs y (B, n), and a ``progress(result)`` callback taking one argument (now
    ``on_batch``).
    """
    if not isinstance(code, BinaryLinearCode):
        raise InvalidInputError(f"code must be a BinaryLinearCode, got {type(code).__name__}")
    legacy = not isinstance(decoder, Decoder)
    if legacy and not callable(decoder):
        raise InvalidInputError(
            "decoder must be a frugalml.ecc Decoder: decoder(llr, sigma=...) -> Decoded"
        )
    if not legacy and not _same_code(decoder.code, code):
        other = decoder.code
        raise InvalidInputError(
            f"the decoder is for {getattr(other, 'name', '?')} (n = {getattr(other, 'n', '?')}, "
            f"k = {getattr(other, 'k', '?')}), not for {code.name} (n = {code.n}, k = {code.k})"
        )
    if progress is not None and _takes_one_argument(progress):
        if on_batch is not None:
            raise InvalidInputError("pass the per-batch result callback as on_batch= only")
        _deprecated("progress(result) with one argument (use on_batch=)")
        progress, on_batch = None, progress
    ebn0 = _check_ebn0(ebn0_db)
    min_err = check_int(min_frame_errors, "min_frame_errors", low=1)
    max_fr = check_int(max_frames, "max_frames", low=1)
    bsz = check_int(batch, "batch", low=1)
    gen = check_rng(rng)
    n = code.n
    frames_per_batch = min(bsz, max_fr)
    check_memory(  # y, its noise and the LLRs (float64), codewords, decisions, comparison
        48 * frames_per_batch * n,
        f"a batch of {frames_per_batch} frames of length n = {n}",
        fix="lower the batch size (--batch)",
    )
    if legacy:
        _deprecated("a decoder callable y -> bits (pass a Decoder: decoder(llr, sigma=...))")
    sigma = ebn0_to_sigma(ebn0, code.rate)
    scale = llr_scale(sigma)
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
        out = decoder(y) if legacy else decoder(y * scale, sigma=sigma)
        if isinstance(out, Decoded):
            out = out.bits
        elif not legacy:
            raise InvalidInputError(
                f"decoder returned {type(out).__name__}, not a frugalml.ecc Decoded"
            )
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
        if on_batch is not None:
            on_batch(_result(ebn0, n, bit_err, frame_err, frames, t0))
        if progress is not None:
            done = min(1.0, max(frames / max_fr, frame_err / min_err))
            progress(f"Eb/N0 {ebn0:g} dB: {frame_err} frame errors / {frames} frames", done)
    return _result(ebn0, n, bit_err, frame_err, frames, t0)
