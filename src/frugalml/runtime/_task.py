"""Worker-side wrapper: runs a task and turns any exception into a recorded outcome.

This module is imported on workers (processes, Ray/Dask workers, Lithops functions), so it
imports nothing heavy. A task that raises becomes an ``Outcome`` with ``ok=False``: a failed
task is an erasure to the caller, never a crash of the whole job.
"""

from __future__ import annotations

import os
import socket
import time
import traceback
from dataclasses import dataclass
from typing import Any

__all__ = ["InjectedFailure", "Outcome", "run_pickled", "run_task"]


class InjectedFailure(RuntimeError):
    """Raised inside a task by failure injection (see :class:`frugalml.runtime.FailureModel`)."""


@dataclass(frozen=True)
class Outcome:
    """What a worker sends back for one task."""

    ok: bool
    value: Any = None
    error_type: str = ""
    message: str = ""
    traceback: str = ""
    run_time: float | None = None
    pid: int | None = None
    host: str = ""

    @classmethod
    def failure(cls, exc: BaseException, run_time: float | None = None) -> Outcome:
        """Outcome for an exception observed on the master side (worker death, cancel, ...)."""
        tb = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
        return cls(
            ok=False,
            error_type=type(exc).__name__,
            message=str(exc) or type(exc).__name__,
            traceback=tb,
            run_time=run_time,
        )


def run_task(fn: Any, args: tuple, kwargs: dict) -> Outcome:
    """Run ``fn(*args, **kwargs)`` and time it; exceptions become a failed ``Outcome``."""
    t0 = time.perf_counter()
    try:
        value = fn(*args, **kwargs)
    except (Exception, SystemExit) as exc:  # SystemExit: a task calling sys.exit() fails alone
        out = Outcome.failure(exc, run_time=time.perf_counter() - t0)
        return Outcome(
            ok=False,
            error_type=out.error_type,
            message=out.message,
            traceback=out.traceback,
            run_time=out.run_time,
            pid=os.getpid(),
            host=socket.gethostname(),
        )
    return Outcome(
        ok=True,
        value=value,
        run_time=time.perf_counter() - t0,
        pid=os.getpid(),
        host=socket.gethostname(),
    )


def run_pickled(payload: bytes) -> Outcome:
    """Process-pool entry point: ``payload`` is ``cloudpickle.dumps((fn, args, kwargs))``.

    cloudpickle lets lambdas and closures run in a process pool, as they do on Ray and Dask.
    """
    import cloudpickle

    try:
        fn, args, kwargs = cloudpickle.loads(payload)
    except Exception as exc:
        return Outcome.failure(exc)
    return run_task(fn, args, kwargs)
