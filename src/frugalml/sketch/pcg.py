"""Preconditioned conjugate gradients on the normal equations with fused, blocked passes.

Solves ``(A^T A + lam I) x = A^T b`` given a right preconditioner ``M`` (d, r) with
``A M`` well conditioned (from :class:`~frugalml.sketch.lstsq.SketchedFactor`: ``M = R^{-1}``
for the R factor of a sketch ``S A``). CG runs on ``M^T (A^T A + lam I) M z = M^T A^T b`` --
the conjugate gradient method of Hestenes & Stiefel (1952) applied to the normal equations
(CGNR), preconditioned as in Rokhlin & Tygert (PNAS 2008) and Avron, Maymounkov & Toledo
(Blendenpik, SISC 2010), warm-started from the sketch-and-solve answer as Meier,
Nakatsukasa, Townsend & Webb (SIMAX 2024) recommend.

The point is memory traffic. LSQR needs ``A v`` and ``A^T u`` separately, two passes over
``A`` per iteration; CG needs only ``A^T (A y)``, which :func:`gram_matvec` computes in one
pass: for each block ``A_i`` of ``block`` rows, ``A_i^T (A_i y)`` while ``A_i`` sits in cache
(measured 33 ms against 2 x 26 ms for two full ``gemv`` at n = 100000, d = 500, one thread).
Krylov spaces and hence iteration counts are those of LSQR in exact arithmetic.

Accuracy (iterative refinement): the CG residual is updated recursively, so it drifts from the
true one; every round ends by recomputing the true gradient ``A^T (b - A x) - lam x`` in
float64 (:func:`normal_residual`, also one fused pass) and the solve stops only when the
*true* preconditioned gradient meets the tolerance. Otherwise CG restarts from the refreshed
gradient (another round). Stopping rule: ``||M^T g|| <= tol * ||r||`` with
``||r||^2 = ||b - A x||^2 + lam ||x||^2``; since ``A M`` has singular values in
``[1 - eps, 1 + eps]`` for an ``eps``-embedding, ``||M^T g||`` equals the residual-space error
``||[A; sqrt(lam) I](x - x*)||`` up to that factor, so ``tol`` bounds the relative error
``||A (x - x*)|| / ||r*||`` (about ``tol`` when the fit is not exact).

Cost per iteration: one pass over ``A`` (``2 nnz(A)`` multiply-adds) plus two triangular solves
with ``R`` (``2 d^2``).

Kernels: with numba installed (extra ``coded``) a dense C-contiguous float64 ``A`` is passed
over by compiled row kernels (:mod:`._pcg_jit`, four rows per step, no Python loop; measured
33 ms against 37 ms for the 128-row NumPy loop and 27-28 ms for one plain ``gemv`` at
n = 100000, d = 500, one thread) when it has at least :data:`JIT_MIN_ENTRIES` entries and numba
is already imported in the process, or at least :data:`JIT_COLD_ENTRIES` (where one solve repays
loading numba); otherwise the NumPy blocked loop below runs. :func:`warm_jit` loads the kernels
up front (a long-lived process, a benchmark). Both compute the same sums up to rounding.
"""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Callable
from functools import cache

import numpy as np
import scipy.sparse as sp

__all__ = ["BLOCK_ROWS", "JIT_COLD_ENTRIES", "JIT_MIN_ENTRIES", "gram_matvec", "jit_available",
           "normal_residual", "pcg_normal", "warm_jit"]  # fmt: skip

#: rows per block of a fused pass: a 128 x d float64 block (0.5 MB at d = 500) stays in the
#: 2 MB L2 cache between its two uses; 64-256 measured within 5% of each other, 1024 was 35%
#: slower (n = 100000, d = 500, one thread)
BLOCK_ROWS = 128


#: the compiled kernels run for dense A with at least this many entries (below, a pass takes
#: under a millisecond either way) once numba is imported in the process
JIT_MIN_ENTRIES = 1_000_000
#: ... and import numba themselves only for A with at least this many entries: loading numba
#: and the cached kernels costs about 0.3 s per process (1.1-1.6 s the very first time, when
#: they compile), while the kernels save about 4 ms per pass at 5e7 entries (33 against 37 ms,
#: n = 100000, d = 500, one thread), i.e. ~0.08 s per 19-pass solve: a single solve repays the
#: load from about 2e8 entries (1.6 GB)
JIT_COLD_ENTRIES = 200_000_000


@cache  # find_spec costs ~40 us: too much for a per-decode check
def jit_available() -> bool:
    """Whether numba is installed (the compiled fused passes are usable)."""
    return importlib.util.find_spec("numba") is not None


@cache
def _jit_module():
    from . import _pcg_jit  # numba compiles (or loads its disk cache) on first use

    return _pcg_jit


def warm_jit() -> bool:
    """Import numba and load (or compile) the fused-pass kernels now, so that every later pass
    over a dense ``A`` of at least :data:`JIT_MIN_ENTRIES` entries uses them. Returns whether
    numba is available."""
    if not jit_available():
        return False
    mod = _jit_module()
    a, y, out = np.ones((5, 3)), np.ones(3), np.empty(3)
    mod.gram(a, y, out)
    mod.residual(a, np.ones(5), y, out)
    return True


def _use_jit(a, jit: bool | None, block: int | None) -> bool:
    if jit is False or sp.issparse(a):
        return False
    ok = a.dtype == np.float64 and a.flags.c_contiguous and jit_available()
    if jit is None:  # auto: large A, no explicit block size asked for
        loaded = "numba" in sys.modules
        need = JIT_MIN_ENTRIES if loaded else max(JIT_MIN_ENTRIES, JIT_COLD_ENTRIES)
        return ok and block is None and a.size >= need
    return ok


def _block_rows(d: int, block: int | None) -> int:
    if block is not None:
        return block
    # keep a block near 0.5 MB whatever d is
    return max(16, min(4096, (BLOCK_ROWS * 500) // max(d, 1)))


def gram_matvec(
    a, y: np.ndarray, lam: float = 0.0, block: int | None = None, *, jit: bool | None = None
) -> np.ndarray:
    """``A^T (A y) + lam y`` (d,) for ``A`` (n, d) dense or scipy.sparse, ``y`` (d,).

    Dense ``A`` is read once: by the compiled kernel (``jit=None``: when numba is installed,
    ``A`` is C-contiguous float64, large enough (module docstring) and ``block`` is ``None``;
    ``jit=True``: whenever numba and the layout allow; ``False``: never) or
    ``block`` rows at a time (``None``: about 0.5 MB per block; ``block >= n``: two plain
    ``gemv``). Cost ``4 n d`` flops, one pass over ``A``.
    """
    n, d = a.shape
    if _use_jit(a, jit, block):
        out = np.empty(d)
        _jit_module().gram(a, np.ascontiguousarray(y, dtype=np.float64), out)
    elif sp.issparse(a):
        out = np.asarray(a.T @ (a @ y)).ravel()
    else:
        blk_rows = _block_rows(d, block)
        if blk_rows >= n:
            out = a.T @ (a @ y)
        else:
            out = np.zeros(d)
            for i in range(0, n, blk_rows):
                blk = a[i : i + blk_rows]
                out += blk.T @ (blk @ y)
    if lam > 0:
        out = out + lam * y
    return out


def normal_residual(
    a,
    b: np.ndarray,
    x: np.ndarray,
    lam: float = 0.0,
    block: int | None = None,
    *,
    jit: bool | None = None,
) -> tuple[np.ndarray, float]:
    """``g = A^T (b - A x) - lam x`` (d,) and ``sqrt(||b - A x||^2 + lam ||x||^2)``, in one
    pass over dense ``A`` (compiled or blocked, as :func:`gram_matvec` chooses; the residual is
    recomputed, not updated). Cost ``4 n d``."""
    n, d = a.shape
    if _use_jit(a, jit, block):
        g = np.empty(d)
        rr = float(
            _jit_module().residual(
                a, np.ascontiguousarray(b, dtype=np.float64),
                np.ascontiguousarray(x, dtype=np.float64), g,
            )
        )  # fmt: skip
    elif sp.issparse(a):
        resid = b - a @ x
        g = np.asarray(a.T @ resid).ravel()
        rr = float(resid @ resid)
    else:
        blk_rows = _block_rows(d, block)
        if blk_rows >= n:
            resid = b - a @ x
            g = a.T @ resid
            rr = float(resid @ resid)
        else:
            g = np.zeros(d)
            rr = 0.0
            for i in range(0, n, blk_rows):
                blk = a[i : i + blk_rows]
                r_i = b[i : i + blk_rows] - blk @ x
                g += blk.T @ r_i
                rr += float(r_i @ r_i)
    if lam > 0:
        g = g - lam * x
        rr += lam * float(x @ x)
    return g, float(np.sqrt(rr))


def pcg_normal(
    a,
    b: np.ndarray,
    x0: np.ndarray,
    precond: Callable[[np.ndarray], np.ndarray],
    precond_t: Callable[[np.ndarray], np.ndarray],
    *,
    lam: float = 0.0,
    tol: float = 1e-10,
    maxiter: int = 200,
    max_rounds: int = 4,
    floor: float = 0.0,
    block: int | None = None,
    jit: bool | None = None,
) -> tuple[np.ndarray, int, bool, float, tuple[float, ...]]:
    """Preconditioned CG on the normal equations from ``x0`` (module docstring).

    ``precond(z)``: ``M z`` (d,) for ``z`` (r,); ``precond_t(v)``: ``M^T v`` (r,) for ``v`` (d,).
    ``maxiter`` counts CG iterations over all rounds; ``max_rounds`` bounds the refinement
    rounds (true-gradient recomputations); a round that does not halve the true
    ``||M^T g|| / ||r||`` ends the solve (rounding floor reached). Unless ``tol`` was met, the
    iterate with the smallest true value is returned and counts as converged when that value is
    at most ``floor`` (the caller's attainable accuracy, e.g. ``eps cond(A)``: no
    backward-stable solver gets closer; ``0``: only ``tol`` counts). Returns ``(x, iterations,
    converged, residual_norm, history)`` where ``history`` holds ``||M^T g|| / ||r||`` per iteration
    (recursive estimate within a round, the true value at each round's start) and
    ``residual_norm = sqrt(||b - A x||^2 + lam ||x||^2)`` of the returned ``x`` (from its
    last true-gradient pass). ``block``/``jit``: how each pass runs (:func:`gram_matvec`).
    Cost: ``iterations + rounds`` passes over ``A``.
    """
    x = np.array(x0, dtype=np.float64, copy=True)
    b_norm = float(np.linalg.norm(b))
    tiny = np.finfo(float).tiny
    history: list[float] = []
    its = rounds = 0
    g, rnorm = normal_residual(a, b, x, lam, block, jit=jit)
    converged = False
    best: tuple[float, np.ndarray, float] | None = None
    prev = np.inf
    while True:
        s = precond_t(g)
        snorm = float(np.linalg.norm(s))
        target = tol * rnorm
        crit = snorm / max(rnorm, tiny)
        history.append(crit)
        if best is None or crit < best[0]:
            best = (crit, x.copy(), rnorm)
        # ||M^T g|| small relative to ||r||, or an exact fit (r ~ 0 relative to b)
        if snorm <= target or rnorm <= tol * b_norm:
            converged = True
            break
        # a whole round that did not halve the true gradient: the rounding floor (or a
        # preconditioner too poor to help): more rounds would not help
        if not crit <= 0.5 * prev or rounds >= max_rounds or its >= maxiter:
            break
        prev = crit
        rounds += 1
        p = s.copy()
        ss = snorm * snorm
        while its < maxiter:
            y = precond(p)
            w = precond_t(gram_matvec(a, y, lam, block, jit=jit))
            pw = float(p @ w)
            if not pw > 0.0:  # breakdown: numerically singular direction, refresh
                break
            alpha = ss / pw
            x += alpha * y
            s -= alpha * w
            its += 1
            ss_new = float(s @ s)
            history.append(np.sqrt(ss_new) / max(rnorm, tiny))
            if np.sqrt(ss_new) <= 0.5 * target:
                break
            p *= ss_new / ss
            p += s
            ss = ss_new
        g, rnorm = normal_residual(a, b, x, lam, block, jit=jit)
    if not converged:  # the best true gradient seen; within the floor counts as converged
        crit, x, rnorm = best
        converged = bool(crit <= floor)
    return x, its, converged, rnorm, tuple(history)
