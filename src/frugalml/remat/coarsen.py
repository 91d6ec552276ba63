"""Graph coarsening for rematerialisation: contract chains into super-nodes, solve, refine.

MOCCASIN's constraint program (Bartan et al., ICML 2023, arXiv 2304.14463) has ``O(n C)``
intervals and ``O(|E|)`` reservoirs; at thousands of nodes CP-SAT spends its time loading the
model. A coarse graph of a few hundred super-nodes solves far faster, and its schedule, expanded
back, is a valid fine schedule that hints the fine solve (:func:`refine`). Multilevel
coarsening is the classic way to scale graph optimisation (Hendrickson and Leland, "A
multilevel algorithm for partitioning graphs", SC 1995); contracting linear chains is the
rematerialisation-specific step of Checkmate's and MOCCASIN's graph simplifications.

**Which nodes are contracted.** A *chain* is a run ``i, i+1, ..., j`` of consecutive nodes of
the graph's topological order in which every node reads its predecessor in the run (``k - 1 in
preds[k]``). The strict definition (``u``'s only consumer is ``v`` and ``v``'s only input is
``u``) contracts nothing on the published training graphs, where every forward value is also
read by its gradient; the run definition keeps what makes chains safe to contract: a run of
consecutive nodes is convex (every path between two members stays inside), so the coarse graph
is a DAG and a coarse schedule expands to a valid fine one. A chain stops at ``max_chain``
members, and a node only joins when the last uses of the members that are read after the chain
stay within ``max_chain`` steps of each other (``max_spread``), since the coarse model holds
them all until the last of those uses.

**Memory model (conservative).** Executing super-node ``S`` runs its members in order. Its
*exported* members (read by a node after ``S``) are its output: ``memory[S] = E(S)``, their total
size. Its *working* memory ``W(S)`` is the largest, over the members' steps, of the member's
output plus the members computed earlier and still needed (exported, or read by a later
member). A super-node nobody reads is freed right after its step, so its size is ``W(S)``.
Otherwise, when ``W(S) > E(S)``, a zero-cost *transient* node ``T(S)`` of size ``W(S) - E(S)``,
with ``S``'s inputs, is put right before ``S`` and ``S`` reads it; so the evaluator's memory at
``S``'s step is at least ``held + inputs + W(S)``, while after the step only ``E(S)`` stays.
Hence, for every coarse schedule ``s``: ``expand(s)`` is a valid fine schedule and
``evaluate_schedule(fine, expand(s)).peak_memory <= evaluate_schedule(coarse, s).peak_memory``
(each fine value is read by fine nodes inside coarse steps that read its super-node, so it is
freed no later; the members' own bytes at any fine step are at most ``W(S)``). The total cost
is preserved exactly (transients cost 0).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from .._validate import check_int
from ..errors import InvalidInputError
from ..progress import Progress
from .evaluate import evaluate_schedule
from .graph import RematGraph
from .moccasin import moccasin
from .solution import RematSolution, SolutionCallback, check_budget

__all__ = ["Coarsening", "coarsen_chains", "refine"]


@dataclass(frozen=True, eq=False)
class Coarsening:
    """A coarse graph and the fine nodes behind each of its nodes.

    ``graph``: the coarse :class:`RematGraph`; ``fine``: the original graph; ``members[c]``:
    the fine nodes (in execution order) of coarse node ``c``, empty for a transient node.
    """

    graph: RematGraph
    fine: RematGraph
    members: tuple[tuple[int, ...], ...]

    @property
    def ratio(self) -> float:
        """Fine nodes per coarse node."""
        return self.fine.n / self.graph.n

    def expand(self, schedule: Sequence[int] | np.ndarray) -> np.ndarray:
        """The fine schedule of a coarse one: each coarse step replaced by its members.

        Validates ``schedule`` against the coarse graph first (raises
        :class:`~frugalml.errors.InvalidInputError` if it is not a valid coarse schedule).
        ``O(len(schedule) + fine steps)``.
        """
        evaluate_schedule(self.graph, schedule)
        out = [x for c in np.asarray(schedule, dtype=np.int64) for x in self.members[int(c)]]
        return np.asarray(out, dtype=np.int64)


def _last_use(graph: RematGraph) -> np.ndarray:
    return np.array([s[-1] if s else i for i, s in enumerate(graph.succs)], dtype=np.int64)


def coarsen_chains(
    graph: RematGraph, *, max_chain: int = 8, max_spread: int | None = None
) -> Coarsening:
    """Contract chains of ``graph`` into super-nodes (see the module docstring).

    ``max_chain``: most members of a chain (``>= 1``; ``1`` returns a copy of the graph).
    ``max_spread``: most steps between the last uses of a chain's exported members (default
    ``max_chain``). Cost ``O(n max_chain + |E|)`` time and ``O(n + |E|)`` memory.
    """
    if not isinstance(graph, RematGraph):
        raise InvalidInputError(f"graph must be a RematGraph, got {type(graph).__name__}")
    max_chain = check_int(max_chain, "max_chain", low=1)
    spread = max_chain if max_spread is None else check_int(max_spread, "max_spread", low=0)
    n, preds, succs, mem = graph.n, graph.preds, graph.succs, graph.memory
    last = _last_use(graph)
    # 1. the chains: runs of consecutive nodes, each reading the one before
    chains: list[list[int]] = [[0]]
    lo = hi = int(last[0])  # range of last uses of members read after the current chain
    for v in range(1, n):
        cur = chains[-1]
        ok = len(cur) < max_chain and (v - 1) in preds[v]
        if ok:
            # the members read after the chain once v joins: v, and members read after v
            outs = [x for x in (*cur, v) if last[x] > v]
            if outs:
                lo_v, hi_v = min(int(last[x]) for x in outs), max(int(last[x]) for x in outs)
                ok = hi_v - lo_v <= spread
        if ok:
            cur.append(v)
        else:
            chains.append([v])
    del lo, hi
    # 2. the coarse nodes
    chain_of = np.empty(n, dtype=np.int64)
    for k, ch in enumerate(chains):
        chain_of[ch] = k
    node_of_chain = np.empty(len(chains), dtype=np.int64)
    cost: list[float] = []
    memory: list[int] = []
    cpreds: list[tuple[int, ...]] = []
    members: list[tuple[int, ...]] = []
    names: list[str] = []
    for k, ch in enumerate(chains):
        end = ch[-1]
        exported = [x for x in ch if last[x] > end]
        e_bytes = int(sum(int(mem[x]) for x in exported))
        inside = set(ch)
        work = 0
        for idx, x in enumerate(ch):
            live = int(mem[x])
            for y in ch[:idx]:
                if last[y] > end or any(c in inside and c >= x for c in succs[y]):
                    live += int(mem[y])
            work = max(work, live)
        ins = sorted({int(node_of_chain[chain_of[u]]) for x in ch for u in preds[x]
                      if chain_of[u] != k})  # fmt: skip
        label = graph.names[ch[0]] if len(ch) == 1 else f"{graph.names[ch[0]]}..{graph.names[end]}"
        if not exported:  # nothing reads S: the evaluator frees it right after its step
            e_bytes = work
        elif work > e_bytes:
            cost.append(0.0)
            memory.append(work - e_bytes)
            cpreds.append(tuple(ins))
            members.append(())
            names.append(f"transient({label})")
            ins = [*ins, len(cost) - 1]
        cost.append(float(graph.cost[ch].sum()))
        memory.append(e_bytes)
        cpreds.append(tuple(ins))
        members.append(tuple(ch))
        names.append(label)
        node_of_chain[k] = len(cost) - 1
    coarse = RematGraph(
        cost=np.asarray(cost, dtype=np.float64),
        memory=np.asarray(memory, dtype=np.int64),
        preds=tuple(cpreds),
        names=tuple(names),
        name=f"{graph.name or 'graph'}/chains{max_chain}",
        meta={"coarsened_from": graph.name, "max_chain": max_chain, "max_spread": spread},
    )
    return Coarsening(graph=coarse, fine=graph, members=tuple(members))


def refine(
    coarsening: Coarsening,
    coarse_schedule: Sequence[int] | np.ndarray,
    budget: int,
    *,
    time_limit: float | None = 60.0,
    threads: int | None = None,
    copies: int = 2,
    hints: Sequence[Sequence[int] | np.ndarray] = (),
    progress: Progress | None = None,
    on_solution: SolutionCallback | None = None,
    rng: int | np.random.Generator = 0,
) -> RematSolution:
    """Expand ``coarse_schedule`` to the fine graph and improve it with MOCCASIN.

    The expanded schedule (and any further ``hints``, fine schedules) seed
    :func:`~frugalml.remat.moccasin.moccasin` on the fine graph at ``budget`` bytes for
    ``time_limit`` seconds; the result is never costlier than the cheapest seed that fits
    (the expanded schedule fits whenever the coarse one does, see the module docstring).
    ``info["coarse_cost"]`` is the expanded schedule's cost. Cost: one fine model build
    (``O(n C + |E| C^2)``) and the search.
    """
    if not isinstance(coarsening, Coarsening):
        raise InvalidInputError(
            "coarsening must be a Coarsening (from coarsen_chains), got "
            f"{type(coarsening).__name__}"
        )
    fine = coarsening.fine
    budget = check_budget(fine, int(budget))
    expanded = coarsening.expand(coarse_schedule)
    rep = evaluate_schedule(fine, expanded)
    sol = moccasin(fine, budget, copies=copies, time_limit=time_limit, threads=threads,
                   progress=progress, on_solution=on_solution, rng=rng,
                   hints=[expanded, *hints])  # fmt: skip
    sol.info["coarse_cost"] = rep.total_cost
    sol.info["coarse_peak"] = rep.peak_memory
    return sol
