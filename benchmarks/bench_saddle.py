"""Saddle-point benchmark: PD-SESOP vs GDA, extragradient, optimistic GDA, proximal point and
ADMM on bilinear, quadratic and constrained problems (distance vs gradient evaluations and wall
time), a subspace study (memory, directions, eta), and a mixture-of-Gaussians GAN vs Adam-GDA.

Usage: python benchmarks/bench_saddle.py [--quick]
Writes benchmarks/results/saddle.json and saddle_convergence.png and prints the tables.
"""

from pathlib import Path

from frugalml.report.script import bench_main

if __name__ == "__main__":
    bench_main("saddle", Path(__file__).resolve().parent / "results")
