"""``frugalml subspace train``: data-parallel training with AdaCons / averaging / AdaSum / PowerSGD.

Paper: Choukroun, Azoulay, Kisilev, "Adaptive Consensus Gradients Aggregation for Scaled
Distributed Training" (arXiv 2411.03742). Workers are local processes on the gloo backend.
Registered by the subspace CLI as ``subspace_app.command("train")(train)``.
"""

from __future__ import annotations

import contextlib
import sys
import time
from collections.abc import Iterator

import typer

from .._validate import check_choice, check_int, check_positive_float, check_probability
from ..errors import InvalidInputError
from ._common import BLAS_OPTION, JSON_OPTION, WorkBar, console, emit_json, limit_blas_threads

__all__ = ["train"]


@contextlib.contextmanager
def _rephrase(kind: type[BaseException], replacement: BaseException) -> Iterator[None]:
    """Raise ``replacement`` (in the CLI's words) instead of an exception of ``kind``."""
    try:
        yield
    except kind:
        raise replacement from None


_TASKS = ("linreg", "digits-mlp", "mnist1d-cnn", "charlm")
_AGGREGATIONS = ("mean", "adacons", "adasum", "powersgd")


def train(
    task: str = typer.Option("linreg", help="linreg | digits-mlp | mnist1d-cnn | charlm"),
    workers: int = typer.Option(4, "--workers", help="Worker processes (gloo, this machine)."),
    aggregation: str = typer.Option(
        "adacons", help="adacons | mean (DDP default) | adasum | powersgd"
    ),
    steps: int = typer.Option(100, help="Optimiser steps."),
    batch: int = typer.Option(256, "--batch", help="Global batch (divisible by --workers)."),
    lr: float = typer.Option(None, help="SGD learning rate (default: the task's)."),
    momentum: float = typer.Option(None, help="SGD momentum in [0, 1) (default: the task's)."),
    beta: float = typer.Option(0.9, help="AdaCons subspace momentum in [0, 1)."),
    rescale: str = typer.Option("mean_norm", help="AdaCons scale: mean_norm | none."),
    reference: str = typer.Option(
        "mean", help="AdaCons consensus direction: mean | previous (one all-reduce per step)."
    ),
    schedule: str = typer.Option(
        "auto",
        help="AdaCons communication: allreduce (3 collectives) | allgather (1, N x the bytes) "
        "| auto (allgather if reference=mean and N*P*4 bytes <= 4 MiB).",
    ),
    eval_every: int = typer.Option(10, "--eval-every", help="Evaluate every this many steps."),
    seed: int = typer.Option(0, help="Seed of model, data and sampling."),
    time_limit: float = typer.Option(
        600.0,
        "--time-limit",
        help="Seconds for the whole command, worker start-up included; past it the workers "
        "are stopped and the command fails within 2 s.",
    ),
    json_out: bool = JSON_OPTION,
    blas_threads: int = BLAS_OPTION,
) -> int:
    """Train a small task data-parallel on local worker processes and report the loss curve."""
    started = time.monotonic()
    limit_blas_threads(blas_threads)
    check_choice(task, "--task", _TASKS)
    check_choice(aggregation, "--aggregation", _AGGREGATIONS)
    workers = check_int(workers, "--workers", low=1, high=64)
    steps = check_int(steps, "--steps", low=1)
    batch = check_int(batch, "--batch", low=1)
    if batch % workers:
        raise InvalidInputError(
            f"--batch {batch} is not divisible by --workers {workers}; use a multiple of it"
        )
    if lr is not None:
        check_positive_float(lr, "--lr")
    if momentum is not None:
        check_probability(momentum, "--momentum", allow_one=False)
    check_probability(beta, "--beta", allow_one=False)
    check_choice(rescale, "--rescale", ("mean_norm", "none"))
    check_choice(reference, "--reference", ("mean", "previous"))
    check_choice(schedule, "--schedule", ("auto", "allreduce", "allgather"))
    if schedule == "allgather" and reference != "mean":
        raise InvalidInputError(
            "--schedule allgather needs --reference mean; use --schedule allreduce or auto"
        )
    eval_every = check_int(eval_every, "--eval-every", low=1)
    seed = check_int(seed, "--seed", low=0)
    time_limit = check_positive_float(time_limit, "--time-limit")

    from ..subspace.launcher import WorkerTimeoutError
    from ..subspace.training import train as run_train

    too_late = WorkerTimeoutError(
        f"the command did not finish within --time-limit {time_limit:g} s (worker start-up "
        "included); the workers were stopped: increase --time-limit or use fewer --steps"
    )
    left = time_limit - (time.monotonic() - started)
    if left <= 0:
        raise too_late
    with (
        WorkBar(f"{task} on {workers} workers ({aggregation})", 1.0, disable=json_out) as bar,
        _rephrase(WorkerTimeoutError, too_late),
    ):
        res = run_train(
            task,
            aggregation,
            n_workers=workers,
            global_batch=batch,
            steps=steps,
            lr=lr,
            momentum=momentum,
            beta=beta,
            rescale=rescale,
            reference=reference,
            schedule=schedule,
            eval_every=eval_every,
            rng=seed,
            time_limit=left,
            progress=None if json_out else bar.callback,
        )
    if json_out:
        payload = res.as_dict()
        payload["config"] = dict(payload["config"])
        payload["wall_at_eval"] = res.wall_at_eval()
        emit_json(payload)
    else:
        from rich.table import Table

        table = Table(title=res.summary())
        for col in ("step", "eval loss", "wall s"):
            table.add_column(col, justify="right", no_wrap=True)
        for s, loss, wall in zip(res.eval_steps, res.eval_loss, res.wall_at_eval(), strict=True):
            table.add_row(str(s), f"{loss:.6g}", f"{wall:.3f}")
        console.print(table)
    if res.diverged:
        print(
            f"frugalml: error: training diverged: the loss became non-finite by step "
            f"{res.eval_steps[-1]} (of {steps}); lower --lr",
            file=sys.stderr,
        )
        raise typer.Exit(1)
    return 0
