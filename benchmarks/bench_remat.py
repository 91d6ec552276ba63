"""Rematerialisation benchmark: MOCCASIN vs Checkmate MILP vs LP rounding (the paper's protocol).

Budgets of 90% and 80% of the plain topological order's peak, at most C = 2 computations per
node (MOCCASIN; Checkmate's MILP has no such limit), objective = total compute. Every schedule
is scored by the same evaluator (:func:`frugalml.remat.evaluate_schedule`): % increase in total
compute, peak memory, time to the best schedule, proven optimality. A per-run time limit is
stated in the table. Graphs: ``$FRUGALML_REMAT_GRAPHS``, else ``$FRUGALML_DATA/remat-graphs``,
else ``<checkout>/../shared/data/remat-graphs`` (the MOCCASIN authors' published graphs) when
present, else our own random layered graphs (the table note says which, and names any
published graph that is missing); plus the in-house PyTorch models, extracted, solved and
executed (gradients and measured peak checked).

Usage: python benchmarks/bench_remat.py [--quick | --tiny] [--out DIR]
Writes DIR/remat.json and remat_*.png (DIR: benchmarks/results) and prints the tables.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import numpy as np

from _common import shared_data
from frugalml.errors import InfeasibleError
from frugalml.progress import Progress
from frugalml.remat import RematGraph, load_graph, plain_peak, resolve_budget
from frugalml.remat.generate import random_layered_graph
from frugalml.report.output import optional_figures, pyplot
from frugalml.report.results import NO_GOAL, BenchResult, Table
from frugalml.report.script import bench_main

__all__ = ["GRAPH_DIR", "REPORT_AREA", "REPORT_TITLE", "main", "run"]

REPORT_AREA = "remat"
REPORT_TITLE = "Rematerialisation: MOCCASIN vs Checkmate"
RESULTS = Path(__file__).resolve().parent / "results"

#: the published graphs: $FRUGALML_REMAT_GRAPHS, else the shared data beside the checkout
GRAPH_DIR = Path(os.environ.get("FRUGALML_REMAT_GRAPHS") or shared_data("remat-graphs"))

QUICK = ("VGG16_256_224_224_3_train", "VGG19_256_224_224_3_train",
         "random_layered_n100_w0.27_nlv0.75_ed0.2_scd0.14")  # fmt: skip
FULL = (
    "VGG16_256_224_224_3_train",
    "VGG19_256_224_224_3_train",
    "vgg_unet_32_416_608_3_train",
    "fcn_8_vgg_32_416_608_3_train",
    "segnet_32_416_608_3_train",
    "MobileNet_512_224_224_3_train",
    "ResNet50_256_224_224_3_train",
    "random_layered_n100_w0.27_nlv0.75_ed0.2_scd0.14",
    "random_layered_n250_w0.43_nlv0.75_ed0.2_scd0.14",
    "random_layered_n500_w0.36_nlv0.75_ed0.2_scd0.14",
    "random_layered_n1000_w0.31_nlv0.75_ed0.2_scd0.14",
)
#: the Checkmate MILP has O(n |E|) FREE variables; beyond this many it is not built
MILP_MAX_VARS = 600_000


def _graphs(quick: bool, tiny: bool = False) -> tuple[list[RematGraph], str]:
    """The graphs of the run and a note saying where they came from and what is missing."""
    if tiny:  # the smoke test: two small generated graphs
        return [random_layered_graph(n, rng=n) for n in (24, 30)], "graphs: generated (tiny)"
    names = QUICK if quick else FULL
    if GRAPH_DIR.is_dir():
        missing = [nm for nm in names if not (GRAPH_DIR / f"{nm}.json").exists()]
        graphs = [load_graph(GRAPH_DIR / f"{nm}.json") for nm in names if nm not in missing]
        note = f"graphs: {GRAPH_DIR}"
        if missing:
            note += f"; skipped (not found there): {', '.join(missing)}"
        return graphs, note
    sizes = (60, 100) if quick else (100, 250, 500, 1000)
    note = (
        f"graphs: the published graphs were not found at {GRAPH_DIR} (set "
        "FRUGALML_REMAT_GRAPHS or FRUGALML_DATA), so random layered graphs of "
        f"{', '.join(map(str, sizes))} nodes were generated instead"
    )
    return [random_layered_graph(n, rng=n) for n in sizes], note


def _milp_vars(g: RematGraph) -> int:
    return g.n * g.n + g.n * (g.n_edges + g.n)


def _row(g, frac, name, sol, limit) -> tuple:
    r = sol.report
    return (
        g.name,
        g.n,
        f"{int(frac * 100)}%",
        name,
        sol.status,
        None if r is None else round(100 * r.overhead, 3),
        None if r is None else round(r.peak_memory / plain_peak(g), 4),
        None if sol.seconds_to_best is None else round(sol.seconds_to_best, 2),
        round(sol.solve_seconds, 2),
        limit,
    )


def _checkmate(kind: str, graph: RematGraph, budget: int, time_limit: float):
    """The Checkmate call to run in a child process: highspy (incumbent callbacks, so a true
    time to best) and OR-Tools bundle HiGHS builds that cannot share a process. A partial of
    the library function, so the child imports frugalml only (not this script)."""
    import importlib.util
    from functools import partial

    from frugalml.remat.checkmate import checkmate_lp_rounding, checkmate_milp

    backend = "highspy" if importlib.util.find_spec("highspy") else "scipy"
    solver = checkmate_milp if kind == "milp" else checkmate_lp_rounding
    return partial(solver, graph, budget, time_limit=time_limit, backend=backend)


def _solve_all(graphs, say, limits: dict[str, float]) -> tuple[list[tuple], list[dict]]:
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    from frugalml.remat.greedy import greedy
    from frugalml.remat.moccasin import moccasin

    child = ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn"))
    try:
        return _solve_loop(graphs, say, limits, child, greedy, moccasin)
    finally:
        child.shutdown()


def _solve_loop(graphs, say, limits, child, greedy, moccasin):

    rows, records = [], []
    for gi, g in enumerate(graphs):
        for frac in (0.9, 0.8):
            say(f"{g.name} at {int(frac * 100)}%", 0.05 + 0.8 * (gi / max(len(graphs), 1)))
            try:
                b = resolve_budget(g, frac)
            except InfeasibleError:
                rows.append(
                    (
                        g.name,
                        g.n,
                        f"{int(frac * 100)}%",
                        "all",
                        "below min budget",
                        None,
                        round(g.min_budget / plain_peak(g), 4),
                        None,
                        None,
                        None,
                    )
                )
                continue  # fmt: skip
            runs = [("moccasin", lambda g=g, b=b: moccasin(g, b, time_limit=limits["moccasin"]),
                     limits["moccasin"])]  # fmt: skip
            if _milp_vars(g) <= MILP_MAX_VARS:
                runs.append(("checkmate MILP", lambda g=g, b=b: child.submit(
                    _checkmate("milp", g, b, limits["checkmate"])).result(),
                    limits["checkmate"]))  # fmt: skip
            runs.append(("LP rounding", lambda g=g, b=b: child.submit(
                _checkmate("lp", g, b, limits["lp"])).result(), limits["lp"]))  # fmt: skip
            runs.append(("greedy", lambda g=g, b=b: greedy(g, b), None))
            for name, fn, limit in runs:
                if name == "LP rounding" and _milp_vars(g) > MILP_MAX_VARS:
                    continue
                sol = fn()
                if sol.report is not None and sol.report.peak_memory > b:
                    raise AssertionError(f"{name} returned a schedule over budget on {g.name}")
                rows.append(_row(g, frac, name, sol, limit))
                record = {k: v for k, v in sol.to_dict().items() if k != "schedule"}
                record.update(graph=g.name, n=g.n, budget=frac, solver=name,
                              solver_id=sol.solver)  # fmt: skip
                records.append(record)
            if _milp_vars(g) > MILP_MAX_VARS:
                rows.append((g.name, g.n, f"{int(frac * 100)}%", "checkmate MILP / LP",
                             f"not built: ~{_milp_vars(g):,} variables", None, None, None, None,
                             None))  # fmt: skip
    return rows, records


def _models(quick: bool, say, limit: float, tiny: bool = False) -> list[tuple]:
    from frugalml.remat import plain_peak, solve
    from frugalml.remat.frontend import build_target, check_schedule
    from frugalml.remat.torch_graph import extract_graph
    from frugalml.remat.torch_partitioner import partitioner_schedule

    rows = []
    for name in ("mlp",) if tiny else ("mlp", "resnet", "transformer"):
        say(f"PyTorch {name}", 0.9)
        model, inputs, loss_fn = build_target(name)
        tg = extract_graph(model, loss_fn, inputs)
        peak0 = plain_peak(tg.graph)
        for frac in (0.9, 0.8):
            part = partitioner_schedule(model, loss_fn, inputs, memory_budget=frac)
            theirs = (part.peak_bytes, round(100 * part.overhead, 2))
            label = f"{int(frac * 100)}%"
            try:
                sol = solve(tg.graph, frac, time_limit=limit)
            except InfeasibleError:
                rows.append((name, tg.graph.n, label, peak0, "below min budget", None, None,
                             None, *theirs))  # fmt: skip
                continue
            if sol.schedule is None:
                rows.append((name, tg.graph.n, label, peak0, sol.status, None, None, None,
                             *theirs))  # fmt: skip
                continue
            chk = check_schedule(tg, sol.schedule, model, inputs, loss_fn)
            rows.append((
                name, tg.graph.n, label, peak0, sol.status, chk["measured_peak"],
                round(100 * sol.report.overhead, 2), f"{chk['max_grad_diff']:.1e}", *theirs,
            ))  # fmt: skip
    return rows


def run(
    *, quick: bool = True, progress: Progress | None = None, rng: int = 0, tiny: bool = False
) -> BenchResult:
    """Quick: the report's graphs and 10 s limits; tiny (the smoke test): two generated graphs
    of 24 and 30 nodes, 1 s limits, the MLP only."""
    say = progress or (lambda s, f: None)
    quick = quick or tiny
    limits = (
        {"moccasin": 1.0, "checkmate": 1.0, "lp": 1.0}
        if tiny
        else {"moccasin": 10.0, "checkmate": 10.0, "lp": 10.0}
        if quick
        else {"moccasin": 120.0, "checkmate": 240.0, "lp": 60.0}
    )
    t0 = time.perf_counter()
    graphs, graph_note = _graphs(quick, tiny)
    rows, records = _solve_all(graphs, say, limits)
    model_rows = _models(quick, say, limits["moccasin"], tiny)
    by = {(r["graph"], r["budget"], r["solver"]): r for r in records}
    speed = []
    for (gname, frac, solver), r in by.items():
        if solver != "moccasin":
            continue
        m = by.get((gname, frac, "checkmate MILP"))
        if m and r["status"] == "optimal" and m["status"] == "optimal":
            speed.append((gname, frac, m["solve_seconds"] / max(r["solve_seconds"], 1e-9),
                          r["total_cost"], m["total_cost"]))  # fmt: skip
    same = sum(1 for s in speed if abs(s[3] - s[4]) <= 1e-9 * max(abs(s[4]), 1.0))
    headline = _headline(records, speed, same, limits, quick)
    tables = (
        Table(
            "Rematerialisation at 90% / 80% of the plain order's peak (C = 2 for MOCCASIN)",
            (
                "graph",
                "n",
                "budget",
                "solver",
                "status",
                "compute +%",
                "peak / plain peak",
                "s to best",
                "s total",
                "time limit s",
            ),
            tuple(rows),
            note="all schedules scored by the one evaluator; 2 CPU cores; 'optimal' = proven by "
            "the solver for its own model (MOCCASIN: <= C computations per node at stage "
            f"granularity; MILP: Checkmate's frontier-advancing stages). {graph_note}.",
        ),
        Table(
            "Both proved optimal: MILP seconds / MOCCASIN seconds and costs",
            ("graph", "budget", "MILP/MOCCASIN time", "MOCCASIN cost", "MILP cost"),
            tuple((g, f"{int(f * 100)}%", round(r, 2), c1, c2) for g, f, r, c1, c2 in speed),
        ),
        Table(
            "PyTorch models (float64): extracted joint graph, MOCCASIN schedule executed, "
            "vs PyTorch's min-cut partitioner",
            (
                "model",
                "nodes",
                "budget",
                "plain peak B",
                "MOCCASIN status",
                "MOCCASIN measured peak B",
                "MOCCASIN compute +%",
                "max |grad - autograd|",
                "PyTorch partitioner peak B",
                "partitioner compute +%",
            ),
            tuple(model_rows),
            note="measured peak = distinct live storage bytes during the replay (parameters "
            "and inputs excluded); MOCCASIN's budget is a fraction of the plain order's peak, "
            "the partitioner's (activation_memory_budget) a fraction of its saved activations, "
            "so the two are compared by the measured peak and compute they reach.",
        ),
    )
    return BenchResult(
        name="remat",
        status=NO_GOAL,
        title="Rematerialisation: MOCCASIN vs Checkmate",
        headline=headline,
        tables=tables,
        figures=optional_figures(_figures, records),
        data={"runs": records, "limits": limits, "seconds": time.perf_counter() - t0},
        mode="wall clock, local machine",
    )


def _headline(records, speed, same: int, limits: dict[str, float], quick: bool) -> str:
    """Both solvers' outcomes; the time ratio only over runs where both proved optimality."""
    moc = [r for r in records if r["solver"] == "moccasin"]
    milp = [r for r in records if r["solver"] == "checkmate MILP"]
    n_opt = {name: sum(r["status"] == "optimal" for r in rs) for name, rs in
             (("moccasin", moc), ("milp", milp))}  # fmt: skip
    prefix = (
        f"quick size ({limits['moccasin']:g} s / {limits['checkmate']:g} s limits): "
        if quick
        else ""
    )
    parts = [
        f"MOCCASIN proved optimal on {n_opt['moccasin']}/{len(moc)} runs, Checkmate MILP "
        f"on {n_opt['milp']}/{len(milp)}"
    ]
    if speed:
        parts.append(
            f"where both did ({len(speed)}), same cost on {same}/{len(speed)} and MILP/MOCCASIN "
            f"time ratio median {np.median([s[2] for s in speed]):.1f}x"
        )
    else:
        parts.append("no run where both proved optimality, so no time ratio")
    return prefix + "; ".join(parts)


def _figures(records: list[dict[str, Any]]):
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6.5, 4))
    colors = {"moccasin": "C0", "checkmate MILP": "C1", "LP rounding": "C2", "greedy": "C3"}
    for r in records:
        if r["overhead"] is None or r["seconds_to_best"] is None:
            continue
        ax.scatter(max(r["seconds_to_best"], 1e-3), 100 * r["overhead"],
                   c=colors.get(r["solver"], "k"), s=12 + 18 * (r["budget"] < 0.85))  # fmt: skip
    for name, c in colors.items():
        ax.scatter([], [], c=c, label=name)
    ax.set_xscale("log")
    ax.set_xlabel("seconds to best schedule")
    ax.set_ylabel("% compute increase")
    ax.set_title("Every graph and budget (large dots: 80%)")
    ax.legend(fontsize=7)
    fig.tight_layout()
    return {"time_vs_overhead": fig}


def main(argv: list[str] | None = None) -> BenchResult:
    return bench_main(run, RESULTS, title=REPORT_TITLE, argv=argv)


if __name__ == "__main__":
    main()
