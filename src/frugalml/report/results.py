"""Benchmark result types shared by the report, the CLI and ``benchmarks/``."""

from __future__ import annotations

import os
import platform
import sys
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "GOAL_STATUSES",
    "MET",
    "NOT_CHECKED",
    "NOT_MET",
    "NO_GOAL",
    "BenchResult",
    "Table",
    "machine_info",
]

MET = "met"
NOT_MET = "not met"
NOT_CHECKED = "not checked (quick size)"
NO_GOAL = "measured (no goal)"
GOAL_STATUSES = (MET, NOT_MET, NOT_CHECKED, NO_GOAL)


@dataclass(frozen=True)
class Table:
    """A titled table: ``rows`` are sequences aligned with ``columns``.

    Every row must have exactly one value per column (else :class:`InvalidInputError`).
    """

    title: str
    columns: tuple[str, ...]
    rows: tuple[tuple[Any, ...], ...]
    note: str = ""

    def __post_init__(self) -> None:
        from ..errors import InvalidInputError

        object.__setattr__(self, "columns", tuple(self.columns))
        object.__setattr__(self, "rows", tuple(tuple(r) for r in self.rows))
        width = len(self.columns)
        for i, row in enumerate(self.rows):
            if len(row) != width:
                raise InvalidInputError(
                    f"table {self.title!r}: row {i} has {len(row)} values for {width} "
                    f"columns {list(self.columns)}"
                )

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
    status: whether the area's goal was met: one of :data:`GOAL_STATUSES`; empty means
        "not checked (quick size)" in a quick run and "measured (no goal)" in a full one.
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
    status: str = ""

    def __post_init__(self) -> None:
        from ..errors import InvalidInputError

        if self.status and self.status not in GOAL_STATUSES:
            raise InvalidInputError(
                f"status must be one of {list(GOAL_STATUSES)} or empty, got {self.status!r}"
            )

    def goal_status(self, quick: bool) -> str:
        """The status shown in the summary (see ``status``)."""
        return self.status or (NOT_CHECKED if quick else NO_GOAL)

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "title": self.title,
            "headline": self.headline,
            "status": self.status,
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
