"""Runtime benchmark: per-backend overhead, time-to-first-k vs the ideal, and the data plane
(data placed once, bytes per task, crashes, simulated serverless runs).

Usage: python benchmarks/bench_runtime.py [--quick] [--dataplane-only] [--section NAME ...]
Writes benchmarks/results/runtime.json and runtime_*.png and prints the tables.
Sections: lstsq, newton, matvec, crash, serverless (default: all).
"""

import argparse
from dataclasses import replace
from pathlib import Path

from frugalml._threads import limit_blas_threads
from frugalml.report.benches.runtime import run
from frugalml.report.output import rich_table, save_result
from frugalml.report.results import machine_info

if __name__ == "__main__":
    from rich.console import Console

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="quick sizes (as in the report)")
    parser.add_argument(
        "--dataplane-only", action="store_true", help="skip the first-k (straggler) sections"
    )
    parser.add_argument("--section", action="append", help="data-plane section(s) to run")
    args = parser.parse_args()
    limit_blas_threads(1)
    console = Console(width=160)
    with console.status("benchmarking runtime") as status:
        result = run(
            quick=args.quick,
            progress=lambda step, f: status.update(step),
            dataplane=args.section,
            stragglers=not args.dataplane_only,
        )
    result = replace(result, machine=machine_info())
    for table in result.tables:
        console.print(rich_table(table))
    console.print(result.headline)
    out = Path(__file__).resolve().parent / "results"
    name = "runtime" if not args.dataplane_only and not args.section else "runtime_dataplane"
    written = save_result(replace(result, name=name), out)
    console.print("wrote " + ", ".join(str(p) for p in written.values()))
