"""Search directions for evolution strategies: Gaussian, orthogonal and randomized Hadamard.

Every family returns K directions in R^d as the rows of a (K, d) array V, scaled so that
E[v v^T] = I for one row v (Gaussian: N(0, I); structured: rows of norm sqrt(d) whose
direction is uniform). Then ``(1/K) sum_i (grad . v_i) v_i`` is an unbiased gradient estimate,
and it is exact when K = d and the rows are orthogonal, because V^T V = d I.

* ``gaussian``: i.i.d. N(0, 1) entries (plain ES / NES, Salimans et al. 2017; Ilyas et al.
  2018, arXiv 1804.08598). O(K d).
* ``orthogonal``: K Haar-random orthonormal rows (sign-corrected QR), scaled to norm
  sqrt(d); K > d stacks ceil(K / d) independent blocks. Structured exploration of Choromanski
  et al. 2018 (arXiv 1804.02395). A block of r < d rows is the Q factor of the thin QR of a
  (d, r) Gaussian matrix -- the first r columns of a Haar matrix, the same law as r random rows
  of a full one -- at O(d r^2) flops and O(d r) memory; a full block (r = d) is the QR of a
  d x d Gaussian matrix, O(d^3). (Before, every block was a d x d QR: 10^12 flops and 800 MB
  per draw at d = 10^4, impossible at d = 10^5.)
* ``hadamard``: rows of H_P D, H_P the P x P Sylvester Hadamard matrix (P = 2^ceil(log2 d)),
  D random +-1 signs; K distinct rows per block and a random subset of d of the P columns.
  Entries are +-1, so every row has norm sqrt(d) exactly; the rows are orthogonal when d is a
  power of two (then P = d) and only nearly orthogonal otherwise. The entries are computed
  directly, H_P[r, c] = (-1)^popcount(r AND c), so a draw costs O(K d) time and memory with
  no P x P matrix (and no O(d log d) fast transform per row either: each output entry is
  O(1)).
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import scipy.linalg

from ..._validate import RngLike, check_choice, check_int, check_rng

__all__ = ["DIRECTIONS", "DirectionName", "hadamard_entries", "sample_directions"]

DirectionName = Literal["orthogonal", "hadamard", "gaussian"]
DIRECTIONS: tuple[str, ...] = ("orthogonal", "hadamard", "gaussian")


def _orthogonal_block(d: int, rows: int, gen: np.random.Generator) -> np.ndarray:
    """(rows, d) Haar-random orthonormal rows times sqrt(d): O(d rows^2) for rows < d."""
    if 4 * rows <= d:  # Cholesky QR of a tall Gaussian (condition ~1 + 2 sqrt(rows / d) <= 3)
        z = gen.standard_normal((d, rows))
        # Q = Z R^{-1} with R the Cholesky factor of Z^T Z (positive diagonal): the Q of the QR
        # with R's diagonal made positive, i.e. the Haar sample the sign fix below gives (the
        # same Q up to rounding). GEMM-like passes over Z instead of Householder's column
        # sweeps: d = 150528, K = 16, one thread, draw included: 78 ms against 166 ms
        # (d = 10092: 5.1 against 5.3 ms). The repeat (CholQR2) restores orthogonality to
        # rounding.
        qt = z.T
        for _ in range(2):
            low = np.linalg.cholesky(qt @ qt.T)
            qt = scipy.linalg.solve_triangular(low, qt, lower=True, check_finite=False)
        return qt * np.sqrt(d)
    if rows < d:  # thin QR: the first `rows` columns of a Haar matrix
        q, r = np.linalg.qr(gen.standard_normal((d, rows)))
        q *= np.sign(np.diag(r))  # Haar measure (Mezzadri 2007): fix the signs of R's diagonal
        return q.T * np.sqrt(d)
    q, r = np.linalg.qr(gen.standard_normal((d, d)))
    q *= np.sign(np.diag(r))
    pick = gen.choice(d, size=rows, replace=False)
    return q.T[pick] * np.sqrt(d)


def hadamard_entries(rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """Entries H_P[rows][:, cols] of the Sylvester Hadamard matrix as a (len(rows), len(cols))
    float64 array of +-1: H[r, c] = (-1)^popcount(r AND c). O(len(rows) len(cols)), no P x P
    matrix."""
    r = np.asarray(rows, dtype=np.uint64)[:, None]
    c = np.asarray(cols, dtype=np.uint64)[None, :]
    parity = np.bitwise_count(r & c) & np.uint8(1)
    return 1.0 - 2.0 * parity.astype(np.float64)


def _hadamard_block(d: int, rows: int, gen: np.random.Generator) -> np.ndarray:
    p = 1 << max(0, (d - 1).bit_length())
    signs = gen.choice(np.array([-1.0, 1.0]), size=p)
    r = gen.choice(p, size=rows, replace=False)
    c = np.sort(gen.choice(p, size=d, replace=False))
    out = hadamard_entries(r, c)
    out *= signs[c]
    return out


def sample_directions(kind: DirectionName | str, k: int, d: int, rng: RngLike = None) -> np.ndarray:
    """K search directions in R^d as a (K, d) float64 array (see the module docstring).

    ``kind`` is ``"gaussian"``, ``"orthogonal"`` or ``"hadamard"``. For the structured kinds,
    K > d (resp. K > P for Hadamard) takes several independent blocks of at most d (P) rows.
    Cost per draw: gaussian O(K d); hadamard O(K d); orthogonal O(d K^2) for K < d, O(d^3)
    per full block of d rows.
    """
    kind = check_choice(kind, "directions", DIRECTIONS)
    k = check_int(k, "n_directions", low=1)
    d = check_int(d, "dimension", low=1)
    gen = check_rng(rng)
    if kind == "gaussian":
        return gen.standard_normal((k, d))
    block = d if kind == "orthogonal" else 1 << max(0, (d - 1).bit_length())
    make = _orthogonal_block if kind == "orthogonal" else _hadamard_block
    out = []
    left = k
    while left > 0:
        rows = min(left, block)
        out.append(make(d, rows, gen))
        left -= rows
    return np.concatenate(out, axis=0)
