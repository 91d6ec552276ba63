"""Straggler and failure injection around any executor, with a simulated-clock mode.

``FaultInjector(executor, stragglers=..., failures=..., clock=...)`` is itself an executor.

* ``clock="wall"``: each task first sleeps its sampled delay on its worker, then runs; a task
  chosen to fail raises :class:`InjectedFailure` (``kind="raise"``) or kills its worker
  process (``kind="crash"``). What ``gather`` measures is real wall time.
* ``clock="simulated"``: every task still runs for real (the results are real), but its
  completion time is the sampled delay, not the wall time. ``gather`` takes results in
  order of simulated completion and applies ``k``/``deadline``/``on_result`` on that clock,
  so 256 workers can be studied on 2 cores. Results say ``clock="simulated"``.
  With ``comm=CommModel(...)`` each task's simulated completion time also includes
  ``latency + (bytes sent + bytes received) / bandwidth`` for the bytes the task really moved
  (:mod:`.comm`). On a thread pool, which copies nothing, the injector measures the bytes the
  call and its result would occupy on the wire.
"""

from __future__ import annotations

import heapq
import os
import time
import weakref
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from .._validate import RngLike, check_choice, check_int, check_probability, check_rng
from ..errors import InvalidInputError
from ._task import InjectedFailure, payload_nbytes
from .base import (
    Executor,
    ExecutorConveniences,
    Gathered,
    OnResult,
    Shared,
    StopReason,
    TaskFailure,
    TaskHandle,
    TaskTiming,
    check_gather_args,
    gather_stop_reason,
)
from .comm import CommModel
from .stragglers import StragglerModel

__all__ = ["FailureModel", "FaultInjector", "InjectedFailure"]


@dataclass(frozen=True)
class FailureModel:
    """Which tasks fail: each independently with probability ``p``, and/or the listed
    submission numbers ``tasks`` (0 = first task submitted through the injector).

    kind: ``"raise"`` (the task raises InjectedFailure) or ``"crash"`` (its worker process
    exits abruptly; needs a process-isolated backend).
    """

    p: float = 0.0
    tasks: frozenset[int] = field(default_factory=frozenset)
    kind: Literal["raise", "crash"] = "raise"

    def __post_init__(self) -> None:
        check_probability(self.p, "p")
        check_choice(self.kind, "kind", ("raise", "crash"))
        try:
            tasks = frozenset(check_int(t, "tasks", low=0) for t in self.tasks)
        except TypeError:  # not iterable
            raise InvalidInputError(
                f"tasks must be a collection of task numbers >= 0, got {self.tasks!r}"
            ) from None
        object.__setattr__(self, "tasks", tasks)

    def fails(self, number: int, rng: np.random.Generator) -> bool:
        draw = rng.random() < self.p if self.p > 0 else False
        return draw or number in self.tasks


class _Faulty:
    """Picklable wrapper run on the worker: delay, then fail or run the task."""

    def __init__(self, fn: Callable[..., Any], delay: float, fail: str | None, master_pid: int):
        self.fn = fn
        self.delay = delay
        self.fail = fail
        self.master_pid = master_pid

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if self.delay > 0:
            time.sleep(self.delay)
        if self.fail == "crash" and os.getpid() != self.master_pid:
            os._exit(70)
        if self.fail is not None:
            raise InjectedFailure(f"injected failure ({self.fail})")
        return self.fn(*args, **kwargs)


class FaultInjector(ExecutorConveniences):
    """Wrap an executor with straggler delays and failures (see module docstring).

    Parameters
    ----------
    executor:
        Any executor (local, ray, dask, lithops).
    stragglers:
        Model of task completion times; ``None`` adds no delay.
    failures:
        Which tasks fail; ``None``: none.
    clock:
        ``"wall"`` (delays are slept on the workers) or ``"simulated"``.
    rng:
        Seed or generator; the delays and failures are reproducible from it.
    comm:
        Communication model added to simulated completion times (``clock="simulated"``
        only); ``None`` adds nothing.
    """

    def __init__(
        self,
        executor: Executor,
        *,
        stragglers: StragglerModel | None = None,
        failures: FailureModel | None = None,
        clock: Literal["wall", "simulated"] = "wall",
        rng: RngLike = None,
        comm: CommModel | None = None,
    ):
        if not isinstance(executor, Executor):
            raise InvalidInputError("executor must implement the Executor protocol")
        if stragglers is not None and not isinstance(stragglers, StragglerModel):
            raise InvalidInputError("stragglers must be a StragglerModel or None")
        if failures is not None and not isinstance(failures, FailureModel):
            raise InvalidInputError("failures must be a FailureModel or None")
        self.clock = check_choice(clock, "clock", ("wall", "simulated"))
        if (
            failures is not None
            and failures.kind == "crash"
            and not getattr(executor, "isolates_processes", False)
        ):
            raise InvalidInputError(
                f"failure kind 'crash' kills the worker process, but the {executor.backend} "
                "executor runs tasks in this process; use kind='raise' or a process backend"
            )
        if clock == "simulated" and stragglers is None:
            raise InvalidInputError("clock='simulated' needs a straggler model to assign times")
        if comm is not None and not isinstance(comm, CommModel):
            raise InvalidInputError("comm must be a CommModel or None")
        if comm is not None and clock != "simulated":
            raise InvalidInputError(
                "comm adds transfer time to the simulated clock; use clock='simulated' (on the "
                "wall clock the transfers are real and already measured)"
            )
        self.comm = comm
        self.executor = executor
        self.stragglers = stragglers
        self.failures = failures
        self.backend = executor.backend
        self.isolates_processes = getattr(executor, "isolates_processes", False)
        self._rng = check_rng(rng)
        self._number = 0
        self._delays: weakref.WeakKeyDictionary[TaskHandle, float] = weakref.WeakKeyDictionary()
        self._sent: weakref.WeakKeyDictionary[TaskHandle, int] = weakref.WeakKeyDictionary()

    @property
    def max_wait(self) -> float:
        return getattr(self.executor, "max_wait", 3600.0)

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> TaskHandle:
        if not callable(fn):
            raise InvalidInputError(f"submit needs a callable, got {type(fn).__name__}")
        delay = float(self.stragglers.sample(1, self._rng)[0]) if self.stragglers else 0.0
        fail = None
        if self.failures is not None and self.failures.fails(self._number, self._rng):
            fail = self.failures.kind
        self._number += 1
        sleep = delay if self.clock == "wall" else 0.0
        handle = self.executor.submit(_Faulty(fn, sleep, fail, os.getpid()), *args, **kwargs)
        self._delays[handle] = delay
        if self.comm is not None and not getattr(self.executor, "copies_data", True):
            # a thread pool copies nothing, but the simulated platform would ship the call
            self._sent[handle] = max(payload_nbytes((fn, args, kwargs)), 0)
        return handle

    def share(self, value: Any) -> Shared:
        """Place ``value`` with the wrapped executor (see ``BaseExecutor.share``)."""
        return self.executor.share(value)

    def release(self, ref: Shared) -> None:
        self.executor.release(ref)

    def owns(self, ref: Shared) -> bool:
        """True when ``ref`` was made by the wrapped executor."""
        owns = getattr(self.executor, "owns", None)
        return bool(owns(ref)) if owns is not None else False

    def __getattr__(self, name: str) -> Any:
        # byte counters, workers, ... of the wrapped executor
        if name in ("bytes_placed", "bytes_sent", "bytes_received", "workers", "shared"):
            return getattr(self.executor, name)
        raise AttributeError(name)

    def delay_of(self, handle: TaskHandle) -> float:
        """The injected delay (wall) or simulated completion time of a task."""
        try:
            return self._delays[handle]
        except (KeyError, TypeError):
            raise InvalidInputError("that handle was not submitted through this injector") from None

    def gather(
        self,
        handles: Sequence[TaskHandle],
        *,
        k: int | None = None,
        deadline: float | None = None,
        on_result: OnResult | None = None,
    ) -> Gathered:
        if self.clock == "wall":
            return self.executor.gather(handles, k=k, deadline=deadline, on_result=on_result)
        return self._gather_simulated(handles, k, deadline, on_result)

    def _gather_simulated(
        self,
        handles: Sequence[TaskHandle],
        k: int | None,
        deadline: float | None,
        on_result: OnResult | None,
    ) -> Gathered:
        want_all = k is None
        handles, k, deadline = check_gather_args(handles, k, deadline)
        comm = self.comm
        # Lower bounds of each completion time; exact once the task's result (and so its
        # received bytes) is known. Best-first: a task is next when its exact time is the
        # smallest bound left, so only tasks that may arrive next are waited for.
        sent = [max(h.nbytes, self._sent.get(h, 0)) for h in handles]
        heap = []
        for i, h in enumerate(handles):
            t = self.delay_of(h)
            if comm is not None:
                t += comm.transfer_time(sent[i], 0)
            heap.append((t, i, False))
        heapq.heapify(heap)
        results: dict[int, Any] = {}
        failures: dict[int, TaskFailure] = {}
        timings: dict[int, TaskTiming] = {}
        received: dict[int, int] = {}
        outcomes: dict[int, Gathered] = {}
        arrivals: list[int] = []
        stopped_by: StopReason | None = None
        clock = 0.0
        n = len(handles)
        while heap:
            t, i, exact = heapq.heappop(heap)
            if deadline is not None and t > deadline:
                stopped_by, clock = "deadline", deadline
                break
            if not exact:
                # The task's real result: wait for it on the wrapped executor.
                real = self.executor.gather([handles[i]], k=1, deadline=self.max_wait)
                if real.pending:
                    stopped_by = "max_wait"
                    break
                outcomes[i] = real
                if comm is not None:
                    got = real.bytes_received.get(0, 0)
                    if not got and 0 in real.results and handles[i] in self._sent:
                        got = max(payload_nbytes(real.results[0]), 0)
                        real.bytes_received[0] = got
                    heapq.heappush(heap, (t + got / comm.bandwidth, i, True))
                    continue
            real = outcomes.pop(i)
            clock = float(t)
            ran = real.timings[0].run_seconds if 0 in real.timings else None
            timings[i] = TaskTiming(clock, ran)
            arrivals.append(i)
            if 0 in real.results:
                results[i] = real.results[0]
                received[i] = real.bytes_received.get(0, 0)
                if on_result is not None and on_result(i, results[i]):
                    stopped_by = "callback"
                    break
            else:
                f = real.failures[0]
                failures[i] = TaskFailure(i, f.error_type, f.message, f.traceback)
            stopped_by = gather_stop_reason(k, len(results), n - len(arrivals), want_all=want_all)
            if stopped_by is not None:
                break
        else:  # every task arrived
            stopped_by = "all"
        done = set(arrivals)
        return Gathered(
            n=n,
            k=k,
            results=results,
            failures=failures,
            pending=tuple(i for i in range(n) if i not in done),
            arrivals=tuple(arrivals),
            timings=timings,
            seconds=clock,
            stopped_by=stopped_by,
            backend=self.backend,
            clock="simulated",
            bytes_sent=dict(enumerate(sent)),
            bytes_received=received,
        )

    def cancel(self, handles: Iterable[TaskHandle]) -> None:
        self.executor.cancel(handles)

    def close(self) -> None:
        self.executor.close()
