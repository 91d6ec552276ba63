"""Import a benchmark script of ``benchmarks/`` as a module, for its smoke test."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


def load_bench(stem: str) -> ModuleType:
    """The module of ``benchmarks/<stem>.py`` (executed, its ``main`` not called)."""
    spec = importlib.util.spec_from_file_location(stem, BENCHMARKS / f"{stem}.py")
    assert spec is not None and spec.loader is not None, f"no benchmarks/{stem}.py"
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod
