"""Compiled (numba) successive-cancellation erasure decoder and transform for real polar codes.

The decoder of :class:`frugalml.coded.polar.PolarCode` in two phases:

1. **Plan** (once per arrival mask, O(N log N) boolean work): the SC recursion over the
   known-masks only, emitting a flat list of row operations (``_TOP``, ``_BOT``, ``_UP``,
   ``_ZERO``, ``_LEAF``, ``_FULL``) with per-row source classes. No data is touched.
2. **Execute** (per column tile of the (N, P) outputs): the operations run on a float64 work
   array of about 2N x T numbers (T columns), sized to stay in the last-level cache, so every
   butterfly level of every node reads and writes cached rows: main memory sees one read of
   the arrived outputs and one write of the K decoded blocks, instead of the ~3 log2 N
   streaming passes of the NumPy decoder. Float32 outputs are decoded in float64 (the work
   array) and rounded once at the end.

Costs: plan O(N log N) time and O(N log N) bytes; execute O(N log N P) multiply-adds in
O(N T) memory. The same operations are what :meth:`PolarCode._sc_num` performs (NumPy), which
the tests use as the reference.

numba is an optional dependency (extra ``coded``); :func:`available` says whether it imports.
"""

from __future__ import annotations

import importlib.util
from functools import cache
from typing import Any

import numpy as np

__all__ = ["available", "decode", "plan", "transform"]

#: work-array budget per column tile (bytes): ~2N rows x T columns of float64 stay cached
TILE_BYTES = 1 << 21


@cache  # find_spec costs ~40 us: too much for a per-decode check
def available() -> bool:
    """Whether numba is installed (the compiled decoder is usable)."""
    return importlib.util.find_spec("numba") is not None


def _compiled() -> Any:
    from . import _polar_jit  # numba compiles (or loads its disk cache) on first use

    return _polar_jit


class Plan:
    """The compiled operation list of one arrival mask (see the module docstring)."""

    __slots__ = ("cls", "known", "nops", "ops", "rows")

    def __init__(self, ops: np.ndarray, nops: int, cls: np.ndarray, known: np.ndarray, rows: int):
        self.ops, self.nops, self.cls, self.known, self.rows = ops, nops, cls, known, rows


def _scratch_offsets(n: int, levels: int) -> tuple[np.ndarray, int]:
    """Row offset of each depth's top-child buffer (N >> (d+1) rows) after the N root rows."""
    off = np.empty(max(levels, 1), dtype=np.int64)
    pos = n
    for d in range(levels):
        off[d] = pos
        pos += n >> (d + 1)
    return off, pos


def plan(xk: np.ndarray, frozen: np.ndarray, levels: int, kernel: np.ndarray) -> Plan:
    """Plan SC decoding of the codeword-order known mask ``xk`` (N,) bool."""
    fns = _compiled()
    n = xk.shape[0]
    soff, rows = _scratch_offsets(n, levels)
    (f00, f01), (f10, f11) = kernel
    kc = np.array([f00 == 0, f01 == 0, f10 != 0, f11 != 0], dtype=np.bool_)
    cap = 4 * n + 8  # <= 3 ops per internal node + 1 per leaf row
    ops = np.zeros((cap, 5), dtype=np.int64)
    cls = np.zeros(max(n * max(levels, 1), 1), dtype=np.int8)
    nops = np.zeros(1, dtype=np.int64)
    uk = fns.plan(np.ascontiguousarray(xk, dtype=np.bool_),
                  np.ascontiguousarray(frozen, dtype=np.bool_), int(levels), kc, soff,
                  ops, nops, cls)  # fmt: skip
    return Plan(ops, int(nops[0]), cls, uk, rows)


def _tile(rows: int, p: int) -> int:
    t = max(8, TILE_BYTES // (8 * rows))
    t = 1 << (t.bit_length() - 1)
    return int(min(t, 512, max(p, 1)))


def decode(
    p: Plan,
    y: np.ndarray,
    src: np.ndarray,
    data_pos: np.ndarray,
    signs: np.ndarray,
    kernel: np.ndarray,
) -> np.ndarray:
    """(N, P) float outputs in worker order -> (K, P) blocks (dtype of ``y``) by plan ``p``.

    ``src[r]`` is the worker row holding codeword row r (-1 when erased). Unknown blocks are
    left as computed (the caller zeroes them with ``p.known``).
    """
    fns = _compiled()
    kinv = np.linalg.inv(kernel)
    f = np.array([kernel[0, 0], kernel[0, 1], kernel[1, 0], kernel[1, 1]], dtype=np.float64)
    g = np.array([kinv[0, 0], kinv[0, 1], kinv[1, 0], kinv[1, 1]], dtype=np.float64)
    out = np.empty((data_pos.shape[0], y.shape[1]), dtype=y.dtype)
    tile = _tile(p.rows + src.shape[0], y.shape[1])
    fns.run(p.ops, p.nops, p.cls, y, src, p.rows, out, data_pos.astype(np.int64),
               signs.astype(np.float64), tile, f, g)  # fmt: skip
    return out


def transform(x: np.ndarray, kernel: np.ndarray, levels: int) -> None:
    """In place on C-contiguous (M, P) float ``x``: ``levels`` butterfly passes of ``kernel``."""
    (c00, c01), (c10, c11) = kernel
    m, p = x.shape
    tile = _tile(m, p)
    _compiled().transform(x, int(levels), float(c00), float(c01), float(c10), float(c11), tile)


def encode(
    u: np.ndarray,
    rows: np.ndarray,
    signs: np.ndarray,
    dest: np.ndarray,
    n: int,
    kernel: np.ndarray,
    levels: int,
) -> np.ndarray:
    """(K, P) C-contiguous float ``u`` -> (N, P) codeword in worker order, fused: input row
    ``rows[i]`` = ``signs[i] u[i]``, ``levels`` butterfly passes, codeword row r to row
    ``dest[r]``. Sums in float64; the result has ``u``'s dtype."""
    (c00, c01), (c10, c11) = kernel
    out = np.empty((n, u.shape[1]), dtype=u.dtype)
    tile = _tile(n, u.shape[1])
    _compiled().encode(u, rows.astype(np.int64), signs.astype(np.float64),
                       dest.astype(np.int64), int(levels), float(c00), float(c01),
                       float(c10), float(c11), tile, out)  # fmt: skip
    return out
