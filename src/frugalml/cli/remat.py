"""``frugalml remat solve`` and ``frugalml remat model``."""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import typer

from .._io import atomic_write_text, check_output_path
from .._validate import check_choice, check_int
from ..errors import InvalidInputError
from ._common import BLAS_OPTION, JSON_OPTION, WorkBar, console, emit_json, limit_blas_threads

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
TIME_OPTION = typer.Option(
    60.0, help="Solver time limit in seconds (building the model included; inf: no limit)."
)
COPIES_OPTION = typer.Option(2, help="MOCCASIN/greedy: at most this many computations per node.")
THREADS_OPTION = typer.Option(
    None,
    "--threads",
    help="Threads of the solver: CP-SAT workers (default: CPU count), HiGHS threads.",
)
OUT_OPTION = typer.Option(None, "--out", help="Write the solution (schedule and scores) as JSON.")


#: exit status of a solve stopped by Ctrl-C (the shell's 128 + SIGINT)
EXIT_INTERRUPTED = 130


def _check_options(budget, solver, time_limit, copies, threads, out):
    """Validate the shared options before any work; returns (time_limit or None, out)."""
    from ..remat import SOLVERS

    if out is not None:
        out = check_output_path(out, "--out")
    check_choice(solver, "--solver", SOLVERS)
    if not (isinstance(budget, float) and math.isfinite(budget) and budget > 0):
        raise InvalidInputError(
            f"--budget must be > 0: a fraction (0, 1] of the plain peak, or bytes; got {budget}"
        )
    if math.isnan(time_limit) or time_limit <= 0:
        raise InvalidInputError(f"--time-limit must be > 0 seconds (or inf), got {time_limit}")
    if math.isinf(time_limit):
        time_limit = None
    check_int(copies, "--copies", low=1)
    if threads is not None:
        check_int(threads, "--threads", low=1, high=1024)
    return time_limit, out


def _run(graph, budget, solver, time_limit, copies, threads, quiet):
    from ..remat import solve

    if solver == "moccasin":  # (import the solver first: the note below means "solving")
        from .._optional import require

        require("ortools.sat.python.cp_model", what="the MOCCASIN solver", extra="remat")
    if not quiet:
        print(f"solving with {solver} (Ctrl-C stops with the best schedule so far)",
              file=sys.stderr, flush=True)  # fmt: skip

    # the bar (stderr, transient) shows the best cost and bound so far and fills with the
    # share of the time limit used (without a limit: with the share of the gap closed)
    with WorkBar(f"{solver}: searching", total=1.0, disable=quiet) as bar:
        return solve(graph, budget, solver=solver, time_limit=time_limit, copies=copies,
                     threads=threads, progress=bar.callback)  # fmt: skip


def _interrupted_note(sol, out: Path | None) -> None:
    """Say on stderr that the solve was stopped and what (if anything) was written."""
    if sol.schedule is None:
        print("frugalml: interrupted before any schedule was found; nothing written",
              file=sys.stderr)  # fmt: skip
        return
    where = f'; written to {out} with "status": "interrupted"' if out is not None else ""
    print(
        "frugalml: interrupted: the schedule is the best found so far, not proven optimal" + where,
        file=sys.stderr,
    )


def _report(sol, graph, out: Path | None, json_out: bool) -> None:
    payload = {"graph": graph.subgraph_info(), **sol.to_dict()}
    interrupted = sol.status == "interrupted"
    if out is not None and not (interrupted and sol.schedule is None):
        atomic_write_text(out, json.dumps(payload, indent=2))
    if json_out:
        emit_json(payload)
    else:
        console.print(graph.describe())
        console.print(sol.summary())
        if out is not None and not interrupted:
            console.print(f"wrote {out}")
    if interrupted:
        _interrupted_note(sol, out)


@remat_app.command("solve")
def solve_cmd(
    graph_file: Path = typer.Argument(..., help="Graph JSON (Checkmate, MOCCASIN layered, ours)."),
    budget: float = BUDGET_OPTION,
    solver: str = SOLVER_OPTION,
    time_limit: float = TIME_OPTION,
    copies: int = COPIES_OPTION,
    threads: int = THREADS_OPTION,
    out: Path = OUT_OPTION,
    json_out: bool = JSON_OPTION,
    blas_threads: int = BLAS_OPTION,
) -> None:
    """Find a schedule of GRAPH_FILE within a memory budget with minimum total compute.

    Ctrl-C stops the solver: the best schedule so far is reported (and written with --out,
    marked "status": "interrupted") and the command exits with status 130.
    """
    from ..remat import load_graph

    limit_blas_threads(blas_threads)
    time_limit, out = _check_options(budget, solver, time_limit, copies, threads, out)
    graph = load_graph(graph_file)
    sol = _run(graph, budget, solver, time_limit, copies, threads, json_out)
    _report(sol, graph, out, json_out)
    if sol.status == "interrupted":
        raise typer.Exit(EXIT_INTERRUPTED)
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
    threads: int = THREADS_OPTION,
    execute: bool = typer.Option(True, help="Run the schedule and check the gradients."),
    out: Path = OUT_OPTION,
    json_out: bool = JSON_OPTION,
    blas_threads: int = BLAS_OPTION,
) -> None:
    """Extract the training graph of a PyTorch model, solve, and run the schedule."""
    from ..remat.frontend import build_target, check_schedule

    limit_blas_threads(blas_threads)
    time_limit, out = _check_options(budget, solver, time_limit, copies, threads, out)
    model, inputs, loss_fn = build_target(target, input_shape)
    from ..remat.torch_graph import extract_graph

    tg = extract_graph(model, loss_fn, inputs)
    sol = _run(tg.graph, budget, solver, time_limit, copies, threads, json_out)
    interrupted = sol.status == "interrupted"
    payload_extra = {}
    if execute and sol.schedule is not None and not interrupted:
        payload_extra = check_schedule(tg, sol.schedule, model, inputs, loss_fn)
    payload = {"graph": tg.graph.subgraph_info(), **sol.to_dict(), "execution": payload_extra}
    if out is not None and not (interrupted and sol.schedule is None):
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
    if interrupted:
        _interrupted_note(sol, out)
        raise typer.Exit(EXIT_INTERRUPTED)
    if sol.schedule is None:
        raise typer.Exit(1)
