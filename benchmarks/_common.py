"""Helpers shared by the benchmark scripts: wall-clock timing and where their inputs live.

Not a benchmark itself (no ``REPORT_AREA``). The scripts import it as ``_common``: the
benchmarks directory is on ``sys.path`` when a script runs and while ``frugalml report``
loads one (see :mod:`frugalml.report.discovery`).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["BENCHMARKS", "MODELS", "RESULTS", "best_of", "butterfly_floor", "shared_data"]

#: this directory, the checkout's ``benchmarks/``
BENCHMARKS = Path(__file__).resolve().parent
#: measured results (JSON + PNG) of the full runs
RESULTS = BENCHMARKS / "results"
#: trained models the benchmarks read (``models/ecc/`` from ``train_ecc.py``)
MODELS = BENCHMARKS / "models"


def shared_data(name: str = "") -> Path:
    """``$FRUGALML_DATA/name``, else ``<checkout>/../shared/data/name`` (the data sets kept
    beside the checkout, e.g. the published remat graphs). The path may not exist: callers
    check and say what is missing."""
    root = os.environ.get("FRUGALML_DATA")
    base = Path(root) if root else BENCHMARKS.parent.parent / "shared" / "data"
    return base / name if name else base


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
