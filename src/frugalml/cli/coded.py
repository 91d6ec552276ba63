"""``frugalml coded matmul | simulate | es | attack``: coded products and coded ES.

``matmul`` and ``simulate`` are here; ``es`` and ``attack`` (coded derivative-free
optimisation) are in :mod:`.coded_dfo` and registered on the same ``coded`` app. Option names
follow docs/cli.md (``--workers``, ``--stragglers``; the 0.1 spellings ``--n`` and ``--model``
are rewritten by :mod:`._aliases`).
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import typer
from rich.progress import Progress
from rich.table import Table

from .._resources import check_memory
from .._validate import (
    check_choice,
    check_int,
    check_nonnegative_float,
    check_positive_float,
)
from ..errors import InvalidInputError
from ..runtime import (
    BACKENDS,
    FaultInjector,
    concurrent_options,
    make_executor,
    model_from_spec,
)
from ..runtime.local import check_pool_size
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
from .coded_dfo import STRAGGLER_MODELS, STRAGGLERS_HELP, attack, es

__all__ = ["coded_app"]

coded_app = typer.Typer(help="Straggler-resilient coded computation.", no_args_is_help=True)


def _open_npy(path: Path, option: str) -> np.ndarray:
    """A 2-D .npy array, memory-mapped (read when the product needs it)."""
    if path.is_dir():
        raise InvalidInputError(f"{option} {path}: is a directory, expected a .npy file")
    if not path.is_file():
        raise InvalidInputError(f"{option} {path}: the file does not exist")
    try:
        arr = np.load(path, mmap_mode="r")
    except (ValueError, OSError, EOFError) as exc:
        raise InvalidInputError(f"{option} {path}: not a .npy array ({exc})") from exc
    if not isinstance(arr, np.ndarray) or arr.ndim != 2:
        shape = getattr(arr, "shape", None)
        raise InvalidInputError(f"{option} {path}: expected a 2-D array, got shape {shape}")
    if not (np.issubdtype(arr.dtype, np.floating) or np.issubdtype(arr.dtype, np.integer)):
        raise InvalidInputError(f"{option} {path}: expected real numbers, got dtype {arr.dtype}")
    return arr


@coded_app.command("matmul")
def matmul(
    m: int = typer.Option(4096, help="Rows of A (random data unless --a is given)."),
    n: int = typer.Option(512, help="Columns of A / rows of B."),
    p: int = typer.Option(64, help="Columns of B."),
    a_file: Path = typer.Option(None, "--a", help="A as a .npy file."),
    b_file: Path = typer.Option(None, "--b", help="B as a .npy file."),
    code: str = typer.Option("polar", help="polar | mds | uncoded | replication | vandermonde"),
    workers: int = typer.Option(16, help="N workers."),
    k: int = typer.Option(None, help="K data blocks (default N/2; uncoded: N)."),
    backend: str = typer.Option("local-thread", help="Executor backend."),
    stragglers: str = typer.Option("bimodal", "--stragglers", help=STRAGGLERS_HELP),
    shift: float = typer.Option(0.05, help="Straggler model: minimum delay (s)."),
    rate: float = typer.Option(20.0, help="Straggler model: rate of the exponential tail."),
    mode: str = typer.Option("exact", help="exact | anytime"),
    deadline: float = typer.Option(None, help="Seconds to wait (required for anytime)."),
    seed: int = SEED_OPTION,
    json_out: bool = JSON_OPTION,
    blas_threads: int = BLAS_OPTION,
) -> int:
    """Compute A @ B with N coded workers, injected stragglers, and report the result."""
    from ..coded.matmul import CODE_NAMES, coded_matmul, make_code

    limit_blas_threads(blas_threads)
    # every option is checked before any data is made or any worker starts
    check_choice(backend, "backend", BACKENDS)
    check_choice(stragglers, "stragglers", STRAGGLER_MODELS)
    check_choice(code, "code", CODE_NAMES)
    check_choice(mode, "mode", ("exact", "anytime"))
    check_int(seed, "seed", low=0)
    workers = check_int(workers, "workers", low=1)
    if k is None:
        k = workers if code == "uncoded" else max(1, workers // 2)
    k = check_int(k, "k", low=1, high=workers)
    if stragglers != "none":
        check_nonnegative_float(shift, "shift")
        check_positive_float(rate, "rate")
    if deadline is not None:
        deadline = check_nonnegative_float(deadline, "deadline")
    if mode == "anytime" and deadline is None:
        raise InvalidInputError("--mode anytime needs a deadline (--deadline seconds)")
    a_src = None if a_file is None else _open_npy(a_file, "--a")
    b_src = None if b_file is None else _open_npy(b_file, "--b")
    if a_src is not None:
        m, n = a_src.shape
    if b_src is not None:
        if b_src.shape[0] != n:
            raise InvalidInputError(
                f"--b has {b_src.shape[0]} rows but A has {n} columns; A (m, n) @ B (n, p)"
            )
        p = b_src.shape[1]
    m, n, p = (check_int(v, name, low=1) for v, name in ((m, "m"), (n, "n"), (p, "p")))
    if m < k:
        raise InvalidInputError(f"A has {m} rows, fewer than K={k} blocks; raise --m or lower --k")
    make_code(code, workers, k)  # the code's own checks (power of two, divisibility, size)
    rows = -(-m // k)
    # A and B, the N coded blocks of A (N, ceil(m/K), n), their outputs (N, ceil(m/K), p), the
    # product and numpy's reference product (m, p): float64
    check_memory(
        8.0 * (m * n + n * p + workers * rows * (n + p) + 2 * m * p),
        f"a coded {m} x {n} @ {n} x {p} product on N={workers} workers",
        fix="lower --m, --n, --p or --workers",
    )
    if backend in ("local", "local-thread"):  # the pool itself, before any data is made
        check_pool_size(workers, "thread" if backend == "local-thread" else "process")
    rng = np.random.default_rng(seed)
    params = {"shift": shift, "rate": rate} if stragglers != "pareto" else {}
    with Progress(*PROGRESS_COLUMNS, console=console, disable=json_out) as bar:
        task = bar.add_task("making A and B", total=4)
        a = rng.standard_normal((m, n)) if a_src is None else a_src
        b = rng.standard_normal((n, p)) if b_src is None else b_src
        bar.update(task, advance=1, description=f"starting {workers} {backend} workers")
        t_start = time.perf_counter()
        with make_executor(backend, **concurrent_options(backend, workers)) as ex:
            # start every worker before timing: pool start-up is reported separately
            ex.gather([ex.submit(abs, -i) for i in range(workers)], deadline=300)
            startup = time.perf_counter() - t_start
            runner = ex
            if stragglers != "none":
                model = model_from_spec(stragglers, **params)
                runner = FaultInjector(ex, stragglers=model, rng=seed)
            bar.update(task, advance=1, description=f"coded product ({code})")
            t0 = time.perf_counter()
            res = coded_matmul(
                a, b, runner, code=code, n_workers=workers, k_blocks=k, mode=mode,
                deadline=deadline, rng=seed,
            )  # fmt: skip
            total = time.perf_counter() - t0
        bar.update(task, advance=1, description="checking against numpy")
        ref = np.asarray(a) @ np.asarray(b)
        rel = float(np.linalg.norm(res.value - ref) / max(np.linalg.norm(ref), 1e-300))
        bar.update(task, advance=1, description="done")
    payload = {
        "code": code, "backend": backend, "n_workers": workers, "k_blocks": k,
        "exact": res.exact, "n_arrived": res.n_arrived, "failed": len(res.gathered.failures),
        "startup_s": startup, "seconds": total, "wait_s": res.wait_seconds,
        "decode_s": res.decode_seconds,
        "relative_error": rel, "predicted_rel_error": res.predicted_rel_error,
        "bytes_sent": res.bytes_sent, "bytes_received": res.bytes_received,
        "bytes_placed": res.bytes_placed,
    }  # fmt: skip
    if json_out:
        emit_json(payload)
    else:
        console.print(res.summary())
        console.print(
            f"relative error vs numpy: {rel:.3g}; total {total:.3f}s "
            f"(executor start-up {startup:.2f}s, not included)"
        )
    return 0


@coded_app.command("simulate")
def simulate(
    workers: int = typer.Option(256, "--workers", help="N workers (a power of two)."),
    k: int = typer.Option(None, help="K data blocks (default N/2)."),
    stragglers: str = typer.Option("bimodal", "--stragglers", help=STRAGGLERS_HELP),
    shift: float = typer.Option(None, help="Minimum task time [default 1]."),
    rate: float = TAIL_RATE_OPTION,
    p_slow: float = typer.Option(None, help="Fraction of heavy stragglers [default 0.1]."),
    slowdown: float = typer.Option(None, help="Slow-down of heavy stragglers [default 10]."),
    trials: int = typer.Option(500, help="Monte-Carlo trials."),
    seed: int = SEED_OPTION,
    plot: Path = typer.Option(None, help="Write a PNG of the completion-time CDFs here."),
    json_out: bool = JSON_OPTION,
    blas_threads: int = BLAS_OPTION,
) -> int:
    """Completion time (incl. decoding) of polar vs uncoded, replication and MDS codes."""
    from ..coded.simulate import default_schemes, simulate_latency

    limit_blas_threads(blas_threads)
    plot = checked_plot_path(plot)
    check_int(seed, "seed", low=0)
    n = check_int(workers, "workers", low=1)
    if n & (n - 1):
        raise InvalidInputError(f"--workers must be a power of two (polar code), got {n}")
    k = max(1, n // 2) if k is None else check_int(k, "k", low=1, high=n)
    trials = check_int(trials, "trials", low=1)
    strag = straggler_model_from_options(
        stragglers, shift=shift, rate=rate, p_slow=p_slow, slowdown=slowdown
    )
    # the trials x N completion times (3 copies), the codes' generators and the N x N
    # prefixes of the polar decodability scan
    check_memory(
        3 * 8.0 * n * trials + 8.0 * n * n + 16.0 * n * k,
        f"{trials} trials of N={n} workers",
        fix="lower --trials or --workers",
    )
    with Progress(*PROGRESS_COLUMNS, console=console, disable=json_out) as bar:
        task = bar.add_task("simulating", total=1.0)
        res = simulate_latency(
            strag,
            default_schemes(n, k, rng=seed),
            k=k,
            trials=trials,
            rng=seed,
            progress=lambda name, f: bar.update(task, completed=f, description=name),
        )
    if plot is not None:
        try:
            _plot(res, plot)
        except OSError as exc:  # passed the checks, but the file system refused it
            raise InvalidInputError(f"--plot {plot}: cannot write the plot ({exc})") from exc
    ideal = next(r for r in res if r.name == "ideal-mds")
    if json_out:
        emit_json(
            {
                "n": n, "k": k, "model": strag.describe(), "trials": trials,
                "schemes": [
                    {"name": r.name, "mean": r.mean, "p50": r.p50, "p99": r.p99,
                     "arrivals_over_k": r.mean_arrivals_over_k, "decode_s": r.decode_units}
                    for r in res
                ],
            }
        )  # fmt: skip
        return 0
    table = Table(title=f"completion time, N={n}, K={k}, {strag.name} {strag.params()}")
    table.add_column("scheme", overflow="fold")  # names wrap, numbers do not
    for col in ("mean", "p50", "p99", "mean / ideal", "arrivals / K", "decode s"):
        table.add_column(col, justify="right", no_wrap=True)
    for r in res:
        table.add_row(r.name, f"{r.mean:.4g}", f"{r.p50:.4g}", f"{r.p99:.4g}",
                      f"{r.mean / ideal.mean:.3f}", f"{r.mean_arrivals_over_k:.3f}",
                      f"{r.decode_units:.3g}")  # fmt: skip
    console.print(table)
    if plot is not None:
        console.print(f"plot written to {plot}")
    return 0


def _plot(res, path: Path) -> None:
    from ..report.output import pyplot, save_png

    plt = pyplot()

    fig, ax = plt.subplots(figsize=(6, 3.6))
    for r in res:
        x = np.sort(r.samples)
        ax.step(x, np.arange(1, x.size + 1) / x.size, where="post", label=r.name)
    ax.set_xscale("log")
    ax.set_xlabel("completion time incl. decoding")
    ax.set_ylabel("CDF")
    ax.legend(fontsize=8)
    save_png(fig, path)


# -- coded derivative-free optimisation (frugalml.coded.dfo), defined in .coded_dfo ------------
coded_app.command("es")(es)
coded_app.command("attack")(attack)
