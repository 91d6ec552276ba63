"""Computation graphs for rematerialisation: nodes with a duration and an output size.

A :class:`RematGraph` is a DAG whose nodes are operations. Node ``i`` takes ``cost[i]`` time to
compute and its output occupies ``memory[i]`` bytes while it is resident. Nodes are stored in a
topological order (``preds[i]`` only holds indices ``< i``), the order that "no
rematerialisation" executes them in; the mapping back to the caller's node ids is kept in
``ids``. Construction validates everything once (cycles, negative or non-finite costs, dangling
edges), so solvers and the evaluator can trust the invariants.

Paper: Bartan, Li, Teague, Lott, Dilkina, "Moccasin: Efficient Tensor Rematerialization for
Neural Networks" (ICML 2023, arXiv 2304.14463), Sec. 2 (the graph and memory model shared with
Checkmate, Jain et al., MLSys 2020).
"""

from __future__ import annotations

import heapq
from collections.abc import Hashable, Iterable, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import numpy as np

from ..errors import InvalidInputError

__all__ = ["RematGraph"]


@dataclass(frozen=True, eq=False)
class RematGraph:
    """A validated computation graph in topological order.

    Attributes
    ----------
    cost:
        ``(n,)`` float64, the duration of each node (>= 0, finite).
    memory:
        ``(n,)`` int64, the bytes of each node's output (>= 0).
    preds:
        ``preds[i]``: the sorted inputs of node ``i``, all ``< i``.
    names:
        A display name per node.
    ids:
        The caller's id of each node (from the file or :meth:`from_edges`).
    name:
        A name for the whole graph.

    Use :meth:`from_edges` to build one from arbitrary node ids and an edge list; the
    constructor expects the already-ordered form and re-validates it.
    """

    cost: np.ndarray
    memory: np.ndarray
    preds: tuple[tuple[int, ...], ...]
    names: tuple[str, ...] = ()
    ids: tuple[Hashable, ...] = ()
    name: str = ""
    meta: dict[str, Any] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        cost = np.asarray(self.cost, dtype=np.float64).reshape(-1)
        n = cost.size
        if n == 0:
            raise InvalidInputError("a computation graph needs at least one node")
        if not np.all(np.isfinite(cost)):
            bad = int(np.flatnonzero(~np.isfinite(cost))[0])
            raise InvalidInputError(f"node {bad} has a non-finite cost {cost[bad]}")
        if np.any(cost < 0):
            bad = int(np.flatnonzero(cost < 0)[0])
            raise InvalidInputError(f"node {bad} has a negative cost {cost[bad]}")
        mem_in = np.asarray(self.memory)
        if mem_in.shape != (n,):
            raise InvalidInputError(f"memory must have shape ({n},), got {mem_in.shape}")
        if mem_in.dtype.kind == "f":
            if not np.all(np.isfinite(mem_in)) or np.any(mem_in != np.round(mem_in)):
                raise InvalidInputError("memory sizes must be finite whole numbers of bytes")
        elif mem_in.dtype.kind not in "iub":
            raise InvalidInputError(f"memory must be numeric, got dtype {mem_in.dtype}")
        memory = mem_in.astype(np.int64)
        if np.any(memory < 0):
            bad = int(np.flatnonzero(memory < 0)[0])
            raise InvalidInputError(f"node {bad} has a negative memory size {memory[bad]}")
        if len(self.preds) != n:
            raise InvalidInputError(f"preds must have {n} entries, got {len(self.preds)}")
        preds = []
        for i, p in enumerate(self.preds):
            ps = tuple(sorted({int(j) for j in p}))
            if ps and (ps[0] < 0 or ps[-1] >= i):
                raise InvalidInputError(
                    f"node {i} has input {ps[-1] if ps[-1] >= i else ps[0]}; inputs must precede "
                    "their consumers (use RematGraph.from_edges for unordered graphs)"
                )
            preds.append(ps)
        names = tuple(str(x) for x in self.names) if self.names else tuple(map(str, range(n)))
        ids = tuple(self.ids) if self.ids else tuple(range(n))
        if len(names) != n or len(ids) != n:
            raise InvalidInputError(f"names and ids must have {n} entries")
        cost.setflags(write=False)
        memory.setflags(write=False)
        object.__setattr__(self, "cost", cost)
        object.__setattr__(self, "memory", memory)
        object.__setattr__(self, "preds", tuple(preds))
        object.__setattr__(self, "names", names)
        object.__setattr__(self, "ids", ids)

    # -- construction -----------------------------------------------------------------------
    @classmethod
    def from_edges(
        cls,
        cost: Sequence[float] | np.ndarray,
        memory: Sequence[int] | np.ndarray,
        edges: Iterable[tuple[Hashable, Hashable]],
        *,
        ids: Sequence[Hashable] | None = None,
        names: Sequence[str] | None = None,
        order: Sequence[Hashable] | None = None,
        name: str = "",
        meta: dict[str, Any] | None = None,
    ) -> RematGraph:
        """Build a graph from node ids (default ``0..n-1``) and ``(source, target)`` edges.

        ``order`` is a topological order to keep (validated); without it the smallest-index
        Kahn order is used. Raises :class:`InvalidInputError` for cycles (naming a node on
        one), self-loops, edges to unknown nodes and duplicate ids. ``O(n + |E| log n)``.
        """
        cost = np.asarray(cost, dtype=np.float64).reshape(-1)
        n = cost.size
        ids = list(range(n)) if ids is None else list(ids)
        if len(ids) != n:
            raise InvalidInputError(f"got {len(ids)} node ids for {n} costs")
        bad_cost = np.flatnonzero(~np.isfinite(cost) | (cost < 0))
        if bad_cost.size:  # reported by the caller's id (the graph below is relabelled)
            k = int(bad_cost[0])
            what = "negative" if cost[k] < 0 else "non-finite"
            raise InvalidInputError(
                f"node {ids[k]!r} has a {what} cost {cost[k]}; costs must be finite and >= 0"
            )
        pos = {v: i for i, v in enumerate(ids)}
        if len(pos) != n:
            raise InvalidInputError("node ids must be unique")
        succ: list[set[int]] = [set() for _ in range(n)]
        indeg = np.zeros(n, dtype=np.int64)
        for e in edges:
            try:
                s, t = e
            except (TypeError, ValueError) as exc:
                raise InvalidInputError(
                    f"an edge must be a (source, target) pair, got {e!r}"
                ) from exc
            if s not in pos or t not in pos:
                missing = s if s not in pos else t
                raise InvalidInputError(f"edge ({s!r}, {t!r}) refers to unknown node {missing!r}")
            a, b = pos[s], pos[t]
            if a == b:
                raise InvalidInputError(
                    f"node {s!r} has a self-loop; a computation graph is acyclic"
                )
            if b not in succ[a]:
                succ[a].add(b)
                indeg[b] += 1
        if order is not None:
            order_idx = []
            for v in order:
                if v not in pos:
                    raise InvalidInputError(f"the given order names unknown node {v!r}")
                order_idx.append(pos[v])
            if sorted(order_idx) != list(range(n)):
                raise InvalidInputError("the given order must list every node exactly once")
            rank = np.empty(n, dtype=np.int64)
            rank[order_idx] = np.arange(n)
            for a in range(n):
                for b in succ[a]:
                    if rank[a] >= rank[b]:
                        raise InvalidInputError(
                            f"the given order is not topological: {ids[a]!r} -> {ids[b]!r} "
                            "but the target comes first"
                        )
        else:
            heap = [i for i in range(n) if indeg[i] == 0]
            heapq.heapify(heap)
            order_idx = []
            deg = indeg.copy()
            while heap:
                a = heapq.heappop(heap)
                order_idx.append(a)
                for b in succ[a]:
                    deg[b] -= 1
                    if deg[b] == 0:
                        heapq.heappush(heap, b)
            if len(order_idx) != n:
                # walk back through unresolved inputs until a node repeats: it is on a cycle
                done = set(order_idx)
                pred_left: list[list[int]] = [[] for _ in range(n)]
                for a in range(n):
                    if a not in done:
                        for b in succ[a]:
                            pred_left[b].append(a)
                stuck = next(i for i in range(n) if i not in done)
                visited: set[int] = set()
                while stuck not in visited:
                    visited.add(stuck)
                    stuck = pred_left[stuck][0]  # unresolved nodes have unresolved inputs
                raise InvalidInputError(
                    f"the graph has a cycle through node {ids[stuck]!r}; "
                    "rematerialisation needs a DAG"
                )
        new = {old: k for k, old in enumerate(order_idx)}
        preds: list[list[int]] = [[] for _ in range(n)]
        for a in range(n):
            for b in succ[a]:
                preds[new[b]].append(new[a])
        mem = np.asarray(memory)
        if mem.shape != (n,):
            raise InvalidInputError(f"memory must have shape ({n},), got {mem.shape}")
        nm = list(names) if names is not None else [str(v) for v in ids]
        if len(nm) != n:
            raise InvalidInputError(f"got {len(nm)} names for {n} nodes")
        return cls(
            cost=cost[order_idx],
            memory=mem[order_idx],
            preds=tuple(tuple(p) for p in preds),
            names=tuple(nm[i] for i in order_idx),
            ids=tuple(ids[i] for i in order_idx),
            name=name,
            meta=dict(meta or {}),
        )

    # -- structure ----------------------------------------------------------------------------
    @property
    def n(self) -> int:
        """Number of nodes."""
        return int(self.cost.size)

    def __len__(self) -> int:
        return self.n

    @cached_property
    def succs(self) -> tuple[tuple[int, ...], ...]:
        """``succs[i]``: the sorted consumers of node ``i``."""
        out: list[list[int]] = [[] for _ in range(self.n)]
        for j, ps in enumerate(self.preds):
            for i in ps:
                out[i].append(j)
        return tuple(tuple(s) for s in out)

    @cached_property
    def edges(self) -> tuple[tuple[int, int], ...]:
        """All ``(i, j)`` with ``i`` an input of ``j``, sorted."""
        return tuple((i, j) for j, ps in enumerate(self.preds) for i in ps)

    @property
    def n_edges(self) -> int:
        return len(self.edges)

    @cached_property
    def min_budget(self) -> int:
        """The smallest budget any schedule can meet: ``max_i memory[i] + sum memory[preds[i]]``.

        Computing node ``i`` needs its inputs resident and room for its output, whatever the
        schedule.
        """
        return int(max(self.memory[i] + sum(int(self.memory[j]) for j in p)
                       for i, p in enumerate(self.preds)))  # fmt: skip

    @cached_property
    def total_cost(self) -> float:
        """Cost of computing every node once (the no-rematerialisation cost)."""
        return float(self.cost.sum())

    def describe(self) -> str:
        return (
            f"{self.name or 'graph'}: {self.n} nodes, {self.n_edges} edges, "
            f"total cost {self.total_cost:g}, min budget {self.min_budget}"
        )

    def subgraph_info(self) -> dict[str, Any]:
        """Summary numbers (for JSON output)."""
        return {
            "name": self.name,
            "nodes": self.n,
            "edges": self.n_edges,
            "total_cost": self.total_cost,
            "total_memory": int(self.memory.sum()),
            "min_budget": self.min_budget,
        }
