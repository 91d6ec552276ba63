"""Quantization benchmark: MMSE post-training quantization (INT4/INT8 weights and activations,
residual tensors) vs min-max, percentile, ACIQ and HistogramObserver on in-house CNNs (digits,
MNIST-1D) and all-MiniLM-L6-v2; per-layer MSE tables and quantization wall time.

Usage: python benchmarks/bench_quant.py [--quick]
Writes benchmarks/results/quant.json and quant_*.png and prints the tables.
"""

from pathlib import Path

from frugalml.report.script import bench_main

if __name__ == "__main__":
    bench_main("quant", Path(__file__).resolve().parent / "results")
