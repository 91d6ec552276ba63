"""What ``gather`` returns: :class:`Gathered` with per-task :class:`TaskTiming` and
:class:`TaskFailure`.

See DESIGN.md section 3 (the executor contract). Indices are positions in the ``handles``
passed to ``gather``. Durations are in seconds (``*_seconds``; simulated seconds on a
simulated clock); the 0.1 spellings (``elapsed``, ``latency``, ``run_time``) stay readable
until 0.3.

Cost: building a result is O(n) for n handles; the properties are O(n).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from .._deprecation import deprecated_alias
from .._resources import fmt_size as fmt_bytes  # one byte formatter for the library
from .._results import ResultRepr
from ..errors import InvalidInputError, TaskFailedError

__all__ = ["Clock", "Gathered", "StopReason", "TaskFailure", "TaskTiming", "fmt_bytes"]

StopReason = Literal["all", "k", "deadline", "max_wait", "callback", "exhausted"]
Clock = Literal["wall", "simulated"]


@dataclass(frozen=True)
class TaskTiming:
    """Per-task timing.

    latency_seconds: seconds from submission to arrival at the master (simulated seconds in
        simulated clock mode).
    run_seconds: seconds the task body ran on its worker, measured there; ``None`` when the
        worker died before reporting.
    """

    latency_seconds: float
    run_seconds: float | None

    latency = deprecated_alias("latency", "latency_seconds")
    run_time = deprecated_alias("run_time", "run_seconds")

    def summary(self) -> str:
        ran = (
            "its worker died before reporting"
            if self.run_seconds is None
            else f"ran {self.run_seconds:.3g} s on its worker"
        )
        return f"arrived {self.latency_seconds:.3g} s after submission; {ran}"


@dataclass(frozen=True)
class TaskFailure:
    """Why a task failed: it raised, its worker died, it was cancelled, or a fault was injected."""

    index: int
    error_type: str
    message: str
    traceback: str = field(default="", repr=False)

    def __str__(self) -> str:
        return f"task {self.index}: {self.error_type}: {self.message}"

    def summary(self) -> str:
        return str(self)


@dataclass(frozen=True, repr=False)
class Gathered(ResultRepr):
    """What ``gather`` saw. Indices are positions in the ``handles`` passed to ``gather``.

    results: successful results by index.
    failures: failed tasks by index (erasures).
    pending: indices neither succeeded nor failed when ``gather`` returned.
    arrivals: indices in the order they arrived (successes and failures).
    timings: per finished task.
    seconds: seconds ``gather`` waited (simulated seconds in simulated clock mode).
    stopped_by: ``"all"`` (every task finished; ``k=None``), ``"k"`` (k successes),
        ``"deadline"``, ``"max_wait"`` (the executor's safety bound when no deadline was given),
        ``"callback"`` (``on_result`` returned True) or
        ``"exhausted"`` (too many failures left k out of reach).
    bytes_sent: per task (every index), bytes of its call sent to the worker.
    bytes_received: per successful task, bytes of its result sent back (0 on local-thread).
    """

    n: int
    k: int
    results: dict[int, Any]
    failures: dict[int, TaskFailure]
    pending: tuple[int, ...]
    arrivals: tuple[int, ...]
    timings: dict[int, TaskTiming]
    seconds: float
    stopped_by: StopReason
    backend: str
    clock: Clock = "wall"
    bytes_sent: dict[int, int] = field(default_factory=dict)
    bytes_received: dict[int, int] = field(default_factory=dict)

    elapsed = deprecated_alias("elapsed", "seconds")

    @property
    def total_bytes_sent(self) -> int:
        """Bytes sent to the workers for these tasks."""
        return sum(self.bytes_sent.values())

    @property
    def total_bytes_received(self) -> int:
        """Bytes of the results received from the workers."""
        return sum(self.bytes_received.values())

    @property
    def done(self) -> bool:
        """True when at least ``k`` tasks succeeded."""
        return len(self.results) >= self.k

    @property
    def finished(self) -> tuple[int, ...]:
        """Indices that succeeded, sorted."""
        return tuple(sorted(self.results))

    def value(self, index: int) -> Any:
        """The result of task ``index``; raises if it failed or is pending."""
        if index in self.results:
            return self.results[index]
        if index in self.failures:
            raise TaskFailedError(str(self.failures[index]))
        if 0 <= index < self.n:
            raise TaskFailedError(f"task {index} had not finished when gather returned")
        raise InvalidInputError(f"index {index} out of range for {self.n} tasks")

    def summary(self) -> str:
        return (
            f"{self.backend} ({self.clock} clock): {len(self.results)}/{self.n} succeeded, "
            f"{len(self.failures)} failed, {len(self.pending)} pending after "
            f"{self.seconds:.3f}s (k={self.k}, stopped by {self.stopped_by}); "
            f"{fmt_bytes(self.total_bytes_sent)} sent, "
            f"{fmt_bytes(self.total_bytes_received)} received"
        )
