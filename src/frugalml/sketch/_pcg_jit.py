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

njit = numba.njit(cache=True, nogil=True, fastmath=True)


@njit
def gram(a, y, out):  # pragma: no cover - compiled
    """``out[:] = A^T (A y)`` for C-contiguous float64 ``A`` (n, d), ``y``, ``out`` (d,)."""
    n, d = a.shape
    for j in range(d):
        out[j] = 0.0
    i = 0
    while i + 3 < n:
        t0 = 0.0
        t1 = 0.0
        t2 = 0.0
        t3 = 0.0
        for j in range(d):
            yj = y[j]
            t0 += a[i, j] * yj
            t1 += a[i + 1, j] * yj
            t2 += a[i + 2, j] * yj
            t3 += a[i + 3, j] * yj
        for j in range(d):
            out[j] += t0 * a[i, j] + t1 * a[i + 1, j] + t2 * a[i + 2, j] + t3 * a[i + 3, j]
        i += 4
    while i < n:
        t = 0.0
        for j in range(d):
            t += a[i, j] * y[j]
        for j in range(d):
            out[j] += t * a[i, j]
        i += 1


@njit
def residual(a, b, x, out):  # pragma: no cover - compiled
    """``out[:] = A^T (b - A x)``; returns ``||b - A x||^2`` (same layout as :func:`gram`)."""
    n, d = a.shape
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
        r0 = b[i] - t0
        r1 = b[i + 1] - t1
        r2 = b[i + 2] - t2
        r3 = b[i + 3] - t3
        rr += r0 * r0 + r1 * r1 + r2 * r2 + r3 * r3
        for j in range(d):
            out[j] += r0 * a[i, j] + r1 * a[i + 1, j] + r2 * a[i + 2, j] + r3 * a[i + 3, j]
        i += 4
    while i < n:
        t = 0.0
        for j in range(d):
            t += a[i, j] * x[j]
        r = b[i] - t
        rr += r * r
        for j in range(d):
            out[j] += r * a[i, j]
        i += 1
    return rr
