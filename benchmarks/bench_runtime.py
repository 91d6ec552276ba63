"""Runtime benchmark: per-task overhead of each backend, time-to-first-k under stragglers, and
the data plane (data placed once, bytes per task, crashes, simulated serverless runs).

Usage: python benchmarks/bench_runtime.py [--quick | --tiny] [--out DIR] [--dataplane-only]
[--section NAME ...]. Writes DIR/runtime.json and runtime_*.png (DIR: benchmarks/results;
``runtime_dataplane.*`` with ``--dataplane-only`` or ``--section``) and prints the tables.
Sections: lstsq, newton, matvec, crash, serverless (default: all).

For n = 16 tasks whose durations come from a "few heavy stragglers" model (a shifted
exponential with 15% of tasks slowed 8x), every backend runs the same durations (injected as
sleeps on the workers, wall clock), and the measured time until k results are in is compared
with the ideal: the k-th smallest injected duration, i.e. what a backend with zero overhead
and unlimited parallelism would achieve. Ratios near 1 mean the backend adds little; the
"vs all" column is the gain of stopping at k instead of waiting for all n.

The data-plane sections (``_dataplane.py``: data placed once, bytes per task, crashes,
simulated serverless runs with the communication model) follow in the same result.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from _dataplane import SECTIONS, dataplane_figures, run_dataplane
from frugalml._validate import check_choice
from frugalml.progress import Progress
from frugalml.report.output import optional_figures, pyplot
from frugalml.report.results import NO_GOAL, BenchResult, Table
from frugalml.report.script import bench_main, bench_parser
from frugalml.runtime import (
    BACKENDS,
    BimodalStragglers,
    FaultInjector,
    ShiftedExponential,
    TraceReplay,
    backend_info,
    concurrent_options,
    make_executor,
)

__all__ = ["REPORT_AREA", "REPORT_TITLE", "main", "run"]

REPORT_AREA = "runtime"
REPORT_TITLE = "Runtime: first k of n"
RESULTS = Path(__file__).resolve().parent / "results"

N_TASKS = 16
KS = (4, 8, 12, 16)
MODEL = BimodalStragglers(ShiftedExponential(shift=0.2, rate=10.0), p_slow=0.15, slowdown=8.0)

#: backends measured, each with options for 16 concurrent (sleeping) tasks
BACKEND_OPTIONS: dict[str, dict[str, Any]] = {
    name: concurrent_options(name, N_TASKS) for name in BACKENDS
}


def _noop(i: int) -> int:
    return i


def _measure_backend(
    name: str, durations: list[np.ndarray], n_overhead: int, n_round_trips: int
) -> dict[str, Any]:
    t0 = time.perf_counter()
    ex = make_executor(name, **BACKEND_OPTIONS[name])
    try:
        startup = time.perf_counter() - t0
        # Warm up: bring the worker pool to full size so startup is not billed as overhead.
        ex.gather([ex.submit(time.sleep, 0.3) for _ in range(N_TASKS)], deadline=120)

        trips = []
        for i in range(n_round_trips):
            t = time.perf_counter()
            ex.gather([ex.submit(_noop, i)], deadline=60)
            trips.append(time.perf_counter() - t)

        t = time.perf_counter()
        got = ex.gather([ex.submit(_noop, i) for i in range(n_overhead)], deadline=300)
        per_task = (time.perf_counter() - t) / n_overhead
        if len(got.results) != n_overhead:
            raise RuntimeError(f"{name}: overhead run lost tasks: {got.summary()}")

        trials = []
        for dur in durations:
            # Warm the pool right before each trial (untimed): Ray, for one, reaps idle
            # workers beyond num_cpus when tasks ask for fractional CPUs, and restarting
            # them would be billed to the stragglers.
            ex.gather([ex.submit(time.sleep, 0.3) for _ in range(N_TASKS)], deadline=120)
            injector = FaultInjector(ex, stragglers=TraceReplay(dur, mode="cycle"), clock="wall")
            arrived: list[float] = []
            start = time.perf_counter()
            handles = [injector.submit(_noop, i) for i in range(N_TASKS)]
            got = injector.gather(
                handles,
                deadline=120,
                on_result=lambda i, v, a=arrived: a.append(time.perf_counter()),
            )
            if len(got.results) != N_TASKS:
                raise RuntimeError(f"{name}: straggler run lost tasks: {got.summary()}")
            times = np.sort(np.array(arrived) - start)
            ideal = np.sort(dur)
            trials.append({"measured": times.tolist(), "ideal": ideal.tolist()})
    finally:
        ex.close()
    return {
        "startup_s": startup,
        "round_trip_s": statistics.median(trips),
        "per_task_s": per_task,
        "n_overhead": n_overhead,
        "trials": trials,
    }


def run(
    *,
    quick: bool = True,
    progress: Progress | None = None,
    rng: int = 2023,
    backends: Sequence[str] | None = None,
    dataplane: Sequence[str] | None = None,
    stragglers: bool = True,
    tiny: bool = False,
) -> BenchResult:
    """Measure every installed backend (or those named in ``backends``).

    Quick: 2 trials, 32 overhead tasks; full: 5 trials, 200 overhead tasks; tiny (the smoke
    test): the thread pool only, 1 trial, 8 overhead tasks, data-plane sections at tiny
    sizes. ``dataplane``: which data-plane sections to run (default: all, or none when
    ``backends`` is given; ``()`` none); ``stragglers=False`` skips the first-k sections.
    """
    if tiny and backends is None:
        backends = ["local-thread"]
        dataplane = tuple(SECTIONS) if dataplane is None else dataplane
    if backends is not None:
        for b in backends:
            check_choice(b, "backend", BACKEND_OPTIONS)
    # the data-plane sections compare every backend; naming backends skips them by default
    default = () if backends is not None else tuple(SECTIONS)
    sections = default if dataplane is None else tuple(dataplane)
    for name in sections:
        check_choice(name, "data-plane section", SECTIONS)
    dp_tables, dp_data = run_dataplane(
        quick=quick or tiny, progress=progress, sections=sections, tiny=tiny
    )
    if not stragglers:
        return BenchResult(
            name="runtime",
            status=NO_GOAL,
            title="Runtime: data plane",
            headline=_dataplane_headline(dp_data),
            tables=dp_tables,
            figures=optional_figures(dataplane_figures, dp_data),
            data={"dataplane": dp_data},
            mode="wall clock (data plane); simulated clock where a table says so",
        )
    n_trials, n_overhead, n_trips = (1, 8, 2) if tiny else (2, 32, 5) if quick else (5, 200, 20)
    gen = np.random.default_rng(rng)
    durations = [MODEL.sample(N_TASKS, gen) for _ in range(n_trials)]
    if backends is not None:
        for b in backends:
            check_choice(b, "backend", BACKEND_OPTIONS)
    names = [b for b in (backends or BACKEND_OPTIONS) if backend_info(b).installed]
    measured: dict[str, dict[str, Any]] = {}
    errors: dict[str, str] = {}
    for j, name in enumerate(names):
        if progress:
            progress(f"backend {name}", j / len(names))
        try:
            measured[name] = _measure_backend(name, durations, n_overhead, n_trips)
        except Exception as exc:
            errors[name] = f"{type(exc).__name__}: {exc}"

    overhead_rows = [
        (
            name,
            m["startup_s"],
            1e3 * m["round_trip_s"],
            1e3 * m["per_task_s"],
        )
        for name, m in measured.items()
    ]
    overhead_rows += [(name, None, None, None) for name in errors]
    first_k_rows = []
    ratios: dict[str, dict[int, float]] = {}
    for name, m in measured.items():
        ratios[name] = {}
        all_n = statistics.median(t["measured"][N_TASKS - 1] for t in m["trials"])
        for k in KS:
            meas = statistics.median(t["measured"][k - 1] for t in m["trials"])
            ideal = statistics.median(t["ideal"][k - 1] for t in m["trials"])
            ratio = statistics.median(t["measured"][k - 1] / t["ideal"][k - 1] for t in m["trials"])
            ratios[name][k] = ratio
            first_k_rows.append((name, k, meas, ideal, ratio, all_n / meas))

    k_head = 12
    headline = "first 12 of 16 / ideal: " + ", ".join(
        f"{b} {r[k_head]:.2f}x" for b, r in ratios.items()
    )
    if errors:
        headline += "; failed: " + ", ".join(errors)
    if dp_data:
        headline += "; " + _dataplane_headline(dp_data)
    note = (
        f"{N_TASKS} tasks, durations from {MODEL.name} "
        f"(shift 0.2 s + Exp(mean 0.1 s), 15% slowed 8x), same durations on every backend; "
        f"median of {n_trials} trials. Ideal = k-th smallest injected duration."
    )
    tables = (
        Table(
            "Per-task overhead (no-op tasks)",
            ("backend", "startup s", "round trip ms", f"per task ms ({n_overhead} tasks)"),
            tuple(overhead_rows),
            note="; ".join(f"{b}: {e}" for b, e in errors.items()),
        ),
        Table(
            "Time to first k of n=16 with injected stragglers",
            ("backend", "k", "measured s", "ideal s", "measured / ideal", "speed-up vs all n"),
            tuple(first_k_rows),
            note=note,
        ),
        *dp_tables,
    )
    return BenchResult(
        name="runtime",
        status=NO_GOAL,
        title="Runtime: first k of n",
        headline=headline,
        tables=tables,
        figures={
            **(optional_figures(_figures, measured, ratios) if measured else {}),
            **optional_figures(dataplane_figures, dp_data),
        },
        data={
            "n_tasks": N_TASKS,
            "model": MODEL.describe(),
            "durations": [d.tolist() for d in durations],
            "backends": measured,
            "errors": errors,
            "options": BACKEND_OPTIONS,
            "dataplane": dp_data,
        },
        mode="wall clock; straggler delays injected as sleeps on the workers",
    )


def _dataplane_headline(dp: dict[str, Any]) -> str:
    parts = []
    lstsq = dp.get("lstsq", {}).get("backends", {})
    per_task = [v["bytes_per_task"] for b, v in lstsq.items() if b != "local-thread" and
                "bytes_per_task" in v]  # fmt: skip
    if per_task:
        parts.append(f"lstsq sends <= {max(per_task):.0f} B/task with A placed once")
    crash = dp.get("crash", {}).get("backends", {})
    ok = [b for b, v in crash.items() if v.get("failed_of_16") == [3, 11]]
    if crash:
        parts.append(f"2 dying tasks fail alone on {len(ok)}/{len(crash)} process backends")
    return "; ".join(parts) or "data plane"


def _readable_log_ticks(ax: Any, values: Sequence[float]) -> None:
    """Label a log x axis at 1-2-5 steps in plain numbers (no crowded minor labels)."""
    from matplotlib.ticker import FixedLocator, NullFormatter

    pos = [v for v in values if v > 0]
    if not pos:
        return
    lo, hi = min(pos), max(pos)
    decades = range(int(np.floor(np.log10(lo))), int(np.ceil(np.log10(hi))) + 1)
    steps = (1, 2, 5) if len(decades) <= 3 else (1,)  # a wide range: decades only
    ticks = [m * 10.0**e for e in decades for m in steps if lo / 1.5 <= m * 10.0**e <= hi * 1.5]
    ax.xaxis.set_major_locator(FixedLocator(ticks))
    ax.set_xticklabels([f"{t:g}" for t in ticks])
    ax.xaxis.set_minor_formatter(NullFormatter())


def _figures(measured: dict[str, dict[str, Any]], ratios: dict[str, dict[int, float]]):
    plt = pyplot()

    fig1, ax = plt.subplots(figsize=(7, 3.6))
    width = 0.8 / len(ratios)
    for j, (name, r) in enumerate(ratios.items()):
        ax.bar(np.arange(len(KS)) + j * width, [r[k] for k in KS], width, label=name)
    ax.axhline(1.0, color="k", lw=0.8, ls="--")
    ax.set_xticks(np.arange(len(KS)) + 0.4 - width / 2, [f"k={k}" for k in KS])
    ax.set_yscale("log")
    ax.set_ylabel("time to first k / ideal (log)")
    ax.set_title(f"First k of n={N_TASKS} with injected stragglers")
    ax.legend(fontsize=8)

    fig2, ax = plt.subplots(figsize=(7, 3.6))
    first = next(iter(measured.values()))["trials"][0]
    ax.step(first["ideal"], np.arange(1, N_TASKS + 1), where="post", color="k", label="ideal")
    for name, m in measured.items():
        ax.step(m["trials"][0]["measured"], np.arange(1, N_TASKS + 1), where="post", label=name)
    ax.set_xscale("log")
    _readable_log_ticks(ax, [x for m in measured.values() for x in m["trials"][0]["measured"]]
                        + list(first["ideal"]))  # fmt: skip
    ax.set_xlabel("seconds since submission (log)")
    ax.set_ylabel("tasks finished")
    ax.set_title("Arrivals, trial 1")
    ax.legend(fontsize=8)
    return {"first_k_ratio": fig1, "arrivals": fig2}


def main(argv: list[str] | None = None) -> BenchResult:
    """The script: ``--dataplane-only`` skips the first-k sections, ``--section NAME`` runs
    only those data-plane sections; either writes ``runtime_dataplane.*``."""
    parser = bench_parser(__doc__.splitlines()[0], RESULTS)
    parser.add_argument(
        "--dataplane-only", action="store_true", help="skip the first-k (straggler) sections"
    )
    parser.add_argument("--section", action="append", help="data-plane section(s) to run")
    return bench_main(
        run,
        RESULTS,
        title=REPORT_TITLE,
        argv=argv,
        parser=parser,
        run_kwargs=lambda a: {"dataplane": a.section, "stragglers": not a.dataplane_only},
        name=lambda a: "runtime_dataplane" if a.dataplane_only or a.section else None,
    )


if __name__ == "__main__":
    main()
