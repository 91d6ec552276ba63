"""Wall-clock timing for the area benchmarks."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np

__all__ = ["best_of", "butterfly_floor"]


def best_of(fn: Callable[[], Any], repeats: int) -> tuple[float, Any]:
    """``(fastest seconds over repeats calls of fn, the last call's result)``."""
    best, out = float("inf"), None
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return best, out


def butterfly_floor(x: np.ndarray) -> None:
    """The memory-bound floor of a butterfly code on ``x`` (N, ...), N a power of two, in
    place: log2 N passes ``x_top += x_bottom``, the least any unfused level-by-level transform
    of the N blocks streams (time it; the values are meaningless)."""
    n = x.shape[0]
    flat = x.reshape(n, -1)
    for lev in range(n.bit_length() - 1):
        view = flat.reshape(1 << lev, 2, n >> (lev + 1), -1)
        np.add(view[:, 0], view[:, 1], out=view[:, 0])
