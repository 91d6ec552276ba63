"""``frugalml remat solve`` and ``frugalml remat model``."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from .._io import atomic_write_text
from ._common import JSON_OPTION, console, emit_json

__all__ = ["remat_app"]

remat_app = typer.Typer(
    help="Memory-budgeted rematerialisation (MOCCASIN, Checkmate) of computation graphs.",
    no_args_is_help=True,
)

BUDGET_OPTION = typer.Option(
    0.8, help="Memory budget: a fraction (0, 1] of the plain order's peak, or bytes (> 1)."
)
SOLVER_OPTION = typer.Option(
    "moccasin", help="moccasin | checkmate | lp | lp-randomized | greedy | none | checkpoint"
)
TIME_OPTION = typer.Option(60.0, help="Solver time limit in seconds.")
COPIES_OPTION = typer.Option(2, help="MOCCASIN/greedy: at most this many computations per node.")
WORKERS_OPTION = typer.Option(None, help="Solver threads (default: CPU count).")
OUT_OPTION = typer.Option(None, "--out", help="Write the solution (schedule and scores) as JSON.")


def _run(graph, budget, solver, time_limit, copies, workers, quiet):
    from ..remat import solve

    if quiet or time_limit is None:
        return solve(graph, budget, solver=solver, time_limit=time_limit, copies=copies,
                     workers=workers)  # fmt: skip
    with Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        TextColumn("{task.fields[best]}"),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    ) as bar:
        task = bar.add_task(f"{solver}", total=time_limit, best="searching")

        def progress(seconds: float, cost: float, bound: float | None) -> None:
            extra = f", bound {bound:g}" if bound is not None else ""
            bar.update(task, completed=min(seconds, time_limit), best=f"best {cost:g}{extra}")

        return solve(graph, budget, solver=solver, time_limit=time_limit, copies=copies,
                     workers=workers, progress=progress)  # fmt: skip


def _report(sol, graph, out: Path | None, json_out: bool) -> None:
    payload = {"graph": graph.subgraph_info(), **sol.to_dict()}
    if out is not None:
        atomic_write_text(out, json.dumps(payload, indent=2))
    if json_out:
        emit_json(payload)
    else:
        console.print(graph.describe())
        console.print(sol.summary())
        if out is not None:
            console.print(f"wrote {out}")


@remat_app.command("solve")
def solve_cmd(
    graph_file: Path = typer.Argument(..., help="Graph JSON (Checkmate, MOCCASIN layered, ours)."),
    budget: float = BUDGET_OPTION,
    solver: str = SOLVER_OPTION,
    time_limit: float = TIME_OPTION,
    copies: int = COPIES_OPTION,
    workers: int = WORKERS_OPTION,
    out: Path = OUT_OPTION,
    json_out: bool = JSON_OPTION,
) -> None:
    """Find a schedule of GRAPH_FILE within a memory budget with minimum total compute."""
    from ..remat import load_graph

    graph = load_graph(graph_file)
    sol = _run(graph, budget, solver, time_limit, copies, workers, json_out)
    _report(sol, graph, out, json_out)
    if sol.schedule is None:
        raise typer.Exit(1)


@remat_app.command("model")
def model_cmd(
    target: str = typer.Argument(
        ..., help="mlp | resnet | transformer, or module:Class (built with no arguments)."
    ),
    input_shape: str = typer.Option(
        None, "--input-shape", help="Input shape for module:Class, e.g. 32,3,32,32."
    ),
    budget: float = BUDGET_OPTION,
    solver: str = SOLVER_OPTION,
    time_limit: float = TIME_OPTION,
    copies: int = COPIES_OPTION,
    workers: int = WORKERS_OPTION,
    execute: bool = typer.Option(True, help="Run the schedule and check the gradients."),
    out: Path = OUT_OPTION,
    json_out: bool = JSON_OPTION,
) -> None:
    """Extract the training graph of a PyTorch model, solve, and run the schedule."""
    from ..remat.frontend import build_target, check_schedule

    model, inputs, loss_fn = build_target(target, input_shape)
    from ..remat.torch_graph import extract_graph

    tg = extract_graph(model, loss_fn, inputs)
    sol = _run(tg.graph, budget, solver, time_limit, copies, workers, json_out)
    payload_extra = {}
    if execute and sol.schedule is not None:
        payload_extra = check_schedule(tg, sol.schedule, model, inputs, loss_fn)
    payload = {"graph": tg.graph.subgraph_info(), **sol.to_dict(), "execution": payload_extra}
    if out is not None:
        atomic_write_text(out, json.dumps(payload, indent=2))
    if json_out:
        emit_json(payload)
    else:
        console.print(tg.graph.describe())
        console.print(sol.summary())
        if payload_extra:
            console.print(
                f"executed: measured peak {payload_extra['measured_peak']} bytes "
                f"(budget {sol.budget}), max |grad diff| {payload_extra['max_grad_diff']:.2e}"
            )
    if sol.schedule is None:
        raise typer.Exit(1)
