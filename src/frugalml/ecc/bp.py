"""Belief-propagation decoding of binary linear codes on the Tanner graph of H.

The baseline iterative decoder of Bennatan, Choukroun & Kisilev, "Deep Learning for Decoding of
Linear Codes - A Syndrome-Based Approach" (ISIT 2018, arXiv 1802.04741) and of Choukroun &
Wolf, "Error Correction Code Transformer" (NeurIPS 2022, arXiv 2203.14966): sum-product (Gallager
1963; Kschischang, Frey & Loeliger 2001) and min-sum (Fossorier, Mihaljevic & Imai 1999, with
the normalised / offset corrections of Chen & Fossorier 2002), flooding schedule.

Layout. The E nonzeros of H are the edges, numbered in row-major order, so the edges of each
check are contiguous and every check-node reduction is one ``ufunc.reduceat`` over the edge axis.
Messages are stored edge-major, (E, B) with the frames contiguous, so reductions, gathers and the
per-variable sums (a product with the sparse (n, E) variable-edge incidence matrix) all stream
over contiguous rows. The batch is processed in blocks of about 2^17 / E frames with
preallocated buffers, so an iteration allocates no large array. There is no Python loop over
frames, edges or nodes, only over iterations (and blocks).

Check-node update (sum-product), in the log domain with phi(x) = -log tanh(x / 2) = phi^{-1}(x):

    |c2v_e| = phi( sum_{e' in N(c)} phi(|v2c_e'|) - phi(|v2c_e|) ),
    sign(c2v_e) = prod_{e' in N(c)} sign(v2c_e') * sign(v2c_e),

i.e. the leave-one-out tanh product as a log-magnitude sum minus the edge's own term, with the
sign parity kept separately; magnitudes are clipped to [1e-12, 40] so phi never sees 0 or
overflows (the tanh form would hit atanh(+-1) there), which caps |c2v| at phi(1e-12) ~ 28.3.
Min-sum replaces the magnitude by the leave-one-out minimum, from the two smallest magnitudes
of each check (ties handled), then ``max(normalization * m - offset, 0)``.

Early stopping: after every iteration the hard decisions of the a-posteriori LLRs are checked
against H; frames whose syndrome is zero are finished and removed from the active batch, so
the cost of an iteration is proportional to the number of frames still decoding.

Cost per iteration: O(B_active * E) arithmetic (four transcendental calls per edge for
sum-product, none for min-sum). Memory: about eight (E, block) float64 buffers.

LLRs follow :mod:`frugalml.ecc.decoder` (positive favours bit 0), as does the call convention.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import scipy.sparse as sp

from .._deprecation import warn_renamed
from .._validate import (
    check_choice,
    check_int,
    check_nonnegative_float,
    check_positive_float,
)
from ..errors import InvalidInputError
from .decoder import Decoded, check_llr, llr_scale
from .linear_code import BinaryLinearCode, check_code, check_frames

__all__ = ["MAX_ITERATIONS", "VARIANTS", "BeliefPropagation"]

#: iteration cap: BP that has not converged after a few hundred iterations does not converge
#: later (it oscillates), and a larger number is a typo that would run for hours
MAX_ITERATIONS = 10_000

VARIANTS = ("sum-product", "min-sum")

_MAG_MIN = 1e-12  # smallest |v2c| fed to phi (phi(1e-12) ~ 28.3)
_MAG_MAX = 40.0  # largest message magnitude (tanh(20) == 1 in float64 anyway)
_MINSUM_MAX = 1e4 * _MAG_MAX  # min-sum message cap (reached by degree-1 checks)
_SENTINEL = 1e300  # added to the minima when looking for the second minimum
_LLR_MAX = 1e6  # channel LLRs are clipped to +-this inside the iterations (no overflow)
_BLOCK_ELEMENTS = 2**17  # frames per block * edges: keeps the (E, B) buffers cache-sized


def _phi(x: np.ndarray) -> np.ndarray:
    """phi(x) = -log(tanh(x / 2)) = log1p(2 / expm1(x)) for x > 0 (in place on ``x``)."""
    np.expm1(x, out=x)
    np.divide(2.0, x, out=x)
    np.log1p(x, out=x)
    return x


@dataclass(frozen=True, eq=False)
class BeliefPropagation:
    """Flooding-schedule belief propagation on the Tanner graph of ``code.H``.

    Parameters
    ----------
    code:
        The :class:`~frugalml.ecc.linear_code.BinaryLinearCode`; its parity-check matrix H
        (n-k, n) defines the graph.
    iterations:
        Maximum number of flooding iterations (>= 1); decoding of a frame stops earlier as soon
        as its hard decisions satisfy every check.
    variant:
        ``"sum-product"`` (exact on cycle-free graphs) or ``"min-sum"``.
    damping:
        In [0, 1): the check-to-variable messages are ``damping * old + (1 - damping) * new``.
    normalization, offset:
        Min-sum corrections, ``max(normalization * m - offset, 0)`` with normalization in
        (0, 1] and offset >= 0. Must stay at 1.0 / 0.0 for sum-product.

    ``bp(llr)`` decodes channel LLRs (..., n) (:mod:`frugalml.ecc.decoder`: positive favours
    bit 0) and returns a :class:`~frugalml.ecc.decoder.Decoded` whose ``valid`` says which words
    converged to a codeword and ``iterations`` how many iterations each took.
    :meth:`posterior_llr` runs all iterations without early stopping and returns the
    a-posteriori LLRs (the exact bitwise MAP LLRs on a cycle-free graph once ``iterations`` is
    at least its diameter). The earlier ``bp(y, sigma)`` (channel outputs, returns bits) and
    :meth:`decode_llr` (returns ``(bits, converged)``) are deprecated.
    """

    code: BinaryLinearCode
    iterations: int = 50
    variant: str = "sum-product"
    damping: float = 0.0
    normalization: float = 1.0
    offset: float = 0.0
    _chk: np.ndarray = field(init=False, repr=False)
    _var: np.ndarray = field(init=False, repr=False)
    _starts: np.ndarray = field(init=False, repr=False)
    _to_var: sp.csr_matrix = field(init=False, repr=False)
    _h_f32: np.ndarray = field(init=False, repr=False)
    _count_t: type = field(init=False, repr=False)

    def __post_init__(self) -> None:
        check_code(self.code)
        check_int(self.iterations, "iterations", low=1, high=MAX_ITERATIONS)
        object.__setattr__(self, "iterations", int(self.iterations))
        check_choice(self.variant, "variant", VARIANTS)
        damping = check_nonnegative_float(self.damping, "damping")
        if damping >= 1.0:
            raise InvalidInputError(f"damping must lie in [0, 1), got {damping}")
        norm = check_positive_float(self.normalization, "normalization")
        if norm > 1.0:
            raise InvalidInputError(f"normalization must lie in (0, 1], got {norm}")
        offset = check_nonnegative_float(self.offset, "offset")
        if self.variant == "sum-product" and (norm != 1.0 or offset != 0.0):
            raise InvalidInputError(
                "normalization and offset apply to min-sum only; leave them at 1.0 and 0.0 "
                "for sum-product"
            )
        object.__setattr__(self, "damping", damping)
        object.__setattr__(self, "normalization", norm)
        object.__setattr__(self, "offset", offset)

        h = np.asarray(self.code.H, dtype=np.uint8) & 1
        h = h[h.any(axis=1)]  # empty checks carry no information
        n = self.code.n
        chk, var = np.nonzero(h)  # row-major: the edges of each check are contiguous
        n_edges = len(chk)
        starts = np.searchsorted(chk, np.arange(h.shape[0]))
        to_var = sp.csr_matrix(
            (np.ones(n_edges), (var, np.arange(n_edges))), shape=(n, n_edges)
        )  # (n, E): per-variable sums of edge messages
        object.__setattr__(self, "_chk", chk.astype(np.intp))
        object.__setattr__(self, "_var", var.astype(np.intp))
        object.__setattr__(self, "_starts", starts.astype(np.intp))
        object.__setattr__(self, "_to_var", to_var)
        max_degree = int(np.diff(np.r_[starts, n_edges]).max()) if n_edges else 0
        object.__setattr__(self, "_count_t", np.uint8 if max_degree < 256 else np.int32)
        object.__setattr__(self, "_h_f32", np.ascontiguousarray(h, dtype=np.float32))

    # ------------------------------------------------------------------ public API
    @property
    def n_edges(self) -> int:
        """Number of edges E of the Tanner graph (nonzeros of H)."""
        return len(self._chk)

    def summary(self) -> str:
        extra = ""
        if self.variant == "min-sum" and (self.normalization != 1.0 or self.offset != 0.0):
            extra = f", normalization {self.normalization:g}, offset {self.offset:g}"
        if self.damping:
            extra += f", damping {self.damping:g}"
        return (
            f"{self.variant} BP on {self.code.name} (n={self.code.n}, k={self.code.k}, "
            f"{self.n_edges} edges), up to {self.iterations} flooding iterations{extra}"
        )

    def __call__(self, llr: Any, *legacy: Any, sigma: float | None = None) -> Decoded:
        """Decode channel LLRs (..., n); ``sigma`` is not used (checked when given).

        Cost O(words x iterations run x E). ``bp(y, sigma)`` with two positional arguments is
        the deprecated form: BPSK/AWGN channel outputs y (n,) or (B, n), returns uint8 bits.
        """
        if legacy:
            if len(legacy) > 1 or sigma is not None:
                raise InvalidInputError("call bp(llr) or bp(llr, sigma=...)")
            warn_renamed("bp(y, sigma)", "bp(llr).bits", "BeliefPropagation")
            return self._decode_observations(llr, legacy[0])  # type: ignore[return-value]
        if sigma is not None:
            llr_scale(sigma)
        arr, lead = check_llr(llr, self.code.n)
        total, converged, used = self._run(arr, early_stop=True)
        bits = (total < 0).view(np.uint8)
        return Decoded.from_flat(bits, converged, lead, iterations=used)

    def _decode_observations(self, y: Any, sigma: float) -> np.ndarray:
        """The deprecated ``bp(y, sigma)``: channel outputs (n,) or (B, n) -> uint8 bits."""
        sigma = check_positive_float(sigma, "sigma")
        arr, single = check_frames(y, "y", self.code.n)
        bits, _, _ = self._run(arr * (2.0 / sigma**2), early_stop=True)
        bits = (bits < 0).view(np.uint8)
        return bits[0] if single else bits

    def decode_llr(self, llr: Any) -> tuple[np.ndarray, np.ndarray]:
        """Deprecated: ``bp(llr)`` returns the same bits and ``valid`` (= converged).

        Returns ``(bits, converged)``: uint8 bits of the input's shape (n,) or (B, n) and a
        bool array (B,) (a scalar bool for one frame) that is True where the bits satisfy every
        check.
        """
        warn_renamed("decode_llr(llr)", "bp(llr)", "BeliefPropagation")
        arr, single = check_frames(llr, "llr", self.code.n)
        total, converged, _ = self._run(arr, early_stop=True)
        bits = (total < 0).view(np.uint8)
        if single:
            return bits[0], bool(converged[0])
        return bits, converged

    def posterior_llr(self, llr: Any) -> np.ndarray:
        """A-posteriori LLRs after exactly ``iterations`` iterations (no early stopping)."""
        arr, single = check_frames(llr, "llr", self.code.n)
        total, _, _ = self._run(arr, early_stop=False)
        return total[0] if single else total

    def iterations_used(self, llr: Any) -> np.ndarray:
        """Decode and return, per frame, the number of iterations run (0 if the channel hard
        decision was already a codeword); frames that never converged report ``iterations``."""
        arr, single = check_frames(llr, "llr", self.code.n)
        _, _, used = self._run(arr, early_stop=True)
        return used[0] if single else used

    # ------------------------------------------------------------------ internals
    def _run(self, llr: np.ndarray, *, early_stop: bool) -> tuple[np.ndarray, np.ndarray, Any]:
        """Decode (B, n) LLRs in blocks of frames; returns (posterior LLRs (B, n), converged
        (B,), iterations used (B,))."""
        batch = llr.shape[0]
        total = llr.copy()
        converged = np.zeros(batch, dtype=bool)
        used = np.full(batch, self.iterations, dtype=np.int64)
        if batch == 0 or self.n_edges == 0:
            converged[:] = True
            used[:] = 0
            return total, converged, used
        block = max(32, _BLOCK_ELEMENTS // self.n_edges)
        work = _Workspace(self.n_edges, min(block, batch))
        for lo in range(0, batch, block):
            sl = slice(lo, lo + block)
            self._run_block(llr[sl], total[sl], converged[sl], used[sl], work, early_stop)
        return total, converged, used

    def _run_block(
        self,
        llr: np.ndarray,
        total_out: np.ndarray,
        converged: np.ndarray,
        used: np.ndarray,
        work: _Workspace,
        early_stop: bool,
    ) -> None:
        """Decode one block of frames, writing into the output views.

        Messages are edge-major, (E, B_active) C-ordered, so every per-check reduction, every
        gather and the sparse edge-to-variable product runs over contiguous rows of frames.
        """
        var = self._var
        active = np.arange(llr.shape[0])
        chan = np.ascontiguousarray(np.clip(llr.T, -_LLR_MAX, _LLR_MAX))  # (n, B)
        total = chan.copy()
        c2v = work.messages(0, len(active))
        c2v.fill(0.0)
        slot = 0
        if early_stop:
            ok = self._satisfied(total)
            if ok.any():
                converged[ok] = True
                used[ok] = 0
                keep = ~ok
                active, chan, total = active[keep], chan[:, keep], total[:, keep]
                c2v = work.messages(1, len(active))  # still all zero
                c2v.fill(0.0)
                slot = 1
        for it in range(1, self.iterations + 1):
            nb = len(active)
            if nb == 0:
                break
            v2c = np.take(total, var, axis=0, out=work.view("v2c", nb))
            v2c -= c2v
            self._check_update(v2c, c2v, work)  # c2v <- new messages (damped)
            total = chan + self._to_var @ c2v  # (n, nb)
            if early_stop:
                ok = self._satisfied(total)
                if ok.any():
                    idx = active[ok]
                    total_out[idx] = total[:, ok].T
                    converged[idx] = True
                    used[idx] = it
                    keep = ~ok
                    active, chan, total = active[keep], chan[:, keep], total[:, keep]
                    slot = 1 - slot
                    moved = work.messages(slot, len(active))
                    np.compress(keep, c2v, axis=1, out=moved)
                    c2v = moved
        if len(active):
            total_out[active] = total.T
            if not early_stop:
                converged[active] = self._satisfied(total)

    def _satisfied(self, total: np.ndarray) -> np.ndarray:
        """(B,) True where the hard decisions of ``total`` (n, B) satisfy every check."""
        synd = self._h_f32 @ (total < 0).astype(np.float32)  # exact integers for n < 2^24
        return ~np.any(np.fmod(synd, 2.0) != 0.0, axis=0)

    def _check_update(self, v2c: np.ndarray, c2v: np.ndarray, work: _Workspace) -> None:
        """Overwrite ``c2v`` (E, B) with the new check-to-variable messages computed from
        ``v2c`` (E, B) (which is destroyed), applying damping."""
        chk, starts = self._chk, self._starts
        nb = v2c.shape[1]
        sign = np.copysign(1.0, v2c, out=work.view("sign", nb))  # +-1 per edge
        mag = np.abs(v2c, out=v2c)
        out = work.view("out", nb)
        if self.variant == "sum-product":
            np.clip(mag, _MAG_MIN, _MAG_MAX, out=mag)
            p = _phi(mag)
            np.take(np.add.reduceat(p, starts, axis=0), chk, axis=0, out=out)
            out -= p  # leave-one-out sum of phi
            np.maximum(out, _MAG_MIN, out=out)
            _phi(out)  # <= phi(_MAG_MIN) ~ 28.3
        else:
            min1 = np.minimum.reduceat(mag, starts, axis=0)  # (m, B)
            np.take(min1, chk, axis=0, out=out)
            is_min = np.equal(mag, out, out=work.view("is_min", nb))
            ties = np.add.reduceat(is_min.view(np.uint8), starts, axis=0, dtype=self._count_t) > 1
            tmp = work.view("tmp", nb)
            np.multiply(is_min, _SENTINEL, out=tmp)
            tmp += mag  # the minima pushed out of the way
            min2 = np.minimum.reduceat(tmp, starts, axis=0)
            # the minimum over the *other* edges for an edge that is a minimum
            second = np.where(ties, min1, min2)
            np.take(second, chk, axis=0, out=tmp)
            tmp -= out
            tmp *= is_min
            out += tmp
            # a degree-1 check (no other edge, second ~ _SENTINEL) forces its bit to 0 with a
            # large finite message
            np.minimum(out, _MINSUM_MAX, out=out)
            if self.normalization != 1.0:
                out *= self.normalization
            if self.offset:
                out -= self.offset
                np.maximum(out, 0.0, out=out)
        # sign: product of the signs of the *other* edges = (product over the check) * own
        np.take(np.multiply.reduceat(sign, starts, axis=0), chk, axis=0, out=mag)
        sign *= mag
        out *= sign
        if self.damping:
            c2v *= self.damping
            out *= 1.0 - self.damping
            c2v += out
        else:
            c2v[...] = out


class _Workspace:
    """Preallocated (E, B) buffers, reused across iterations and blocks (no per-iteration
    allocation of large arrays); ``view(name, nb)`` is a C-contiguous (E, nb) view."""

    def __init__(self, n_edges: int, block: int) -> None:
        self.n_edges = n_edges
        size = n_edges * block
        self._buf = {
            "v2c": np.empty(size),
            "out": np.empty(size),
            "msg0": np.empty(size),
            "msg1": np.empty(size),
            "sign": np.empty(size),
            "tmp": np.empty(size),
            "is_min": np.empty(size, dtype=bool),
        }

    def view(self, name: str, nb: int) -> np.ndarray:
        return self._buf[name][: self.n_edges * nb].reshape(self.n_edges, nb)

    def messages(self, slot: int, nb: int) -> np.ndarray:
        return self.view(f"msg{slot}", nb)
