"""Second-order benchmark: debiased vs naive averaging of sketched Newton steps, distributed
Newton vs exact Newton and scikit-learn, heterogeneous workers.

Usage: python benchmarks/bench_second_order.py [--quick]
Writes benchmarks/results/second-order.json and second-order_*.png and prints the tables.
"""

from pathlib import Path

from frugalml.report.script import bench_main

if __name__ == "__main__":
    bench_main("second-order", Path(__file__).resolve().parent / "results")
