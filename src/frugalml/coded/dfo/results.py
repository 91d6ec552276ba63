"""What coded ES and the black-box attacks return: :class:`StepInfo` (one iteration),
:class:`ESResult` (a run) and :class:`AttackResult` (an attack on several examples).

Bartan & Pilanci, "Distributed Black-Box Optimization via Error Correcting Codes"
(arXiv 1907.05984); the attacks are NES-PGD (Ilyas et al. 2018, arXiv 1804.08598).
Durations are seconds, named ``*_seconds`` (simulated seconds on the simulated clock); the
0.1 names (``sim_time(s)``, ``wall_time(s)``, ...) stay readable, with a deprecation warning,
until 0.3. Every property is O(T) (iterations) or O(n) (examples).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from ..._deprecation import deprecated_alias
from ..._results import ResultRepr
from ...runtime import fmt_bytes
from .estimator import GradientEstimate

__all__ = ["AttackResult", "ESResult", "StepInfo"]


@dataclass(frozen=True, repr=False)
class StepInfo(ResultRepr):
    """One iteration: the new loss, the estimate used, times and evaluations.

    bytes_sent / bytes_received: bytes of this round's task calls and results on the wire
    (0 in process or on ``local-thread``); bytes_placed: bytes placed with the executor in
    this round (the objective, on the first round of a run; 0 afterwards).

    sim_seconds: seconds until the master stopped waiting, on the simulated clock (wall
    seconds when the executor runs on the wall clock); wall_seconds: measured wall seconds of
    the whole iteration. Wall seconds by phase: draw_seconds (sampling the K directions),
    encode_seconds (W = G^T V), eval_seconds (the workers' round: finite differences and the
    wait), decode_seconds (decoding plus the (1/K) V^T g estimate); wall_seconds also holds
    the update and the loss check. The 0.1 names (``sim_time``, ``wall_time``,
    ``decode_time``, ``draw_time``, ``encode_time``, ``eval_time``) are readable until 0.3.
    """

    iteration: int
    loss: float
    estimate: GradientEstimate
    sim_seconds: float
    wall_seconds: float
    decode_seconds: float
    evaluations: int
    bytes_sent: int = 0
    bytes_received: int = 0
    bytes_placed: int = 0
    draw_seconds: float = 0.0
    encode_seconds: float = 0.0
    eval_seconds: float = 0.0

    sim_time = deprecated_alias("sim_time", "sim_seconds")
    wall_time = deprecated_alias("wall_time", "wall_seconds")
    decode_time = deprecated_alias("decode_time", "decode_seconds")
    draw_time = deprecated_alias("draw_time", "draw_seconds")
    encode_time = deprecated_alias("encode_time", "encode_seconds")
    eval_time = deprecated_alias("eval_time", "eval_seconds")

    def summary(self) -> str:
        return (
            f"iteration {self.iteration}: f = {self.loss:.6g}, {self.estimate.method} estimate "
            f"from {self.estimate.n_arrived} workers ({self.estimate.n_erased} erased), "
            f"simulated {self.sim_seconds:.4g}, wall {self.wall_seconds:.3f}s, "
            f"{self.evaluations} evaluations"
        )


@dataclass(frozen=True, repr=False)
class ESResult(ResultRepr):
    """A run of an evolution strategy.

    x: (d,) final iterate; losses: (T + 1,) f(x_t) from x_0; sim_seconds / wall_seconds: (T,)
    seconds per iteration on the simulated clock (time until the master stopped waiting;
    wall seconds when the executor runs on the wall clock) and measured wall seconds
    (``sim_times`` / ``wall_times`` and ``total_sim_time`` / ``total_wall_time`` in 0.1,
    readable until 0.3);
    evaluations: (T,) function evaluations sent to workers; arrivals / erasures: (T,) workers
    used / erased; exact: (T,) whether every directional derivative was recovered;
    methods: decoder per iteration; stopped_by: ``"target"``, ``"stop"``, ``"iterations"`` or
    ``"diverged"``; diverged: the run stopped because an iterate or its loss became non-finite
    or the loss grew past the divergence bound (see the module docstring); bytes_sent /
    bytes_received: (T,) bytes of task calls sent / results received per iteration;
    bytes_placed: bytes placed once with the executor (the objective).
    """

    name: str
    x: np.ndarray
    losses: np.ndarray
    sim_seconds: np.ndarray
    wall_seconds: np.ndarray
    evaluations: np.ndarray
    arrivals: np.ndarray
    erasures: np.ndarray
    exact: np.ndarray
    methods: tuple[str, ...]
    stopped_by: str
    monitor_evaluations: int
    bytes_sent: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    bytes_received: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    bytes_placed: int = 0
    diverged: bool = False

    sim_times = deprecated_alias("sim_times", "sim_seconds")
    wall_times = deprecated_alias("wall_times", "wall_seconds")
    total_sim_time = deprecated_alias("total_sim_time", "total_sim_seconds")
    total_wall_time = deprecated_alias("total_wall_time", "total_wall_seconds")

    @property
    def iterations(self) -> int:
        return int(self.sim_seconds.size)

    @property
    def loss(self) -> float:
        return float(self.losses[-1])

    @property
    def total_sim_seconds(self) -> float:
        """Simulated seconds of the whole run."""
        return float(self.sim_seconds.sum())

    @property
    def total_wall_seconds(self) -> float:
        """Measured wall seconds of the whole run."""
        return float(self.wall_seconds.sum())

    @property
    def total_evaluations(self) -> int:
        return int(self.evaluations.sum())

    def iterations_to(self, target: float) -> int | None:
        """First iteration t with f(x_t) <= target (0 for x_0), or None."""
        hit = np.flatnonzero(self.losses <= target)
        return int(hit[0]) if hit.size else None

    def time_to(self, target: float) -> float:
        """Simulated seconds until f(x_t) <= target (inf if never)."""
        t = self.iterations_to(target)
        return math.inf if t is None else float(self.sim_seconds[:t].sum())

    def evaluations_to(self, target: float) -> int | None:
        t = self.iterations_to(target)
        return None if t is None else int(self.evaluations[:t].sum())

    def summary(self) -> str:
        warn = "DIVERGED (lower the step, or use Adam / sign steps); " if self.diverged else ""
        return (
            f"{self.name}: {warn}f = {self.loss:.6g} after {self.iterations} iterations "
            f"({self.stopped_by}), simulated time {self.total_sim_seconds:.4g}, wall "
            f"{self.total_wall_seconds:.3f}s, {self.total_evaluations} evaluations, "
            f"{int(self.exact.sum())}/{self.iterations} exact decodes, "
            f"{int(self.erasures.sum())} erasures; {fmt_bytes(self.mean_bytes_per_round)} "
            f"sent per round, {fmt_bytes(self.bytes_placed)} placed once"
        )

    @property
    def mean_bytes_per_round(self) -> int:
        """Bytes of task calls sent per iteration, on average (0 without iterations)."""
        return round(float(self.bytes_sent.mean())) if self.bytes_sent.size else 0


@dataclass(frozen=True, repr=False)
class AttackResult(ResultRepr):
    """An attack on ``n`` correctly classified test examples.

    success: (n,) bool; queries: (n,) logit queries spent per example (all of them, including
    the loss checks; the full budget for failures); iterations: (n,); sim_seconds /
    wall_seconds: (n,) simulated-clock and wall seconds spent per example (until success or
    the budget; ``sim_times`` / ``wall_times`` in 0.1, readable until 0.3);
    examples: (n,) indices into the classifier's test set; perturbations: (n, p) final
    low-dimensional perturbations (l_inf norm <= eps); bytes_sent: (n,) bytes of task calls
    sent per example (0 without an executor or on ``local-thread``); bytes_placed: bytes
    placed once with the executor (the model, plus each example's objective).
    """

    dataset: str
    method: str
    eps: float
    success: np.ndarray
    queries: np.ndarray
    iterations: np.ndarray
    sim_seconds: np.ndarray
    wall_seconds: np.ndarray
    n_workers: int
    n_directions: int
    examples: np.ndarray
    perturbations: np.ndarray
    bytes_sent: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    bytes_placed: int = 0

    sim_times = deprecated_alias("sim_times", "sim_seconds")
    wall_times = deprecated_alias("wall_times", "wall_seconds")
    mean_time_success = deprecated_alias("mean_time_success", "mean_sim_seconds_success")
    mean_wall_success = deprecated_alias("mean_wall_success", "mean_wall_seconds_success")

    @property
    def success_rate(self) -> float:
        return float(self.success.mean())

    @property
    def mean_queries_success(self) -> float:
        """Mean queries over successful examples (nan when none succeeded)."""
        return float(self.queries[self.success].mean()) if self.success.any() else math.nan

    @property
    def mean_sim_seconds_success(self) -> float:
        """Mean simulated seconds to success over successful examples (nan when none)."""
        return float(self.sim_seconds[self.success].mean()) if self.success.any() else math.nan

    @property
    def mean_wall_seconds_success(self) -> float:
        """Mean wall seconds to success over successful examples (nan when none)."""
        if not self.success.any():
            return math.nan
        return float(self.wall_seconds[self.success].mean())

    def summary(self) -> str:
        return (
            f"{self.method} attack on {self.dataset}, eps={self.eps:g}: success "
            f"{int(self.success.sum())}/{self.success.size} ({self.success_rate:.0%}); on "
            f"successes mean {self.mean_queries_success:.0f} queries, simulated time "
            f"{self.mean_sim_seconds_success:.3g}, wall {self.mean_wall_seconds_success:.3g}s"
        )
