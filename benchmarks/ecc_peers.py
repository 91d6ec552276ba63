"""The independent ``ldpc`` package as a baseline of the ECC benchmark, in frugalml's decoder
call convention.

Not a report area (no ``REPORT_AREA``): :mod:`bench_ecc` imports these adapters and runs them on
the same frames as frugalml's decoders. The peer is ``ldpc`` by J. Roffe (pip ``ldpc``; version in
``benchmarks/requirements-ecc-peers.txt``), C++ belief propagation and BP+OSD behind a Cython
wrapper: J. Roffe, D. R. White, S. Burton, E. Campbell, "Decoding across the quantum low-density
parity-check code landscape", Phys. Rev. Research 2, 043423 (2020), arXiv:2005.07016 (BP+OSD and
the combination-sweep OSD); BP+OSD after P. Panteleev and G. Kalachev, "Degenerate quantum LDPC
codes with good finite length performance", Quantum 5, 585 (2021), arXiv:1904.02703; OSD after
M. Fossorier and S. Lin, IEEE Trans. IT 41(5), 1995.

Call convention (:mod:`frugalml.ecc.decoder`): ``dec(llr, *, sigma=None) -> Decoded``, channel
LLRs (..., n) with ``llr = 2 y / sigma^2`` (positive favours bit 0), any leading batch shape;
``sigma`` is not used (checked when given), as for frugalml's BP and OSD.

How soft AWGN information goes into ``ldpc``. Its decoders work in the syndrome ("error")
domain of quantum error correction: given per-bit error probabilities ``p_i`` and a syndrome
``s``, they estimate an error ``e`` with ``H e^T = s``. Per frame, with the hard decisions
``h = (llr < 0)``,

    p_i = 1 / (1 + exp(|llr_i|)),   s = H h^T (mod 2),   codeword = h xor e,

so ldpc's initial error-domain LLRs ``log((1 - p_i) / p_i)`` are exactly ``|llr_i|``. BP on
``(|llr|, s)`` is the same message passing as BP on ``llr`` (every message is multiplied by
``1 - 2 h_i`` and the sign of check j by ``(-1)^{s_j}``), with the same flooding schedule and the
same stopping rule (a frame whose hard decisions already form a codeword takes no iteration;
otherwise decoding stops after the first iteration whose hard decisions satisfy every check, at
most ``max_iter``). ``|llr|`` is clipped at 700 so that ``p_i`` stays a normal double (the hard
decisions do not change).

Measured agreement with :class:`frugalml.ecc.bp.BeliefPropagation` (``iterations=50``, same
variant) on identical frames (3000 per point, 3-6 dB): sum-product gives the same bits on
>= 99.7% of BCH(63,45) frames and >= 99.97% of LDPC(96,48) frames; min-sum on all LDPC(96,48)
frames, and on BCH(63,45) on 57% / 83% / 99.2% of frames at 3 / 4 / 6 dB. Every differing frame
is one that at least one of the two did not decode by iteration ~25, never two different
converged codewords. Both are expected: (a) min-sum on the dense, short-cycled BCH graph is
chaotic on frames that do not converge (messages are signed sums of channel LLRs whose rounding
errors double about every iteration): frugalml's own min-sum output changes on the same share of
frames when the LLRs are multiplied by ``1 + 1e-14 z``; (b) ldpc's sum-product uses the tanh
product rule without clipping, whose magnitudes lose precision above ~20 (``1 - tanh(x/2)``
rounds) and become infinite at ~38, where frugalml's phi-domain rule clips at 28.3; frugalml's
sum-product output changes on a similar number of frames under a ``1e-8`` relative
perturbation. No ldpc setting changes these (schedule, iterations, method and scaling already
match; it has no clipping option).

BP+OSD (:class:`LdpcBPOSD`) differs from frugalml's :class:`~frugalml.ecc.osd.OrderedStatistics`
by design: OSD runs only on frames where BP did not converge; the reliability order is that of
the failed BP's a-posteriori LLRs (not of the channel LLRs); the candidates are, for ``"osd_cs"``
of order w, every weight-1 pattern on the k most reliable independent positions plus the
weight-2 patterns among the w least reliable of them (k + C(w, 2); order k gives every pattern
of weight <= 2, the candidate set of frugalml's OSD-2), for ``"osd_e"`` of order w the 2^w - 1
patterns on those w positions, for ``"osd_0"`` none; and the score of an error pattern is
``sum_{e_i = 1} log(1 / p_i) = sum_{e_i = 1} (|llr_i| + log(1 + exp(-|llr_i|)))``, the
correlation discrepancy plus up to log 2 per flipped bit (exact in ldpc's small-p regime, a
slight bias to fewer flips here). Every output is a codeword. On identical frames (2000-3000 per
point) frugalml's OSD-2 output has the larger correlation ``sum_i llr_i (1 - 2 x_i)`` in every
disagreement on BCH(63,45) at 3-4 dB (22 of 2000 frames at 4 dB with ``osd_cs`` order 2); on
LDPC(96,48) at 3 dB ldpc's is larger on 4 of 3000 frames (BP converged to it or its ordering
found it), each a codeword 3 or more flips from the hard decisions on OSD-2's most reliable
basis, i.e. outside OSD-2's candidates.

Threads: ldpc's C++ decoders are single-threaded (its ``omp_thread_count`` is "not yet
implemented" in 2.4.1) and decode one frame per call, so the adapters loop over frames in
Python: one ldpc decoder object per adapter (built once, for one code), the syndromes, channel
probabilities and outputs of the whole batch computed with NumPy around the loop, and frames
whose hard decisions are already codewords never handed to ldpc. Each frame handed over costs
~10-15 us beyond its iterations on this machine, ~8 us of it in ldpc's own wrapper (element-wise
copies of the syndrome and the output). Compare their frames/s with frugalml's decoders run on
one thread.

Usage: ``LdpcBP(code)(llr)``, ``LdpcBPOSD(code, osd_order=2)(llr)``; :func:`available` says
whether ldpc is installed; without it the constructors raise :class:`PeerUnavailableError` (a
:class:`frugalml.errors.BackendUnavailableError`) naming ``pip install -r
benchmarks/requirements-ecc-peers.txt``.
"""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import Any

import numpy as np
import scipy.sparse as sp
import scipy.special

from frugalml._validate import check_choice, check_int, check_positive_float
from frugalml.ecc.bp import MAX_ITERATIONS
from frugalml.ecc.decoder import Decoded, check_llr, llr_scale
from frugalml.ecc.linear_code import BinaryLinearCode, check_code
from frugalml.errors import BackendUnavailableError, InvalidInputError

__all__ = [
    "BP_METHODS",
    "OSD_METHODS",
    "REQUIREMENTS",
    "LdpcBP",
    "LdpcBPOSD",
    "PeerUnavailableError",
    "available",
    "version",
]

#: the pip requirements file that installs the peer (relative to the repository root)
REQUIREMENTS = "benchmarks/requirements-ecc-peers.txt"
#: ldpc's BP variants: sum-product (tanh rule) and min-sum (with ``ms_scaling_factor``)
BP_METHODS = ("product_sum", "minimum_sum")
#: ldpc's OSD variants: combination sweep, exhaustive over the ``osd_order`` least reliable
#: basis positions, order 0
OSD_METHODS = ("osd_cs", "osd_e", "osd_0")
#: ``|llr|`` is clipped here before ``p = 1 / (1 + exp(|llr|))`` (p stays a normal double)
_LLR_MAX = 700.0
#: ldpc warns above this ``osd_e`` order (2^order candidates per frame)
_OSD_E_MAX_ORDER = 15


class PeerUnavailableError(BackendUnavailableError):
    """The ``ldpc`` package is not installed. It is a benchmark peer, not a frugalml extra, so
    the message names its requirements file instead of an extra."""

    def __init__(self, what: str, detail: str | None = None):
        super().__init__(what, "ldpc", "", detail=detail)  # what, package, extra (none)
        self.requirements = REQUIREMENTS
        msg = (
            f"{what} needs the 'ldpc' package (the independent BP / BP+OSD peer of the ECC "
            f"benchmark), which is not installed; install it with: pip install -r {REQUIREMENTS}"
        )
        if detail:
            msg += f" ({detail})"
        self.args = (msg,)
        self.msg = msg  # what str() of an ImportError shows


def _ldpc(what: str) -> ModuleType:
    """``import ldpc`` or raise :class:`PeerUnavailableError` for ``what``."""
    try:
        return importlib.import_module("ldpc")
    except ImportError as exc:
        raise PeerUnavailableError(what, detail=str(exc)) from exc


def available() -> bool:
    """Whether the ``ldpc`` package can be imported."""
    try:
        importlib.import_module("ldpc")
    except ImportError:
        return False
    return True


def version() -> str:
    """The installed ``ldpc`` version; raises :class:`PeerUnavailableError` without it."""
    return str(_ldpc("ecc_peers.version()").__version__)


class _LdpcAdapter:
    """Shared per-frame loop: the batch's hard decisions, syndromes and channel probabilities
    with NumPy, then one ldpc ``decode`` per frame whose syndrome is not zero."""

    code: BinaryLinearCode
    max_iter: int
    _decoder: Any

    def _setup(
        self, code: BinaryLinearCode, max_iter: int, method: str, ms_scaling_factor: float
    ) -> np.ndarray:
        """Check and keep the BP settings both adapters share; returns H (uint8)."""
        self.code = check_code(code)
        self.max_iter = check_int(max_iter, "max_iter", low=1, high=MAX_ITERATIONS)
        self.method = check_choice(method, "method", BP_METHODS)
        self.ms_scaling_factor = _check_scaling(ms_scaling_factor, self.method)
        return np.asarray(code.H, dtype=np.uint8) & 1

    def _run(self, llr: Any, sigma: float | None) -> tuple[np.ndarray, ...]:
        """(bits (B, n), converged (B,), iterations (B,), lead shape) of ``llr`` (..., n)."""
        if sigma is not None:
            llr_scale(sigma)
        arr, lead = check_llr(llr, self.code.n)
        batch, n = arr.shape
        hard = (arr < 0).view(np.uint8)
        synd = np.ascontiguousarray(self.code.syndrome(hard), dtype=np.uint8)
        err = np.zeros((batch, n), dtype=np.uint8)
        converged = np.ones(batch, dtype=bool)
        used = np.zeros(batch, dtype=np.int64)
        todo = np.flatnonzero(synd.any(axis=1))
        if len(todo):
            mag = np.minimum(np.abs(arr[todo]), _LLR_MAX)
            # Python lists: ldpc copies the probabilities element by element (a list is ~15x
            # faster to index than an ndarray); results gathered in lists, stored once
            probs = scipy.special.expit(-mag).tolist()
            rows = list(synd[todo])
            dec = self._decoder
            update, decode = dec.update_channel_probs, dec.decode
            outs, conv, iters = [], [], []
            for p, s in zip(probs, rows, strict=True):
                update(p)
                outs.append(decode(s))
                conv.append(dec.converge)
                iters.append(dec.iter)
            err[todo] = np.stack(outs)
            converged[todo] = conv
            used[todo] = iters
        return hard ^ err, converged, used, lead


class LdpcBP(_LdpcAdapter):
    """ldpc's flooding belief propagation (``ldpc.BpDecoder``, parallel schedule) as a frugalml
    decoder: ``LdpcBP(code)(llr) -> Decoded`` with ``bits`` (..., n) uint8, ``valid`` (...)
    (BP converged to a codeword) and ``iterations`` (...) (0 where the hard decisions were
    already a codeword).

    Parameters
    ----------
    code:
        The :class:`~frugalml.ecc.linear_code.BinaryLinearCode`; ldpc gets ``code.H`` as a
        sparse matrix.
    max_iter:
        Maximum number of iterations (>= 1); a frame stops at the first iteration whose hard
        decisions satisfy every check (as ``BeliefPropagation(code, iterations=max_iter)``).
    method:
        ``"product_sum"`` (sum-product, = frugalml's ``variant="sum-product"``) or
        ``"minimum_sum"`` (min-sum, = ``variant="min-sum"``).
    ms_scaling_factor:
        Min-sum messages are multiplied by it, in (0, 1] (= frugalml's ``normalization``);
        must stay 1.0 for sum-product.

    Single-threaded C++; cost per frame O(iterations x E) plus a Python call (E = nonzeros of
    H). See the module docstring for the LLR mapping and the measured agreement with
    :class:`frugalml.ecc.bp.BeliefPropagation`.
    """

    def __init__(
        self,
        code: BinaryLinearCode,
        *,
        max_iter: int = 50,
        method: str = "product_sum",
        ms_scaling_factor: float = 1.0,
    ) -> None:
        h = self._setup(code, max_iter, method, ms_scaling_factor)
        ldpc = _ldpc("LdpcBP")
        self._decoder = ldpc.BpDecoder(
            sp.csr_matrix(h),
            error_rate=0.1,  # replaced per frame by update_channel_probs
            max_iter=self.max_iter,
            bp_method=self.method,
            ms_scaling_factor=self.ms_scaling_factor,
            schedule="parallel",
            input_vector_type="syndrome",
        )

    def __call__(self, llr: Any, *, sigma: float | None = None) -> Decoded:
        """Decode channel LLRs (..., n); ``sigma`` is not used (checked when given)."""
        bits, converged, used, lead = self._run(llr, sigma)
        return Decoded.from_flat(bits, converged, lead, iterations=used)

    def summary(self) -> str:
        scale = ""
        if self.method == "minimum_sum" and self.ms_scaling_factor != 1.0:
            scale = f", scaling {self.ms_scaling_factor:g}"
        return (
            f"ldpc {self.method} BP on {self.code.name} (n={self.code.n}, k={self.code.k}), up "
            f"to {self.max_iter} flooding iterations{scale}, single-threaded C++"
        )

    def __repr__(self) -> str:
        return f"LdpcBP({self.code.name}, max_iter={self.max_iter}, method={self.method!r})"


class LdpcBPOSD(_LdpcAdapter):
    """ldpc's BP+OSD (``ldpc.BpOsdDecoder``) as a frugalml decoder: BP first, OSD on the
    frames where BP did not converge, ordered by BP's a-posteriori LLRs.

    ``LdpcBPOSD(code)(llr) -> Decoded`` with ``bits`` (..., n) uint8 codewords, ``valid``
    (...) (checked against H; always True), ``iterations`` (...) (BP iterations) and
    ``fallback_used`` (...) (True where OSD ran).

    Parameters
    ----------
    code, max_iter, method, ms_scaling_factor:
        As :class:`LdpcBP`.
    osd_order:
        ``"osd_cs"``: the weight-2 patterns are taken among the ``osd_order`` least reliable
        basis positions (every weight-1 pattern is always tried; ``osd_order = code.k`` gives
        all patterns of weight <= 2, the candidate set of ``OrderedStatistics(code, order=2)``);
        ``"osd_e"``: all 2^osd_order - 1 patterns on them (at most 15); ``"osd_0"``: 0.
    osd_method:
        ``"osd_cs"`` (combination sweep), ``"osd_e"`` (exhaustive) or ``"osd_0"``.

    Single-threaded C++. Cost per frame: BP as :class:`LdpcBP`, plus, where BP failed, a
    Gaussian elimination of H and one back-substitution per candidate (O(candidates x n (n-k))).
    See the module docstring for how it differs from frugalml's OSD.
    """

    def __init__(
        self,
        code: BinaryLinearCode,
        *,
        max_iter: int = 50,
        osd_order: int = 2,
        osd_method: str = "osd_cs",
        method: str = "product_sum",
        ms_scaling_factor: float = 1.0,
    ) -> None:
        h = self._setup(code, max_iter, method, ms_scaling_factor)
        self.osd_method = check_choice(osd_method, "osd_method", OSD_METHODS)
        high = {"osd_cs": code.k, "osd_e": _OSD_E_MAX_ORDER, "osd_0": 0}[self.osd_method]
        self.osd_order = check_int(osd_order, "osd_order", low=0, high=high)
        ldpc = _ldpc("LdpcBPOSD")
        self._decoder = ldpc.BpOsdDecoder(
            sp.csr_matrix(h),
            error_rate=0.1,  # replaced per frame; the OSD score reads the same probabilities
            max_iter=self.max_iter,
            bp_method=self.method,
            ms_scaling_factor=self.ms_scaling_factor,
            schedule="parallel",
            osd_method=self.osd_method,
            osd_order=self.osd_order,
        )

    @property
    def patterns(self) -> int:
        """Candidate error patterns scored per OSD run, the order-0 one included."""
        k, w = self.code.k, self.osd_order
        if self.osd_method == "osd_cs" and w > 0:
            return 1 + k + w * (w - 1) // 2
        return 2**w if self.osd_method == "osd_e" else 1

    def __call__(self, llr: Any, *, sigma: float | None = None) -> Decoded:
        """Decode channel LLRs (..., n); ``sigma`` is not used (checked when given)."""
        bits, converged, used, lead = self._run(llr, sigma)
        valid = ~np.any(self.code.syndrome(bits), axis=-1)
        return Decoded.from_flat(bits, valid, lead, iterations=used, fallback_used=~converged)

    def summary(self) -> str:
        return (
            f"ldpc {self.method} BP ({self.max_iter} iterations) + {self.osd_method} order "
            f"{self.osd_order} on {self.code.name} (n={self.code.n}, k={self.code.k}): "
            f"{self.patterns} candidates per OSD run, single-threaded C++"
        )

    def __repr__(self) -> str:
        return (
            f"LdpcBPOSD({self.code.name}, max_iter={self.max_iter}, osd_order={self.osd_order}, "
            f"osd_method={self.osd_method!r}, method={self.method!r})"
        )


def _check_scaling(value: Any, method: str) -> float:
    scale = check_positive_float(value, "ms_scaling_factor")
    if scale > 1.0:
        raise InvalidInputError(f"ms_scaling_factor must lie in (0, 1], got {scale}")
    if method == "product_sum" and scale != 1.0:
        raise InvalidInputError(
            "ms_scaling_factor applies to method='minimum_sum' only; leave it at 1.0 for "
            "'product_sum'"
        )
    return scale
