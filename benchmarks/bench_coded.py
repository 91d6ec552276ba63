"""Coded-computation benchmark: latency under stragglers, decode cost, accuracy, anytime error.

Sections (all compared in the same run):
1. Completion time including decoding on a simulated clock (Monte-Carlo over a straggler
   model) for polar vs uncoded, 2-replication, Gaussian MDS and the ideal MDS code.
2. Decode time: polar SC vs the Gaussian-MDS solve on 256 x 256 float64 blocks, and the
   memory-bound floor (log2 N in-place numpy adds over the same data).
3. Numerical error of decoding in float32/float64 per kernel, against the Vandermonde code.
4. Anytime estimator: measured vs predicted relative error against the number of arrivals.
5. A real run of coded_matmul on the local process pool (and Ray, full run) with injected
   straggler delays (wall clock).

Usage: python benchmarks/bench_coded.py [--quick | --tiny] [--out DIR]
Writes DIR/coded.json and coded_*.png (DIR: benchmarks/results) and prints the tables.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np

from _common import best_of, butterfly_floor
from frugalml.coded import GaussianMDS, PolarCode, VandermondeCode, anytime_estimate
from frugalml.coded.matmul import coded_matmul
from frugalml.coded.simulate import default_schemes, first_decodable_mask, simulate_latency
from frugalml.progress import Progress
from frugalml.report.output import optional_figures, pyplot
from frugalml.report.results import NO_GOAL, BenchResult, Table
from frugalml.report.script import bench_main
from frugalml.runtime import (
    BimodalStragglers,
    FaultInjector,
    ShiftedExponential,
    backend_info,
    concurrent_options,
    make_executor,
)

__all__ = ["REPORT_AREA", "REPORT_TITLE", "main", "run"]

REPORT_AREA = "coded"
REPORT_TITLE = "Coded computation: polar codes"
RESULTS = Path(__file__).resolve().parent / "results"

MODELS = {
    "shifted-exp": ShiftedExponential(1.0, 1.0),
    "2% heavy": BimodalStragglers(ShiftedExponential(1.0, 1.0), p_slow=0.02, slowdown=10.0),
}


def _latency(ns, trials, gen) -> tuple[list[tuple], dict[str, Any]]:
    rows, data = [], {}
    for n in ns:
        k = n // 2
        for mname, model in MODELS.items():
            res = simulate_latency(
                model, default_schemes(n, k, rng=gen), k=k, trials=trials,
                block_shape=(64, 64), unit_seconds=1.0, rng=gen,
            )  # fmt: skip
            by = {r.name: r for r in res}
            ideal, unc = by["ideal-mds"], by["uncoded"]
            for r in res:
                rows.append((
                    n, mname, r.name, r.mean, r.p99, r.mean / ideal.mean, unc.p99 / r.p99,
                    r.mean_arrivals_over_k, r.decode_units,
                ))  # fmt: skip
            data[f"{n}/{mname}"] = {r.name: {"mean": r.mean, "p99": r.p99} for r in res}
    return rows, data


def _decode_times(ns, block, gen) -> list[tuple]:
    rows = []
    for n in ns:
        k = n // 2
        polar, mds = PolarCode(n, k, rng=gen), GaussianMDS(n, k, rng=gen)
        data = gen.standard_normal((k, *block))
        out = {}
        for name, code in (("polar", polar), ("mds", mds)):
            coded = code.encode(data)
            mask = first_decodable_mask(code, gen.permutation(code.n))
            out[name] = best_of(lambda c=code, y=coded, m=mask: c.decode(y, m), 2)[0]
            del coded
        scratch = gen.standard_normal((n, *block))
        floor = best_of(lambda s=scratch: butterfly_floor(s), 2)[0]
        del scratch
        rows.append((n, f"{block[0]}x{block[1]}", out["polar"], out["mds"], floor,
                     out["mds"] / out["polar"], out["polar"] / floor))  # fmt: skip
    return rows


def _accuracy(ns, gen) -> list[tuple]:
    rows = []
    for n in ns:
        k = n // 2
        data64 = gen.standard_normal((k, 8, 8))
        codes = {
            "polar-hadamard": PolarCode(n, k, kernel="hadamard", rng=gen),
            "polar-arikan": PolarCode(n, k, kernel="arikan", rng=gen),
            "gaussian-mds": GaussianMDS(n, k, rng=gen),
            "vandermonde": VandermondeCode(n, k),
        }
        for name, code in codes.items():
            mask = first_decodable_mask(code, gen.permutation(code.n))
            for dtype in (np.float32, np.float64):
                u = data64.astype(dtype)
                y = code.encode(u)
                with np.errstate(all="ignore"):
                    try:
                        got = code.decode(y, mask).blocks.astype(np.float64)
                        err = float(np.linalg.norm(got - data64) / np.linalg.norm(data64))
                    except Exception:  # singular Vandermonde solve
                        err = float("inf")
                rows.append((n, name, np.dtype(dtype).name, err))
    return rows


def _anytime(n, k, trials, gen) -> tuple[list[tuple], dict[str, list]]:
    u = gen.standard_normal((k, 16))
    ms = sorted({max(1, int(f * n)) for f in (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.75)})
    rows, curves = [], {"m": ms}
    for method in ("unbiased", "lstsq", "hybrid"):
        meas, pred = [], []
        for m in ms:
            errs, preds = [], []
            for _ in range(trials):
                code = PolarCode(n, k, rng=gen)
                y = code.encode(u)
                mask = np.zeros(n, dtype=bool)
                mask[gen.choice(n, m, replace=False)] = True
                est = anytime_estimate(code, y, mask, method)
                errs.append(np.sum((est.blocks - u) ** 2) / np.sum(u**2))
                preds.append(est.predicted_rel_error)
            meas.append(float(np.mean(errs)))
            pred.append(float(np.mean(preds)))
            rows.append((method, m, meas[-1], pred[-1]))
        curves[method] = meas
        curves[method + "_pred"] = pred
    return rows, curves


def _real_runs(backends, n, trials, gen) -> list[tuple]:
    """Wall-clock coded_matmul with injected delays. Each trial gets a fresh, warmed-up
    executor (setup not timed) so that stragglers cancelled in one trial, which keep
    sleeping on their workers, cannot delay the next."""
    rows = []
    a = gen.standard_normal((n * 64, 256))
    b = gen.standard_normal((256, 64))
    ref = a @ b
    model = BimodalStragglers(ShiftedExponential(0.2, 10.0), p_slow=0.1, slowdown=8.0)
    for backend in backends:
        for code, k in (("uncoded", n), ("mds", n // 2), ("polar", n // 2)):
            times, used, errs, per_task, placed = [], [], [], [], []
            for trial in range(trials):
                with make_executor(backend, **concurrent_options(backend, n)) as ex:
                    ex.gather([ex.submit(time.sleep, 0.2) for _ in range(n)], deadline=120)
                    inj = FaultInjector(ex, stragglers=model, clock="wall", rng=100 + trial)
                    t0 = time.perf_counter()
                    res = coded_matmul(a, b, inj, code=code, n_workers=n, k_blocks=k, rng=trial)
                    times.append(time.perf_counter() - t0)
                used.append(res.n_arrived)
                errs.append(float(np.abs(res.value - ref).max()))
                per_task.append(res.bytes_sent / n)
                placed.append(res.bytes_placed / 2**20)
            rows.append(
                (backend, code, n, k, float(np.median(times)), float(np.mean(used)), max(errs),
                 float(np.mean(per_task)), float(np.mean(placed)))
            )  # fmt: skip
    return rows


def run(
    *, quick: bool = True, progress: Progress | None = None, rng: int = 7, tiny: bool = False
) -> BenchResult:
    """Quick: the report's sizes; full: N up to 1024 and Ray; tiny (the smoke test): N = 16,
    20 trials, the thread pool for the real runs."""
    gen = np.random.default_rng(rng)
    say = progress or (lambda s, f: None)
    ns_lat = (16,) if tiny else (64, 256) if quick else (64, 256, 1024)
    trials = 20 if tiny else 200 if quick else 500
    say("latency (simulated clock)", 0.0)
    lat_rows, lat_data = _latency(ns_lat, trials, gen)
    say("decode time", 0.4)
    dec_ns, block = ((16,), (32, 32)) if tiny else ((256,) if quick else (256, 1024), (256, 256))
    dec_rows = _decode_times(dec_ns, block, gen)
    say("numerical error", 0.6)
    acc_rows = _accuracy((16,) if tiny else (64, 256) if quick else (64, 256, 1024), gen)
    say("anytime estimator", 0.7)
    any_n, any_k, any_trials = (32, 16, 2) if tiny else (256, 128, 20 if quick else 100)
    any_rows, curves = _anytime(any_n, any_k, any_trials, gen)
    say("real runs", 0.85)
    backends = ["local"] + ([] if quick or not backend_info("ray").installed else ["ray"])
    if tiny:
        backends = ["local-thread"]
    real_n = 8 if tiny else 16
    real_rows = _real_runs(backends, real_n, 1 if tiny else 2 if quick else 3, gen)

    heavy = [r for r in lat_rows if r[1] == "2% heavy" and r[0] == max(ns_lat)]
    polar = next(r for r in heavy if r[2] == "polar")
    dec_last = dec_rows[-1]
    headline = (
        f"N={polar[0]}, 2% heavy stragglers: polar mean {polar[5]:.2f}x ideal MDS, "
        f"p99 {polar[6]:.1f}x better than uncoded; decode at N={dec_last[0]}: "
        f"MDS/polar {dec_last[5]:.2f}x, polar/floor {dec_last[6]:.1f}x"
    )
    tables = (
        Table(
            "Completion time incl. decoding (simulated clock, model time = seconds)",
            (
                "N",
                "model",
                "scheme",
                "mean",
                "p99",
                "mean / ideal MDS",
                "p99 gain vs uncoded",
                "arrivals / K",
                "decode s",
            ),
            tuple(lat_rows),
            note=f"K = N/2, {trials} trials, output blocks 64x64 for the decode cost; "
            "uncoded uses N blocks of 1/N of the rows, 2-replication N/2 blocks.",
        ),
        Table(
            "Decode time (best of 2, float64, K = N/2, first decodable arrival set)",
            (
                "N",
                "block",
                "polar SC s",
                "Gaussian MDS s",
                "floor s",
                "MDS / polar",
                "polar / floor",
            ),
            tuple(dec_rows),
            note="floor = log2 N in-place numpy adds over the N blocks (memory-bound).",
        ),
        Table(
            "Relative decoding error (K = N/2, 8x8 blocks)",
            ("N", "code", "dtype", "rel. error"),
            tuple(acc_rows),
        ),
        Table(
            "Anytime estimator: measured vs predicted relative squared error "
            f"(N={any_n}, K={any_k})",
            ("method", "arrivals m", "measured", "predicted"),
            tuple(any_rows),
        ),
        Table(
            "Real runs: coded_matmul with injected stragglers (wall clock, median over trials)",
            (
                "backend",
                "code",
                "N",
                "K",
                "seconds",
                "mean arrivals used",
                "max abs error",
                "bytes sent per task",
                "MiB placed once",
            ),
            tuple(real_rows),
            note=f"A ({real_n * 64} x 256) @ B (256 x 64); delays 0.2 s + Exp(0.1 s), 10% "
            "slowed 8x. A's coded blocks and B are placed once with the executor; a task carries "
            "references only.",
        ),
    )
    return BenchResult(
        name="coded",
        status=NO_GOAL,
        title="Coded computation: polar codes vs baselines",
        headline=headline,
        tables=tables,
        figures=optional_figures(_figures, lat_data, curves, f"N={any_n}, K={any_k}"),
        data={"latency": lat_data, "anytime": curves},
        mode="simulated clock (latency), wall clock (decode, real runs)",
    )


def _figures(lat_data, curves, anytime_code: str = "N=256, K=128"):
    plt = pyplot()

    fig1, ax = plt.subplots(figsize=(7, 3.6))
    keys = list(lat_data)
    schemes = list(next(iter(lat_data.values())))
    width = 0.8 / len(schemes)
    for j, s in enumerate(schemes):
        ax.bar(np.arange(len(keys)) + j * width, [lat_data[k][s]["p99"] for k in keys], width,
               label=s)  # fmt: skip
    ax.set_xticks(np.arange(len(keys)) + 0.4 - width / 2, keys, fontsize=8)
    ax.set_yscale("log")
    ax.set_ylabel("p99 completion (model s)")
    ax.set_title("p99 completion time incl. decoding")
    ax.legend(fontsize=7)

    fig2, ax = plt.subplots(figsize=(6, 3.6))
    for method in ("unbiased", "lstsq", "hybrid"):
        (line,) = ax.plot(curves["m"], curves[method], "o-", label=f"{method} measured")
        ax.plot(curves["m"], curves[method + "_pred"], "--", color=line.get_color(),
                label=f"{method} predicted")  # fmt: skip
    ax.set_yscale("log")
    ax.set_xlabel(f"arrivals m ({anytime_code})")
    ax.set_ylabel("relative squared error")
    ax.set_title("Anytime estimates")
    ax.legend(fontsize=7)
    return {"p99": fig1, "anytime": fig2}


def main(argv: list[str] | None = None) -> BenchResult:
    return bench_main(run, RESULTS, title=REPORT_TITLE, argv=argv)


if __name__ == "__main__":
    main()
