"""First-order SDP solver on CPU vs GPU (and SCS when CVXPY is installed), same problems.

Conditional gradient with a certified gap (``frugalml.convex.first_order_sdp``) on the planted
squared-loss problems of ``bench_convex.py`` (beta 0.1), tolerance 1e-4 and 1e-6, on the CPU
(one torch thread) and on CUDA when torch sees a GPU; SCS (eps 1e-4) beside them when CVXPY is
importable. Usage: ``python benchmarks/bench_convex_gpu.py [--sizes 100x1000,200x5000]
[--no-scs] [--time-limit S] [--out DIR]``. Writes DIR/convex_gpu.json and convex_gpu_time.png
(DIR: benchmarks/results) and prints the table. A script only, not a report area.
"""

from __future__ import annotations

import argparse
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from bench_convex import planted_problem, relu_activation
from frugalml._threads import limit_blas_threads
from frugalml.report.output import optional_figures, pyplot, rich_table, save_result
from frugalml.report.results import BenchResult, Table, machine_info

RESULTS = Path(__file__).resolve().parent / "results"


def _devices() -> list[str]:
    import torch

    return ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


def _scs(X, y, act, eps):
    try:
        from frugalml._highs import before_highspy

        before_highspy()
        from frugalml.convex import solve_poly_sdp

        t0 = time.perf_counter()
        sol = solve_poly_sdp(X, y, activation=act, beta=0.1, solver="scs", eps=eps)
        return time.perf_counter() - t0, sol.objective, sol.status
    except ImportError:
        return None, None, "cvxpy not installed"


def main(argv: list[str] | None = None) -> BenchResult:
    from rich.console import Console

    from frugalml.convex.first_order import first_order_sdp

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="100x1000,200x1000,200x5000", help="d x n, comma list")
    parser.add_argument("--no-scs", action="store_true", help="skip SCS")
    parser.add_argument("--time-limit", type=float, default=120.0, help="seconds per solve")
    parser.add_argument("--out", type=Path, default=RESULTS, help="directory for JSON + PNG")
    args = parser.parse_args(argv)
    limit_blas_threads(1)
    sizes = [tuple(int(v) for v in s.split("x")) for s in args.sizes.split(",")]
    act = relu_activation()
    rows, records = [], []
    for d, n in sizes:
        X, y = planted_problem(n, d, np.random.default_rng([0, n, d]))
        for dev in _devices():
            for tol in (1e-4, 1e-6):
                first_order_sdp(X[:50], y[:50], a=act.a, b=act.b, c=act.c, beta=0.1, device=dev)
                res = first_order_sdp(
                    X,
                    y,
                    a=act.a,
                    b=act.b,
                    c=act.c,
                    beta=0.1,
                    tol=tol,
                    device=dev,
                    time_limit=args.time_limit,
                )
                rec = dict(
                    d=d,
                    n=n,
                    solver=f"first-order ({dev})",
                    tol=tol,
                    seconds=res.seconds,
                    objective=res.objective,
                    gap=res.gap,
                    iterations=res.iterations,
                    status=("certified" if res.converged else "not converged"),
                )
                records.append(rec)
                print({k: rec[k] for k in ("d", "n", "solver", "tol", "seconds")}, flush=True)
        if not args.no_scs:
            sec, obj, status = _scs(X, y, act, 1e-4)
            records.append(
                dict(
                    d=d,
                    n=n,
                    solver="scs (cpu)",
                    tol=1e-4,
                    seconds=sec,
                    objective=obj,
                    gap=None,
                    iterations=None,
                    status=status,
                )
            )
    best = {}
    for r in records:
        if r["objective"] is not None:
            key = (r["d"], r["n"])
            best[key] = min(best.get(key, np.inf), r["objective"])
    for r in records:
        ref = best.get((r["d"], r["n"]))
        r["rel_to_best"] = None if r["objective"] is None else (r["objective"] - ref) / abs(ref)
        rows.append(
            (
                r["d"],
                r["n"],
                r["solver"],
                r["tol"],
                r["status"],
                r["seconds"],
                r["objective"],
                r["rel_to_best"],
                r["gap"],
            )
        )
    table = Table(
        title="First-order SDP solver: CPU vs GPU (and SCS)",
        columns=(
            "d",
            "n",
            "solver",
            "tol",
            "status",
            "seconds",
            "objective",
            "rel. to best",
            "certified gap",
        ),
        rows=tuple(rows),
        note="planted squared-loss problems, beta 0.1; first-order tol = certified relative gap; "
        "SCS eps 1e-4; one torch/BLAS thread on the CPU",
    )
    result = BenchResult(
        name="convex_gpu",
        title=table.title,
        headline=f"{len(records)} solves on {', '.join(_devices())}",
        tables=(table,),
        figures=optional_figures(_figures, records, sizes),
        data={"records": records},
        mode="wall clock, one torch thread on the CPU",
    )
    result = replace(result, machine=machine_info())
    console = Console(width=140)
    console.print(rich_table(table))
    args.out.mkdir(parents=True, exist_ok=True)
    written = save_result(result, args.out)
    console.print("wrote " + ", ".join(str(p) for p in written.values()))
    return result


def _figures(records, sizes):
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6.5, 4))
    labels = [f"d={d}\nn={n}" for d, n in sizes]
    solvers = sorted({r["solver"] for r in records})
    for i, s in enumerate(solvers):
        secs = [
            next(
                (
                    r["seconds"] or np.nan
                    for r in records
                    if r["solver"] == s and (r["d"], r["n"]) == dn and r["tol"] == 1e-4
                ),
                np.nan,
            )
            for dn in sizes
        ]
        ax.bar(np.arange(len(sizes)) + 0.8 * i / len(solvers), secs, 0.8 / len(solvers), label=s)
    ax.set_xticks(np.arange(len(sizes)) + 0.4 - 0.4 / len(solvers), labels)
    ax.set_yscale("log")
    ax.set_ylabel("seconds to 1e-4")
    ax.legend()
    fig.tight_layout()
    return {"time": fig}


if __name__ == "__main__":
    main()
