"""Ordered-statistics decoding (OSD) of binary linear codes.

Fossorier & Lin, "Soft-decision decoding of linear block codes based on ordered statistics"
(IEEE Trans. IT 41(5), 1995): the near-ML reference decoder used alongside the neural decoders
of Bennatan, Choukroun & Kisilev, "Deep Learning for Decoding of Linear Codes - A Syndrome-Based
Approach" (ISIT 2018, arXiv 1802.04741) and Choukroun & Wolf, "Error Correction Code
Transformer" (NeurIPS 2022, arXiv 2203.14966).

Per frame: sort the n positions by reliability |llr| (most reliable first), bring the permuted
generator matrix to reduced row echelon form over GF(2) scanning columns in that order, a
column that depends on the earlier ones being skipped; the k pivot columns are the most
reliable basis (MRB). Re-encoding the hard decisions on the MRB gives the order-0 codeword c0;
order-i OSD also tries c0 + sum of up to i rows of the reduced generator (every error pattern
of weight <= i on the MRB) and keeps the candidate with the smallest correlation discrepancy

    D(c) = sum_{l : c_l != z_l} |llr_l|,      z = hard decisions,

which is the ML metric for BPSK over AWGN (min D == max correlation).

Implementation, vectorised over the batch (no Python loop over frames):

* elimination: the permuted generators of the whole batch are bit-packed along n into uint64
  words (B, k, ceil(n/64)); a loop over columns (stopping once every frame has rank k, i.e.
  after about k + a few columns) picks a pivot row per frame and XORs it into the other rows
  with that bit set, all frames at once -- O(B k n ceil(n/64)) word operations in total;
* candidates: with e0 = c0 xor z and s = |llr| (1 - 2 e0), flipping rows i, j (, l) changes the
  discrepancy by s . (g_i xor g_j xor g_l), which expands by inclusion-exclusion into
  t_i = s . g_i,  M_ij = sum_n s_n g_in g_jn  and  T_ijl = sum_n s_n g_in g_jn g_ln.
  On the MRB the reduced generator is the identity, so the products only run over the n - k
  least reliable columns (P, the parity part): t = |llr|_MRB + P s_L, M = P diag(s_L) P^T.
  All weight-1 and weight-2 patterns are scored by one batched matrix product, (B, k, k);
  weight 3 by k more (B, k, k) products.

Cost per frame: O(k n) for the elimination (n/64 words per row), O(k^2 (n-k)) for order 2,
O(k^3 (n-k) / 3) for order 3; memory is bounded by processing the batch in chunks.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import numpy as np

from .._deprecation import warn_renamed
from .._validate import check_array, check_int, check_positive_float
from ..errors import InvalidInputError, TooLargeError
from .decoder import Decoded, check_llr, llr_scale
from .gf2 import gf2_rank
from .linear_code import BinaryLinearCode, check_code, check_frames

__all__ = ["MAX_ORDER", "MAX_PATTERNS", "OrderedStatistics", "hard_decision"]

MAX_ORDER = 3
#: candidate codewords per frame above which OSD is refused: at ~3 million candidates per
#: second one frame would take longer than a few seconds (order 3 on k = 1013 tests 1.7e8)
MAX_PATTERNS = 10**7
_ELIM_FRAMES = 2048  # frames eliminated together (bit-packed, ~k n bytes per frame)
_SCORE_BYTES = 2 * 2**20  # working-memory target of one block of the candidate search


@lru_cache(maxsize=16)
def _lower_inf(k: int) -> np.ndarray:
    """(k, k): +inf on and below the diagonal, 0 above (adds to a score to keep i < j)."""
    out = np.zeros((k, k))
    out[np.tril_indices(k)] = np.inf
    out.setflags(write=False)
    return out


def hard_decision(y: Any) -> np.ndarray:
    """Hard decisions of BPSK observations or LLRs: bit 1 where y < 0 (uint8, same shape)."""
    arr = check_array(y, "y", dtype=np.float64, min_size=0)
    return (arr < 0).astype(np.uint8)


@dataclass(frozen=True, eq=False)
class OrderedStatistics:
    """Order-``order`` OSD for ``code`` (order in 0..3; 0, 1, 2 are the usual choices).

    ``osd(llr)`` decodes channel LLRs (..., n) (:mod:`frugalml.ecc.decoder`) and returns a
    :class:`~frugalml.ecc.decoder.Decoded`; only the order of |llr| and the signs matter, so
    the LLRs' scale does not change the result. Every output is a codeword (``valid`` is all
    True). Patterns tested per frame: sum_{i <= order} C(k, i). The earlier ``osd(y, sigma)``
    and :meth:`decode_llr` (returning bits) are deprecated.
    """

    code: BinaryLinearCode
    order: int = 2
    _gt: np.ndarray = field(init=False, repr=False)
    _words: int = field(init=False, repr=False)

    def __post_init__(self) -> None:
        check_code(self.code)
        object.__setattr__(self, "order", check_int(self.order, "order", low=0, high=MAX_ORDER))
        if self.patterns > MAX_PATTERNS:
            raise TooLargeError(
                f"OSD order {self.order} on {self.code.name} (k = {self.code.k}) would test "
                f"{self.patterns:.3g} candidate codewords per frame (more than {MAX_PATTERNS:.0e}: "
                "minutes per frame); use a lower order"
            )
        g = np.asarray(self.code.G, dtype=np.uint8) & 1
        if g.shape != (self.code.k, self.code.n) or gf2_rank(g) != self.code.k:
            raise InvalidInputError(
                f"OSD needs a full-rank generator matrix of shape (k, n) = "
                f"({self.code.k}, {self.code.n}); got shape {g.shape}"
            )
        object.__setattr__(self, "_gt", np.ascontiguousarray(g.T))
        object.__setattr__(self, "_words", (self.code.n + 63) // 64)

    @property
    def patterns(self) -> int:
        """Number of MRB error patterns scored per frame (including the all-zero one)."""
        from math import comb

        return sum(comb(self.code.k, i) for i in range(self.order + 1))

    def summary(self) -> str:
        return (
            f"OSD order {self.order} on {self.code.name} (n={self.code.n}, k={self.code.k}): "
            f"{self.patterns} candidate codewords per frame"
        )

    def __call__(self, llr: Any, *legacy: Any, sigma: float | None = None) -> Decoded:
        """Decode channel LLRs (..., n); ``sigma`` is not used (checked when given).

        ``osd(y, sigma)`` with two positional arguments is the deprecated form: channel
        outputs y (n,) or (B, n), returns uint8 codewords.
        """
        if legacy:
            if len(legacy) > 1 or sigma is not None:
                raise InvalidInputError("call osd(llr) or osd(llr, sigma=...)")
            warn_renamed("osd(y, sigma)", "osd(llr).bits", "OrderedStatistics")
            check_positive_float(legacy[0], "sigma")
            arr, single = check_frames(llr, "y", self.code.n)
            out = self._decode(arr)
            return out[0] if single else out  # type: ignore[return-value]
        if sigma is not None:
            llr_scale(sigma)
        arr, lead = check_llr(llr, self.code.n)
        bits = self._decode(arr)
        return Decoded.from_flat(bits, np.ones(arr.shape[0], dtype=bool), lead)

    def decode_llr(self, llr: Any) -> np.ndarray:
        """Deprecated: ``osd(llr).bits``. LLRs (n,) or (B, n) -> uint8 codewords."""
        warn_renamed("decode_llr(llr)", "osd(llr).bits", "OrderedStatistics")
        arr, single = check_frames(llr, "llr", self.code.n)
        out = self._decode(arr)
        return out[0] if single else out

    # ------------------------------------------------------------------ internals
    def _score_block(self) -> int:
        """Frames per block of the candidate search, sized to keep its arrays cache-sized."""
        n, k = self.code.n, self.code.k
        per_frame = 8 * (2 * k * (n - k) + 2 * k * k)
        return max(1, min(_ELIM_FRAMES, _SCORE_BYTES // per_frame))

    def _decode(self, llr: np.ndarray) -> np.ndarray:
        # A word whose hard decisions form a codeword is its own answer at every order: the
        # order-0 candidate re-encodes it exactly, with discrepancy 0, the least possible. Only
        # the other words are eliminated (at high SNR most words are skipped).
        out = (llr < 0).astype(np.uint8)
        todo = np.flatnonzero(np.any(self.code.syndrome(out), axis=-1))
        for lo in range(0, todo.size, _ELIM_FRAMES):
            rows = todo[lo : lo + _ELIM_FRAMES]
            out[rows] = self._decode_chunk(llr[rows])
        return out

    def _eliminate(self, perm: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Reduced row echelon form of G[:, perm[b]] for every frame b.

        Returns the bit-packed rows (B, k, W) uint64 (bit j of word j // 64 is permuted
        column j) and the pivot column of each row (B, k): the MRB, as positions in the
        reliability order.
        """
        k, n, words = self.code.k, self.code.n, self._words
        batch = perm.shape[0]
        gp = self._gt[perm].transpose(0, 2, 1)  # (B, k, n): permuted generator
        packed = np.packbits(gp, axis=-1, bitorder="little")
        buf = np.zeros((batch, k, 8 * words), dtype=np.uint8)
        buf[:, :, : packed.shape[-1]] = packed
        rows = buf.view("<u8")  # (B, k, W)
        unused = np.ones((batch, k), dtype=bool)
        pivot = np.full((batch, k), -1, dtype=np.intp)
        rank = np.zeros(batch, dtype=np.intp)
        frames = np.arange(batch)
        one = np.uint64(1)
        for j in range(n):
            bit = ((rows[:, :, j >> 6] >> np.uint64(j & 63)) & one).astype(bool)
            cand = bit & unused
            has = cand.any(axis=1)
            if not has.any():
                continue  # column j depends on earlier ones in every frame
            p = cand.argmax(axis=1)
            prow = rows[frames, p]  # (B, W)
            bit[frames, p] = False
            bit &= has[:, None]
            rows ^= np.where(bit[:, :, None], prow[:, None, :], np.uint64(0))
            fr, pr = frames[has], p[has]
            unused[fr, pr] = False
            pivot[fr, pr] = j
            rank += has
            if rank.min() == k:
                break
        if rank.min() < k:  # cannot happen for a full-rank G (checked at construction)
            raise InvalidInputError("generator matrix lost rank during elimination")
        return rows, pivot

    def _decode_chunk(self, llr: np.ndarray) -> np.ndarray:
        k, n, order = self.code.k, self.code.n, self.order
        batch = llr.shape[0]
        rel = np.abs(llr)
        perm = np.argsort(-rel, axis=1, kind="stable")  # most reliable first
        rel_p = np.take_along_axis(rel, perm, axis=1)
        hard_p = np.take_along_axis(llr < 0, perm, axis=1)
        rows, pivot = self._eliminate(perm)
        frames = np.arange(batch)[:, None]

        # order 0: re-encode the hard decisions on the MRB
        info = hard_p[frames, pivot]  # (B, k)
        zero = np.uint64(0)
        c0w = np.bitwise_xor.reduce(np.where(info[:, :, None], rows, zero), axis=1)  # (B, W)
        flips = np.zeros((batch, k), dtype=bool)
        if order >= 1:
            step = self._score_block()
            for lo in range(0, batch, step):
                sl = slice(lo, lo + step)
                flips[sl] = self._search(rows[sl], pivot[sl], rel_p[sl], hard_p[sl], c0w[sl])
        cw = c0w ^ np.bitwise_xor.reduce(np.where(flips[:, :, None], rows, zero), axis=1)
        cp = np.unpackbits(cw.view(np.uint8), axis=-1, count=n, bitorder="little")
        out = np.empty_like(cp)
        np.put_along_axis(out, perm, cp, axis=1)
        return out

    def _search(
        self,
        rows: np.ndarray,
        pivot: np.ndarray,
        rel_p: np.ndarray,
        hard_p: np.ndarray,
        c0w: np.ndarray,
    ) -> np.ndarray:
        """Best MRB error pattern of weight 1..order per frame, as a (B, k) bool row mask
        (all False when the order-0 codeword is best)."""
        k, n, order = self.code.k, self.code.n, self.order
        batch = rows.shape[0]
        frames = np.arange(batch)[:, None]
        gbits = np.unpackbits(rows.view(np.uint8), axis=-1, count=n, bitorder="little")
        c0 = np.unpackbits(c0w.view(np.uint8), axis=-1, count=n, bitorder="little")
        e0 = c0.astype(bool) ^ hard_p
        d0 = np.where(e0, rel_p, 0.0).sum(axis=1)  # (B,) discrepancy of c0
        s = np.where(e0, -rel_p, rel_p)
        nonpiv = np.ones((batch, n), dtype=bool)
        nonpiv[frames, pivot] = False
        lrb = np.nonzero(nonpiv)[1].reshape(batch, n - k)  # least reliable positions
        par = np.take_along_axis(gbits, lrb[:, None, :], axis=2).astype(np.float64)
        s_l = np.take_along_axis(s, lrb, axis=1)  # (B, n-k)
        # flipping MRB row i alone: its pivot position now disagrees (+|llr|), plus the
        # change on the least reliable positions
        t = rel_p[frames, pivot] + (par @ s_l[:, :, None])[:, :, 0]  # (B, k)
        best = d0.copy()
        choice = np.full((batch, MAX_ORDER), -1, dtype=np.intp)
        i1 = t.argmin(axis=1)
        v1 = t[frames[:, 0], i1] + d0
        better = v1 < best
        best[better] = v1[better]
        choice[better, 0] = i1[better]
        if order >= 2 and k >= 2:
            ps = par * s_l[:, None, :]
            m = ps @ par.transpose(0, 2, 1)  # (B, k, k)
            d2 = m * -2.0
            d2 += t[:, :, None]
            d2 += t[:, None, :]
            d2 += _lower_inf(k)  # keep i < j
            flat = d2.reshape(batch, -1).argmin(axis=1)
            v2 = d2.reshape(batch, -1)[frames[:, 0], flat] + d0
            better = v2 < best
            best[better] = v2[better]
            choice[better, 0] = flat[better] // k
            choice[better, 1] = flat[better] % k
            if order >= 3 and k >= 3:
                self._order3(par, ps, t, m, d0, best, choice)
        flips = np.zeros((batch, k), dtype=bool)
        for col in range(MAX_ORDER):
            sel = choice[:, col] >= 0
            flips[sel, choice[sel, col]] = True
        return flips

    @staticmethod
    def _order3(
        par: np.ndarray,
        ps: np.ndarray,
        t: np.ndarray,
        m: np.ndarray,
        d0: np.ndarray,
        best: np.ndarray,
        choice: np.ndarray,
    ) -> None:
        """Score all weight-3 patterns i < j < l in place (updates best and choice).

        D_ijl - D0 = t_i + t_j + t_l - 2 (M_ij + M_il + M_jl) + 4 T_ijl with
        T_ijl = sum_n s_n g_in g_jn g_ln over the least reliable positions.
        """
        batch, k, _ = par.shape
        frames = np.arange(batch)
        for i in range(k - 2):
            sub = par[:, i + 1 :, :]  # rows j, l > i
            # T_i[j, l] = sum_n (s_n g_in) g_jn g_ln
            tri = (sub * ps[:, i : i + 1, :]) @ sub.transpose(0, 2, 1)  # (B, k-i-1, k-i-1)
            ts = t[:, i + 1 :]
            mi = m[:, i, i + 1 :]
            msub = m[:, i + 1 :, i + 1 :]
            r = k - i - 1
            d3 = tri
            d3 *= 4.0
            d3 -= 2.0 * (mi[:, :, None] + mi[:, None, :] + msub)
            d3 += (t[:, i, None] + ts)[:, :, None]
            d3 += ts[:, None, :]
            d3 += _lower_inf(r)  # keep j < l
            flat = d3.reshape(batch, -1).argmin(axis=1)
            v3 = d3.reshape(batch, -1)[frames, flat] + d0
            better = v3 < best
            best[better] = v3[better]
            choice[better, 0] = i
            choice[better, 1] = i + 1 + flat[better] // r
            choice[better, 2] = i + 1 + flat[better] % r
