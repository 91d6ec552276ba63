"""Run the registered area benchmarks and write ``frugalml-report/index.html``."""

from __future__ import annotations

import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

from ..errors import InvalidInputError
from .html import render_index
from .outdir import prepare_output
from .output import PLOT_EXTRA_NOTE, plotting_available, result_files
from .registry import AreaBenchmark, Progress, get, no_areas_message, registered
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
    force: bool = False,
    benchmarks: str | Path | None = None,
) -> ReportOutcome:
    """Run area benchmarks (all of them by default) and write the report.

    The areas are those of the benchmarks directory ``benchmarks`` (default: the checkout's
    ``benchmarks/``, found as :func:`.discovery.find_benchmarks` says) and the programmatically
    registered ones (:func:`.registry.register`). No area at all is an
    :class:`InvalidInputError` ("run from a frugalml checkout or pass --benchmarks DIR").

    ``progress(area, step, fraction)`` is called as each benchmark advances. A benchmark that
    raises is recorded as failed (with its traceback in the report) and the others still run.

    The output directory is checked before any benchmark runs (see
    :func:`.outdir.prepare_output`): it must be new, empty or hold only an earlier report's
    files, unless ``force``. The report writes only its own files (each atomically, after all
    of them are rendered), replaces only the files of its previous run, and never deletes
    anything else.

    Without matplotlib (the ``plot`` extra) the report holds the tables and a note in place
    of the figures.
    """
    benches: list[AreaBenchmark] = (
        [get(a, benchmarks) for a in areas] if areas else registered(benchmarks)
    )
    if not benches:
        raise InvalidInputError(f"no report areas: {no_areas_message(benchmarks)}")
    out = prepare_output(out_dir, force=force)
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
                    "-",
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
        rows.append((bench.name, "ok", res.goal_status(quick), res.headline, res.seconds))
    summary = Table(
        "Summary",
        ("area", "run", "goal", "headline", "seconds"),
        tuple(rows),
        note="run: whether the benchmark ran to the end; goal: whether the area's stated goal "
        "was met (goals are checked at full size, `frugalml report --full`).",
    )
    files: dict[str, bytes] = {}
    figures = {}
    for res in results:
        files.update(result_files(res))
        figures[res.name] = {k: f"{res.name}_{k}.png" for k in res.figures}
    note = "" if plotting_available() else PLOT_EXTRA_NOTE
    files["index.html"] = render_index(
        summary, results, figures, failures, machine, quick, note=note
    ).encode("utf-8")
    out.write(files)
    return ReportOutcome(out.path, summary, tuple(results), failures)
