"""How the MOCCASIN pipeline scales to graphs of 1000-5000 nodes (issue 25, item 3).

Every schedule is scored by :func:`frugalml.remat.evaluate_schedule`; budgets are fractions of
the plain topological order's peak; ``threads`` CP-SAT workers, BLAS pools at one thread.

1. The published 1000-node random layered graph at 80%: ``moccasin`` (its warm start now runs
   the eviction rules and the peak-repair local search), beside the old warm start
   (``greedy_schedule``) in the same run.
2. The published ResNet-50 training graph at 90/80/70/60%: ``budget_sweep`` in one time limit,
   and, for comparison, independent ``moccasin`` solves sharing the same total time; the costs
   must be non-increasing in the budget.
3. Graphs of 3000-5000 nodes at 100/90/80/70/60/50% and the least feasible budget
   (``budget_sweep``, one total time limit): a 24-layer transformer training graph traced from
   PyTorch (4338 nodes, if torch is installed) and ``random_layered_graph(3000, rng=0)``; with
   ``min_feasible_budget`` (the bound any schedule obeys) and ``lowest_schedulable_budget``
   (the least budget the heuristics reach).

Usage: python benchmarks/remat_scaling.py [--time-limit 60] [--threads 2] [--out DIR]
Writes DIR/remat_scaling.json (DIR: benchmarks/results) and prints the numbers.
"""

from __future__ import annotations

import argparse
import itertools
import json
import time
from pathlib import Path
from typing import Any

from threadpoolctl import threadpool_limits

from _common import RESULTS, shared_data
from frugalml._io import atomic_write_text
from frugalml.remat import RematGraph, load_graph, plain_peak, random_layered_graph
from frugalml.remat.greedy import greedy_schedule
from frugalml.remat.moccasin import moccasin
from frugalml.remat.solution import RematSolution, resolve_budget
from frugalml.remat.sweep import budget_sweep, lowest_schedulable_budget, min_feasible_budget
from frugalml.report.results import machine_info

GRAPHS = shared_data("remat-graphs")
RANDOM_1000 = "random_layered_n1000_w0.31_nlv0.75_ed0.2_scd0.14.json"
RESNET = "ResNet50_256_224_224_3_train.json"
LARGE_BUDGETS: list[float | str] = [1.0, 0.9, 0.8, 0.7, 0.6, 0.5, "min"]


def row(graph: RematGraph, budget: Any, sol: RematSolution) -> dict[str, Any]:
    r = sol.report
    return {
        "budget": budget,
        "budget_bytes": sol.budget,
        "budget_fraction": sol.budget / plain_peak(graph),
        "status": sol.status,
        "overhead": None if r is None else r.overhead,
        "total_cost": None if r is None else r.total_cost,
        "peak_fraction": None if r is None else r.peak_memory / plain_peak(graph),
        "recomputations": None if r is None else r.recomputations,
        "seconds": sol.solve_seconds,
        "source": sol.info.get("source", sol.info.get("phase1")),
    }


def monotone(rows: list[dict[str, Any]]) -> bool:
    pairs = sorted((x["budget_bytes"], x["total_cost"]) for x in rows if x["total_cost"])
    return all(b[1] <= a[1] + 1e-9 for a, b in itertools.pairwise(pairs))


def show(title: str, rows: list[dict[str, Any]]) -> None:
    print(f"\n{title}")
    for x in rows:
        ov = "no schedule" if x["overhead"] is None else f"+{100 * x['overhead']:.2f}%"
        print(f"  {x['budget']!s:>5} ({100 * x['budget_fraction']:.1f}%): {x['status']:<10} "
              f"{ov:<12} recomputations {x['recomputations']}, from {x['source']}")  # fmt: skip


def random_1000(time_limit: float, threads: int) -> dict[str, Any]:
    g = load_graph(GRAPHS / RANDOM_1000)
    b = resolve_budget(g, 0.8)
    old = greedy_schedule(g, b)  # the warm start before issue 25
    t0 = time.perf_counter()
    sol = moccasin(g, b, time_limit=time_limit, threads=threads)
    out = {
        "graph": g.subgraph_info(),
        "time_limit": time_limit,
        "old_warm_start_found_schedule": old is not None,
        "moccasin": row(g, 0.8, sol),
        "seconds_to_first_schedule": sol.trace[0][0] if sol.trace else None,
        "seconds_to_best": sol.seconds_to_best,
        "bound": sol.bound,
        "wall_seconds": time.perf_counter() - t0,
    }
    show(f"{g.name} at 80%, moccasin {time_limit:g} s (old warm start: "
         f"{'a schedule' if old is not None else 'none'})", [out["moccasin"]])  # fmt: skip
    print(f"  first schedule after {out['seconds_to_first_schedule']:.2f} s")
    return out


def resnet(time_limit: float, threads: int) -> dict[str, Any]:
    g = load_graph(GRAPHS / RESNET)
    budgets = [0.9, 0.8, 0.7, 0.6]
    t0 = time.perf_counter()
    sweep = budget_sweep(g, budgets, time_limit=time_limit, threads=threads)
    sweep_s = time.perf_counter() - t0
    rows = [row(g, b, s) for b, s in zip(budgets, sweep, strict=True)]
    show(f"{g.name}: budget_sweep, {time_limit:g} s in all ({sweep_s:.1f} s used)", rows)
    alone = []
    for b in budgets:
        sol = moccasin(g, resolve_budget(g, b), time_limit=time_limit / len(budgets),
                       threads=threads)  # fmt: skip
        alone.append(row(g, b, sol))
    show(f"{g.name}: independent moccasin solves, {time_limit / len(budgets):g} s each", alone)
    print(f"  monotone: sweep {monotone(rows)}, independent {monotone(alone)}")
    return {"graph": g.subgraph_info(), "time_limit": time_limit, "sweep_seconds": sweep_s,
            "sweep": rows, "sweep_monotone": monotone(rows), "independent": alone,
            "independent_monotone": monotone(alone)}  # fmt: skip


def transformer_graph() -> RematGraph | None:
    try:
        from frugalml.remat import extract_graph, transformer_encoder

        model, inputs, loss = transformer_encoder(layers=24, d_model=64)
        return extract_graph(model, loss, inputs, num_model_inputs=1, name="transformer24").graph
    except Exception as exc:  # torch missing: the random graph alone
        print(f"(no transformer graph: {exc})")
        return None


def large(graph: RematGraph, time_limit: float, threads: int) -> dict[str, Any]:
    t0 = time.perf_counter()
    sols = budget_sweep(graph, LARGE_BUDGETS, time_limit=time_limit, threads=threads)
    sweep_s = time.perf_counter() - t0
    rows = [row(graph, b, s) for b, s in zip(LARGE_BUDGETS, sols, strict=True)]
    show(f"{graph.name} ({graph.n} nodes, {graph.n_edges} edges): budget_sweep, "
         f"{time_limit:g} s in all ({sweep_s:.1f} s used)", rows)  # fmt: skip
    lowest, _ = lowest_schedulable_budget(graph, time_limit=20.0)
    plain = plain_peak(graph)
    least = min_feasible_budget(graph)
    print(
        f"  min_feasible_budget {least} ({100 * least / plain:.1f}%), lowest schedulable "
        f"{lowest} ({100 * lowest / plain:.1f}%), monotone {monotone(rows)}"
    )
    return {"graph": graph.subgraph_info(), "time_limit": time_limit, "sweep_seconds": sweep_s,
            "sweep": rows, "monotone": monotone(rows), "min_feasible_budget": least,
            "lowest_schedulable_budget": lowest,
            "lowest_schedulable_fraction": lowest / plain}  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--time-limit", type=float, default=60.0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", type=Path, default=RESULTS)
    args = ap.parse_args()
    out: dict[str, Any] = {"machine": machine_info(), "threads": args.threads}
    with threadpool_limits(1):
        out["random_1000_at_80"] = random_1000(args.time_limit, args.threads)
        out["resnet50"] = resnet(args.time_limit, args.threads)
        out["large"] = []
        tf = transformer_graph()
        for g in [x for x in (tf, random_layered_graph(3000, rng=0)) if x is not None]:
            out["large"].append(large(g, args.time_limit, args.threads))
    args.out.mkdir(parents=True, exist_ok=True)
    path = atomic_write_text(args.out / "remat_scaling.json", json.dumps(out, indent=1))
    print(f"\nwrote {path}")


if __name__ == "__main__":
    main()
