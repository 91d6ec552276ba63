"""The binary linear block code type: :class:`BinaryLinearCode` (GF(2) generator and
parity-check matrices), and the checks shared by the code constructions and the decoders.

The codes are the test beds of Bennatan, Choukroun & Kisilev, "Deep Learning for Decoding of
Linear Codes - A Syndrome-Based Approach" (ISIT 2018, arXiv 1802.04741) and of Choukroun & Wolf,
"Error Correction Code Transformer" (NeurIPS 2022, arXiv 2203.14966).

A code is a :class:`BinaryLinearCode`: a binary generator matrix ``G`` (k, n) and parity-check
matrix ``H`` (n - k, n), both full rank with ``G H^T = 0`` over GF(2) (checked on
construction). Encoding is ``c = m G`` and the syndrome of a word ``b`` is ``s = b H^T``,
both mod 2, vectorised over any leading batch shape. (:mod:`frugalml.coded` has a real-valued
linear code of its own; this one is binary.)
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

import numpy as np

from .._resources import check_memory
from .._results import ResultRepr
from .._validate import check_array, check_int
from ..errors import InvalidInputError
from .gf2 import (
    as_bits,
    gf2_independent_rows,
    gf2_matmul,
    gf2_nullspace,
    gf2_rank,
)

__all__ = [
    "BinaryLinearCode",
    "check_code",
    "check_dense_size",
    "check_frames",
    "code_from_h",
    "code_identity",
    "code_parameters",
    "is_cyclic",
]


@dataclass(frozen=True, eq=False, repr=False)
class BinaryLinearCode(ResultRepr):
    """A binary linear (n, k) block code.

    Attributes
    ----------
    name: identifier, e.g. ``"bch-63-45"`` (:func:`get_code` rebuilds the code from it).
    n, k: block length and dimension (1 <= k <= n).
    H: (n - k, n) ``uint8`` full-rank parity-check matrix (read-only).
    G: (k, n) ``uint8`` full-rank generator matrix with ``G H^T = 0`` (read-only).
    automorphisms: ``"cyclic"`` when every cyclic shift of a codeword is a codeword, else
        ``None``.
    designed_distance: a proven lower bound on the minimum distance (BCH designed distance),
        when known.

    Construction validates shapes, bit values, ``G H^T = 0`` and both ranks over GF(2)
    (O(n^3 / 8) byte operations) and stores read-only copies, so a code can be shared freely.
    """

    name: str
    n: int
    k: int
    H: np.ndarray
    G: np.ndarray
    automorphisms: str | None = None
    designed_distance: int | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise InvalidInputError(f"name must be a non-empty string, got {self.name!r}")
        n = check_int(self.n, "n", low=1)
        k = check_int(self.k, "k", low=1, high=n)
        h = as_bits(self.H, "H", ndim=2)
        g = as_bits(self.G, "G", ndim=2)
        if h.shape != (n - k, n):
            raise InvalidInputError(f"H must have shape (n-k, n) = ({n - k}, {n}), got {h.shape}")
        if g.shape != (k, n):
            raise InvalidInputError(f"G must have shape (k, n) = ({k}, {n}), got {g.shape}")
        if n > k and np.any(gf2_matmul(g, h.T)):
            raise InvalidInputError(
                f"{self.name}: G H^T != 0 over GF(2); G's rows are not codewords of H"
            )
        if gf2_rank(g) != k:
            raise InvalidInputError(f"{self.name}: G must have full rank k={k}")
        if n > k and gf2_rank(h) != n - k:
            raise InvalidInputError(
                f"{self.name}: H must have full rank n-k={n - k}; drop redundant checks"
            )
        if self.automorphisms not in (None, "cyclic"):
            raise InvalidInputError(
                f"automorphisms must be None or 'cyclic', got {self.automorphisms!r}"
            )
        if self.designed_distance is not None:
            check_int(self.designed_distance, "designed_distance", low=1, high=n)
        for field, arr in (("n", n), ("k", k), ("H", _frozen(h)), ("G", _frozen(g))):
            object.__setattr__(self, field, arr)

    @property
    def rate(self) -> float:
        """k / n."""
        return self.k / self.n

    def encode(self, msg: Any) -> np.ndarray:
        """Codewords ``msg G`` mod 2: (..., k) bits -> (..., n) ``uint8``; O(k n) per word."""
        m = as_bits(msg, "msg")
        if m.ndim == 0 or m.shape[-1] != self.k:
            raise InvalidInputError(f"msg must have shape (..., k={self.k}), got {m.shape}")
        return gf2_matmul(m, self.G)

    def syndrome(self, bits: Any) -> np.ndarray:
        """Syndromes ``bits H^T`` mod 2: (..., n) -> (..., n - k) ``uint8``; O(n (n-k))."""
        b = self._check_word(bits, "bits")
        return gf2_matmul(b, self.H.T)

    def is_codeword(self, bits: Any) -> np.ndarray | bool:
        """Whether each (..., n) word has zero syndrome: (...) bool (a bool for one word)."""
        ok = ~np.any(self.syndrome(bits), axis=-1)
        return bool(ok) if ok.ndim == 0 else ok

    def summary(self) -> str:
        parts = [f"{self.name}: ({self.n}, {self.k}) binary linear code, rate {self.rate:.3f}"]
        if self.designed_distance is not None:
            parts.append(f"designed distance {self.designed_distance}")
        if self.n > self.k:
            parts.append(
                f"H {self.n - self.k}x{self.n} with {int(self.H.sum())} ones "
                f"(density {self.H.mean():.3f})"
            )
        if self.automorphisms:
            parts.append(self.automorphisms)
        return ", ".join(parts)

    def _check_word(self, bits: Any, name: str) -> np.ndarray:
        b = as_bits(bits, name)
        if b.ndim == 0 or b.shape[-1] != self.n:
            raise InvalidInputError(f"{name} must have shape (..., n={self.n}), got {b.shape}")
        return b


def check_frames(x: Any, name: str, n: int) -> tuple[np.ndarray, bool]:
    """``x`` as a (B, n) float64 array (received words or LLRs) and whether the input was a
    single frame (n,); raises :class:`InvalidInputError` on a wrong shape or non-finite
    values."""
    arr = check_array(x, name, ndim=(1, 2), dtype=np.float64, min_size=0)
    if arr.shape[-1] != n:
        raise InvalidInputError(
            f"{name} must have shape (n,) or (batch, n) with n = {n}, got {arr.shape}"
        )
    single = arr.ndim == 1
    return (arr[None, :] if single else arr), single


def _frozen(a: np.ndarray) -> np.ndarray:
    out = np.array(a, dtype=np.uint8, copy=True, order="C")
    out.setflags(write=False)
    return out


def check_code(code: Any) -> BinaryLinearCode:
    """``code`` itself if it is a :class:`BinaryLinearCode`, else :class:`InvalidInputError`."""
    if not isinstance(code, BinaryLinearCode):
        raise InvalidInputError(
            f"code must be a frugalml.ecc.BinaryLinearCode, got {type(code).__name__}"
        )
    return code


def check_dense_size(n: int, what: str) -> None:
    """Codes are held as dense uint8 matrices (H, G, and n x n work arrays: ~4 n^2 bytes)."""
    check_memory(
        4 * n * n, f"the dense matrices of {what} (length n = {n})", fix="use a shorter code"
    )


def code_from_h(name: str, h: np.ndarray) -> BinaryLinearCode:
    """Code with parity checks ``h``: redundant rows dropped (the first independent rows kept),
    generator from the GF(2) null space."""
    n = h.shape[1]
    check_dense_size(n, name)
    keep = gf2_independent_rows(h)
    h = h[keep]
    if h.shape[0] == n:
        raise InvalidInputError(f"{name}: H has rank n={n}; the code is {{0}} (k = 0)")
    g = gf2_nullspace(h)
    return BinaryLinearCode(name, n, n - h.shape[0], h, g)


def code_parameters(code: Any) -> tuple[int, int, np.ndarray]:
    """``(n, k, H)`` of any object with ``n``, ``k`` and a 0/1 ``H`` (n - k, n) (a
    :class:`BinaryLinearCode` or a look-alike), with 2 <= n and 1 <= k < n; H as uint8."""
    for attr in ("n", "k", "H"):
        if not hasattr(code, attr):
            raise InvalidInputError(
                f"code must be a BinaryLinearCode (with n, k, H), got {type(code).__name__} "
                f"without attribute {attr!r}"
            )
    n = check_int(code.n, "code.n", low=2)
    k = check_int(code.k, "code.k", low=1, high=n - 1)
    H = np.asarray(code.H)
    if H.shape != (n - k, n):
        raise InvalidInputError(f"code.H must have shape ({n - k}, {n}), got {H.shape}")
    if not np.all((H == 0) | (H == 1)):
        raise InvalidInputError("code.H must contain only 0/1 entries")
    return n, k, H.astype(np.uint8)


def code_identity(code: BinaryLinearCode) -> dict[str, Any]:
    """``{"name", "n", "k", "h_sha256"}``: what checkpoints record to recognise a code.

    The hash covers H's shape and its entries as row-major uint8 bytes.
    """
    n, k, H = code_parameters(code)
    digest = hashlib.sha256(f"{H.shape[0]}x{H.shape[1]}:".encode())
    digest.update(np.ascontiguousarray(H).tobytes())
    return {"name": str(getattr(code, "name", "")), "n": n, "k": k, "h_sha256": digest.hexdigest()}


def is_cyclic(code: BinaryLinearCode) -> bool:
    """Whether the cyclic shift is an automorphism of ``code``.

    Checked algebraically: every row of ``G`` shifted by one position must satisfy ``H``. (A
    code invariant under the shift is invariant under every power of it, the inverse included.)
    Without ``G`` the code's ``automorphisms == "cyclic"`` flag is trusted. Cost O(k n (n - k)).
    """
    n, _k, H = code_parameters(code)
    G = getattr(code, "G", None)
    if G is None:
        return getattr(code, "automorphisms", None) == "cyclic"
    G = np.asarray(G).astype(np.int64)
    if G.ndim != 2 or G.shape[1] != n:
        return False
    shifted = np.roll(G, 1, axis=1)
    return bool(np.all((shifted @ H.T.astype(np.int64)) % 2 == 0))
