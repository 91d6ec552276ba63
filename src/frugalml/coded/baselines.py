"""Baseline codes for straggler-resilient linear computation.

These are the anchors that polar codes are measured against (DESIGN.md, section 6):

- :class:`Uncoded`: one data block per worker; every worker must arrive.
- :class:`Replication`: ``r`` copies of every block; decodes once one copy of each arrived.
- :class:`GaussianMDS`: a real random (systematic) MDS code, the coded-computation scheme of
  Lee et al., "Speeding Up Distributed Machine Learning Using Codes", IEEE T-IT 2018; any K of
  the N outputs decode, at the price of a dense K x K (or e x e) linear solve.
- :class:`VandermondeCode`: the polynomial code of Yu, Maddah-Ali and Avestimehr, "Polynomial
  Codes: an Optimal Design for High-Dimensional Coded Matrix Multiplication", NeurIPS 2017,
  evaluated over the reals. Also MDS, but its Vandermonde systems are exponentially badly
  conditioned in K, which is the point of including it.

Every code follows :class:`~frugalml.coded.base.RealLinearCode`: generator ``G`` of shape (K, N),
codeword ``x = u G`` (``x_j = sum_i G[i, j] u_i``), data blocks of shape (K, *block_shape),
worker outputs of shape (N, *block_shape) and an arrival mask of shape (N,) (bool, or integer
indices of the arrived workers). Rows of erased workers are never read, so they may hold NaN.
Decoders work on the flattened blocks, (rows, prod(block_shape)), so their cost is a handful of
BLAS/LAPACK calls whatever the block shape.
"""

from __future__ import annotations

import math
from functools import cached_property
from typing import Literal

import numpy as np

from .._validate import RngLike, check_choice, check_int, check_rng
from ..errors import InvalidInputError, NotDecodableError
from .base import Decoded, RealLinearCode, check_code_size, check_mask, check_outputs

__all__ = ["GaussianMDS", "Replication", "Uncoded", "VandermondeCode"]

PointSet = Literal["chebyshev", "equispaced"]
_POINT_SETS: tuple[str, ...] = ("chebyshev", "equispaced")


def _check_nk(n: object, k: object) -> tuple[int, int]:
    k_ = check_int(k, "k", low=1)
    n_ = check_int(n, "n", low=1)
    if n_ < k_:
        raise InvalidInputError(
            f"n (number of workers/coded blocks) must be >= k (number of data blocks), "
            f"got n={n_}, k={k_}; use n >= k, e.g. n = 2k for rate 1/2"
        )
    return n_, k_


def _readonly(a: np.ndarray) -> np.ndarray:
    a.flags.writeable = False
    return a


def _flat(a: np.ndarray) -> np.ndarray:
    """(rows, *block_shape) -> (rows, prod(block_shape)), a view when possible."""
    return a.reshape(a.shape[0], math.prod(a.shape[1:]))


def _solve(a: np.ndarray, b: np.ndarray, what: str) -> np.ndarray:
    """Solve ``a x = b`` in float64 (one LAPACK gesv call); singular -> NotDecodableError."""
    try:
        return np.linalg.solve(a.astype(np.float64, copy=False), b.astype(np.float64, copy=False))
    except np.linalg.LinAlgError as exc:  # probability zero for these codes, but be explicit
        raise NotDecodableError(
            f"the {what} system is numerically singular ({exc}); wait for a different set of "
            "workers or use a better-conditioned code"
        ) from exc


class Uncoded(RealLinearCode):
    """No coding: worker ``i`` computes on data block ``i`` (N = K, G = I).

    Shapes: blocks (K, *block_shape) -> outputs (K, *block_shape); mask (K,).

    Decodable iff every worker arrived; a partial decode returns the arrived blocks
    (``known = mask``) and zeros elsewhere. ``encode`` is a copy and ``decode`` one fancy-indexed
    copy: O(K) block copies, no flops. This is the latency baseline of coded computation (Lee et
    al., IEEE T-IT 2018): the job waits for the slowest of K workers.
    """

    def __init__(self, k: int) -> None:
        self.k = check_int(k, "k", low=1)
        self.n = self.k

    @cached_property
    def generator(self) -> np.ndarray:
        """(K, K) identity (read-only)."""
        check_code_size(self.k, self.k, f"an uncoded scheme with {self.k} workers")
        return _readonly(np.eye(self.k))

    def encode(self, blocks: np.ndarray) -> np.ndarray:
        """(K, *shape) -> (K, *shape): a copy of the blocks."""
        return self._check_blocks(blocks).copy()

    def decodable(self, mask: np.ndarray) -> bool:
        return bool(check_mask(mask, self.n).all())

    def decode(self, outputs: np.ndarray, mask: np.ndarray) -> Decoded:
        m = check_mask(mask, self.n)
        y = check_outputs(outputs, self.n, m)
        blocks = np.zeros_like(y)
        blocks[m] = y[m]
        return Decoded(blocks, m.copy(), n_arrived=int(m.sum()), method="uncoded")


class Replication(RealLinearCode):
    """``r``-fold replication: N = r K workers, worker ``j`` holds data block ``j % K``.

    The first K workers hold one copy of each block, the next K another copy, and so on, so
    ``G = [I_K | I_K | ... | I_K]`` (r times), shape (K, rK).

    Shapes: blocks (K, *block_shape) -> outputs (rK, *block_shape); mask (rK,).

    Decodable iff every block has at least one arrived replica. Decoding copies the first
    arrived replica of each block (partial decoding: ``known[i]`` says whether block ``i`` has an
    arrived replica). ``encode`` and ``decode`` are single fancy-indexed copies: rK resp. K block
    copies, no flops. The replication baseline of Lee et al., IEEE T-IT 2018.
    """

    def __init__(self, k: int, r: int = 2) -> None:
        self.k = check_int(k, "k", low=1)
        self.r = check_int(r, "r", low=1)
        self.n = self.r * self.k

    @cached_property
    def generator(self) -> np.ndarray:
        """(K, rK) matrix of r side-by-side identities (read-only)."""
        check_code_size(self.k, self.n, f"{self.r}-replication with {self.n} workers")
        return _readonly(np.tile(np.eye(self.k), (1, self.r)))

    def encode(self, blocks: np.ndarray) -> np.ndarray:
        """(K, *shape) -> (rK, *shape): row ``j`` is block ``j % K``."""
        u = self._check_blocks(blocks)
        return u[np.arange(self.n) % self.k]

    def _replicas(self, m: np.ndarray) -> np.ndarray:
        """(r, K) view of the mask: [copy, block]."""
        return m.reshape(self.r, self.k)

    def decodable(self, mask: np.ndarray) -> bool:
        return bool(self._replicas(check_mask(mask, self.n)).any(axis=0).all())

    def decode(self, outputs: np.ndarray, mask: np.ndarray) -> Decoded:
        m = check_mask(mask, self.n)
        y = check_outputs(outputs, self.n, m)
        rep = self._replicas(m)
        known = rep.any(axis=0)
        # first arrived copy of each block (argmax of a bool column = first True)
        worker = rep.argmax(axis=0) * self.k + np.arange(self.k)
        blocks = np.zeros((self.k, *y.shape[1:]), dtype=y.dtype)
        blocks[known] = y[worker[known]]
        return Decoded(blocks, known, n_arrived=int(m.sum()), method="replication")

    def __repr__(self) -> str:
        return f"Replication(k={self.k}, r={self.r})"


class GaussianMDS(RealLinearCode):
    """Real random MDS code with a Gaussian generator (Lee et al., IEEE T-IT 2018).

    ``systematic=True`` (default): ``G = [I_K | R]`` with ``R`` (K, N-K) i.i.d. N(0, 1/K); the
    first K workers compute on the raw blocks and the other N-K on random combinations.
    ``systematic=False``: ``G`` (K, N) i.i.d. N(0, 1/K). Any K columns of a Gaussian matrix are
    invertible with probability 1, so the code decodes from any K arrivals.

    Shapes: blocks (K, *block_shape) -> outputs (N, *block_shape); mask (N,). Write
    ``m = prod(block_shape)``.

    Encoding: systematic, K block copies plus (N-K) K block axpys (2 (N-K) K m flops, one GEMM);
    non-systematic, 2 N K m flops.

    Decoding, systematic: arrived systematic blocks are taken as they are. For the ``e`` missing
    ones ``M`` the first ``e`` arrived parity outputs ``P`` give the e x e system
    ``R[M][:, P]^T U_M = Y_P - R[known][:, P]^T U_known``, solved by one LAPACK ``gesv`` on the
    flattened (e, m) right-hand side: e (K-e) + e^2 block operations, about
    2 e (K-e) m + 2/3 e^3 + 2 e^2 m flops (nothing at all when no systematic worker straggled).
    Non-systematic: ``G[:, S]^T U = Y_S`` on the first K arrivals ``S``, 2/3 K^3 + 2 K^2 m flops.
    With fewer than K arrivals the decode is partial: the arrived systematic blocks are known,
    the rest are zero (non-systematic: nothing is known).
    """

    def __init__(self, n: int, k: int, rng: RngLike = None, systematic: bool = True) -> None:
        self.n, self.k = _check_nk(n, k)
        if not isinstance(systematic, (bool, np.bool_)):
            raise InvalidInputError(f"systematic must be True or False, got {systematic!r}")
        self.systematic = bool(systematic)
        check_code_size(self.k, self.n, f"a Gaussian MDS code with N={self.n}, K={self.k}")
        gen = check_rng(rng)
        scale = 1.0 / math.sqrt(self.k)
        if self.systematic:
            self._parity = _readonly(gen.standard_normal((self.k, self.n - self.k)) * scale)
            g = np.concatenate([np.eye(self.k), self._parity], axis=1)
        else:
            g = gen.standard_normal((self.k, self.n)) * scale
            self._parity = _readonly(g[:, self.k :].copy())
        self._g = _readonly(g)

    @property
    def generator(self) -> np.ndarray:
        """(K, N) generator (read-only)."""
        return self._g

    @property
    def parity(self) -> np.ndarray:
        """(K, N-K) columns of ``G`` after the first K (``R`` for the systematic code)."""
        return self._parity

    def encode(self, blocks: np.ndarray) -> np.ndarray:
        """(K, *shape) -> (N, *shape)."""
        u = self._check_blocks(blocks)
        uf = _flat(u)
        out = np.empty((self.n, uf.shape[1]), dtype=u.dtype)
        if self.systematic:
            out[: self.k] = uf
            out[self.k :] = self._parity.T.astype(u.dtype, copy=False) @ uf
        else:
            out[:] = self._g.T.astype(u.dtype, copy=False) @ uf
        return out.reshape(self.n, *u.shape[1:])

    def decodable(self, mask: np.ndarray) -> bool:
        return bool(check_mask(mask, self.n).sum() >= self.k)

    def _used_columns(self, m: np.ndarray) -> np.ndarray | None:
        """The K output indices the decoder uses (systematic arrivals first), or None."""
        arrived = np.flatnonzero(m)
        if arrived.size < self.k:
            return None
        if not self.systematic:
            return arrived[: self.k]
        sys_idx = arrived[arrived < self.k]
        e = self.k - sys_idx.size
        return np.concatenate([sys_idx, arrived[arrived >= self.k][:e]])

    def condition_number(self, mask: np.ndarray) -> float:
        """2-norm condition number of ``G[:, S]``, S the K outputs the decoder uses.

        This K x K matrix is what decoding inverts (the systematic decoder only factors its
        e x e block ``R[M][:, P]``, but the map from the used outputs to the blocks is
        ``G[:, S]^{-1}``, so this is the error amplification). 1.0 when every systematic worker
        arrived; ``inf`` with fewer than K arrivals.
        """
        s = self._used_columns(check_mask(mask, self.n))
        if s is None:
            return math.inf
        return float(np.linalg.cond(self._g[:, s]))

    def decode(self, outputs: np.ndarray, mask: np.ndarray) -> Decoded:
        m = check_mask(mask, self.n)
        y = check_outputs(outputs, self.n, m)
        k = self.k
        n_arrived = int(m.sum())
        blocks = np.zeros((k, *y.shape[1:]), dtype=y.dtype)
        if not self.systematic:
            if n_arrived < k:
                return Decoded(blocks, np.zeros(k, bool), n_arrived, "gaussian-mds:partial")
            s = np.flatnonzero(m)[:k]
            sol = _solve(self._g[:, s].T, _flat(y[s]), "Gaussian MDS")
            blocks[:] = sol.reshape(blocks.shape)
            return Decoded(blocks, np.ones(k, bool), n_arrived, "gaussian-mds:solve")

        known = m[:k].copy()
        blocks[known] = y[:k][known]
        if known.all():
            return Decoded(blocks, known, n_arrived, "gaussian-mds:systematic")
        if n_arrived < k:
            return Decoded(blocks, known, n_arrived, "gaussian-mds:partial")
        missing = np.flatnonzero(~known)
        e = missing.size
        par = np.flatnonzero(m[k:])[:e]  # first e arrived parity outputs (columns of R)
        rhs = _flat(y[k + par]).astype(np.float64, copy=False)
        have = np.flatnonzero(known)
        if have.size:
            rhs = rhs - self._parity[np.ix_(have, par)].T @ _flat(blocks[have])
        sol = _solve(self._parity[np.ix_(missing, par)].T, rhs, "Gaussian MDS parity")
        blocks[missing] = sol.reshape(e, *y.shape[1:])
        return Decoded(blocks, np.ones(k, bool), n_arrived, "gaussian-mds:solve")

    def __repr__(self) -> str:
        return f"GaussianMDS(n={self.n}, k={self.k}, systematic={self.systematic})"


class VandermondeCode(RealLinearCode):
    """Polynomial (Vandermonde) code over the reals (Yu, Maddah-Ali, Avestimehr, NeurIPS 2017).

    Worker ``j`` evaluates the polynomial ``p(z) = sum_i u_i z^i`` at a point ``a_j`` in [-1, 1]:
    ``G[i, j] = a_j ** i``, shape (K, N). Points: ``"chebyshev"`` (default),
    ``a_j = cos((2j+1) pi / (2N))``, or ``"equispaced"``, ``N`` evenly spaced points from -1 to 1.

    Shapes: blocks (K, *block_shape) -> outputs (N, *block_shape); mask (N,). With
    ``m = prod(block_shape)``: encoding costs N K block axpys (2 N K m flops); decoding
    interpolates from the first K arrivals by one LAPACK solve of the K x K Vandermonde system,
    about 2/3 K^3 + 2 K^2 m flops.

    The points are distinct, so any K outputs decode in exact arithmetic, but in floating point
    the condition number of a real Vandermonde matrix grows exponentially with K (see
    :meth:`condition_number`): beyond a few tens of blocks the decoded blocks are garbage. That
    is why it is a baseline. The code is not systematic: below K arrivals nothing is known.
    """

    def __init__(self, n: int, k: int, points: PointSet = "chebyshev") -> None:
        self.n, self.k = _check_nk(n, k)
        check_choice(points, "points", _POINT_SETS)
        self.points: PointSet = points
        check_code_size(self.k, self.n, f"a Vandermonde code with N={self.n}, K={self.k}")
        if points == "chebyshev":
            a = np.cos((2 * np.arange(self.n) + 1) * np.pi / (2 * self.n))
        else:
            a = np.linspace(-1.0, 1.0, self.n)
        self._nodes = _readonly(a)
        self._g = _readonly(np.vander(a, self.k, increasing=True).T.copy())

    @property
    def nodes(self) -> np.ndarray:
        """(N,) evaluation points ``a_j`` (read-only)."""
        return self._nodes

    @property
    def generator(self) -> np.ndarray:
        """(K, N) generator ``G[i, j] = a_j ** i`` (read-only)."""
        return self._g

    def decodable(self, mask: np.ndarray) -> bool:
        return bool(check_mask(mask, self.n).sum() >= self.k)

    def condition_number(self, mask: np.ndarray) -> float:
        """2-norm condition number of the K x K Vandermonde matrix on the first K arrivals.

        ``inf`` with fewer than K arrivals.
        """
        arrived = np.flatnonzero(check_mask(mask, self.n))
        if arrived.size < self.k:
            return math.inf
        return float(np.linalg.cond(self._g[:, arrived[: self.k]]))

    def decode(self, outputs: np.ndarray, mask: np.ndarray) -> Decoded:
        m = check_mask(mask, self.n)
        y = check_outputs(outputs, self.n, m)
        n_arrived = int(m.sum())
        blocks = np.zeros((self.k, *y.shape[1:]), dtype=y.dtype)
        if n_arrived < self.k:
            return Decoded(blocks, np.zeros(self.k, bool), n_arrived, "vandermonde:partial")
        s = np.flatnonzero(m)[: self.k]
        sol = _solve(self._g[:, s].T, _flat(y[s]), "Vandermonde")
        blocks[:] = sol.reshape(blocks.shape)
        return Decoded(blocks, np.ones(self.k, bool), n_arrived, "vandermonde:solve")

    def __repr__(self) -> str:
        return f"VandermondeCode(n={self.n}, k={self.k}, points={self.points!r})"
