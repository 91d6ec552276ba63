"""Rematerialisation benchmark: MOCCASIN vs Checkmate MILP vs LP rounding vs greedy on the
published graphs (../shared/data/remat-graphs, or $FRUGALML_REMAT_GRAPHS) at 90% / 80% budgets,
plus the in-house PyTorch models extracted, solved and executed.

Usage: python benchmarks/bench_remat.py [--quick]
Writes benchmarks/results/remat.json and remat_*.png and prints the tables.
"""

from pathlib import Path

from frugalml.report.script import bench_main

if __name__ == "__main__":
    bench_main("remat", Path(__file__).resolve().parent / "results")
