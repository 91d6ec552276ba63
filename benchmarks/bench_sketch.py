"""Sketching benchmark: sketch apply time, randomized least squares vs LAPACK, distributed
averaging error vs exact theory, heterogeneous workers, privacy.

Usage: python benchmarks/bench_sketch.py [--quick]
Writes benchmarks/results/sketch.json and sketch_*.png and prints the tables.
"""

from pathlib import Path

from frugalml.report.script import bench_main

if __name__ == "__main__":
    bench_main("sketch", Path(__file__).resolve().parent / "results")
