"""Sketching benchmark: sketch apply cost, randomized least squares vs LAPACK, distributed
averaging error vs the exact theory, heterogeneous workers and the privacy trade-off.

Sections (compared in the same run, wall clock, BLAS threads as stated):
1. ``S @ A`` for every sketch family (n = 2^17, d = 256, m = 2048 in the full run) against a
   plain copy of ``A`` (effective bandwidth).
2. Least squares n = 100000, d = 500 (full), kappa = 1 and 1e8: sketch-and-precondition (LSQR),
   IHS with momentum and sketch-and-solve vs scipy ``gelsd`` / ``gelsy`` and numpy QR.
3. Error of the average of q sketched solutions vs q = 1..256 for every family on synthetic data
   (incoherent / coherent) and scikit-learn's diabetes, digits and breast-cancer data, against the
   exact Gaussian theory and the bias-variance prediction; a >= 500-trial check of the averaged
   Gaussian error through ``distributed_lstsq`` on an executor.
4. Heterogeneous sketch sizes: inverse-variance vs uniform weights, measured vs theory.
5. Privacy: epsilon vs ridge lambda = w^2 vs error of the private solution vs MI bound.

Usage: python benchmarks/bench_sketch.py [--quick | --tiny] [--out DIR]
Writes DIR/sketch.json and sketch_*.png (DIR: benchmarks/results) and prints the tables.
"""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import scipy.linalg
from threadpoolctl import threadpool_limits

from _common import best_of
from frugalml.progress import Progress
from frugalml.report.output import optional_figures, pyplot
from frugalml.report.results import NO_GOAL, BenchResult, Table
from frugalml.report.script import bench_main
from frugalml.runtime import make_executor
from frugalml.sketch import SKETCHES, lstsq, make_sketch
from frugalml.sketch.datasets import load_real, synthetic_regression
from frugalml.sketch.distributed import distributed_lstsq, sketch_and_solve_task
from frugalml.sketch.privacy import leakage_bound, private_lstsq
from frugalml.sketch.theory import (
    bias_variance,
    gaussian_averaged_error,
    gaussian_weighted_error,
    inverse_variance_weights,
    orthogonal_single_error,
)
from frugalml.sketch.transforms import next_pow2

__all__ = ["REPORT_AREA", "REPORT_TITLE", "main", "run"]

REPORT_AREA = "sketch"
REPORT_TITLE = "Sketching and randomized least squares"
RESULTS = Path(__file__).resolve().parent / "results"


# ---------------------------------------------------------------- 1. apply time
def _apply_times(n: int, d: int, m: int, repeats: int, gen) -> list[tuple]:
    a = gen.standard_normal((n, d))
    t_copy, _ = best_of(lambda: a.copy(), repeats)
    rows = []
    for name in SKETCHES:
        opts = {"m_sample": min(n, 8 * m)} if name == "hybrid" else {}
        sk = make_sketch(name, m, rng=1, **opts)
        t, sa = best_of(lambda sk=sk: sk.apply(a), repeats)
        assert sa.shape == (m, d)
        rows.append([name, t, a.nbytes / t / 1e9, t / t_copy])
    t_gauss = next(r[1] for r in rows if r[0] == "gaussian")
    for r in rows:
        r.append(t_gauss / r[1])
    rows.append(["copy of A", t_copy, a.nbytes / t_copy / 1e9, 1.0, t_gauss / t_copy])
    return [tuple(r) for r in rows]


# ---------------------------------------------------------------- 2. least squares
def _lapack(a: np.ndarray, b: np.ndarray, driver: str) -> np.ndarray:
    return scipy.linalg.lstsq(a, b, lapack_driver=driver, check_finite=False)[0]


def _qr_solve(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    q, r = np.linalg.qr(a)
    return scipy.linalg.solve_triangular(r, q.T @ b)


def _lstsq_rows(n: int, d: int, kappas, threads_list, gen) -> list[tuple]:
    rows = []
    for kappa in kappas:
        prob = synthetic_regression(n, d, kappa=kappa, noise=1e-3, rng=gen)
        a, b = prob.a, prob.b
        for threads in threads_list:
            with threadpool_limits(threads):
                runs: dict[str, tuple[float, np.ndarray, str]] = {}
                for drv in ("gelsd", "gelsy"):
                    t, x = best_of(partial(_lapack, a, b, drv), 1)
                    runs[f"scipy {drv}"] = (t, x, "")

                t, x = best_of(partial(_qr_solve, a, b), 1)
                runs["numpy QR"] = (t, x, "")
                for label, kw in (
                    ("sketch-and-precondition", {"method": "sketch-and-precondition",
                                                 "tol": 1e-10}),
                    ("ihs (momentum)", {"method": "ihs", "tol": 1e-10}),
                    ("sketch-and-solve", {"method": "sketch-and-solve"}),
                ):  # fmt: skip
                    t, res = best_of(partial(lstsq, a, b, rng=3, **kw), 2)
                    runs[label] = (t, res.x, f"m={res.sketch_size}, {res.iterations} it")
            ref = runs["scipy gelsd"][1]
            r_ref = b - a @ ref
            nr = np.linalg.norm(r_ref)
            fastest = min(runs["scipy gelsd"][0], runs["scipy gelsy"][0])
            for label, (t, x, info) in runs.items():
                r = b - a @ x
                rows.append((
                    d, f"{kappa:.0e}", threads, label, t, fastest / t,
                    float(np.linalg.norm(a @ (x - ref)) / nr),
                    float((np.linalg.norm(r) - nr) / nr),
                    float(np.linalg.norm(x - ref) / np.linalg.norm(ref)), info,
                ))  # fmt: skip
    return rows


# ---------------------------------------------------------------- 3. error vs q
def _problems(
    quick: bool, gen, tiny: bool = False
) -> list[tuple[str, np.ndarray, np.ndarray, int]]:
    out = []
    nsyn = 256 if tiny else 2048 if quick else 4096
    for df, tag in ((np.inf, "incoherent"), (1.0, "coherent")):
        p = synthetic_regression(nsyn, 20, df=df, noise=1.0, rng=gen)
        out.append((f"synthetic {tag} ({nsyn}x20)", p.a, p.b, 160))
    reals = ("diabetes",) if quick else ("diabetes", "digits", "breast-cancer")
    for name in reals:
        p = load_real(name)
        d = p.a.shape[1]
        out.append((f"{name} ({p.a.shape[0]}x{d})", p.a, p.b, min(p.a.shape[0], 4 * d + 20)))
    return out


def _error_vs_q(quick: bool, gen, say, tiny: bool = False) -> tuple[list[tuple], dict[str, Any]]:
    qs = [1 << i for i in range(3 if tiny else 7 if quick else 9)]  # up to 4 / 64 / 256
    reps = 2 if tiny else 3 if quick else 4
    families = ("gaussian", "srht", "sparse-sign", "uniform", "leverage", "hybrid") if quick \
        else tuple(SKETCHES)  # fmt: skip
    if tiny:
        families = ("gaussian", "srht")
    problems = _problems(quick, gen, tiny)
    rows, curves = [], {}
    total = len(problems) * len(families)
    step = 0
    for pname, a, b, m in problems:
        n, d = a.shape
        x_star = scipy.linalg.lstsq(a, b)[0]
        f_star = float(np.sum((b - a @ x_star) ** 2))
        for fam in families:
            say(f"error vs q: {pname} / {fam}", 0.3 + 0.4 * step / total)
            step += 1
            opts = {"m_sample": min(n, 4 * m)} if fam == "hybrid" else {}
            sk = make_sketch(fam, m, **opts)
            seeds = gen.integers(0, 2**63 - 1, size=(reps, qs[-1]))
            sols = np.stack([
                np.stack([sketch_and_solve_task(a, b, sk, int(s), 0.0) for s in row])
                for row in seeds
            ])  # (reps, Q, d)  # fmt: skip
            prefix = np.cumsum(sols, axis=1)
            meas = []
            for q in qs:
                avg = prefix[:, q - 1] / q
                u = (avg - x_star) @ a.T
                meas.append(float(np.mean(np.sum(u * u, axis=1))) / f_star)
            bv = bias_variance(a, x_star, sols.reshape(-1, d), f_star)
            pred = [float(bv.predict(q)) for q in qs]
            gauss = [gaussian_averaged_error(m, d, q) for q in qs]
            curves[f"{pname}/{fam}"] = {"q": qs, "measured": meas, "bias_variance": pred,
                                        "gaussian_theory": gauss}  # fmt: skip
            single = None  # the family's own q = 1 theory, where one exists
            if fam in ("srht", "srdct"):
                big = next_pow2(n) if fam == "srht" else n
                single = orthogonal_single_error(m, d, big)
            elif fam == "gaussian":
                single = gauss[0]
            rows.append((
                pname, fam, m, bv.single, gauss[0], single, meas[-1], gauss[-1], bv.bias2,
                meas[-1] / gauss[-1],
            ))  # fmt: skip
    return rows, {"q": qs, "curves": curves, "reps": reps}


def _theory_check(quick: bool, gen, tiny: bool = False) -> list[tuple]:
    """>= 500 trials of distributed_lstsq (Gaussian, q = 8) on an executor vs exact theory
    (20 for the smoke test)."""
    rows = []
    trials = 20 if tiny else 500 if quick else 2000
    cases = [("diabetes", load_real("diabetes"), 60)]
    syn = synthetic_regression(1000, 20, noise=1.0, rng=gen)
    cases.append(("synthetic 1000x20", syn, 80))
    q = 8
    with make_executor("local-thread", workers=2) as ex:
        for name, prob, m in cases:
            a, b = prob.a, prob.b
            d = a.shape[1]
            x_star = scipy.linalg.lstsq(a, b)[0]
            f_star = float(np.sum((b - a @ x_star) ** 2))
            errs = []
            for t in range(trials):
                res = distributed_lstsq(a, b, q, m, executor=ex, reference=False,
                                        rng=int(gen.integers(2**62)) + t)  # fmt: skip
                u = a @ (res.x - x_star)
                errs.append(float(u @ u) / f_star)
            errs = np.array(errs)
            theory = gaussian_averaged_error(m, d, q)
            mean, se = errs.mean(), errs.std(ddof=1) / np.sqrt(trials)
            rows.append((name, d, m, q, trials, mean, se, theory, mean / theory - 1.0))
    return rows


# ---------------------------------------------------------------- 4. heterogeneous
def _heterogeneous(quick: bool, gen, tiny: bool = False) -> list[tuple]:
    prob = synthetic_regression(2000, 20, noise=1.0, rng=gen)
    a, b = prob.a, prob.b
    d = a.shape[1]
    sizes = [30, 30, 40, 40, 80, 80, 160, 320]
    x_star = scipy.linalg.lstsq(a, b)[0]
    f_star = float(np.sum((b - a @ x_star) ** 2))
    trials = 10 if tiny else 200 if quick else 1000
    rows = []
    for wname in ("inverse-variance", "uniform"):
        errs = []
        for t in range(trials):
            res = distributed_lstsq(a, b, len(sizes), sizes, weights=wname, reference=False,
                                    rng=10_000 + t)  # fmt: skip
            u = a @ (res.x - x_star)
            errs.append(float(u @ u) / f_star)
        w = inverse_variance_weights(sizes, d) if wname == "inverse-variance" else \
            np.full(len(sizes), 1 / len(sizes))  # fmt: skip
        theory = gaussian_weighted_error(sizes, d, w)
        rows.append((wname, str(sizes), trials, float(np.mean(errs)),
                     float(np.std(errs, ddof=1) / np.sqrt(trials)), theory))  # fmt: skip
    return rows


# ---------------------------------------------------------------- 5. privacy
def _privacy(quick: bool, gen, tiny: bool = False) -> list[tuple]:
    """Rows of [A b] scaled to norm <= 1 (the public bound B = 1)."""
    n, d = (1000, 10) if tiny else (5000, 10) if quick else (20000, 10)
    prob = synthetic_regression(n, d, noise=0.5, rng=gen)
    scale = np.sqrt(np.max(np.sum(prob.a**2, axis=1) + prob.b**2))
    a, b = prob.a / scale, prob.b / scale
    x_ls = np.linalg.lstsq(a, b, rcond=None)[0]
    f_ls = float(np.sum((b - a @ x_ls) ** 2))
    rows = []
    for eps in (0.5, 1.0, 4.0, 16.0):
        for q, m in ((1, 100), (8, 100)):
            res = private_lstsq(a, b, m=m, q=q, epsilon=eps, delta=1e-6, row_norm=1.0, rng=gen)
            f_priv = float(np.sum((b - a @ res.x) ** 2))
            rows.append((eps, q, m, res.lam, res.relative_bias, f_priv / f_ls - 1.0,
                         leakage_bound(n, d, q=q, m=m)))  # fmt: skip
    return rows, f"synthetic {n} x {d}"


def run(
    *, quick: bool = True, progress: Progress | None = None, rng: int = 11, tiny: bool = False
) -> BenchResult:
    """Quick: the report's sizes; tiny (the smoke test): every section at toy sizes."""
    gen = np.random.default_rng(rng)
    say = progress or (lambda s, f: None)
    quick = quick or tiny
    n_apply, d_apply, m_apply = (
        (1 << 10, 16, 64) if tiny else (1 << 14, 64, 512) if quick else (1 << 17, 256, 2048)
    )
    say("sketch apply time", 0.0)
    apply_rows = _apply_times(n_apply, d_apply, m_apply, 1 if tiny else 2 if quick else 3, gen)
    say("least squares vs LAPACK", 0.1)
    n_ls, d_ls = (2000, 20) if tiny else (20000, 100) if quick else (100000, 500)
    ls_rows = _lstsq_rows(n_ls, d_ls, (1.0, 1e8), (1,) if quick else (1, 2), gen)
    if not quick:  # how the ratio grows with d (LAPACK ~ n d^2, an iteration ~ n d)
        ls_rows += _lstsq_rows(n_ls, 2 * d_ls, (1.0,), (1,), gen)
    say("error vs q", 0.3)
    q_rows, q_data = _error_vs_q(quick, gen, say, tiny)
    say("theory check (>= 500 trials)", 0.7)
    th_rows = _theory_check(quick, gen, tiny)
    say("heterogeneous workers", 0.85)
    het_rows = _heterogeneous(quick, gen, tiny)
    say("privacy", 0.95)
    priv_rows, priv_name = _privacy(quick, gen, tiny)

    srht = next(r for r in apply_rows if r[0] == "srht")
    pre = [r for r in ls_rows if r[3] == "sketch-and-precondition" and r[2] == 1 and r[0] == d_ls]
    worst_dev = max(abs(r[-1]) for r in th_rows)
    headline = (
        f"SRHT apply {srht[4]:.1f}x faster than Gaussian (m={m_apply}); sketch-and-precondition "
        + ", ".join(f"{r[5]:.2f}x vs fastest LAPACK at kappa={r[1]}" for r in pre)
        + f" (n={n_ls}, d={d_ls}, 1 thread); averaged Gaussian error within "
        f"{100 * worst_dev:.1f}% of exact theory"
    )
    tables = (
        Table(
            f"Sketch apply S @ A, A {n_apply} x {d_apply}, m = {m_apply} (best of repeats)",
            ("sketch", "seconds", "GB/s of A", "x copy time", "speed-up vs gaussian"),
            tuple(apply_rows),
            note="hybrid samples 8m rows then projects with a Gaussian; leverage/less include "
            "computing the scores from A.",
        ),
        Table(
            f"Least squares n = {n_ls} (errors against scipy gelsd)",
            (
                "d",
                "kappa",
                "threads",
                "method",
                "seconds",
                "fastest LAPACK / this",
                "||A(x-x_ref)|| / ||r_ref||",
                "(||r|| - ||r_ref||) / ||r_ref||",
                "||x-x_ref|| / ||x_ref||",
                "info",
            ),
            tuple(ls_rows),
            note="randomized methods: best of 2, sparse-sign sketch, tol 1e-10; LAPACK: one run. "
            "At kappa = 1e8 the reference itself is only accurate to ~kappa * eps in x.",
        ),
        Table(
            "Distributed sketch-and-solve: ||A(xbar_q - x*)||^2 / f(x*) vs q",
            (
                "problem",
                "sketch",
                "m",
                "q=1 measured",
                "q=1 Gaussian theory",
                "q=1 own theory",
                f"q={q_data['q'][-1]} measured",
                f"q={q_data['q'][-1]} Gaussian theory",
                "bias^2 (plateau)",
                "measured / theory at max q",
            ),
            tuple(q_rows),
            note=f"{q_data['reps']} independent chains of {q_data['q'][-1]} sketches per cell; "
            "q = 1 measured and bias^2 from all single-sketch solutions (bias^2 without bias); "
            "own theory: exact for Gaussian, the asymptotic orthogonal-sketch value for "
            "SRHT/SRDCT.",
        ),
        Table(
            "Exact theory check: distributed_lstsq (Gaussian, local-thread executor)",
            (
                "problem",
                "d",
                "m",
                "q",
                "trials",
                "measured mean",
                "std. error",
                "theory",
                "relative deviation",
            ),
            tuple(th_rows),
            note="theory: E||A(xbar - x*)||^2 / f(x*) = d / (q (m - d - 1)).",
        ),
        Table(
            "Heterogeneous workers (Gaussian sketches, d = 20, n = 2000)",
            ("weights", "sizes m_k", "trials", "measured", "std. error", "theory"),
            tuple(het_rows),
        ),
        Table(
            f"Privacy: (epsilon, 1e-6)-DP Gaussian sketches, {priv_name}, rows of [A b] scaled "
            "to norm <= 1",
            (
                "epsilon",
                "q",
                "m",
                "ridge lambda = w^2",
                "ridge bias ||x_lam - x*||/||x*||",
                "excess loss f(x)/f(x*) - 1",
                "MI bound (nats)",
            ),
            tuple(priv_rows),
        ),
    )
    return BenchResult(
        name="sketch",
        status=NO_GOAL,
        title="Sketching: operators, least squares, distributed averaging, privacy",
        headline=headline,
        tables=tables,
        figures=optional_figures(_figures, apply_rows, q_data),
        data={"error_vs_q": q_data},
        mode="wall clock, local machine (sections 1-2); Monte-Carlo (3-5)",
    )


def _figures(apply_rows, q_data):
    plt = pyplot()
    fig1, ax = plt.subplots(figsize=(7, 3.4))
    names = [r[0] for r in apply_rows]
    ax.bar(names, [r[1] for r in apply_rows], color="tab:blue")
    ax.set_yscale("log")
    ax.set_ylabel("seconds")
    ax.set_title("S @ A apply time")
    ax.tick_params(axis="x", rotation=45, labelsize=7)
    fig1.tight_layout()

    curves = q_data["curves"]
    problems = sorted({k.split("/")[0] for k in curves})
    fig2, axes = plt.subplots(1, len(problems), figsize=(4 * len(problems), 3.6), squeeze=False)
    for ax, prob in zip(axes[0], problems, strict=True):
        theory_drawn = False
        for key, c in curves.items():
            if not key.startswith(prob + "/"):
                continue
            fam = key.split("/", 1)[1]
            (line,) = ax.plot(c["q"], c["measured"], "o-", ms=3, label=fam)
            ax.plot(c["q"], c["bias_variance"], ":", color=line.get_color())
            if not theory_drawn:
                ax.plot(c["q"], c["gaussian_theory"], "k--", lw=1.5, label="Gaussian exact")
                theory_drawn = True
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_xlabel("workers q")
        ax.set_title(prob, fontsize=8)
    axes[0][0].set_ylabel("||A(xbar - x*)||^2 / f(x*)")
    axes[0][-1].legend(fontsize=6)
    fig2.tight_layout()
    return {"apply": fig1, "error_vs_q": fig2}


def main(argv: list[str] | None = None) -> BenchResult:
    return bench_main(run, RESULTS, title=REPORT_TITLE, argv=argv)


if __name__ == "__main__":
    main()
