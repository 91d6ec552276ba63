"""Sketching and exact solves over row-sharded data (:mod:`frugalml.runtime.sharded`).

``S A = sum_j S[:, rows_j] A_j``: :func:`sketch_parts` applies one sketch realisation block by
block (sketches with ``streams_rows``: gaussian, rademacher, sparse-sign, countsketch,
uniform), reading each block where it lives, so a worker never holds more than one block and
the ``m x d`` result. :func:`streamed_lstsq` is the exact (ridge) least-squares solution by a
streamed QR (TSQR: ``R`` of ``[R; A_j b_j]`` block after block, ``O(n d^2)`` flops,
``O(d^2)`` memory), used for the measured error when the data are sharded.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import scipy.linalg

from ..errors import InvalidInputError
from ..runtime.sharded import RowBlocks, load_block
from .base import Sketch, SketchMatrix

__all__ = ["check_streams_rows", "sketch_parts", "streamed_lstsq"]


def check_streams_rows(sketch: Sketch) -> None:
    """Raise unless ``sketch`` can be applied block by block to row-sharded data."""
    if sketch.data_dependent or not sketch.streams_rows:
        raise InvalidInputError(
            f"the {sketch.name or type(sketch).__name__} sketch "
            + ("depends on the whole matrix" if sketch.data_dependent else "mixes all rows")
            + " and cannot stream over row-sharded data; use gaussian, rademacher, "
            "sparse-sign, countsketch or uniform (or pass the data in memory)"
        )


def sketch_parts(
    smat: SketchMatrix,
    parts: tuple[Any, ...],
    offsets: tuple[int, ...],
    transform: Callable[[np.ndarray], np.ndarray] | None = None,
) -> np.ndarray:
    """``S @ X`` (m, d) or (m,) for ``X`` held as row blocks ``parts`` with first rows
    ``offsets``; ``transform(block)`` is applied to each block first (e.g. a Hessian square
    root formed from the data block)."""
    out = None
    for part, start in zip(parts, offsets[:-1], strict=True):
        blk = load_block(part)
        if transform is not None:
            blk = transform(blk)
        y = smat.apply_rows(blk, start)
        out = y if out is None else out + y
    return out


def streamed_lstsq(
    a: RowBlocks, b: RowBlocks | np.ndarray, lam: float = 0.0
) -> tuple[np.ndarray, float]:
    """Exact ``x* = argmin ||A x - b||^2 + lam ||x||^2`` (minimum norm when rank deficient)
    and ``f(x*)``, for ``A`` (n, d) row blocks and ``b`` (n,), by a streamed QR of
    ``[A b]``."""
    d = a.shape[1]
    r = np.zeros((0, d + 1))
    for start, blk in a.blocks():
        stop = start + blk.shape[0]
        rhs = b.rows(start, stop) if isinstance(b, RowBlocks) else b[start:stop]
        stacked = np.vstack([r, np.column_stack([np.asarray(blk, float), rhs])])
        r = scipy.linalg.qr(stacked, mode="r", check_finite=False)[0][: d + 1]
    if lam > 0:
        reg = np.column_stack([np.sqrt(lam) * np.eye(d), np.zeros(d)])
        r = scipy.linalg.qr(np.vstack([r, reg]), mode="r", check_finite=False)[0][: d + 1]
    r11, r12 = r[:d, :d], r[:d, d]
    x = scipy.linalg.lstsq(r11, r12, cond=None)[0]
    resid = r12 - r11 @ x
    rho = r[d, d] if r.shape[0] > d else 0.0
    return x, float(rho * rho + resid @ resid)
