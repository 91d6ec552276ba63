"""Local executor: a process pool (default, :mod:`pebble`) or a daemon thread pool.

Processes give isolation. The pool is pebble's ``ProcessPool``, which tracks which worker
runs which task: a task that crashes its worker (segfault, ``os._exit``) fails alone with
``ProcessExpired``, every other task finishes, and pebble starts a replacement worker
(``concurrent.futures`` would instead fail every task then in flight with
``BrokenProcessPool``; docs/runtime.md explains the choice). Functions are serialised with
cloudpickle, so lambdas and closures work as they do on Ray and Dask. Worker processes are
started with ``spawn`` (safe beside threads) and have their BLAS pools limited to one thread
each, since ``workers`` processes already share the cores. As with any spawn-based pool, a
script that creates one must guard its entry point with ``if __name__ == "__main__":``.

Start-up is not counted against deadlines: the first ``submit`` starts every worker and waits
until each has imported its libraries (:meth:`LocalExecutor.start` does it explicitly).

Shared values (:meth:`~frugalml.runtime.BaseExecutor.share`) live in a private directory on
``/dev/shm`` (:mod:`.filestore`): arrays as ``.npy`` files that workers memory-map read-only
(zero copy), other values as one pickle each, loaded once per worker. ``close()`` deletes the
directory; so does the garbage collector or the interpreter's exit if ``close()`` was never
called.

The thread pool's threads are daemons: a task that hangs does not keep the interpreter alive
after ``close()``.

Pool size: ``workers`` is checked when the executor is made, before anything starts: a pool
that would need more memory than the machine has (about ``WORKER_BYTES`` per worker: a Python
process with NumPy loaded, or a thread's committed stack and bookkeeping) raises
:class:`~frugalml.errors.TooLargeError`, and one with more workers than the processes/threads
this user may start (``RLIMIT_NPROC``) raises :class:`~frugalml.errors.InvalidInputError`.
"""

from __future__ import annotations

import multiprocessing
import os
import threading
import time
from collections.abc import Callable
from concurrent import futures as cf
from typing import Any, Literal

from .._resources import check_memory
from .._validate import check_choice, check_int, check_positive_float
from ..errors import FrugalError, InvalidInputError
from ._task import Outcome, run_pickled, run_task
from ._threads import DaemonThreadPool
from .base import BaseExecutor
from .filestore import FileStore
from .shared import Shared

__all__ = ["LocalExecutor"]

_THREAD_ENV = (
    "OMP_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "MKL_NUM_THREADS",
    "VECLIB_MAXIMUM_THREADS",
    "NUMEXPR_NUM_THREADS",
)


_worker_limits: object = None

#: nominal memory of one worker: a spawned Python process with NumPy, or one pool thread
WORKER_BYTES = {"process": 64 << 20, "thread": 256 << 10}


def check_pool_size(workers: int, kind: str) -> None:
    """Refuse a pool of ``workers`` processes or threads that this machine cannot hold
    (memory) or that this user may not start (``RLIMIT_NPROC``), before starting any."""
    check_memory(
        workers * WORKER_BYTES[kind],
        f"a {kind} pool of {workers} workers",
        fix="use fewer workers (--workers)",
    )
    try:
        import resource

        soft, _ = resource.getrlimit(resource.RLIMIT_NPROC)
    except (ImportError, OSError, ValueError, AttributeError):  # pragma: no cover - platforms
        return
    if soft != resource.RLIM_INFINITY and workers > soft:
        raise InvalidInputError(
            f"a {kind} pool of {workers} workers exceeds the {soft} processes/threads this "
            "user may start (ulimit -u); use fewer workers (--workers)"
        )


def _init_worker(blas_threads: int, ready: Any, preload: tuple[str, ...] = ()) -> None:
    # Libraries loaded later read the variables; those already loaded (NumPy's OpenBLAS is,
    # since this module imports NumPy) are limited through threadpoolctl.
    global _worker_limits
    for var in _THREAD_ENV:
        os.environ[var] = str(blas_threads)
    from threadpoolctl import threadpool_limits

    _worker_limits = threadpool_limits(limits=blas_threads)
    import importlib

    import cloudpickle  # noqa: F401  (imported before the first task, not during it)

    for module in preload:  # the tasks' own modules: imported during start-up, not in a task
        importlib.import_module(module)

    ready.release()


class LocalExecutor(BaseExecutor):
    """Run tasks on this machine.

    Parameters
    ----------
    workers:
        Pool size; default ``os.cpu_count()``. Tasks that mostly wait (I/O, injected
        straggler delays) may use more workers than cores. (``max_workers`` is accepted as
        an alias.)
    kind:
        ``"process"`` (isolated, default) or ``"thread"`` (no pickling, shares memory; a task
        cannot be stopped once started).
    start_method:
        multiprocessing start method for process pools (``"spawn"``, ``"forkserver"``,
        ``"fork"``).
    blas_threads:
        BLAS/OpenMP threads in each worker process.
    start_timeout:
        Seconds to wait for the process pool's workers to start.
    preload:
        Modules every worker process imports while it starts (e.g. ``("frugalml.sketch",)``),
        so that importing the tasks' libraries is part of start-up, which no deadline counts,
        rather than of the first task.
    cancel_running:
        ``cancel`` also stops running tasks of the process pool by stopping their workers
        (pebble starts replacements); default False: only queued tasks are dropped.
    max_wait:
        Safety bound of a gather without deadline (see :class:`BaseExecutor`).
    """

    backend = "local"

    def __init__(
        self,
        workers: int | None = None,
        *,
        kind: Literal["process", "thread"] = "process",
        start_method: str = "spawn",
        blas_threads: int = 1,
        start_timeout: float = 120.0,
        cancel_running: bool = False,
        preload: tuple[str, ...] | list[str] = (),
        max_wait: float = 3600.0,
        max_workers: int | None = None,
    ):
        super().__init__(max_wait=max_wait)
        if workers is not None and max_workers is not None and workers != max_workers:
            raise InvalidInputError(
                f"got workers={workers} and max_workers={max_workers}; give only workers"
            )
        workers = workers if workers is not None else max_workers
        self.kind = check_choice(kind, "kind", ("process", "thread"))
        self.workers = check_int(
            workers if workers is not None else (os.cpu_count() or 1), "workers", low=1
        )
        self.start_method = check_choice(
            start_method, "start_method", multiprocessing.get_all_start_methods()
        )
        check_pool_size(self.workers, self.kind)
        self.blas_threads = check_int(blas_threads, "blas_threads", low=1)
        self.start_timeout = check_positive_float(start_timeout, "start_timeout")
        self.cancel_running = bool(cancel_running)
        if isinstance(preload, str) or not all(isinstance(m, str) for m in preload):
            raise InvalidInputError(f"preload takes a sequence of module names, got {preload!r}")
        self.preload = tuple(preload)
        self.isolates_processes = kind == "process"
        self.copies_data = kind == "process"
        self.backend = "local" if kind == "process" else "local-thread"
        self._pool: Any = None
        self._done_at: dict[int, float] = {}
        self._lock = threading.Lock()
        self._store = FileStore(self.backend, self._owner)
        #: seconds the process pool took to start (None until started)
        self.start_seconds: float | None = None

    @property
    def max_workers(self) -> int:
        """Alias of ``workers`` (the former name)."""
        return self.workers

    # -- pool ------------------------------------------------------------------------------
    def start(self) -> None:
        """Start the workers now and wait until each is ready (import done). Called by the
        first ``submit``; calling it first keeps start-up out of every measurement."""
        self._check_open()
        if self._pool is not None:
            return
        if self.kind == "thread":
            self._pool = DaemonThreadPool(self.workers)
            self.start_seconds = 0.0
            return
        import pebble

        t0 = time.perf_counter()
        ctx = multiprocessing.get_context(self.start_method)
        ready = ctx.Semaphore(0)
        pool = pebble.ProcessPool(
            max_workers=self.workers,
            initializer=_init_worker,
            initargs=(self.blas_threads, ready, self.preload),
            context=ctx,
        )
        self._pool = pool
        # pebble starts all its workers with the first task; wait until each has run the
        # initializer.
        pool.schedule(os.getpid)
        end = t0 + self.start_timeout
        for started in range(self.workers):
            if not ready.acquire(timeout=max(end - time.perf_counter(), 0.0)):
                raise FrugalError(
                    f"only {started} of {self.workers} local worker processes started within "
                    f"{self.start_timeout:g}s; raise start_timeout or use fewer workers"
                )
        self.start_seconds = time.perf_counter() - t0

    def _stamp(self, fut: cf.Future) -> None:
        with self._lock:
            self._done_at[id(fut)] = time.perf_counter()

    def _submit_native(self, fn: Callable[..., Any], args: tuple, kwargs: dict) -> cf.Future:
        if self._pool is None:
            self.start()
        if self.kind == "thread":
            fut = self._pool.submit(run_task, fn, args, kwargs)
        else:
            import cloudpickle

            payload = cloudpickle.dumps((fn, args, kwargs))
            fut = self._pool.schedule(run_pickled, args=(payload,))
            fut._frugal_nbytes = len(payload)  # the bytes that really travel
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
        except BaseException as exc:  # ProcessExpired (worker died), CancelledError, ...
            if isinstance(exc, KeyboardInterrupt):
                raise
            return Outcome.failure(exc)

    def _cancel_natives(self, natives: list[cf.Future]) -> None:
        # Queued tasks are dropped. A running task is left to finish unless
        # ``cancel_running``: pebble would stop its worker, and starting a replacement costs
        # more than most stragglers have left (coded products cancel theirs on every call).
        for fut in natives:
            if fut.running() and not self.cancel_running:
                continue
            if fut.cancel():
                with self._lock:
                    self._done_at.pop(id(fut), None)

    def _shutdown(self) -> None:
        pool, self._pool = self._pool, None
        if pool is None:
            return
        if self.kind == "thread":
            # Threads cannot be killed: queued tasks are cancelled, running ones are
            # abandoned (daemon threads do not keep the interpreter alive).
            pool.shutdown()
            return
        # Running tasks (stragglers) are stopped rather than waited for.
        pool.stop()
        pool.join(timeout=30)

    def _call_nbytes(self, fn: Callable[..., Any], args: tuple, kwargs: dict) -> int:
        return 0  # measured exactly on the payload in _submit_native (process pool)

    # -- shared values ---------------------------------------------------------------------
    @property
    def share_dirs(self) -> tuple[str, ...]:
        """The private directories holding this executor's shared values (removed by
        ``close()``)."""
        return self._store.dirs

    def _place(self, value: Any, key: str, what: str) -> Shared:
        if self.kind == "thread":
            nbytes = int(getattr(value, "nbytes", 0) or 0)
            return Shared(key, self.backend, self._owner, "object", value, nbytes, what)
        return self._store.place(value, key, what)

    def _unplace(self, ref: Shared) -> None:
        FileStore.unplace(ref)

    def close(self) -> None:
        super().close()
        self._store.close()
