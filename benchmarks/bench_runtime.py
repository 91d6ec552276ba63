"""Runtime benchmark: per-backend overhead and time-to-first-k vs the ideal.

Usage: python benchmarks/bench_runtime.py [--quick]
Writes benchmarks/results/runtime.json and runtime_*.png and prints the tables.
"""

from pathlib import Path

from frugalml.report.script import bench_main

if __name__ == "__main__":
    bench_main("runtime", Path(__file__).resolve().parent / "results")
