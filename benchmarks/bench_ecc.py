"""ECC benchmark: BER / FER / -ln(BER) of hard decision, BP, OSD-1/2 and the syndrome-based
neural decoders (GRU, MLP, transformer) on BCH(63,45), BCH(63,36), polar(64,32) and an LDPC
code at 4-6 dB (plus a 1-7 dB curve), decoding throughput, and the zero-codeword invariance.

Usage: python benchmarks/bench_ecc.py [--quick]
Writes benchmarks/results/ecc.json and ecc_ber.png and prints the tables. Trained decoders
come from benchmarks/models/ecc/ (benchmarks/train_ecc.py) when present.
"""

from pathlib import Path

from frugalml.report.script import bench_main

if __name__ == "__main__":
    bench_main("ecc", Path(__file__).resolve().parent / "results")
