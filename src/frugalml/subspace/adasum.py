"""AdaSum gradient combination as a DDP communication hook (baseline for AdaCons).

Paper: Maleki, Musuvathi, Mytkowicz, Saarikivi, Xu, Eksarevskiy, Ekanayake, Barsoum,
"Scaling Distributed Training with Adaptive Summation" (MLSys 2021, arXiv 2006.02924).

Two gradients are combined as::

    AdaSum(a, b) = (1 - <a, b> / (2 ||a||^2)) a + (1 - <a, b> / (2 ||b||^2)) b

which is ``a + b`` for orthogonal and ``a`` for identical gradients. ``N`` gradients are
combined along a binary tree in rank order (``((g0 (+) g1) (+) (g2 (+) g3)) ...``, an odd
node is carried up unchanged), the same order as the paper's recursive-halving reduction,
separately for every parameter tensor (the paper's per-layer application) or for the whole
vector.

The hook all-gathers each bucket (each rank receives ``(N - 1) P`` floats, against ``~2 P``
for a ring all-reduce) and computes the tree on every rank, so all ranks get the same result.
This is simple and exact; the paper's bandwidth-optimal recursive vector-halving is not
implemented.
"""

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.distributed as dist

from .._validate import check_array
from ..errors import InvalidInputError

__all__ = ["AdaSumState", "adasum_hook", "adasum_pair", "adasum_reduce", "adasum_tree"]


def adasum_pair(a: torch.Tensor, b: torch.Tensor, eps: float = 0.0) -> torch.Tensor:
    """AdaSum of two equally shaped tensors (a zero operand returns the other). O(P)."""
    dot = torch.sum(a * b)
    na = torch.sum(a * a)
    nb = torch.sum(b * b)
    if float(na) <= eps:
        return b.clone()
    if float(nb) <= eps:
        return a.clone()
    return (1.0 - dot / (2.0 * na)) * a + (1.0 - dot / (2.0 * nb)) * b


def adasum_tree(
    stack: torch.Tensor, segments: list[int] | None = None, eps: float = 0.0
) -> torch.Tensor:
    """AdaSum of the rows of ``stack`` (``(N, P)``) along a binary tree in row order.

    ``segments``: lengths of consecutive slices of the ``P`` columns combined independently
    (per-layer AdaSum); ``None`` combines the whole vector. Returns ``(P,)``.
    O(N P) work, log2(N) levels.
    """
    if stack.ndim != 2 or stack.shape[0] < 1:
        raise InvalidInputError(f"stack must have shape (N, P) with N >= 1, got {stack.shape}")
    p = stack.shape[1]
    segments = [p] if segments is None else list(segments)
    if sum(segments) != p or any(s < 0 for s in segments):
        raise InvalidInputError(f"segments must be non-negative and sum to P={p}, got {segments}")
    out = torch.empty(p, dtype=stack.dtype, device=stack.device)
    start = 0
    for length in segments:
        level = [stack[i, start : start + length] for i in range(stack.shape[0])]
        while len(level) > 1:
            nxt = [adasum_pair(level[i], level[i + 1], eps) for i in range(0, len(level) - 1, 2)]
            if len(level) % 2:
                nxt.append(level[-1])
            level = nxt
        out[start : start + length] = level[0]
        start += length
    return out


def adasum_reduce(G: Any, segments: list[int] | None = None) -> np.ndarray:
    """NumPy front end of :func:`adasum_tree`: ``(N, P)`` float array -> ``(P,)`` (float64)."""
    G = check_array(G, "G", ndim=2)
    return adasum_tree(torch.from_numpy(G), segments).numpy()


@dataclass
class AdaSumState:
    """State of :func:`adasum_hook`.

    per_layer: combine every parameter tensor separately (the paper's choice) or the whole
        bucket as one vector.
    process_group: defaults to the global group.
    floats_sent: payload floats sent per rank so far (each bucket: its size ``P``; each rank
        receives ``(N - 1) P``).
    calls: number of bucket reductions so far.
    """

    per_layer: bool = True
    process_group: Any = None
    floats_sent: int = 0
    calls: int = 0


def _segments(bucket: dist.GradBucket, total: int) -> list[int] | None:
    sizes = [int(p.numel()) for p in bucket.parameters()]
    return sizes if sum(sizes) == total else None


def adasum_hook(state: AdaSumState, bucket: dist.GradBucket) -> torch.futures.Future[torch.Tensor]:
    """DDP communication hook: ``ddp.register_comm_hook(AdaSumState(), adasum_hook)``.

    All-gathers the bucket and returns the AdaSum tree combination (identical on all ranks).
    """
    buf = bucket.buffer()
    group = state.process_group
    world = dist.get_world_size(group)
    segments = _segments(bucket, buf.numel()) if state.per_layer else None
    parts = [torch.empty_like(buf) for _ in range(world)]
    state.floats_sent += buf.numel()
    state.calls += 1
    work = dist.all_gather(parts, buf, group=group, async_op=True)

    def _combine(_: torch.futures.Future) -> torch.Tensor:
        stack = torch.stack(parts).double()
        return adasum_tree(stack, segments).to(buf.dtype)

    return work.get_future().then(_combine)
