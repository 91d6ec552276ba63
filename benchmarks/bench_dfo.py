"""Coded derivative-free optimisation benchmark: gradient-estimate cosine vs stragglers,
optimisation time to target under heavy stragglers, black-box attacks (simulated clock and a
real local run). Usage: python benchmarks/bench_dfo.py [--quick]
Writes benchmarks/results/dfo.json and PNGs and prints the tables."""

from pathlib import Path

from frugalml.report.script import bench_main

if __name__ == "__main__":
    bench_main("dfo", Path(__file__).resolve().parent / "results")
