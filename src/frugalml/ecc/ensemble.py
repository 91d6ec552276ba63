"""Automorphism-ensemble decoding with a syndrome-based neural decoder, and cascades.

Papers: Bennatan, Choukroun, Kisilev, "Deep Learning for Decoding of Linear Codes - A
Syndrome-Based Approach" (ISIT 2018, arXiv 1802.04741), Section IV: a code automorphism may be
applied before decoding and undone after it. Geiselhart, Elkelesh, Ebada, Cammerer, ten Brink,
"Automorphism Ensemble Decoding of Reed-Muller Codes" (IEEE Trans. Commun. 2021): decode
several automorphic images of the received word and keep the most likely result. The OSD
fallback is Fossorier & Lin's ordered-statistics decoding (:mod:`frugalml.ecc.osd`).

Members. A permutation ``p`` (``y'[i] = y[p[i]]``) is an automorphism of the code when it maps
codewords to codewords (``G[:, p] H^T = 0``, checked). For a narrow-sense binary BCH code
(cyclic, odd ``n``) the Frobenius maps ``i -> 2^j i mod n`` (``j = 0 .. ord_n(2) - 1``) are
automorphisms besides the cyclic shifts (the set of zeros is closed under squaring).
:class:`~frugalml.ecc.neural.SyndromeDecoder` already moves every received word to a canonical
cyclic shift (the least reliable window of ``n - k`` positions onto the parity window), so cyclic
pre-shifts give no new input; the ensemble's members are the Frobenius maps times the ranks
``w = 0 .. windows - 1`` of the window the decoder's preprocessing aligns (``w = 0`` is the
canonical shift it was trained with). For BCH(63, 45): 6 Frobenius maps, 18 members with 3
windows. Other codes get the identity only (``windows`` needs the cyclic preprocessing).

Selection. Each member's output ``x`` (mapped back to the code's order) is scored: a codeword
(zero syndrome) beats a non-codeword; among codewords the largest correlation
``sum_i y_i (1 - 2 x_i)`` wins (the most likely codeword on the AWGN channel among those found);
among non-codewords the smallest syndrome weight, then the largest correlation. With ``lazy``
(default) the members after the first run only on the words for which no member has yet returned
a codeword (measured on BCH(63, 45) with the stored fast GRU, 60,000 words at 4 and 5 dB and
200,000 at 6 dB: all but 2 of its ~21,000 wrong words at 4 dB, and all at 5 and 6 dB, were
non-codewords, i.e. detected failures; the lazy ensemble had the same BER as the full one and
costs ``1 + (E - 1) f`` decoder passes for a fraction ``f`` of detected failures);
``lazy=False`` runs every member on every word and keeps the most likely codeword.

Cascade. ``fallback`` (e.g. an :class:`~frugalml.ecc.osd.OrderedStatistics` or a
:class:`~frugalml.ecc.bp.BeliefPropagation`) decodes the words that are still non-codewords after
the ensemble: the neural decoder answers the easy majority fast and the expensive decoder sees
only its detected failures (as :class:`~frugalml.ecc.cascade.CascadeDecoder` does for any two
decoders).

Calling convention (:mod:`frugalml.ecc.decoder`): ``ens(llr, sigma=sigma) -> Decoded``; the
members see the channel outputs ``y = llr / (2 / sigma^2)`` (float32), the fallback the LLRs.

Every step is equivariant (automorphisms map codewords to codewords; correlation and syndrome of
``x xor c`` depend only on the noise), so the paper's codeword invariance holds for the ensemble
and the cascade too (tested exactly).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from .._deprecation import warn_renamed
from .._results import ResultRepr
from .._validate import check_array, check_int, check_positive_float
from ..errors import InvalidInputError
from .decoder import Decoded, Decoder, check_llr, llr_scale
from .linear_code import is_cyclic
from .syndrome import SyndromeDecoder, check_device

__all__ = ["AutomorphismEnsemble", "EnsembleStats", "frobenius_automorphisms", "is_automorphism"]


def _check_code_matrices(code: Any) -> tuple[int, np.ndarray, np.ndarray]:
    H = getattr(code, "H", None)
    G = getattr(code, "G", None)
    if H is None or G is None:
        raise InvalidInputError("code must be a LinearCode with parity-check H and generator G")
    H = np.asarray(H).astype(np.int64)
    G = np.asarray(G).astype(np.int64)
    return H.shape[1], H, G


def is_automorphism(code: Any, perm: Any) -> bool:
    """Whether ``y'[i] = y[perm[i]]`` maps every codeword of ``code`` to a codeword.

    ``perm`` (n,) must be a permutation of ``0 .. n-1``. Checked as ``G[:, perm] H^T = 0`` over
    GF(2); cost O(k n (n - k)).
    """
    n, H, G = _check_code_matrices(code)
    p = np.asarray(perm)
    if p.shape != (n,) or not np.issubdtype(p.dtype, np.integer):
        raise InvalidInputError(f"perm must be an integer array of shape ({n},), got {p.shape}")
    if not np.array_equal(np.sort(p), np.arange(n)):
        raise InvalidInputError("perm must be a permutation of 0 .. n-1")
    return bool(np.all((G[:, p] @ H.T) % 2 == 0))


def frobenius_automorphisms(code: Any) -> np.ndarray:
    """The Frobenius automorphisms ``i -> 2^j i mod n`` of a cyclic code, identity first.

    Returns int64 (E, n): row ``j`` is ``p_j`` with ``y'[i] = y[p_j[i]]``, for the
    ``j = 0 .. ord_n(2) - 1`` whose map is an automorphism (all of them for narrow-sense BCH
    codes); only the identity for codes that are not cyclic or have even length. Cost
    O(ord_n(2) k n (n - k)) for the checks.
    """
    n, _H, _G = _check_code_matrices(code)
    ident = np.arange(n, dtype=np.int64)
    if n % 2 == 0 or not is_cyclic(code):
        return ident[None, :]
    perms = [ident]
    mult = 2 % n
    while mult != 1:
        p = (mult * ident) % n
        if is_automorphism(code, p):
            perms.append(p)
        mult = (2 * mult) % n
    return np.stack(perms)


@dataclass(frozen=True, repr=False)
class EnsembleStats(ResultRepr):
    """What the last :meth:`AutomorphismEnsemble.decode` call did.

    ``words``: words decoded; ``decoder_words``: words passed through the neural decoder in
    total (``words`` times the average number of members tried); ``unresolved``: words no member
    turned into a codeword; ``fallback_words``: words given to the fallback decoder.
    """

    words: int
    decoder_words: int
    unresolved: int
    fallback_words: int

    @property
    def passes(self) -> float:
        """Average number of neural decoder passes per word."""
        return self.decoder_words / self.words if self.words else 0.0

    def summary(self) -> str:
        return (
            f"ensemble: {self.words} words, {self.passes:.2f} decoder passes per word, "
            f"{self.unresolved} unresolved, {self.fallback_words} to the fallback"
        )


class AutomorphismEnsemble:
    """Decode with several automorphic images of each word and keep the most likely output.

    Parameters
    ----------
    decoder:
        A trained :class:`~frugalml.ecc.neural.SyndromeDecoder`.
    permutations:
        ``"frobenius"`` (default: :func:`frobenius_automorphisms` of the decoder's code),
        ``"identity"`` (the decoder alone: a plain cascade when ``fallback`` is set), or an
        array (E, n) of automorphisms, identity first (each is checked).
    windows:
        Preprocessing-window ranks per permutation (``1`` = the canonical shift only); more
        than 1 needs the decoder's cyclic-shift preprocessing. Members: ``E * windows``,
        ordered window-major (all permutations with the canonical window first).
    lazy:
        Try later members only on words without a codeword yet (default) instead of on all.
    fallback:
        Optional :class:`~frugalml.ecc.decoder.Decoder` (an ``OrderedStatistics``,
        ``BeliefPropagation``, ...) for the words left as non-codewords. (A callable
        ``fallback(y, sigma) -> bits`` on channel outputs is deprecated.)
    batch_size:
        Words per neural decoder batch.
    device:
        Where the decoder runs: ``None`` (default) leaves it where it is, else it is moved
        there (in place, as :meth:`torch.nn.Module.to` does).

    ``ens(llr, sigma=sigma)`` decodes channel LLRs (..., n) into a
    :class:`~frugalml.ecc.decoder.Decoded` (``fallback_used`` tells which words went to the
    fallback, when there is one); ``sigma`` is required (see the module docstring).
    Cost: ``1 + (members - 1) f`` decoder passes per word when lazy (``f``: fraction of words
    whose first output is not a codeword), ``members`` otherwise, plus O(B n (n - k)) for the
    syndromes and the fallback on the unresolved words. The earlier ``ens(y, sigma)``,
    ``ens(y)`` and :meth:`decode` on channel outputs, returning bits, are deprecated.
    """

    def __init__(
        self,
        decoder: SyndromeDecoder,
        *,
        permutations: Any = "frobenius",
        windows: int = 1,
        lazy: bool = True,
        fallback: Decoder | Callable[[np.ndarray, float], Any] | None = None,
        batch_size: int = 4096,
        device: Any = None,
    ):
        if not isinstance(decoder, SyndromeDecoder):
            raise InvalidInputError(
                f"decoder must be a SyndromeDecoder, got {type(decoder).__name__}"
            )
        code = decoder.code
        n = decoder.n
        if isinstance(permutations, str):
            if permutations == "frobenius":
                perms = frobenius_automorphisms(code)
            elif permutations == "identity":
                perms = np.arange(n, dtype=np.int64)[None, :]
            else:
                raise InvalidInputError(
                    "permutations must be 'frobenius', 'identity' or an array (E, n), got "
                    f"{permutations!r}"
                )
        else:
            perms = np.asarray(permutations)
            if perms.ndim == 1:
                perms = perms[None, :]
            if perms.ndim != 2 or perms.shape[1] != n or perms.shape[0] < 1:
                raise InvalidInputError(
                    f"permutations must have shape (E, {n}) with E >= 1, got {perms.shape}"
                )
            for i, p in enumerate(perms):
                if not is_automorphism(code, p):
                    raise InvalidInputError(
                        f"permutations[{i}] is not an automorphism of {code.name}: it maps a "
                        "codeword outside the code"
                    )
            perms = perms.astype(np.int64)
        windows = check_int(windows, "windows", low=1, high=n)
        if windows > 1 and not decoder.permute:
            raise InvalidInputError(
                "windows > 1 needs the decoder's cyclic-shift preprocessing (a cyclic code and "
                "permute=True); use windows=1"
            )
        if fallback is not None and not callable(fallback):
            raise InvalidInputError("fallback must be a frugalml.ecc Decoder (e.g. OSD or BP)")
        self._legacy_fallback = fallback is not None and not isinstance(fallback, Decoder)
        if self._legacy_fallback:
            warn_renamed("fallback(y, sigma) callable", "a Decoder", "AutomorphismEnsemble")
        if device is not None:
            decoder.to(check_device(device))
        self.decoder = decoder
        self.code = code
        self.permutations = perms
        self.windows = windows
        self.lazy = bool(lazy)
        self.fallback = fallback
        self.batch_size = check_int(batch_size, "batch_size", low=1)
        self.members: list[tuple[int, int]] = [
            (e, w) for w in range(windows) for e in range(perms.shape[0])
        ]
        self._ht = np.ascontiguousarray(np.asarray(code.H).T.astype(np.float32))
        self.last_stats: EnsembleStats | None = None

    def __len__(self) -> int:
        return len(self.members)

    def summary(self) -> str:
        fb = "" if self.fallback is None else f", fallback {_describe(self.fallback)}"
        return (
            f"automorphism ensemble of {len(self)} members ({self.permutations.shape[0]} "
            f"permutations x {self.windows} windows, {'lazy' if self.lazy else 'full'}{fb}) "
            f"over {self.decoder.summary()}"
        )

    # ---- members ---------------------------------------------------------------------------

    def member_decode(self, y: np.ndarray, member: int) -> np.ndarray:
        """Bits (B, n) in the code's order from member ``member`` on ``y`` (B, n) float32."""
        e, w = self.members[check_int(member, "member", low=0, high=len(self) - 1)]
        p = self.permutations[e]
        xp = self.decoder.decode_received(
            np.ascontiguousarray(y[:, p]), batch_size=self.batch_size, window=w
        ).bits
        out = np.empty_like(xp)
        out[:, p] = xp
        return out

    def _score(self, y: np.ndarray, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        syn_weight = np.remainder(x.astype(np.float32) @ self._ht, 2.0).sum(axis=1)
        corr = np.einsum("bn,bn->b", y, 1.0 - 2.0 * x.astype(np.float32))
        return syn_weight.astype(np.int64), corr

    # ---- decoding --------------------------------------------------------------------------

    def __call__(self, llr: Any, *legacy: Any, sigma: float | None = None) -> Decoded:
        """Decode channel LLRs (..., n) with ``sigma`` (see the class) into a Decoded.

        Without ``sigma`` (``ens(y)``, ``ens(y, sigma)``) it is the deprecated call on channel
        outputs y (n,) or (B, n), returning bits.
        """
        if sigma is None or legacy:
            if len(legacy) > 1 or (legacy and sigma is not None):
                raise InvalidInputError("call ens(llr, sigma=sigma)")
            warn_renamed("ens(y, sigma)", "ens(llr, sigma=sigma)", "AutomorphismEnsemble")
            return self._decode_observations(llr, legacy[0] if legacy else None)  # type: ignore[return-value]
        scale = llr_scale(sigma)
        arr, lead = check_llr(llr, self.decoder.n)
        y = np.ascontiguousarray(arr / scale, dtype=np.float32)
        bits, valid, used = self._run(y, arr, float(sigma))
        return Decoded.from_flat(
            bits, valid, lead, fallback_used=None if self.fallback is None else used
        )

    def decode_received(self, y: np.ndarray, *, sigma: float | None = None) -> Decoded:
        """Decode channel outputs ``y`` (B, n) float32 (the members' own domain) into a
        :class:`~frugalml.ecc.decoder.Decoded` (B words). ``sigma`` is needed only with a
        fallback (which sees the LLRs ``y * 2 / sigma^2``). Used by the list decoder
        (:mod:`frugalml.ecc.list_decoder`), which perturbs ``y`` before decoding."""
        arr = check_array(y, "y", ndim=2, dtype=np.float32, min_size=0)
        if arr.shape[1] != self.decoder.n:
            raise InvalidInputError(
                f"y must have {self.decoder.n} columns (code length), got {arr.shape}"
            )
        if self.fallback is not None:
            if sigma is None:
                raise InvalidInputError(
                    "pass sigma (the channel's noise standard deviation) for the fallback decoder"
                )
            sigma = check_positive_float(sigma, "sigma")
        bits, valid, used = self._run(np.ascontiguousarray(arr), None, sigma)
        return Decoded.from_flat(
            bits, valid, (arr.shape[0],), fallback_used=None if self.fallback is None else used
        )

    def decode(self, y: Any, sigma: float | None = None) -> np.ndarray:
        """Deprecated: ``ens(llr, sigma=sigma).bits``. Channel outputs ``y`` (B, n) or (n,) to
        uint8 bits; ``sigma`` is needed only with a fallback."""
        warn_renamed("decode(y, sigma)", "ens(llr, sigma=sigma)", "AutomorphismEnsemble")
        return self._decode_observations(y, sigma)

    def _decode_observations(self, y: Any, sigma: float | None) -> np.ndarray:
        n = self.decoder.n
        arr = check_array(y, "y", ndim=(1, 2), dtype=np.float32, min_size=0)
        single = arr.ndim == 1
        arr = arr.reshape(1, -1) if single else arr
        if arr.shape[1] != n:
            raise InvalidInputError(f"y must have {n} columns (code length), got {arr.shape}")
        if self.fallback is not None:
            if sigma is None:
                raise InvalidInputError(
                    "pass sigma (the channel's noise standard deviation) for the fallback decoder"
                )
            sigma = check_positive_float(sigma, "sigma")
        best, _, _ = self._run(np.ascontiguousarray(arr), None, sigma)
        return best[0] if single else best

    def _run(
        self, arr: np.ndarray, llr: np.ndarray | None, sigma: float | None
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Decode channel outputs ``arr`` (B, n) float32 (with their LLRs ``llr``, when given,
        for the fallback); returns bits (B, n), valid (B,) and the fallback mask (B,)."""
        n = self.decoder.n
        B = arr.shape[0]
        best = self.member_decode(arr, 0)
        synw, corr = self._score(arr, best)
        used = B
        for member in range(1, len(self)):
            rows = np.flatnonzero(synw > 0) if self.lazy else np.arange(B)
            if rows.size == 0:
                break
            sub = arr[rows]
            x = self.member_decode(sub, member)
            used += rows.size
            sw, c = self._score(sub, x)
            valid, best_valid = sw == 0, synw[rows] == 0
            better = np.where(
                valid,
                ~best_valid | (c > corr[rows]),
                ~best_valid & ((sw < synw[rows]) | ((sw == synw[rows]) & (c > corr[rows]))),
            )
            take = rows[better]
            best[take] = x[better]
            synw[take] = sw[better]
            corr[take] = c[better]
        valid = synw == 0
        unresolved = np.flatnonzero(~valid)
        to_fallback = np.zeros(B, dtype=bool)
        fallback_words = 0
        if self.fallback is not None and unresolved.size:
            if self._legacy_fallback:
                fb = np.asarray(self.fallback(arr[unresolved], sigma))
                fb_valid = None
            else:
                sub = (
                    llr[unresolved]
                    if llr is not None
                    else arr[unresolved].astype(np.float64) * llr_scale(sigma)
                )
                out = self.fallback(sub, sigma=sigma)
                if not isinstance(out, Decoded):
                    raise InvalidInputError(
                        f"the fallback decoder returned {type(out).__name__}, not a Decoded"
                    )
                fb, fb_valid = out.bits, out.valid
            if fb.shape != (unresolved.size, n):
                raise InvalidInputError(
                    f"the fallback decoder returned shape {fb.shape}, expected "
                    f"({unresolved.size}, {n})"
                )
            best[unresolved] = fb.astype(np.uint8)
            if fb_valid is None:
                fb_valid = ~np.any(self.code.syndrome(best[unresolved]), axis=-1)
            valid[unresolved] = fb_valid
            to_fallback[unresolved] = True
            fallback_words = int(unresolved.size)
        self.last_stats = EnsembleStats(B, int(used), int(unresolved.size), fallback_words)
        return best, valid, to_fallback


def _describe(obj: Any) -> str:
    summary = getattr(obj, "summary", None)
    if callable(summary):
        return str(summary())
    return type(obj).__name__
