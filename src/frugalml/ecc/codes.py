"""Binary linear block codes for syndrome-based neural decoding: BCH, polar and LDPC.

The codes are the test beds of Bennatan, Choukroun & Kisilev, "Deep Learning for
Decoding of Linear Codes - A Syndrome-Based Approach" (ISIT 2018, arXiv 1802.04741) and of
Choukroun & Wolf, "Error Correction Code Transformer" (NeurIPS 2022, arXiv 2203.14966).

A code is a :class:`LinearCode`: a binary generator matrix ``G`` (k, n) and parity-check
matrix ``H`` (n - k, n), both full rank with ``G H^T = 0`` over GF(2) (checked on
construction). Encoding is ``c = m G`` and the syndrome of a word ``b`` is ``s = b H^T``,
both mod 2, vectorised over any leading batch shape.

* :func:`bch_code` - narrow-sense primitive binary BCH codes, length n = 2^m - 1. The
  generator polynomial is the product of the minimal polynomials of alpha^1..alpha^(d-1),
  alpha a root of the Conway polynomial of GF(2^m), the same field and generator polynomial
  as ``galois.BCH(n, k)``; computed here with NumPy log/antilog tables, so no galois JIT
  compilation and no optional dependency. ``G`` is systematic (message in the last k
  positions) and ``H`` is the cyclic parity-check matrix of h(x) = (x^n - 1) / g(x).
* :func:`polar_code` - Arikan polar codes, information set from the Bhattacharyya-parameter
  recursion z -> (2z - z^2, z^2) at a design SNR.
* :func:`ldpc_from_alist`, :func:`to_alist` - LDPC codes in MacKay's alist format, and
  :func:`ldpc_regular`, random (dv, dc)-regular codes with 4-cycles removed.
* :func:`get_code` - any of the above by name ("bch-63-45", "polar-64-32", ...).
"""

from __future__ import annotations

import importlib.resources
import math
import re
from dataclasses import dataclass
from functools import cache, lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from .._resources import check_memory
from .._results import ResultRepr
from .._validate import RngLike, check_array, check_int, check_rng
from ..errors import InfeasibleError, InvalidInputError
from .gf2 import (
    as_bits,
    gf2_independent_rows,
    gf2_matmul,
    gf2_nullspace,
    gf2_rank,
)

__all__ = [
    "CODE_NAME_FORMATS",
    "LinearCode",
    "bch_code",
    "bch_dimensions",
    "bundled_alist",
    "check_frames",
    "get_code",
    "ldpc_from_alist",
    "ldpc_regular",
    "polar_bhattacharyya",
    "polar_code",
    "polar_information_set",
    "to_alist",
]

CODE_NAME_FORMATS = (
    "bch-<n>-<k>",
    "polar-<n>-<k>",
    "ldpc-regular-<n>-<dv>-<dc>",
    "ldpc-<path.alist>",
)

# Conway polynomials of GF(2^m) (bit i = coefficient of x^i), the defaults of galois.GF(2**m).
_CONWAY = {3: 11, 4: 19, 5: 37, 6: 91, 7: 131, 8: 285, 9: 529, 10: 1135}


@dataclass(frozen=True, eq=False, repr=False)
class LinearCode(ResultRepr):
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


# -- BCH ----------------------------------------------------------------------------------------


def _cyclotomic_cosets(n: int) -> list[list[int]]:
    """2-cyclotomic cosets modulo n, in order of their smallest element."""
    seen = np.zeros(n, dtype=bool)
    cosets = []
    for s in range(n):
        if seen[s]:
            continue
        coset, j = [], s
        while not seen[j]:
            seen[j] = True
            coset.append(j)
            j = (2 * j) % n
        cosets.append(coset)
    return cosets


@cache
def _bch_table(n: int) -> dict[int, tuple[int, tuple[int, ...]]]:
    """k -> (largest designed distance, roots exponents) of the narrow-sense BCH codes."""
    cosets = {c[0]: c for c in _cyclotomic_cosets(n)}
    coset_of = {}
    for rep, c in cosets.items():
        for j in c:
            coset_of[j] = rep
    roots: set[int] = set()
    table: dict[int, tuple[int, tuple[int, ...]]] = {}
    for j in range(1, n):  # designed distance delta = j + 1 uses roots alpha^1..alpha^j
        roots.update(cosets[coset_of[j]])
        k = n - len(roots)
        if k >= 1:
            table[k] = (j + 1, tuple(sorted(roots)))
    return table


def bch_dimensions(n: int) -> list[int]:
    """The dimensions k (decreasing) of the narrow-sense binary BCH codes of length n."""
    n = _check_bch_length(n)
    return sorted(_bch_table(n), reverse=True)


def _check_bch_length(n: Any) -> int:
    n = check_int(n, "n", low=1)
    m = (n + 1).bit_length() - 1
    if n + 1 != 1 << m or m not in _CONWAY:
        lengths = ", ".join(str((1 << m) - 1) for m in _CONWAY)
        raise InvalidInputError(f"BCH length n must be 2^m - 1, one of {lengths}; got {n}")
    return n


def _bch_generator_poly(n: int, roots: tuple[int, ...]) -> np.ndarray:
    """g(x) = prod_r (x - alpha^r) over GF(2^m), ascending 0/1 coefficients (deg = #roots)."""
    m = (n + 1).bit_length() - 1
    poly = _CONWAY[m]
    exp = np.zeros(n, dtype=np.int64)
    v = 1
    for i in range(n):
        exp[i] = v
        v <<= 1
        if v >> m:
            v ^= poly
    log = np.zeros(n + 1, dtype=np.int64)
    log[exp] = np.arange(n)
    g = np.zeros(len(roots) + 1, dtype=np.int64)
    g[0] = 1
    for deg, r in enumerate(roots):  # g <- (x + alpha^r) g, coefficients as field-element integers
        shifted = np.zeros_like(g)
        shifted[1 : deg + 2] = g[: deg + 1]
        nz = np.flatnonzero(g[: deg + 1])
        scaled = np.zeros_like(g)
        scaled[nz] = exp[(log[g[nz]] + r) % n]
        g = shifted ^ scaled
    if np.any(g > 1):  # a union of full cyclotomic cosets always gives a binary polynomial
        raise AssertionError("BCH generator polynomial is not binary")
    return g.astype(np.uint8)


def _poly_divmod_gf2(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Quotient and remainder of binary polynomials (ascending coefficients, b monic)."""
    rem = a.astype(np.uint8).copy()
    db = len(b) - 1
    quot = np.zeros(max(len(a) - db, 1), dtype=np.uint8)
    for i in range(len(a) - 1, db - 1, -1):
        if rem[i]:
            quot[i - db] = 1
            rem[i - db : i + 1] ^= b
    return quot, rem[:db]


def _cyclic_matrices(n: int, g: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Systematic G = [P | I_k] (parity first) and the cyclic H of h(x) = (x^n - 1) / g(x)."""
    r = len(g) - 1
    k = n - r
    gen = np.zeros((k, n), dtype=np.uint8)
    rem = g[:r].copy()  # x^r mod g(x)
    for i in range(k):  # row i: x^(r+i) + (x^(r+i) mod g)
        gen[i, :r] = rem
        gen[i, r + i] = 1
        top = rem[r - 1] if r else 0
        rem = np.concatenate([[0], rem[: r - 1]]).astype(np.uint8) if r else rem
        if top:
            rem ^= g[:r]
    xn1 = np.zeros(n + 1, dtype=np.uint8)
    xn1[[0, n]] = 1
    h, zero = _poly_divmod_gf2(xn1, g)
    if np.any(zero):
        raise AssertionError("g(x) does not divide x^n - 1")
    par = np.zeros((r, n), dtype=np.uint8)
    hrev = h[::-1]  # h_k ... h_0
    for i in range(r):
        par[i, i : i + k + 1] = hrev
    return gen, par


def bch_code(n: int, k: int) -> LinearCode:
    """The narrow-sense primitive binary BCH code of length n = 2^m - 1 and dimension k.

    Same generator polynomial as ``galois.BCH(n, k)`` (Conway-polynomial field). ``G`` is
    systematic with the message in the last k positions; ``H`` is the banded cyclic
    parity-check matrix built from h(x) = (x^n - 1) / g(x). ``designed_distance`` is the
    largest designed distance with this k (e.g. 7 for BCH(31, 16) and BCH(63, 45)).
    Cost O(n^2) to build; codes are cached (they are immutable).

    Raises ``InvalidInputError`` for an unsupported n or a k with no BCH code (listing the
    valid k's).
    """
    n = _check_bch_length(n)
    k = check_int(k, "k", low=1)
    return _bch_cached(n, k)


@lru_cache(maxsize=64)
def _bch_cached(n: int, k: int) -> LinearCode:
    table = _bch_table(n)
    if k not in table:
        valid = ", ".join(str(v) for v in sorted(table, reverse=True))
        raise InvalidInputError(f"no narrow-sense binary BCH code ({n}, {k}); valid k: {valid}")
    delta, roots = table[k]
    g = _bch_generator_poly(n, roots)
    gen, par = _cyclic_matrices(n, g)
    return LinearCode(f"bch-{n}-{k}", n, k, par, gen, "cyclic", delta)


# -- polar --------------------------------------------------------------------------------------


def polar_bhattacharyya(n: int, z0: float) -> np.ndarray:
    """Bhattacharyya parameters (n,) of the synthetic channels of a length-n polar code.

    ``z0`` in (0, 1) is the channel's parameter (exp(-Es/N0) for BPSK over AWGN, the erasure
    probability for a BEC). Index i, written in binary MSB first, takes at each bit the
    degraded branch z -> 2z - z^2 (bit 0) or the upgraded branch z -> z^2 (bit 1), matching
    the row convention x = u F^{(x)m}, F = [[1, 0], [1, 1]]. Computed in the log domain (of
    z and of 1 - z), so the recursion itself loses no precision near 0 or 1. Cost O(n).
    """
    n = _check_polar_length(n)
    z0 = float(z0)
    if not (0.0 < z0 < 1.0):
        raise InvalidInputError(f"z0 must lie in (0, 1), got {z0}")
    return np.exp(_polar_log_z(n, math.log(z0))[0])


def _check_polar_length(n: Any) -> int:
    n = check_int(n, "n", low=2)
    if n & (n - 1):
        raise InvalidInputError(f"polar length n must be a power of two, got {n}")
    return n


def _check_dense_size(n: int, what: str) -> None:
    """Codes are held as dense uint8 matrices (H, G, and n x n work arrays: ~4 n^2 bytes)."""
    check_memory(
        4 * n * n, f"the dense matrices of {what} (length n = {n})", fix="use a shorter code"
    )


def _log1mexp(a: np.ndarray) -> np.ndarray:
    """log(1 - exp(a)) for a < 0, accurate at both ends (Maechler's two branches)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        near = a > -math.log(2.0)
        return np.where(near, np.log(-np.expm1(a)), np.log1p(-np.exp(a)))


def _polar_log_z(n: int, log_z0: float) -> tuple[np.ndarray, np.ndarray]:
    """(log z, log(1 - z)) of the synthetic channels, expanded outermost (MSB) level first.

    Minus: 1 - z' = (1 - z)^2, so log(1 - z') = 2 log(1 - z) and log z' = log1p(-(1 - z)^2);
    plus: log z' = 2 log z and log(1 - z') = log1p(-z^2). Carrying both logs keeps channels
    distinguishable near z = 0 (by log z) and near z = 1 (by log(1 - z)).
    """
    lz = np.array([log_z0])
    l1 = _log1mexp(lz)
    for _ in range(n.bit_length() - 1):
        minus_l1 = 2.0 * l1
        minus_lz = _log1mexp(minus_l1)
        plus_lz = 2.0 * lz
        plus_l1 = _log1mexp(plus_lz)
        lz = np.stack([minus_lz, plus_lz], axis=1).reshape(-1)
        l1 = np.stack([minus_l1, plus_l1], axis=1).reshape(-1)
    return lz, l1


def polar_information_set(n: int, k: int, design_snr_db: float = 0.0) -> np.ndarray:
    """Sorted (k,) indices of the k most reliable synthetic channels (smallest Bhattacharyya
    parameter at z0 = exp(-Es/N0), Es/N0 = ``design_snr_db``), ordered by log z then by
    log(1 - z) (so parameters that round to 1 stay ordered); exact ties go to the higher index.
    """
    n = _check_polar_length(n)
    k = check_int(k, "k", low=1, high=n)
    snr = _check_design_snr(design_snr_db)
    lz, l1 = _polar_log_z(n, -(10.0 ** (snr / 10.0)))  # z0 = exp(-Es/N0)
    order = np.lexsort((-np.arange(n), -l1, lz))
    return np.sort(order[:k]).astype(np.intp)


def _check_design_snr(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.floating, np.integer)):
        raise InvalidInputError(f"design_snr_db must be a real number, got {value!r}")
    value = float(value)
    if not (math.isfinite(value) and -20.0 <= value <= 30.0):
        raise InvalidInputError(f"design_snr_db must be finite and in [-20, 30] dB, got {value}")
    return value


def _kron_power(m: int) -> np.ndarray:
    f = np.array([[1, 0], [1, 1]], dtype=np.uint8)
    out = np.ones((1, 1), dtype=np.uint8)
    for _ in range(m):
        out = np.kron(out, f)
    return out


def polar_code(n: int, k: int, design_snr_db: float = 0.0) -> LinearCode:
    """Arikan polar code of length n (a power of two) and dimension k.

    Information set A from :func:`polar_information_set` at ``design_snr_db`` (Es/N0 in dB,
    z0 = exp(-Es/N0)); ``G = F^{(x)m}[A]`` and, since F^{-1} = F over GF(2),
    ``H = F^{(x)m}[:, frozen]^T``. Cost O(n^2).
    """
    n = _check_polar_length(n)
    k = check_int(k, "k", low=1, high=n)
    _check_dense_size(n, f"polar-{n}-{k}")
    info = polar_information_set(n, k, design_snr_db)
    frozen = np.setdiff1d(np.arange(n), info)
    f = _kron_power(n.bit_length() - 1)
    return LinearCode(f"polar-{n}-{k}", n, k, f[:, frozen].T, f[info])


# -- LDPC ---------------------------------------------------------------------------------------


def _code_from_h(name: str, h: np.ndarray) -> LinearCode:
    """Code with parity checks ``h``: redundant rows dropped (the first independent rows kept),
    generator from the GF(2) null space."""
    n = h.shape[1]
    _check_dense_size(n, name)
    keep = gf2_independent_rows(h)
    h = h[keep]
    if h.shape[0] == n:
        raise InvalidInputError(f"{name}: H has rank n={n}; the code is {{0}} (k = 0)")
    g = gf2_nullspace(h)
    return LinearCode(name, n, n - h.shape[0], h, g)


def _alist_lines(text: str, source: str) -> list[tuple[int, list[int]]]:
    """(line number, integers) of the non-blank lines."""
    out = []
    for lineno, raw in enumerate(text.splitlines(), start=1):
        s = raw.strip()
        if not s:
            continue
        try:
            out.append((lineno, [int(t) for t in s.split()]))
        except ValueError:
            raise InvalidInputError(
                f"{source} line {lineno}: expected integers, got {s[:60]!r}"
            ) from None
    return out


def _parse_alist(text: str, source: str) -> np.ndarray:
    lines = _alist_lines(text, source)
    pos = 0

    def take(what: str, count: int | None = None) -> tuple[int, list[int]]:
        nonlocal pos
        if pos >= len(lines):
            raise InvalidInputError(f"{source}: unexpected end of file; expected {what}")
        lineno, vals = lines[pos]
        pos += 1
        if count is not None and len(vals) != count:
            raise InvalidInputError(
                f"{source} line {lineno}: expected {count} integer(s) ({what}), got {len(vals)}"
            )
        return lineno, vals

    lineno, (n, m) = take("'N M' (columns, rows)", 2)
    if n < 1 or m < 1:
        raise InvalidInputError(f"{source} line {lineno}: N and M must be >= 1, got {n} {m}")
    lineno, (max_col, max_row) = take("'max column weight, max row weight'", 2)
    if not (0 <= max_col <= m and 0 <= max_row <= n):
        raise InvalidInputError(
            f"{source} line {lineno}: maximum weights {max_col} {max_row} out of range "
            f"for an {m} x {n} matrix"
        )
    lineno, col_w = take(f"{n} column weights", n)
    if min(col_w) < 0 or max(col_w) > max_col:
        raise InvalidInputError(
            f"{source} line {lineno}: column weights must lie in [0, {max_col}]"
        )
    lineno, row_w = take(f"{m} row weights", m)
    if min(row_w) < 0 or max(row_w) > max_row:
        raise InvalidInputError(f"{source} line {lineno}: row weights must lie in [0, {max_row}]")
    if sum(col_w) != sum(row_w):
        raise InvalidInputError(
            f"{source} line {lineno}: row weights sum to {sum(row_w)} but column weights "
            f"to {sum(col_w)}"
        )

    def entries(
        index: int, weight: int, width: int, limit: int, kind: str
    ) -> tuple[int, list[int]]:
        other = "row" if kind == "column" else "column"
        lineno, vals = take(f"the {other} indices of {kind} {index + 1}")
        nz = [v for v in vals if v != 0]
        if len(vals) not in (weight, width) or len(nz) != weight or vals[:weight] != nz:
            raise InvalidInputError(
                f"{source} line {lineno}: {kind} {index + 1} must list {weight} {other} "
                f"indices (optionally zero-padded to {width}), got {vals}"
            )
        if any(v < 1 or v > limit for v in nz):
            raise InvalidInputError(
                f"{source} line {lineno}: {other} indices must lie in 1..{limit}, got {nz}"
            )
        if len(set(nz)) != len(nz):
            raise InvalidInputError(f"{source} line {lineno}: repeated {other} index in {nz}")
        return lineno, nz

    h = np.zeros((m, n), dtype=np.uint8)
    for j in range(n):
        h[np.asarray(entries(j, col_w[j], max_col, m, "column")[1], dtype=np.intp) - 1, j] = 1
    for i in range(m):
        lineno, cols = entries(i, row_w[i], max_row, n, "row")
        row = np.zeros(n, dtype=np.uint8)
        row[np.asarray(cols, dtype=np.intp) - 1] = 1
        if not np.array_equal(row, h[i]):
            raise InvalidInputError(
                f"{source} line {lineno}: row {i + 1} lists columns {cols}, which disagrees "
                f"with the column lists (columns {[int(c) + 1 for c in np.flatnonzero(h[i])]})"
            )
    if pos < len(lines):
        raise InvalidInputError(
            f"{source} line {lines[pos][0]}: unexpected content after the {m} row lists"
        )
    return h


def ldpc_from_alist(path_or_text: str | Path, name: str | None = None) -> LinearCode:
    """Code with the parity-check matrix of a MacKay alist file (a path, or the text itself).

    Format: ``N M``, ``max_col_weight max_row_weight``, N column weights, M row weights,
    then N lines of (1-based) row indices per column and M lines of column indices per row,
    each optionally zero-padded to the maximum weight. Malformed input raises
    ``InvalidInputError`` naming the offending line. Redundant (linearly dependent) checks
    are dropped, keeping the first independent rows, so ``H`` is (n - k, n) full rank; ``G``
    comes from the GF(2) null space. A ``str`` containing a newline is parsed as alist text,
    anything else is a path. ``name`` defaults to ``"ldpc-<file name>"``.
    """
    if isinstance(path_or_text, str) and "\n" in path_or_text:
        text, source = path_or_text, "alist"
        default = "ldpc-alist"
    elif isinstance(path_or_text, (str, Path)):
        path = Path(path_or_text)
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise InvalidInputError(f"cannot read alist file {str(path)!r}: {exc}") from exc
        source, default = f"alist file {str(path)!r}", f"ldpc-{path.name}"
    else:
        raise InvalidInputError(
            f"path_or_text must be a path or alist text, got {type(path_or_text).__name__}"
        )
    h = _parse_alist(text, source)
    return _code_from_h(default if name is None else name, h)


def to_alist(code: LinearCode | np.ndarray) -> str:
    """MacKay alist text of a code's parity-check matrix (or of a 0/1 matrix), zero-padded."""
    h = code.H if isinstance(code, LinearCode) else as_bits(code, "H", ndim=2)
    m, n = h.shape
    col_w = h.sum(axis=0).astype(int)
    row_w = h.sum(axis=1).astype(int)
    max_c, max_r = int(col_w.max(initial=0)), int(row_w.max(initial=0))

    def padded(idx: np.ndarray, width: int) -> str:
        vals = [int(v) + 1 for v in idx] + [0] * (width - len(idx))
        return " ".join(map(str, vals))

    out = [f"{n} {m}", f"{max_c} {max_r}", " ".join(map(str, col_w)), " ".join(map(str, row_w))]
    out += [padded(np.flatnonzero(h[:, j]), max_c) for j in range(n)]
    out += [padded(np.flatnonzero(h[i]), max_r) for i in range(m)]
    return "\n".join(out) + "\n"


def bundled_alist(name: str = "ldpc_96_48") -> Path:
    """Path of an alist file shipped with frugalml (``ldpc_96_48``: a (3, 6)-regular
    (96, 48) code without 4-cycles, made by ``ldpc_regular(96, 3, 6, rng=0)``)."""
    stem = name[: -len(".alist")] if name.endswith(".alist") else name
    path = Path(str(importlib.resources.files("frugalml.ecc") / "data" / f"{stem}.alist"))
    if not path.is_file():
        raise InvalidInputError(f"no bundled alist file named {stem!r}")
    return path


def _four_cycle_score(a: np.ndarray, overlap: np.ndarray) -> int:
    """Penalty of a check-variable count matrix: multi-edges weigh more than 4-cycles."""
    doubles = int(np.maximum(a - 1, 0).sum())
    iu = np.triu_indices(overlap.shape[0], 1)
    o = overlap[iu]
    cycles = int((o * (o - 1) // 2).sum())
    return doubles * (a.shape[0] * a.shape[1]) + cycles


def _regular_graph(
    n: int, dv: int, dc: int, gen: np.random.Generator, max_steps: int
) -> np.ndarray:
    """Random (dv, dc)-regular bipartite graph as an (m, n) 0/1 matrix, by the configuration
    model followed by edge swaps that remove multi-edges and then 4-cycles (best effort)."""
    m = n * dv // dc
    var = np.repeat(np.arange(n), dv)
    chk = gen.permutation(np.repeat(np.arange(m), dc))
    a = np.zeros((m, n), dtype=np.int64)
    np.add.at(a, (chk, var), 1)
    b = (a > 0).astype(np.float64)
    overlap = np.rint(b @ b.T).astype(np.int64)
    np.fill_diagonal(overlap, 0)
    score = _four_cycle_score(a, overlap)
    edges = var.size

    def refresh(rows: tuple[int, ...]) -> None:
        for c in rows:
            b[c] = a[c] > 0
        for c in rows:
            col = np.rint(b @ b[c]).astype(np.int64)
            overlap[c, :] = col
            overlap[:, c] = col
            overlap[c, c] = 0

    def swap(e: int, f: int) -> None:
        ce, cf = chk[e], chk[f]
        a[ce, var[e]] -= 1
        a[cf, var[f]] -= 1
        chk[e], chk[f] = cf, ce
        a[cf, var[e]] += 1
        a[ce, var[f]] += 1
        refresh((int(ce), int(cf)))

    for _ in range(max_steps):
        if score == 0:
            break
        multi = np.argwhere(a > 1)
        if multi.size:
            c, v = multi[gen.integers(len(multi))]
        else:
            pairs = np.argwhere(np.triu(overlap > 1, 1))
            c1, c2 = pairs[gen.integers(len(pairs))]
            common = np.flatnonzero(b[c1].astype(bool) & b[c2].astype(bool))
            v = common[gen.integers(common.size)]
            c = c1 if gen.integers(2) else c2
        e = int(np.flatnonzero((chk == c) & (var == v))[0])
        f = int(gen.integers(edges))
        if chk[f] == chk[e] or var[f] == var[e]:
            continue
        swap(e, f)
        new = _four_cycle_score(a, overlap)
        if new <= score:
            score = new
        else:
            swap(e, f)  # undo
    if np.any(a > 1):
        raise InfeasibleError(
            f"could not build a simple ({dv}, {dc})-regular graph on n={n} variables; "
            "use a larger n"
        )
    return (a > 0).astype(np.uint8)


def ldpc_regular(
    n: int, dv: int, dc: int, rng: RngLike = 0, *, max_steps: int | None = None
) -> LinearCode:
    """A random (dv, dc)-regular LDPC code of length n (Gallager's regular ensemble).

    The Tanner graph is drawn from the configuration model (a random matching of the n dv
    variable sockets to the m = n dv / dc check sockets), then random edge swaps remove
    multi-edges and, as far as ``max_steps`` (default 200 n) allows, 4-cycles (girth >= 6).
    Up to 8 graphs are drawn until H has full rank m (k = n - m); otherwise redundant checks
    are dropped (always the case for even dv, whose rows sum to zero). Cost
    O(max_steps (m n)) with small constants. Deterministic for an int ``rng``.
    """
    n = check_int(n, "n", low=2)
    dv = check_int(dv, "dv", low=1)
    dc = check_int(dc, "dc", low=2, high=n)
    _check_dense_size(n, f"ldpc-regular-{n}-{dv}-{dc}")
    if (n * dv) % dc:
        raise InvalidInputError(f"n*dv must be divisible by dc: {n}*{dv} is not a multiple of {dc}")
    m = n * dv // dc
    if dv > m:
        raise InvalidInputError(f"dv={dv} exceeds the number of checks m=n*dv/dc={m}")
    if m >= n:
        raise InvalidInputError(f"dv/dc must be < 1 so that k = n - m > 0 (got dv={dv}, dc={dc})")
    steps = 200 * n if max_steps is None else check_int(max_steps, "max_steps", low=0)
    gen = check_rng(rng)
    h = _regular_graph(n, dv, dc, gen, steps)
    for _ in range(7 if dv % 2 else 0):
        if gf2_rank(h) == m:
            break
        h = _regular_graph(n, dv, dc, gen, steps)
    return _code_from_h(f"ldpc-regular-{n}-{dv}-{dc}", h)


# -- by name ------------------------------------------------------------------------------------


def _resolve_alist(spec: str) -> Path:
    path = Path(spec)
    if path.is_file():
        return path
    if path.parent == Path("."):
        bundled = Path(str(importlib.resources.files("frugalml.ecc") / "data" / path.name))
        if bundled.is_file():
            return bundled
    raise InvalidInputError(f"alist file {spec!r} not found (neither a path nor bundled)")


def get_code(name: str, *, rng: RngLike = 0) -> LinearCode:
    """Build a code from its name.

    Formats: ``"bch-<n>-<k>"``, ``"polar-<n>-<k>"`` (design SNR 0 dB),
    ``"ldpc-regular-<n>-<dv>-<dc>"`` (random, from ``rng``; the default seed 0 makes the name
    reproducible) and ``"ldpc-<path.alist>"`` (a file; a bare file name not found in the
    working directory is looked up among the bundled ones, e.g. ``"ldpc-ldpc_96_48.alist"``).
    Unknown names raise ``InvalidInputError`` listing the formats.
    """
    if not isinstance(name, str):
        raise InvalidInputError(f"code name must be a string, got {type(name).__name__}")
    s = name.strip()
    if mt := re.fullmatch(r"bch-(\d+)-(\d+)", s):
        return bch_code(int(mt[1]), int(mt[2]))
    if mt := re.fullmatch(r"polar-(\d+)-(\d+)", s):
        return polar_code(int(mt[1]), int(mt[2]))
    if mt := re.fullmatch(r"ldpc-regular-(\d+)-(\d+)-(\d+)", s):
        return ldpc_regular(int(mt[1]), int(mt[2]), int(mt[3]), rng)
    if mt := re.fullmatch(r"ldpc-(.+\.alist)", s):
        return ldpc_from_alist(_resolve_alist(mt[1]), name=s)
    formats = ", ".join(repr(f) for f in CODE_NAME_FORMATS)
    raise InvalidInputError(f"unknown code name {name!r}; expected one of the formats {formats}")
