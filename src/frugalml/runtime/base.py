"""The executor contract: submit tasks, gather the first k of n (or what arrived by a deadline).

See DESIGN.md section 3. :class:`BaseExecutor` implements the whole ``gather`` loop once; a
backend supplies four primitives (submit a wrapped call, wait for any of a set of native
futures, collect one outcome, cancel) and its own ``close``. What ``gather`` returns
(:class:`Gathered`, :class:`TaskTiming`, :class:`TaskFailure`) lives in :mod:`.results` and is
re-exported here.

Complexity: ``gather`` over ``n`` handles makes at most ``n`` backend waits and does O(n) work
per wait for bookkeeping, O(n^2) in the worst case of one arrival per wait (negligible beside
task latencies for n in the thousands).
"""

from __future__ import annotations

import itertools
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from .._validate import check_int, check_nonnegative_float, check_positive_float
from ..errors import FrugalError, InvalidInputError
from ._task import Outcome, payload_nbytes
from .results import Clock, Gathered, StopReason, TaskFailure, TaskTiming, fmt_bytes
from .shared import (
    Shared,
    collect_shared,
    describe,
    new_key,
    register_releaser,
    unregister_releaser,
)

__all__ = [
    "BaseExecutor",
    "Clock",
    "Executor",
    "Gathered",
    "OnResult",
    "Shared",
    "StopReason",
    "TaskFailure",
    "TaskHandle",
    "TaskTiming",
    "fmt_bytes",
]

OnResult = Callable[[int, Any], "bool | None"]
"""``on_result(index, value)``: called on every successful arrival, in arrival order.

``index`` is the position of the task in the ``handles`` passed to ``gather``. Returning ``True``
stops the gather early (e.g. a decoder that can already decode)."""

_owner_ids = itertools.count(1)


@dataclass(frozen=True, eq=False)
class TaskHandle:
    """A submitted task. Compare and hash by identity.

    Attributes
    ----------
    task_id: submission counter of the executor that made it (0, 1, 2, ...).
    backend: name of that executor's backend.
    submitted_at: ``time.perf_counter()`` on the master when it was submitted.
    nbytes: bytes the task's call (function and arguments, shared references as tokens)
        occupies on the wire; 0 on ``local-thread``, where nothing is copied.
    """

    task_id: int
    backend: str
    submitted_at: float
    native: Any = field(repr=False)
    owner: int = field(repr=False)
    nbytes: int = 0


@runtime_checkable
class Executor(Protocol):
    """Runs tasks and returns the first k of n (DESIGN.md section 3)."""

    backend: str

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> TaskHandle: ...

    def gather(
        self,
        handles: Sequence[TaskHandle],
        *,
        k: int | None = None,
        deadline: float | None = None,
        on_result: OnResult | None = None,
    ) -> Gathered: ...

    def cancel(self, handles: Iterable[TaskHandle]) -> None: ...

    def close(self) -> None: ...

    def share(self, value: Any) -> Shared: ...

    def release(self, ref: Shared) -> None: ...


def check_gather_args(
    handles: Sequence[TaskHandle], k: int | None, deadline: float | None
) -> tuple[list[TaskHandle], int, float | None]:
    """Validate the arguments of ``gather`` (shared by every executor)."""
    handles = list(handles)
    n = len(handles)
    if n == 0:
        raise InvalidInputError("gather needs at least one task handle, got none")
    if any(not isinstance(h, TaskHandle) for h in handles):
        raise InvalidInputError("gather takes the TaskHandle objects returned by submit()")
    if len({id(h) for h in handles}) != n:
        raise InvalidInputError("gather got the same task handle twice")
    if k is None:
        k = n
    else:
        k = check_int(k, "k", low=1)
        if k > n:
            raise InvalidInputError(f"k={k} exceeds the number of tasks n={n}; need 1 <= k <= n")
    if deadline is not None:
        deadline = check_nonnegative_float(deadline, "deadline")
    return handles, k, deadline


def gather_stop_reason(k: int, n_ok: int, n_left: int, *, want_all: bool) -> StopReason | None:
    """Why a gather stops after an arrival, or None to keep waiting (shared by every
    executor): ``"all"`` when every task was to be waited for (``want_all``, ``k=None``) and
    none is left; else ``"k"`` once ``n_ok`` tasks succeeded (``n_ok >= k``), ``"exhausted"``
    once the ``n_left`` tasks still out cannot bring the successes to ``k``. O(1)."""
    if want_all:
        return "all" if n_left == 0 else None
    if n_ok >= k:
        return "k"
    if n_ok + n_left < k:
        return "exhausted"
    return None


class ExecutorConveniences:
    """``map`` and the context manager of an executor, from its ``submit`` and ``close``
    (shared by :class:`BaseExecutor` and :class:`~frugalml.runtime.faults.FaultInjector`)."""

    def map(self, fn: Callable[..., Any], items: Iterable[Any]) -> list[TaskHandle]:
        """Submit ``fn(item)`` for every item; returns the handles in order."""
        return [self.submit(fn, item) for item in items]  # type: ignore[attr-defined]

    def __enter__(self):
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()  # type: ignore[attr-defined]


class BaseExecutor(ExecutorConveniences, ABC):
    """Shared implementation of the :class:`Executor` protocol.

    Parameters
    ----------
    max_wait:
        Upper bound in seconds on any ``gather`` that has no deadline, so that nothing waits
        forever on a worker that vanished silently. Such a gather returns with
        ``stopped_by="max_wait"``.
    """

    backend: str = "base"
    #: True when tasks run in separate processes (a task may crash its worker safely).
    isolates_processes: bool = True
    #: True when task calls and results are serialised (bytes are counted then).
    copies_data: bool = True

    def __init__(self, *, max_wait: float = 3600.0):
        self.max_wait = check_positive_float(max_wait, "max_wait")
        self._owner = next(_owner_ids)
        self._counter = itertools.count()
        self._closed = False
        self._shares: dict[str, Shared] = {}
        self._described: dict[str, str] = {}  # key -> description, for workers' errors
        self._share_lock = threading.Lock()
        #: bytes placed with :meth:`share` over this executor's life
        self.bytes_placed = 0
        #: bytes of task calls sent and results received over this executor's life
        self.bytes_sent = 0
        self.bytes_received = 0
        # weakly: a forgotten executor can still be collected (and its shares freed)
        register_releaser(self._owner, self._release_quietly)

    # -- backend primitives -------------------------------------------------------------
    @abstractmethod
    def _submit_native(self, fn: Callable[..., Any], args: tuple, kwargs: dict) -> Any:
        """Start ``run_task(fn, args, kwargs)`` on the backend; return its native future."""

    @abstractmethod
    def _wait_any(self, natives: list[Any], timeout: float) -> list[Any]:
        """Block until at least one of ``natives`` is done or ``timeout`` passes; return the
        done ones (possibly several, possibly none on timeout)."""

    @abstractmethod
    def _collect(self, native: Any) -> Outcome:
        """Outcome of a done native future. Never raises: backend errors become failures."""

    @abstractmethod
    def _cancel_natives(self, natives: list[Any]) -> None:
        """Best-effort cancellation."""

    @abstractmethod
    def _shutdown(self) -> None:
        """Release every resource (processes, clusters, connections)."""

    def _place(self, value: Any, key: str, what: str) -> Shared:
        """Place ``value`` where the workers can read it; return its reference."""
        raise FrugalError(f"the {self.backend} executor cannot share values")

    def _unplace(self, ref: Shared) -> None:
        """Free what :meth:`_place` placed (best effort; never raises)."""

    def _prepare_args(self, args: tuple, kwargs: dict) -> tuple[tuple, dict]:
        """Backend hook to rewrite references before submission (Dask passes its futures)."""
        return args, kwargs

    def _call_nbytes(self, fn: Callable[..., Any], args: tuple, kwargs: dict) -> int:
        """Bytes of a task call on the wire (0 where nothing is copied). Backends that
        serialise the call themselves measure it exactly (``_frugal_nbytes`` on the native
        future) and return 0 here."""
        return payload_nbytes((fn, args, kwargs)) if self.copies_data else 0

    def _arrival_time(self, native: Any, observed: float) -> float:
        """Master-clock time the task completed (must not consume state: it may be asked
        again for a task left pending); backends that know better override."""
        return observed

    # -- public API ---------------------------------------------------------------------
    def share(self, value: Any) -> Shared:
        """Place ``value`` once where this executor's workers can read it.

        Returns a :class:`Shared` reference; pass it to :meth:`submit` (anywhere in the
        arguments) and the task receives the value. Free it with :meth:`release` or
        ``with ex.share(v) as ref: ...``; :meth:`close` frees every reference still held.
        Raises ``InvalidInputError`` when the value cannot be serialised for the backend.
        """
        self._check_open()
        if isinstance(value, Shared):
            raise InvalidInputError(
                f"{value.key} is already a shared reference; pass it to submit() as it is"
            )
        what = describe(value)
        key = new_key(self._owner)
        try:
            ref = self._place(value, key, what)
        except FrugalError:
            raise
        except Exception as exc:
            raise InvalidInputError(
                f"cannot share {what} with the {self.backend} executor: "
                f"{type(exc).__name__}: {exc}; share picklable data (NumPy arrays, SciPy "
                "matrices, plain Python objects), or open resources inside the task"
            ) from exc
        with self._share_lock:
            self._shares[key] = ref
            self._described[key] = what
            self.bytes_placed += ref.nbytes
        return ref

    def release(self, ref: Shared) -> None:
        """Free a reference made by :meth:`share`. Releasing twice is an error."""
        if not isinstance(ref, Shared):
            raise InvalidInputError(f"release takes a Shared reference, got {type(ref).__name__}")
        if ref.owner != self._owner:
            raise InvalidInputError(
                f"shared reference {ref.key} ({ref.what}) belongs to another {ref.backend} "
                "executor; release it there"
            )
        with self._share_lock:
            held = self._shares.pop(ref.key, None)
        if held is None:
            raise InvalidInputError(f"shared reference {ref.key} ({ref.what}) was already released")
        self._unplace(held)

    def owns(self, ref: Shared) -> bool:
        """True when ``ref`` was made by this executor's :meth:`share`."""
        return isinstance(ref, Shared) and ref.owner == self._owner

    @property
    def shared(self) -> tuple[Shared, ...]:
        """References held now (placed and not released)."""
        with self._share_lock:
            return tuple(self._shares.values())

    def _release_quietly(self, ref: Shared) -> None:
        with self._share_lock:
            held = self._shares.pop(ref.key, None)
        if held is not None:
            self._unplace(held)

    def _name_refs(self, message: str) -> str:
        """A worker's error message with the description of each reference it names."""
        if "shared reference" not in message:
            return message
        for key, what in self._described.items():
            named = f"shared reference {key}"
            if named in message and f"{named} (" not in message:
                message = message.replace(named, f"{named} ({what})")
        return message

    def _check_refs(self, args: tuple, kwargs: dict) -> None:
        for ref in collect_shared((args, kwargs)):
            if ref.owner != self._owner:
                raise InvalidInputError(
                    f"shared reference {ref.key} ({ref.what}) belongs to another "
                    f"{ref.backend} executor; share the value with this {self.backend} "
                    "executor"
                )
            if ref.key not in self._shares:
                raise InvalidInputError(
                    f"shared reference {ref.key} ({ref.what}) was released (or its executor "
                    "closed); share the value again"
                )

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> TaskHandle:
        """Start ``fn(*args, **kwargs)``; returns at once with a handle.

        Shared references anywhere in the arguments reach ``fn`` as their values.
        """
        self._check_open()
        if not callable(fn):
            raise InvalidInputError(f"submit needs a callable, got {type(fn).__name__}")
        self._check_refs(args, kwargs)
        nbytes = self._call_nbytes(fn, args, kwargs)
        args, kwargs = self._prepare_args(args, kwargs)
        submitted_at = time.perf_counter()  # before the task can possibly finish
        native = self._submit_native(fn, args, kwargs)
        nbytes = max(nbytes, getattr(native, "_frugal_nbytes", 0), 0)
        with self._share_lock:
            self.bytes_sent += nbytes
        return TaskHandle(
            task_id=next(self._counter),
            backend=self.backend,
            submitted_at=submitted_at,
            native=native,
            owner=self._owner,
            nbytes=nbytes,
        )

    def gather(
        self,
        handles: Sequence[TaskHandle],
        *,
        k: int | None = None,
        deadline: float | None = None,
        on_result: OnResult | None = None,
    ) -> Gathered:
        """Wait until ``k`` tasks succeeded, the deadline (seconds from this call) passes,
        ``on_result`` returns True, or too many failed to reach ``k``. ``k=None`` waits until
        every task has finished, successfully or not (``stopped_by="all"``).

        Tasks still pending keep running; call :meth:`cancel` to stop them (best effort).
        """
        self._check_open()
        want_all = k is None
        handles, k, deadline = check_gather_args(handles, k, deadline)
        foreign = [h for h in handles if h.owner != self._owner]
        if foreign:
            raise InvalidInputError(
                f"{len(foreign)} handle(s) were submitted to another executor "
                f"({foreign[0].backend}); gather them there"
            )
        bound = self.max_wait if deadline is None else deadline
        position = {id(h.native): i for i, h in enumerate(handles)}
        remaining = dict(enumerate(handles))
        results: dict[int, Any] = {}
        failures: dict[int, TaskFailure] = {}
        timings: dict[int, TaskTiming] = {}
        received: dict[int, int] = {}
        arrivals: list[int] = []
        stopped_by: StopReason | None = None
        t0 = time.perf_counter()
        while stopped_by is None:
            left = bound - (time.perf_counter() - t0)
            if left <= 0:
                stopped_by = "deadline" if deadline is not None else "max_wait"
                break
            done = self._wait_any([h.native for h in remaining.values()], left)
            observed = time.perf_counter()
            # Process a batch in order of completion; stop at the exact arrival that meets a
            # stop condition, so that results/on_result agree (the rest stay pending).
            batch = sorted(
                (self._arrival_time(nat, observed), position[id(nat)], nat)
                for nat in done
                if position[id(nat)] in remaining
            )
            for arrived, i, native in batch:
                handle = remaining.pop(i)
                outcome = self._collect(native)
                if outcome.nbytes:
                    with self._share_lock:
                        self.bytes_received += outcome.nbytes
                timings[i] = TaskTiming(arrived - handle.submitted_at, outcome.run_seconds)
                arrivals.append(i)
                if outcome.ok:
                    results[i] = outcome.value
                    received[i] = outcome.nbytes or 0
                    if on_result is not None and on_result(i, outcome.value):
                        stopped_by = "callback"
                else:
                    failures[i] = TaskFailure(
                        i, outcome.error_type, self._name_refs(outcome.message), outcome.traceback
                    )
                if stopped_by is None:
                    stopped_by = gather_stop_reason(
                        k, len(results), len(remaining), want_all=want_all
                    )
                if stopped_by is not None:
                    break
        return Gathered(
            n=len(handles),
            k=k,
            results=results,
            failures=failures,
            pending=tuple(sorted(remaining)),
            arrivals=tuple(arrivals),
            timings=timings,
            seconds=time.perf_counter() - t0,
            stopped_by=stopped_by,
            backend=self.backend,
            clock="wall",
            bytes_sent={i: h.nbytes for i, h in enumerate(handles)},
            bytes_received=received,
        )

    def cancel(self, handles: Iterable[TaskHandle]) -> None:
        """Best-effort cancellation of tasks that have not finished."""
        if self._closed:
            return
        natives = [h.native for h in handles if h.owner == self._owner]
        if natives:
            self._cancel_natives(natives)

    def close(self) -> None:
        """Stop the workers and release resources. Idempotent."""
        if not self._closed:
            self._closed = True
            try:
                with self._share_lock:
                    held, self._shares = list(self._shares.values()), {}
                for ref in held:
                    self._unplace(ref)
            finally:
                unregister_releaser(self._owner)
                self._shutdown()

    def _check_open(self) -> None:
        if self._closed:
            raise FrugalError(f"this {self.backend} executor is closed; create a new one")

    def __repr__(self) -> str:
        state = "closed" if self._closed else "open"
        return f"<{type(self).__name__} backend={self.backend!r} {state}>"
