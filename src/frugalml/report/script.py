"""Shared entry point of the ``benchmarks/bench_<area>.py`` scripts.

A benchmark script ends with::

    def main(argv: list[str] | None = None) -> BenchResult:
        return bench_main(run, RESULTS, title=REPORT_TITLE, argv=argv)

    if __name__ == "__main__":
        main()

and gets the options ``--quick`` (the report's sizes), ``--tiny`` (the smoke test's sizes,
seconds; implies ``--quick``) and ``--out DIR`` (default: ``benchmarks/results``).
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from .._threads import limit_blas_threads
from .output import rich_table, save_result
from .results import BenchResult, machine_info

__all__ = ["bench_main", "bench_parser"]


def bench_parser(description: str, results_dir: str | Path) -> argparse.ArgumentParser:
    """The options every benchmark script has: ``--quick``, ``--tiny``, ``--out DIR``."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--quick", action="store_true", help="quick sizes (as in the report)")
    parser.add_argument(
        "--tiny", action="store_true", help="smallest sizes (the smoke test; implies --quick)"
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=Path(results_dir),
        help=f"directory for the JSON and PNG files (default: {results_dir})",
    )
    return parser


def bench_main(
    run: Callable[..., BenchResult],
    results_dir: str | Path,
    *,
    title: str,
    argv: list[str] | None = None,
    parser: argparse.ArgumentParser | None = None,
    run_kwargs: Callable[[argparse.Namespace], dict[str, Any]] | None = None,
    name: Callable[[argparse.Namespace], str | None] | None = None,
) -> BenchResult:
    """Run a benchmark (full size unless ``--quick`` / ``--tiny``), print its tables and write
    ``<name>.json`` and its PNG files into ``--out`` (default ``results_dir``).

    ``run(quick=, tiny=, progress=, **run_kwargs(args))`` is the benchmark; ``parser`` (from
    :func:`bench_parser`) may add options, ``name(args)`` rename the result files. One BLAS
    thread. Returns the result (with the machine description).
    """
    from rich.console import Console

    parser = parser or bench_parser(f"{title} benchmark", results_dir)
    args = parser.parse_args(argv)
    quick = args.quick or args.tiny
    limit_blas_threads(1)
    console = Console(width=140)
    extra = run_kwargs(args) if run_kwargs else {}
    with console.status(f"benchmarking {title}") as status:
        result = run(
            quick=quick, tiny=args.tiny, progress=lambda step, f: status.update(step), **extra
        )
    result = replace(result, machine=machine_info())
    renamed = name(args) if name else None
    if renamed:
        result = replace(result, name=renamed)
    for table in result.tables:
        console.print(rich_table(table))
    console.print(result.headline)
    args.out.mkdir(parents=True, exist_ok=True)
    written = save_result(result, args.out)
    console.print("wrote " + ", ".join(str(p) for p in written.values()))
    return result
