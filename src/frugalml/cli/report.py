"""``frugalml report``: run the area benchmarks of a checkout, write an HTML report."""

from __future__ import annotations

import sys
from pathlib import Path

import typer
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from .._deprecation import REMOVED_IN
from ..errors import InvalidInputError
from ..report import get, registered, run_report
from ..report.discovery import BENCHMARKS_ENV
from ..report.outdir import prepare_output
from ..report.output import TERMINAL_WIDTH, rich_table
from ..report.registry import RENAMED_AREAS, no_areas_message
from ._common import BLAS_OPTION, JSON_OPTION, console, emit_json, limit_blas_threads

__all__ = ["report"]


def report(
    quick: bool = typer.Option(True, "--quick/--full", help="Quick sizes (default) or full."),
    out: Path = typer.Option(Path("frugalml-report"), "--out", "-o", help="Output directory."),
    area: list[str] = typer.Option(None, "--area", "-a", help="Only these areas (repeatable)."),
    force: bool = typer.Option(
        False,
        "--force",
        help="Write into OUT even if it holds files frugalml did not write (they are kept).",
    ),
    benchmarks: Path = typer.Option(
        None,
        "--benchmarks",
        help=f"Directory of the bench_*.py files (default: ${BENCHMARKS_ENV}, ./benchmarks, "
        "or the nearest benchmarks/ above the working directory).",
    ),
    json_out: bool = JSON_OPTION,
    blas_threads: int = BLAS_OPTION,
) -> int:
    """Run the area benchmarks of a frugalml checkout and write OUT/index.html with tables
    and plots (plots need the `plot` extra).

    OUT must be new, empty, or an earlier report (it keeps a manifest of the files it wrote
    and replaces only those); other files in OUT are never deleted or overwritten.
    """
    limit_blas_threads(blas_threads)
    area = [_current_area(a) for a in area or ()]
    names = (
        [get(a, benchmarks).name for a in area]
        if area
        else [b.name for b in registered(benchmarks)]
    )
    if not names:
        raise InvalidInputError(f"no report areas: {no_areas_message(benchmarks)}")
    prepare_output(out, force=force)  # before any benchmark: a clear error, no wasted work
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.fields[step]}"),
        TimeElapsedColumn(),
        console=console,
        disable=json_out,
    ) as bar:
        tasks = {a: bar.add_task(a, total=1.0, step="") for a in names}

        def progress(a: str, step: str, fraction: float) -> None:
            bar.update(tasks[a], completed=fraction, step=step)

        outcome = run_report(
            out,
            quick=quick,
            areas=names,
            progress=progress,
            force=force,
            benchmarks=benchmarks,
        )
    index = outcome.out_dir / "index.html"
    if json_out:
        emit_json(
            {
                "index": str(index),
                "summary": outcome.summary.as_dict(),
                "failures": outcome.failures,
            }
        )
    else:
        width = min(console.width, TERMINAL_WIDTH)  # fits a 100-column terminal (or narrower)
        console.print(rich_table(outcome.summary, width))
        for res in outcome.results:
            for table in res.tables:
                console.print(rich_table(table, width))
        console.print(f"report written to {index}")
    if not outcome.ok:
        raise typer.Exit(1)
    return 0


def _current_area(name: str) -> str:
    """``name``, or its current spelling with a warning on stderr if it is a 0.1 name."""
    new = RENAMED_AREAS.get(name)
    if new is None:
        return name
    print(
        f"frugalml: warning: 'report --area {name}' is deprecated and will be removed in "
        f"frugalml {REMOVED_IN}; use --area {new}",
        file=sys.stderr,
    )
    return new
