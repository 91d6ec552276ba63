"""The one schedule evaluator every solver and benchmark is scored by.

A schedule is a sequence of node executions; a node that appears twice is recomputed. The
memory model (Checkmate / MOCCASIN): while node ``v`` executes, its inputs are resident and its
output is being written, so the memory of step ``t`` is the output of ``v`` plus every value
still held. Each computed value is held from its step until its last use before the node is
computed again (or, if nothing uses it, it is dropped right after its own step) — the earliest
possible free, so the evaluated peak is the least any freeing policy reaches for that sequence.
A use of ``u`` at step ``t`` reads the most recent computation of ``u`` before ``t``; the
schedule is valid iff every such computation exists and every node runs at least once.

Cost ``O(len(schedule) + sum of in-degrees)``. Paper: Bartan et al., "Moccasin" (ICML 2023,
arXiv 2304.14463), Sec. 2.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from .._results import ResultRepr
from ..errors import InvalidInputError
from .graph import RematGraph

__all__ = ["ScheduleReport", "evaluate_schedule", "topological_schedule"]


@dataclass(frozen=True, repr=False)
class ScheduleReport(ResultRepr):
    """What a schedule costs.

    ``profile[t]``: bytes resident while step ``t`` runs; ``peak_memory = profile.max()``.
    ``total_cost``: sum of the durations of all executions; ``overhead``: the relative increase
    over computing every node once (``total_cost / graph.total_cost - 1``).
    """

    peak_memory: int
    total_cost: float
    baseline_cost: float
    computations: int
    recomputations: int
    profile: np.ndarray

    @property
    def overhead(self) -> float:
        if self.baseline_cost == 0:
            return 0.0
        return self.total_cost / self.baseline_cost - 1.0

    def within(self, budget: float) -> bool:
        return self.peak_memory <= budget

    def summary(self) -> str:
        return (
            f"peak {self.peak_memory} bytes, cost {self.total_cost:g} "
            f"(+{100 * self.overhead:.2f}% over no rematerialisation), "
            f"{self.recomputations} recomputations"
        )


def topological_schedule(graph: RematGraph) -> np.ndarray:
    """The plain schedule without rematerialisation: every node once, in topological order."""
    return np.arange(graph.n, dtype=np.int64)


def evaluate_schedule(graph: RematGraph, schedule: Sequence[int] | np.ndarray) -> ScheduleReport:
    """Check ``schedule`` against ``graph`` and return its peak memory and total cost.

    Raises :class:`InvalidInputError` naming the first offending step if a node id is out of
    range, an input is used before it was ever computed, or a node never runs.
    """
    sched = np.asarray(schedule)
    if sched.ndim != 1 or sched.size == 0:
        raise InvalidInputError("a schedule must be a non-empty 1-D sequence of node ids")
    if sched.dtype.kind not in "iu":
        if sched.dtype.kind != "f":
            raise InvalidInputError(f"schedule entries must be integer node ids, got {sched.dtype}")
        bad = ~np.isfinite(sched) | (sched != np.round(sched))
        if np.any(bad):
            k = int(np.flatnonzero(bad)[0])
            raise InvalidInputError(
                f"step {k} runs node {sched[k]}: schedule entries must be integer node ids"
            )
        sched = sched.astype(np.int64)
    n = graph.n
    if sched.min() < 0 or sched.max() >= n:
        bad = int(np.flatnonzero((sched < 0) | (sched >= n))[0])
        raise InvalidInputError(f"step {bad} runs node {int(sched[bad])}, not in 0..{n - 1}")
    steps = sched.size
    mem = graph.memory
    latest = np.full(n, -1, dtype=np.int64)  # step of the current computation of each node
    end = np.empty(steps, dtype=np.int64)  # last step that holds the value computed at step t
    preds = graph.preds
    for t in range(steps):
        v = int(sched[t])
        for u in preds[v]:
            s = latest[u]
            if s < 0:
                raise InvalidInputError(
                    f"step {t} runs node {v} ({graph.names[v]}) but its input {u} "
                    f"({graph.names[u]}) has not been computed yet"
                )
            end[s] = t
        end[t] = t
        latest[v] = t
    if np.any(latest < 0):
        missing = int(np.flatnonzero(latest < 0)[0])
        raise InvalidInputError(
            f"node {missing} ({graph.names[missing]}) is never computed; a schedule must run "
            "every node at least once"
        )
    delta = np.zeros(steps + 1, dtype=np.int64)
    sizes = mem[sched]
    np.add.at(delta, np.arange(steps), sizes)
    np.add.at(delta, end + 1, -sizes)
    profile = np.cumsum(delta[:-1])
    return ScheduleReport(
        peak_memory=int(profile.max()),
        total_cost=float(graph.cost[sched].sum()),
        baseline_cost=graph.total_cost,
        computations=int(steps),
        recomputations=int(steps - n),
        profile=profile,
    )
