"""A thread pool whose threads never hold the interpreter open.

``concurrent.futures.ThreadPoolExecutor`` joins its threads at interpreter exit, so one task
that hangs (a straggler past its deadline) keeps the program alive after the executor was
closed. Here the workers are daemon threads: ``shutdown`` cancels what is queued and returns
at once, and a task still running is abandoned when the program exits. Futures are standard
``concurrent.futures.Future`` objects.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any

__all__ = ["DaemonThreadPool"]

_STOP = object()


class DaemonThreadPool:
    """``workers`` daemon threads serving one FIFO queue. Threads start on first submit."""

    def __init__(self, workers: int, name: str = "frugalml"):
        self.workers = workers
        self.name = name
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()
        self._shutdown = False

    def _start(self) -> None:
        for i in range(self.workers):
            t = threading.Thread(target=self._serve, name=f"{self.name}-{i}", daemon=True)
            t.start()
            self._threads.append(t)

    def _serve(self) -> None:
        while True:
            item = self._queue.get()
            if item is _STOP:
                return
            fut, fn, args, kwargs = item
            if not fut.set_running_or_notify_cancel():
                continue
            try:
                value = fn(*args, **kwargs)
            except BaseException as exc:
                fut.set_exception(exc)
            else:
                fut.set_result(value)
            del fut, fn, args, kwargs, item

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future:
        with self._lock:
            if self._shutdown:
                raise RuntimeError("cannot submit to a pool that was shut down")
            if not self._threads:
                self._start()
            fut: Future = Future()
            self._queue.put((fut, fn, args, kwargs))
            return fut

    def shutdown(self) -> None:
        """Cancel queued tasks and stop the threads once their current task returns.
        Returns at once; running tasks are not waited for."""
        with self._lock:
            if self._shutdown:
                return
            self._shutdown = True
            pending = []
            while True:
                try:
                    pending.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            for item in pending:
                if item is not _STOP:
                    item[0].cancel()
            for _ in self._threads:
                self._queue.put(_STOP)
