"""Run the registered area benchmarks and write ``frugalml-report/index.html``."""

from __future__ import annotations

import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

from .._io import atomic_directory, atomic_write_text
from .html import render_index
from .output import save_result
from .registry import AreaBenchmark, Progress, get, registered
from .results import BenchResult, Table, machine_info

__all__ = ["ReportOutcome", "run_report"]


@dataclass(frozen=True)
class ReportOutcome:
    out_dir: Path
    summary: Table
    results: tuple[BenchResult, ...]
    failures: dict[str, str]

    @property
    def ok(self) -> bool:
        return not self.failures


def run_report(
    out_dir: str | Path = "frugalml-report",
    *,
    quick: bool = True,
    areas: list[str] | None = None,
    progress: Callable[[str, str, float], None] | None = None,
) -> ReportOutcome:
    """Run area benchmarks (all registered ones by default) and write the report.

    ``progress(area, step, fraction)`` is called as each benchmark advances. A benchmark that
    raises is recorded as failed (with its traceback in the report) and the others still run.
    The output directory is replaced atomically when everything is written.
    """
    benches: list[AreaBenchmark] = [get(a) for a in areas] if areas else registered()
    machine = machine_info()
    results: list[BenchResult] = []
    failures: dict[str, str] = {}
    rows = []
    for bench in benches:
        step: Progress = (lambda s, f, _a=bench.name: progress(_a, s, f)) if progress else None
        t0 = time.perf_counter()
        try:
            res = bench.load()(quick=quick, progress=step)
        except Exception:
            failures[bench.name] = traceback.format_exc()
            rows.append(
                (
                    bench.name,
                    "failed",
                    failures[bench.name].strip().splitlines()[-1],
                    time.perf_counter() - t0,
                )
            )
            continue
        finally:
            if progress:
                progress(bench.name, "done", 1.0)
        res = replace(res, machine=machine, seconds=time.perf_counter() - t0)
        results.append(res)
        rows.append((bench.name, "ok", res.headline, res.seconds))
    summary = Table("Summary", ("area", "status", "headline", "seconds"), tuple(rows))
    out_dir = Path(out_dir)
    with atomic_directory(out_dir) as tmp:
        figures = {}
        for res in results:
            written = save_result(res, tmp)
            figures[res.name] = {k: p.name for k, p in written.items() if k != "json"}
        atomic_write_text(
            tmp / "index.html", render_index(summary, results, figures, failures, machine, quick)
        )
    return ReportOutcome(out_dir, summary, tuple(results), failures)
