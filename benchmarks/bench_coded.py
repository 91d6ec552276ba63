"""Coded-computation benchmark: polar codes vs uncoded, replication and MDS codes.

Usage: python benchmarks/bench_coded.py [--quick]
Writes benchmarks/results/coded.json and coded_*.png and prints the tables.
"""

from pathlib import Path

from frugalml.report.script import bench_main

if __name__ == "__main__":
    bench_main("coded", Path(__file__).resolve().parent / "results")
