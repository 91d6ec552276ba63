"""Benchmark result types shared by the report, the CLI and ``benchmarks/``."""

from __future__ import annotations

import os
import platform
import sys
from dataclasses import dataclass, field
from typing import Any

__all__ = ["BenchResult", "Table", "machine_info"]


@dataclass(frozen=True)
class Table:
    """A titled table: ``rows`` are sequences aligned with ``columns``."""

    title: str
    columns: tuple[str, ...]
    rows: tuple[tuple[Any, ...], ...]
    note: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {
            "title": self.title,
            "columns": list(self.columns),
            "rows": [list(r) for r in self.rows],
            "note": self.note,
        }


@dataclass(frozen=True)
class BenchResult:
    """What an area benchmark measured.

    name: short area name (file names derive from it).
    headline: one line for the report's summary table.
    tables: the measured tables.
    figures: name -> matplotlib Figure (written as PNG).
    data: raw measurements (JSON-serialisable).
    mode: how it was measured, e.g. "wall clock, local machine".
    """

    name: str
    title: str
    headline: str
    tables: tuple[Table, ...]
    figures: dict[str, Any] = field(default_factory=dict)
    data: dict[str, Any] = field(default_factory=dict)
    mode: str = "wall clock"
    machine: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "title": self.title,
            "headline": self.headline,
            "mode": self.mode,
            "seconds": self.seconds,
            "machine": self.machine,
            "tables": [t.as_dict() for t in self.tables],
            "data": self.data,
        }


def machine_info() -> dict[str, Any]:
    """Facts that a timing depends on: cores, Python, NumPy, BLAS, torch and GPU if present."""
    import importlib.util

    import numpy as np
    from threadpoolctl import threadpool_info

    info: dict[str, Any] = {
        "platform": platform.platform(),
        "machine": platform.machine(),
        "cpu_count": os.cpu_count(),
        "python": sys.version.split()[0],
        "numpy": np.__version__,
        "blas": [
            {k: p.get(k) for k in ("internal_api", "version", "num_threads")}
            for p in threadpool_info()
            if p.get("user_api") == "blas"
        ],
    }
    if importlib.util.find_spec("torch") is not None:
        import torch

        info["torch"] = torch.__version__
        info["gpu"] = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    return info
