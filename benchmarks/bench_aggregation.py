"""Subspace gradient aggregation benchmark: AdaCons (arXiv 2411.03742) vs averaging, AdaSum and
PowerSGD in real data-parallel runs on N in {4, 8} local gloo processes, four tasks, two global
batch sizes, tuned learning rates; step time, communication and hook overhead.

Usage: python benchmarks/bench_aggregation.py [--quick]
Writes benchmarks/results/aggregation.json and aggregation_loss_vs_*.png and prints the tables.
"""

from pathlib import Path

from frugalml.report.script import bench_main

if __name__ == "__main__":
    bench_main("aggregation", Path(__file__).resolve().parent / "results")
