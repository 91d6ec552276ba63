"""Local executor: a ``concurrent.futures`` process pool (default) or thread pool.

Processes give isolation: a task that crashes its worker (segfault, ``os._exit``) is recorded
as a failed task, and the pool is rebuilt for the next submission. Functions are serialised
with cloudpickle, so lambdas and closures work as they do on Ray and Dask. Worker processes
are started with ``spawn`` (safe beside threads) and have their BLAS pools limited to one
thread each, since ``max_workers`` processes already share the cores. As with any spawn-based
pool, a script that creates one must guard its entry point with
``if __name__ == "__main__":``.

When a worker process dies, ``concurrent.futures`` marks every task then in flight on that
pool as failed (``BrokenProcessPool``); they are reported as failures, and the next submission
starts a fresh pool.
"""

from __future__ import annotations

import multiprocessing
import os
import threading
import time
from collections.abc import Callable
from concurrent import futures as cf
from concurrent.futures.process import BrokenProcessPool
from typing import Any, Literal

from .._validate import check_choice, check_int
from ._task import Outcome, run_pickled, run_task
from .base import BaseExecutor

__all__ = ["LocalExecutor"]

_THREAD_ENV = (
    "OMP_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "MKL_NUM_THREADS",
    "VECLIB_MAXIMUM_THREADS",
    "NUMEXPR_NUM_THREADS",
)


_worker_limits: object = None


def _init_worker(blas_threads: int) -> None:
    # Libraries loaded later read the variables; those already loaded (NumPy's OpenBLAS is,
    # since this module imports NumPy) are limited through threadpoolctl.
    global _worker_limits
    for var in _THREAD_ENV:
        os.environ[var] = str(blas_threads)
    from threadpoolctl import threadpool_limits

    _worker_limits = threadpool_limits(limits=blas_threads)


class LocalExecutor(BaseExecutor):
    """Run tasks on this machine.

    Parameters
    ----------
    max_workers:
        Pool size; default ``os.cpu_count()``. Tasks that mostly wait (I/O, injected
        straggler delays) may use more workers than cores.
    kind:
        ``"process"`` (isolated, default) or ``"thread"`` (no pickling, shares memory; a task
        cannot be stopped once started).
    start_method:
        multiprocessing start method for process pools (``"spawn"``, ``"forkserver"``,
        ``"fork"``).
    blas_threads:
        BLAS/OpenMP threads in each worker process.
    max_wait:
        Safety bound of a gather without deadline (see :class:`BaseExecutor`).
    """

    backend = "local"

    def __init__(
        self,
        max_workers: int | None = None,
        *,
        kind: Literal["process", "thread"] = "process",
        start_method: str = "spawn",
        blas_threads: int = 1,
        max_wait: float = 3600.0,
    ):
        super().__init__(max_wait=max_wait)
        self.kind = check_choice(kind, "kind", ("process", "thread"))
        self.max_workers = check_int(
            max_workers if max_workers is not None else (os.cpu_count() or 1), "max_workers", low=1
        )
        self.start_method = check_choice(
            start_method, "start_method", multiprocessing.get_all_start_methods()
        )
        self.blas_threads = check_int(blas_threads, "blas_threads", low=1)
        self.isolates_processes = kind == "process"
        self.backend = "local" if kind == "process" else "local-thread"
        self._pool: cf.Executor | None = None
        self._done_at: dict[int, float] = {}
        self._lock = threading.Lock()

    def _make_pool(self) -> cf.Executor:
        if self.kind == "thread":
            return cf.ThreadPoolExecutor(self.max_workers, thread_name_prefix="frugalml")
        return cf.ProcessPoolExecutor(
            self.max_workers,
            mp_context=multiprocessing.get_context(self.start_method),
            initializer=_init_worker,
            initargs=(self.blas_threads,),
        )

    def _stamp(self, fut: cf.Future) -> None:
        with self._lock:
            self._done_at[id(fut)] = time.perf_counter()

    def _submit_native(self, fn: Callable[..., Any], args: tuple, kwargs: dict) -> cf.Future:
        if self._pool is None:
            self._pool = self._make_pool()
        if self.kind == "thread":
            fut = self._pool.submit(run_task, fn, args, kwargs)
        else:
            import cloudpickle

            payload = cloudpickle.dumps((fn, args, kwargs))
            try:
                fut = self._pool.submit(run_pickled, payload)
            except BrokenProcessPool:
                # A worker died earlier: every task then in flight was recorded as failed.
                # Start a fresh pool so the executor stays usable.
                self._terminate_pool(self._pool)
                self._pool = self._make_pool()
                fut = self._pool.submit(run_pickled, payload)
        fut.add_done_callback(self._stamp)
        return fut

    def _wait_any(self, natives: list[cf.Future], timeout: float) -> list[cf.Future]:
        done, _ = cf.wait(natives, timeout=timeout, return_when=cf.FIRST_COMPLETED)
        return list(done)

    def _arrival_time(self, native: cf.Future, observed: float) -> float:
        with self._lock:
            return self._done_at.get(id(native), observed)

    def _collect(self, native: cf.Future) -> Outcome:
        with self._lock:
            self._done_at.pop(id(native), None)
        try:
            return native.result(timeout=0)
        except BaseException as exc:  # BrokenProcessPool, CancelledError, pickling errors
            if isinstance(exc, KeyboardInterrupt):
                raise
            return Outcome.failure(exc)

    def _cancel_natives(self, natives: list[cf.Future]) -> None:
        for fut in natives:
            if fut.cancel():  # never ran: its completion stamp will never be read
                with self._lock:
                    self._done_at.pop(id(fut), None)

    @staticmethod
    def _terminate_pool(pool: cf.Executor) -> None:
        # shutdown() forgets the worker processes, so take them first.
        procs = list((getattr(pool, "_processes", None) or {}).values())
        pool.shutdown(wait=False, cancel_futures=True)
        for proc in procs:
            if proc.is_alive():
                proc.terminate()
        for proc in procs:
            proc.join(timeout=5)
            if proc.is_alive():
                proc.kill()
                proc.join(timeout=5)

    def _shutdown(self) -> None:
        pool, self._pool = self._pool, None
        if pool is None:
            return
        if isinstance(pool, cf.ProcessPoolExecutor):
            # Running tasks (stragglers) are stopped rather than waited for.
            self._terminate_pool(pool)
        else:
            # Threads cannot be killed: queued tasks are cancelled, running ones finish.
            pool.shutdown(wait=False, cancel_futures=True)
