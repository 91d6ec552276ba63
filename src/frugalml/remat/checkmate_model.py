"""The Checkmate MILP: variables, constraints and objective, assembled as sparse arrays.

Our own implementation of the model of Jain, Jain, Nrusimha, Gholami, Abbeel, Keutzer, Stoica,
Gonzalez, "Checkmate: Breaking the Memory Wall with Optimal Tensor Rematerialization" (MLSys 2020),
Sec. 4, written from the paper's equations. :func:`build_model` returns it in HiGHS form
(:class:`CheckmateModel`); :mod:`frugalml.remat.checkmate` solves it (and its LP relaxation, for
the rounding heuristic of Sec. 5) with HiGHS.

The schedule is split into ``n`` *frontier-advancing* stages: stage ``t`` computes node ``t`` for
the first time, after (re)computing any subset of the nodes ``< t`` it chooses, all in the graph's
topological order. Binary variables, for stages ``t = 0..n-1``:

- ``R[t, i]`` (``i <= t``, ``R[t, t] = 1``): node ``i`` is computed in stage ``t``;
- ``S[t, i]`` (``i < t``; no ``S[0]``): the value of ``i`` is held from stage ``t-1`` into ``t``;
- ``FREE[t, i, k]`` for every edge ``(i, k)`` and for ``i = k`` (``k <= t``): the value of ``i``
  is freed right after ``k`` runs in stage ``t``;

and continuous ``U[t, k]`` (``k <= t``), the memory resident while ``k`` runs in stage ``t``.
Constraints::

    R[t, k] <= R[t, i] + S[t, i]                 for every edge (i, k), k <= t
    S[t+1, i] <= R[t, i] + S[t, i]
    U[t, 0] = sum_i m_i S[t, i] + m_0 R[t, 0]
    U[t, k] = U[t, k-1] + m_k R[t, k] - sum_{i in preds(k-1) + {k-1}} m_i FREE[t, i, k-1]
    U[t, k] <= budget
    h = (1 - R[t, k]) + S[t+1, i] + sum_{j in succs(i), k < j <= t} R[t, j]   ("hazards")
    1 - FREE[t, i, k] <= h

with ``S[n, .] := 0``, and "a hazard forbids the free" linearised either as in the paper
(``linearisation="hazard"``: ``kappa (1 - FREE[t, i, k]) >= h`` with ``kappa`` the number of
hazard terms of that row) or disaggregated (``"tight"``, the default: ``FREE <= R[t, k]``,
``FREE <= 1 - S[t+1, i]`` and ``FREE <= 1 - R[t, j]`` for each later reader ``j``). Both have
the same integer solutions — ``FREE = 1`` iff ``k`` runs in stage ``t``, nothing later in the
stage reads ``i`` and ``i`` is not kept for the next stage — but the disaggregated form has a
much tighter LP relaxation, which HiGHS needs: on the published 100-node random layered graph
with 120 s, the paper's form ends at +19% / +1275% overhead at 90% / 80% budgets, the tight one
at +0.8% / +8.9%. Objective: ``min sum_t sum_i cost_i R[t, i]``. This is exactly the memory model of
:func:`~frugalml.remat.evaluate.evaluate_schedule` for the stage-by-stage schedule (the evaluator
frees every value after its last use, so its peak is never above ``max U``).

The optimum is optimal *among frontier-advancing schedules in the graph's topological order*
(the class Checkmate searches); a schedule that reorders independent nodes can occasionally do
better, so ``bound`` is a bound for this model, not for every schedule.

Size: ``n (n+1) / 2`` R and U variables, ``n (n-1) / 2`` S, ``O(n (n + |E|))`` FREE variables
and constraints, ``O(n (n + |E| + sum_i deg(i)^2))`` non-zeros; building it is vectorised
(``O(nnz)`` NumPy work), solving it is NP-hard (HiGHS branch and bound).

Memory sizes are divided by their GCD (the budget is floored to that unit, with a half-unit of
slack so solver tolerances cannot admit a schedule one unit over), costs by their mean, for
numerical sanity; results are reported in bytes and graph cost units.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.sparse as sp

from .graph import RematGraph

__all__ = ["CheckmateModel", "build_model", "stage_nodes", "tri0", "tri1"]


@dataclass(frozen=True)
class CheckmateModel:
    """The Checkmate MILP in HiGHS form: ``min c x  s.t.  row_lo <= A x <= row_hi``,
    ``col_lo <= x <= col_hi``, ``x[integrality == 1]`` integral. Column blocks: R, S, U, FREE."""

    n: int
    c: np.ndarray
    A: sp.csc_matrix
    row_lo: np.ndarray
    row_hi: np.ndarray
    col_lo: np.ndarray
    col_hi: np.ndarray
    integrality: np.ndarray
    n_r: int
    n_s: int
    n_u: int
    n_free: int
    cost_scale: float
    mem_unit: int
    budget_units: int

    @property
    def n_cols(self) -> int:
        return int(self.c.size)

    @property
    def n_rows(self) -> int:
        return int(self.row_lo.size)

    def r_values(self, x: np.ndarray) -> np.ndarray:
        return x[: self.n_r]

    def s_values(self, x: np.ndarray) -> np.ndarray:
        return x[self.n_r : self.n_r + self.n_s]

    def info(self) -> dict[str, Any]:
        return {
            "variables": self.n_cols,
            "binaries": int(self.integrality.sum()),
            "constraints": self.n_rows,
            "nonzeros": int(self.A.nnz),
            "r_vars": self.n_r,
            "s_vars": self.n_s,
            "u_vars": self.n_u,
            "free_vars": self.n_free,
            "memory_unit": self.mem_unit,
            "budget_units": self.budget_units,
        }


def tri1(t: np.ndarray | int) -> Any:
    """Offset of stage ``t`` in a lower-triangular block including the diagonal."""
    return t * (t + 1) // 2


def tri0(t: np.ndarray | int) -> Any:
    """Offset of stage ``t`` in a strictly lower-triangular block."""
    return t * (t - 1) // 2


def _expand(start: np.ndarray, stop: int) -> tuple[np.ndarray, np.ndarray]:
    """All ``(q, t)`` with ``start[q] <= t <= stop``, grouped by ``q`` then ascending ``t``."""
    start = np.asarray(start, dtype=np.int64)
    counts = np.maximum(stop + 1 - start, 0)
    q = np.repeat(np.arange(start.size, dtype=np.int64), counts)
    first = np.cumsum(counts) - counts
    t = np.arange(int(counts.sum()), dtype=np.int64) - np.repeat(first, counts) + start[q]
    return q, t


def _free_pairs(graph: RematGraph) -> tuple[np.ndarray, np.ndarray]:
    """The ``(i, k)`` pairs that own a FREE variable: every edge and every ``(k, k)``, sorted by
    ``k`` (so the pairs live in stage ``t`` form a prefix)."""
    n = graph.n
    edges = np.asarray(graph.edges, dtype=np.int64).reshape(-1, 2)
    pi = np.concatenate([edges[:, 0], np.arange(n, dtype=np.int64)])
    pk = np.concatenate([edges[:, 1], np.arange(n, dtype=np.int64)])
    order = np.lexsort((pi, pk))
    return pi[order], pk[order]


def _memory_unit(memory: np.ndarray) -> int:
    pos = memory[memory > 0]
    return int(np.gcd.reduce(pos)) if pos.size else 1


def build_model(graph: RematGraph, budget: int, linearisation: str = "tight") -> CheckmateModel:
    """Assemble the Checkmate MILP for ``graph`` under ``budget`` bytes (see module docstring)."""
    n = graph.n
    unit = _memory_unit(graph.memory)
    m = (graph.memory // unit).astype(np.float64)
    budget_units = int(budget // unit)
    pos_cost = graph.cost[graph.cost > 0]
    cost_scale = float(pos_cost.mean()) if pos_cost.size else 1.0

    n_r = n * (n + 1) // 2
    n_s = n * (n - 1) // 2
    n_u = n_r
    pi, pk = _free_pairs(graph)
    n_pairs = pi.size
    per_stage = np.searchsorted(pk, np.arange(n), side="right")  # pairs alive in stage t
    f_first = np.concatenate([[0], np.cumsum(per_stage)[:-1]])
    n_free = int(per_stage.sum())
    base_s, base_u, base_f = n_r, n_r + n_s, n_r + n_s + n_u
    n_cols = base_f + n_free

    def r(t: np.ndarray, i: np.ndarray) -> np.ndarray:
        return tri1(t) + i

    def s(t: np.ndarray, i: np.ndarray) -> np.ndarray:
        return base_s + tri0(t) + i

    def u(t: np.ndarray, k: np.ndarray) -> np.ndarray:
        return base_u + tri1(t) + k

    rows: list[np.ndarray] = []
    cols: list[np.ndarray] = []
    vals: list[np.ndarray] = []
    lo: list[np.ndarray] = []
    hi: list[np.ndarray] = []
    n_rows = 0

    def put(row: np.ndarray, col: np.ndarray, val: np.ndarray | float) -> None:
        rows.append(row)
        cols.append(col)
        vals.append(np.broadcast_to(np.asarray(val, dtype=np.float64), row.shape))

    # [1b] R[t,k] - R[t,i] - S[t,i] <= 0 for every edge (i, k) and stage t >= k
    edges = np.asarray(graph.edges, dtype=np.int64).reshape(-1, 2)
    q, t = _expand(edges[:, 1], n - 1)
    ei, ek = edges[q, 0], edges[q, 1]
    row = n_rows + np.arange(q.size)
    put(row, r(t, ek), 1.0)
    put(row, r(t, ei), -1.0)
    put(row, s(t, ei), -1.0)
    lo.append(np.full(q.size, -np.inf))
    hi.append(np.zeros(q.size))
    n_rows += q.size

    # [1c] S[t+1,i] - R[t,i] - S[t,i] <= 0 for i < t <= n-2 (i = t holds since R[t,t] = 1)
    if n >= 3:
        i, t = _expand(np.arange(1, n - 1), n - 2)
        row = n_rows + np.arange(i.size)
        put(row, s(t + 1, i), 1.0)
        put(row, r(t, i), -1.0)
        put(row, s(t, i), -1.0)
        lo.append(np.full(i.size, -np.inf))
        hi.append(np.zeros(i.size))
        n_rows += i.size

    # [2] memory recursion, one equality row per (t, k), k <= t: row = base + tri1(t) + k
    base_mem = n_rows
    k, t = _expand(np.arange(n), n - 1)
    row = base_mem + tri1(t) + k
    put(row, u(t, k), 1.0)
    put(row, r(t, k), -m[k])
    nz = k >= 1
    put(row[nz], u(t[nz], k[nz] - 1), -1.0)
    i, t = _expand(np.arange(n - 1) + 1, n - 1)  # S[t, i] for i < t in row (t, 0)
    put(base_mem + tri1(t), s(t, i), -m[i])
    p, t = _expand(pk + 1, n - 1)  # FREE[t, p] in row (t, pk + 1)
    put(base_mem + tri1(t) + pk[p] + 1, base_f + f_first[t] + p, m[pi[p]])
    lo.append(np.zeros(n_r))
    hi.append(np.zeros(n_r))
    n_rows += n_r

    # [4] hazards, two rows per FREE variable (t, p): a = base_a + f_first[t] + p, b likewise
    base_a, base_b = n_rows, n_rows + n_free
    p, t = _expand(pk, n - 1)
    loc = f_first[t] + p
    fcol = base_f + loc
    kappa = 1.0 + (t < n - 1)
    # later readers j of pi[p] (j > pk[p]) count as hazards from stage j on
    succs = graph.succs
    later_p, later_j = [], []
    for pp in range(n_pairs):
        for j in succs[pi[pp]]:
            if j > pk[pp]:
                later_p.append(pp)
                later_j.append(j)
    later_p_arr = np.asarray(later_p, dtype=np.int64)
    later_j_arr = np.asarray(later_j, dtype=np.int64)
    q, tl = _expand(later_j_arr, n - 1)
    lp, lj = later_p_arr[q], later_j_arr[q]
    lloc = f_first[tl] + lp
    kappa = kappa + np.bincount(lloc, minlength=n_free)[loc]
    # a: -FREE + R[t,k] - S[t+1,i] - sum R[t,j] <= 0          (no hazard -> FREE = 1)
    has_next = t < n - 1
    put(base_a + loc, fcol, -1.0)
    put(base_a + loc, r(t, pk[p]), 1.0)
    put(base_a + loc[has_next], s(t[has_next] + 1, pi[p[has_next]]), -1.0)
    put(base_a + lloc, r(tl, lj), -1.0)
    lo.append(np.full(n_free, -np.inf))
    hi.append(np.zeros(n_free))
    n_rows += n_free
    if linearisation == "hazard":
        # b: kappa FREE - R[t,k] + S[t+1,i] + sum R[t,j] <= kappa - 1  (a hazard -> FREE = 0)
        put(base_b + loc, fcol, kappa)
        put(base_b + loc, r(t, pk[p]), -1.0)
        put(base_b + loc[has_next], s(t[has_next] + 1, pi[p[has_next]]), 1.0)
        put(base_b + lloc, r(tl, lj), 1.0)
        kappa_rows = np.empty(n_free)
        kappa_rows[loc] = kappa
        lo.append(np.full(n_free, -np.inf))
        hi.append(kappa_rows - 1.0)
        n_rows += n_free
    else:
        # one row per hazard term: FREE <= R[t,k], FREE + S[t+1,i] <= 1, FREE + R[t,j] <= 1
        nn, nl = int(has_next.sum()), int(lloc.size)
        put(base_b + loc, fcol, 1.0)
        put(base_b + loc, r(t, pk[p]), -1.0)
        rows_s = base_b + n_free + np.arange(nn)
        put(rows_s, fcol[has_next], 1.0)
        put(rows_s, s(t[has_next] + 1, pi[p[has_next]]), 1.0)
        rows_l = base_b + n_free + nn + np.arange(nl)
        put(rows_l, base_f + lloc, 1.0)
        put(rows_l, r(tl, lj), 1.0)
        lo.append(np.full(n_free + nn + nl, -np.inf))
        hi.append(np.concatenate([np.zeros(n_free), np.ones(nn + nl)]))
        n_rows += n_free + nn + nl

    A = sp.coo_matrix(
        (np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))),
        shape=(n_rows, n_cols),
    ).tocsc()
    A.sum_duplicates()

    c = np.zeros(n_cols)
    kk, tt = _expand(np.arange(n), n - 1)
    c[r(tt, kk)] = graph.cost[kk] / cost_scale
    col_lo = np.zeros(n_cols)
    col_hi = np.ones(n_cols)
    diag = np.arange(n)
    col_lo[r(diag, diag)] = 1.0  # frontier advancing: R[t, t] = 1
    col_hi[base_u : base_u + n_u] = budget_units + 0.5  # sums are whole units
    integrality = np.ones(n_cols, dtype=np.int32)
    integrality[base_u : base_u + n_u] = 0
    return CheckmateModel(
        n=n, c=c, A=A, row_lo=np.concatenate(lo), row_hi=np.concatenate(hi), col_lo=col_lo,
        col_hi=col_hi, integrality=integrality, n_r=n_r, n_s=n_s, n_u=n_u, n_free=n_free,
        cost_scale=cost_scale, mem_unit=unit, budget_units=budget_units,
    )  # fmt: skip


def stage_nodes(n: int) -> np.ndarray:
    """Node index of each R slot (stage-major), so ``stage_nodes(n)[R > .5]`` is the schedule."""
    t_of = np.repeat(np.arange(n, dtype=np.int64), np.arange(1, n + 1))
    return np.arange(n * (n + 1) // 2, dtype=np.int64) - tri1(t_of)
