"""Worker-side wrapper: runs a task and turns any exception into a recorded outcome.

This module is imported on workers (processes, Ray/Dask workers, Lithops functions), so it
imports nothing heavy. A task that raises becomes an ``Outcome`` with ``ok=False``: a failed
task is an erasure to the caller, never a crash of the whole job. Shared references
(:mod:`.shared`) in the arguments are resolved here, on the worker, before the task runs.

Bytes are counted as they travel: :func:`payload_nbytes` is the length of the pickle of an
object (protocol 5) plus its out-of-band buffers (array data), with each shared reference
counted as its wire form (key, kind and file path; a Ray, Dask or Lithops handle adds that
backend's own object id of a few dozen bytes). Counting array buffers
out-of-band costs no copy.
"""

from __future__ import annotations

import io
import os
import pickle
import socket
import time
import traceback
from dataclasses import dataclass
from typing import Any

from . import shared as _shared

__all__ = ["InjectedFailure", "Outcome", "payload_nbytes", "run_pickled", "run_task"]


class InjectedFailure(RuntimeError):
    """Raised inside a task by failure injection (see :class:`frugalml.runtime.FailureModel`)."""


@dataclass(frozen=True)
class Outcome:
    """What a worker sends back for one task.

    nbytes: serialised size of ``value`` as it travels back (``None`` where not measured:
    the thread pool, where nothing is copied).
    """

    ok: bool
    value: Any = None
    error_type: str = ""
    message: str = ""
    traceback: str = ""
    run_seconds: float | None = None
    pid: int | None = None
    host: str = ""
    nbytes: int | None = None

    @classmethod
    def failure(cls, exc: BaseException, run_seconds: float | None = None) -> Outcome:
        """Outcome for an exception observed on the master side (worker death, cancel, ...)."""
        tb = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
        return cls(
            ok=False,
            error_type=type(exc).__name__,
            message=str(exc) or type(exc).__name__,
            traceback=tb,
            run_seconds=run_seconds,
        )


def payload_nbytes(obj: Any) -> int:
    """Bytes ``obj`` occupies on the wire: pickle (protocol 5) + out-of-band buffers, with
    each :class:`~.shared.Shared` counted as its key. O(size of the pickle), no array copy."""
    import cloudpickle

    buffers: list[pickle.PickleBuffer] = []

    class _Counter(cloudpickle.Pickler):
        def persistent_id(self, o: Any) -> Any:
            if isinstance(o, _shared.Shared):
                # the wire form; a Ray/Dask/Lithops handle adds the backend's own id
                return (o.key, o.kind, o.handle if isinstance(o.handle, str) else None)
            return None

    sink = io.BytesIO()
    try:
        _Counter(sink, protocol=5, buffer_callback=buffers.append).dump(obj)
    except Exception:
        return -1  # not serialisable: the backend will report the error itself
    return sink.tell() + sum(b.raw().nbytes for b in buffers)


def run_task(fn: Any, args: tuple, kwargs: dict, measure: bool = False) -> Outcome:
    """Resolve shared references, run ``fn(*args, **kwargs)`` and time it; exceptions become a
    failed ``Outcome``. ``measure``: record the result's serialised size."""
    t0 = time.perf_counter()
    try:
        args, kwargs = _shared.resolve_args(args, kwargs)
        value = fn(*args, **kwargs)
    except (Exception, SystemExit) as exc:  # SystemExit: a task calling sys.exit() fails alone
        out = Outcome.failure(exc, run_seconds=time.perf_counter() - t0)
        return Outcome(
            ok=False,
            error_type=out.error_type,
            message=out.message,
            traceback=out.traceback,
            run_seconds=out.run_seconds,
            pid=os.getpid(),
            host=socket.gethostname(),
        )
    return Outcome(
        ok=True,
        value=value,
        run_seconds=time.perf_counter() - t0,
        pid=os.getpid(),
        host=socket.gethostname(),
        nbytes=payload_nbytes(value) if measure else None,
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
    return run_task(fn, args, kwargs, measure=True)


def run_task_lithops(fn: Any, args: tuple, kwargs: dict, storage: Any) -> Outcome:
    """Lithops entry point: Lithops passes its ``storage`` (a parameter of that name), which
    resolves references placed in Lithops storage."""
    _shared.lithops_storage = storage
    return run_task(fn, args, kwargs, measure=True)
