"""Executors that run many tasks and return the first k of n, or what finished by a deadline.

Backends: ``local`` (process pool, the default; ``local-thread`` for a thread pool), ``ray``,
``dask`` and ``lithops`` (serverless). Straggler models and failure injection wrap any of
them (:class:`FaultInjector`), optionally on a simulated clock.

>>> from frugalml.runtime import make_executor
>>> with make_executor("local-thread", max_workers=2) as ex:
...     handles = [ex.submit(pow, i, 2) for i in range(4)]
...     got = ex.gather(handles, k=3)
>>> len(got.results) >= 3
True
"""

from ._task import InjectedFailure
from .base import (
    BaseExecutor,
    Executor,
    Gathered,
    OnResult,
    TaskFailure,
    TaskHandle,
    TaskTiming,
)
from .factory import BACKENDS, BackendInfo, backend_info, concurrent_options, make_executor
from .faults import FailureModel, FaultInjector
from .stragglers import (
    BimodalStragglers,
    Pareto,
    ShiftedExponential,
    StragglerModel,
    TraceReplay,
    model_from_spec,
)

__all__ = [
    "BACKENDS",
    "BackendInfo",
    "BaseExecutor",
    "BimodalStragglers",
    "Executor",
    "FailureModel",
    "FaultInjector",
    "Gathered",
    "InjectedFailure",
    "OnResult",
    "Pareto",
    "ShiftedExponential",
    "StragglerModel",
    "TaskFailure",
    "TaskHandle",
    "TaskTiming",
    "TraceReplay",
    "backend_info",
    "concurrent_options",
    "make_executor",
    "model_from_spec",
]
