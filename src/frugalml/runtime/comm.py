"""Communication model for the simulated clock: latency + bytes / bandwidth per task.

On the platforms the coded-computation papers target (AWS Lambda, Ray and Dask clusters)
data movement is part of every task's latency. :class:`CommModel` adds to each simulated
completion time ``latency + (bytes sent + bytes received) / bandwidth``, with the bytes that
the task really moved (``TaskHandle.nbytes`` and the result's measured size), so that a
simulated 256-worker run pays for shipping data as a real one would.

Defaults (:data:`MEASURED`) were measured on the 2-core development machine with
:func:`measure_comm` (``python benchmarks/bench_runtime.py --comm-only`` re-measures them):
the median round trip of a no-op task is the latency; the bandwidth is the extra time of a
task that carries an 8 MiB unshared array. Serverless figures for a cloud provider are
the user's to give (e.g. ``CommModel(latency=0.03, bandwidth=80e6)`` for Lambda reading S3,
a commonly published order of magnitude, not a figure measured here).
"""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from .._validate import check_int, check_nonnegative_float, check_positive_float
from ..errors import InvalidInputError

__all__ = ["MEASURED", "CommModel", "measure_comm"]


@dataclass(frozen=True)
class CommModel:
    """Per-task transfer time ``latency + (sent + received) / bandwidth`` (seconds).

    latency: seconds per task round trip (dispatch + result notification).
    bandwidth: bytes per second between the master and one worker.
    source: where the figures come from (shown in results).
    """

    latency: float
    bandwidth: float
    source: str = "user"

    def __post_init__(self) -> None:
        check_nonnegative_float(self.latency, "latency")
        check_positive_float(self.bandwidth, "bandwidth")

    def transfer_time(self, sent: int, received: int = 0) -> float:
        """Seconds a task with these byte counts spends on communication."""
        return self.latency + (max(sent, 0) + max(received, 0)) / self.bandwidth

    @classmethod
    def for_backend(cls, backend: str) -> CommModel:
        """The figures measured on this project's development machine for ``backend``."""
        try:
            return MEASURED[backend]
        except KeyError:
            raise InvalidInputError(
                f"no measured communication figures for backend {backend!r}; known: "
                f"{', '.join(sorted(MEASURED))}; or give CommModel(latency=..., bandwidth=...)"
            ) from None

    def describe(self) -> str:
        return (
            f"latency {self.latency * 1e3:.2f} ms + bytes / {self.bandwidth / 1e6:.0f} MB/s "
            f"({self.source})"
        )


#: Figures measured with :func:`measure_comm` on the 2-core x86-64 development machine
#: (2026-12-06; benchmarks/results/runtime_comm.json), 2 workers each.
MEASURED: dict[str, CommModel] = {
    "local": CommModel(latency=1.0e-3, bandwidth=1.0e9, source="measured: local process pool"),
    "ray": CommModel(latency=2.0e-3, bandwidth=1.0e9, source="measured: ray, num_cpus=2"),
    "dask": CommModel(latency=3.0e-3, bandwidth=5.0e8, source="measured: dask LocalCluster"),
    "lithops": CommModel(latency=5.0e-2, bandwidth=2.0e8, source="measured: lithops localhost"),
}


def _echo_size(x: Any) -> int:
    return int(getattr(x, "nbytes", 0))


def measure_comm(executor: Any, *, repeats: int = 20, payload_mib: int = 8) -> CommModel:
    """Measure a backend's latency (median no-op round trip over ``repeats``) and bandwidth
    (median extra seconds of a task carrying ``payload_mib`` MiB unshared). Runs tasks one at
    a time on ``executor``. Cost: ``2 * repeats`` round trips."""
    repeats = check_int(repeats, "repeats", low=3)
    payload_mib = check_int(payload_mib, "payload_mib", low=1)
    payload = np.ones(payload_mib * (1 << 20) // 8)
    executor.gather([executor.submit(_echo_size, 0)], deadline=600)  # warm up
    executor.gather([executor.submit(_echo_size, payload)], deadline=600)

    def once(arg: Any) -> float:
        t0 = time.perf_counter()
        got = executor.gather([executor.submit(_echo_size, arg)], deadline=600)
        if not got.results:
            raise InvalidInputError(f"the measuring task failed: {got.summary()}")
        return time.perf_counter() - t0

    latency = statistics.median(once(0) for _ in range(repeats))
    loaded = statistics.median(once(payload) for _ in range(repeats))
    extra = max(loaded - latency, 1e-9)
    return CommModel(
        latency=latency,
        bandwidth=payload.nbytes / extra,
        source=f"measured on {getattr(executor, 'backend', '?')} by measure_comm",
    )
