"""Simple rematerialisation baselines: no rematerialisation, and sqrt(n) segment checkpointing.

- :func:`no_remat`: every node once, in the graph's topological order; the cheapest possible
  schedule (each node must run at least once), the reference that budgets are fractions of.
- :func:`chain_checkpointing`: Chen, Xu, Zhang, Guestrin, "Training Deep Nets with Sublinear
  Memory Cost" (arXiv 1604.06174, 2016): split the forward pass into segments, keep only the
  last value of each segment (the checkpoints) and recompute a segment when the backward pass
  reaches it. This is the heuristic baseline of Checkmate (Jain et al., MLSys 2020, Sec. 6) and
  MOCCASIN (Bartan et al., ICML 2023).

Every schedule is scored by :func:`~frugalml.remat.evaluate.evaluate_schedule`.
"""

from __future__ import annotations

import math
import time
from typing import Any

import numpy as np

from .._validate import check_int
from ..errors import InvalidInputError
from .evaluate import evaluate_schedule, topological_schedule
from .graph import RematGraph
from .solution import RematSolution, check_budget, scored

__all__ = ["chain_checkpointing", "checkpoint_schedule", "no_remat"]


def _check_graph(graph: Any) -> RematGraph:
    if not isinstance(graph, RematGraph):
        raise InvalidInputError(f"graph must be a RematGraph, got {type(graph).__name__}")
    return graph


def no_remat(graph: RematGraph, budget: int | None = None) -> RematSolution:
    """The topological order, every node once (cost ``graph.total_cost``, ``O(n + |E|)``).

    ``budget`` (bytes) defaults to the plain peak. Status ``"optimal"`` when the order fits
    (nothing is cheaper); otherwise ``"unknown"`` with ``schedule=None`` and
    ``info["best_peak"]`` the plain peak. Raises :class:`~frugalml.errors.InfeasibleError`
    below ``graph.min_budget``.
    """
    t0 = time.perf_counter()
    graph = _check_graph(graph)
    sched = topological_schedule(graph)
    peak = evaluate_schedule(graph, sched).peak_memory
    budget = peak if budget is None else check_budget(graph, check_int(budget, "budget", low=1))
    info: dict[str, Any] = {"best_peak": peak}
    if peak > budget:
        return scored(
            graph, "no_remat", "unknown", budget, None, solve_seconds=time.perf_counter() - t0,
            info=info,
        )  # fmt: skip
    seconds = time.perf_counter() - t0
    return scored(
        graph, "no_remat", "optimal", budget, sched, objective=graph.total_cost,
        bound=graph.total_cost, solve_seconds=seconds, seconds_to_best=seconds,
        trace=((seconds, graph.total_cost),), info=info,
    )  # fmt: skip


def _forward_mask(graph: RematGraph) -> np.ndarray:
    labels = graph.meta.get("backward")
    if labels is None:
        raise InvalidInputError(
            f"{graph.name or 'this graph'} has no forward/backward labels: checkpointing needs "
            "graph.meta['backward'] (one bool per node, as the Checkmate training graphs carry)"
        )
    backward = np.asarray(labels, dtype=bool).reshape(-1)
    if backward.size != graph.n:
        raise InvalidInputError(
            f"graph.meta['backward'] has {backward.size} labels for {graph.n} nodes"
        )
    if backward.all() or not backward.any():
        raise InvalidInputError(
            "checkpointing needs a training graph with both forward and backward nodes; "
            f"{graph.name or 'this graph'} has {int((~backward).sum())} forward and "
            f"{int(backward.sum())} backward nodes"
        )
    for v in np.flatnonzero(~backward):
        bad = [u for u in graph.preds[v] if backward[u]]
        if bad:
            raise InvalidInputError(
                f"forward node {v} ({graph.names[v]}) reads backward node {bad[0]} "
                f"({graph.names[bad[0]]}); the forward/backward labels are inconsistent"
            )
    return ~backward


def checkpoint_schedule(graph: RematGraph, segments: int) -> tuple[np.ndarray, np.ndarray]:
    """The segment-checkpointing schedule with ``segments`` forward segments.

    The forward nodes (``graph.meta["backward"]`` false, ``n_f`` of them, in topological
    order) are cut into runs of ``ceil(n_f / segments)``; the last node of each run and the
    last forward node are checkpoints. The schedule runs the forward pass once, then every
    backward node in order; right before a backward node that reads a non-checkpoint forward
    value, the whole segment of that value is recomputed (after any earlier segment one of its
    nodes reads, for skip connections). Each non-checkpoint value is therefore read after the
    forward pass only through a recomputed copy, so the evaluator frees its forward copy at its
    last forward use. Returns ``(schedule, checkpoints)``; ``O(n + |E|)``.
    """
    graph = _check_graph(graph)
    forward = _forward_mask(graph)
    fwd = np.flatnonzero(forward)
    n_f = fwd.size
    segments = check_int(segments, "segments", low=1, high=n_f)
    stride = math.ceil(n_f / segments)
    seg_of = np.full(graph.n, -1, dtype=np.int64)
    seg_of[fwd] = np.arange(n_f) // stride
    is_ckpt = np.zeros(graph.n, dtype=bool)
    is_ckpt[fwd[stride - 1 :: stride]] = True
    is_ckpt[fwd[-1]] = True
    members: list[list[int]] = [[] for _ in range(int(seg_of.max()) + 1)]
    for v in fwd:
        if not is_ckpt[v]:
            members[seg_of[v]].append(int(v))
    sched: list[int] = [int(v) for v in fwd]
    redone = np.zeros(len(members), dtype=bool)

    def recompute(j: int) -> None:
        # segments whose values the nodes of segment j read (skip connections) go first
        for v in members[j]:
            for u in graph.preds[v]:
                ju = seg_of[u]
                if ju != j and forward[u] and not is_ckpt[u] and not redone[ju]:
                    recompute(int(ju))
        redone[j] = True
        sched.extend(members[j])

    for b in np.flatnonzero(~forward):
        for u in graph.preds[b]:
            if forward[u] and not is_ckpt[u] and not redone[seg_of[u]]:
                recompute(int(seg_of[u]))
        sched.append(int(b))
    return np.asarray(sched, dtype=np.int64), np.flatnonzero(is_ckpt)


def chain_checkpointing(
    graph: RematGraph, budget: int | None = None, *, segments: int | None = None
) -> RematSolution:
    """Chen et al. (2016) checkpointing of a training graph's forward pass.

    Needs forward/backward labels (``graph.meta["backward"]``, present on the Checkmate training
    graphs); raises :class:`~frugalml.errors.InvalidInputError` without them.

    - ``segments`` given: that many segments (see :func:`checkpoint_schedule`).
    - ``segments=None`` and ``budget=None``: ``round(sqrt(n_f))`` segments (Chen et al.).
    - ``segments=None`` with a ``budget``: every segment count ``1..n_f`` is tried and the
      cheapest schedule within the budget is kept (ties: fewer bytes).

    ``budget`` (bytes) defaults to the schedule's own peak. Status ``"feasible"`` when the
    schedule fits; otherwise ``"unknown"``, ``schedule=None`` and ``info["best_peak"]`` the
    least peak reached. ``O(n + |E|)`` per segment count tried.
    """
    t0 = time.perf_counter()
    graph = _check_graph(graph)
    n_f = int(_forward_mask(graph).sum())
    if budget is not None:
        budget = check_budget(graph, check_int(budget, "budget", low=1))
    if segments is not None:
        counts = [check_int(segments, "segments", low=1, high=n_f)]
    elif budget is None:
        counts = [max(1, round(math.sqrt(n_f)))]
    else:
        counts = list(range(1, n_f + 1))
    best: tuple[float, int, int, np.ndarray, np.ndarray] | None = None
    least_peak: int | None = None
    seen: set[bytes] = set()
    for k in counts:
        sched, ckpts = checkpoint_schedule(graph, k)
        key = sched.tobytes()
        if key in seen:
            continue
        seen.add(key)
        rep = evaluate_schedule(graph, sched)
        least_peak = rep.peak_memory if least_peak is None else min(least_peak, rep.peak_memory)
        if budget is not None and rep.peak_memory > budget:
            continue
        cand = (rep.total_cost, rep.peak_memory, k, sched, ckpts)
        if best is None or cand[:2] < best[:2]:
            best = cand
    info: dict[str, Any] = {"forward_nodes": n_f, "best_peak": least_peak, "tried": len(seen)}
    seconds = time.perf_counter() - t0
    if best is None:
        assert budget is not None
        return scored(
            graph, "chain_checkpointing", "unknown", budget, None, solve_seconds=seconds,
            info=info,
        )  # fmt: skip
    cost, peak, k, sched, ckpts = best
    info.update(segments=k, checkpoints=[int(v) for v in ckpts])
    return scored(
        graph, "chain_checkpointing", "feasible", peak if budget is None else budget, sched,
        objective=cost, solve_seconds=seconds, seconds_to_best=seconds,
        trace=((seconds, cost),), info=info,
    )  # fmt: skip
