"""Offline data-parallel training tasks and one training loop for every gradient aggregation.

Used to compare AdaCons (Choukroun, Azoulay, Kisilev, arXiv 2411.03742) with plain averaging
(DDP's default), AdaSum (Maleki et al., arXiv 2006.02924) and PowerSGD (Vogels et al.,
arXiv 1905.13727, PyTorch's built-in hook) under equal conditions.

This module is the public path of 0.1; it re-exports the names now defined, one concept per
module, in:

* :mod:`.workloads` — the tasks (``"linreg"``, ``"digits-mlp"``, ``"mnist1d-cnn"``,
  ``"charlm"``): :class:`Task`, :func:`make_task`, :data:`TASKS`, :data:`DEFAULTS`,
  :func:`stdlib_text`;
* :mod:`.runs` — a run's record: :class:`RunConfig`, :class:`TrainResult`,
  :data:`AGGREGATIONS` and the communication cost model;
* :mod:`.training` — the worker loop and its drivers: :func:`train`, :func:`train_many`,
  :func:`train_jobs`, :func:`train_and_time`, :func:`measure_step_times`.
"""

from __future__ import annotations

from ..progress import Progress
from .runs import AGGREGATIONS, RunConfig, TrainResult
from .training import measure_step_times, train, train_and_time, train_jobs, train_many
from .workloads import DEFAULTS as DEFAULTS
from .workloads import TASKS, Task, make_task, stdlib_text

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
