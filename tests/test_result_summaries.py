"""Every result type of the public API has ``summary()`` (one vocabulary across areas).

A result type is a dataclass named like one (``*Result``, ``*Decoded``, ``*Estimate``,
``*Solution``, ``*Timing``, ``*Failure``, ``*Latency``, ``*Info``, ``*Stats``, ``Gathered``)
in any importable module of the package (CLI and report machinery and private classes
excluded)."""

from __future__ import annotations

import dataclasses
import importlib
import inspect
import pkgutil

import frugalml
from frugalml.runtime.base import TaskFailure, TaskTiming

SUFFIXES = ("Result", "Decoded", "Estimate", "Solution", "Timing", "Failure", "Latency",
            "Info", "Stats", "Gathered")  # fmt: skip


def _result_types() -> set[type]:
    found = set()
    for mod_info in pkgutil.walk_packages(frugalml.__path__, "frugalml."):
        name = mod_info.name
        if ".cli" in name or ".report" in name or name.endswith("_jit"):
            continue
        try:
            mod = importlib.import_module(name)
        except ImportError:  # an optional backend that is not installed
            continue
        for obj in vars(mod).values():
            if (inspect.isclass(obj) and dataclasses.is_dataclass(obj)
                    and obj.__module__ == name and obj.__name__.endswith(SUFFIXES)
                    and not obj.__name__.startswith("_")):  # fmt: skip
                found.add(obj)
    return found


def test_every_result_type_has_summary():
    types = _result_types()
    assert len(types) >= 20, sorted(t.__name__ for t in types)  # the scan found the results
    missing = sorted(f"{t.__module__}.{t.__name__}" for t in types if not hasattr(t, "summary"))
    assert not missing, f"result types without summary(): {missing}"


def test_task_timing_and_failure_summaries():
    assert TaskTiming(0.25, 0.125).summary() == (
        "arrived 0.25 s after submission; ran 0.125 s on its worker"
    )
    assert "died" in TaskTiming(1.5, None).summary()
    fail = TaskFailure(3, "WorkerDiedError", "worker exited with code 1")
    assert fail.summary() == str(fail) == "task 3: WorkerDiedError: worker exited with code 1"


def test_one_progress_type():
    """Every area's ``Progress`` is the one of :mod:`frugalml.progress`."""
    from frugalml.coded.dfo import attack, es
    from frugalml.progress import Progress
    from frugalml.quant import models
    from frugalml.report import registry
    from frugalml.subspace import saddle, tasks

    for mod in (attack, es, models, registry, saddle, tasks):
        assert mod.Progress is Progress, mod.__name__
