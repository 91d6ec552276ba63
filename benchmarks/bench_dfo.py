"""Coded derivative-free optimisation benchmark (Bartan & Pilanci, arXiv 1907.05984).

Sections (all methods compared in the same run, same seeds):
1. Gradient-estimate quality: cosine to the exact gradient vs the fraction of stragglers
   (erased workers), N = 64, K = 32 coded directions, for K ~ d (d = 32) and K << d
   (d = 256): coded (polar SC, polar least squares, Gaussian MDS) vs plain ES that waits for
   all, ES that drops stragglers, structured (orthogonal) ES waiting for all / dropping.
2. Optimisation: iterations, evaluations and simulated time to a target loss on a quadratic,
   a logistic-regression loss and Rosenbrock with N = 64 workers and heavy stragglers
   (bimodal: 20% of workers 10x slower), simulated clock.
3. Black-box l_inf attack on in-house CNNs (digits 8x8, MNIST-1D): success rate, queries and
   time-to-success of coded ES vs uncoded ES (wait for all, drop, structured) and random
   signs at equal function evaluations per iteration, simulated clock N = 64, 256; plus a
   real run on the local thread pool with injected (slept) straggler delays, wall clock.

Usage: python benchmarks/bench_dfo.py [--quick | --tiny] [--out DIR]
Writes DIR/dfo.json and dfo_*.png (DIR: benchmarks/results) and prints the tables. Report area
``coded-es`` (``dfo`` in frugalml 0.1).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np

from frugalml.coded.dfo import (
    CodedDirections,
    CodedES,
    DropStragglersES,
    LogisticLoss,
    Quadratic,
    Rosenbrock,
    StructuredES,
    WaitAllES,
    evaluate_differences,
)
from frugalml.progress import Progress
from frugalml.report.output import optional_figures, pyplot
from frugalml.report.results import MET, NOT_CHECKED, NOT_MET, BenchResult, Table
from frugalml.report.script import bench_main
from frugalml.runtime import BimodalStragglers, FaultInjector, ShiftedExponential, make_executor

__all__ = ["REPORT_AREA", "REPORT_TITLE", "main", "run"]

REPORT_AREA = "coded-es"
REPORT_TITLE = "Coded derivative-free optimisation and attacks"
RESULTS = Path(__file__).resolve().parent / "results"

HEAVY = BimodalStragglers(ShiftedExponential(1.0, 1.0), p_slow=0.2, slowdown=10.0)
FRACTIONS = (0.0, 0.1, 0.2, 0.3, 0.5)
N = 64
K = 32

# name -> (code, directions, decoder, waits for all)
ESTIMATORS: dict[str, tuple[str, str, str, bool]] = {
    "coded polar (SC)": ("polar", "orthogonal", "sc", False),
    "coded polar (lstsq)": ("polar", "orthogonal", "lstsq", False),
    "coded MDS": ("mds", "orthogonal", "sc", False),
    "ES wait-all (gaussian)": ("none", "gaussian", "sc", True),
    "ES drop stragglers (gaussian)": ("none", "gaussian", "sc", False),
    "structured ES wait-all": ("none", "orthogonal", "sc", True),
    "structured ES drop": ("none", "orthogonal", "sc", False),
}


def _cos(a: np.ndarray, b: np.ndarray) -> float:
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b) + 1e-300))


def _cosine(trials: int, gen: np.random.Generator) -> tuple[list[tuple], dict[str, Any]]:
    rows, curves = [], {}
    for d in (32, 256):
        regime = "K ~ d" if d == K else "K << d"
        for fname, f, sigma in (
            ("quadratic", Quadratic(d, condition=10.0, rng=gen), 1e-3),
            ("logistic", LogisticLoss(d, 500, rng=gen), 1e-4),
        ):
            x = f.x0 + 0.5 * gen.standard_normal(d)
            g = f.gradient(x)
            for name, (code, dirs, decoder, wait_all) in ESTIMATORS.items():
                k = K if code != "none" else N
                coders = [
                    CodedDirections(d, k, N, code=code, directions=dirs, decoder=decoder, rng=gen)
                    for _ in range(2)
                ]
                means = []
                for p in FRACTIONS:
                    cos, exact, used = [], [], []
                    for t in range(trials):
                        coder = coders[t % 2]
                        v, w = coder.draw()
                        vals = evaluate_differences(f, x, w, sigma, batched=True)
                        mask = np.ones(N, dtype=bool)
                        if not wait_all:
                            mask[gen.choice(N, round(p * N), replace=False)] = False
                        est = coder.estimate(vals, mask, v)
                        cos.append(_cos(est.gradient, g))
                        exact.append(est.exact)
                        used.append(est.n_arrived)
                    means.append(float(np.mean(cos)))
                    rows.append((regime, d, fname, name, p, means[-1], float(np.min(cos)),
                                 float(np.mean(exact)), float(np.mean(used)),
                                 "yes" if wait_all else "no"))  # fmt: skip
                curves[f"{regime}/{fname}/{name}"] = means
    return rows, curves


def _make(method: str, f: Any, seed: int, kw: dict[str, Any]) -> CodedES:
    common = dict(n_workers=N, stragglers=HEAVY, batched=True, rng=seed, **kw)
    k = min(f.dim, K)
    if method == "coded polar":
        return CodedES(f, f.x0, code="polar", n_directions=k, **common)
    if method == "coded MDS":
        return CodedES(f, f.x0, code="mds", n_directions=k, **common)
    if method == "ES wait-all":
        return WaitAllES(f, f.x0, **common)
    if method == "ES drop (first 48)":
        return DropStragglersES(f, f.x0, n_wait=48, **common)
    return StructuredES(f, f.x0, **common)


OPT_METHODS = ("coded polar", "coded MDS", "ES wait-all", "ES drop (first 48)", "structured ES")


def _optimisation(seeds: int, quick: bool) -> tuple[list[tuple], dict[str, Any]]:
    problems = [
        ("quadratic d=32", Quadratic(32, condition=10.0, rng=0), dict(step=0.1, sigma=1e-4),
         1e-4, 1000),
        ("logistic d=32", LogisticLoss(32, 500, rng=0), dict(step=2.0, sigma=1e-4), 1e-4, 1000),
        ("rosenbrock d=8", Rosenbrock(8), dict(step=0.1, sigma=1e-4, adam=True),
         1e-2 if quick else 1e-3, 1500),
    ]  # fmt: skip
    rows, traces = [], {}
    for pname, f, kw, rel, max_iter in problems:
        f0 = f(f.x0)
        target = f.f_star + rel * (f0 - f.f_star)
        ref_time = None
        for method in OPT_METHODS:
            its, times, evals, walls, reached = [], [], [], [], 0
            for seed in range(seeds):
                res = _make(method, f, seed, kw).run(max_iter, target=target)
                walls.append(res.total_wall_seconds)
                t = res.iterations_to(target)
                if t is not None:
                    reached += 1
                    its.append(t)
                    times.append(res.time_to(target))
                    evals.append(res.evaluations_to(target))
                if seed == 0 and pname.startswith("quadratic"):
                    traces[method] = (np.cumsum(res.sim_seconds).tolist(), res.losses[1:].tolist())
            med_t = float(np.median(times)) if times else float("inf")
            if method == "ES wait-all":
                ref_time = med_t
            rows.append([pname, method, f"{reached}/{seeds}",
                         float(np.median(its)) if its else float("nan"),
                         float(np.median(evals)) if evals else float("nan"), med_t,
                         float(np.median(walls))])  # fmt: skip
        for r in rows[-len(OPT_METHODS) :]:
            r.append(ref_time / r[5] if np.isfinite(r[5]) and ref_time is not None else 0.0)
    return [tuple(r) for r in rows], traces


ATTACK_METHODS = ("coded", "wait-all", "drop", "structured", "random")


def _attack_sim(
    ns, n_examples, gen_seed, epochs: int | None = None, datasets=("digits", "mnist1d")
) -> tuple[list[tuple], dict[str, float]]:
    from frugalml.coded.dfo.attack import run_attack, train_classifier

    rows, ratios = [], {}
    eps_of = {"digits": 0.15, "mnist1d": 0.25}
    for dataset, eps in ((d, eps_of[d]) for d in datasets):
        clf = train_classifier(dataset, epochs=epochs)
        for n in ns:
            kw = dict(n_examples=n_examples, eps=eps, n_workers=n, max_iter=20, stragglers=HEAVY)
            res = {m: run_attack(clf, method=m, rng=gen_seed, **kw) for m in ATTACK_METHODS}
            wait = res["wait-all"]
            for m, r in res.items():
                both = r.success & wait.success
                ratio = (
                    float(wait.sim_seconds[both].mean() / r.sim_seconds[both].mean())
                    if both.any() and r.sim_seconds[both].mean() > 0
                    else float("nan")
                )
                if m == "coded":
                    ratios[f"{dataset}/N={n}"] = ratio
                rows.append((dataset, f"{clf.test_accuracy:.3f}", eps, n, m,
                             r.n_directions, r.success_rate, r.mean_queries_success,
                             r.mean_sim_seconds_success, ratio,
                             float(r.wall_seconds.sum())))  # fmt: skip
    return rows, ratios


def _attack_real(n_examples: int, epochs: int | None = None) -> list[tuple]:
    """Wall clock: thread pool of 4N threads (cancelled stragglers keep sleeping without
    blocking the next round), delays 0.02 s + Exp(0.01 s), 20% of them 10x slower."""
    import torch

    from frugalml.coded.dfo.attack import run_attack, train_classifier

    torch.set_num_threads(1)
    clf = train_classifier("digits", epochs=epochs)
    model = BimodalStragglers(ShiftedExponential(0.02, 100.0), p_slow=0.2, slowdown=10.0)
    n = 32
    rows = []
    for method in ("coded", "wait-all", "drop"):
        with make_executor("local-thread", workers=4 * n) as ex:
            ex.gather([ex.submit(time.sleep, 0.01) for _ in range(4 * n)], deadline=60)
            inj = FaultInjector(ex, stragglers=model, clock="wall", rng=11)
            r = run_attack(clf, method=method, n_examples=n_examples, eps=0.15, n_workers=n,
                           max_iter=10, executor=inj, rng=3)  # fmt: skip
        rows.append(("digits", "local-thread (wall clock)", n, method, r.success_rate,
                     r.mean_queries_success, r.mean_wall_seconds_success,
                     float(r.wall_seconds.sum())))  # fmt: skip
    return rows


def run(
    *, quick: bool = True, progress: Progress | None = None, rng: int = 0, tiny: bool = False
) -> BenchResult:
    """Quick: the report's sizes; tiny (the smoke test): one trial per cell, classifiers
    trained for 2 epochs, attacks on one digits example at N = 16."""
    gen = np.random.default_rng(rng)
    say = progress or (lambda s, f: None)
    quick = quick or tiny
    say("gradient estimates vs stragglers", 0.0)
    cos_rows, curves = _cosine(1 if tiny else 6 if quick else 40, gen)
    say("optimisation on the simulated clock", 0.3)
    opt_rows, traces = _optimisation(1 if quick else 3, quick)
    say("attacks, simulated clock", 0.6)
    if tiny:
        att_rows, ratios = _attack_sim((16,), 1, rng, epochs=2, datasets=("digits",))
    else:
        att_rows, ratios = _attack_sim((64,) if quick else (64, 256), 6 if quick else 24, rng)
    say("attack, real run", 0.9)
    real_rows = _attack_real(1, epochs=2) if tiny else _attack_real(3 if quick else 8)

    def _get(regime, fname, name, p):
        return next(r[5] for r in cos_rows
                    if r[0] == regime and r[2] == fname and r[3] == name and r[4] == p)  # fmt: skip

    polar20 = _get("K ~ d", "quadratic", "coded polar (SC)", 0.2)
    mds20 = _get("K ~ d", "quadratic", "coded MDS", 0.2)
    drop20 = _get("K ~ d", "quadratic", "ES drop stragglers (gaussian)", 0.2)
    sdrop20 = _get("K ~ d", "quadratic", "structured ES drop", 0.2)
    ratio = ratios.get("digits/N=64", float("nan"))
    headline = (
        f"K~d, 20% stragglers: coded cosine polar {polar20:.4f} / MDS {mds20:.4f} vs drop "
        f"{drop20:.3f} (structured drop {sdrop20:.3f}); attack time-to-success coded vs "
        f"wait-all {ratio:.1f}x (digits, N=64, heavy stragglers)"
    )
    # goals: coded cosine >= 0.999 at K ~ d with 20% stragglers; attack time gain >= 2x
    if quick:
        status = NOT_CHECKED
        headline = f"quick size: {headline}; goals (cosine >= 0.999, >= 2x) checked at full size"
    else:
        status = MET if min(polar20, mds20) >= 0.999 and ratio >= 2.0 else NOT_MET
    tables = (
        Table(
            "Gradient estimate: cosine to the exact gradient vs straggler fraction (N=64)",
            (
                "regime",
                "d",
                "function",
                "method",
                "stragglers",
                "mean cos",
                "min cos",
                "exact frac",
                "arrivals used",
                "waits for all",
            ),
            tuple(cos_rows),
            note="K = 32 coded directions; uncoded baselines use N = 64 directions, one per "
            "worker. Stragglers: a uniformly random subset of round(p N) workers is erased; "
            "the wait-all rows use every worker (paying the straggler latency, see the next "
            "table). Goal: cosine >= 0.999 at K ~ d with 20% stragglers.",
        ),
        Table(
            "Optimisation to a target loss, N=64, heavy stragglers (simulated clock, medians)",
            (
                "problem",
                "method",
                "reached",
                "iterations",
                "evaluations",
                "sim time",
                "wall s",
                "time gain vs wait-all",
            ),
            tuple(opt_rows),
            note="Completion times: 1 + Exp(1), 20% of workers 10x slower (bimodal). Target: "
            "f - f* <= 1e-4 (f(x0) - f*) (Rosenbrock 1e-3; 1e-2 in quick mode). Coded: "
            "K = min(d, 32) orthogonal directions; sim time = time until each round's master "
            "stopped waiting.",
        ),
        Table(
            "Black-box l_inf attack, heavy stragglers (simulated clock)",
            (
                "dataset",
                "test acc",
                "eps",
                "N",
                "method",
                "K",
                "success",
                "queries (succ.)",
                "sim time (succ.)",
                "time gain vs wait-all",
                "wall s",
            ),
            tuple(att_rows),
            note="Every ES method spends 2N logit queries per iteration plus one loss check "
            "(equal evaluations per iteration); random: N random +-eps corners per round, "
            "same budget. Time gain on the examples both methods broke. Goal: >= 2x.",
        ),
        Table(
            "Black-box attack, real run on the local thread pool (wall clock)",
            (
                "dataset",
                "executor",
                "N",
                "method",
                "success",
                "queries (succ.)",
                "wall s to success",
                "wall s total",
            ),
            tuple(real_rows),
            note="Injected delays slept on the workers: 0.02 s + Exp(0.01 s), 20% 10x slower.",
        ),
    )
    return BenchResult(
        name="dfo",
        title="Coded derivative-free optimisation and black-box attacks",
        headline=headline,
        status=status,
        tables=tables,
        figures=optional_figures(_figures, curves, traces),
        data={"cosine": curves, "attack_time_gain": ratios},
        mode="simulated clock (estimates, optimisation, attacks), wall clock (real attack run)",
    )


def _figures(curves, traces):
    plt = pyplot()
    fig1, axes = plt.subplots(1, 2, figsize=(10, 3.6), sharey=True)
    for ax, regime in zip(axes, ("K ~ d", "K << d"), strict=True):
        for name in ESTIMATORS:
            ax.plot(FRACTIONS, curves[f"{regime}/quadratic/{name}"], "o-", label=name)
        ax.set_title(f"quadratic, {regime}")
        ax.set_xlabel("straggler fraction")
    axes[0].set_ylabel("cosine to the true gradient")
    axes[1].legend(fontsize=7)
    fig2, ax = plt.subplots(figsize=(6, 3.6))
    for method, (t, loss) in traces.items():
        ax.plot(t, loss, label=method)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("simulated time")
    ax.set_ylabel("f(x) (quadratic d=32)")
    ax.legend(fontsize=7)
    return {"cosine": fig1, "optimisation": fig2}


def main(argv: list[str] | None = None) -> BenchResult:
    return bench_main(run, RESULTS, title=REPORT_TITLE, argv=argv)


if __name__ == "__main__":
    main()
