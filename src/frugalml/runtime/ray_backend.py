"""Ray executor: tasks are Ray remote functions; first-k uses ``ray.wait(num_returns=...)``.

Connects to an existing cluster (``address="auto"`` or ``"ray://host:10001"``) or starts a
local one with ``num_cpus`` logical CPUs; a cluster it started is shut down by ``close()``.
Tasks are not retried (``max_retries=0``) so a crashed worker is reported as a failure at once,
which is what a straggler-resilient caller wants (it has redundancy of its own).

``share`` puts a value in Ray's object store once (``ray.put``; NumPy arrays are then read
zero-copy by the workers on the node); tasks carry the ``ObjectRef`` inside a
:class:`~frugalml.runtime.Shared` token and resolve it on the worker (cached per worker
process). ``release`` frees the object.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable
from typing import Any

from .._validate import check_int, check_positive_float
from ..errors import InvalidInputError
from ._optional import require
from ._task import Outcome, payload_nbytes, run_task
from .base import BaseExecutor
from .shared import Shared, forget

__all__ = ["RayExecutor"]


class RayExecutor(BaseExecutor):
    """Run tasks on Ray.

    Parameters
    ----------
    address:
        Cluster to join; ``None`` starts a local Ray instance (unless one is already running in
        this process, which is then used and left running).
    workers:
        Logical CPUs of a locally started instance, i.e. how many tasks run at once with
        ``task_cpus=1`` (default: all cores). ``num_cpus`` is accepted as an alias.
    task_cpus:
        CPUs each task reserves. Below 1 lets more tasks than cores run at once (for tasks
        that mostly wait).
    max_retries:
        Ray's task retries on worker failure (default 0: a crash is a failure).
    force_cancel:
        ``cancel`` kills running tasks' workers instead of interrupting them.
    init_kwargs:
        Extra keyword arguments for ``ray.init``.
    """

    backend = "ray"
    isolates_processes = True

    def __init__(
        self,
        address: str | None = None,
        *,
        workers: int | None = None,
        num_cpus: int | None = None,
        task_cpus: float = 1.0,
        max_retries: int = 0,
        force_cancel: bool = False,
        init_kwargs: dict[str, Any] | None = None,
        max_wait: float = 3600.0,
    ):
        super().__init__(max_wait=max_wait)
        ray = require("ray", what="the Ray executor", extra="distributed")
        self._ray = ray
        if workers is not None and num_cpus is not None and workers != num_cpus:
            raise InvalidInputError(
                f"got workers={workers} and num_cpus={num_cpus}; give only workers"
            )
        num_cpus = workers if workers is not None else num_cpus
        if num_cpus is not None:
            num_cpus = check_int(num_cpus, "workers", low=1)
        self.workers = num_cpus
        task_cpus = check_positive_float(task_cpus, "task_cpus")
        max_retries = check_int(max_retries, "max_retries", low=0)
        self.force_cancel = bool(force_cancel)
        self._owns_ray = False
        if not ray.is_initialized():
            kwargs: dict[str, Any] = {
                "include_dashboard": False,
                "log_to_driver": False,
                "logging_level": logging.ERROR,
            }
            if address is None:
                kwargs["num_cpus"] = num_cpus
            else:
                kwargs["address"] = address
            kwargs.update(init_kwargs or {})
            ray.init(**kwargs)
            self._owns_ray = True
        self._remote = ray.remote(num_cpus=task_cpus, max_retries=max_retries)(run_task)

    def _submit_native(self, fn: Callable[..., Any], args: tuple, kwargs: dict) -> Any:
        return self._remote.remote(fn, args, kwargs, True)

    def _place(self, value: Any, key: str, what: str) -> Shared:
        nbytes = value.nbytes if hasattr(value, "nbytes") else payload_nbytes(value)
        ref = self._ray.put(value)
        return Shared(key, self.backend, self._owner, "ray", ref, int(nbytes), what)

    def _unplace(self, ref: Shared) -> None:
        forget(ref.key)
        with contextlib.suppress(Exception):
            from ray._private.internal_api import free

            free([ref.handle])

    def _wait_any(self, natives: list[Any], timeout: float) -> list[Any]:
        ray = self._ray
        ready, rest = ray.wait(natives, num_returns=1, timeout=timeout, fetch_local=False)
        if ready and rest:  # pick up whatever else is already done, without blocking
            more, _ = ray.wait(rest, num_returns=len(rest), timeout=0, fetch_local=False)
            ready += more
        return ready

    def _collect(self, native: Any) -> Outcome:
        try:
            return self._ray.get(native, timeout=self.max_wait)
        except Exception as exc:  # WorkerCrashedError, TaskCancelledError, ObjectLostError...
            return Outcome.failure(exc)

    def _cancel_natives(self, natives: list[Any]) -> None:
        for ref in natives:
            # a task already finished or lost has nothing to cancel
            with contextlib.suppress(Exception):
                self._ray.cancel(ref, force=self.force_cancel)

    def _shutdown(self) -> None:
        if self._owns_ray:
            self._ray.shutdown()
