"""Dask executor: tasks are ``distributed`` futures; first-k uses ``distributed.as_completed``.

Connects to a scheduler (``address="tcp://host:8786"``) or starts a ``LocalCluster`` that
``close()`` stops. The scheduler is told not to retry a task whose worker died
(``allowed_failures=0``), so the crash is reported as a failure at once.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from .._validate import check_int
from ._optional import require
from ._task import Outcome, run_task
from .base import BaseExecutor

__all__ = ["DaskExecutor"]


class DaskExecutor(BaseExecutor):
    """Run tasks on Dask distributed.

    Parameters
    ----------
    address:
        Scheduler to connect to; ``None`` starts a ``LocalCluster``.
    n_workers, threads_per_worker, processes:
        LocalCluster shape (default: one single-threaded worker process per core).
    allowed_failures:
        Times the scheduler retries a task whose worker died (LocalCluster only).
    """

    backend = "dask"

    def __init__(
        self,
        address: str | None = None,
        *,
        n_workers: int | None = None,
        threads_per_worker: int = 1,
        processes: bool = True,
        allowed_failures: int = 0,
        max_wait: float = 3600.0,
    ):
        super().__init__(max_wait=max_wait)
        dask = require("dask", what="the Dask executor", extra="distributed")
        distributed = require("distributed", what="the Dask executor", extra="distributed")
        self._distributed = distributed
        self._cluster = None
        if address is None:
            import os

            n_workers = check_int(
                n_workers if n_workers is not None else (os.cpu_count() or 1), "n_workers", low=1
            )
            threads_per_worker = check_int(threads_per_worker, "threads_per_worker", low=1)
            allowed_failures = check_int(allowed_failures, "allowed_failures", low=0)
            self.isolates_processes = bool(processes)
            with dask.config.set({"distributed.scheduler.allowed-failures": allowed_failures}):
                self._cluster = distributed.LocalCluster(
                    n_workers=n_workers,
                    threads_per_worker=threads_per_worker,
                    processes=processes,
                    dashboard_address=None,
                    silence_logs=logging.ERROR,
                )
            self._client = distributed.Client(self._cluster, set_as_default=False)
        else:
            self._client = distributed.Client(address, set_as_default=False)

    @property
    def client(self) -> Any:
        """The ``distributed.Client`` in use."""
        return self._client

    def _submit_native(self, fn: Callable[..., Any], args: tuple, kwargs: dict) -> Any:
        return self._client.submit(run_task, fn, args, kwargs, pure=False)

    def _wait_any(self, natives: list[Any], timeout: float) -> list[Any]:
        stream = self._distributed.as_completed(natives, loop=self._client.loop, timeout=timeout)
        try:
            first = next(stream)
        except (TimeoutError, StopIteration):
            return []
        return [first, *stream.next_batch(block=False)]

    def _collect(self, native: Any) -> Outcome:
        try:
            if native.status == "finished":
                return native.result(timeout=self.max_wait)
            exc = native.exception(timeout=self.max_wait)
            return Outcome.failure(exc if exc is not None else RuntimeError(native.status))
        except Exception as exc:  # CancelledError, KilledWorker, FutureCancelledError...
            return Outcome.failure(exc)

    def _cancel_natives(self, natives: list[Any]) -> None:
        # Queued tasks are dropped; a task already running keeps its worker thread until it
        # returns, while the scheduler counts that thread as free again, so new tasks may
        # queue behind it on that worker.
        self._client.cancel(natives)

    def _shutdown(self) -> None:
        self._client.close()
        if self._cluster is not None:
            self._cluster.close()
