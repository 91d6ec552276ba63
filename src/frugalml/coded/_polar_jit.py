"""numba kernels of the compiled polar decoder (imported lazily by :mod:`._polar_kernel`).

Bartan & Pilanci, arXiv 1901.06811 / 2309.00682 (SC decoding over the reals); see
:mod:`._polar_kernel` for the plan/execute design. Compiled on first use and cached on disk.
"""

from __future__ import annotations

import numba
import numpy as np

# operation codes; an op row is (code, a, b, c, d)
_ZERO, _LEAF, _FULL, _TOP, _BOT, _UP = 0, 1, 2, 3, 4, 5

njit = numba.njit(cache=True, nogil=True)


@njit
def _emit(ops, nops, code, a, b, c, d):
    k = nops[0]
    ops[k, 0], ops[k, 1], ops[k, 2], ops[k, 3], ops[k, 4] = code, a, b, c, d
    nops[0] = k + 1


@njit
def plan(xk, frozen, levels, kc, soff, ops, nops, cls):
    """SC over the known masks only, emitting the row operations; returns the (N,) uk mask.

    Iterative depth-first traversal with one frame per depth (a recursive numba function
    cannot be cached on disk: numba issue #6061). ``xk`` (N,) codeword rows observed,
    ``frozen`` (N,), ``kc`` kernel flags (f00 == 0, f01 == 0, f10 != 0, f11 != 0), ``soff``
    the row offset of each depth's top-child work buffer. Per depth d (node size N >> d) the
    frame keeps its observed mask ``XK``, its outputs ``UK``/``VK`` and the top child's
    re-encoded mask ``VT``, in flat arrays at offset ``off[d]``.
    """
    n = xk.shape[0]
    off = np.zeros(levels + 2, dtype=np.int64)
    for d in range(levels + 1):
        off[d + 1] = off[d] + (n >> d)
    XK = np.zeros(off[levels + 1], dtype=np.bool_)
    UK = np.zeros(off[levels + 1], dtype=np.bool_)
    VK = np.zeros(off[levels + 1], dtype=np.bool_)
    VT = np.zeros(off[levels + 1], dtype=np.bool_)
    lo = np.zeros(levels + 1, dtype=np.int64)
    xo = np.zeros(levels + 1, dtype=np.int64)
    co = np.zeros(levels + 1, dtype=np.int64)
    need = np.zeros(levels + 1, dtype=np.bool_)
    stage = np.zeros(levels + 1, dtype=np.int64)
    XK[:n] = xk
    ncls = 0
    d = 0
    while d >= 0:
        m = n >> d
        h = m // 2
        o = off[d]
        if stage[d] == 0:  # enter the node
            all_frozen = True
            any_frozen = False
            all_obs = True
            for i in range(m):
                if frozen[lo[d] + i]:
                    any_frozen = True
                else:
                    all_frozen = False
                if not XK[o + i]:
                    all_obs = False
            if all_frozen:  # rate 0: v = 0
                if need[d]:
                    _emit(ops, nops, _ZERO, xo[d], m, 0, 0)
                UK[o : o + m] = True
                VK[o : o + m] = True
                d -= 1
                continue
            if d == levels:  # identity on every row
                for i in range(m):
                    fr = frozen[lo[d] + i]
                    UK[o + i] = fr or XK[o + i]
                    VK[o + i] = UK[o + i]
                    if fr and need[d]:
                        _emit(ops, nops, _ZERO, xo[d] + i, 1, 0, 0)
                    elif (not fr) and XK[o + i]:
                        _emit(ops, nops, _LEAF, xo[d] + i, lo[d] + i, 0, 0)
                d -= 1
                continue
            if all_obs and not any_frozen:  # rate 1, fully observed: u = x F^-1, v = x
                _emit(ops, nops, _FULL, xo[d], m, lo[d], levels - d)
                UK[o : o + m] = True
                VK[o : o + m] = True
                d -= 1
                continue
            co[d] = ncls
            ncls += h
            oc = off[d + 1]
            for i in range(h):
                b = XK[o + i] and XK[o + h + i]
                XK[oc + i] = b
                cls[co[d] + i] = 1 if b else 0
            _emit(ops, nops, _TOP, xo[d], h, soff[d], co[d])
            stage[d] = 1
            lo[d + 1], xo[d + 1], need[d + 1], stage[d + 1] = lo[d], soff[d], True, 0
            d += 1
        elif stage[d] == 1:  # top child done: its (uk, vk) are at depth d + 1
            oc = off[d + 1]
            for i in range(h):
                UK[o + i] = UK[oc + i]
                vt = VK[oc + i]
                VT[o + i] = vt
                kt = XK[o + i]
                kb = XK[o + h + i]
                c = 1 if (kt and kb) else 0
                if c == 0 and kc[2] and kt and (vt or kc[0]):
                    c = 2
                elif c == 0 and kc[3] and kb and (vt or kc[1]):
                    c = 3
                cls[co[d] + i] = c
                XK[oc + i] = c != 0
            _emit(ops, nops, _BOT, xo[d], h, soff[d], co[d])
            stage[d] = 2
            lo[d + 1], xo[d + 1], need[d + 1], stage[d + 1] = lo[d] + h, xo[d] + h, need[d], 0
            d += 1
        else:  # bottom child done
            oc = off[d + 1]
            for i in range(h):
                UK[o + h + i] = UK[oc + i]
            if need[d]:
                _emit(ops, nops, _UP, xo[d], h, soff[d], 0)
                for i in range(h):  # x_top = f00 v_t + f10 v_b ; x_bot = f01 v_t + f11 v_b
                    vt = VT[o + i]
                    vb = VK[oc + i]
                    VK[o + i] = (vt or kc[0]) and (vb or not kc[2])
                    VK[o + h + i] = (vt or kc[1]) and (vb or not kc[3])
            stage[d] = 0
            d -= 1
    return UK[:n].copy()


@njit
def butterflies(w, base, m, nlev, c00, c01, c10, c11, tw):
    """In place on rows [base, base + m) of w: nlev passes of the 2x2 kernel
    [[c00, c01], [c10, c11]] (top' = c00 t + c10 b, bottom' = c01 t + c11 b).

    Two levels per sweep (radix 4: four rows read and written once for two levels), then a
    last single level when nlev is odd."""
    lev = 0
    while lev + 1 < nlev:
        q = m >> (lev + 2)  # a quarter of this level's block
        for blk in range(1 << lev):
            r0 = base + blk * 4 * q
            for i in range(q):
                x0 = w[r0 + i]
                x1 = w[r0 + q + i]
                x2 = w[r0 + 2 * q + i]
                x3 = w[r0 + 3 * q + i]
                for t in range(tw):
                    a0, a1, a2, a3 = x0[t], x1[t], x2[t], x3[t]
                    b0 = c00 * a0 + c10 * a2  # level lev pairs (0, 2) and (1, 3)
                    b2 = c01 * a0 + c11 * a2
                    b1 = c00 * a1 + c10 * a3
                    b3 = c01 * a1 + c11 * a3
                    x0[t] = c00 * b0 + c10 * b1  # level lev + 1 pairs (0, 1) and (2, 3)
                    x1[t] = c01 * b0 + c11 * b1
                    x2[t] = c00 * b2 + c10 * b3
                    x3[t] = c01 * b2 + c11 * b3
        lev += 2
    if lev < nlev:
        half = m >> (lev + 1)
        for blk in range(1 << lev):
            r0 = base + blk * 2 * half
            for i in range(half):
                top = w[r0 + i]
                bot = w[r0 + half + i]
                for t in range(tw):
                    a = top[t]
                    b = bot[t]
                    top[t] = c00 * a + c10 * b
                    bot[t] = c01 * a + c11 * b


@njit
def execute(ops, nops, cls, w, u, tw, f, g):
    """Run the planned operations on the work array ``w`` (R, T) -> ``u`` (N, T)."""
    f00, f01, f10, f11 = f[0], f[1], f[2], f[3]
    i00, i01, i10, i11 = g[0], g[1], g[2], g[3]
    for k in range(nops):
        op = ops[k, 0]
        a = ops[k, 1]
        b = ops[k, 2]
        if op == _TOP:
            so, co = ops[k, 3], ops[k, 4]
            for i in range(b):
                dst = w[so + i]
                if cls[co + i] == 1:
                    xt = w[a + i]
                    xb = w[a + b + i]
                    for t in range(tw):
                        dst[t] = i00 * xt[t] + i10 * xb[t]
                else:
                    dst[:tw] = 0.0
        elif op == _BOT:
            so, co = ops[k, 3], ops[k, 4]
            for i in range(b):
                c = cls[co + i]
                xt = w[a + i]
                xb = w[a + b + i]
                vt = w[so + i]
                if c == 1:
                    for t in range(tw):
                        xb[t] = i01 * xt[t] + i11 * xb[t]
                elif c == 2:
                    for t in range(tw):
                        xb[t] = (xt[t] - f00 * vt[t]) / f10
                elif c == 3:
                    for t in range(tw):
                        xb[t] = (xb[t] - f01 * vt[t]) / f11
                else:
                    xb[:tw] = 0.0
        elif op == _UP:
            so = ops[k, 3]
            for i in range(b):
                xt = w[a + i]
                xb = w[a + b + i]
                v = w[so + i]
                for t in range(tw):
                    vt = v[t]
                    vb = xb[t]
                    xt[t] = f00 * vt + f10 * vb
                    xb[t] = f01 * vt + f11 * vb
        elif op == _ZERO:
            for i in range(b):
                for t in range(tw):
                    w[a + i, t] = 0.0
        elif op == _LEAF:
            for t in range(tw):
                u[b, t] = w[a, t]
        else:  # _FULL: u[lo:lo+m] = x F^{-1} over the remaining levels; v = x
            lo, nlev = ops[k, 3], ops[k, 4]
            for i in range(b):
                for t in range(tw):
                    u[lo + i, t] = w[a + i, t]
            butterflies(u, lo, b, nlev, i00, i01, i10, i11, tw)


@njit
def run(ops, nops, cls, y, src, rows, out, data_pos, signs, tile, f, g):
    """Decode (N, P) ``y`` (codeword row r is ``y[src[r]]``, or erased when src[r] < 0)
    into (K, P) ``out`` one column tile at a time."""
    n = src.shape[0]
    p = y.shape[1]
    w = np.zeros((rows, tile))
    u = np.zeros((n, tile))
    for c0 in range(0, p, tile):
        tw = min(tile, p - c0)
        for r in range(n):
            s = src[r]
            if s >= 0:
                for t in range(tw):
                    w[r, t] = y[s, c0 + t]
            else:
                for t in range(tw):
                    w[r, t] = 0.0
        execute(ops, nops, cls, w, u, tw, f, g)
        for j in range(data_pos.shape[0]):
            r = data_pos[j]
            sg = signs[j]
            for t in range(tw):
                out[j, c0 + t] = u[r, t] * sg


@njit
def transform(x, nlev, c00, c01, c10, c11, tile):
    """In place on (M, P) ``x``: nlev butterfly levels, one cached column tile at a time."""
    m, p = x.shape
    w = np.empty((m, tile))
    for c0 in range(0, p, tile):
        tw = min(tile, p - c0)
        for r in range(m):
            for t in range(tw):
                w[r, t] = x[r, c0 + t]
        butterflies(w, 0, m, nlev, c00, c01, c10, c11, tw)
        for r in range(m):
            for t in range(tw):
                x[r, c0 + t] = w[r, t]


@njit
def encode(u, rows, signs, dest, nlev, c00, c01, c10, c11, tile, out):
    """Fused encoder: (K, P) ``u`` -> (N, P) ``out``. Per column tile, input row ``rows[i]``
    gets ``signs[i] * u[i]`` (the others 0), nlev butterfly levels run in cache, and codeword
    row r is written to ``out[dest[r]]``: one read of u and one write of out."""
    n, p = out.shape
    w = np.empty((n, tile))
    for c0 in range(0, p, tile):
        tw = min(tile, p - c0)
        w[:, :tw] = 0.0
        for i in range(rows.shape[0]):
            src = u[i]
            dst = w[rows[i]]
            s = signs[i]
            for t in range(tw):
                dst[t] = s * src[c0 + t]
        butterflies(w, 0, n, nlev, c00, c01, c10, c11, tw)
        for r in range(n):
            src = w[r]
            dst = out[dest[r]]
            for t in range(tw):
                dst[c0 + t] = src[t]
