"""``frugalml runtime check`` and ``frugalml runtime simulate``."""

from __future__ import annotations

import time
from pathlib import Path

import typer
from rich.progress import Progress
from rich.table import Table

from .._resources import check_memory
from .._validate import check_choice, check_int
from ..errors import InvalidInputError
from ..runtime import BACKENDS, backend_info, make_executor
from ..runtime.simulate import simulate_first_k
from ._common import (
    BLAS_OPTION,
    JSON_OPTION,
    PROGRESS_COLUMNS,
    SEED_OPTION,
    TAIL_RATE_OPTION,
    checked_plot_path,
    console,
    emit_json,
    limit_blas_threads,
    straggler_model_from_options,
)

__all__ = ["runtime_app"]


runtime_app = typer.Typer(
    help="Executors: check backends, simulate stragglers.", no_args_is_help=True
)


def _square(x: int) -> int:
    return x * x


def _fail() -> None:
    raise ValueError("expected failure (smoke test)")


def _smoke(name: str) -> dict:
    """Start the backend, run 4 tasks and one that raises, check the values, close it."""
    info = backend_info(name)
    row = {"backend": name, "installed": info.installed, "version": info.version}
    if not info.installed:
        row.update(status="not installed", detail=f"pip install 'frugalml[{info.extra}]'")
        return row
    t0 = time.perf_counter()
    try:
        options = {"workers": 2} if name in ("ray", "dask") else {}
        with make_executor(name, **options) as ex:
            handles = [ex.submit(_square, i) for i in range(4)] + [ex.submit(_fail)]
            got = ex.gather(handles, deadline=120)
        values_ok = got.results == {i: i * i for i in range(4)}
        failure_ok = 4 in got.failures and got.failures[4].error_type == "ValueError"
        ok = values_ok and failure_ok and got.stopped_by == "all"
        row.update(
            status="ok" if ok else "wrong result",
            detail=got.summary(),
            seconds=round(time.perf_counter() - t0, 3),
        )
    except Exception as exc:  # report, do not crash: this command diagnoses backends
        row.update(status="error", detail=f"{type(exc).__name__}: {exc}")
    return row


@runtime_app.command("check")
def check(
    backend: list[str] = typer.Option(
        None, "--backend", "-b", help="Backends to check (default: all)."
    ),
    json_out: bool = JSON_OPTION,
    blas_threads: int = BLAS_OPTION,
) -> int:
    """Which backends are installed, and a smoke run (4 tasks + 1 failing task) on each."""
    limit_blas_threads(blas_threads)
    names = backend or list(BACKENDS)
    for name in names:
        check_choice(name, "backend", BACKENDS)
    rows = []
    with Progress(*PROGRESS_COLUMNS, console=console, disable=json_out, transient=True) as bar:
        task = bar.add_task("checking backends", total=len(names))
        for name in names:
            bar.update(task, description=f"checking {name}")
            rows.append(_smoke(name))
            bar.advance(task)
    if json_out:
        emit_json(rows)
    else:
        columns = ("backend", "installed", "version", "status", "seconds", "detail")
        table = Table(title="frugalml runtime backends")
        for col in columns:  # names and details wrap; numbers do not
            numeric = col in ("installed", "version", "seconds")
            table.add_column(col, no_wrap=numeric, overflow="fold", justify="left")
        for r in rows:
            table.add_row(*(str(r.get(c) if r.get(c) is not None else "") for c in columns))
        console.print(table)
    broken = [r for r in rows if r["status"] not in ("ok", "not installed")]
    if broken:
        raise typer.Exit(1)
    return 0


@runtime_app.command("simulate")
def simulate(
    stragglers: str = typer.Option(
        "shifted-exponential",
        "--stragglers",
        help="Straggler model: shifted-exponential | pareto | bimodal.",
    ),
    workers: int = typer.Option(64, "--workers", help="Number of tasks (workers) n."),
    k: list[int] = typer.Option(None, "--k", help="k values (default: n/4, n/2, 3n/4, n)."),
    shift: float = typer.Option(
        None, help="Minimum task time [default 1] (shifted-exponential, bimodal)."
    ),
    rate: float = TAIL_RATE_OPTION,
    scale: float = typer.Option(None, help="Pareto scale [default 1]."),
    alpha: float = typer.Option(None, help="Pareto tail index [default 2]."),
    p_slow: float = typer.Option(
        None, help="Fraction of heavy stragglers [default 0.1] (bimodal)."
    ),
    slowdown: float = typer.Option(
        None, help="Slow-down of heavy stragglers [default 10] (bimodal)."
    ),
    trials: int = typer.Option(2000, help="Monte-Carlo trials."),
    seed: int = SEED_OPTION,
    plot: Path = typer.Option(None, help="Write a PNG plot of latency versus k here."),
    json_out: bool = JSON_OPTION,
    blas_threads: int = BLAS_OPTION,
) -> int:
    """Latency of first-k versus all-n under a straggler model (exact and Monte-Carlo)."""
    limit_blas_threads(blas_threads)
    plot = checked_plot_path(plot)
    check_int(seed, "seed", low=0)
    n = check_int(workers, "workers", low=1)
    check_int(trials, "trials", low=2)
    m = straggler_model_from_options(
        stragglers, shift=shift, rate=rate, scale=scale, alpha=alpha, p_slow=p_slow,
        slowdown=slowdown,
    )  # fmt: skip
    ks = k or sorted({max(1, n // 4), max(1, n // 2), max(1, 3 * n // 4), n})
    check_memory(
        2 * 8.0 * n * trials,
        f"{trials} Monte-Carlo trials of n={n} tasks",
        fix="lower --trials or --workers",
    )
    with Progress(*PROGRESS_COLUMNS, console=console, disable=json_out) as bar:
        task = bar.add_task("simulating", total=1.0)

        def report(message: str, fraction: float, stage: str = "") -> None:
            bar.update(task, completed=fraction, description=f"{stage}{message}")

        rows = simulate_first_k(m, n, ks, trials=trials, rng=seed, progress=report)
        if plot is not None:
            bar.update(task, completed=0.0)
            try:
                _plot(m, n, trials, seed, plot, lambda msg, f: report(msg, f, "plot: "))
            except OSError as exc:  # passed the checks, but the file system refused it
                raise InvalidInputError(f"--plot {plot}: cannot write the plot ({exc})") from exc
    if json_out:
        emit_json(
            {"model": m.describe(), "n": n, "trials": trials, "rows": [r.__dict__ for r in rows]}
        )
        return 0
    table = Table(title=f"first k of n={n}, {m.name} {m.params()}")
    for col in ("k", "E[T_k:n] exact", "Monte-Carlo", "± s.e.", "all-n / first-k"):
        table.add_column(col, justify="right", no_wrap=True)
    for r in rows:
        exact = "inf" if r.exact is None else f"{r.exact:.4g}"
        table.add_row(str(r.k), exact, f"{r.mc_mean:.4g}", f"{r.mc_stderr:.2g}", f"{r.vs_all:.3g}x")
    console.print(table)
    if plot is not None:
        console.print(f"plot written to {plot}")
    return 0


def _plot(model, n: int, trials: int, seed: int, path: Path, progress=None) -> None:
    from ..report.output import pyplot, save_png

    plt = pyplot()

    all_k = list(range(1, n + 1))
    rows = simulate_first_k(model, n, all_k, trials=trials, rng=seed, progress=progress)
    fig, ax = plt.subplots(figsize=(6, 3.6))
    ax.plot(all_k, [r.mc_mean for r in rows], label="Monte-Carlo")
    exact = [(r.k, r.exact) for r in rows if r.exact is not None]
    if exact:
        ax.plot(*zip(*exact, strict=True), "--", label="exact")
    ax.set_xlabel("k (results waited for)")
    ax.set_ylabel("expected latency")
    ax.set_title(f"first k of n={n}: {model.name}")
    ax.legend()
    save_png(fig, path)
