"""Lithops executor: serverless functions (AWS Lambda, GCP, IBM, ... or ``localhost``).

Each task is one ``call_async``. Completion is detected by polling the futures' status with
Lithops' non-blocking ``wait(return_when=ALWAYS)``: Lithops' own ``timeout`` is a SIGALRM in
whole seconds that only works on the main thread, too coarse for first-k deadlines.

Configuration is a Lithops config dict (``{"lithops": {...}, "aws_lambda": {...}, ...}``);
for the ``localhost`` backend the runtime defaults to the running interpreter (Lithops would
otherwise start the bare ``python`` on PATH, which may not have frugalml installed).

``share`` uploads a value once to Lithops storage (the ``localhost`` storage in tests, the
configured object store on a cloud: S3, GCS, ...): arrays as ``.npy`` bytes, other values
pickled. Functions receive the storage handle from Lithops and read what they need, once per
worker process. ``release`` and ``close`` delete the objects.
"""

from __future__ import annotations

import atexit
import contextlib
import copy
import logging
import sys
import time
from collections.abc import Callable
from typing import Any

from .._validate import check_int, check_positive_float
from ._optional import require
from ._task import Outcome, run_task_lithops
from .base import BaseExecutor
from .shared import Shared, forget

__all__ = ["LithopsExecutor"]

_ALWAYS = 0  # lithops.wait.ALWAYS: check status once and return


def localhost_config(workers: int | None = None) -> dict[str, Any]:
    """A Lithops config for the ``localhost`` backend running this interpreter."""
    cfg: dict[str, Any] = {
        "lithops": {"backend": "localhost", "storage": "localhost", "log_level": "ERROR"},
        "localhost": {"runtime": sys.executable},
    }
    if workers is not None:
        cfg["localhost"]["worker_processes"] = check_int(workers, "workers", low=1)
    return cfg


class LithopsExecutor(BaseExecutor):
    """Run tasks as Lithops serverless function calls.

    Parameters
    ----------
    config:
        Lithops configuration dict; ``None`` means ``localhost_config(workers)``.
    workers:
        Concurrent task processes of the localhost backend (ignored for cloud backends,
        whose concurrency is the provider's).
    poll_interval:
        Seconds between status checks while waiting.
    """

    backend = "lithops"
    isolates_processes = True

    def __init__(
        self,
        config: dict[str, Any] | None = None,
        *,
        workers: int | None = None,
        poll_interval: float = 0.02,
        max_wait: float = 3600.0,
    ):
        super().__init__(max_wait=max_wait)
        lithops = require("lithops", what="the Lithops executor", extra="serverless")
        self.poll_interval = check_positive_float(poll_interval, "poll_interval")
        if config is None:
            config = localhost_config(workers)
        else:
            config = copy.deepcopy(config)
            section = config.setdefault("lithops", {})
            if section.get("backend", "localhost") == "localhost":
                config.setdefault("localhost", {}).setdefault("runtime", sys.executable)
                if workers is not None:
                    config["localhost"]["worker_processes"] = check_int(workers, "workers", low=1)
        # Lithops' data cleaner is a machine-wide janitor process that outlives the executor;
        # this executor deletes its own job data synchronously in close() instead.
        config.setdefault("lithops", {}).setdefault("data_cleaner", False)
        self.config = config
        self.lithops_backend = config.get("lithops", {}).get("backend", "localhost")
        logging.getLogger("lithops").setLevel(logging.ERROR)
        self._fexec = lithops.FunctionExecutor(config=config)

    def _submit_native(self, fn: Callable[..., Any], args: tuple, kwargs: dict) -> Any:
        # Lithops passes its storage to a function with a parameter named ``storage``.
        return self._fexec.call_async(run_task_lithops, (fn, args, kwargs))

    @property
    def workers(self) -> int | None:
        """Concurrent functions of the localhost backend (None: the provider decides)."""
        return self.config.get("localhost", {}).get("worker_processes")

    def _place(self, value: Any, key: str, what: str) -> Shared:
        import io

        import numpy as np

        from .filestore import is_plain_array

        if is_plain_array(value):
            buf = io.BytesIO()
            np.save(buf, value, allow_pickle=False)
            data, fmt = buf.getvalue(), "npy"
        else:
            import cloudpickle

            data, fmt = cloudpickle.dumps(value, protocol=5), "pickle"
        storage = self._fexec.storage
        cobj = storage.put_cloudobject(data, key=f"lithops.jobs/tmp/frugalml-share/{key}")
        handle = (cobj, storage.backend, fmt)
        return Shared(key, self.backend, self._owner, "lithops", handle, len(data), what)

    def _unplace(self, ref: Shared) -> None:
        forget(ref.key)
        with contextlib.suppress(Exception):
            self._fexec.storage.delete_cloudobject(ref.handle[0])

    def _done(self, natives: list[Any]) -> list[Any]:
        done, _ = self._fexec.wait(
            natives,
            throw_except=False,
            return_when=_ALWAYS,
            download_results=False,
            show_progressbar=False,
        )
        return list(done)

    def _wait_any(self, natives: list[Any], timeout: float) -> list[Any]:
        end = time.perf_counter() + timeout
        while True:
            done = self._done(natives)
            left = end - time.perf_counter()
            if done or left <= 0:
                return done
            time.sleep(min(self.poll_interval, left))

    def _collect(self, native: Any) -> Outcome:
        try:
            return native.result(throw_except=True)
        except Exception as exc:  # the function's process died, or its output was lost
            return Outcome.failure(exc)

    def _cancel_natives(self, natives: list[Any]) -> None:
        # Lithops cannot cancel dispatched calls; pending ones finish and are ignored.
        return None

    def _shutdown(self) -> None:
        fexec = self._fexec
        try:
            fexec.__exit__(None, None, None)
        finally:
            atexit.unregister(fexec._clean_at_exit)
            if not self.config["lithops"].get("data_cleaner"):
                self._delete_job_data()

    def _delete_job_data(self) -> None:
        """Delete this executor's functions, inputs and outputs from Lithops storage."""
        storage = self._fexec.internal_storage
        for prefix in (
            f"lithops.jobs/{self._fexec.executor_id}",
            f"lithops.jobs/tmp/{self._fexec.executor_id}",
        ):
            keys = storage.storage.list_keys(storage.bucket, prefix)
            if keys:
                storage.storage.delete_objects(storage.bucket, keys)
