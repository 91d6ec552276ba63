"""Dask executor: tasks are ``distributed`` futures; first-k uses ``distributed.as_completed``.

Connects to a scheduler (``address="tcp://host:8786"``) or starts a ``LocalCluster`` that
``close()`` stops. The scheduler is told not to retry a task whose worker died
(``allowed_failures=0``), so the crash is reported as a failure at once.

``share`` places a value once. On a ``LocalCluster`` that this executor started (the workers
share this machine) it is written to ``/dev/shm`` like the local pool's shares
(:mod:`.filestore`): arrays are memory-mapped by the workers (zero copy, no transfer), and
the data survives the death of any worker. On a cluster joined by ``address`` (or with
``placement="scatter"``) it is scattered to every worker (``Client.scatter(broadcast=True)``,
after waiting for the cluster's workers to be up) and tasks carry the future, which Dask
resolves on the worker. Scattered data is not recomputable: when every worker that held it
died, Dask forgets it; the executor keeps a reference to the value (no copy) and scatters it
again before the next task that needs it, so such a loss costs the tasks then in flight.
``release`` frees the data.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable
from typing import Any

from .._validate import check_choice, check_int, check_positive_float
from ..errors import InvalidInputError
from ._optional import require
from ._task import Outcome, payload_nbytes, run_task
from .base import BaseExecutor
from .filestore import FileStore
from .shared import Shared, substitute

__all__ = ["DaskExecutor"]


class DaskExecutor(BaseExecutor):
    """Run tasks on Dask distributed.

    Parameters
    ----------
    address:
        Scheduler to connect to; ``None`` starts a ``LocalCluster``.
    workers, threads_per_worker, processes:
        LocalCluster shape (default: one single-threaded worker process per core).
        ``n_workers`` is accepted as an alias of ``workers``.
    allowed_failures:
        Times the scheduler retries a task whose worker died (LocalCluster only).
    lost_result_wait:
        Seconds to wait for Dask to recompute a finished result lost with its worker before
        it was fetched (then the task counts as failed).
    placement:
        Where ``share`` puts values: ``"auto"`` (files on ``/dev/shm`` for a LocalCluster this
        executor started, else scatter), ``"file"`` or ``"scatter"``.
    """

    backend = "dask"

    def __init__(
        self,
        address: str | None = None,
        *,
        workers: int | None = None,
        n_workers: int | None = None,
        threads_per_worker: int = 1,
        processes: bool = True,
        allowed_failures: int = 0,
        placement: str = "auto",
        lost_result_wait: float = 30.0,
        max_wait: float = 3600.0,
    ):
        super().__init__(max_wait=max_wait)
        dask = require("dask", what="the Dask executor", extra="distributed")
        distributed = require("distributed", what="the Dask executor", extra="distributed")
        self._distributed = distributed
        self._cluster = None
        self._expected_workers = 0
        self._values: dict[str, Any] = {}  # key -> the shared value (to scatter it again)
        self._futures: dict[str, Any] = {}  # key -> its current future
        placement = check_choice(placement, "placement", ("auto", "file", "scatter"))
        self.lost_result_wait = check_positive_float(lost_result_wait, "lost_result_wait")
        if workers is not None and n_workers is not None and workers != n_workers:
            raise InvalidInputError(
                f"got workers={workers} and n_workers={n_workers}; give only workers"
            )
        n_workers = workers if workers is not None else n_workers
        if address is None:
            import os

            n_workers = check_int(
                n_workers if n_workers is not None else (os.cpu_count() or 1), "workers", low=1
            )
            threads_per_worker = check_int(threads_per_worker, "threads_per_worker", low=1)
            allowed_failures = check_int(allowed_failures, "allowed_failures", low=0)
            self.isolates_processes = bool(processes)
            # worker-saturation 1.0: a worker holds only the tasks it runs, so a worker that
            # dies takes only its own running tasks with it (at the default 1.1 one queued
            # task per worker would be lost too).
            settings = {
                "distributed.scheduler.allowed-failures": allowed_failures,
                "distributed.scheduler.worker-saturation": 1.0,
            }
            with dask.config.set(settings):
                self._cluster = distributed.LocalCluster(
                    n_workers=n_workers,
                    threads_per_worker=threads_per_worker,
                    processes=processes,
                    dashboard_address=None,
                    silence_logs=logging.ERROR,
                )
            self._client = distributed.Client(self._cluster, set_as_default=False)
            self._expected_workers = n_workers
        else:
            self._client = distributed.Client(address, set_as_default=False)
        if placement == "auto":
            placement = "file" if self._cluster is not None else "scatter"
        self.placement = placement
        self._store = FileStore(self.backend, self._owner)

    @property
    def client(self) -> Any:
        """The ``distributed.Client`` in use."""
        return self._client

    @property
    def workers(self) -> int:
        """Worker processes connected now."""
        return len(self._client.scheduler_info(n_workers=-1).get("workers", {}))

    def _submit_native(self, fn: Callable[..., Any], args: tuple, kwargs: dict) -> Any:
        return self._client.submit(run_task, fn, args, kwargs, True, pure=False)

    def _prepare_args(self, args: tuple, kwargs: dict) -> tuple[tuple, dict]:
        # Dask resolves the futures it finds in a task's arguments on the worker.
        return substitute(args, self._live_future), substitute(kwargs, self._live_future)

    def _live_future(self, ref: Shared) -> Any:
        """The future of ``ref``'s data, scattered again if Dask lost it (its workers died);
        a file-placed reference stays as it is (the worker maps the file)."""
        if ref.kind != "dask":
            return ref
        future = self._futures.get(ref.key, ref.handle)
        if future.status in ("lost", "error", "cancelled") and ref.key in self._values:
            future = self._scatter(self._values[ref.key])
            self._futures[ref.key] = future
        return future

    def _scatter(self, value: Any) -> Any:
        if self._expected_workers:
            # broadcast reaches the workers up now: wait for all (a restarting one, too)
            with contextlib.suppress(Exception):
                self._client.wait_for_workers(self._expected_workers, timeout=60)
        # a list around the value: scatter() would otherwise scatter a list's elements
        (future,) = self._client.scatter([value], broadcast=True, hash=False)
        return future

    def _place(self, value: Any, key: str, what: str) -> Shared:
        if self.placement == "file":
            return self._store.place(value, key, what)
        nbytes = value.nbytes if hasattr(value, "nbytes") else payload_nbytes(value)
        future = self._scatter(value)
        self._values[key] = value
        self._futures[key] = future
        return Shared(key, self.backend, self._owner, "dask", future, int(nbytes), what)

    def _unplace(self, ref: Shared) -> None:
        if ref.kind != "dask":
            FileStore.unplace(ref)
            return
        self._values.pop(ref.key, None)
        future = self._futures.pop(ref.key, ref.handle)
        for fut in {id(future): future, id(ref.handle): ref.handle}.values():
            with contextlib.suppress(Exception):  # already released or client closed
                fut.release()

    def _wait_any(self, natives: list[Any], timeout: float) -> list[Any]:
        stream = self._distributed.as_completed(natives, loop=self._client.loop, timeout=timeout)
        try:
            first = next(stream)
        except (TimeoutError, StopIteration):
            return []
        return [first, *stream.next_batch(block=False)]

    def _collect(self, native: Any) -> Outcome:
        try:
            if native.status in ("error", "cancelled"):
                exc = native.exception(timeout=self.max_wait)
                return Outcome.failure(exc if exc is not None else RuntimeError(native.status))
            if native.status == "finished":
                return native.result(timeout=self.max_wait)
            # "lost": a finished result that died with its worker before it was fetched;
            # Dask computes it again if a worker is left. Wait a bounded time, else erasure.
            return native.result(timeout=min(self.max_wait, self.lost_result_wait))
        except Exception as exc:  # CancelledError, KilledWorker, FutureCancelledError...
            return Outcome.failure(exc)

    def _cancel_natives(self, natives: list[Any]) -> None:
        # Queued tasks are dropped; a task already running keeps its worker thread until it
        # returns, while the scheduler counts that thread as free again, so new tasks may
        # queue behind it on that worker.
        self._client.cancel(natives)

    @property
    def share_dirs(self) -> tuple[str, ...]:
        """Directories of file-placed shares (removed by ``close()``)."""
        return self._store.dirs

    def _shutdown(self) -> None:
        try:
            self._client.close()
            if self._cluster is not None:
                self._cluster.close()
        finally:
            self._store.close()
