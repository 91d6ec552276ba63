"""Executors that run many tasks and return the first k of n, or what finished by a deadline.

Backends: ``local`` (process pool, the default; ``local-thread`` for a thread pool), ``ray``,
``dask`` and ``lithops`` (serverless). Straggler models and failure injection wrap any of
them (:class:`FaultInjector`), optionally on a simulated clock.

>>> from frugalml.runtime import make_executor
Large operands are placed once (``ref = ex.share(a)``) and tasks carry the reference; every
result reports the bytes it moved (``Gathered.bytes_sent`` / ``bytes_received``).

>>> import numpy as np
>>> from frugalml.runtime import make_executor
>>> with make_executor("local-thread", workers=2) as ex:
...     a = ex.share(np.arange(6.0))
...     handles = [ex.submit(np.dot, a, a) for _ in range(4)]
...     got = ex.gather(handles, k=3)
>>> len(got.results) >= 3
True
"""

from ..errors import SharedDataLostError
from ._task import InjectedFailure, payload_nbytes
from .base import (
    BaseExecutor,
    Executor,
    Gathered,
    OnResult,
    TaskFailure,
    TaskHandle,
    TaskTiming,
    fmt_bytes,
)
from .comm import MEASURED, CommModel, measure_comm
from .factory import BACKENDS, BackendInfo, backend_info, concurrent_options, make_executor
from .faults import FailureModel, FaultInjector
from .shared import Shared, collect_shared
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
    "MEASURED",
    "BackendInfo",
    "BaseExecutor",
    "BimodalStragglers",
    "CommModel",
    "Executor",
    "FailureModel",
    "FaultInjector",
    "Gathered",
    "InjectedFailure",
    "OnResult",
    "Pareto",
    "Shared",
    "SharedDataLostError",
    "ShiftedExponential",
    "StragglerModel",
    "TaskFailure",
    "TaskHandle",
    "TaskTiming",
    "TraceReplay",
    "backend_info",
    "collect_shared",
    "concurrent_options",
    "fmt_bytes",
    "make_executor",
    "measure_comm",
    "model_from_spec",
    "payload_nbytes",
]
