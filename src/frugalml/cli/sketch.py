"""``frugalml sketch lstsq | distributed | newton | list``.

Options follow the vocabulary of ``docs/cli.md``: ``--workers`` (sketching workers),
``--sketch-size`` (rows of each sketch), ``--steps`` (Newton steps), ``--blas-threads``. The
0.1 spellings (``--q``, ``--m``, ``--max-iter``) are rewritten with a warning by
:mod:`frugalml.cli._aliases`.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import typer
from rich.markup import escape
from rich.table import Table

from .._io import atomic_write_bytes, check_output_path
from .._validate import check_choice, check_int
from ..errors import InvalidInputError
from ..runtime import BACKENDS, concurrent_options, make_executor
from ._common import (
    BLAS_OPTION,
    JSON_OPTION,
    SEED_OPTION,
    WorkBar,
    console,
    emit_json,
    limit_blas_threads,
)

__all__ = ["sketch_app"]

sketch_app = typer.Typer(
    help="Randomized sketches, least squares and distributed sketch-and-solve.",
    no_args_is_help=True,
)

DATA_ARG = typer.Argument(..., help="Problem file: .npz (A, b), .npy or .csv (last column = b).")
TARGET_OPTION = typer.Option(-1, help="Target column for .npy/.csv input (default: last).")
OUT_OPTION = typer.Option(None, "--out", help="Write the solution x to this .npy file.")


def _check_out(out: Path | None) -> Path | None:
    """``--out`` checked before any work (a directory, a missing parent, no permission)."""
    return None if out is None else check_output_path(out, "--out")


def _save(path: Path | None, x: np.ndarray) -> None:
    if path is None:
        return
    import io

    buf = io.BytesIO()
    np.save(buf, x)
    atomic_write_bytes(path, buf.getvalue())


def _emit_solution(
    payload: dict, x: np.ndarray, out: Path | None, json_out: bool, *lines: object,
    note_out: bool = True,
) -> None:  # fmt: skip
    """Save ``x`` to ``--out`` (if given), then print the result: with ``--json`` the payload
    plus ``x`` (the list, or the ``--out`` path); else ``lines`` and, with ``note_out``,
    where ``x`` was written."""
    _save(out, x)
    if json_out:
        payload["x"] = x.tolist() if out is None else str(out)
        emit_json(payload)
        return
    for line in lines:
        console.print(line)
    if note_out and out is not None:
        console.print(f"x written to {out}")


def _reference(a, b, lam):
    import scipy.linalg

    if lam > 0:
        d = a.shape[1]
        return scipy.linalg.solve(a.T @ a + lam * np.eye(d), a.T @ b, assume_a="pos")
    return scipy.linalg.lstsq(a, b, lapack_driver="gelsd")[0]


@sketch_app.command("lstsq")
def lstsq_cmd(
    data: Path = DATA_ARG,
    method: str = typer.Option(
        "sketch-and-precondition", help="sketch-and-solve | sketch-and-precondition | ihs"
    ),
    sketch: str = typer.Option(
        None,
        help="Sketch family (see 'frugalml sketch list'; default sparse-sign, 3 nonzeros per "
        "column with the cg solver, 8 otherwise).",
    ),
    sketch_size: int = typer.Option(
        None,
        "--sketch-size",
        help="Rows of the sketch (default 4d; preconditioning: 6d-24d by n/d with cg, 8d with "
        "lsqr).",
    ),
    lam: float = typer.Option(0.0, help="Ridge parameter lambda >= 0."),
    tol: float = typer.Option(1e-12, help="Iterative methods: stopping tolerance."),
    solver: str = typer.Option(
        None,
        help="sketch-and-precondition only: cg | lsqr | lsmr (default cg).",
    ),
    precision: str = typer.Option(
        None,
        help="sketch-and-precondition only: mixed (float32 factor) | double (default mixed "
        "with cg, double otherwise).",
    ),
    seed: int = SEED_OPTION,
    target: int = TARGET_OPTION,
    compare: bool = typer.Option(False, help="Also solve with LAPACK (gelsd) and compare."),
    out: Path = OUT_OPTION,
    json_out: bool = JSON_OPTION,
    blas_threads: int = BLAS_OPTION,
) -> int:
    """Solve min ||A x - b||^2 + lam ||x||^2 with a randomized method."""
    from ..sketch import lstsq
    from ..sketch.io import load_problem
    from ..sketch.lstsq import METHODS, PRECISIONS, SOLVERS

    limit_blas_threads(blas_threads)
    check_choice(method, "--method", METHODS)
    if solver is not None:
        check_choice(solver, "--solver", SOLVERS)
    if precision is not None:
        check_choice(precision, "--precision", PRECISIONS)
    if method != "sketch-and-precondition" and (solver is not None or precision == "mixed"):
        given = f"--solver {solver}" if solver is not None else "--precision mixed"
        raise InvalidInputError(
            f"{given} applies to --method sketch-and-precondition, not {method}; drop it or "
            "use --method sketch-and-precondition"
        )
    out = _check_out(out)
    a, b = load_problem(data, target=target)
    with WorkBar(f"{method} ({a.shape[0]} x {a.shape[1]})", disable=json_out):
        res = lstsq(a, b, method=method, sketch=sketch, sketch_size=sketch_size, lam=lam, tol=tol,
                    solver=solver, precision=precision, rng=seed)  # fmt: skip
    payload = {
        "method": res.method, "solver": res.solver, "precision": res.precision,
        "sketch": res.sketch, "m": res.sketch_size, "n": a.shape[0],
        "d": a.shape[1], "lam": lam, "iterations": res.iterations, "converged": res.converged,
        "residual_norm": res.residual_norm, "rank": res.rank, "seconds": res.seconds,
    }  # fmt: skip
    if compare:
        t0 = time.perf_counter()
        with WorkBar("LAPACK reference (gelsd)", disable=json_out):
            ref = _reference(a, b, lam)
        payload["lapack_seconds"] = time.perf_counter() - t0
        r_ref = b - a @ ref
        payload["relative_solution_error"] = float(
            np.linalg.norm(res.x - ref) / max(np.linalg.norm(ref), 1e-300)
        )
        payload["relative_residual_error"] = float(
            np.linalg.norm(a @ (res.x - ref)) / max(np.linalg.norm(r_ref), 1e-300)
        )
    lines: list[object] = [res.summary()]
    if compare:
        lines.append(
            f"vs LAPACK gelsd ({payload['lapack_seconds']:.3g}s): relative solution error "
            f"{payload['relative_solution_error']:.3g}, ||A(x - x*)||/||b - A x*|| = "
            f"{payload['relative_residual_error']:.3g}"
        )
    _emit_solution(payload, res.x, out, json_out, *lines)
    return 0


@sketch_app.command("distributed")
def distributed_cmd(
    data: Path = DATA_ARG,
    workers: int = typer.Option(8, "--workers", help="Number of workers (one sketch each)."),
    sketch_size: int = typer.Option(
        None, "--sketch-size", help="Rows of each worker's sketch (default 4d)."
    ),
    sketch: str = typer.Option("gaussian", help="Sketch family."),
    backend: str = typer.Option("local-thread", help="Executor backend."),
    k: int = typer.Option(None, help="Average the first k arrivals (default all workers)."),
    deadline: float = typer.Option(None, help="Average what arrived by this many seconds."),
    lam: float = typer.Option(0.0, help="Ridge parameter lambda >= 0."),
    weights: str = typer.Option("inverse-variance", help="inverse-variance | uniform"),
    seed: int = SEED_OPTION,
    target: int = TARGET_OPTION,
    out: Path = OUT_OPTION,
    json_out: bool = JSON_OPTION,
    blas_threads: int = BLAS_OPTION,
) -> int:
    """Average the sketched solutions of --workers workers on an executor; report the exact
    theory."""
    from ..sketch.distributed import distributed_lstsq
    from ..sketch.io import load_problem

    limit_blas_threads(blas_threads)
    check_choice(backend, "backend", BACKENDS)
    out = _check_out(out)
    a, b = load_problem(data, target=target)
    size = 4 * a.shape[1] if sketch_size is None else sketch_size
    _check_workers(workers, k)
    with (
        WorkBar(f"{workers} sketches on {backend}", disable=json_out),
        make_executor(backend, **_pool_options(backend, workers)) as ex,
    ):
        res = distributed_lstsq(
            a, b, workers, size, sketch=sketch, executor=ex, k=k, deadline=deadline, lam=lam,
            weights=weights, rng=seed,
        )  # fmt: skip
    payload = {
        "q": workers, "m": size, "sketch": sketch, "backend": backend,
        "arrived": list(res.arrived),
        "lam": lam, "weights": weights, "measured_error": res.measured_error,
        "predicted_error": res.predicted_error, "f_star": res.f_star, "seconds": res.seconds,
        "bytes_placed": res.bytes_placed, "bytes_sent": res.bytes_sent,
        "bytes_received": res.bytes_received,
    }  # fmt: skip
    _emit_solution(
        payload, res.x, out, json_out, res.summary(), res.gathered.summary(), note_out=False
    )
    return 0


@sketch_app.command("list")
def list_cmd(json_out: bool = JSON_OPTION) -> int:
    """The sketch families and their classes."""
    from ..sketch import SKETCHES

    rows = {name: cls.__name__ + (f" {opts}" if opts else "") for name, (cls, opts) in
            SKETCHES.items()}  # fmt: skip
    if json_out:
        emit_json(rows)
    else:
        table = Table(title="sketch families")
        table.add_column("name", no_wrap=True)
        table.add_column("class and options", overflow="fold")
        for name, what in rows.items():
            table.add_row(name, escape(what))
        console.print(table)
    return 0


@sketch_app.command("newton")
def newton_cmd(
    data: Path = DATA_ARG,
    loss: str = typer.Option("least-squares", help="least-squares | logistic (binary labels)."),
    lam: float = typer.Option(1.0, help="L2 regularisation lambda >= 0 (logistic: > 0)."),
    workers: int = typer.Option(8, "--workers", help="Number of workers (sketches per step)."),
    sketch_size: int = typer.Option(
        None, "--sketch-size", help="Rows of each worker's sketch (default max(4d, 4 d_lam + 10))."
    ),
    sketch: str = typer.Option("gaussian", help="Sketch family, or 'surrogate'."),
    averaging: str = typer.Option("debiased", help="debiased | naive | exact"),
    weights: str = typer.Option("size", help="size | uniform | determinantal"),
    backend: str = typer.Option("local-thread", help="Executor backend."),
    k: int = typer.Option(None, help="Average the first k directions per iteration."),
    deadline: float = typer.Option(None, help="Per-iteration deadline in seconds."),
    steps: int = typer.Option(
        50, "--steps", help="Newton steps (the most it runs when --tol stops it earlier)."
    ),
    tol: float = typer.Option(1e-10, help="Stop when ||g|| <= tol ||g_0||."),
    seed: int = SEED_OPTION,
    target: int = TARGET_OPTION,
    out: Path = OUT_OPTION,
    json_out: bool = JSON_OPTION,
    blas_threads: int = BLAS_OPTION,
) -> int:
    """Distributed Newton sketch (debiased averaging) for ridge / least squares / logistic."""
    from ..sketch.io import load_problem
    from ..sketch.newton import distributed_newton

    limit_blas_threads(blas_threads)
    check_choice(backend, "backend", BACKENDS)
    out = _check_out(out)
    a, b = load_problem(data, target=target)
    _check_workers(workers, k)
    with (
        WorkBar(f"{averaging} Newton sketch", total=1.0, disable=json_out) as bar,
        make_executor(backend, **_pool_options(backend, workers)) as ex,
    ):
        res = distributed_newton(
            a, b, loss=loss, lam=lam, q=workers, m=sketch_size, sketch=sketch,
            averaging=averaging, weights=weights, executor=ex, k=k, deadline=deadline,
            max_iter=steps, tol=tol, rng=seed, progress=bar.callback,
        )  # fmt: skip
    payload = {
        "loss": loss, "lam": lam, "q": workers, "m": list(res.sizes), "sketch": sketch,
        "averaging": averaging, "iterations": res.iterations, "converged": res.converged,
        "objective": res.objective, "bytes_placed": res.bytes_placed,
        "round_bytes_sent": list(res.round_bytes_sent),
        "round_bytes_received": list(res.round_bytes_received),
        "history": [{"f": f, "grad_norm": gn, "seconds": s, "workers": w}
                    for f, gn, s, w in res.history],
    }  # fmt: skip
    _emit_solution(payload, res.x, out, json_out, res.summary())
    return 0


def _check_workers(workers: int, k: int | None) -> None:
    """--workers and --k before an executor with that many workers is started."""
    check_int(workers, "--workers", low=1)
    if k is not None:
        check_int(k, "--k", low=1, high=workers)


def _pool_options(backend: str, workers: int) -> dict:
    """Options for ``workers`` concurrent tasks; the local pool imports the sketch modules
    while it starts, so that a --deadline counts the work, not the workers' imports."""
    options = concurrent_options(backend, workers)
    if backend == "local":
        options["preload"] = ("frugalml.sketch",)
    return options
