"""Communication model for the simulated clock: latency + bytes / bandwidth per task.

On the platforms the coded-computation papers target (AWS Lambda, Ray and Dask clusters)
data movement is part of every task's latency. :class:`CommModel` adds to each simulated
completion time ``latency + (bytes sent + bytes received) / bandwidth``, with the bytes that
the task really moved (``TaskHandle.nbytes`` and the result's measured size), so that a
simulated 256-worker run pays for shipping data as a real one would.

Defaults (:data:`MEASURED`) were measured on the 2-core development machine with
:func:`measure_comm` (``python benchmarks/bench_runtime.py`` measures them again): a
least-squares line through the median round trips of tasks carrying 0-3 MiB unshared arrays
gives the latency (intercept) and bandwidth (inverse slope). Lithops ``localhost`` starts a
fresh interpreter per call (about 0.9 s here), as a cold serverless function does. Figures for
a cloud provider are the user's to give, e.g. ``CommModel(latency=0.03, bandwidth=80e6)``
(an order of magnitude for Lambda reading S3, not a figure measured here).
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


#: Figures measured with :func:`measure_comm` (10 repeats x 0/1/2/3 MiB) on the 2-core x86-64
#: development machine, 2026-12-06, executors made with ``workers=2``.
MEASURED: dict[str, CommModel] = {
    "local": CommModel(latency=0.76e-3, bandwidth=926e6, source="measured: local process pool"),
    "ray": CommModel(latency=2.96e-3, bandwidth=681e6, source="measured: ray, workers=2"),
    "dask": CommModel(latency=10.4e-3, bandwidth=2.06e9, source="measured: dask, workers=2"),
    "lithops": CommModel(latency=0.877, bandwidth=22.9e6, source="measured: lithops localhost"),
}


def _echo_size(x: Any) -> int:
    return int(getattr(x, "nbytes", 0))


def measure_comm(
    executor: Any, *, repeats: int = 10, sizes_mib: tuple[float, ...] = (0, 1, 2, 3)
) -> CommModel:
    """Measure a backend: run one task at a time carrying an unshared array of each size in
    ``sizes_mib`` (MiB; Lithops refuses calls over 4 MiB), ``repeats`` times each, and fit
    ``median seconds = latency + bytes / bandwidth`` by least squares over the medians.
    Cost: ``repeats * len(sizes_mib)`` round trips."""
    repeats = check_int(repeats, "repeats", low=3)
    sizes = [float(s) for s in sizes_mib]
    if len(set(sizes)) < 2 or min(sizes) < 0:
        raise InvalidInputError(f"sizes_mib needs two or more distinct sizes >= 0, got {sizes}")
    payloads = [np.ones(int(s * (1 << 20)) // 8) for s in sizes]
    for p in payloads:  # warm up
        executor.gather([executor.submit(_echo_size, p)], deadline=600)

    def once(arg: Any) -> float:
        t0 = time.perf_counter()
        got = executor.gather([executor.submit(_echo_size, arg)], deadline=600)
        if not got.results:
            raise InvalidInputError(f"the measuring task failed: {got.summary()}")
        return time.perf_counter() - t0

    nbytes = np.array([p.nbytes for p in payloads], dtype=float)
    seconds = np.array([statistics.median(once(p) for _ in range(repeats)) for p in payloads])
    slope, intercept = np.polyfit(nbytes, seconds, 1)
    # a slope lost in the noise (a backend whose transfers cost less than its jitter) is
    # reported as 10 GB/s rather than as a negative or infinite bandwidth
    bandwidth = 1.0 / slope if slope > 1e-10 else 1e10
    return CommModel(
        latency=max(float(intercept), float(seconds.min()) * 0.5),
        bandwidth=float(bandwidth),
        source=f"measured on {getattr(executor, 'backend', '?')} by measure_comm",
    )
