"""Second-order benchmark: debiased averaging of sketched Newton steps.

Sections (same run):
1. Error of the averaged inverse-Hessian estimate ``||dbar_q - H^{-1} g||_H / ||H^{-1} g||_H``
   against the number of workers q for naive averaging, scaled regularisation (lam', mu) and the
   surrogate (determinantal) sketch, with Gaussian, SRHT, uniform and leverage sketches — the
   papers' central figure.
2. Distributed Newton: gradient norm and suboptimality per iteration and wall time, q in
   {4, 16, 64}, debiased vs naive vs exact Newton, and scikit-learn's lbfgs / Ridge
   time-to-accuracy, on synthetic data and scikit-learn's digits / breast cancer.
3. Least squares: measured per-iteration contraction vs the exact Gaussian rate.
4. Heterogeneous workers: mixed sketch sizes, size / uniform / determinantal weights.
5. The debiased Newton sketch on real executors and, for large q, on a simulated clock.

Usage: python benchmarks/bench_second_order.py [--quick | --tiny] [--out DIR]
Writes DIR/second-order.json and second-order_*.png (DIR: benchmarks/results) and prints the
tables. Report area ``sketch-newton`` (``second-order`` in frugalml 0.1).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
import scipy.linalg

from frugalml.progress import Progress
from frugalml.report.output import optional_figures, pyplot
from frugalml.report.results import NO_GOAL, BenchResult, Table
from frugalml.report.script import bench_main
from frugalml.runtime import make_executor
from frugalml.sketch import make_sketch
from frugalml.sketch.datasets import load_real, synthetic_regression
from frugalml.sketch.debias import correction, gaussian_newton_rate
from frugalml.sketch.effective import effective_dimension
from frugalml.sketch.newton import distributed_newton, newton_task
from frugalml.sketch.surrogate import SurrogateSketch

__all__ = ["REPORT_AREA", "REPORT_TITLE", "main", "run"]

REPORT_AREA = "sketch-newton"
REPORT_TITLE = "Second-order: debiased distributed Newton sketch"
RESULTS = Path(__file__).resolve().parent / "results"


# ---------------------------------------------------------------- executors
def _executors(quick: bool, gen, tiny: bool = False) -> list[tuple]:
    """Debiased Newton on real executors (wall clock) and, for large q, on a simulated clock
    (every task runs for real; completion times from a shifted-exponential model; the master
    averages the first k of q)."""
    from frugalml.runtime import FaultInjector
    from frugalml.runtime.stragglers import ShiftedExponential

    n, d = (500, 10) if tiny else (2000, 20) if quick else (20000, 50)
    a = gen.standard_normal((n, d)) * np.logspace(0, -1, d)
    y = np.where(a @ gen.standard_normal(d) + 0.5 * gen.standard_normal(n) > 0, 1.0, -1.0)
    lam, m = 1.0, 8 * d
    exact = distributed_newton(a, y, loss="logistic", lam=lam, averaging="exact", tol=1e-14)
    f_star = exact.objective
    rows = []

    def record(backend, clock, q, k, res, wall):
        sub = [max(h[0] - f_star, 0.0) / abs(f_star) for h in res.history]
        it6 = next((i for i, v in enumerate(sub) if v <= 1e-6), None)
        waited = float(np.sum(res.round_seconds[:it6])) if it6 is not None else None
        waited = None if waited is None else round(waited, 3)
        rows.append((backend, clock, q, k, res.iterations, it6, waited, round(wall, 2), sub[-1]))

    backends = ["local-thread"] + ([] if quick else ["local", "ray"])
    for backend in backends:
        if backend == "ray":
            try:
                import ray  # noqa: F401
            except ImportError:
                rows.append(("ray", "wall", None, None, "not installed", None, None, None, None))
                continue
        opts = {"workers": 2}
        with make_executor(backend, **opts) as ex:
            for q in (4, 16):
                t0 = time.perf_counter()
                res = distributed_newton(a, y, loss="logistic", lam=lam, q=q, m=m,
                                         sketch="sparse-sign", executor=ex, tol=1e-12,
                                         rng=int(gen.integers(2**31)))  # fmt: skip
                record(backend, "wall", q, q, res, time.perf_counter() - t0)
    with make_executor("local-thread", workers=2) as ex:
        for q in (16,) if tiny else (64,) if quick else (64, 256):
            for k in (q, (3 * q) // 4):
                sim = FaultInjector(ex, stragglers=ShiftedExponential(shift=1.0, rate=1.0),
                                    clock="simulated", rng=int(gen.integers(2**31)))  # fmt: skip
                t0 = time.perf_counter()
                res = distributed_newton(a, y, loss="logistic", lam=lam, q=q, m=m,
                                         sketch="sparse-sign", executor=sim, k=k, tol=1e-12,
                                         rng=int(gen.integers(2**31)))  # fmt: skip
                record("local-thread", "simulated", q, k, res, time.perf_counter() - t0)
    return rows


# ---------------------------------------------------------------- 1. error vs q
def _estimate_error(
    quick: bool, gen, say, tiny: bool = False
) -> tuple[list[tuple], dict[str, Any]]:
    n, d = (200, 10) if tiny else (1000, 40) if quick else (2000, 50)
    prob = synthetic_regression(n, d, kappa=30.0, df=3.0, rng=gen)
    a = prob.a
    s = np.linalg.svd(a, compute_uv=False)
    lam = float(np.median(s) ** 2)  # d_lambda about d/2
    d_lam = effective_dimension(a, lam)
    m = round(1.5 * d_lam)  # sketches barely larger than d_lambda: where naive bias bites
    h = a.T @ a + lam * np.eye(d)
    g = gen.standard_normal(d)
    target = np.linalg.solve(h, g)
    hnorm = float(np.sqrt(target @ h @ target))
    qmax = 16 if tiny else 256 if quick else 1024
    qs = [1 << i for i in range(int(np.log2(qmax)) + 1)]
    q_ref = min(256, qmax)  # the column the ratios compare at
    chains = 2
    curves, rows = {}, []
    configs = [(fam, meth) for fam in ("gaussian", "srht", "uniform", "leverage")
               for meth in ("naive", "debiased")] + [("surrogate", "debiased")]  # fmt: skip
    for step, (fam, meth) in enumerate(configs):
        say(f"estimate error: {fam} / {meth}", 0.4 * step / len(configs))
        corr = correction(lam, d_lam, m, debias=meth == "debiased", sketch=fam)
        sk = SurrogateSketch(m, lam=lam) if fam == "surrogate" else make_sketch(fam, m)
        errs = np.zeros(len(qs))
        for _ in range(chains):
            seeds = gen.integers(0, 2**63 - 1, size=qmax)
            dirs = np.stack([newton_task(a, g, sk, int(sd), corr.lam_local, corr.step)[0]
                             for sd in seeds])  # fmt: skip
            prefix = np.cumsum(dirs, axis=0)
            for j, q in enumerate(qs):
                e = prefix[q - 1] / q - target
                errs[j] += float(np.sqrt(e @ h @ e)) / hnorm / chains
        label = f"{fam} {meth}" if fam != "surrogate" else "surrogate (lam', mu)"
        curves[label] = errs.tolist()
        rows.append((label, m, errs[0], errs[qs.index(q_ref)], errs[-1]))
    by = {r[0]: r for r in rows}
    ratios = []
    for fam in ("gaussian", "srht", "uniform", "leverage"):
        naive, deb = by[f"{fam} naive"], by[f"{fam} debiased"]
        ratios.append((fam, naive[3] / deb[3]))
    info = {"n": n, "d": d, "lam": lam, "d_lambda": d_lam, "m": m, "q": qs, "curves": curves}
    if q_ref != 256:
        info["q_ref"] = q_ref
    return rows, {"info": info, "ratios": ratios}


# ---------------------------------------------------------------- 2. distributed Newton
def _suboptimality_runs(
    quick: bool, gen, say, tiny: bool = False
) -> tuple[list[tuple], dict[str, Any]]:
    from sklearn.linear_model import LogisticRegression, Ridge

    problems = []
    n_syn, d_syn = (500, 10) if tiny else (10000, 100) if quick else (50000, 100)
    syn = synthetic_regression(n_syn, d_syn, kappa=100.0, rng=gen)
    problems.append(("synthetic ridge", syn.a, syn.b, "least-squares", 1.0))
    z = syn.a @ gen.standard_normal(d_syn)
    ylog = np.where(z + 0.5 * gen.standard_normal(n_syn) > 0, 1.0, -1.0)
    problems.append(("synthetic logistic", syn.a, ylog, "logistic", 1.0))
    if not tiny:  # the smoke test: the synthetic problems only
        bc = load_real("breast-cancer")
        problems.append(("breast-cancer logistic", bc.a, np.where(bc.b > 0, 1.0, -1.0),
                         "logistic", 1.0))  # fmt: skip
        dg = load_real("digits")
        problems.append(("digits ridge", dg.a, dg.b, "least-squares", 1.0))
    qs = (4,) if tiny else (4, 16) if quick else (4, 16, 64)
    rows, traces = [], {}
    with make_executor("local-thread", workers=2) as ex:
        for pname, a, y, loss, lam in problems:
            say(f"Newton: {pname}", 0.45)
            exact = distributed_newton(a, y, loss=loss, lam=lam, averaging="exact", tol=1e-14,
                                       max_iter=100)  # fmt: skip
            f_star = exact.objective
            d = a.shape[1]
            m = 2 * d + 20
            sketch = "srht" if a.shape[0] > 5000 else "gaussian"
            for q in qs:
                for avg in ("debiased", "naive"):
                    res = distributed_newton(a, y, loss=loss, lam=lam, q=q, m=m, averaging=avg,
                                             sketch=sketch, executor=ex, tol=1e-13, max_iter=60,
                                             rng=int(gen.integers(2**31)))  # fmt: skip
                    sub = [max(f - f_star, 0.0) / abs(f_star) for f, *_ in res.history]
                    it8 = next((i for i, v in enumerate(sub) if v <= 1e-8), None)
                    t6 = next((h[2] for h, v in zip(res.history, sub, strict=True) if v <= 1e-6),
                              None)  # fmt: skip
                    traces[f"{pname}/q={q}/{avg}"] = sub
                    rows.append((pname, q, m, f"{avg} ({sketch})", res.iterations, it8, t6,
                                 sub[-1]))  # fmt: skip
            # baselines: exact Newton and scikit-learn
            sub = [max(f - f_star, 0.0) / abs(f_star) for f, *_ in exact.history]
            it8 = next((i for i, v in enumerate(sub) if v <= 1e-8), None)
            t6 = next((h[2] for h, v in zip(exact.history, sub, strict=True) if v <= 1e-6), None)
            rows.append((pname, 1, None, "exact Newton", exact.iterations, it8, t6, sub[-1]))
            t0 = time.perf_counter()
            if loss == "logistic":
                sk = LogisticRegression(C=1.0 / lam, fit_intercept=False, tol=1e-10,
                                        max_iter=10000).fit(a, y)  # fmt: skip
                w = sk.coef_.ravel()
                fval = float(np.sum(np.logaddexp(0, -y * (a @ w))) + 0.5 * lam * w @ w)
                name = "sklearn lbfgs"
            else:
                sk = Ridge(alpha=lam, fit_intercept=False, solver="auto").fit(a, y)
                w = sk.coef_.ravel()
                fval = float(0.5 * np.sum((a @ w - y) ** 2) + 0.5 * lam * w @ w)
                name = "sklearn Ridge"
            t_sk = time.perf_counter() - t0
            gap = max(fval - f_star, 0.0) / abs(f_star)
            rows.append((pname, 1, None, name, None, None, t_sk if gap <= 1e-6 else None, gap))
    return rows, traces


def _contraction(quick: bool, gen, tiny: bool = False) -> list[tuple]:
    """Least squares (lam = 0), debiased Gaussian Newton: measured E||A e+||^2/||A e||^2."""
    n, d = (500, 10) if tiny else (3000, 30)
    prob = synthetic_regression(n, d, rng=gen)
    a, b = prob.a, prob.b
    x_star = scipy.linalg.lstsq(a, b)[0]
    rows = []
    trials = 1 if tiny else 30 if quick else 100
    for m, q in ((100, 1), (100, 4), (100, 16)):
        ratios = []
        # one step from a fixed start, many trials (the exact rate is an expectation)
        x0 = x_star + gen.standard_normal(d)
        e0 = a @ (x0 - x_star)
        for t in range(trials * 4):
            res = distributed_newton(a, b, loss="least-squares", lam=0.0, q=q, m=m, x0=x0,
                                     max_iter=1, tol=1e-300, rng=5000 + t)  # fmt: skip
            e1 = a @ (res.x - x_star)
            ratios.append(float(e1 @ e1) / float(e0 @ e0))
        ratios = np.array(ratios)
        rate = gaussian_newton_rate(m, d, q)
        # a full run from x = 0: iterations to 1e-8 relative suboptimality vs the rate's promise
        f_star = 0.5 * float(np.sum((b - a @ x_star) ** 2))
        res = distributed_newton(a, b, loss="least-squares", lam=0.0, q=q, m=m,
                                 max_iter=30 if tiny else 200, tol=1e-300, rng=77)  # fmt: skip
        sub = [(f - f_star) / f_star for f, *_ in res.history]
        it8 = next((i for i, v in enumerate(sub) if v <= 1e-8), None)
        predicted = int(np.ceil(np.log(1e-8 / sub[0]) / np.log(rate)))
        rows.append((m, d, q, ratios.size, float(ratios.mean()),
                     float(ratios.std(ddof=1) / np.sqrt(ratios.size)), rate, it8,
                     predicted))  # fmt: skip
    return rows


def _heterogeneous(quick: bool, gen, tiny: bool = False) -> list[tuple]:
    n, d = 2000, 30
    prob = synthetic_regression(n, d, rng=gen)
    a = prob.a
    lam = 10.0
    d_lam = effective_dimension(a, lam)
    h = a.T @ a + lam * np.eye(d)
    g = gen.standard_normal(d)
    target = np.linalg.solve(h, g)
    hn = float(np.sqrt(target @ h @ target))
    sizes = [40, 40, 60, 60, 120, 120, 240, 480]
    trials = 3 if tiny else 100 if quick else 400
    rows = []
    for wname in ("size", "uniform", "determinantal"):
        errs = []
        for _ in range(trials):
            dirs, logdets = [], []
            for mk in sizes:
                c = correction(lam, d_lam, mk)
                dvec, ld = newton_task(a, g, make_sketch("gaussian", mk),
                                       int(gen.integers(2**62)), c.lam_local, c.step)  # fmt: skip
                dirs.append(dvec)
                logdets.append(ld)
            if wname == "size":
                w = np.array([mk - d_lam for mk in sizes])
            elif wname == "uniform":
                w = np.ones(len(sizes))
            else:
                ld = np.array(logdets)
                w = np.exp(ld - ld.max())
            e = (w / w.sum()) @ np.stack(dirs) - target
            errs.append(float(np.sqrt(e @ h @ e)) / hn)
        rows.append((wname, str(sizes), trials, float(np.mean(errs)),
                     float(np.std(errs, ddof=1) / np.sqrt(trials))))  # fmt: skip
    return rows


def run(
    *, quick: bool = True, progress: Progress | None = None, rng: int = 13, tiny: bool = False
) -> BenchResult:
    """Quick: the report's sizes; tiny (the smoke test): toy sizes, q up to 16, the synthetic
    problems only in the Newton section."""
    gen = np.random.default_rng(rng)
    say = progress or (lambda s, f: None)
    quick = quick or tiny
    est_rows, est = _estimate_error(quick, gen, say, tiny)
    say("distributed Newton", 0.4)
    newton_rows, traces = _suboptimality_runs(quick, gen, say, tiny)
    say("contraction", 0.8)
    con_rows = _contraction(quick, gen, tiny)
    say("heterogeneous workers", 0.9)
    het_rows = _heterogeneous(quick, gen, tiny)
    say("executors", 0.95)
    exec_rows = _executors(quick, gen, tiny)
    info = est["info"]
    q_ref = info.get("q_ref", 256)
    headline = (
        f"at q={q_ref} debiased error lower than naive averaging by "
        + ", ".join(f"{fam} {r:.1f}x" for fam, r in est["ratios"])
        + f" (n={info['n']}, d={info['d']}, d_lambda={info['d_lambda']:.1f}, m={info['m']})"
    )
    tables = (
        Table(
            f"Averaged inverse-Hessian estimate: ||dbar_q - H^-1 g||_H / ||H^-1 g||_H "
            f"(n={info['n']}, d={info['d']}, d_lambda={info['d_lambda']:.1f}, m={info['m']})",
            ("method", "m", "q=1", f"q={q_ref}", f"q={info['q'][-1]}"),
            tuple(est_rows),
            note="2 chains of independent sketches per row; debiased = lam' = lam (1 - d_lam/m) "
            "and step mu = 1 - d_lam/m; naive = lam, step 1 (GIANT).",
        ),
        Table(
            "Distributed Newton: relative suboptimality (f - f*) / |f*|",
            (
                "problem",
                "q",
                "m",
                "method",
                "iterations",
                "iterations to 1e-8",
                "seconds to 1e-6",
                "final",
            ),
            tuple(newton_rows),
            note="local thread executor, 2 threads; f* from exact Newton to ||g|| <= 1e-14 ||g0||; "
            "sklearn rows: time of one fit (counted only if within 1e-6 of f*).",
        ),
        Table(
            "Least squares (lam = 0): one debiased Gaussian Newton step, E||A e+||^2 / ||A e||^2",
            (
                "m",
                "d",
                "q",
                "trials",
                "measured",
                "std. error",
                "exact rate",
                "iterations to 1e-8 (run from 0)",
                "predicted by the rate",
            ),
            tuple(con_rows),
        ),
        Table(
            "Debiased Newton sketch on executors: logistic regression, sparse-sign sketches",
            (
                "backend",
                "clock",
                "q",
                "k (first k of q)",
                "iterations",
                "iterations to 1e-6",
                "worker seconds to 1e-6",
                "wall seconds",
                "final (f - f*)/|f*|",
            ),
            tuple(exec_rows),
            note="simulated clock: tasks run for real, completion times ~ 1 + Exp(1) per task; "
            "'worker seconds' = what the master waited for workers (simulated or wall).",
        ),
        Table(
            "Heterogeneous workers (Gaussian, debiased per worker): estimate error",
            ("weights", "sizes", "trials", "mean error", "std. error"),
            tuple(het_rows),
        ),
    )
    return BenchResult(
        name="second-order",
        status=NO_GOAL,
        title="Second-order: debiased distributed Newton sketch",
        headline=headline,
        tables=tables,
        figures=optional_figures(_figures, est["info"], traces),
        data={"estimate": est["info"], "newton": traces},
        mode="wall clock, local machine (thread executor)",
    )


def _figures(info, traces):
    plt = pyplot()
    fig1, ax = plt.subplots(figsize=(6.5, 4))
    for label, errs in info["curves"].items():
        style = "--" if "naive" in label else "-"
        ax.plot(info["q"], errs, style, marker="o", ms=3, label=label)
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xlabel("workers q")
    ax.set_ylabel("||dbar_q - H^-1 g||_H / ||H^-1 g||_H")
    ax.set_title("Naive averaging plateaus; debiased keeps improving")
    ax.legend(fontsize=6)
    fig1.tight_layout()

    probs = sorted({k.split("/")[0] for k in traces})
    fig2, axes = plt.subplots(1, len(probs), figsize=(4 * len(probs), 3.4), squeeze=False)
    for ax, pname in zip(axes[0], probs, strict=True):
        for key, sub in traces.items():
            if key.startswith(pname + "/"):
                _, qpart, avg = key.split("/")
                ax.semilogy(np.maximum(sub, 1e-17), "--" if avg == "naive" else "-",
                            label=f"{qpart} {avg}")  # fmt: skip
        ax.set_xlabel("iteration")
        ax.set_title(pname, fontsize=8)
    axes[0][0].set_ylabel("(f - f*) / |f*|")
    axes[0][-1].legend(fontsize=6)
    fig2.tight_layout()
    return {"estimate_vs_q": fig1, "newton": fig2}


def main(argv: list[str] | None = None) -> BenchResult:
    return bench_main(run, RESULTS, title=REPORT_TITLE, argv=argv)


if __name__ == "__main__":
    main()
