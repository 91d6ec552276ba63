"""numba kernels of the fused passes of :mod:`.pcg` (imported lazily; numba is the optional
extra ``coded``). Hestenes & Stiefel (1952) CG on the normal equations needs ``A^T (A y)``;
these kernels read each row of ``A`` once, four rows at a time: four dot products
``t_k = a_{i+k} . y`` (four independent accumulators), then one update
``out += sum_k t_k a_{i+k}`` while the four rows are still in L1. The NumPy fallback
(:func:`~frugalml.sketch.pcg.gram_matvec` with 128-row blocks) pays a Python loop and two BLAS
calls per block. Compiled on first use and cached on disk. Cost ``4 n d`` flops, ``8 n d``
bytes read.
"""

from __future__ import annotations

import numba
import numpy as np

njit = numba.njit(cache=True, nogil=True, fastmath=True)


@njit
def residual(a, b, x, out):  # pragma: no cover - compiled
    """``out[:] = A^T (b - A x)``; returns ``||b - A x||^2``. C-contiguous float64 ``A`` (n, d),
    ``x``, ``out`` (d,); ``b`` (n,), or empty for ``b = 0``."""
    n, d = a.shape
    has_b = b.shape[0] > 0
    for j in range(d):
        out[j] = 0.0
    rr = 0.0
    i = 0
    while i + 3 < n:
        t0 = 0.0
        t1 = 0.0
        t2 = 0.0
        t3 = 0.0
        for j in range(d):
            xj = x[j]
            t0 += a[i, j] * xj
            t1 += a[i + 1, j] * xj
            t2 += a[i + 2, j] * xj
            t3 += a[i + 3, j] * xj
        if has_b:
            t0, t1, t2, t3 = b[i] - t0, b[i + 1] - t1, b[i + 2] - t2, b[i + 3] - t3
        else:
            t0, t1, t2, t3 = -t0, -t1, -t2, -t3
        rr += t0 * t0 + t1 * t1 + t2 * t2 + t3 * t3
        for j in range(d):
            out[j] += t0 * a[i, j] + t1 * a[i + 1, j] + t2 * a[i + 2, j] + t3 * a[i + 3, j]
        i += 4
    while i < n:
        t = 0.0
        for j in range(d):
            t += a[i, j] * x[j]
        r = b[i] - t if has_b else -t
        rr += r * r
        for j in range(d):
            out[j] += r * a[i, j]
        i += 1
    return rr


@njit
def gram(a, y, out):  # pragma: no cover - compiled
    """``out[:] = A^T (A y)``: :func:`residual` with ``b = 0``, negated."""
    residual(a, np.empty(0), y, out)
    for j in range(out.shape[0]):
        out[j] = -out[j]
