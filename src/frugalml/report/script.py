"""Shared entry point of the ``benchmarks/bench_<area>.py`` scripts."""

from __future__ import annotations

import argparse
from dataclasses import replace
from pathlib import Path

from .._threads import limit_blas_threads
from .output import rich_table, save_result
from .registry import get
from .results import machine_info

__all__ = ["bench_main"]


def bench_main(area: str, results_dir: str | Path, argv: list[str] | None = None) -> None:
    """Run ``area``'s registered benchmark (full size unless ``--quick``), print its tables
    and write JSON + PNG into ``results_dir``."""
    from rich.console import Console

    bench = get(area)
    parser = argparse.ArgumentParser(description=f"{bench.title} benchmark")
    parser.add_argument("--quick", action="store_true", help="quick sizes (as in the report)")
    args = parser.parse_args(argv)
    limit_blas_threads(1)
    console = Console(width=140)
    with console.status(f"benchmarking {area}") as status:
        result = bench.load()(quick=args.quick, progress=lambda step, f: status.update(step))
    result = replace(result, machine=machine_info())
    for table in result.tables:
        console.print(rich_table(table))
    console.print(result.headline)
    written = save_result(result, results_dir)
    console.print("wrote " + ", ".join(str(p) for p in written.values()))
