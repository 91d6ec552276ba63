"""Convex-training benchmark: the lifted SDP against backpropagation, conic vs first-order
solvers, and quantized networks (Bartan & Pilanci, arXiv 2101.02429 and ICML 2021 /
arXiv 2105.01420).

Sections (all in the same run, one BLAS and one torch thread):
1. Training objective: the SDP network (Clarabel, decomposed; the decomposed network's own
   objective is reported) against full-batch backpropagation with Adam and with SGD (heavy-ball
   gradient descent) on exactly the same objective ``loss + beta sum |alpha_j|``,
   ``||u_j|| = 1``, width ``2 (d + 1)``, several seeds each, on planted synthetic data and
   scikit-learn's breast cancer and digits (3 vs 8, 0 vs rest; logistic loss, labels +-1),
   with a held-out test split.
2. Solve time against d and n: Clarabel vs SCS (eps 1e-6) vs the first-order solver
   (conditional gradient, certified relative gap 1e-7; on the GPU too when torch sees one)
   on the same squared-loss problem; objective error relative to the most accurate
   solution available (Clarabel's when it solved, else the lowest objective of a decomposed,
   hence feasible, network); the SCS / first-order time ratio, also at 1e-4 relative accuracy.
   A run is skipped where a smaller one took over 120 s, where its time extrapolated from a
   smaller size exceeds the per-solve limit, and (conic solvers) where CVXPY's dense feature
   matrix would exceed 1e8 entries; Clarabel's own size refusal is recorded as such.
3. Quantized (sign) first layer: SDP lower bound, rounded network, exhaustive optimum and the
   certified gap; for larger d the rounded network against sign backprop (straight-through).

Usage: python benchmarks/bench_convex.py [--quick | --tiny] [--out DIR]
Writes DIR/convex.json and convex_*.png (DIR: benchmarks/results) and prints the tables.
"""

from __future__ import annotations

import math
import os
import time
import warnings
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from frugalml._threads import limit_blas_threads
from frugalml.errors import FrugalError, InvalidInputError
from frugalml.progress import Progress
from frugalml.report.output import optional_figures, pyplot
from frugalml.report.results import MET, NOT_CHECKED, NOT_MET, BenchResult, Table
from frugalml.report.script import bench_main

__all__ = ["REPORT_AREA", "REPORT_TITLE", "main", "planted_problem", "relu_activation", "run"]

REPORT_AREA = "convex"
REPORT_TITLE = "Convex training: SDP vs backprop"
RESULTS = Path(__file__).resolve().parent / "results"

#: sizes per mode
CONFIG: dict[bool, dict[str, Any]] = {
    True: {
        "seeds": 3,
        "steps": 3000,
        "planted": (300, 10),  # (n_train, d)
        "real_dim": 10,  # PCA dimension of the real data sets
        "time_d": (10, 20),
        "time_n": (500,),
        "ratio_at": (20, 500),
        "time_limit": 60.0,
        "quant_d": (4, 6, 8),
        "quant_n": 200,
        "quant_large_d": (),
        "quant_large_n": 500,
    },
    False: {
        "seeds": 10,
        "steps": 3000,
        "planted": (1000, 20),
        "real_dim": 30,
        "time_d": (10, 20, 50, 100, 200),
        "time_n": (1000, 5000),
        "ratio_at": (100, 1000),
        "time_limit": 300.0,
        "quant_d": (4, 6, 8, 10, 12),
        "quant_n": 200,
        "quant_large_d": (20, 50),
        "quant_large_n": 500,
    },
}
#: the smoke test's sizes (``run(tiny=True)``): every section, toy problems
TINY: dict[str, Any] = {
    **CONFIG[True],
    "seeds": 1,
    "steps": 60,
    "planted": (60, 4),
    "real_dim": 4,
    "time_d": (4,),
    "time_n": (60,),
    "ratio_at": (4, 60),
    "time_limit": 20.0,
    "quant_d": (3,),
    "quant_n": 40,
}
#: a solver is skipped at sizes >= one where it took longer than this
SKIP_AFTER_S = 120.0
#: conic solvers (CVXPY builds the dense (n, (d+1)^2) feature matrix) are skipped above this
MAX_CONIC_FEATURES = 1e8
#: growth of the solve time with d + 1 used to skip runs expected to exceed the time limit
#: (Clarabel: a dense KKT block of size ~(d+1)^2, measured ~(d+1)^5 from d = 30 to 50 at
#: n = 1000; SCS and first-order: ~n (d+1)^2 per iteration, more iterations as d grows)
COST_EXPONENT = {"clarabel": 5.0, "scs": 3.0, "first-order": 3.0, "first-order-cuda": 3.0}
#: relative accuracy of the time-to-accuracy comparison
TARGET_ACCURACY = 1e-4
#: learning-rate grids (SGD: multiples of 1/n, the objective being a sum over samples)
ADAM_LRS = (3e-3, 1e-2, 3e-2)
SGD_LR_TIMES_N = (0.3, 1.0, 3.0)
SGD_MOMENTUM = 0.9
_ENV = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


def relu_activation():
    """The degree-2 polynomial fit of the ReLU every section trains with."""
    from frugalml.convex import Polynomial

    return Polynomial.fit_relu()


@contextmanager
def _single_thread():
    """One BLAS thread (``limit_blas_threads(1)``, as ``bench_main`` does) and one torch
    thread; both, and the environment variables, restored afterwards."""
    import torch

    saved_env = {v: os.environ.get(v) for v in _ENV}
    saved_torch = torch.get_num_threads()
    limiter = limit_blas_threads(1)
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(saved_torch)
        limiter.restore_original_limits()
        for var, val in saved_env.items():
            if val is None:
                os.environ.pop(var, None)
            else:
                os.environ[var] = val


def _rel(value: float | None, ref: float | None) -> float | None:
    if value is None or ref is None or not math.isfinite(value):
        return None
    return (value - ref) / max(abs(ref), 1e-300)


# ------------------------------------------------------------------------------ data
def planted_problem(n: int, d: int, gen, *, k: int = 3, noise: float = 0.1):
    """Teacher ``y = sum_{j<=k} sigma(x^T u_j) alpha_j + noise``, rows ``x ~ N(0, I/d)``."""
    act = relu_activation()
    X = gen.standard_normal((n, d)) / np.sqrt(d)
    U = gen.standard_normal((d, k))
    U /= np.linalg.norm(U, axis=0)
    alpha = gen.choice([-1.0, 1.0], k) * gen.uniform(0.5, 1.5, k)
    y = act(X @ U) @ alpha + noise * gen.standard_normal(n)
    return X, y


def _split_scale(X, y, dim: int | None, seed: int):
    """Stratified 75/25 split, standardise on the training part, PCA to ``dim`` (when smaller
    than d), then rescale so that training rows have mean squared norm 1."""
    from sklearn.decomposition import PCA
    from sklearn.model_selection import train_test_split
    from sklearn.preprocessing import StandardScaler

    Xtr, Xte, ytr, yte = train_test_split(X, y, test_size=0.25, random_state=seed, stratify=y)
    sc = StandardScaler().fit(Xtr)
    Xtr, Xte = sc.transform(Xtr), sc.transform(Xte)
    if dim is not None and dim < Xtr.shape[1]:
        pca = PCA(dim, random_state=seed).fit(Xtr)
        Xtr, Xte = pca.transform(Xtr), pca.transform(Xte)
    s = float(np.sqrt(np.mean(np.sum(Xtr * Xtr, axis=1))))
    return Xtr / s, Xte / s, ytr, yte


def _problems(
    quick: bool,
    gen,
    *,
    planted: tuple[int, int] | None = None,
    real_dim: int | None = None,
    real: bool = True,
) -> list[dict[str, Any]]:
    """The problems of section 1: dicts with name, train/test data, loss, beta, metric."""
    cfg = CONFIG[quick]
    n_tr, d = planted or cfg["planted"]
    dim = real_dim or cfg["real_dim"]
    X, y = planted_problem(n_tr + n_tr // 3, d, gen)
    out = [
        dict(
            name=f"planted (3 teacher neurons, d={d})",
            short="planted",
            Xtr=X[:n_tr],
            ytr=y[:n_tr],
            Xte=X[n_tr:],
            yte=y[n_tr:],
            loss="squared",
            beta=0.1,
            metric="R^2",
        )
    ]
    if not real:
        return out
    from sklearn.datasets import load_breast_cancer, load_digits

    bc = load_breast_cancer()
    dg = load_digits()
    pair = (dg.target == 3) | (dg.target == 8)
    raw = (
        ("breast cancer", bc.data, np.where(bc.target == 1, 1.0, -1.0)),
        ("digits 3 vs 8", dg.data[pair], np.where(dg.target[pair] == 3, 1.0, -1.0)),
        ("digits 0 vs rest", dg.data, np.where(dg.target == 0, 1.0, -1.0)),
    )
    for name, Xr, yr in raw:
        Xtr, Xte, ytr, yte = _split_scale(Xr, yr, dim, seed=0)
        pca = f", PCA {Xr.shape[1]}->{Xtr.shape[1]}" if Xtr.shape[1] < Xr.shape[1] else ""
        out.append(
            dict(
                name=name + pca,
                short=name,
                Xtr=Xtr,
                ytr=ytr,
                Xte=Xte,
                yte=yte,
                loss="logistic",
                beta=1.0,
                metric="accuracy",
            )
        )
    return out


def _test_metric(metric: str, yhat: np.ndarray, y: np.ndarray) -> float:
    if metric == "accuracy":
        return float(np.mean(np.where(yhat >= 0.0, 1.0, -1.0) == y))
    return float(1.0 - np.sum((yhat - y) ** 2) / np.sum((y - y.mean()) ** 2))  # R^2


# ------------------------------------------------------------------------------ 1. objective
def _train_one(p, optimizer: str, lr: float, steps: int, seed: int):
    from frugalml.convex.backprop import train_poly_backprop

    d = p["Xtr"].shape[1]
    return train_poly_backprop(
        p["Xtr"],
        p["ytr"],
        activation=relu_activation(),
        beta=p["beta"],
        width=2 * (d + 1),
        loss=p["loss"],
        optimizer=optimizer,
        steps=steps,
        lr=lr,
        rng=seed,
        momentum=SGD_MOMENTUM if optimizer == "sgd" else 0.0,
        record_every=max(steps // 100, 1),
    )


def _pick_lr(p, optimizer: str, steps: int) -> float:
    """Learning rate from a small grid: the lowest objective after ``steps // 3`` steps from a
    seed not used in the comparison."""
    n = p["Xtr"].shape[0]
    grid = ADAM_LRS if optimizer == "adam" else tuple(c / n for c in SGD_LR_TIMES_N)
    scores = [
        (_train_one(p, optimizer, lr, max(steps // 3, 1), 999_999).objective, lr) for lr in grid
    ]
    return min(scores, key=lambda s: s[0] if math.isfinite(s[0]) else math.inf)[1]


def _objective_section(problems, seeds: int, steps: int, say, frac=(0.0, 0.5), rng=0):
    """Rows of the objective table and per-problem records (JSON-ready); backprop seeds
    ``1000 rng + i``, ``i < seeds``."""
    from frugalml.convex import decompose, solve_poly_sdp

    rows, records = [], []
    lo, hi = frac
    for pi, p in enumerate(problems):
        say(f"objective: {p['name']} (SDP)", lo + (hi - lo) * pi / len(problems))
        t0 = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # Clarabel AlmostSolved (logistic)
            sol = solve_poly_sdp(
                p["Xtr"],
                p["ytr"],
                activation=relu_activation(),
                beta=p["beta"],
                loss=p["loss"],
                solver="clarabel",
            )
        sdp_seconds = time.perf_counter() - t0
        net = decompose(sol)
        sdp_obj = net.objective(p["Xtr"], p["ytr"], loss=p["loss"], beta=p["beta"])
        sdp_test = _test_metric(p["metric"], net.predict(p["Xte"]), p["yte"])
        rec: dict[str, Any] = dict(
            problem=p["name"],
            short=p["short"],
            n=p["Xtr"].shape[0],
            d=p["Xtr"].shape[1],
            loss=p["loss"],
            beta=p["beta"],
            sdp_reported=sol.objective,
            sdp_network=sdp_obj,
            sdp_status=sol.status,
            sdp_seconds=sdp_seconds,
            sdp_width=net.width,
            sdp_test=sdp_test,
        )
        for opt in ("adam", "sgd"):
            say(f"objective: {p['name']} ({opt})", lo + (hi - lo) * (pi + 0.3) / len(problems))
            lr = _pick_lr(p, opt, steps)
            runs = [_train_one(p, opt, lr, steps, 1000 * rng + i) for i in range(seeds)]
            objs = np.array([r.objective for r in runs])
            best = int(np.argmin(objs))
            rec[opt] = dict(
                lr=lr,
                objectives=objs.tolist(),
                seconds=[r.seconds for r in runs],
                diverged=sum(r.diverged for r in runs),
                test=_test_metric(p["metric"], runs[best].network.predict(p["Xte"]), p["yte"]),
                best_history=list(runs[best].history),
            )
        a, s = np.array(rec["adam"]["objectives"]), np.array(rec["sgd"]["objectives"])
        best_bp = float(min(a.min(), s.min()))
        rec["sdp_le_best"] = bool(sdp_obj <= best_bp + 1e-6 * abs(best_bp))
        records.append(rec)
        rows.append(
            (
                p["name"],
                rec["n"],
                rec["d"],
                p["loss"],
                p["beta"],
                sdp_obj,
                round(sdp_seconds, 2),
                float(a.min()),
                float(np.median(a)),
                float(a.max()),
                float(s.min()),
                float(np.median(s)),
                float(s.max()),
                _rel(best_bp, sdp_obj),
                "yes" if rec["sdp_le_best"] else "NO",
                p["metric"],
                sdp_test,
                rec["adam"]["test"],
                round(float(np.median(rec["adam"]["seconds"])), 2),
            )
        )
    return rows, records


# ------------------------------------------------------------------------------ 2. solve time
def _cuda() -> bool:
    try:
        import torch
    except ImportError:
        return False
    return bool(torch.cuda.is_available())


def _time_call(fn):
    """Wall seconds of ``fn()`` (the fastest of two calls when the first takes under 2 s)."""
    t0 = time.perf_counter()
    out = fn()
    best = time.perf_counter() - t0
    if best < 2.0:
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return best, out


def _solve(X, y, solver: str, tol: float | None, time_limit: float):
    """One timed solve: (status text, solution or None, wall seconds)."""
    from frugalml.convex import solve_poly_sdp

    opts = None
    if solver == "clarabel":
        opts = {"time_limit": time_limit}
    elif solver == "scs":
        opts = {"time_limit_secs": time_limit}
    else:
        opts = {"time_limit": time_limit}
        if solver == "first-order-cuda":
            solver, opts["device"] = "first-order", "cuda"

    def call():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # status kept in the row
            return solve_poly_sdp(
                X,
                y,
                activation=relu_activation(),
                beta=0.1,
                loss="squared",
                solver=solver,
                eps=tol,
                solver_options=opts,
            )

    t0 = time.perf_counter()
    try:
        seconds, sol = _time_call(call)
    except InvalidInputError as exc:
        if "too large" in str(exc):
            return "refused (too large)", None, None
        raise
    except FrugalError as exc:  # solver failure / time limit
        status = getattr(exc, "status", None) or type(exc).__name__
        return f"failed: {status}", None, time.perf_counter() - t0
    return sol.status, sol, seconds


def _warm_up() -> None:
    """Import CVXPY / torch and run each solver once on a tiny problem (not timed)."""
    gen = np.random.default_rng(0)
    X, y = planted_problem(30, 3, gen)
    for solver, tol in SOLVER_TOLS:
        _solve(X, y, solver, tol, 60.0)


SOLVER_TOLS = (("clarabel", None), ("scs", 1e-6), ("first-order", 1e-7)) + (
    (("first-order-cuda", 1e-7),) if _cuda() else ()
)


def _solve_time_section(ds, ns, ratio_at, time_limit: float, say, frac=(0.5, 0.8), rng=0):
    """Rows of the solve-time table, the time-to-accuracy rows and the records."""
    from frugalml.convex import decompose

    _warm_up()
    lo, hi = frac
    rows, records = [], []
    slow: dict[str, list[tuple[int, int, float]]] = {s: [] for s, _ in SOLVER_TOLS}
    done: dict[str, list[tuple[int, int, float]]] = {s: [] for s, _ in SOLVER_TOLS}
    cells = [(n, d) for n in ns for d in ds]
    ratio_rows: list[tuple] = []
    for ci, (n, d) in enumerate(cells):
        say(f"solve time: n={n}, d={d}", lo + (hi - lo) * ci / len(cells))
        X, y = planted_problem(n, d, np.random.default_rng([rng, n, d]))
        here = []
        for solver, tol in SOLVER_TOLS:
            rec: dict[str, Any] = dict(
                n=n,
                d=d,
                solver=solver,
                tol=tol,
                objective=None,
                network_objective=None,
                seconds=None,
            )
            prior = [s for s in slow[solver] if s[0] <= n and s[1] <= d]
            if prior:
                pn, pd, ps = prior[0]
                rec["status"] = (
                    f"skipped: > {SKIP_AFTER_S:.0f} s expected (n={pn}, d={pd} took {ps:.3g} s)"
                )
            elif solver in ("clarabel", "scs") and n * (d + 1) ** 2 > MAX_CONIC_FEATURES:
                rec["status"] = f"skipped: n (d+1)^2 = {n * (d + 1) ** 2:.2g} dense features"
            elif (guess := _predicted(done[solver], solver, n, d)) > time_limit:
                rec["status"] = f"skipped: ~{guess:.0f} s expected (> {time_limit:.3g} s limit)"
            else:
                status, sol, seconds = _solve(X, y, solver, tol, time_limit)
                rec.update(status=status, seconds=seconds)
                if sol is not None:
                    rec["objective"] = sol.objective
                    rec["network_objective"] = decompose(sol).objective(X, y, beta=0.1)
                if seconds is not None and (seconds > SKIP_AFTER_S or sol is None):
                    slow[solver].append((n, d, seconds))
                if sol is not None and seconds is not None:
                    done[solver].append((n, d, seconds))
            here.append(rec)
        ref, ref_name = _reference(here)
        for rec in here:
            rec["reference"] = ref_name
            rec["rel_error"] = _rel(rec["objective"], ref)
            rec["network_rel_error"] = _rel(rec["network_objective"], ref)
            records.append(rec)
            rows.append(
                (
                    n,
                    d,
                    rec["solver"],
                    "-" if rec["tol"] is None else f"{rec['tol']:g}",
                    rec["status"],
                    rec["seconds"],
                    rec["objective"],
                    rec["rel_error"],
                    rec["network_rel_error"],
                    ref_name,
                )
            )
        if (d, n) == tuple(ratio_at):
            say(f"time to {TARGET_ACCURACY:g} accuracy: n={n}, d={d}", lo + (hi - lo) * 0.95)
            ratio_rows = _time_to_accuracy(X, y, here, ref, time_limit)
    return rows, ratio_rows, records


def _predicted(done, solver: str, n: int, d: int) -> float:
    """Seconds expected at (n, d) from the largest finished smaller run of ``solver``:
    ``t' (n / n') ((d+1) / (d'+1))^p`` with ``p`` from :data:`COST_EXPONENT`; 0 if none."""
    prior = [r for r in done if r[0] <= n and r[1] <= d]
    if not prior:
        return 0.0
    pn, pd, ps = max(prior, key=lambda r: (r[0] * (r[1] + 1) ** 2, r[2]))
    return ps * (n / pn) * ((d + 1) / (pd + 1)) ** COST_EXPONENT[solver]


def _reference(recs) -> tuple[float | None, str]:
    """Clarabel's objective when it solved; else the lowest decomposed-network objective (a
    feasible point of the non-convex problem, hence an upper bound on the optimum)."""
    cl = next(r for r in recs if r["solver"] == "clarabel")
    if cl["objective"] is not None and cl["status"] == "optimal":
        return cl["objective"], "clarabel"
    nets = [
        (r["network_objective"], r["solver"]) for r in recs if r["network_objective"] is not None
    ]
    if not nets:
        return None, "none"
    val, name = min(nets)
    return val, f"best network ({name})"


def _time_to_accuracy(X, y, main_recs, ref, time_limit) -> list[tuple]:
    """SCS (eps 1e-3 .. 1e-6) and first-order (tol 1e-4 .. 1e-7): the fastest setting whose
    reported and decomposed-network objectives are both within TARGET_ACCURACY of ``ref``."""
    from frugalml.convex import decompose

    rows = []
    settings = {"scs": (1e-3, 1e-4, 1e-5), "first-order": (1e-4, 1e-5, 1e-6)}
    for solver, tols in settings.items():
        main = next(r for r in main_recs if r["solver"] == solver)
        if ref is None or main["objective"] is None:  # no reference, or skipped / failed
            rows.append((solver, "-", "not run: " + str(main["status"]), None, None, None, "no"))
            continue
        tried = []
        for tol in tols:
            status, sol, seconds = _solve(X, y, solver, tol, time_limit)
            if sol is None:
                tried.append((tol, status, seconds, None, None))
                continue
            net_obj = decompose(sol).objective(X, y, beta=0.1)
            tried.append((tol, status, seconds, _rel(sol.objective, ref), _rel(net_obj, ref)))
        tried.append(
            (
                main["tol"],
                main["status"],
                main["seconds"],
                main["rel_error"],
                main["network_rel_error"],
            )
        )
        for tol, status, seconds, err, net_err in tried:
            ok = (
                err is not None
                and net_err is not None
                and abs(err) <= TARGET_ACCURACY
                and abs(net_err) <= TARGET_ACCURACY
            )
            rows.append((solver, f"{tol:g}", status, seconds, err, net_err, "yes" if ok else "no"))
    return rows


def _speedups(ratio_rows, records, ratio_at) -> dict[str, Any]:
    """SCS / first-order time: at the main tolerances and to TARGET_ACCURACY."""
    d, n = ratio_at
    out: dict[str, Any] = {"d": d, "n": n, "main": None, "at_accuracy": None}
    main = {r["solver"]: r for r in records if r["d"] == d and r["n"] == n}
    if main and main["scs"]["seconds"] and main["first-order"]["seconds"]:
        out["main"] = main["scs"]["seconds"] / main["first-order"]["seconds"]
    fastest = {}
    for solver, _, _, seconds, _, _, ok in ratio_rows:
        if ok == "yes" and seconds is not None:
            fastest[solver] = min(fastest.get(solver, math.inf), seconds)
    if "scs" in fastest and "first-order" in fastest:
        out["at_accuracy"] = fastest["scs"] / fastest["first-order"]
        out["seconds"] = fastest
    return out


# ------------------------------------------------------------------------------ 3. quantized
def _quantized_problem(n: int, d: int, seed: int):
    """Teacher with 3 sign neurons, ``sigma(t) = t^2 + t/2``."""
    gen = np.random.default_rng([seed, d])
    X = gen.standard_normal((n, d)) / np.sqrt(d)
    U = np.where(gen.standard_normal((d, 3)) >= 0, 1.0, -1.0)
    alpha = gen.choice([-1.0, 1.0], 3) * gen.uniform(0.5, 1.5, 3)
    t = X @ U
    return X, ((t + 0.5) * t) @ alpha + 0.05 * gen.standard_normal(n)


QUANT = dict(a=1.0, b=0.5, c=0.0, beta=0.1)


def _quantized_section(ds, n: int, large_ds, large_n: int, say, frac=(0.8, 1.0), rng=0):
    from frugalml.convex.quantized import (
        exhaustive_quantized,
        round_quantized,
        sign_backprop,
        solve_quantized_sdp,
    )

    lo, hi = frac
    rows, large_rows = [], []
    total = len(ds) + len(large_ds)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        for i, d in enumerate(ds):
            say(f"quantized: d={d}", lo + (hi - lo) * i / max(total, 1))
            X, y = _quantized_problem(n, d, rng)
            t0 = time.perf_counter()
            sol = solve_quantized_sdp(X, y, **QUANT)
            t1 = time.perf_counter()
            net = round_quantized(sol, X, y, rng=rng)
            t2 = time.perf_counter()
            opt, _ = exhaustive_quantized(X, y, **QUANT)
            t3 = time.perf_counter()
            rows.append(
                (
                    d,
                    n,
                    sol.lower_bound,
                    net.train_objective,
                    net.width,
                    opt,
                    100.0 * _rel(net.train_objective, opt),
                    100.0 * net.certified_gap,
                    100.0 * _rel(opt, sol.lower_bound),
                    round(t1 - t0, 2),
                    round(t2 - t1, 2),
                    round(t3 - t2, 2),
                )
            )
        for j, d in enumerate(large_ds):
            say(
                f"quantized: d={d} (vs sign backprop)",
                lo + (hi - lo) * (len(ds) + j) / max(total, 1),
            )
            X, y = _quantized_problem(large_n, d, rng)
            width = 2 * (d + 1)
            sol = solve_quantized_sdp(X, y, **QUANT)
            net = round_quantized(sol, X, y, rng=rng)
            small = round_quantized(sol, X, y, rng=rng, max_neurons=width)
            ste = sign_backprop(X, y, width=width, steps=3000, rng=rng, **QUANT)
            bound = sol.lower_bound
            large_rows.append(
                (
                    d,
                    large_n,
                    bound,
                    net.train_objective,
                    net.width,
                    small.train_objective,
                    width,
                    ste.objective,
                    ste.refit_objective,
                    100.0 * net.certified_gap,
                    100.0 * _rel(small.train_objective, bound),
                    100.0 * _rel(ste.refit_objective, bound),
                )
            )
    return rows, large_rows


# ------------------------------------------------------------------------------ run
def run(
    *, quick: bool = True, progress: Progress | None = None, rng: int = 0, tiny: bool = False
) -> BenchResult:
    """Sizes: :data:`CONFIG` (quick or full) or :data:`TINY` (the smoke test)."""
    say = progress or (lambda s, f: None)
    quick = quick or tiny
    cfg = TINY if tiny else CONFIG[quick]
    t_start = time.perf_counter()
    with _single_thread():
        problems = _problems(
            quick, np.random.default_rng(rng), planted=cfg["planted"], real_dim=cfg["real_dim"]
        )
        obj_rows, obj_records = _objective_section(
            problems, cfg["seeds"], cfg["steps"], say, rng=rng
        )
        time_rows, ratio_rows, time_records = _solve_time_section(
            cfg["time_d"], cfg["time_n"], cfg["ratio_at"], cfg["time_limit"], say, rng=rng
        )
        q_rows, q_large = _quantized_section(
            cfg["quant_d"], cfg["quant_n"], cfg["quant_large_d"], cfg["quant_large_n"], say, rng=rng
        )
    speed = _speedups(ratio_rows, time_records, cfg["ratio_at"])
    return BenchResult(
        name="convex",
        title="Convex training: SDP vs backprop, solver scaling, quantized networks",
        headline=_headline(obj_records, speed, q_rows, cfg["seeds"], quick),
        status=_status(obj_records, speed, quick),
        tables=_tables(obj_rows, time_rows, ratio_rows, q_rows, q_large, cfg),
        figures=optional_figures(_figures, obj_records, time_records),
        data={
            "objective": obj_records,
            "solve_time": time_records,
            "speedup": speed,
            "quantized": [list(r) for r in q_rows],
            "quantized_large": [list(r) for r in q_large],
            "config": cfg,
            "seconds": time.perf_counter() - t_start,
        },
        mode="wall clock, local machine, 1 BLAS / torch thread",
    )


def _status(obj_records, speed, quick: bool) -> str:
    """Goals (full size): the SDP network beats backprop everywhere and the first-order
    solver is >= 5x faster than SCS at the main size."""
    if quick:
        return NOT_CHECKED
    met = all(r["sdp_le_best"] for r in obj_records) and (speed["main"] or 0.0) >= 5.0
    return MET if met else NOT_MET


def _headline(obj_records, speed, q_rows, seeds, quick: bool = False) -> str:
    ok = sum(r["sdp_le_best"] for r in obj_records)
    worst = max(_rel(max(r["adam"]["objectives"]), r["sdp_network"]) for r in obj_records)
    parts = [
        f"SDP objective <= best of {seeds} Adam/SGD runs on {ok}/{len(obj_records)} "
        f"problems (worst Adam run {100 * worst:.2g}% above)"
    ]
    where = f"d={speed['d']}, n={speed['n']}"
    if speed["main"] is not None:
        acc = (
            f", {speed['at_accuracy']:.2g}x to {TARGET_ACCURACY:g} relative accuracy"
            if speed["at_accuracy"] is not None
            else ""
        )
        parts.append(
            f"first-order speed-up over SCS (SCS s / first-order s) at {where}: "
            f"{speed['main']:.2g}x at eps 1e-6 / tol 1e-7{acc} "
            + (
                "(quick size; the >= 5x goal is checked at full size, d={}, n={})".format(
                    *CONFIG[False]["ratio_at"]
                )
                if quick
                else f"(goal >= 5x: {'met' if speed['main'] >= 5 else 'not met'})"
            )
        )
    else:
        parts.append(f"first-order speed-up over SCS at {where}: not measured")
    if q_rows:
        parts.append(
            f"quantized rounding <= {max(r[6] for r in q_rows):.2g}% above the "
            f"exhaustive optimum (d <= {max(r[0] for r in q_rows)})"
        )
    return "; ".join(parts)


def _tables(obj_rows, time_rows, ratio_rows, q_rows, q_large, cfg) -> tuple[Table, ...]:
    tables = [
        Table(
            "Training objective: SDP network (Clarabel, decomposed) vs backprop on the same "
            "objective",
            (
                "problem",
                "n",
                "d",
                "loss",
                "beta",
                "SDP objective",
                "SDP s",
                "Adam best",
                "Adam median",
                "Adam worst",
                "SGD best",
                "SGD median",
                "SGD worst",
                "(best backprop - SDP)/SDP",
                "SDP <= best backprop?",
                "test metric",
                "SDP test",
                "best Adam test",
                "Adam s/run",
            ),
            tuple(obj_rows),
            note=f"objective = sum loss + beta sum |alpha_j|, ||u_j|| = 1, sigma = least-squares "
            f"ReLU fit 15/32 t^2 + t/2 + 3/32; backprop: width 2(d+1), {cfg['seeds']} seeds, "
            f"{cfg['steps']} full-batch steps, u_j = w_j/||w_j||, best iterate; learning rate "
            f"from a grid (Adam {ADAM_LRS}, SGD {SGD_LR_TIMES_N}/n with momentum "
            f"{SGD_MOMENTUM}) by a separate seed; 'yes' allows 1e-6 relative (solver "
            "tolerance); 75/25 stratified split, standardised, rows scaled to mean norm 1.",
        ),
        Table(
            "Solve time: Clarabel vs SCS vs first-order (squared loss, planted data, beta 0.1)",
            (
                "n",
                "d",
                "solver",
                "tolerance",
                "status",
                "seconds",
                "objective",
                "rel. error",
                "network rel. error",
                "reference",
            ),
            tuple(time_rows),
            note="seconds: wall time of solve_poly_sdp (CVXPY build + solve for the conic "
            "solvers; the fastest of 2 calls when under 2 s); rel. error of the reported "
            "objective and of the decomposed network's objective vs the reference (Clarabel "
            "when it solved, else the lowest network objective); per-solve time limit "
            f"{cfg['time_limit']:.0f} s; a solver is skipped at sizes >= one that took "
            f"> {SKIP_AFTER_S:.0f} s, or where its time extrapolated from a smaller size "
            f"(x n, x (d+1)^p, p = {COST_EXPONENT}) exceeds the limit; conic solvers are "
            f"skipped above n (d+1)^2 = {MAX_CONIC_FEATURES:.0e} (dense CVXPY features).",
        ),
    ]
    if ratio_rows:
        d, n = cfg["ratio_at"]
        tables.append(
            Table(
                f"Time to {TARGET_ACCURACY:g} relative accuracy at d={d}, n={n}",
                (
                    "solver",
                    "tolerance",
                    "status",
                    "seconds",
                    "rel. error",
                    "network rel. error",
                    f"within {TARGET_ACCURACY:g}?",
                ),
                tuple(ratio_rows),
            )
        )
    tables.append(
        Table(
            "Quantized (sign) first layer: SDP bound vs rounding vs exhaustive optimum",
            (
                "d",
                "n",
                "SDP lower bound",
                "rounded objective",
                "rounded width",
                "exhaustive optimum",
                "rounded % above optimum",
                "certified gap %",
                "optimum % above bound",
                "SDP s",
                "rounding s",
                "exhaustive s",
            ),
            tuple(q_rows),
            note="sigma(t) = t^2 + t/2, beta 0.1, squared loss, teacher with 3 sign neurons; "
            "rounding: 2000 arcsine-corrected Gaussian sign samples per matrix + convex refit; "
            "certified gap = (rounded - bound) / rounded.",
        )
    )
    if q_large:
        tables.append(
            Table(
                "Quantized, larger d: rounded SDP vs sign backprop (straight-through estimator)",
                (
                    "d",
                    "n",
                    "SDP lower bound",
                    "rounded",
                    "rounded width",
                    "rounded top-2(d+1)",
                    "STE width",
                    "STE objective",
                    "STE + refit",
                    "rounded gap %",
                    "top-2(d+1) gap %",
                    "STE + refit gap %",
                ),
                tuple(q_large),
                note="gaps relative to the SDP lower bound; STE: Adam, 3000 steps, width 2(d+1); "
                "'+ refit': convex refit of the output weights over its neurons.",
            )
        )
    return tuple(tables)


def _figures(obj_records, time_records):
    plt = pyplot()
    fig1, ax = plt.subplots(figsize=(7, 4))
    names = [r["short"] for r in obj_records]
    x = np.arange(len(obj_records))
    for k, (opt, color) in enumerate((("adam", "C0"), ("sgd", "C1"))):
        ex = [
            np.maximum(np.array(r[opt]["objectives"]) / r["sdp_network"] - 1.0, 1e-9)
            for r in obj_records
        ]
        med = np.array([np.median(e) for e in ex])
        low = med - np.array([e.min() for e in ex])
        high = np.array([e.max() for e in ex]) - med
        ax.bar(
            x + (k - 0.5) * 0.35,
            med,
            0.35,
            yerr=[low, high],
            color=color,
            capsize=3,
            label=f"{opt} (median, best..worst)",
        )
    ax.set_yscale("log")
    ax.set_xticks(x)
    ax.set_xticklabels(names, fontsize=7)
    ax.set_ylabel("(backprop objective - SDP) / SDP  (floor 1e-9)")
    ax.set_title("Backprop vs the SDP's global optimum (same objective)")
    ax.legend(fontsize=7)
    fig1.tight_layout()

    fig2, ax = plt.subplots(figsize=(6.5, 4))
    colors = {"clarabel": "C0", "scs": "C1", "first-order": "C2", "first-order-cuda": "C3"}
    ns = sorted({r["n"] for r in time_records})
    lines = ("-", "--", ":", "-.")
    for solver, color in colors.items():
        for i, n in enumerate(ns):
            pts = sorted(
                (r["d"], r["seconds"])
                for r in time_records
                if r["solver"] == solver and r["n"] == n and r["objective"] is not None
            )
            if pts:
                ax.plot(*zip(*pts, strict=True), marker="o", ms=4, ls=lines[i % len(lines)],
                        color=color, label=f"{solver}, n={n}")  # fmt: skip
    ds = sorted({r["d"] for r in time_records})
    ax.set_xscale("log")
    ax.set_xticks(ds, [str(d) for d in ds])
    ax.minorticks_off()
    ax.set_yscale("log")
    ax.set_xlabel("d")
    ax.set_ylabel("wall seconds")
    ax.set_title("Solve time vs d")
    ax.legend(fontsize=7)
    fig2.tight_layout()
    return {"objective": fig1, "solve_time": fig2}


def main(argv: list[str] | None = None) -> BenchResult:
    return bench_main(run, RESULTS, title=REPORT_TITLE, argv=argv)


if __name__ == "__main__":
    main()
