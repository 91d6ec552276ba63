"""Import a benchmark script of ``benchmarks/`` as a module, for its smoke test."""

from __future__ import annotations

from pathlib import Path
from types import ModuleType

from frugalml.report.discovery import load_benchmark

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


def load_bench(stem: str) -> ModuleType:
    """The module of ``benchmarks/<stem>.py`` (executed, its ``main`` not called), loaded as
    ``frugalml report`` loads it: with ``benchmarks/`` on ``sys.path`` while it imports (for
    ``_common``), once per process."""
    path = BENCHMARKS / f"{stem}.py"
    assert path.exists(), f"no benchmarks/{stem}.py"
    return load_benchmark(path)
