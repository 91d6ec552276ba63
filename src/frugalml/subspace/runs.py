"""The record of one data-parallel training run: its configuration, its measurements, and the
communication cost model they are reported in.

For the comparison of AdaCons (Choukroun, Azoulay, Kisilev, "Adaptive Consensus Gradients
Aggregation for Scaled Distributed Training", arXiv 2411.03742) with plain averaging (DDP's
default), AdaSum (Maleki et al., arXiv 2006.02924) and PowerSGD (Vogels et al., arXiv
1905.13727, PyTorch's built-in hook), run by :mod:`.training`.

Communication is reported as floats *received* per worker per step under the ring cost model
(:func:`comm_floats`): an all-reduce of ``P`` floats moves ``2 P (N-1)/N``, an all-gather of
``m`` floats per rank ``m (N-1)``. PowerSGD's figure is the same model applied to its rank-r
factors (tensors it would not compress are counted uncompressed).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from .._results import ResultRepr
from .._validate import check_choice, check_int, check_positive_float, check_probability
from ..errors import InvalidInputError

__all__ = ["AGGREGATIONS", "RunConfig", "TrainResult", "comm_floats"]

AGGREGATIONS = ("mean", "adacons", "adasum", "powersgd")


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
    seed: the run's integer seed (model initialisation, minibatch sampling, PowerSGD's
        random projections), derived from ``train``'s ``rng``. It stays an ``int`` named
        ``seed`` because the record crosses process boundaries to the workers, which seed
        torch with it (same int, same run).
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


def comm_floats(model: Any, cfg: RunConfig, n: int, schedule: str = "allreduce") -> float:
    """Floats received per worker per step by ``cfg``'s aggregation on ``n`` workers for
    ``model``'s trainable parameters (ring cost model, see the module docstring). O(number of
    parameter tensors)."""
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
