"""Registry of area benchmarks run by ``frugalml report``.

Two sources, merged by area name:

- the benchmarks of a checkout, ``benchmarks/bench_*.py`` files declaring ``REPORT_AREA``
  (found and scanned without importing them, see :mod:`.discovery`);
- programmatic registrations, ``register(name, title, "module:function")`` (users can add
  their own; one with the name of a discovered area replaces it).

A benchmark is a function ``run(*, quick: bool, progress: Progress | None) -> BenchResult``,
imported only when run. Area names are the command paths joined by ``-`` (``coded-es``,
``sketch-newton``, ...); the names of 0.1 (:data:`RENAMED_AREAS`) still work, with a
:class:`~frugalml.errors.FrugalDeprecationWarning`.
"""

from __future__ import annotations

import functools
import importlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .._deprecation import warn_renamed
from .._validate import check_choice
from ..errors import InvalidInputError
from ..progress import Progress
from .discovery import NOT_FOUND_HINT, find_benchmarks, importable, load_benchmark, scan
from .results import BenchResult

__all__ = [
    "RENAMED_AREAS",
    "AreaBenchmark",
    "Progress",
    "area_name",
    "get",
    "no_areas_message",
    "register",
    "registered",
]

#: report area names of frugalml 0.1 -> their current names
RENAMED_AREAS = {
    "dfo": "coded-es",
    "second-order": "sketch-newton",
    "saddle": "subspace-saddle",
    "aggregation": "subspace-train",
}


@dataclass(frozen=True)
class AreaBenchmark:
    """One report area: ``target`` is ``"module:function"``; ``path`` is the benchmark file
    when the area was discovered (then ``target`` is ``"<file stem>:run"``)."""

    name: str
    title: str
    target: str
    path: Path | None = None

    def load(self) -> Callable[..., BenchResult]:
        """The benchmark function (imports its module, or the benchmark file by path)."""
        module, _, func = self.target.partition(":")
        if self.path is None:
            return getattr(importlib.import_module(module), func)
        run = getattr(load_benchmark(self.path), func)
        directory = self.path.parent

        @functools.wraps(run)
        def run_importable(*args: Any, **kwargs: Any) -> BenchResult:
            with importable(directory):  # its tasks' workers can import it by name
                return run(*args, **kwargs)

        return run_importable


_REGISTRY: dict[str, AreaBenchmark] = {}


def register(name: str, title: str, target: str) -> None:
    """Register (or replace) an area benchmark ``target = "package.module:function"``."""
    if ":" not in target:
        raise InvalidInputError(f"target must look like 'module:function', got {target!r}")
    _REGISTRY[name] = AreaBenchmark(name, title, target)


def _discovered(benchmarks: str | Path | None) -> dict[str, AreaBenchmark]:
    directory = find_benchmarks(benchmarks)
    if directory is None:
        return {}
    return {
        b.area: AreaBenchmark(b.area, b.title, f"{b.path.stem}:run", b.path)
        for b in scan(directory)
    }


def registered(benchmarks: str | Path | None = None) -> list[AreaBenchmark]:
    """Every area: those of the benchmarks directory (``benchmarks``, or the one
    :func:`.discovery.find_benchmarks` finds; sorted by name), then the registered ones."""
    areas = _discovered(benchmarks)
    areas.update(_REGISTRY)
    return list(areas.values())


def area_name(name: str) -> str:
    """The current name of area ``name`` (an old name warns and is mapped)."""
    if name in RENAMED_AREAS and name not in _REGISTRY:
        warn_renamed(name, RENAMED_AREAS[name], "report area")
        return RENAMED_AREAS[name]
    return name


def get(name: str, benchmarks: str | Path | None = None) -> AreaBenchmark:
    """The area ``name`` (see :func:`registered`); :class:`InvalidInputError` if unknown."""
    name = area_name(name)
    areas = {b.name: b for b in registered(benchmarks)}
    if not areas:
        raise InvalidInputError(f"no report area {name!r}: {no_areas_message(benchmarks)}")
    check_choice(name, "area", areas)
    return areas[name]


def no_areas_message(benchmarks: str | Path | None = None) -> str:
    """Why there is no area: an empty benchmarks directory, or none found."""
    directory = find_benchmarks(benchmarks)
    if directory is not None:
        return f"{directory} holds no bench_*.py that declares REPORT_AREA"
    return f"no benchmarks found; {NOT_FOUND_HINT}"
