"""Sketch-and-precondition least squares against LAPACK, LSQR alone and scikit-learn's Ridge.

Problem (stated so it can be regenerated): ``A = Z D V^T`` with rows of ``Z`` (n, d)
multivariate Student-t with ``df = 2`` (heavy tails: a few rows carry large leverage, as in
Ma, Mahoney & Yu 2015 -- coherent, unlike iid Gaussian rows), ``D`` log-spaced from 1 to
``1/kappa`` and ``V`` a random orthogonal d x d matrix (so the ill-conditioning is not a
column scaling that a diagonal preconditioner would undo); ``b = A x0 + noise``, ``x0 ~ N(0, I)``,
noise ``1e-2 ||A x0|| / sqrt(n)`` per entry. The measured ``cond(A)`` (from gelsd's singular
values) is reported. Cost of generating it ``O(n d^2)`` (one GEMM), block by block.

Accuracy criterion, the same for every method: ``err = ||A (x - x*)|| / ||b - A x*||`` with
``x*`` from LAPACK ``gelsd`` (the fitted values' error relative to the optimal residual;
``(||b - A x||^2 - ||b - A x*||^2) / ||b - A x*||^2 = err^2``); a method "meets" the goal at
``err <= 1e-10``. The forward error ``||x - x*|| / ||x*||`` is also shown; at ``kappa ~ 1e5``
no backward-stable solver, gelsd included, determines ``x`` to 1e-10 (perturbation bound
``eps (kappa + kappa^2 ||r|| / (||A|| ||x||))``), so it is not the goal.

Methods: LAPACK through scipy (``lstsq`` with gelsd / gelsy / gelss, a QR solve without forming
Q via ``qr_multiply``, and numpy QR with Q formed) and ``numpy.linalg.lstsq``; the fastest is
the baseline of every ratio. ``scipy.sparse.linalg.lsqr`` alone and scikit-learn ``Ridge``
(``alpha=0``, ``fit_intercept=False``: plain least squares) with the solvers cholesky, svd,
lsqr and sparse_cg; the iterative baselines get an iteration cap equal to the number of their
iterations that fit in the fastest LAPACK time (so "not met" means slower than LAPACK too).
Ours: ``frugalml.sketch.lstsq(A, b, tol=1e-10)`` with its defaults (CG on the preconditioned
normal equations, one fused pass per iteration -- numba kernels when numba is installed, loaded
up front by ``pcg.warm_jit`` --, the mixed-precision factor, a sparse sign sketch with 3
nonzeros per column and m from the library's cost model
:func:`~frugalml.sketch.lstsq.cg_sketch_size`); at the anchor the same with NumPy blocked
passes (kernel gain, same run); CG with the float64 factor; and the LSQR solver as before
(8 nonzeros per column, m = 8d, the setting of the earlier 1.94x). The full set of baselines
runs at the anchor size (100000 x 500); the other sizes run gelsd and the QR solve (the two
fastest LAPACK routes at the anchor in every run so far) to keep the run within its budget.

Roofline: each CG iteration reads A once (8 n d bytes); the iteration floor is
``(iterations + rounds) * 8 n d / bandwidth`` with the bandwidth of a plain ``gemv`` measured
in the same run; the setup (sketch, QR, warm start) is measured inside ``lstsq``.

Usage: python benchmarks/bench_lstsq_regimes.py [--quick] [--threads 1] [--out DIR]
Writes DIR/lstsq_regimes.json and DIR/lstsq_regimes_crossover.png (DIR: benchmarks/results).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import scipy.linalg
import scipy.sparse.linalg as spla
from rich.console import Console

from frugalml._io import atomic_write_text
from frugalml._threads import limit_blas_threads
from frugalml.report.output import pyplot, rich_table, save_png
from frugalml.report.results import Table, machine_info
from frugalml.sketch import lstsq, pcg
from frugalml.sketch.lstsq import CG_NNZ_PER_COL, cg_sketch_size
from frugalml.sketch.sparse import SparseSignSketch

RESULTS = Path(__file__).resolve().parent / "results"
NAME = "lstsq_regimes"
GOAL_ERR = 1e-10
GOAL_RATIO = 3.0

FULL_SIZES = (
    (5_000, 500), (10_000, 500), (25_000, 500), (50_000, 500), (100_000, 500), (1_000_000, 500),
    (100_000, 1000), (100_000, 2000),
)  # fmt: skip
QUICK_SIZES = ((5_000, 50), (20_000, 100), (40_000, 100))
#: LAPACK runs shorter than this are repeated (best of --repeats); longer ones run once
REPEAT_BELOW_S = 5.0
#: the size that runs every baseline (the others: gelsd and the QR solve)
ANCHOR, QUICK_ANCHOR = (100_000, 500), (40_000, 100)


def _size(text: str) -> tuple[int, int]:
    try:
        n, d = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise SystemExit(f"size {text!r} must look like 100000x500 (n x d)") from None
    return n, d


def coherent_problem(n: int, d: int, kappa: float, rng: np.random.Generator, df: float = 2.0,
                     noise: float = 1e-2) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    """``A = Z D V^T`` (module docstring), written block by block into one (n, d) array."""
    v, _ = np.linalg.qr(rng.standard_normal((d, d)))
    w = (v * np.logspace(0, -np.log10(kappa), d)).T  # D V^T
    a = np.empty((n, d))
    step = 8192
    for i in range(0, n, step):
        z = rng.standard_normal((min(step, n - i), d))
        z /= np.sqrt(rng.chisquare(df, size=z.shape[0]) / df)[:, None]
        np.matmul(z, w, out=a[i : i + z.shape[0]])
    ax = a @ rng.standard_normal(d)
    b = ax + noise * np.linalg.norm(ax) / np.sqrt(n) * rng.standard_normal(n)
    return a, b


#: nonzeros per column of the sparse sign sketch in the CG runs (the library default for
#: solver="cg"; measured choice documented at frugalml.sketch.lstsq.CG_NNZ_PER_COL)
NNZ_PER_COL = CG_NNZ_PER_COL
#: m of the CG runs: the library's cost model (frugalml.sketch.lstsq.cg_sketch_size)
sketch_size = cg_sketch_size


def timed(fn, repeats: int) -> tuple[float, Any]:
    best, out = np.inf, None
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return best, out


def bandwidth(a: np.ndarray) -> dict[str, float]:
    """Measured read bandwidth of one ``gemv`` (A v) and of one fused blocked A^T (A v)."""
    from frugalml.sketch.pcg import gram_matvec

    v = np.ones(a.shape[1])
    t_gemv, _ = timed(lambda: a @ v, 3)
    t_fused, _ = timed(lambda: gram_matvec(a, v), 3)
    t_two, _ = timed(lambda: a.T @ (a @ v), 3)
    return {"gemv_s": t_gemv, "gemv_GBps": a.nbytes / t_gemv / 1e9, "fused_pass_s": t_fused,
            "two_gemv_s": t_two}  # fmt: skip


def lapack_methods(a, b, full: bool, singular: dict[str, np.ndarray]) -> dict[str, Any]:
    """The LAPACK routes; gelsd's singular values are kept in ``singular["sv"]`` (for cond(A)
    without a second gelsd run, which cost as much as the timed one: ~50 s at 1000000 x 500)."""

    def drv(name):
        def run():
            x, _, _, sv = scipy.linalg.lstsq(a, b, lapack_driver=name, check_finite=False)
            if name == "gelsd":
                singular["sv"] = sv
            return x

        return run

    def qr_mult():  # Householder QR; Q^T b applied from the reflectors, Q never formed
        qtb, r = scipy.linalg.qr_multiply(a, b[None, :], mode="right")
        return scipy.linalg.solve_triangular(r, qtb.ravel(), check_finite=False)

    def qr_numpy():
        q, r = np.linalg.qr(a)
        return scipy.linalg.solve_triangular(r, q.T @ b, check_finite=False)

    out = {"scipy gelsd": drv("gelsd"), "scipy QR (qr_multiply)": qr_mult}
    if full:
        out.update({"scipy gelsy": drv("gelsy"), "scipy gelss": drv("gelss"),
                    "numpy lstsq (gelsd)": lambda: np.linalg.lstsq(a, b, rcond=None)[0],
                    "numpy QR + solve_triangular": qr_numpy})  # fmt: skip
    return out


def baseline_iteratives(a, b, cap: int) -> dict[str, Any]:
    from sklearn.linear_model import Ridge

    def ridge(solver, **kw):
        def fit():
            model = Ridge(alpha=0.0, fit_intercept=False, solver=solver, **kw).fit(a, b)
            return model.coef_

        return fit

    return {
        "scipy lsqr alone (no preconditioner)":
            lambda: spla.lsqr(a, b, atol=GOAL_ERR, btol=GOAL_ERR, iter_lim=cap)[0],
        "sklearn Ridge cholesky": ridge("cholesky"),
        "sklearn Ridge svd": ridge("svd"),
        "sklearn Ridge lsqr": ridge("lsqr", tol=GOAL_ERR, max_iter=cap),
        "sklearn Ridge sparse_cg": ridge("sparse_cg", tol=GOAL_ERR, max_iter=cap),
    }  # fmt: skip


def ours(a, b, n, d, full: bool) -> dict[str, Any]:
    m = sketch_size(n, d)

    def run(solver, precision, nnz):
        sk = SparseSignSketch(m if solver == "cg" else min(n, 8 * d), nnz_per_col=nnz)
        return lambda: lstsq(a, b, method="sketch-and-precondition", sketch=sk, solver=solver,
                             precision=precision, tol=GOAL_ERR, rng=3)  # fmt: skip

    def numpy_passes():  # the same solve with the NumPy blocked passes instead of numba's
        keep, pcg.JIT_MIN_ENTRIES = pcg.JIT_MIN_ENTRIES, np.inf
        try:
            return lstsq(a, b, tol=GOAL_ERR, rng=3)
        finally:
            pcg.JIT_MIN_ENTRIES = keep

    # the library defaults for dense A: cg, mixed factor, sparse sign (3 per column, m by n/d)
    out = {"ours: cg, mixed-precision factor": lambda: lstsq(a, b, tol=GOAL_ERR, rng=3)}
    if full and pcg.jit_available():
        out["ours: cg, mixed, NumPy blocked passes"] = numpy_passes
    out["ours: cg, float64 factor"] = run("cg", "double", NNZ_PER_COL)
    out["ours: lsqr (previous solver)"] = run("lsqr", "double", 8)
    return out


def solve_size(n, d, kappa, full_baselines, repeats, gen, say) -> dict[str, Any]:
    a, b = coherent_problem(n, d, kappa, gen)
    bw = bandwidth(a)
    say(f"n={n} d={d}: A is {a.nbytes / 1e9:.2f} GB, gemv {bw['gemv_GBps']:.1f} GB/s")
    runs: dict[str, dict[str, Any]] = {}
    x_ref, sv = None, None
    singular: dict[str, np.ndarray] = {}
    lap = lapack_methods(a, b, full_baselines, singular)
    for label, fn in lap.items():
        t, x = timed(fn, 1)
        if label in ("scipy gelsd", "scipy QR (qr_multiply)") and t < REPEAT_BELOW_S:
            t = min(t, timed(fn, repeats - 1)[0]) if repeats > 1 else t
        runs[label] = {"seconds": t, "x": x, "info": "", "kind": "lapack"}
        say(f"  {label}: {t:.3f}s")
    sv = singular["sv"]
    x_ref = runs["scipy gelsd"]["x"]
    fastest_label = min((k for k in runs), key=lambda k: runs[k]["seconds"])
    t_fast = runs[fastest_label]["seconds"]
    cap = max(10, int(t_fast / bw["two_gemv_s"]))
    if full_baselines:
        for label, fn in baseline_iteratives(a, b, cap).items():
            t, x = timed(fn, 1)
            capped = "lsqr" in label or "sparse_cg" in label
            runs[label] = {"seconds": t, "x": x, "kind": "baseline",
                           "info": f"cap {cap} it" if capped else ""}  # fmt: skip
            say(f"  {label}: {t:.3f}s")
    for label, fn in ours(a, b, n, d, full_baselines).items():
        t, res = timed(fn, 1)
        if t < REPEAT_BELOW_S and repeats > 1:
            t = min(t, timed(fn, repeats - 1)[0])
        runs[label] = {"seconds": t, "x": res.x, "kind": "ours",
                       "info": f"m={res.sketch_size}, {res.iterations} it, {res.precision} "
                               "factor" + ("" if res.converged else ", NOT converged"),
                       "iterations": res.iterations, "setup_seconds": res.setup_seconds,
                       "history_len": len(res.history)}  # fmt: skip
        say(f"  {label}: {t:.3f}s ({runs[label]['info']})")
    r_ref = b - a @ x_ref
    nr, nx = float(np.linalg.norm(r_ref)), float(np.linalg.norm(x_ref))
    for rec in runs.values():
        x = rec.pop("x")
        rec["err"] = float(np.linalg.norm(a @ (x - x_ref)) / nr)
        rec["forward_err"] = float(np.linalg.norm(x - x_ref) / nx)
        rec["ratio"] = t_fast / rec["seconds"]
    # roofline of the fastest of ours: passes over A at the measured gemv bandwidth
    best_ours = min((k for k in runs if runs[k]["kind"] == "ours" and "cg" in k),
                    key=lambda k: runs[k]["seconds"])  # fmt: skip
    rec = runs[best_ours]
    # history holds one entry per CG iteration plus one per true-gradient pass (rounds)
    passes = rec["history_len"]
    floor = passes * a.nbytes / (bw["gemv_GBps"] * 1e9)
    roof = {"method": best_ours, "passes": passes, "bytes_GB": passes * a.nbytes / 1e9,
            "floor_s": floor, "floor_plus_setup_s": floor + rec["setup_seconds"],
            "measured_s": rec["seconds"], "setup_s": rec["setup_seconds"],
            "max_ratio_at_floor": t_fast / floor}  # fmt: skip
    return {"n": n, "d": d, "kappa": float(sv[0] / sv[-1]), "bytes_A": a.nbytes,
            "bandwidth": bw, "fastest_lapack": fastest_label, "fastest_lapack_s": t_fast,
            "iter_cap": cap, "runs": runs, "roofline": roof}  # fmt: skip


def plot(results: list[dict[str, Any]], path: Path) -> None:
    """Seconds and ratio against the size of A (GB, float64); one colour per method, one
    marker per d (lines join the sizes of one d)."""
    plt = pyplot()

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4.2))
    markers = dict(zip(sorted({r["d"] for r in results}), "osD^v", strict=False))
    series = (("fastest LAPACK", "k", "--"), ("ours: cg, mixed-precision factor", "C0", "-"),
              ("ours: lsqr (previous solver)", "C1", ":"))  # fmt: skip
    for d, mk in markers.items():
        rs = sorted((r for r in results if r["d"] == d), key=lambda r: r["n"])
        gb = [r["bytes_A"] / 1e9 for r in rs]
        for label, color, ls in series:
            secs = [r["fastest_lapack_s"] if label == "fastest LAPACK"
                    else r["runs"][label]["seconds"] for r in rs]  # fmt: skip
            ax1.plot(gb, secs, ls, color=color, marker=mk, ms=5,
                     label=f"{label.removeprefix('ours: ')}, d={d}")  # fmt: skip
        ax2.plot(gb, [r["runs"]["ours: cg, mixed-precision factor"]["ratio"] for r in rs], "-",
                 color="C0", marker=mk, ms=5, label=f"cg, mixed factor, d={d}")  # fmt: skip
        ax2.plot(gb, [r["runs"]["ours: lsqr (previous solver)"]["ratio"] for r in rs], ":",
                 color="C1", marker=mk, ms=5, label=f"lsqr (previous), d={d}")  # fmt: skip
    ax2.axhline(GOAL_RATIO, color="r", lw=0.8, label="goal 3x")
    ax2.axhline(1.0, color="k", lw=0.8, label="crossover (1x)")
    for ax in (ax1, ax2):
        ax.set_xscale("log")
        ax.set_xlabel("size of A (GB, float64: 8 n d bytes)")
        ax.legend(fontsize=6.5)
    ax1.set_yscale("log")
    ax1.set_ylabel("seconds to err <= 1e-10")
    ax2.set_ylabel("fastest LAPACK time / this time")
    fig.suptitle("Least squares, coherent rows, cond(A) ~ 1e5, 1 BLAS thread, same run")
    fig.tight_layout()
    save_png(fig, path)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes (< 30 s)")
    parser.add_argument("--sizes", nargs="+", default=None, metavar="NxD",
                        help="sizes to run, e.g. 100000x500 (default: by --quick)")  # fmt: skip
    parser.add_argument("--anchor", default=None, metavar="NxD",
                        help="the size that runs every baseline (default 100000x500)")  # fmt: skip
    parser.add_argument("--kappa", type=float, default=1e5)
    parser.add_argument("--threads", type=int, default=1, help="BLAS threads for every method")
    parser.add_argument("--repeats", type=int, default=2, help="best of R for ours and gelsd/QR")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    if args.sizes is None:
        sizes = QUICK_SIZES if args.quick else FULL_SIZES
    else:
        sizes = tuple(_size(s) for s in args.sizes)
    limit_blas_threads(args.threads)
    console = Console(width=160)
    # import numba and compile (or load the cached) kernels outside every timing: the
    # timings are those of a process that has loaded them (0.3 s once per process, measured)
    pcg.warm_jit()
    gen = np.random.default_rng(args.seed)
    anchor = _size(args.anchor) if args.anchor else (QUICK_ANCHOR if args.quick else ANCHOR)
    if anchor not in sizes:
        anchor = sizes[0]
    t_start = time.perf_counter()
    results = []
    for n, d in sizes:
        results.append(solve_size(n, d, args.kappa, (n, d) == anchor, args.repeats, gen,
                                  console.print))  # fmt: skip
    rows, roof_rows = [], []
    for r in results:
        for label, rec in sorted(r["runs"].items(), key=lambda kv: kv[1]["seconds"]):
            mark = " (baseline)" if label == r["fastest_lapack"] else ""
            rows.append((f"{r['n']}x{r['d']}", f"{r['kappa']:.0e}", label + mark,
                         f"{rec['seconds']:.3g}", f"{rec['ratio']:.2f}", f"{rec['err']:.1e}",
                         f"{rec['forward_err']:.1e}",
                         "yes" if rec["err"] <= GOAL_ERR else "no", rec["info"]))  # fmt: skip
        ro = r["roofline"]
        vals = (ro["bytes_GB"], r["bandwidth"]["gemv_GBps"], ro["floor_s"], ro["setup_s"],
                ro["measured_s"], r["fastest_lapack_s"], ro["max_ratio_at_floor"],
                r["fastest_lapack_s"] / ro["floor_plus_setup_s"])  # fmt: skip
        roof_rows.append((f"{r['n']}x{r['d']}", ro["passes"], *(f"{v:.3g}" for v in vals)))
    kernels = "numba" if pcg.jit_available() else "NumPy blocked"
    note = (f"{args.threads} BLAS thread(s) for every method (threadpoolctl); ratio = fastest "
            f"LAPACK time / this time, same run; err = ||A(x - x*)|| / ||b - A x*||, x* = "
            f"gelsd; goal err <= {GOAL_ERR:g} and ratio >= {GOAL_RATIO:g}. Ours and "
            f"gelsd/QR best of {args.repeats} when under {REPEAT_BELOW_S:g} s, other "
            "baselines one run. Iterative baselines capped at the iterations that fit in "
            "the fastest LAPACK time. Ours includes input validation (A's finiteness is "
            "checked on S A, no pass of its own); LAPACK runs with check_finite=False. "
            f"Fused passes: {kernels} kernels.")  # fmt: skip
    table = Table(
        "Least squares to err <= 1e-10: coherent rows (multivariate t, df=2), cond ~ kappa",
        ("n x d", "cond", "method", "s", "LAPACK/this", "err", "fwd err", "<=1e-10", "info"),
        tuple(rows), note=note,
    )  # fmt: skip
    roof = Table(
        "Roofline of ours (CG, fastest variant): passes over A at the measured gemv bandwidth",
        ("n x d", "passes", "GB read", "gemv GB/s", "floor s", "setup s", "ours s",
         "LAPACK s", "LAPACK/floor", "LAPACK/(floor+setup)"),
        tuple(roof_rows),
        note="passes = CG iterations + true-gradient passes (fused A^T A y, one read of A "
        "each); floor = passes x 8nd bytes / gemv bandwidth; setup = sketch + QR + warm start, "
        "measured inside lstsq. LAPACK/(floor+setup) is the best ratio this algorithm can "
        "reach here with memory-bound passes: below 3 means 3x is out of reach at this size.",
    )  # fmt: skip
    console.print(rich_table(table, width=console.width))
    console.print(rich_table(roof, width=console.width))
    args.out.mkdir(parents=True, exist_ok=True)
    png = args.out / f"{NAME}_crossover.png"
    plot(results, png)
    payload = {"name": NAME, "args": {k: str(v) for k, v in vars(args).items()},
               "seconds": time.perf_counter() - t_start, "machine": machine_info(),
               "threads": args.threads, "results": results,
               "tables": [table.as_dict(), roof.as_dict()], "figures": [png.name]}  # fmt: skip
    atomic_write_text(args.out / f"{NAME}.json", json.dumps(payload, indent=2, default=float))
    console.print(f"wrote {args.out / (NAME + '.json')} and {png} "
                  f"({payload['seconds']:.0f} s)")  # fmt: skip
    return payload


if __name__ == "__main__":
    main()
