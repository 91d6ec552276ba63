"""Data-parallel training on local worker processes: one training loop for every gradient
aggregation, and the drivers that run configurations and time steps.

Used to compare AdaCons (Choukroun, Azoulay, Kisilev, "Adaptive Consensus Gradients
Aggregation for Scaled Distributed Training", arXiv 2411.03742) with plain averaging (DDP's
default), AdaSum (Maleki et al., arXiv 2006.02924) and PowerSGD (Vogels et al., arXiv
1905.13727, PyTorch's built-in hook) under equal conditions, on the tasks of
:mod:`.workloads`.

:func:`train` runs one configuration, :func:`train_many` several configurations inside one
group of worker processes (process start-up is paid once). Every worker samples its own
minibatch of ``global_batch / N`` examples; rank 0 records the minibatch loss every step, the
evaluation loss every ``eval_every`` steps (outside the timed region, followed by a barrier),
and the wall time of every step. Results are :class:`~.runs.TrainResult` records, with
communication counted by :func:`~.runs.comm_floats`.
"""

from __future__ import annotations

import math
import time
from typing import Any

import numpy as np

from .._deprecation import renamed_parameters
from .._resources import check_memory
from .._validate import RngLike, check_choice, check_int, check_positive_float, seed_from_rng
from ..errors import InvalidInputError, TaskFailedError
from ..progress import Progress
from .runs import RunConfig, TrainResult, comm_floats
from .workloads import DEFAULTS, TASKS, Task, make_task

__all__ = ["measure_step_times", "train", "train_and_time", "train_jobs", "train_many"]


def _setup(task: Task, cfg: RunConfig) -> tuple[Any, Any, Any, Any]:
    """(model, DDP model, AdaCons aggregator or None, optimizer) for ``cfg``."""
    import torch
    from torch.nn.parallel import DistributedDataParallel as DDP

    from .aggregation import AdaConsAggregator, check_same_parameters

    model = task.model(cfg.seed)
    check_same_parameters(model)
    ddp = DDP(model)
    agg = None
    if cfg.aggregation == "adacons":
        agg = AdaConsAggregator(
            ddp,
            beta=cfg.beta,
            rescale=cfg.rescale,
            reference=cfg.reference,
            schedule=cfg.schedule,
        )
        agg.register()
    elif cfg.aggregation == "adasum":
        from .adasum import AdaSumState, adasum_hook

        ddp.register_comm_hook(AdaSumState(), adasum_hook)
    elif cfg.aggregation == "powersgd":
        from torch.distributed.algorithms.ddp_comm_hooks import powerSGD_hook as psgd

        state = psgd.PowerSGDState(
            process_group=None,
            matrix_approximation_rank=cfg.powersgd_rank,
            start_powerSGD_iter=2,
            random_seed=cfg.seed,
        )
        ddp.register_comm_hook(state, psgd.powerSGD_hook)
    opt = torch.optim.SGD(ddp.parameters(), lr=cfg.lr, momentum=cfg.momentum)
    return model, ddp, agg, opt


def _one_step(task: Task, ddp: Any, agg: Any, opt: Any, gen: Any, per_worker: int) -> Any:
    batch = task.batch(gen, per_worker)
    opt.zero_grad(set_to_none=True)
    loss = task.loss(ddp, batch)
    loss.backward()
    if agg is not None:
        agg.step()
    opt.step()
    return loss


def _run_one(rank: int, world: int, task: Task, cfg: RunConfig, run_id: int) -> dict[str, Any]:
    import torch
    import torch.distributed as dist

    from .launcher import report_progress

    model, ddp, agg, opt = _setup(task, cfg)
    gen = torch.Generator().manual_seed(1_000_003 * cfg.seed + 7919 * rank + run_id)
    per_worker = cfg.global_batch // world
    eval_steps, eval_loss, train_loss, times = [0], [task.eval_loss(model)], [], []
    diverged = False
    dist.barrier()
    reported = time.monotonic()
    for step in range(1, cfg.steps + 1):
        t0 = time.perf_counter()
        loss = _one_step(task, ddp, agg, opt, gen, per_worker)
        times.append(time.perf_counter() - t0)
        value = float(loss.detach())
        train_loss.append(value)
        if rank == 0 and (time.monotonic() - reported > 0.1 or step == cfg.steps):
            reported = time.monotonic()
            report_progress(("train", run_id, step, cfg.steps, value))
        flag = torch.tensor([0.0 if math.isfinite(value) else 1.0])
        if step % cfg.eval_every == 0 or step == cfg.steps:
            dist.all_reduce(flag)  # every rank stops together if any diverged
            if rank == 0:
                eval_steps.append(step)
                eval_loss.append(task.eval_loss(model))
            dist.barrier()
            if flag.item() > 0 or (rank == 0 and not math.isfinite(eval_loss[-1])):
                diverged = True
            if flag.item() > 0:
                break
    return {
        "task": task.kind,
        "n_workers": world,
        "config": cfg,
        "n_params": sum(p.numel() for p in model.parameters()),
        "eval_steps": tuple(eval_steps),
        "eval_loss": tuple(eval_loss),
        "train_loss": tuple(train_loss),
        "step_seconds": tuple(times),
        "comm_floats": comm_floats(
            model, cfg, world, agg.schedule_ if agg is not None else "allreduce"
        ),
        "skipped_steps": agg.skipped_steps_ if agg is not None else 0,
        "fallback_steps": agg.fallback_steps_ if agg is not None else 0,
        "diverged": diverged,
    }


def _time_block(rank: int, world: int, task: Task, configs: list[RunConfig], rounds: int):
    import torch
    import torch.distributed as dist

    setups = [_setup(task, cfg) for cfg in configs]
    gens = [torch.Generator().manual_seed(7919 * rank + i) for i in range(len(configs))]
    times: list[list[float]] = [[] for _ in configs]
    k = len(configs)
    for r in range(rounds):
        for j in range(k):
            i = (r + j) % k  # rotate the order so that no method always runs first
            _, ddp, agg, opt = setups[i]
            dist.barrier()
            t0 = time.perf_counter()
            _one_step(task, ddp, agg, opt, gens[i], configs[i].global_batch // world)
            times[i].append(time.perf_counter() - t0)
    return times


def _suite_worker(
    rank: int,
    world: int,
    jobs: list[tuple[Task, RunConfig]],
    blocks: list[tuple[Task, list[RunConfig]]],
    rounds: int,
) -> tuple[list[Any], list[Any]]:
    runs = []
    for i, (task, cfg) in enumerate(jobs):
        res = _run_one(rank, world, task, cfg, i)
        runs.append(res if rank == 0 else None)
    from .launcher import report_progress

    timings = []
    for b, (task, cfgs) in enumerate(blocks):
        timings.append(_time_block(rank, world, task, cfgs, rounds))
        if rank == 0:
            report_progress(("timing", b, len(blocks)))
    return runs, timings


def _resolve(task: str | Task, built: dict[str, Task], seed: int) -> Task:
    if isinstance(task, str):
        if task not in built:
            built[task] = make_task(task, rng=seed)
        return built[task]
    if not isinstance(task, Task):
        raise InvalidInputError(f"task must be a name or a Task, got {type(task).__name__}")
    return task


#: floats each example of a minibatch occupies in a worker (input + activations, roughly), for
#: the memory guard; the models themselves are small (<= 0.2 M parameters)
_FLOATS_PER_EXAMPLE = {"linreg": 1_000, "digits-mlp": 250, "mnist1d-cnn": 2_000, "charlm": 52_000}


def _check_size(task: Task, cfg: RunConfig, n_workers: int) -> None:
    """Refuse, before any process starts, a run whose minibatches (all workers on this
    machine, forward and backward) or per-step history would not fit in memory."""
    per_worker = cfg.global_batch // n_workers
    batch_bytes = 3 * 4 * _FLOATS_PER_EXAMPLE[task.kind] * per_worker * n_workers
    check_memory(
        batch_bytes,
        f"a global batch of {cfg.global_batch} {task.kind} examples on {n_workers} workers "
        "(inputs and activations, forward and backward)",
        fix="use a smaller batch (--batch) or fewer workers",
    )
    check_memory(
        64 * cfg.steps,
        f"the per-step history (loss and wall time) of {cfg.steps} steps",
        fix="use fewer steps (--steps)",
    )


def _check_cfg(cfg: Any, n_workers: int) -> None:
    if not isinstance(cfg, RunConfig):
        raise InvalidInputError(f"configs must be RunConfig objects, got {type(cfg).__name__}")
    if cfg.global_batch % n_workers:
        raise InvalidInputError(
            f"global_batch={cfg.global_batch} is not divisible by n_workers={n_workers}; "
            "pick a multiple so that every worker gets the same number of examples"
        )


@renamed_parameters(seed="rng", timeout="time_limit")
def train_and_time(
    jobs: list[tuple[str | Task, RunConfig]],
    timing: list[tuple[str | Task, list[RunConfig]]] | None = None,
    *,
    n_workers: int = 4,
    rounds: int = 40,
    warmup: int = 5,
    time_limit: float = 600.0,
    rng: RngLike = 0,
    progress: Progress | None = None,
) -> tuple[list[TrainResult], list[list[list[float]]]]:
    """Training runs and interleaved step timings in one group of ``n_workers`` processes.

    ``jobs``: ``(task, config)`` training runs, one after another, each from a fresh model.
    ``timing``: blocks ``(task, configs)``; for each block every configuration gets its own
    model and, for ``rounds`` rounds, one training step per configuration in a rotating order,
    each after a barrier, so that load drifts of the machine affect every method alike.
    Tasks given by name are built once with :func:`~.workloads.make_task` and the integer seed
    drawn from ``rng`` (an int seed is used as is, so the same int gives the same data).

    Returns ``(results, times)``: one :class:`TrainResult` per job (rank 0's view) and, per
    block and configuration, rank 0's step wall times (seconds) after ``warmup`` rounds.
    Process start-up (seconds per process on a small machine) is paid once.

    ``time_limit`` (seconds) bounds the whole call from its start: building the tasks,
    starting the processes and running; past it the workers are stopped and
    :class:`~frugalml.errors.TaskFailedError` is raised within
    :data:`~.launcher.STOP_MARGIN` seconds. ``progress(message, fraction)`` is called as rank
    0 advances (see :data:`~frugalml.progress.Progress`). The old keywords ``seed=`` and
    ``timeout=`` still work, with a deprecation warning.
    """
    from .launcher import WorkerTimeoutError, run_workers

    started = time.monotonic()
    n_workers = check_int(n_workers, "n_workers", low=1, high=64)
    rounds = check_int(rounds, "rounds", low=1)
    warmup = check_int(warmup, "warmup", low=0, high=rounds - 1)
    time_limit = check_positive_float(time_limit, "time_limit")
    seed = seed_from_rng(rng)
    jobs, timing = list(jobs), list(timing or [])
    if not jobs and not timing:
        raise InvalidInputError("nothing to run: pass training jobs or timing blocks")
    built: dict[str, Task] = {}
    resolved = []
    for task, cfg in jobs:
        _check_cfg(cfg, n_workers)
        resolved.append((_resolve(task, built, seed), cfg))
    blocks = []
    for task, cfgs in timing:
        if not cfgs:
            raise InvalidInputError("a timing block has no configurations")
        for cfg in cfgs:
            _check_cfg(cfg, n_workers)
        blocks.append((_resolve(task, built, seed), list(cfgs)))
    for task, cfg in resolved:
        _check_size(task, cfg, n_workers)
    for task, cfgs in blocks:
        for cfg in cfgs:
            _check_size(task, cfg, n_workers)
    total = sum(cfg.steps for _, cfg in resolved) + len(blocks) * rounds * 1.0
    done_before = np.cumsum([0] + [cfg.steps for _, cfg in resolved])

    def relay(rank: int, item: Any) -> None:
        if progress is None:
            return
        if item[0] == "train":
            _, i, step, steps, loss = item
            task, cfg = resolved[i]
            progress(
                f"{task.kind} {cfg.aggregation}: step {step}/{steps}, loss {loss:.4g}",
                min(1.0, (done_before[i] + step) / total),
            )
        else:
            _, b, count = item
            progress(f"timing block {b + 1}/{count}",
                     min(1.0, (done_before[-1] + (b + 1) * rounds) / total))  # fmt: skip

    left = time_limit - (time.monotonic() - started)
    if left <= 0:
        raise TaskFailedError(
            f"the time limit of {time_limit:g} s passed while building the tasks; increase it"
        )
    if progress is not None:
        progress(f"starting {n_workers} worker processes", 0.0)
    try:
        out = run_workers(_suite_worker, n_workers, args=(resolved, blocks, rounds),
                          timeout=left, on_report=relay)  # fmt: skip
    except WorkerTimeoutError:
        raise WorkerTimeoutError(
            f"the run did not finish within the time limit of {time_limit:g} s (building the "
            f"task and starting the {n_workers} worker processes included); the workers were "
            "stopped: increase the time limit or make the run smaller"
        ) from None
    runs, timings = out[0]
    return [TrainResult(**d) for d in runs], [[t[warmup:] for t in b] for b in timings]


@renamed_parameters(seed="rng", timeout="time_limit")
def train_jobs(
    jobs: list[tuple[str | Task, RunConfig]],
    *,
    n_workers: int = 4,
    time_limit: float = 600.0,
    rng: RngLike = 0,
    progress: Progress | None = None,
) -> list[TrainResult]:
    """Run ``(task, config)`` jobs one after another in one group of processes.

    See :func:`train_and_time` (also for ``time_limit``, ``rng`` and ``progress``). Returns
    one :class:`~.runs.TrainResult` per job.
    """
    if not jobs:
        raise InvalidInputError("no jobs given; pass at least one (task, RunConfig) pair")
    return train_and_time(jobs, n_workers=n_workers, time_limit=time_limit, rng=rng,
                          progress=progress)[0]  # fmt: skip


@renamed_parameters(seed="rng", timeout="time_limit")
def measure_step_times(
    task: str | Task,
    configs: list[RunConfig],
    *,
    n_workers: int = 4,
    rounds: int = 40,
    warmup: int = 5,
    time_limit: float = 600.0,
    rng: RngLike = 0,
) -> list[list[float]]:
    """Interleaved step wall times (seconds, rank 0) of ``configs`` on ``task``.

    See :func:`train_and_time`; used to measure the overhead of a hook over averaging.
    """
    if not configs:
        raise InvalidInputError("configs is empty; pass at least one RunConfig")
    return train_and_time(
        [],
        [(task, configs)],
        n_workers=n_workers,
        rounds=rounds,
        warmup=warmup,
        time_limit=time_limit,
        rng=rng,
    )[1][0]


@renamed_parameters(seed="rng", timeout="time_limit")
def train_many(
    task: str | Task,
    configs: list[RunConfig],
    *,
    n_workers: int = 4,
    time_limit: float = 600.0,
    rng: RngLike = 0,
    progress: Progress | None = None,
) -> list[TrainResult]:
    """Several configurations of one task in one group of processes (see :func:`train_jobs`).

    ``rng`` builds a task given by name (each configuration's own seed is
    :attr:`RunConfig.seed <.runs.RunConfig.seed>`)."""
    if not configs:
        raise InvalidInputError("configs is empty; pass at least one RunConfig")
    return train_jobs([(task, c) for c in configs], n_workers=n_workers, time_limit=time_limit,
                      rng=rng, progress=progress)  # fmt: skip


@renamed_parameters(seed="rng", timeout="time_limit")
def train(
    task: str | Task,
    aggregation: str = "adacons",
    *,
    n_workers: int = 4,
    global_batch: int = 256,
    steps: int = 100,
    lr: float | None = None,
    momentum: float | None = None,
    beta: float = 0.9,
    rescale: str = "mean_norm",
    reference: str = "mean",
    schedule: str = "auto",
    eval_every: int = 10,
    rng: RngLike = 0,
    time_limit: float = 600.0,
    progress: Progress | None = None,
) -> TrainResult:
    """Train ``task`` data-parallel on ``n_workers`` local processes with ``aggregation``.

    ``lr``/``momentum`` default to the task's values in :data:`~.workloads.DEFAULTS`. ``rng``
    (an int seed, used as is, or a Generator that draws one) seeds the model initialisation,
    the minibatch sampling and the task's data: it becomes the run's
    :attr:`RunConfig.seed <.runs.RunConfig.seed>`. See :class:`~.runs.RunConfig` for the other
    options and :func:`train_and_time` for ``time_limit`` (the whole call, process start-up
    included) and ``progress``. Returns a :class:`~.runs.TrainResult`. The old keywords
    ``seed=`` and ``timeout=`` still work, with a deprecation warning.
    """
    name = task if isinstance(task, str) else task.kind
    check_choice(name, "task", TASKS)
    seed = seed_from_rng(rng)
    d_lr, d_mom = DEFAULTS[name]
    cfg = RunConfig(
        aggregation=aggregation,
        lr=d_lr if lr is None else lr,
        global_batch=global_batch,
        steps=steps,
        momentum=d_mom if momentum is None else momentum,
        beta=beta,
        rescale=rescale,
        reference=reference,
        schedule=schedule,
        eval_every=eval_every,
        seed=seed,
    )
    return train_many(task, [cfg], n_workers=n_workers, time_limit=time_limit, rng=seed,
                      progress=progress)[0]  # fmt: skip
