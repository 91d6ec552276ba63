"""Offline data-parallel training tasks and one training loop for every gradient aggregation.

Used to compare AdaCons (Choukroun, Azoulay, Kisilev, arXiv 2411.03742) with plain averaging
(DDP's default), AdaSum (Maleki et al., arXiv 2006.02924) and PowerSGD (Vogels et al.,
arXiv 1905.13727, PyTorch's built-in hook) under equal conditions.

Tasks (no downloads; data are generated or read locally):

* ``"linreg"`` — the linear-regression problem of the AdaCons sample code: ``w in R^1000``
  starting uniform in ``[-5, 5]``, inputs ``x ~ U[0, 1]^1000``, loss ``0.5 (w.x)^2``. The
  evaluation loss is the exact expectation ``0.5 w^T (I/12 + 11^T/4) w``.
* ``"digits-mlp"`` — a 64-64-10 tanh MLP on scikit-learn's bundled digits (1437 train images);
  evaluation = full training-set cross-entropy (the objective being optimised).
* ``"mnist1d-cnn"`` — a two-layer 1-D CNN on MNIST-1D (Greydanus 2020) generated locally with
  the ``mnist1d`` package (3200 train samples); evaluation = full training-set cross-entropy.
* ``"charlm"`` — a one-layer causal transformer (d=48, 4 heads, context 32) over the bytes of
  the Python standard library's top-level ``*.py`` sources (sorted file list, first 300 kB);
  evaluation = cross-entropy on 128 fixed held-out windows from the last 10 % of the text.

:func:`train` runs one configuration, :func:`train_many` several configurations inside one
group of worker processes (process start-up is paid once). Every worker samples its own
minibatch of ``global_batch / N`` examples; rank 0 records the minibatch loss every step, the
evaluation loss every ``eval_every`` steps (outside the timed region, followed by a barrier),
and the wall time of every step.

Communication is reported as floats *received* per worker per step under the ring cost model:
an all-reduce of ``P`` floats moves ``2 P (N-1)/N``, an all-gather of ``m`` floats per rank
``m (N-1)``. PowerSGD's figure is the same model applied to its rank-r factors (tensors it
would not compress are counted uncompressed).
"""

from __future__ import annotations

import math
import sysconfig
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .._mnist1d import generate_mnist1d
from .._optional import require
from .._resources import check_memory
from .._results import ResultRepr
from .._validate import (
    check_choice,
    check_int,
    check_positive_float,
    check_probability,
)
from ..errors import InvalidInputError, TaskFailedError
from ..progress import Progress

__all__ = [
    "AGGREGATIONS",
    "TASKS",
    "Progress",
    "RunConfig",
    "Task",
    "TrainResult",
    "make_task",
    "measure_step_times",
    "stdlib_text",
    "train",
    "train_and_time",
    "train_jobs",
    "train_many",
]

TASKS = ("linreg", "digits-mlp", "mnist1d-cnn", "charlm")

#: progress callback: ``progress(message, fraction done in [0, 1])``
AGGREGATIONS = ("mean", "adacons", "adasum", "powersgd")

#: default (learning rate, SGD momentum) per task, found on a small grid with averaging
DEFAULTS: dict[str, tuple[float, float]] = {
    "linreg": (0.004, 0.0),
    "digits-mlp": (0.1, 0.9),
    "mnist1d-cnn": (0.05, 0.9),
    "charlm": (0.3, 0.9),
}


# --------------------------------------------------------------------------------------------
# tasks
# --------------------------------------------------------------------------------------------


def stdlib_text(max_bytes: int = 300_000) -> bytes:
    """The first ``max_bytes`` bytes of the standard library's top-level ``*.py`` files.

    Files are read in sorted order of their names from ``sysconfig.get_paths()["stdlib"]`` and
    concatenated (separated by a newline), so the corpus is deterministic for a given Python.
    """
    max_bytes = check_int(max_bytes, "max_bytes", low=1000)
    root = Path(sysconfig.get_paths()["stdlib"])
    chunks, total = [], 0
    for path in sorted(root.glob("*.py")):
        data = path.read_bytes() + b"\n"
        chunks.append(data)
        total += len(data)
        if total >= max_bytes:
            break
    text = b"".join(chunks)[:max_bytes]
    if len(text) < 1000:
        raise InvalidInputError(f"found only {len(text)} bytes of Python sources under {root}")
    return text


@dataclass(frozen=True)
class Task:
    """A training task: data as NumPy arrays (picklable) plus how to build the model.

    ``kind`` is one of :data:`TASKS`; ``arrays`` holds the data (``X``, ``y`` or ``tokens``),
    ``params`` the task's sizes. Methods taking ``torch`` objects run inside the workers.
    """

    kind: str
    arrays: dict[str, np.ndarray] = field(default_factory=dict)
    params: dict[str, int] = field(default_factory=dict)

    def summary(self) -> str:
        sizes = ", ".join(f"{k} {tuple(v.shape)}" for k, v in self.arrays.items())
        return f"task {self.kind}: " + (
            sizes or ", ".join(f"{k}={v}" for k, v in self.params.items())
        )

    # -- inside workers -------------------------------------------------------------------
    def model(self, seed: int) -> Any:
        """A fresh model (identical for equal seeds)."""
        torch = require("torch", what="the subspace training tasks", extra="subspace")
        nn = torch.nn
        torch.manual_seed(seed)
        if self.kind == "linreg":
            m = nn.Linear(self.params["dim"], 1, bias=False)
            with torch.no_grad():
                m.weight.uniform_(-5.0, 5.0)
            return m
        if self.kind == "digits-mlp":
            return nn.Sequential(nn.Linear(64, 64), nn.Tanh(), nn.Linear(64, 10))
        if self.kind == "mnist1d-cnn":
            return nn.Sequential(
                nn.Conv1d(1, 16, 5, padding=2),
                nn.ReLU(),
                nn.Conv1d(16, 16, 5, stride=2, padding=2),
                nn.ReLU(),
                nn.Flatten(),
                nn.Linear(16 * 20, 10),
            )
        return _char_lm(self.params["context"], self.params["width"])

    def _data(self, torch: Any) -> dict[str, Any]:
        cache = self.__dict__.setdefault("_torch_cache", {})
        if not cache:
            for k, v in self.arrays.items():
                cache[k] = torch.from_numpy(v)
            if self.kind == "charlm":
                n = cache["tokens"].numel()
                cut = int(0.9 * n)
                cache["train"] = cache["tokens"][:cut]
                held = cache["tokens"][cut:]
                ctx = self.params["context"]
                starts = torch.linspace(0, held.numel() - ctx - 2, 128).long()
                cache["eval_idx"] = starts
                cache["held"] = held
        return cache

    def batch(self, gen: Any, size: int) -> tuple[Any, ...]:
        """A minibatch of ``size`` examples drawn with the torch generator ``gen``."""
        torch = require("torch", what="the subspace training tasks", extra="subspace")
        if self.kind == "linreg":
            return (torch.rand(size, self.params["dim"], generator=gen),)
        data = self._data(torch)
        if self.kind == "charlm":
            ctx = self.params["context"]
            train = data["train"]
            starts = torch.randint(0, train.numel() - ctx - 1, (size,), generator=gen)
            return _windows(torch, train, starts, ctx)
        idx = torch.randint(0, data["y"].numel(), (size,), generator=gen)
        return data["X"][idx], data["y"][idx]

    def loss(self, model: Any, batch: tuple[Any, ...]) -> Any:
        """The training loss of ``model`` on ``batch`` (a scalar tensor)."""
        torch = require("torch", what="the subspace training tasks", extra="subspace")
        if self.kind == "linreg":
            return 0.5 * (model(batch[0]) ** 2).sum(-1).mean()
        if self.kind == "charlm":
            logits = model(batch[0])
            return torch.nn.functional.cross_entropy(logits.reshape(-1, 256), batch[1].reshape(-1))
        return torch.nn.functional.cross_entropy(model(batch[0]), batch[1])

    def eval_loss(self, model: Any) -> float:
        """The evaluation loss (see the module docstring), without gradients."""
        torch = require("torch", what="the subspace training tasks", extra="subspace")
        with torch.no_grad():
            if self.kind == "linreg":
                w = model.weight.double().reshape(-1)
                return float(0.5 * (w @ w / 12.0 + w.sum() ** 2 / 4.0))
            data = self._data(torch)
            if self.kind == "charlm":
                x, y = _windows(torch, data["held"], data["eval_idx"], self.params["context"])
                return float(self.loss(model, (x, y)))
            return float(self.loss(model, (data["X"], data["y"])))


def _windows(torch: Any, tokens: Any, starts: Any, ctx: int) -> tuple[Any, Any]:
    offs = torch.arange(ctx + 1)
    win = tokens[starts[:, None] + offs[None, :]].long()
    return win[:, :-1], win[:, 1:]


def _charlm_class() -> Any:
    torch = require("torch", what="the charlm task", extra="subspace")
    nn = torch.nn

    class CharLM(nn.Module):
        """Byte-level causal transformer: embedding + 1 pre-norm encoder layer + linear head."""

        def __init__(self, context: int, width: int) -> None:
            super().__init__()
            self.tok = nn.Embedding(256, width)
            self.pos = nn.Parameter(0.02 * torch.randn(context, width))
            layer = nn.TransformerEncoderLayer(
                width, 4, 2 * width, dropout=0.0, batch_first=True, norm_first=True
            )
            self.body = nn.TransformerEncoder(layer, 1, enable_nested_tensor=False)
            self.norm = nn.LayerNorm(width)
            self.head = nn.Linear(width, 256)
            mask = torch.triu(torch.full((context, context), float("-inf")), diagonal=1)
            self.register_buffer("mask", mask, persistent=False)

        def forward(self, x: Any) -> Any:
            t = x.shape[1]
            h = self.tok(x) + self.pos[:t]
            h = self.body(h, mask=self.mask[:t, :t], is_causal=True)
            return self.head(self.norm(h))

    return CharLM


def _char_lm(context: int, width: int) -> Any:
    return _charlm_class()(context, width)


def make_task(name: str, *, seed: int = 0) -> Task:
    """Build task ``name`` (one of :data:`TASKS`); data sets are generated/read locally."""
    check_choice(name, "task", TASKS)
    seed = check_int(seed, "seed", low=0)
    if name == "linreg":
        return Task("linreg", {}, {"dim": 1000})
    if name == "digits-mlp":
        datasets = require("sklearn.datasets", what="the digits-mlp task", extra="subspace")
        d = datasets.load_digits()
        gen = np.random.default_rng(seed)
        order = gen.permutation(len(d.target))[: int(0.8 * len(d.target))]
        X = (d.data[order] / 16.0).astype(np.float32)
        return Task("digits-mlp", {"X": X, "y": d.target[order].astype(np.int64)}, {})
    if name == "mnist1d-cnn":
        x, y, _, _ = generate_mnist1d(4000, seed, what="the mnist1d-cnn task", extra="subspace")
        X = np.ascontiguousarray(x.astype(np.float32)[:, None, :])
        return Task("mnist1d-cnn", {"X": X, "y": y}, {})
    tokens = np.frombuffer(stdlib_text(), dtype=np.uint8).copy()
    return Task("charlm", {"tokens": tokens}, {"context": 32, "width": 48})


# --------------------------------------------------------------------------------------------
# configurations and results
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RunConfig:
    """One training run.

    aggregation: one of :data:`AGGREGATIONS`.
    lr, momentum: SGD learning rate and heavy-ball momentum.
    global_batch: examples per step over all workers (divisible by the number of workers).
    steps: optimiser steps; eval_every: evaluation period (the last step is always evaluated).
    beta, rescale, reference, schedule: AdaCons options (see
        :class:`~.aggregation.AdaConsAggregator`).
    powersgd_rank: PowerSGD's matrix approximation rank.
    seed: model initialisation and data-sampling seed.
    """

    aggregation: str
    lr: float
    global_batch: int
    steps: int
    momentum: float = 0.0
    beta: float = 0.0
    rescale: str = "mean_norm"
    reference: str = "mean"
    schedule: str = "auto"
    powersgd_rank: int = 1
    eval_every: int = 10
    seed: int = 0

    def __post_init__(self) -> None:
        check_choice(self.aggregation, "aggregation", AGGREGATIONS)
        check_positive_float(self.lr, "lr")
        check_int(self.global_batch, "global_batch", low=1)
        check_int(self.steps, "steps", low=1)
        check_probability(self.momentum, "momentum", allow_one=False)
        check_probability(self.beta, "beta", allow_one=False)
        check_choice(self.rescale, "rescale", ("mean_norm", "none"))
        check_choice(self.reference, "reference", ("mean", "previous"))
        check_choice(self.schedule, "schedule", ("auto", "allreduce", "allgather"))
        if self.schedule == "allgather" and self.reference != "mean":
            raise InvalidInputError(
                'schedule="allgather" needs reference="mean"; use schedule="allreduce" or '
                '"auto" with reference="previous"'
            )
        check_int(self.powersgd_rank, "powersgd_rank", low=1)
        check_int(self.eval_every, "eval_every", low=1)
        check_int(self.seed, "seed", low=0)


@dataclass(frozen=True, repr=False)
class TrainResult(ResultRepr):
    """Measurements of one run (rank 0's view; all ranks hold the same parameters).

    eval_steps / eval_loss: evaluation loss after those steps (step 0 = initial model).
    train_loss: rank 0's minibatch loss at every step. step_seconds: wall time of every step.
    comm_floats: floats received per worker per step (ring cost model, see module docstring).
    skipped_steps / fallback_steps: AdaCons steps skipped (non-finite) / guard fallbacks.
    diverged: the loss became non-finite (the run stopped early).
    """

    task: str
    n_workers: int
    config: RunConfig
    n_params: int
    eval_steps: tuple[int, ...]
    eval_loss: tuple[float, ...]
    train_loss: tuple[float, ...]
    step_seconds: tuple[float, ...]
    comm_floats: float
    skipped_steps: int = 0
    fallback_steps: int = 0
    diverged: bool = False

    @property
    def final_loss(self) -> float:
        """Last evaluation loss (``inf`` if the run diverged)."""
        return math.inf if self.diverged else self.eval_loss[-1]

    @property
    def seconds_per_step(self) -> float:
        """Median step wall time (seconds), robust to the first step's warm-up."""
        return float(np.median(self.step_seconds)) if self.step_seconds else math.nan

    def wall_at_eval(self) -> list[float]:
        """Cumulative step wall time at each evaluation step."""
        cum = np.concatenate([[0.0], np.cumsum(self.step_seconds)])
        return [float(cum[min(s, len(cum) - 1)]) for s in self.eval_steps]

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["final_loss"] = self.final_loss
        d["seconds_per_step"] = self.seconds_per_step
        return d

    def summary(self) -> str:
        c = self.config
        return (
            f"{self.task} N={self.n_workers} batch={c.global_batch} {c.aggregation} lr={c.lr:g}: "
            f"loss {self.eval_loss[0]:.4g} -> {self.final_loss:.4g} in {c.steps} steps, "
            f"{1e3 * self.seconds_per_step:.2f} ms/step, {self.comm_floats:.0f} floats/step"
            + (f", {self.skipped_steps} skipped" if self.skipped_steps else "")
            + (", diverged" if self.diverged else "")
        )


def _comm_floats(model: Any, cfg: RunConfig, n: int, schedule: str = "allreduce") -> float:
    params = [p for p in model.parameters() if p.requires_grad]
    total = sum(p.numel() for p in params)
    ar = 2.0 * (n - 1) / n
    if cfg.aggregation == "mean":
        return ar * total
    if cfg.aggregation == "adacons":
        if schedule == "allgather":  # one all-gather of the gradients
            return float((n - 1) * total)
        if cfg.reference == "previous" and cfg.beta == 0.0:  # one fused all-reduce
            return ar * (total + 3 * n)
        reductions = 1 if cfg.reference == "previous" else 2
        return reductions * ar * total + 3 * (n - 1)
    if cfg.aggregation == "adasum":
        return float((n - 1) * total)
    floats = 0.0
    r = cfg.powersgd_rank
    for p in params:
        if p.ndim <= 1:
            floats += p.numel()
            continue
        rows, cols = p.shape[0], p.numel() // p.shape[0]
        compressed = (rows + cols) * min(r, rows, cols)
        floats += compressed if rows * cols >= 2 * compressed else rows * cols
    return ar * floats


# --------------------------------------------------------------------------------------------
# the worker loop
# --------------------------------------------------------------------------------------------


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
        "comm_floats": _comm_floats(
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
            built[task] = make_task(task, seed=seed)
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


def train_and_time(
    jobs: list[tuple[str | Task, RunConfig]],
    timing: list[tuple[str | Task, list[RunConfig]]] | None = None,
    *,
    n_workers: int = 4,
    rounds: int = 40,
    warmup: int = 5,
    timeout: float = 600.0,
    seed: int = 0,
    progress: Progress | None = None,
) -> tuple[list[TrainResult], list[list[list[float]]]]:
    """Training runs and interleaved step timings in one group of ``n_workers`` processes.

    ``jobs``: ``(task, config)`` training runs, one after another, each from a fresh model.
    ``timing``: blocks ``(task, configs)``; for each block every configuration gets its own
    model and, for ``rounds`` rounds, one training step per configuration in a rotating order,
    each after a barrier, so that load drifts of the machine affect every method alike.
    Tasks given by name are built once with :func:`make_task` and ``seed``.

    Returns ``(results, times)``: one :class:`TrainResult` per job (rank 0's view) and, per
    block and configuration, rank 0's step wall times (seconds) after ``warmup`` rounds.
    Process start-up (seconds per process on a small machine) is paid once.

    ``timeout`` (seconds) bounds the whole call from its start: building the tasks, starting
    the processes and running; past it the workers are stopped and
    :class:`~frugalml.errors.TaskFailedError` is raised within
    :data:`~.launcher.STOP_MARGIN` seconds. ``progress(message, fraction)`` is called as rank
    0 advances (see :data:`Progress`).
    """
    from .launcher import WorkerTimeoutError, run_workers

    started = time.monotonic()
    n_workers = check_int(n_workers, "n_workers", low=1, high=64)
    rounds = check_int(rounds, "rounds", low=1)
    warmup = check_int(warmup, "warmup", low=0, high=rounds - 1)
    timeout = check_positive_float(timeout, "timeout")
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

    left = timeout - (time.monotonic() - started)
    if left <= 0:
        raise TaskFailedError(
            f"the timeout of {timeout:g} s passed while building the tasks; increase it"
        )
    if progress is not None:
        progress(f"starting {n_workers} worker processes", 0.0)
    try:
        out = run_workers(_suite_worker, n_workers, args=(resolved, blocks, rounds),
                          timeout=left, progress=relay)  # fmt: skip
    except WorkerTimeoutError:
        raise WorkerTimeoutError(
            f"the run did not finish within the timeout of {timeout:g} s (building the task "
            f"and starting the {n_workers} worker processes included); the workers were "
            "stopped: increase the timeout or make the run smaller"
        ) from None
    runs, timings = out[0]
    return [TrainResult(**d) for d in runs], [[t[warmup:] for t in b] for b in timings]


def train_jobs(
    jobs: list[tuple[str | Task, RunConfig]],
    *,
    n_workers: int = 4,
    timeout: float = 600.0,
    seed: int = 0,
    progress: Progress | None = None,
) -> list[TrainResult]:
    """Run ``(task, config)`` jobs one after another in one group of processes.

    See :func:`train_and_time` (also for ``timeout`` and ``progress``). Returns one
    :class:`TrainResult` per job.
    """
    if not jobs:
        raise InvalidInputError("no jobs given; pass at least one (task, RunConfig) pair")
    return train_and_time(jobs, n_workers=n_workers, timeout=timeout, seed=seed,
                          progress=progress)[0]  # fmt: skip


def measure_step_times(
    task: str | Task,
    configs: list[RunConfig],
    *,
    n_workers: int = 4,
    rounds: int = 40,
    warmup: int = 5,
    timeout: float = 600.0,
    seed: int = 0,
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
        timeout=timeout,
        seed=seed,
    )[1][0]


def train_many(
    task: str | Task,
    configs: list[RunConfig],
    *,
    n_workers: int = 4,
    timeout: float = 600.0,
    seed: int = 0,
    progress: Progress | None = None,
) -> list[TrainResult]:
    """Several configurations of one task in one group of processes (see :func:`train_jobs`)."""
    if not configs:
        raise InvalidInputError("configs is empty; pass at least one RunConfig")
    return train_jobs([(task, c) for c in configs], n_workers=n_workers, timeout=timeout,
                      seed=seed, progress=progress)  # fmt: skip


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
    seed: int = 0,
    timeout: float = 600.0,
    progress: Progress | None = None,
) -> TrainResult:
    """Train ``task`` data-parallel on ``n_workers`` local processes with ``aggregation``.

    ``lr``/``momentum`` default to the task's values in :data:`DEFAULTS`. See
    :class:`RunConfig` for the other options and :func:`train_and_time` for ``timeout`` (the
    whole call, process start-up included) and ``progress``. Returns a :class:`TrainResult`.
    """
    name = task if isinstance(task, str) else task.kind
    check_choice(name, "task", TASKS)
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
    return train_many(task, [cfg], n_workers=n_workers, timeout=timeout, seed=seed,
                      progress=progress)[0]  # fmt: skip
