"""Convex WGAN benchmark: closed form vs SDP, the progressive convex GAN (ProCoGAN) vs the
same architecture trained by GDA and a DCGAN-style GAN on digits, image patches and MNIST-1D
(wall time, Frechet distance, sliced Wasserstein, MMD), the effect of truncation / beta, and
sample grids.

Usage: python benchmarks/bench_convex_gan.py [--quick]
Writes benchmarks/results/convex-gan.json and convex-gan_*.png and prints the tables.
"""

from pathlib import Path

from frugalml.report.script import bench_main

if __name__ == "__main__":
    bench_main("convex-gan", Path(__file__).resolve().parent / "results")
