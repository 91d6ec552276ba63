"""Newton sketch where Hessians are expensive: dense d sweep and a sparse bag-of-words problem.

L2-regularised logistic regression ``f(x) = sum_i log(1 + exp(-y_i a_i^T x)) + lam/2 ||x||^2``.
Time to ``1e-6`` relative suboptimality ``(f - f*)/|f*|`` of the debiased distributed Newton
sketch (:func:`frugalml.sketch.newton.distributed_newton`, uniform row sampling: each worker
forms ``S D^1/2 A`` from its ``m`` sampled rows only, Cholesky or Woodbury solve) against, in
the same run on the same objective:

* exact Newton (same Armijo line search; ``A^T D A`` formed every iteration, ``O(n d^2)``) on
  the dense problems; on the sparse problem the exact-Newton baseline is **Newton-CG**
  (scipy ``minimize(method="Newton-CG")`` with exact Hessian-vector products, ``O(nnz)`` each),
  because a dense ``d x d`` Hessian is impractical there;
* scipy L-BFGS-B (what scikit-learn's ``lbfgs`` calls) with a per-iteration callback;
* scikit-learn ``LogisticRegression`` (``C = 1/lam``, no intercept): ``lbfgs`` and
  ``newton-cholesky`` (dense) / ``newton-cg`` (sparse). sklearn exposes no per-iteration trace,
  so its time is the total of one run, counted as reaching ``1e-6`` only when its final
  objective does.

Data: dense ``A = G diag(s) + 0.3 F C`` with ``s`` decaying from 1 to 1e-2 (condition number
of the Gram ~1e4) and a rank-8 common factor (correlated features), labels from a logistic
model; ``lam = lam_over_n * n`` (sklearn's ``C = 1/lam``). Sparse: a bag-of-words CSR matrix,
word ids Zipf(1)-distributed over ``d`` words, ``nnz_row`` tokens per document, ``log(1+count)``
weights, rows L2-normalised; labels from a sparse logistic model. ``f*``: the lowest objective
any method reached (exact Newton or Newton-CG run to gradient tolerance 1e-10).

Threads: every baseline runs with ``--threads`` BLAS threads (default 2; threadpoolctl); the
sketch's ``q`` worker tasks run ``min(q, threads)`` at a time on a local thread executor (the
data is placed once with it) with one BLAS thread each, the master's passes too, so no method
uses more cores than another. The
break-even ``d`` is the smallest ``d`` of the sweep from which the sketch is faster than a
baseline at every larger ``d`` of the sweep.

Usage: python benchmarks/bench_newton_regimes.py [--quick] [--out DIR]
Writes <out>/newton_regimes.json and <out>/newton_regimes_crossover.png (out defaults to
benchmarks/results).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import scipy.optimize
import scipy.sparse as sp
from scipy.special import expit
from threadpoolctl import threadpool_limits

from frugalml._io import atomic_write_text
from frugalml._threads import limit_blas_threads
from frugalml.report.output import pyplot, rich_table, save_png
from frugalml.report.results import Table, machine_info
from frugalml.runtime import make_executor
from frugalml.sketch.newton import distributed_newton, hessian_sqrt
from frugalml.sketch.sketched_hessian import SketchedHessian

RESULTS = Path(__file__).resolve().parent / "results"
LEVEL = 1e-6

Trace = list[tuple[float, float]]  # (seconds, objective)


def dense_problem(n: int, d: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Ill-conditioned, correlated dense features and logistic labels."""
    gen = np.random.default_rng(seed)
    s = np.logspace(0, -2, d)
    a = gen.standard_normal((n, d))
    a *= s
    a += 0.3 * (gen.standard_normal((n, 8)) @ (gen.standard_normal((8, d)) * s))
    w = gen.standard_normal(d) / (np.sqrt(d) * s**0.5)
    y = np.where(gen.random(n) < expit(a @ w), 1.0, -1.0)
    return a, y


def bow_problem(n: int, d: int, nnz_row: int, seed: int) -> tuple[sp.csr_matrix, np.ndarray]:
    """Bag-of-words CSR (n, d): Zipf word frequencies, ``nnz_row`` tokens per document."""
    gen = np.random.default_rng(seed)
    p = 1.0 / np.arange(1, d + 1)
    cdf = np.cumsum(p / p.sum())
    words = np.minimum(np.searchsorted(cdf, gen.random(n * nnz_row)), d - 1)
    rows = np.repeat(np.arange(n), nnz_row)
    a = sp.csr_matrix((np.ones(n * nnz_row), (rows, words)), shape=(n, d))
    a.sum_duplicates()
    a.data = np.log1p(a.data)
    norms = np.sqrt(np.asarray(a.multiply(a).sum(axis=1)).ravel())
    a = sp.csr_matrix(sp.diags(1.0 / np.maximum(norms, 1e-12)) @ a)
    w = np.where(gen.random(d) < 0.1, 4.0 * gen.standard_normal(d), 0.0)
    y = np.where(gen.random(n) < expit(a @ w), 1.0, -1.0)
    return a, y


def objective(a: Any, y: np.ndarray, lam: float) -> Callable[[np.ndarray], tuple[float, Any]]:
    def fun(x: np.ndarray) -> tuple[float, np.ndarray]:
        z = a @ x
        f = float(np.sum(np.logaddexp(0.0, -y * z)) + 0.5 * lam * x @ x)
        return f, a.T @ (-y * expit(-y * z)) + lam * x

    return fun


class _Stop(Exception):
    """Raised by the callback to end a run after its time cap."""


def run_newton(a, y, lam, cap: float = float("inf"), **kw) -> tuple[Trace, float, int]:
    """A :func:`distributed_newton` run traced by its callback: (seconds since the call,
    set-up included, objective) per iteration; stopped after ``cap`` seconds."""
    d = a.shape[1]
    trace: Trace = [(0.0, objective(a, y, lam)(np.zeros(d))[0])]
    t0 = time.perf_counter()

    def record(its: int, x: np.ndarray, f: float) -> None:
        trace.append((time.perf_counter() - t0, float(f)))
        if trace[-1][0] > cap:
            raise _Stop

    with contextlib.suppress(_Stop):
        distributed_newton(a, y, loss="logistic", lam=lam, tol=1e-10, on_step=record, **kw)
    return trace, time.perf_counter() - t0, len(trace) - 1


def run_scipy(fun, d: int, method: str, cap: float, hessp=None) -> tuple[Trace, float, int]:
    """scipy ``minimize`` with a per-iteration (time, f) callback, stopped after ``cap`` s."""
    trace: Trace = []
    t0 = time.perf_counter()

    def record(intermediate_result) -> None:  # scipy passes an OptimizeResult by this name
        trace.append((time.perf_counter() - t0, float(intermediate_result.fun)))
        if trace[-1][0] > cap:
            raise StopIteration

    opts = ({"maxiter": 100000, "gtol": 1e-10, "ftol": 1e-15, "maxcor": 10}
            if method == "L-BFGS-B" else {"maxiter": 200, "xtol": 1e-10})  # fmt: skip
    out = scipy.optimize.minimize(fun, np.zeros(d), jac=True, method=method, hessp=hessp,
                                  options=opts, callback=record)  # fmt: skip
    total = time.perf_counter() - t0
    return [(0.0, fun(np.zeros(d))[0]), *trace], total, int(out.nit)


def run_sklearn(a, y, lam, solver: str, max_iter: int, tol: float) -> tuple[np.ndarray, float, int]:
    import warnings

    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression

    t0 = time.perf_counter()
    clf = LogisticRegression(C=1.0 / lam, fit_intercept=False, solver=solver, tol=tol,
                             max_iter=max_iter)  # fmt: skip
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        clf.fit(a, y)
    return clf.coef_.ravel(), time.perf_counter() - t0, int(clf.n_iter_[0])


def first_time(trace: Trace, f_star: float) -> float | None:
    return next((t for t, f in trace if (f - f_star) / abs(f_star) <= LEVEL), None)


def sampled_dlam(a: Any, lam: float, rows: int, seed: int) -> float:
    """d_lambda of the Hessian at x = 0 (``B = A / 2``) from ``rows`` uniformly sampled rows."""
    gen = np.random.default_rng(seed)
    n = a.shape[0]
    idx = np.sort(gen.choice(n, size=min(rows, n), replace=False))
    b = hessian_sqrt(a[idx], np.zeros(a.shape[1]), "logistic") * np.sqrt(n / idx.size)
    return SketchedHessian(b, lam).effective_dimension(rng=seed)


def compare(
    a, y, lam: float, *, sparse: bool, q: int, m: int, cap: float, threads: int = 1
) -> dict[str, Any]:
    """Every method on one problem; returns traces, totals, iterations and f*."""
    n, d = a.shape
    fun = objective(a, y, lam)
    runs: dict[str, dict[str, Any]] = {}
    # the q workers share the cores the baselines' BLAS threads use: min(q, threads) of them
    # in parallel, one BLAS thread each (the master's passes too)
    workers = max(1, min(q, threads))
    with make_executor("local-thread", workers=workers) as ex, threadpool_limits(1):
        tr, tot, its = run_newton(a, y, lam, cap, averaging="debiased", sketch="uniform", q=q,
                                  m=m, executor=ex, max_iter=200, rng=3)  # fmt: skip
    runs["Newton sketch (debiased)"] = {"trace": tr, "total": tot, "iterations": its}
    if sparse:

        def hessp(x: np.ndarray, v: np.ndarray) -> np.ndarray:
            p = expit(a @ x)
            return a.T @ (p * (1.0 - p) * (a @ v)) + lam * v

        tr, tot, its = run_scipy(fun, d, "Newton-CG", cap, hessp=hessp)
        runs["Newton-CG (exact Hessian-vector)"] = {"trace": tr, "total": tot, "iterations": its}
    else:
        tr, tot, its = run_newton(a, y, lam, cap, averaging="exact", max_iter=100)
        runs["exact Newton"] = {"trace": tr, "total": tot, "iterations": its}
    tr, tot, its = run_scipy(fun, d, "L-BFGS-B", cap)
    runs["L-BFGS-B (scipy)"] = {"trace": tr, "total": tot, "iterations": its}
    f_star = min(f for r in runs.values() for _, f in r["trace"])
    lb_its = next((i for i, (_, f) in enumerate(runs["L-BFGS-B (scipy)"]["trace"])
                   if (f - f_star) / abs(f_star) <= LEVEL), its)  # fmt: skip
    solvers = [("lbfgs", int(1.2 * lb_its) + 10, 1e-10)]
    solvers.append(("newton-cg", 100, 1e-8) if sparse else ("newton-cholesky", 100, 1e-8))
    for solver, max_iter, tol in solvers:
        x, tot, its = run_sklearn(a, y, lam, solver, max_iter, tol)
        f = fun(x)[0]
        f_star = min(f_star, f)
        runs[f"sklearn {solver}"] = {"final": f, "total": tot, "iterations": its,
                                     "max_iter": max_iter}  # fmt: skip
    for r in runs.values():
        if "trace" in r:
            r["to_level"] = first_time(r["trace"], f_star)
            r["final_gap"] = (r["trace"][-1][1] - f_star) / abs(f_star)
        else:
            r["final_gap"] = (r["final"] - f_star) / abs(f_star)
            r["to_level"] = r["total"] if r["final_gap"] <= LEVEL else None
    return {"n": n, "d": d, "lam": lam, "q": q, "m": m, "f_star": f_star, "runs": runs,
            "nnz": int(a.nnz) if sparse else n * d}  # fmt: skip


def fmt(t: float | None) -> str:
    return "not reached" if t is None else f"{t:.2f}"


def ratio(base: float | None, base_total: float, sketch: float | None) -> str:
    """Baseline time over sketch time; a lower bound ``> total / sketch`` when the baseline
    never reached the level (it ran ``base_total`` seconds without)."""
    if sketch is None:
        return "sketch n/r"
    if base is None:
        return f"> {base_total / sketch:.2f}x"
    return f"{base / sketch:.2f}x"


def table_rows(res: dict[str, Any], label: str) -> list[tuple[Any, ...]]:
    sk = res["runs"]["Newton sketch (debiased)"]["to_level"]
    rows = []
    for name, r in res["runs"].items():
        vs = "1" if name.startswith("Newton sketch") else ratio(r["to_level"], r["total"], sk)
        rows.append((label, res["d"], name, r["iterations"], fmt(r["to_level"]),
                     f"{r['total']:.2f}", f"{r['final_gap']:.1e}", vs))  # fmt: skip
    return rows


def break_even(sweep: list[dict[str, Any]]) -> dict[str, int | None]:
    """Per baseline, the smallest d from which the sketch is faster at every larger d."""
    names = [k for k in sweep[0]["runs"] if not k.startswith("Newton sketch")]
    out: dict[str, int | None] = {}
    for name in names:
        wins = []
        for res in sweep:
            sk = res["runs"]["Newton sketch (debiased)"]["to_level"]
            base = res["runs"][name]["to_level"]
            wins.append(sk is not None and (base is None or sk < base))
        out[name] = None
        for i in range(len(sweep)):
            if all(wins[i:]):
                out[name] = sweep[i]["d"]
                break
    return out


def plot(sweep: list[dict[str, Any]], path: Path, cap: float, threads: int) -> None:
    plt = pyplot()

    fig, ax = plt.subplots(figsize=(7, 4.5))
    ds = [r["d"] for r in sweep]
    for name in sweep[0]["runs"]:
        ts = [r["runs"][name]["to_level"] for r in sweep]
        ax.plot(ds, [cap * 1.3 if t is None else t for t in ts], marker="o", label=name)
        for dd, t in zip(ds, ts, strict=True):
            if t is None:
                ax.annotate("n/r", (dd, cap * 1.3), fontsize=7)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel(f"features d (n = {sweep[0]['n']})")
    ax.set_ylabel("seconds to 1e-6 relative suboptimality")
    ax.set_title(f"Dense logistic: Newton sketch vs baselines ({threads} BLAS threads each)")
    ax.legend(fontsize=7)
    fig.tight_layout()
    save_png(fig, path)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes (<= 30 s)")
    parser.add_argument("--n", type=int, default=100_000, help="dense rows")
    parser.add_argument("--ds", type=int, nargs="+", default=[250, 500, 1000, 2000])
    parser.add_argument("--lam-over-n", type=float, default=1e-5, help="dense lam / n")
    parser.add_argument("--q", type=int, default=2, help="sketch workers")
    parser.add_argument("--m-factor", type=float, default=4.0, help="dense m = factor * d")
    parser.add_argument("--sparse-n", type=int, default=100_000)
    parser.add_argument("--sparse-d", type=int, default=10_000)
    parser.add_argument("--nnz-row", type=int, default=50, help="tokens per document")
    parser.add_argument("--sparse-lam", type=float, default=1.0)
    parser.add_argument("--cap", type=float, default=30.0, help="seconds per iterative method")
    parser.add_argument("--threads", type=int, default=2, help="BLAS threads, every method")
    parser.add_argument("--no-sparse", action="store_true", help="dense sweep only")
    parser.add_argument("--name", default="newton_regimes", help="result file stem")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    if args.quick:
        args.n, args.ds, args.sparse_n, args.sparse_d, args.nnz_row, args.cap = (
            3000, [20, 60], 3000, 400, 20, 5.0)  # fmt: skip
    limit_blas_threads(args.threads)
    from rich.console import Console

    console = Console(width=160)
    sweep = []
    for d in args.ds:
        a, y = dense_problem(args.n, d, seed=d)
        lam = args.lam_over_n * args.n
        res = compare(a, y, lam, sparse=False, q=args.q, m=int(args.m_factor * d), cap=args.cap,
                      threads=args.threads)  # fmt: skip
        sweep.append(res)
        console.print(f"dense d={d}: " + ", ".join(
            f"{k}: {fmt(v['to_level'])}" for k, v in res["runs"].items()))  # fmt: skip
        del a, y
    sparse_res: dict[str, Any] | None = None
    dlam0, m_sparse = float("nan"), 0
    if not args.no_sparse:
        a, y = bow_problem(args.sparse_n, args.sparse_d, args.nnz_row, seed=1)
        dlam0 = sampled_dlam(a, args.sparse_lam, min(4096, 4 * args.sparse_d), seed=2)
        m_sparse = int(4 * dlam0 + 10)
        sparse_res = compare(a, y, args.sparse_lam, sparse=True, q=args.q, m=m_sparse,
                             cap=args.cap, threads=args.threads)  # fmt: skip
        sparse_res["d_lambda_at_0"] = dlam0
    rows = [r for res in sweep for r in table_rows(res, f"dense n={res['n']}")]
    if sparse_res is not None:
        rows += table_rows(sparse_res, f"sparse n={sparse_res['n']} nnz={sparse_res['nnz']}")
    be = break_even(sweep)
    table = Table(
        f"Logistic regression: time to {LEVEL:g} relative suboptimality (same run, same objective)",
        (
            "problem",
            "d",
            "method",
            "iterations",
            "s to 1e-6",
            "total s",
            "final gap",
            "baseline / sketch",
        ),
        tuple(rows),
        note=(
            f"{args.threads} BLAS thread(s) for every baseline; sketch: q={args.q} uniform-"
            f"sampling workers, {min(args.q, args.threads)} at a time on a local thread executor, "
            f"one BLAS thread each (A placed once), dense "
            f"m={args.m_factor:g} d, sparse m={m_sparse} (4 d_lambda(x=0) + 10, d_lambda~"
            f"{dlam0:.0f}); dense lam={args.lam_over_n:g} n, sparse lam={args.sparse_lam:g}. "
            f"Every iterative method stopped after {args.cap:g} s. sklearn: one run, time = its "
            f"total, counted only if its final gap <= {LEVEL:g}. Sparse exact baseline: "
            "Newton-CG. Break-even d (sketch faster from this d on): "
            + ", ".join(f"{k}: {v if v is not None else 'none in sweep'}" for k, v in be.items())
        ),
    )
    console.print(rich_table(table))
    args.out.mkdir(parents=True, exist_ok=True)
    png = args.out / f"{args.name}_crossover.png"
    plot(sweep, png, args.cap, args.threads)
    payload = {
        "name": args.name,
        "args": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        "threads": args.threads,
        "dense": sweep,
        "sparse": sparse_res,
        "break_even_d": be,
        "table": table.as_dict(),
        "machine": machine_info(),
    }
    path = atomic_write_text(args.out / f"{args.name}.json", json.dumps(payload, indent=1))
    console.print(f"wrote {path} and {png}")
    return payload


if __name__ == "__main__":
    main()
