"""Run ``N`` torch.distributed worker processes on one machine (gloo by default).

Used by the tests and benchmarks of :mod:`frugalml.subspace.aggregation` (AdaCons, arXiv
2411.03742) and :mod:`frugalml.subspace.adasum` (AdaSum, arXiv 2006.02924).

:func:`run_workers` spawns ``N`` fresh interpreters (``multiprocessing`` "spawn" context, as
``torch.multiprocessing.spawn`` does), initialises a process group over TCP on a free
localhost port, calls ``fn(rank, world_size, *args, **kwargs)`` in each, and returns the
results by rank. A worker that raises makes the whole call raise in the parent, with the
worker's traceback; a worker that dies, or a run that exceeds ``timeout``, raises
:class:`~frugalml.errors.TaskFailedError`. All worker processes are terminated before returning
or raising.

``timeout`` bounds the whole call, the start-up of the interpreters included: when it passes,
the workers are terminated at once and the call raises within :data:`STOP_MARGIN` seconds.
Workers may report progress with :func:`report_progress`; the parent hands each report to
``run_workers(..., on_report=...)`` as ``on_report(rank, item)`` (richer than the library's
``progress(message, fraction)``: callers such as :func:`~.training.train_and_time` turn the
items into progress calls).
"""

from __future__ import annotations

import contextlib
import multiprocessing as mp
import os
import pickle
import queue as queue_mod
import socket
import time
import traceback
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from .._deprecation import renamed_parameters
from .._validate import check_choice, check_int, check_positive_float
from ..errors import FrugalError, InvalidInputError, TaskFailedError

__all__ = ["STOP_MARGIN", "WorkerTimeoutError", "free_port", "report_progress", "run_workers"]

_THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")

#: seconds a timed-out :func:`run_workers` may take beyond its ``timeout`` to stop the workers
#: (terminate, then kill those that do not exit within a second) and raise
STOP_MARGIN = 2.0


class WorkerTimeoutError(TaskFailedError):
    """The workers did not finish within the timeout (they were stopped)."""


#: set inside a worker process: (rank, the parent's queue)
_REPORTER: tuple[int, Any] | None = None


def report_progress(item: Any) -> None:
    """From inside a worker of :func:`run_workers`: send the picklable ``item`` to the parent's
    ``on_report`` callback (as ``on_report(rank, item)``). Does nothing outside a worker."""
    if _REPORTER is None:
        return
    rank, out = _REPORTER
    with contextlib.suppress(Exception):  # progress must never fail the work
        out.put((rank, "progress", pickle.dumps(item), ""))


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that was free on ``host`` a moment ago (bind to port 0, read, close)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind((host, 0))
        return int(s.getsockname()[1])


def _entry(
    rank: int,
    world: int,
    init_method: str,
    backend: str,
    timeout: float,
    threads: int,
    fn: Callable[..., Any],
    args: tuple,
    kwargs: dict,
    out: Any,
) -> None:
    global _REPORTER
    for var in _THREAD_VARS:
        os.environ[var] = str(threads)
    _REPORTER = (rank, out)
    try:
        import torch
        import torch.distributed as dist

        torch.set_num_threads(threads)
        dist.init_process_group(
            backend,
            init_method=init_method,
            rank=rank,
            world_size=world,
            timeout=timedelta(seconds=timeout),
        )
        try:
            result = fn(rank, world, *args, **kwargs)
        finally:
            with contextlib.suppress(Exception):
                dist.destroy_process_group()
        out.put((rank, "ok", pickle.dumps(result), ""))
    except BaseException as exc:  # report everything, including KeyboardInterrupt
        tb = traceback.format_exc()
        try:
            payload = pickle.dumps(exc)
            pickle.loads(payload)
        except Exception:
            payload = None
        out.put((rank, "err", payload, f"{type(exc).__name__}: {exc}\n{tb}"))


def _stop(procs: list[Any], grace: float) -> None:
    deadline = time.monotonic() + grace
    for p in procs:
        if p.pid is not None:
            p.join(max(0.0, deadline - time.monotonic()))
    for p in procs:
        if p.is_alive():
            p.terminate()
    deadline = time.monotonic() + 1.0
    for p in procs:
        if p.pid is not None:
            p.join(max(0.0, deadline - time.monotonic()))
    for p in procs:
        if p.is_alive():
            p.kill()
    for p in procs:
        if p.pid is not None:
            p.join(0.5)


def _timed_out(n_workers: int, results: dict, timeout: float) -> WorkerTimeoutError:
    missing = sorted(set(range(n_workers)) - set(results))
    return WorkerTimeoutError(
        f"workers {missing} did not finish within the timeout of {timeout:g} s "
        "(process start-up included); increase the timeout or make the run smaller"
    )


@renamed_parameters(progress="on_report")
def run_workers(
    fn: Callable[..., Any],
    n_workers: int,
    *,
    args: tuple = (),
    kwargs: dict[str, Any] | None = None,
    backend: str = "gloo",
    timeout: float = 300.0,
    threads_per_worker: int = 1,
    on_report: Callable[[int, Any], None] | None = None,
) -> list[Any]:
    """Run ``fn(rank, world_size, *args, **kwargs)`` in ``n_workers`` processes; results by rank.

    Parameters
    ----------
    fn:
        A picklable (module-level) function. It runs with the default process group already
        initialised (``backend``, ``world_size = n_workers``) and destroyed afterwards.
    n_workers:
        Number of processes, >= 1.
    args, kwargs:
        Picklable arguments passed to every worker.
    backend:
        ``"gloo"`` (CPU) or ``"nccl"`` (one GPU per rank; ``fn`` must pick its device).
    timeout:
        Seconds for the whole call, from now: starting the interpreters, initialising the
        process group and running ``fn``. When it passes the workers are terminated at once
        and :class:`~frugalml.errors.TaskFailedError` is raised within :data:`STOP_MARGIN`
        seconds. (Also the limit of each collective inside the workers.)
    threads_per_worker:
        torch/BLAS threads per worker process.
    on_report:
        Called in this process as ``on_report(rank, item)`` for every
        :func:`report_progress` ``(item)`` a worker makes. (Named ``progress`` in 0.1; that
        keyword still works, with a deprecation warning.)

    Raises
    ------
    The worker's own exception if it is a :class:`~frugalml.errors.FrugalError` (with the
    worker's traceback added as a note and as ``__cause__``), else
    :class:`~frugalml.errors.TaskFailedError` carrying the traceback; ``TaskFailedError`` also
    when a worker dies without reporting, :class:`WorkerTimeoutError` (a ``TaskFailedError``)
    when the timeout passes.
    """
    n_workers = check_int(n_workers, "n_workers", low=1, high=512)
    check_choice(backend, "backend", ("gloo", "nccl"))
    timeout = check_positive_float(timeout, "timeout")
    deadline = time.monotonic() + timeout  # start-up included: the caller asked for this
    threads = check_int(threads_per_worker, "threads_per_worker", low=1)
    if not callable(fn):
        raise InvalidInputError(f"fn must be callable, got {type(fn).__name__}")
    kwargs = dict(kwargs or {})
    try:
        pickle.dumps((fn, args, kwargs))
    except Exception as exc:
        raise InvalidInputError(
            f"fn, args and kwargs must be picklable to reach the worker processes ({exc}); "
            "define fn at module level"
        ) from exc
    ctx = mp.get_context("spawn")
    out = ctx.Queue()
    init_method = f"tcp://127.0.0.1:{free_port()}"
    procs = [
        ctx.Process(
            target=_entry,
            args=(rank, n_workers, init_method, backend, timeout, threads, fn, args, kwargs, out),
            daemon=True,
            name=f"frugalml-worker-{rank}",
        )
        for rank in range(n_workers)
    ]
    results: dict[int, Any] = {}
    error: tuple[int, bytes | None, str] | None = None
    finished = False
    try:
        for p in procs:
            p.start()
        while len(results) < n_workers and error is None:
            try:
                wait = min(0.2, max(0.01, deadline - time.monotonic()))
                rank, status, payload, text = out.get(timeout=wait)
            except queue_mod.Empty:
                dead = [
                    (i, p.exitcode)
                    for i, p in enumerate(procs)
                    if i not in results and p.exitcode is not None
                ]
                if dead:
                    time.sleep(0.5)  # its report may still be in the queue's pipe
                    with contextlib.suppress(queue_mod.Empty):
                        while True:
                            rank, status, payload, text = out.get(timeout=0.2)
                            if status == "progress":
                                continue
                            if status == "ok":
                                results[rank] = pickle.loads(payload)
                            elif error is None:
                                error = (rank, payload, text)
                    if error is None and any(i not in results for i, _ in dead):
                        i, code = next((i, c) for i, c in dead if i not in results)
                        raise TaskFailedError(
                            f"worker rank {i} died with exit code {code} without reporting "
                            "(killed for memory, or a crash in native code)"
                        ) from None
                if time.monotonic() >= deadline:
                    raise _timed_out(n_workers, results, timeout) from None
                continue
            if status == "progress":
                if on_report is not None:
                    on_report(rank, pickle.loads(payload))
                if time.monotonic() >= deadline:  # (a chatty worker must not hide the deadline)
                    raise _timed_out(n_workers, results, timeout) from None
            elif status == "ok":
                results[rank] = pickle.loads(payload)
            else:
                error = (rank, payload, text)
        finished = error is None
    finally:
        # workers that reported are exiting: give them a moment (bounded by the deadline);
        # on a timeout, an error or an interrupt stop them at once
        grace = min(5.0, max(0.0, deadline - time.monotonic())) if finished else 0.0
        _stop(procs, grace)
        out.close()
    if error is not None:
        rank, payload, text = error
        cause = TaskFailedError(f"worker rank {rank} failed:\n{text}")
        exc = pickle.loads(payload) if payload is not None else None
        if isinstance(exc, FrugalError):
            if hasattr(exc, "add_note"):
                exc.add_note(f"(raised in worker rank {rank}; its traceback follows)\n{text}")
            raise exc from cause
        raise cause
    return [results[r] for r in range(n_workers)]
