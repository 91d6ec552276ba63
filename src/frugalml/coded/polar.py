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
from ..errors import BackendUnavailableError, InvalidInputError
from . import _polar_kernel
from .base import Decoded, RealLinearCode, check_code_size, check_mask, check_outputs

__all__ = ["KERNELS", "Engine", "PolarCode", "erasure_profile", "polar_transform"]

Engine = Literal["auto", "compiled", "numpy"]

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

    ``u``: (N, *shape); returns a new array of the same shape and dtype. The work is
    O(N log N * block). With numba (extra ``coded``) float arrays are transformed one
    cache-sized column tile at a time, all levels per tile, summing in float64 (one read and
    one write of the data from memory); otherwise each level is a NumPy pass that views the
    data as (2^l, 2, N / 2^{l+1}, -1) and combines the two halves.
    """
    x = np.array(u, copy=True, order="C")  # reshape below must be a view
    n = x.shape[0]
    total = n.bit_length() - 1
    levels = total if levels is None else levels
    if n > 1 and x.size:
        flat = x.reshape(n, -1)
        if _polar_kernel.available() and x.dtype in (np.float32, np.float64):
            _polar_kernel.transform(flat, kernel, levels)  # cached tiles, float64 sums
        else:
            _butterflies_inplace(flat, kernel, levels)
    return x


def _lincomb(a: np.ndarray, ca: float, b: np.ndarray, cb: float, out: np.ndarray) -> None:
    """out = ca a + cb b elementwise, with at most one temporary (``out`` may alias a or b)."""
    if ca == cb:
        np.add(a, b, out=out)
        if ca != 1.0:
            out *= ca
    elif ca == -cb:
        np.subtract(a, b, out=out)
        if ca != 1.0:
            out *= ca
    elif cb == 0.0:
        np.multiply(a, ca, out=out)
    elif ca == 0.0:
        np.multiply(b, cb, out=out)
    elif abs(cb) == 1.0 and out is not b:
        np.multiply(a, ca, out=out)
        (np.add if cb > 0 else np.subtract)(out, b, out=out)
    elif abs(ca) == 1.0 and out is not a:
        np.multiply(b, cb, out=out)
        (np.add if ca > 0 else np.subtract)(out, a, out=out)  # cb b + a  or  cb b - a
    elif out is b:
        out *= cb
        out += ca * a
    else:
        tmp = cb * b
        np.multiply(a, ca, out=out)
        out += tmp


def _butterflies_inplace(flat: np.ndarray, kernel: np.ndarray, levels: int) -> None:
    """Apply ``levels`` butterfly passes of ``kernel`` to (M, P) ``flat`` in place."""
    m = flat.shape[0]
    (f00, f01), (f10, f11) = kernel
    for lev in range(levels):
        view = flat.reshape(1 << lev, 2, m >> (lev + 1), flat.shape[1])
        top, bot = view[:, 0], view[:, 1]
        old_top = top.copy()
        _lincomb(top, f00, bot, f10, top)
        _lincomb(old_top, f01, bot, f11, bot)


class PolarCode(RealLinearCode):
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
        check_code_size(self.n, self.n, f"a polar code with N={self.n}")
        # polar_transform acts on axis 0 as x = G^T u; applied to I it yields G^T.
        return polar_transform(np.eye(self.n), self.kernel, self.levels).T

    @cached_property
    def generator(self) -> np.ndarray:
        """(K, N) effective generator including signs and the worker permutation."""
        g = self.full_generator[self.data_positions] * self.signs[:, None]
        return g[:, self.permutation]

    # -- encoding -----------------------------------------------------------------------
    def encode(self, blocks: np.ndarray) -> np.ndarray:
        """(K, *shape) -> (N, *shape) worker blocks, in O(N log N) block operations (with
        numba: one fused pass per cache-sized column tile, summing in float64)."""
        u = self._check_blocks(blocks)
        if _polar_kernel.available() and u.dtype in (np.float32, np.float64) and u.size:
            dest = np.empty(self.n, dtype=np.int64)
            dest[self.permutation] = np.arange(self.n)  # worker j holds codeword row perm[j]
            flat = np.ascontiguousarray(u.reshape(self.k, -1))
            out = _polar_kernel.encode(flat, self.data_positions, self.signs, dest, self.n,
                                       self.kernel, self.levels)  # fmt: skip
            return out.reshape(self.n, *u.shape[1:])
        full = np.zeros((self.n, *u.shape[1:]), dtype=u.dtype)
        full[self.data_positions] = u * self.signs.astype(u.dtype).reshape(
            -1, *([1] * (u.ndim - 1))
        )
        return polar_transform(full, self.kernel, self.levels)[self.permutation]

    # -- decoding -----------------------------------------------------------------------
    def _codeword_mask(self, mask: np.ndarray) -> np.ndarray:
        known = np.zeros(self.n, dtype=bool)
        known[self.permutation] = mask
        return known

    def known_blocks(self, mask: np.ndarray) -> np.ndarray:
        """(K,) bool: data blocks SC recovers from the arrived set (no data touched)."""
        mask = check_mask(mask, self.n)
        xk = self._codeword_mask(mask)
        if _polar_kernel.available():  # the compiled plan: no Python recursion
            uk = _polar_kernel.plan(xk, self.frozen, self.levels, self.kernel).known
        else:
            uk, _ = self._sc_mask(xk, self.frozen, 0)
        return uk[self.data_positions]

    def decodable(self, mask: np.ndarray) -> bool:
        """Whether SC decoding recovers every data block from the arrived set."""
        return bool(self.known_blocks(mask).all())

    def decodable_many(self, masks: np.ndarray) -> np.ndarray:
        """(B,) bool: :meth:`decodable` for each row of ``masks`` (B, N), in one pass.

        The boolean SC recursion runs once on (N, B) columns, so its per-node Python overhead
        is paid once for all B sets: O(N log N B) element operations, ~2N node visits.
        """
        masks = np.asarray(masks)
        if masks.ndim != 2 or masks.shape[1] != self.n or masks.dtype != bool:
            raise InvalidInputError(f"masks must be a bool array of shape (B, {self.n})")
        if masks.shape[0] == 0:
            return np.zeros(0, dtype=bool)
        known = np.zeros((self.n, masks.shape[0]), dtype=bool)
        known[self.permutation] = masks.T
        uk, _ = self._sc_mask(known, self.frozen, 0)
        return uk[self.data_positions].all(axis=0)

    def decode(self, outputs: np.ndarray, mask: np.ndarray, *, engine: Engine = "auto") -> Decoded:
        """Successive-cancellation decoding; partial when the set is not decodable.

        ``outputs``: (N, *shape) in worker order, rows of non-arrived workers ignored.
        Returns ``Decoded`` with the (K, *shape) blocks and the (K,) known mask.

        ``engine``: ``"compiled"`` (numba, extra ``coded``) plans the decoding once from the
        mask and runs it on cache-sized column tiles in float64: one read of the outputs and
        one write of the blocks from main memory, float32 outputs decoded in float64.
        ``"numpy"`` works in place on one copy of the outputs plus N rows of scratch, a few
        vectorised passes per butterfly level, in the outputs' dtype. ``"auto"`` (default)
        is compiled when numba is installed. Both make the same choices: a bottom-half row
        whose two butterfly outputs arrived is recovered by the direct inverse, without the
        top half's re-encoding, which is what keeps the error from compounding with depth
        (see docs/coded.md, "Accuracy of SC over the reals").
        """
        mask = check_mask(mask, self.n)
        y = check_outputs(outputs, self.n, mask)
        engine = check_choice(engine, "engine", ("auto", "compiled", "numpy"))
        if engine == "compiled" and not _polar_kernel.available():
            raise BackendUnavailableError("the compiled polar decoder", "numba", "coded")
        xk = self._codeword_mask(mask)
        compiled = engine == "compiled" or (engine == "auto" and _polar_kernel.available())
        if compiled and np.issubdtype(y.dtype, np.floating) and y.dtype.itemsize >= 4:
            return self._decode_compiled(y, mask, xk)
        inv = np.empty(self.n, dtype=np.intp)
        inv[self.permutation] = np.arange(self.n)
        x = y.reshape(self.n, -1)[inv]  # codeword order; a fresh copy we may overwrite
        x[~xk] = 0.0
        u = np.empty_like(x)
        width = x.shape[1]
        scratch = [np.empty((self.n >> (d + 1), width), x.dtype) for d in range(self.levels)]
        uk, _ = self._sc_num(x, xk, self.frozen, 0, u, False, scratch)
        known = uk[self.data_positions]
        blocks = u[self.data_positions]
        blocks *= self.signs[:, None].astype(u.dtype)
        blocks[~known] = 0.0
        return Decoded(blocks.reshape(self.k, *y.shape[1:]), known, int(mask.sum()), "sc")

    def _decode_compiled(self, y: np.ndarray, mask: np.ndarray, xk: np.ndarray) -> Decoded:
        p = _polar_kernel.plan(xk, self.frozen, self.levels, self.kernel)
        src = np.full(self.n, -1, dtype=np.int64)
        src[self.permutation[mask]] = np.flatnonzero(mask)  # codeword row <- worker row
        flat = np.ascontiguousarray(y.reshape(self.n, -1))
        blocks = _polar_kernel.decode(p, flat, src, self.data_positions, self.signs, self.kernel)
        known = p.known[self.data_positions]
        blocks[~known] = 0.0
        return Decoded(blocks.reshape(self.k, *y.shape[1:]), known, int(mask.sum()), "sc")

    # The mask logic of one butterfly node, shared by the boolean and the numeric decoder.
    # x_top = f00 v_top + f10 v_bot ; x_bot = f01 v_top + f11 v_bot.
    def _bottom_sources(self, kt, kb, vtk):
        """Rows of the bottom child's observations by source: ``both`` outputs known (the
        direct inverse, which does not use the top child's re-encoding ``v_top``), else from
        the top output, else from the bottom one (both through ``v_top``)."""
        (f00, f01), (f10, f11) = self.kernel
        none = np.zeros(kt.shape, dtype=bool)
        both = kt & kb
        from_top = kt & ~both & (vtk | (f00 == 0)) if f10 != 0 else none
        from_bot = kb & ~both & (vtk | (f01 == 0)) & ~from_top if f11 != 0 else none
        return both, from_top, from_bot

    def _reencoded_known(self, vtk, vbk):
        (f00, f01), (f10, f11) = self.kernel
        need_t = (vtk if f00 != 0 else True) & (vbk if f10 != 0 else True)
        need_b = (vtk if f01 != 0 else True) & (vbk if f11 != 0 else True)
        shape = vtk.shape
        return np.concatenate([np.broadcast_to(need_t, shape), np.broadcast_to(need_b, shape)])

    def _sc_mask(self, xk, frozen, depth):
        """Known masks only: (uk, vk) of this node's input and re-encoded codeword.

        ``xk`` (M,) for one arrived set or (M, B) for B sets at once (columns)."""
        if frozen.all() or (not frozen.any() and xk.all()):  # rate 0, or rate 1 all known
            ones = np.ones(xk.shape, dtype=bool)
            return ones, ones
        if depth == self.levels:
            uk = frozen.reshape(frozen.shape + (1,) * (xk.ndim - 1)) | xk
            return uk, uk
        h = xk.shape[0] // 2
        kt, kb = xk[:h], xk[h:]
        ukt, vtk = self._sc_mask(kt & kb, frozen[:h], depth + 1)
        both, from_top, from_bot = self._bottom_sources(kt, kb, vtk)
        ukb, vbk = self._sc_mask(both | from_top | from_bot, frozen[h:], depth + 1)
        return np.concatenate([ukt, ukb]), self._reencoded_known(vtk, vbk)

    def _sc_num(self, x, xk, frozen, depth, u_out, need_v, scratch):
        """Numeric SC on one node, in place.

        ``x`` (M, P): observations, zero where unknown; overwritten, and on return holds the
        node's re-encoded codeword when ``need_v``. ``u_out`` (M, P) receives the decoded
        input (zero where unknown). ``scratch[depth]`` is this depth's work buffer.
        Returns the known masks (uk, vk).
        """
        m = xk.shape[0]
        if frozen.all():  # rate 0: all zero (u_out is never read at frozen positions)
            if need_v:
                x[...] = 0.0
            ones = np.ones(m, dtype=bool)
            return ones, ones
        if depth == self.levels:  # identity on every position
            uk = frozen | xk
            data = ~frozen
            u_out[data] = np.where(xk[data, None], x[data], 0.0)
            if need_v:
                x[frozen] = 0.0
            return uk, uk
        # Rate 1, fully observed: invert the transform. (A fully observed node with frozen
        # positions is not shortcut: re-encoding with those set to exactly 0 removes part of
        # the observation noise before the parent uses it.)
        if not frozen.any() and xk.all():
            np.copyto(u_out, x)
            _butterflies_inplace(u_out, self._kinv, self.levels - depth)
            ones = np.ones(m, dtype=bool)
            return ones, ones
        (f00, f01), (f10, f11) = self.kernel
        i00, i10 = self._kinv[:, 0]  # u = x F^{-1}: v_top = i00 x_top + i10 x_bot
        h = m // 2
        xt, xb = x[:h], x[h:]
        kt, kb = xk[:h], xk[h:]
        both = kt & kb
        obs = scratch[depth][:h]
        _lincomb(xt, i00, xb, i10, obs)
        if not both.all():
            obs[~both] = 0.0
        ukt, vtk = self._sc_num(obs, both, frozen[:h], depth + 1, u_out[:h], True, scratch)
        vt = obs  # now holds the top child's re-encoding
        both, from_top, from_bot = self._bottom_sources(kt, kb, vtk)
        kvb = both | from_top | from_bot
        i01, i11 = self._kinv[:, 1]
        direct = i01 * xt[both] + i11 * xb[both] if both.any() else None  # v_bot, exactly
        # bottom observations over x_bot: (x_top - f00 v_top)/f10 or (x_bot - f01 v_top)/f11.
        # One dense pass for the larger source, a gather/scatter for the other's rows only.
        if from_top.sum() >= from_bot.sum():
            rows = np.flatnonzero(from_bot)
            fix = (xb[rows] - f01 * vt[rows]) / f11 if rows.size else None
            _lincomb(xt, 1.0 / f10, vt, -f00 / f10, xb)
            if fix is not None:
                xb[rows] = fix
        else:
            rows = np.flatnonzero(from_top)
            fix = (xt[rows] - f00 * vt[rows]) / f10 if rows.size else None
            _lincomb(xb, 1.0 / f11, vt, -f01 / f11, xb)
            if fix is not None:
                xb[rows] = fix
        if direct is not None:
            xb[both] = direct
        if not kvb.all():
            xb[~kvb] = 0.0
        ukb, vbk = self._sc_num(xb, kvb, frozen[h:], depth + 1, u_out[h:], need_v, scratch)
        uk = np.concatenate([ukt, ukb])
        if not need_v:
            return uk, uk  # the caller does not use vk
        # re-encode: x_top = f00 v_top + f10 v_bot ; x_bot = f01 v_top + f11 v_bot
        _lincomb(vt, f00, xb, f10, xt)
        _lincomb(vt, f01, xb, f11, xb)
        vk = self._reencoded_known(vtk, vbk)
        if not vk.all():
            x[~vk] = 0.0
        return uk, vk

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
