"""Pick an executor by name, and report which backends are installed."""

from __future__ import annotations

import importlib.util
import math
import os
from dataclasses import dataclass
from typing import Any

from .._validate import check_choice
from .base import BaseExecutor

__all__ = ["BACKENDS", "BackendInfo", "backend_info", "concurrent_options", "make_executor"]

#: backend name -> (module that must import, frugalml extra)
BACKENDS: dict[str, tuple[str | None, str | None]] = {
    "local": (None, None),
    "local-thread": (None, None),
    "ray": ("ray", "distributed"),
    "dask": ("distributed", "distributed"),
    "lithops": ("lithops", "serverless"),
}


@dataclass(frozen=True)
class BackendInfo:
    name: str
    installed: bool
    version: str | None
    extra: str | None


def backend_info(name: str) -> BackendInfo:
    """Whether a backend's package is installed (without importing it)."""
    check_choice(name, "backend", BACKENDS)
    module, extra = BACKENDS[name]
    if module is None:
        return BackendInfo(name, True, None, None)
    if importlib.util.find_spec(module) is None:
        return BackendInfo(name, False, None, extra)
    from importlib.metadata import PackageNotFoundError, version

    try:
        ver = version(module)
    except PackageNotFoundError:
        ver = None
    return BackendInfo(name, True, ver, extra)


def concurrent_options(backend: str, n_tasks: int) -> dict[str, Any]:
    """Constructor options that let ``n_tasks`` mostly-waiting tasks (straggler delays,
    I/O) run at once on this machine: pools of ``n_tasks``, or fractional CPUs for Ray."""
    check_choice(backend, "backend", BACKENDS)
    cpus = os.cpu_count() or 1
    if backend in ("local", "local-thread"):
        return {"workers": n_tasks}
    if backend == "ray":
        return {"workers": cpus, "task_cpus": cpus / n_tasks}
    if backend == "dask":
        return {"workers": cpus, "threads_per_worker": math.ceil(n_tasks / cpus)}
    return {"workers": n_tasks}


def make_executor(backend: str = "local", **options: Any) -> BaseExecutor:
    """Create an executor: ``"local"`` (process pool), ``"local-thread"``, ``"ray"``,
    ``"dask"`` or ``"lithops"``; ``options`` go to its constructor.

    Every backend takes ``workers=`` (pool size; Ray's logical CPUs; Dask's worker
    processes; Lithops localhost's concurrent functions); backend-specific options pass
    through (``task_cpus``, ``threads_per_worker``, ``config``, ...).

    Raises ``InvalidInputError`` for an unknown name and ``BackendUnavailableError`` (naming
    the extra to install) when the backend's package is missing.
    """
    check_choice(backend, "backend", BACKENDS)
    if backend == "local":
        from .local import LocalExecutor

        return LocalExecutor(**options)
    if backend == "local-thread":
        from .local import LocalExecutor

        return LocalExecutor(kind="thread", **options)
    if backend == "ray":
        from .ray_backend import RayExecutor

        return RayExecutor(**options)
    if backend == "dask":
        from .dask_backend import DaskExecutor

        return DaskExecutor(**options)
    from .lithops_backend import LithopsExecutor

    return LithopsExecutor(**options)
