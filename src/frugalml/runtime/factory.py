"""Pick an executor by name, and report which backends are installed."""

from __future__ import annotations

import importlib.util
import math
import os
from dataclasses import dataclass
from typing import Any

from .._results import ResultRepr
from .._validate import check_choice
from ..errors import InvalidInputError
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


@dataclass(frozen=True, repr=False)
class BackendInfo(ResultRepr):
    name: str
    installed: bool
    version: str | None
    extra: str | None

    def summary(self) -> str:
        if not self.installed:
            return f"{self.name}: not installed (pip install 'frugalml[{self.extra}]')"
        return f"{self.name}: installed" + (f" ({self.version})" if self.version else "")


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


def _executor_class(backend: str) -> type:
    if backend in ("local", "local-thread"):
        from .local import LocalExecutor

        return LocalExecutor
    if backend == "ray":
        from .ray_backend import RayExecutor

        return RayExecutor
    if backend == "dask":
        from .dask_backend import DaskExecutor

        return DaskExecutor
    from .lithops_backend import LithopsExecutor

    return LithopsExecutor


def _check_options(cls: type, backend: str, options: dict[str, Any]) -> None:
    """Unknown constructor options are an ``InvalidInputError`` naming the valid ones."""
    import inspect

    params = inspect.signature(cls.__init__).parameters
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return
    valid = sorted(name for name in params if name != "self")
    if backend == "local-thread":
        valid.remove("kind")
        if "kind" in options:
            raise InvalidInputError("the local-thread backend is the thread pool; omit kind=")
    unknown = sorted(set(options) - set(valid))
    if unknown:
        raise InvalidInputError(
            f"the {backend} executor has no option(s) {', '.join(unknown)}; "
            f"it takes {', '.join(valid)}"
        )


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
    cls = _executor_class(backend)
    _check_options(cls, backend, options)
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
