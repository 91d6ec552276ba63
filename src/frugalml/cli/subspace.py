"""``frugalml subspace saddle`` (PD-SESOP vs first-order baselines on a saddle-point problem)
and ``frugalml subspace train`` (data-parallel training with AdaCons, from :mod:`.subspace_train`).
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import typer

from .._io import atomic_write_bytes
from .._validate import check_choice, check_int, check_positive_float
from ..errors import InvalidInputError
from ._common import (
    BLAS_OPTION,
    JSON_OPTION,
    SEED_OPTION,
    WorkBar,
    checked_plot_path,
    console,
    emit_json,
    limit_blas_threads,
)
from .subspace_train import train

__all__ = ["subspace_app"]

subspace_app = typer.Typer(
    help="Subspace methods: saddle-point SESOP (and subspace gradient aggregation).",
    no_args_is_help=True,
)
subspace_app.command("train")(train)


@subspace_app.callback()
def _group() -> None:
    """Subspace methods (a group, so that ``saddle`` stays a sub-command)."""


PROBLEMS = ("bilinear", "quadratic", "constrained")
METHODS = ("pd-sesop", "extragradient", "ogda", "gda", "proximal-point", "admm")


@subspace_app.command("saddle")
def saddle_cmd(
    problem: str = typer.Option("bilinear", help="bilinear | quadratic | constrained"),
    dim: int = typer.Option(
        100, "--dim", help="Primal dimension of the problem (bilinear/quadratic/constrained)."
    ),
    kappa: float = typer.Option(100.0, help="Condition number (bilinear game, F of the LS)."),
    methods: str = typer.Option(
        "pd-sesop,extragradient,ogda,gda",
        help="Comma-separated: " + ", ".join(METHODS) + " (admm: constrained only).",
    ),
    memory: int = typer.Option(1, help="PD-SESOP memory M >= 1."),
    eta: float = typer.Option(
        None,
        help="PD-SESOP proximal eta > 0 or inf (default: inner saddle: inf on bilinear, 10 "
        "on quadratic, rho/10 = kappa^2/10 on constrained; min_residual: 1e6).",
    ),
    inner: str = typer.Option(
        "exact_quadratic",
        help="PD-SESOP inner rule: exact_quadratic (the paper's proximal inner saddle) | "
        "min_residual (ours)",
    ),
    directions: str = typer.Option(
        None,
        help="PD-SESOP subspace directions, comma-separated from gradient, steps, nemirovski, "
        "hamiltonian (default: gradient,steps for the inner saddle on bilinear games, else "
        "gradient,steps,nemirovski; min_residual off bilinear adds hamiltonian).",
    ),
    tol: float = typer.Option(1e-8, help="Target relative distance (constrained: KKT error)."),
    max_evals: int = typer.Option(200_000, min=1, help="Gradient-evaluation budget per method."),
    seed: int = SEED_OPTION,
    plot: Path = typer.Option(None, "--plot", help="Write a convergence plot (PNG) here."),
    json_out: bool = JSON_OPTION,
    blas_threads: int = BLAS_OPTION,
) -> int:
    """Run PD-SESOP and baselines to a target distance; print a convergence table."""
    from .. import subspace as ss
    from ..subspace.pd_sesop import SADDLE_DIRECTIONS

    plot = checked_plot_path(plot)
    limit_blas_threads(blas_threads)
    check_choice(problem, "--problem", PROBLEMS)
    check_choice(inner, "--inner", ("min_residual", "exact_quadratic"))
    n = check_int(dim, "--dim", low=1)
    kappa = check_positive_float(kappa, "--kappa")
    if kappa < 1:
        raise InvalidInputError(f"--kappa is a condition number and must be >= 1, got {kappa:g}")
    memory = check_int(memory, "--memory", low=1)
    if eta is not None and not (eta > 0):  # (inf is allowed: no proximal term)
        raise InvalidInputError(f"--eta must be > 0 or inf, got {eta}")
    tol = check_positive_float(tol, "--tol")
    seed = check_int(seed, "--seed", low=0)
    chosen = [m.strip() for m in methods.split(",") if m.strip()]
    if not chosen:
        raise InvalidInputError("--methods must name at least one method")
    for m in chosen:
        check_choice(m, "method", METHODS)
    if "admm" in chosen and problem != "constrained":
        raise InvalidInputError("--methods admm needs --problem constrained")
    if directions is not None:
        dirs = tuple(d.strip() for d in directions.split(",") if d.strip())
        if not dirs:
            raise InvalidInputError(
                "--directions must name at least one of " + ", ".join(SADDLE_DIRECTIONS)
            )
        for d in dirs:
            check_choice(d, "direction", SADDLE_DIRECTIONS)
    if problem == "bilinear":
        prob = ss.bilinear_game(n, kappa, rng=seed)
    elif problem == "quadratic":
        prob = ss.quadratic_game(n, rng=seed)
    else:
        # augmented-Lagrangian penalty rho = ||F||^2 = kappa^2 (F's singular values lie in
        # [1, kappa]); PD-SESOP's default eta is rho / 10 (docs/saddle.md); ADMM uses its own rho
        prob = ss.constrained_least_squares(n, int(1.5 * n), max(1, n // 4), kappa=kappa,
                                            rho=kappa**2, rng=seed)  # fmt: skip
    target = "kkt_error" if problem == "constrained" else "distance"
    if eta is None:
        defaults = {"bilinear": math.inf, "quadratic": 10.0, "constrained": kappa**2 / 10.0}
        eta = 1e6 if inner == "min_residual" else defaults[problem]
    L = prob.lipschitz
    x0, y0 = np.zeros(prob.n), np.zeros(prob.m)
    common = {"tol": tol, "max_evals": max_evals, "target": target}
    if directions is not None:
        pass  # (checked above)
    elif inner == "exact_quadratic" and problem == "bilinear":
        dirs = ("gradient", "steps")
    else:
        dirs = ("gradient", "steps", "nemirovski")
        if inner == "min_residual" and problem != "bilinear":
            dirs = (*dirs, "hamiltonian")
    runners = {
        "pd-sesop": lambda: ss.pd_sesop(prob, x0, y0, memory=memory, prox=eta, inner=inner,
                                        directions=dirs, max_iter=10**7, **common),
        "extragradient": lambda: ss.extragradient(prob, x0, y0, lr=0.9 / L, max_iter=10**7,
                                                  **common),
        "ogda": lambda: ss.optimistic_gda(prob, x0, y0, lr=0.45 / L, max_iter=10**7, **common),
        "gda": lambda: ss.gda(prob, x0, y0, lr=0.1 / L, max_iter=10**7, **common),
        "proximal-point": lambda: ss.proximal_point(prob, x0, y0, eta=10.0 / L,
                                                    max_iter=max_evals, **common),
        "admm": lambda: ss.admm_equality_ls(prob, x0, rho=10.0, cg_tol=0.1, max_iter=10**7,
                                            **common),
    }  # fmt: skip
    results = {}
    with WorkBar(prob.name, total=1.0, disable=json_out) as bar:
        for i, m in enumerate(chosen):
            prob.reset_count()
            if not json_out:
                common["progress"] = lambda msg, frac, i=i: bar.callback(
                    msg, (i + frac) / len(chosen)
                )
            results[m] = runners[m]()
    rows = []
    for m, r in results.items():
        state = "converged" if r.converged else ("diverged" if r.diverged else "budget")
        rows.append({"method": m, "state": state, "evals_to_tol": r.evals_to(tol),
                     "seconds_to_tol": r.seconds_to(tol), "grad_evals": r.grad_evals,
                     "iterations": r.iterations, "final": r.final})  # fmt: skip
    if plot is not None:
        _plot(plot, results, target, tol, prob.name)
    payload = {"problem": prob.name, "target": target, "tol": tol, "methods": rows,
               "plot": None if plot is None else str(plot)}  # fmt: skip
    if json_out:
        emit_json(payload)
    else:
        from rich.table import Table

        table = Table(title=f"{prob.name}: {target} to {tol:g}")
        table.add_column("method", justify="right", overflow="fold")
        for col in ("state", "evals to tol", "seconds to tol", "evals", "final"):
            table.add_column(col, justify="right", no_wrap=True)
        for r in rows:
            cells = (r["method"], r["state"], _s(r["evals_to_tol"]), _s(r["seconds_to_tol"]))
            table.add_row(*cells, str(r["grad_evals"]), f"{r['final']:.3e}")
        console.print(table)
        if plot is not None:
            console.print(f"plot written to {plot}")
    return 0


def _s(v) -> str:
    if v is None:
        return "-"
    return f"{v:.3g}" if isinstance(v, float) else str(v)


def _plot(path: Path, results, target: str, tol: float, title: str) -> None:
    from ..report.output import figure_png, pyplot

    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6, 4))
    for m, r in results.items():
        ax.semilogy(np.maximum(r.history["evals"], 1), np.maximum(r.history[target], 1e-16),
                    label=m)  # fmt: skip
    ax.axhline(tol, color="k", lw=0.5, ls=":")
    ax.set_xscale("log")
    ax.set_ylim(1e-12, 1e4)
    ax.set_xlabel("gradient evaluations")
    ax.set_ylabel(target)
    ax.set_title(title, fontsize=8)
    ax.legend(fontsize=7)
    atomic_write_bytes(path, figure_png(fig))
