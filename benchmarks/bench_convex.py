"""Convex-training benchmark: the lifted SDP vs backprop (Adam, SGD) on the same objective,
Clarabel vs SCS vs the first-order solver against d and n, quantized networks (SDP bound,
rounding, exhaustive optimum, sign backprop).

Usage: python benchmarks/bench_convex.py [--quick]
Writes benchmarks/results/convex.json and convex_*.png and prints the tables.
"""

from pathlib import Path

from frugalml.report.script import bench_main

if __name__ == "__main__":
    bench_main("convex", Path(__file__).resolve().parent / "results")
