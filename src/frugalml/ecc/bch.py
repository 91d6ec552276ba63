"""Narrow-sense primitive binary BCH codes, length n = 2^m - 1.

The BCH codes are the main test bed of Bennatan, Choukroun & Kisilev, "Deep Learning for
Decoding of Linear Codes - A Syndrome-Based Approach" (ISIT 2018, arXiv 1802.04741) and of
Choukroun & Wolf, "Error Correction Code Transformer" (NeurIPS 2022, arXiv 2203.14966).

The generator polynomial is the product of the minimal polynomials of alpha^1..alpha^(d-1),
alpha a root of a primitive polynomial of GF(2^m). By default that is the textbook primitive
polynomial (Lin & Costello's table, MATLAB's default and the field ``galois.BCH(n, k)`` builds:
x^6 + x + 1 for n = 63, x^7 + x^3 + 1 for n = 127), so ``bch_code(63, 45)`` has the generator
polynomial, and the banded cyclic ``H``, of the literature's BCH(63, 45) (tested against
``galois.BCH``). ``field="conway"`` uses the Conway polynomial instead (the default field of
``galois.GF(2**m)``; x^6 + x^4 + x^3 + x + 1 for n = 63): an equivalent code (a coordinate
permutation i -> j i mod n maps one onto the other, :func:`bch_equivalence`), but a different
Tanner graph, on which belief propagation is measurably worse. Computed here with NumPy
log/antilog tables, so no galois JIT compilation and no optional dependency. ``G`` is systematic
(message in the last k positions) and ``H`` is the cyclic parity-check matrix of
h(x) = (x^n - 1) / g(x).
"""

from __future__ import annotations

from functools import cache, lru_cache
from typing import Any

import numpy as np

from .._validate import check_int
from ..errors import InvalidInputError
from .linear_code import BinaryLinearCode

__all__ = ["BCH_FIELDS", "bch_code", "bch_dimensions", "bch_equivalence"]

# Primitive polynomials of GF(2^m), bit i = coefficient of x^i.
# Textbook (Lin & Costello, Table 2.7; MATLAB's gfprimdf; galois.BCH's field): the default.
_TEXTBOOK = {3: 11, 4: 19, 5: 37, 6: 67, 7: 137, 8: 285, 9: 529, 10: 1033}
# Conway polynomials, the defaults of galois.GF(2**m).
_CONWAY = {3: 11, 4: 19, 5: 37, 6: 91, 7: 131, 8: 285, 9: 529, 10: 1135}
_FIELDS = {"textbook": _TEXTBOOK, "conway": _CONWAY}
BCH_FIELDS = tuple(_FIELDS)


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


def _bch_generator_poly(n: int, roots: tuple[int, ...], poly: int) -> np.ndarray:
    """g(x) = prod_r (x - alpha^r) over GF(2^m) = GF(2)[x] / poly(x), ascending 0/1
    coefficients (deg = #roots)."""
    m = (n + 1).bit_length() - 1
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


def bch_code(n: int, k: int, *, field: str = "textbook") -> BinaryLinearCode:
    """The narrow-sense primitive binary BCH code of length n = 2^m - 1 and dimension k.

    ``field`` picks the primitive polynomial whose root alpha defines the code:
    ``"textbook"`` (default; the literature's matrices, the same generator polynomial as
    ``galois.BCH(n, k)``, name ``"bch-<n>-<k>"``) or ``"conway"`` (name
    ``"bch-<n>-<k>-conway"``; the field frugalml used earlier). ``G`` is systematic with the
    message in the last k positions; ``H`` is the banded cyclic parity-check matrix built from
    h(x) = (x^n - 1) / g(x). ``designed_distance`` is the largest designed distance with this k
    (e.g. 7 for BCH(31, 16) and BCH(63, 45)). Cost O(n^2) to build; codes are cached (they are
    immutable).

    Raises ``InvalidInputError`` for an unsupported n, a k with no BCH code (listing the valid
    k's) or an unknown field.
    """
    n = _check_bch_length(n)
    k = check_int(k, "k", low=1)
    if field not in _FIELDS:
        raise InvalidInputError(
            f"field must be one of {', '.join(map(repr, _FIELDS))}; got {field!r}"
        )
    return _bch_cached(n, k, field)


@lru_cache(maxsize=64)
def _bch_cached(n: int, k: int, field: str) -> BinaryLinearCode:
    table = _bch_table(n)
    if k not in table:
        valid = ", ".join(str(v) for v in sorted(table, reverse=True))
        raise InvalidInputError(f"no narrow-sense binary BCH code ({n}, {k}); valid k: {valid}")
    delta, roots = table[k]
    m = (n + 1).bit_length() - 1
    g = _bch_generator_poly(n, roots, _FIELDS[field][m])
    gen, par = _cyclic_matrices(n, g)
    name = f"bch-{n}-{k}" if field == "textbook" else f"bch-{n}-{k}-{field}"
    return BinaryLinearCode(name, n, k, par, gen, "cyclic", delta)


def bch_equivalence(src: BinaryLinearCode, dst: BinaryLinearCode) -> np.ndarray | None:
    """A coordinate permutation mapping the cyclic code ``src`` onto ``dst``, or ``None``.

    Returns int64 ``p`` (n,) with ``x[p]`` a codeword of ``dst`` for every codeword ``x`` of
    ``src`` (``x'[i] = x[p[i]]``), searched among the multiplier maps ``i -> j i mod n`` with
    ``gcd(j, n) = 1``: two BCH codes of the same (n, k) built on different primitive
    polynomials are related by one (if beta = alpha^j, the code of beta's zeros is the image of
    alpha's under i -> j^-1 i). Cost O(phi(n) k n (n - k)) at most.
    """
    if (src.n, src.k) != (dst.n, dst.k):
        return None
    n = src.n
    G = np.asarray(src.G, dtype=np.int64)
    H = np.asarray(dst.H, dtype=np.int64)
    ident = np.arange(n, dtype=np.int64)
    for j in range(1, n):
        if np.gcd(j, n) != 1:
            continue
        p = (j * ident) % n
        if not np.any((G[:, p] @ H.T) % 2):
            return p
    return None
