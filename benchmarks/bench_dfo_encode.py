"""Coded ES at d = 10^3-10^5: fast (butterfly) vs dense (G^T V) encoding, per-iteration wall time.

Bartan & Pilanci, "Distributed Black-Box Optimization via Error Correcting Codes"
(arXiv 1907.05984); the attack is NES-PGD (Ilyas et al. 2018, arXiv 1804.08598).

Workload: a black-box l_inf attack (sign steps, eps ball) on scikit-learn's bundled china.jpg
resized to s x s x 3 (d = 3 s^2: 972, 10092, 30000, 100467, 150528 for s = 18, 58, 100, 183,
224), every pixel perturbed, against a small CNN trained here in seconds
(:func:`frugalml.coded.dfo.attack.photo_classifier`). Coded ES with the attack's N = 32
workers and K = 16 directions, polar code (K = N/2), central differences (2N forward passes per
iteration, batched), stragglers Exp(1) on the simulated clock. Each iteration's wall time is
split into drawing the K directions, encoding them (W = G^T V), the function evaluations (the
2N CNN queries and the simulated wait) and decoding (SC plus the (1/K) V^T g estimate);
the remainder is the update and the loss check. Per size, four coded ES runs -- orthogonal or
Hadamard directions x fast or dense encoding -- step in turn (interleaved) from the same seed,
so each ratio is measured side by side; the fast and dense runs of a direction family
produce the same iterates (the largest difference is reported).

A second sweep times the encoding alone against the number of workers N (K = N/2, d fixed),
where the O(N d log N) butterflies and the O(N K d) GEMM cross over.

Usage: python benchmarks/bench_dfo_encode.py [--quick] [--out DIR]
Writes DIR/dfo_encode.json and DIR/dfo_encode_crossover.png (DIR: benchmarks/results).
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

import numpy as np

from frugalml._io import atomic_write_text
from frugalml._threads import limit_blas_threads
from frugalml.coded.dfo import CodedDirections, CodedES
from frugalml.coded.dfo.attack import LogitsOracle, MarginObjective, photo_classifier
from frugalml.report.output import pyplot, rich_table, save_png
from frugalml.report.results import Table, machine_info
from frugalml.runtime import ShiftedExponential

RESULTS = Path(__file__).resolve().parent / "results"
PHASES = ("draw", "encode", "eval", "decode")
FULL_SIZES = (18, 58, 100, 183, 224)
QUICK_SIZES = (18, 58)
FULL_SWEEP = (8, 16, 32, 64, 128, 256, 512, 1024)
QUICK_SWEEP = (8, 32, 128)


def attack_runs(size: int, n: int, k: int, iters: int, eps: float, seed: int) -> dict:
    """Interleaved steps of the four coded ES variants on the photo of side ``size``."""
    clf = photo_classifier(size, rng=seed)
    obj = MarginObjective(LogitsOracle(clf.model), clf.x_test[0], int(clf.y_test[0]),
                          clip=clf.clip, full_resolution=True)  # fmt: skip
    d = obj.dim
    variants = {}
    for directions in ("orthogonal", "hadamard"):
        for encoding in ("dense", "fast"):
            variants[(directions, encoding)] = CodedES(
                obj, np.zeros(d), n_workers=n, n_directions=k, code="polar",
                directions=directions, encoding=encoding, sigma=0.01, step=eps / 2,
                step_rule="sign", linf_ball=(np.zeros(d), eps), batched=True,
                stragglers=ShiftedExponential(1.0, 1.0), max_growth=None, rng=seed,
            )  # fmt: skip
    times: dict = {key: {p: [] for p in (*PHASES, "total")} for key in variants}
    for it in range(iters + 1):  # the first step of each is a warm-up, not recorded
        for key, es in variants.items():
            info = es.step()
            if it == 0:
                continue
            for p in PHASES:
                times[key][p].append(getattr(info, f"{p}_seconds"))
            times[key]["total"].append(info.wall_seconds)
    out = {"size": size, "d": d, "test_accuracy": clf.test_accuracy, "runs": {}}
    for (directions, encoding), es in variants.items():
        med = {p: float(np.median(v)) for p, v in times[(directions, encoding)].items()}
        out["runs"][f"{directions}/{encoding}"] = {"median_s": med, "loss": es.loss}
    for directions in ("orthogonal", "hadamard"):
        a, b = variants[(directions, "fast")], variants[(directions, "dense")]
        out[f"{directions}_max_iterate_diff"] = float(np.max(np.abs(a.x - b.x)))
    return out


def encode_sweep(d: int, workers: tuple[int, ...], reps: int, seed: int) -> list[dict]:
    """Encoding time alone, polar K = N/2, fast vs dense, against N at dimension d."""
    rows = []
    for n in workers:
        coders = {e: CodedDirections(d, n // 2, n, code="polar", directions="gaussian",
                                     encoding=e, rng=seed) for e in ("fast", "dense")}  # fmt: skip
        v = coders["fast"].sample()
        coders["dense"].generator  # noqa: B018 -- built once, outside the timing
        best = {e: math.inf for e in coders}
        for _ in range(reps):  # interleaved, best of reps
            for e, c in coders.items():
                t0 = time.perf_counter()
                c.encode(v)
                best[e] = min(best[e], time.perf_counter() - t0)
        rows.append({"n": n, "k": n // 2, "d": d, "fast_s": best["fast"], "dense_s": best["dense"]})
    return rows


def copy_bandwidth(mbytes: int = 64, reps: int = 5) -> float:
    """Measured copy bandwidth in GB/s (bytes read + written), best of ``reps``: the roofline
    for the memory-bound encodings."""
    a = np.ones(mbytes * (1 << 20) // 8)
    b = np.empty_like(a)
    best = math.inf
    for _ in range(reps):
        t0 = time.perf_counter()
        np.copyto(b, a)
        best = min(best, time.perf_counter() - t0)
    return 2 * a.nbytes / best / 1e9


def old_orthogonal_draw(d: int, k: int, seed: int, reps: int = 3) -> float:
    """Seconds for the previous orthogonal draw: the QR of a full d x d Gaussian matrix per
    iteration (O(d^3); only run at small d), best of ``reps``."""
    gen = np.random.default_rng(seed)
    best = math.inf
    for _ in range(reps):
        t0 = time.perf_counter()
        q, r = np.linalg.qr(gen.standard_normal((d, d)))
        (q * np.sign(np.diag(r))).T[gen.choice(d, size=k, replace=False)]
        best = min(best, time.perf_counter() - t0)
    return best


def plot(result: dict, path: Path) -> None:
    plt = pyplot()

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(12, 4.5))
    ds = [r["d"] for r in result["attack"]]
    styles = {"orthogonal": "-", "hadamard": "--"}
    for directions in ("orthogonal", "hadamard"):
        for encoding, color in (("dense", "tab:red"), ("fast", "tab:blue")):
            key = f"{directions}/{encoding}"
            enc = [r["runs"][key]["median_s"]["encode"] * 1e3 for r in result["attack"]]
            ax1.plot(ds, enc, styles[directions], color=color, marker="o",
                     label=f"encode, {encoding} ({directions} run)")  # fmt: skip
        tot = [r["runs"][f"{directions}/fast"]["median_s"]["total"] * 1e3
               for r in result["attack"]]  # fmt: skip
        drw = [r["runs"][f"{directions}/fast"]["median_s"]["draw"] * 1e3
               for r in result["attack"]]  # fmt: skip
        ax1.plot(ds, tot, styles[directions], color="black", marker="s",
                 label=f"whole iteration ({directions}, fast)")  # fmt: skip
        ax1.plot(ds, drw, styles[directions], color="tab:green", marker="^",
                 label=f"draw {directions}")  # fmt: skip
    ax1.set(xscale="log", yscale="log", xlabel="dimension d", ylabel="ms per iteration (median)",
            title=f"coded ES attack, N={result['n']}, K={result['k']}")  # fmt: skip
    ax1.legend(fontsize=7)
    sw = result["sweep"]
    ns = [r["n"] for r in sw]
    ax2.plot(ns, [r["dense_s"] * 1e3 for r in sw], "o-", color="tab:red", label="dense G^T V")
    ax2.plot(ns, [r["fast_s"] * 1e3 for r in sw], "o-", color="tab:blue", label="butterflies")
    ax2.set(xscale="log", yscale="log", xlabel="workers N (K = N/2)", ylabel="encode ms (best)",
            title=f"polar encoding alone, d = {sw[0]['d']}")  # fmt: skip
    ax2.legend()
    fig.tight_layout()
    save_png(fig, path)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="two small sizes, short sweep")
    parser.add_argument("--sizes", type=int, nargs="+", default=None, help="photo sides s")
    parser.add_argument("--iters", type=int, default=None, help="timed iterations per run")
    parser.add_argument("--workers", type=int, default=32, help="N of the attack")
    parser.add_argument("--directions", type=int, default=None, help="K (default N/2)")
    parser.add_argument("--sweep", type=int, nargs="+", default=None, help="N of the sweep")
    parser.add_argument("--sweep-dim", type=int, default=10_000)
    parser.add_argument("--eps", type=float, default=0.03)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    import torch
    from rich.console import Console

    limit_blas_threads(1)
    torch.set_num_threads(1)
    console = Console(width=150)
    sizes = args.sizes or (QUICK_SIZES if args.quick else FULL_SIZES)
    iters = args.iters or (3 if args.quick else 8)
    sweep_n = tuple(args.sweep or (QUICK_SWEEP if args.quick else FULL_SWEEP))
    n = args.workers
    k = args.directions or max(1, n // 2)
    attack = []
    for s in sizes:
        with console.status(f"coded ES attack at {s}x{s}x3"):
            attack.append(attack_runs(s, n, k, iters, args.eps, args.seed))
    with console.status("encoding sweep"):
        sweep = encode_sweep(args.sweep_dim, sweep_n, 3 if args.quick else 5, args.seed)
    bandwidth = copy_bandwidth()
    d_old = attack[0]["d"]
    old_draw = old_orthogonal_draw(d_old, k, args.seed) if d_old <= 3000 else None
    rows = []
    for r in attack:
        base = r["runs"]["orthogonal/dense"]["median_s"]
        for key, run in r["runs"].items():
            m = run["median_s"]
            dense = r["runs"][key.split("/")[0] + "/dense"]["median_s"]
            rows.append((
                r["d"], *key.split("/"), *(f"{m[p] * 1e3:.2f}" for p in PHASES),
                f"{m['total'] * 1e3:.1f}", f"{dense['encode'] / m['encode']:.2f}",
                f"{base['total'] / m['total']:.2f}",
            ))  # fmt: skip
    mach = machine_info()
    table = Table(
        f"Coded ES black-box attack, polar N={n}, K={k}: median ms per iteration by phase",
        (
            "d",
            "directions",
            "encoding",
            "draw",
            "encode",
            "eval (2N CNN)",
            "decode",
            "iteration",
            "encode dense/this",
            "iteration baseline/this",
        ),
        tuple(rows),
        note=(
            f"{iters} timed iterations per run after one warm-up, the four runs of a size "
            "interleaved in one process; baseline = orthogonal directions + dense G^T V. "
            "Model: small CNN (3 strided convs + linear, 2 classes) trained here on random "
            "crops of sklearn's china/flower photos; attacked: china.jpg (center square) "
            f"resized to s x s x 3, eps={args.eps}, sign steps. BLAS threads 1, torch threads 1; "
            f"{mach.get('cpu_count', '?')} logical CPUs, shared machine."
        ),
    )
    console.print(rich_table(table))
    sweep_table = Table(
        f"Polar encoding alone vs N (K = N/2), d = {args.sweep_dim}: best of reps, ms",
        ("N", "K", "butterflies", "dense G^T V", "dense/butterflies"),
        tuple(
            (
                r["n"],
                r["k"],
                f"{r['fast_s'] * 1e3:.2f}",
                f"{r['dense_s'] * 1e3:.2f}",
                f"{r['dense_s'] / r['fast_s']:.2f}",
            )
            for r in sweep
        ),
        note="float64, BLAS threads 1; butterflies: log2 N passes (polar_transform), dense: one "
        "GEMM with the (K, N) generator (built beforehand).",
    )
    console.print(rich_table(sweep_table))
    result = {
        "args": {key: str(v) for key, v in vars(args).items()},
        "n": n, "k": k, "iters": iters, "attack": attack, "sweep": sweep,
        "tables": [table.as_dict(), sweep_table.as_dict()], "machine": mach,
        "threads": {"blas": 1, "torch": 1}, "copy_bandwidth_gb_s": bandwidth,
        "old_orthogonal_draw": None if old_draw is None else {"d": d_old, "seconds": old_draw},
    }  # fmt: skip
    console.print(f"copy bandwidth {bandwidth:.1f} GB/s (read + write, 64 MiB, best of 5)")
    if old_draw is not None:
        console.print(f"previous orthogonal draw (d x d QR) at d={d_old}: {old_draw * 1e3:.1f} ms")
    out = Path(args.out)
    atomic_write_text(out / "dfo_encode.json", json.dumps(result, indent=2))
    plot(result, out / "dfo_encode_crossover.png")
    console.print(f"wrote {out / 'dfo_encode.json'} and {out / 'dfo_encode_crossover.png'}")
    return result


if __name__ == "__main__":
    main()
