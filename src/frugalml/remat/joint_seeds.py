"""What PyTorch users do today, as schedules of a joint graph: the solver's seeds and floor.

:func:`block_checkpoint_schedule` writes the schedule that ``torch.utils.checkpoint`` runs when
every block of a model is wrapped (``selective=False``: checkpoint-per-block) or wrapped with a
selective-checkpointing policy that saves the outputs of matrix products, convolutions and
attention and recomputes the rest (``selective=True``). The forward runs in the plain order; a
block's inner values (those no node outside the block reads in the forward) are dropped after
their last forward use, and right before the first backward node that reads one, the block's
dropped values are recomputed in order, as the non-reentrant checkpoint does at its first
unpack. Blocks are ``graph.meta["block"]`` (see
:func:`~frugalml.remat.joint_graph.joint_remat_graph`), forward/backward
``graph.meta["backward"]``, what selective checkpointing saves ``graph.meta["expensive"]``.

The schedules are evaluated by the common evaluator like any solver's; handed to MOCCASIN as
hints, they make its result never worse than these baselines at the same modelled memory.
``O(len(schedule) + E)``.

Papers: Chen, Xu, Zhang, Guestrin, "Training Deep Nets with Sublinear Memory Cost" (2016) for
checkpointing; Bartan et al., "Moccasin" (ICML 2023, arXiv 2304.14463) for the schedule model.
"""

from __future__ import annotations

import numpy as np

from ..errors import InvalidInputError
from .graph import RematGraph

__all__ = ["block_checkpoint_schedule"]


def block_checkpoint_schedule(graph: RematGraph, *, selective: bool = False) -> np.ndarray | None:
    """The checkpoint-per-block (or selective) schedule of a joint graph, or ``None`` when the
    graph has no repeated blocks. Raises :class:`InvalidInputError` for a graph without the
    joint-graph labels."""
    try:
        backward = np.asarray(graph.meta["backward"], dtype=bool)
        block = np.asarray(graph.meta["block"], dtype=np.int64)
        expensive = np.asarray(graph.meta["expensive"], dtype=bool)
    except KeyError as exc:
        raise InvalidInputError(
            "block checkpointing needs a joint graph (graph.meta 'backward', 'block', "
            "'expensive', as frugalml.remat.joint_graph builds it)"
        ) from exc
    n = graph.n
    if block.shape != (n,) or block.max(initial=-1) < 0:
        return None
    boundary = int(np.argmax(backward)) - 1 if backward.any() else n - 2
    succ: list[list[int]] = [[] for _ in range(n)]
    for v, ps in enumerate(graph.preds):
        for u in ps:
            succ[u].append(v)
    # a block's inner forward nodes: read by nothing outside the block in the forward
    dropped = np.zeros(n, dtype=bool)
    for v in range(boundary):
        k = block[v]
        if k < 0 or (selective and expensive[v]):
            continue
        dropped[v] = all(block[w] == k or w > boundary for w in succ[v])
    members: dict[int, list[int]] = {}
    for v in np.flatnonzero(dropped):
        members.setdefault(int(block[v]), []).append(int(v))
    schedule = list(range(boundary + 1))
    redone: set[int] = set()
    for v in range(boundary + 1, n):
        for u in graph.preds[v]:
            k = int(block[u])
            if dropped[u] and k not in redone:
                redone.add(k)
                schedule.extend(members[k])
        schedule.append(v)
    return np.asarray(schedule, dtype=np.int64)
