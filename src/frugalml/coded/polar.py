"""Real-valued polar codes for straggler-resilient computation.

Bartan & Pilanci, "Straggler Resilient Serverless Computing Based on Polar Codes" (Allerton
2019, arXiv 1901.06811) and "Randomized Polar Codes for Anytime Distributed Machine
Learning" (IEEE JSAIT 2023, arXiv 2309.00682).

K data blocks are placed at the K most reliable of N = 2^n input positions (the others are
frozen to zero) and transformed by G_N = F^{(x)n}, F a 2x2 kernel, in the row convention
x = u G_N. Worker j computes on coded block x_{pi(j)}; a worker that does not report is an
erasure. Over the erasure channel the synthetic channels polarise exactly as in Arikan's
binary case:

    z_N(e) = [ z_{N/2}(2e - e^2) , z_{N/2}(e^2) ]

the first half of the input indices seeing the degraded channel (both halves of a butterfly
needed), the second half the upgraded one. Data positions are the K smallest z_N(e) at the
design erasure probability e.

Decoding is successive cancellation (SC) over the reals: the top half of a node is recovered
where both butterfly outputs are known, re-encoded, then the bottom half from either output.
Rate-0 nodes (all frozen) and fully observed rate-1 nodes are resolved in one step
(simplified SC). Cost: O(N log N) block operations to decode, O(N log N) boolean operations
to test decodability; the encoder is log2 N vectorised butterfly passes.

Kernels: ``"hadamard"`` (1/sqrt 2)[[1, 1], [1, -1]] (orthonormal, condition number 1, the
default), ``"arikan"`` [[1, 0], [1, 1]].
"""

from __future__ import annotations

from functools import cached_property
from typing import Literal

import numpy as np

from .._validate import RngLike, check_choice, check_int, check_probability, check_rng
from ..errors import InvalidInputError
from .base import Decoded, LinearCode, check_mask, check_outputs

__all__ = ["KERNELS", "PolarCode", "erasure_profile", "polar_transform"]

_S = 1.0 / np.sqrt(2.0)
KERNELS: dict[str, np.ndarray] = {
    "hadamard": np.array([[_S, _S], [_S, -_S]]),
    "arikan": np.array([[1.0, 0.0], [1.0, 1.0]]),
}


def erasure_profile(n: int, design_erasure: float, levels: int | None = None) -> np.ndarray:
    """Erasure probabilities z (N,) of the synthetic channels of a length-N polar transform.

    With ``levels`` < log2 N (partial polarisation) only the ``levels`` outermost butterfly
    levels are applied and each of the N / 2^levels inner positions keeps its group's value.
    The recursion is expanded outermost level first, interleaving minus/plus children
    (concatenating them instead would bit-reverse the profile).
    """
    n = check_int(n, "N", low=1)
    if n & (n - 1):
        raise InvalidInputError(f"N must be a power of two, got {n}; pad the block count")
    e = check_probability(design_erasure, "design_erasure")
    total = n.bit_length() - 1
    levels = total if levels is None else check_int(levels, "levels", low=0, high=total)
    z = np.array([e])
    for _ in range(levels):
        z = np.stack([2 * z - z * z, z * z], axis=1).reshape(-1)
    return np.repeat(z, n >> levels)


def polar_transform(u: np.ndarray, kernel: np.ndarray, levels: int | None = None) -> np.ndarray:
    """x = u (F^{(x)levels} (x) I) along axis 0, as ``levels`` butterfly passes.

    ``u``: (N, *shape); returns a new array of the same shape and dtype. Each pass views the
    data as (2^l, 2, N / 2^{l+1}, -1) and combines the two halves, so the work is
    O(N log N * block) with no per-node Python recursion.
    """
    x = np.array(u, copy=True)
    n = x.shape[0]
    total = n.bit_length() - 1
    levels = total if levels is None else levels
    f00, f01, f10, f11 = (float(v) for v in kernel.ravel())
    flat = x.reshape(n, -1)
    for lev in range(levels):
        view = flat.reshape(1 << lev, 2, n >> (lev + 1), flat.shape[1])
        top, bot = view[:, 0], view[:, 1]
        old_top = top.copy()
        # x_top = f00 u_top + f10 u_bot ; x_bot = f01 u_top + f11 u_bot
        top *= f00
        top += f10 * bot
        bot *= f11
        bot += f01 * old_top
    return x


class PolarCode(LinearCode):
    """An (N, K) real polar code with successive-cancellation erasure decoding.

    Parameters
    ----------
    n, k:
        Number of workers N (a power of two) and data blocks K <= N.
    design_erasure:
        Straggler probability the frozen set is designed for.
    kernel:
        ``"hadamard"`` (orthonormal, default) or ``"arikan"``.
    levels:
        Butterfly levels applied (partial polarisation); default all log2 N.
    randomize:
        Random +-1 signs on the data blocks and a random worker-to-codeword permutation
        (from ``rng``), which make every arrived subset a subsampled randomized Hadamard
        sketch (needed by the anytime estimator's error law).
    rng:
        Seed or generator for the randomisation.

    Attributes
    ----------
    data_positions: (K,) sorted input indices that carry data.
    profile: (N,) erasure probabilities of the synthetic channels.
    signs: (K,) +-1 per data block.
    permutation: (N,) worker j holds codeword position ``permutation[j]``.
    """

    def __init__(
        self,
        n: int,
        k: int,
        *,
        design_erasure: float = 0.5,
        kernel: Literal["hadamard", "arikan"] = "hadamard",
        levels: int | None = None,
        randomize: bool = True,
        rng: RngLike = None,
    ):
        self.n = check_int(n, "N", low=1)
        self.k = check_int(k, "K", low=1)
        if self.k > self.n:
            raise InvalidInputError(f"K={self.k} exceeds N={self.n}: need K <= N data blocks")
        self.kernel_name = check_choice(kernel, "kernel", KERNELS)
        self.kernel = KERNELS[kernel]
        self.design_erasure = check_probability(design_erasure, "design_erasure")
        self.profile = erasure_profile(self.n, self.design_erasure, levels)
        self.levels = (self.n.bit_length() - 1) if levels is None else int(levels)
        # K most reliable positions; ties broken towards higher index (more "plus" steps).
        order = np.lexsort((-np.arange(self.n), self.profile))
        self.data_positions = np.sort(order[: self.k])
        self.frozen = np.ones(self.n, dtype=bool)
        self.frozen[self.data_positions] = False
        gen = check_rng(rng)
        if randomize:
            self.signs = gen.choice(np.array([-1.0, 1.0]), size=self.k)
            self.permutation = gen.permutation(self.n)
        else:
            self.signs = np.ones(self.k)
            self.permutation = np.arange(self.n)
        self._kinv = np.linalg.inv(self.kernel)

    # -- generator ----------------------------------------------------------------------
    @cached_property
    def full_generator(self) -> np.ndarray:
        """(N, N) transform F^{(x)levels} (x) I, rows = input positions, cols = codeword."""
        # polar_transform acts on axis 0 as x = G^T u; applied to I it yields G^T.
        return polar_transform(np.eye(self.n), self.kernel, self.levels).T

    @cached_property
    def generator(self) -> np.ndarray:
        """(K, N) effective generator including signs and the worker permutation."""
        g = self.full_generator[self.data_positions] * self.signs[:, None]
        return g[:, self.permutation]

    # -- encoding -----------------------------------------------------------------------
    def encode(self, blocks: np.ndarray) -> np.ndarray:
        """(K, *shape) -> (N, *shape) worker blocks, in O(N log N) block operations."""
        u = self._check_blocks(blocks)
        full = np.zeros((self.n, *u.shape[1:]), dtype=u.dtype)
        full[self.data_positions] = u * self.signs.reshape(-1, *([1] * (u.ndim - 1)))
        return polar_transform(full, self.kernel, self.levels)[self.permutation]

    # -- decoding -----------------------------------------------------------------------
    def _codeword_mask(self, mask: np.ndarray) -> np.ndarray:
        known = np.zeros(self.n, dtype=bool)
        known[self.permutation] = mask
        return known

    def known_blocks(self, mask: np.ndarray) -> np.ndarray:
        """(K,) bool: data blocks SC recovers from the arrived set (no data touched)."""
        mask = check_mask(mask, self.n)
        uk, _ = self._sc(None, self._codeword_mask(mask), self.frozen, 0)
        return uk[self.data_positions]

    def decodable(self, mask: np.ndarray) -> bool:
        """Whether SC decoding recovers every data block from the arrived set."""
        return bool(self.known_blocks(mask).all())

    def decode(self, outputs: np.ndarray, mask: np.ndarray) -> Decoded:
        """Successive-cancellation decoding; partial when the set is not decodable.

        ``outputs``: (N, *shape) in worker order, rows of non-arrived workers ignored.
        Returns ``Decoded`` with the (K, *shape) blocks and the (K,) known mask.
        """
        mask = check_mask(mask, self.n)
        y = check_outputs(outputs, self.n, mask)
        xk = self._codeword_mask(mask)
        x = np.zeros((self.n, *y.shape[1:]), dtype=y.dtype)
        x[self.permutation[mask]] = y[mask]
        flat = x.reshape(self.n, -1)
        uk, (u, _, _) = self._sc(flat, xk, self.frozen, 0)
        blocks = u[self.data_positions] * self.signs[:, None]
        known = uk[self.data_positions]
        blocks[~known] = 0.0
        return Decoded(blocks.reshape(self.k, *y.shape[1:]), known, int(mask.sum()), "sc")

    def _sc(self, x, xk, frozen, depth):
        """SC on one node. ``x`` (M, P) with zeros where unknown, or None (masks only).

        Returns ``(uk, vk)`` in mask-only mode, else ``(uk, (u, v, vk))`` where u is the
        decoded input, v its re-encoding (this node's codeword), with known masks.
        """
        m = xk.shape[0]
        numeric = x is not None
        if frozen.all():  # rate 0: everything is zero and known
            ones = np.ones(m, dtype=bool)
            if not numeric:
                return ones, ones
            z = np.zeros_like(x)
            return ones, (z, z, ones)
        if depth == self.levels:  # no butterflies left: identity on every position
            uk = frozen | xk
            if not numeric:
                return uk, uk
            u = np.where(frozen[:, None], 0.0, x)
            return uk, (u, u, uk)
        if not frozen.any() and xk.all():  # rate 1, fully observed: invert the transform
            ones = np.ones(m, dtype=bool)
            if not numeric:
                return ones, ones
            u = polar_transform(x, self._kinv, self.levels - depth)
            return ones, (u, x, ones)

        (f00, f01), (f10, f11) = self.kernel
        i00, i10 = self._kinv[:, 0]  # u = x F^{-1}: v_top = i00 x_top + i10 x_bot
        h = m // 2
        kt, kb = xk[:h], xk[h:]
        both = kt & kb
        if numeric:
            xt, xb = x[:h], x[h:]
            obs_t = i00 * xt + i10 * xb
            obs_t[~both] = 0.0
            ukt, (ut, vt, vtk) = self._sc(obs_t, both, frozen[:h], depth + 1)
        else:
            ukt, vtk = self._sc(None, both, frozen[:h], depth + 1)
        # bottom: v_bot = (x_top - f00 v_top) / f10  or  (x_bot - f01 v_top) / f11
        from_top = kt & (vtk | (f00 == 0)) if f10 != 0 else np.zeros(h, dtype=bool)
        from_bot = kb & (vtk | (f01 == 0)) & ~from_top if f11 != 0 else np.zeros(h, dtype=bool)
        kvb = from_top | from_bot
        if numeric:
            obs_b = np.zeros_like(xt)
            if from_top.any():
                obs_b[from_top] = (xt[from_top] - f00 * vt[from_top]) / f10
            if from_bot.any():
                obs_b[from_bot] = (xb[from_bot] - f01 * vt[from_bot]) / f11
            ukb, (ub, vb, vbk) = self._sc(obs_b, kvb, frozen[h:], depth + 1)
        else:
            ukb, vbk = self._sc(None, kvb, frozen[h:], depth + 1)
        # re-encode this node's codeword for the parent
        need_t = (vtk if f00 != 0 else True) & (vbk if f10 != 0 else True)
        need_b = (vtk if f01 != 0 else True) & (vbk if f11 != 0 else True)
        uk = np.concatenate([ukt, ukb])
        vk = np.concatenate([np.broadcast_to(need_t, (h,)), np.broadcast_to(need_b, (h,))])
        if not numeric:
            return uk, vk
        v = np.empty_like(x)
        np.multiply(vt, f00, out=v[:h])
        v[:h] += f10 * vb
        np.multiply(vt, f01, out=v[h:])
        v[h:] += f11 * vb
        v[~vk] = 0.0
        return uk, (np.concatenate([ut, ub]), v, vk)

    def decode_lstsq(self, outputs: np.ndarray, mask: np.ndarray) -> Decoded:
        """Least-squares decoding from G[S, D]: recovers every block in the row space of the
        arrived rows (all blocks when G[S, D] has full column rank, even where SC fails).

        Cost O(|S| K^2 + |S| K P) for P numbers per block (an SVD of the |S| x K system).
        """
        mask = check_mask(mask, self.n)
        y = check_outputs(outputs, self.n, mask)
        sol, known, _ = self.min_norm_solution(y, mask)
        sol[~known] = 0.0
        return Decoded(sol, known, int(mask.sum()), "lstsq")

    def min_norm_solution(
        self, outputs: np.ndarray, mask: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, int]:
        """Minimum-norm least-squares solution U of G[:, S]^T U = Y_S (validated inputs).

        Returns ``(blocks (K, *shape), identifiable (K,) bool, rank)``. Block i is
        identifiable (hence exact) iff e_i lies in the row space, i.e. every null-space vector
        of G[:, S]^T vanishes at i.
        """
        shape = outputs.shape[1:]
        a = self.generator[:, mask].T  # (|S|, K)
        if a.shape[0] == 0:
            return np.zeros((self.k, *shape), dtype=outputs.dtype), np.zeros(self.k, bool), 0
        flat = outputs[mask].reshape(a.shape[0], -1).astype(np.float64, copy=False)
        u_svd, s, vt = np.linalg.svd(a, full_matrices=True)  # vt (K, K): null space too
        tol = s.max() * max(a.shape) * np.finfo(float).eps
        r = int((s > tol).sum())
        sol = vt[:r].T @ ((u_svd[:, :r].T @ flat) / s[:r, None])
        null = vt[r:]
        known = np.all(np.abs(null) < 1e-9, axis=0) if null.size else np.ones(self.k, bool)
        return sol.reshape(self.k, *shape).astype(outputs.dtype, copy=False), known, r
