"""Coded product at ImageNet feature scale, streamed from a memory-mapped file (slow).

A (rows x features, float32, default 1281167 x 2048 = 10.5 GB on disk, random data written
chunk by chunk into a temporary directory) times a (features x classes) classifier, on the
local thread executor with N workers, ``chunk_rows`` rows at a time. Reports throughput
(rows/s) of the polar code (K = N/2, exact decoding from the first decodable set) against
the uncoded scheme (N blocks, waits for all), with and without injected straggler delays.

Usage: python benchmarks/bench_coded_scale.py [--rows R] [--features F] [--classes C]
[--chunk-rows N] [--workers N] [--workdir DIR] [--out DIR]
Writes DIR/coded_scale.json (DIR: benchmarks/results). A script only, not a report area.
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
from rich.console import Console

from frugalml._io import atomic_write_text
from frugalml._threads import limit_blas_threads
from frugalml.coded.matmul import streamed_matmul
from frugalml.report.output import rich_table
from frugalml.report.results import Table, machine_info
from frugalml.runtime import BimodalStragglers, FaultInjector, ShiftedExponential, make_executor

RESULTS = Path(__file__).resolve().parent / "results"


def main(argv: list[str] | None = None) -> dict:
    """Run the benchmark; returns what it writes to ``coded_scale.json``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_281_167)
    parser.add_argument("--features", type=int, default=2048)
    parser.add_argument("--classes", type=int, default=1000)
    parser.add_argument("--chunk-rows", type=int, default=65_536)
    parser.add_argument("--workers", type=int, default=16)
    parser.add_argument("--workdir", type=Path, default=None, help="where the memmap goes")
    parser.add_argument("--out", type=Path, default=RESULTS, help="directory for the JSON")
    args = parser.parse_args(argv)
    limit_blas_threads(1)
    console = Console(width=140)
    rng = np.random.default_rng(0)
    tmp = Path(tempfile.mkdtemp(dir=args.workdir, prefix="frugalml-scale-"))
    try:
        path = tmp / "features.npy"
        shape = (args.rows, args.features)
        a = np.lib.format.open_memmap(path, mode="w+", dtype=np.float32, shape=shape)
        t0 = time.perf_counter()
        with console.status("writing the feature file"):
            for start in range(0, args.rows, args.chunk_rows):
                stop = min(start + args.chunk_rows, args.rows)
                a[start:stop] = rng.standard_normal((stop - start, args.features), np.float32)
            a.flush()
        write_s = time.perf_counter() - t0
        del a
        a = np.load(path, mmap_mode="r")
        b = rng.standard_normal((args.features, args.classes), dtype=np.float32)
        delays = BimodalStragglers(ShiftedExponential(0.0, 5.0), p_slow=0.05, slowdown=10.0)
        rows, runs = [], {}
        check = slice(0, 4096)
        ref = np.asarray(a[check], dtype=np.float64) @ b.astype(np.float64)
        for stragglers in (False, True):
            for code in ("uncoded", "polar"):
                with make_executor("local-thread", workers=args.workers) as ex:
                    runner = FaultInjector(ex, stragglers=delays, rng=1) if stragglers else ex
                    label = f"{code}, stragglers={stragglers}"
                    with console.status(label) as status:
                        res = streamed_matmul(
                            a, b, runner, chunk_rows=args.chunk_rows, code=code,
                            n_workers=args.workers, rng=0,
                            progress=lambda msg, f, lab=label, st=status: st.update(
                                f"{lab}: {msg}"
                            ),
                        )  # fmt: skip
                err = float(np.linalg.norm(res.value[check] - ref) / np.linalg.norm(ref))
                key = f"{code}{'+stragglers' if stragglers else ''}"
                runs[key] = {"seconds": res.seconds, "rows_per_s": res.rows_per_s,
                             "mean_arrivals": res.mean_arrivals, "rel_error": err}  # fmt: skip
                rows.append((code, stragglers, res.seconds, res.rows_per_s,
                             res.mean_arrivals, err))  # fmt: skip
                del res
        for stragglers in (False, True):
            suffix = "+stragglers" if stragglers else ""
            ratio = runs[f"polar{suffix}"]["rows_per_s"] / runs[f"uncoded{suffix}"]["rows_per_s"]
            runs[f"polar/uncoded throughput{suffix}"] = ratio
        table = Table(
            f"Streamed product {args.rows} x {args.features} (float32 memmap) @ "
            f"{args.features} x {args.classes}, N={args.workers}, chunks of {args.chunk_rows}",
            ("code", "stragglers", "seconds", "rows / s", "workers used / chunk", "rel. error"),
            tuple(rows),
            note=f"feature file written in {write_s:.1f}s; stragglers: Exp(mean 0.2 s) per "
            "worker and chunk, 5% slowed 10x; polar K = N/2, uncoded K = N.",
        )
        console.print(rich_table(table))
        console.print(
            f"polar / uncoded throughput: {runs['polar/uncoded throughput']:.2f}x without, "
            f"{runs['polar/uncoded throughput+stragglers']:.2f}x with stragglers"
        )
        payload = {"args": {k: str(v) for k, v in vars(args).items()}, "runs": runs,
                   "table": table.as_dict(), "machine": machine_info()}  # fmt: skip
        args.out.mkdir(parents=True, exist_ok=True)
        atomic_write_text(args.out / "coded_scale.json", json.dumps(payload, indent=2))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return payload


if __name__ == "__main__":
    main()
