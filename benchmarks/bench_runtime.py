"""Runtime benchmark: per-backend overhead and time-to-first-k vs the ideal.

Usage: python benchmarks/bench_runtime.py [--quick]
Writes benchmarks/results/runtime.json and runtime_*.png and prints the tables.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from rich.console import Console

from frugalml._threads import limit_blas_threads
from frugalml.report.benches.runtime import run
from frugalml.report.output import rich_table, save_result
from frugalml.report.results import machine_info

RESULTS = Path(__file__).resolve().parent / "results"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="quick sizes (as in the report)")
    args = parser.parse_args()
    limit_blas_threads(1)
    console = Console()
    with console.status("benchmarking runtime backends") as status:
        result = run(quick=args.quick, progress=lambda step, f: status.update(step))
    from dataclasses import replace

    result = replace(result, machine=machine_info())
    for table in result.tables:
        console.print(rich_table(table))
    written = save_result(result, RESULTS)
    console.print("wrote " + ", ".join(str(p) for p in written.values()))


if __name__ == "__main__":
    main()
