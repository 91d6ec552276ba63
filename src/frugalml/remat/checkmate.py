"""Checkmate: optimal rematerialisation as a mixed-integer program, and its LP-rounding heuristic.

Our own implementation of the model of Jain, Jain, Nrusimha, Gholami, Abbeel, Keutzer, Stoica,
Gonzalez, "Checkmate: Breaking the Memory Wall with Optimal Tensor Rematerialization" (MLSys 2020),
Sec. 4 (the MILP) and Sec. 5 (two-phase LP rounding), written from the paper's equations and solved
with HiGHS (through ``highspy`` when it is installed, else ``scipy.optimize.milp``).

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

import math
import sys
import time
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import scipy.sparse as sp

from .._resources import check_memory
from .._validate import RngLike, check_choice, check_int, check_positive_float, check_rng
from ..errors import InvalidInputError
from .evaluate import evaluate_schedule
from .graph import RematGraph
from .solution import ProgressCallback, RematSolution, Status, check_budget, scored

__all__ = ["checkmate_lp_rounding", "checkmate_milp"]

Backend = Literal["auto", "highspy", "scipy"]


# --------------------------------------------------------------------------------------------
# the model
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Model:
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


def _tri1(t: np.ndarray | int) -> Any:
    """Offset of stage ``t`` in a lower-triangular block including the diagonal."""
    return t * (t + 1) // 2


def _tri0(t: np.ndarray | int) -> Any:
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


def _build_model(graph: RematGraph, budget: int, linearisation: str = "tight") -> _Model:
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
        return _tri1(t) + i

    def s(t: np.ndarray, i: np.ndarray) -> np.ndarray:
        return base_s + _tri0(t) + i

    def u(t: np.ndarray, k: np.ndarray) -> np.ndarray:
        return base_u + _tri1(t) + k

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
    row = base_mem + _tri1(t) + k
    put(row, u(t, k), 1.0)
    put(row, r(t, k), -m[k])
    nz = k >= 1
    put(row[nz], u(t[nz], k[nz] - 1), -1.0)
    i, t = _expand(np.arange(n - 1) + 1, n - 1)  # S[t, i] for i < t in row (t, 0)
    put(base_mem + _tri1(t), s(t, i), -m[i])
    p, t = _expand(pk + 1, n - 1)  # FREE[t, p] in row (t, pk + 1)
    put(base_mem + _tri1(t) + pk[p] + 1, base_f + f_first[t] + p, m[pi[p]])
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
    return _Model(
        n=n, c=c, A=A, row_lo=np.concatenate(lo), row_hi=np.concatenate(hi), col_lo=col_lo,
        col_hi=col_hi, integrality=integrality, n_r=n_r, n_s=n_s, n_u=n_u, n_free=n_free,
        cost_scale=cost_scale, mem_unit=unit, budget_units=budget_units,
    )  # fmt: skip


def _stage_nodes(n: int) -> np.ndarray:
    """Node index of each R slot (stage-major), so ``_stage_nodes(n)[R > .5]`` is the schedule."""
    t_of = np.repeat(np.arange(n, dtype=np.int64), np.arange(1, n + 1))
    return np.arange(n * (n + 1) // 2, dtype=np.int64) - _tri1(t_of)


# --------------------------------------------------------------------------------------------
# solving with HiGHS
# --------------------------------------------------------------------------------------------
@dataclass
class _Result:
    status: Status
    x: np.ndarray | None
    objective: float | None  # scaled units
    bound: float | None  # scaled units
    trace: list[tuple[float, float]]  # (seconds since t0, scaled objective)
    info: dict[str, Any]


_HIGHS_THREADS: list[int | None] = [None]


def _have_highspy() -> bool:
    try:
        import highspy  # noqa: F401
    except ImportError:
        return False
    return True


def _solve_highspy(
    model: _Model,
    *,
    integer: bool,
    time_limit: float | None,
    mip_rel_gap: float,
    threads: int | None,
    t0: float,
    on_improve: Any,
) -> _Result:
    import highspy

    h = highspy.Highs()
    h.setOptionValue("output_flag", False)
    h.setOptionValue("random_seed", 0)
    if time_limit is not None:
        h.setOptionValue("time_limit", max(float(time_limit), 1e-3))
    if integer:
        h.setOptionValue("mip_rel_gap", float(mip_rel_gap))
    else:
        # the default scaling makes dual simplex stall on some relaxations (fcn_8_vgg_train);
        # HiGHS's IPM is slower still on the larger random graphs
        h.setOptionValue("solver", "simplex")
        h.setOptionValue("simplex_scale_strategy", 4)
    if threads is not None:
        if _HIGHS_THREADS[0] not in (None, threads):
            highspy.Highs.resetGlobalScheduler(True)
        h.setOptionValue("threads", int(threads))
        _HIGHS_THREADS[0] = threads
    A = model.A
    integrality = model.integrality if integer else np.zeros_like(model.integrality)
    status = h.passModel(
        model.n_cols, model.n_rows, int(A.nnz), 1, 1, 0.0,
        model.c, model.col_lo, model.col_hi, model.row_lo, model.row_hi,
        A.indptr.astype(np.int32), A.indices.astype(np.int32), A.data.astype(np.float64),
        integrality.astype(np.int32),
    )  # fmt: skip
    if status == highspy.HighsStatus.kError:
        raise RuntimeError("HiGHS rejected the Checkmate model (passModel failed)")
    trace: list[tuple[float, float]] = []
    failure: list[BaseException] = []
    if integer:

        def callback(event: Any) -> None:
            try:
                obj = float(event.data_out.objective_function_value)
                bnd = float(event.data_out.mip_dual_bound)
                sec = time.perf_counter() - t0
                if not trace or obj < trace[-1][1]:
                    trace.append((sec, obj))
                    if on_improve is not None:
                        on_improve(sec, obj, bnd if math.isfinite(bnd) else None)
            except BaseException as exc:  # re-raised after the solve
                failure.append(exc)
                event.interrupt()

        h.cbMipImprovingSolution.subscribe(callback)
    h.run()
    if failure:
        raise failure[0]
    ms = h.getModelStatus()
    info = h.getInfo()
    S = highspy.HighsModelStatus
    has_sol = int(info.primal_solution_status) == 2
    x = np.asarray(h.getSolution().col_value, dtype=np.float64) if has_sol else None
    extra: dict[str, Any] = {"model_status": h.modelStatusToString(ms)}
    bound: float | None = None
    if integer:
        extra["mip_nodes"] = int(info.mip_node_count)
        extra["mip_gap"] = float(info.mip_gap) if math.isfinite(info.mip_gap) else None
        db = float(info.mip_dual_bound)
        bound = db if math.isfinite(db) else None
    else:
        extra["iterations"] = int(info.simplex_iteration_count)
    obj = float(info.objective_function_value) if has_sol else None
    if ms == S.kOptimal:
        st: Status = "optimal"
        if not integer:
            bound = obj
    elif ms in (S.kInfeasible, S.kUnboundedOrInfeasible):
        st, x, obj = "infeasible", None, None
    elif ms == S.kTimeLimit:
        st = "feasible" if x is not None else "timeout"
    else:
        st = "feasible" if x is not None else "unknown"
    if not integer and st == "feasible":  # an LP stopped early has no usable solution
        st, x, obj = ("timeout" if ms == S.kTimeLimit else "unknown"), None, None
    h.clear()
    return _Result(st, x, obj, bound, trace, extra)


def _solve_scipy(
    model: _Model,
    *,
    integer: bool,
    time_limit: float | None,
    mip_rel_gap: float,
    t0: float,
) -> _Result:
    from scipy.optimize import Bounds, LinearConstraint, milp

    options: dict[str, Any] = {"disp": False, "mip_rel_gap": float(mip_rel_gap)}
    if time_limit is not None:
        options["time_limit"] = max(float(time_limit), 1e-3)
    res = milp(
        model.c,
        integrality=model.integrality if integer else np.zeros_like(model.integrality),
        bounds=Bounds(model.col_lo, model.col_hi),
        constraints=LinearConstraint(model.A.tocsr(), model.row_lo, model.row_hi),
        options=options,
    )
    x = None if res.x is None else np.asarray(res.x, dtype=np.float64)
    obj = None if x is None else float(res.fun)
    bound = getattr(res, "mip_dual_bound", None)
    bound = float(bound) if bound is not None and math.isfinite(bound) else None
    if res.status == 0:
        st: Status = "optimal"
        if not integer:
            bound = obj
    elif res.status == 2:
        st, x, obj = "infeasible", None, None
    elif res.status == 1:
        st = "feasible" if x is not None else "timeout"
    else:
        st = "feasible" if x is not None else "unknown"
    if not integer and st == "feasible":
        st, x, obj = ("timeout" if res.status == 1 else "unknown"), None, None
    trace = [] if obj is None or not integer else [(time.perf_counter() - t0, obj)]
    return _Result(st, x, obj, bound, trace, {"model_status": str(res.message)})


def _solve(
    model: _Model,
    *,
    integer: bool,
    time_limit: float | None,
    mip_rel_gap: float,
    threads: int | None,
    backend: Backend,
    t0: float,
    on_improve: Any = None,
) -> tuple[_Result, str]:
    # "auto" is scipy: highspy and OR-Tools each bundle a HiGHS build and cannot share a process
    # (whichever is imported second fails with undefined symbols), and MOCCASIN needs OR-Tools
    use_highspy = backend == "highspy"
    if use_highspy:
        res = _solve_highspy(
            model, integer=integer, time_limit=time_limit, mip_rel_gap=mip_rel_gap,
            threads=threads, t0=t0, on_improve=on_improve,
        )  # fmt: skip
        return res, "highspy"
    res = _solve_scipy(
        model, integer=integer, time_limit=time_limit, mip_rel_gap=mip_rel_gap, t0=t0
    )
    return res, "scipy"


def _check_common(
    graph: RematGraph, budget: int, time_limit: float | None, backend: str
) -> tuple[int, float | None]:
    if not isinstance(graph, RematGraph):
        raise InvalidInputError(f"graph must be a RematGraph, got {type(graph).__name__}")
    budget = check_int(budget, "budget", low=1)
    check_budget(graph, budget)
    if time_limit is not None:
        time_limit = check_positive_float(time_limit, "time_limit")
    check_choice(backend, "backend", ("auto", "highspy", "scipy"))
    # O(n^2) variables and O(n (n + |E|)) nonzeros: building the sparse model peaks at about
    # 650 bytes per n (n + |E|) (measured), and HiGHS holds its own copies
    n, n_edges = graph.n, len(graph.edges)
    check_memory(1200.0 * n * (n + n_edges),
                 f"the Checkmate MILP of {n} nodes and {n_edges} edges (O(n^2) variables)",
                 fix="use a smaller graph, or the moccasin or greedy solver")  # fmt: skip
    if backend == "highspy":
        if "ortools" in sys.modules:
            raise InvalidInputError(
                "backend='highspy' cannot run in a process that has imported OR-Tools (both "
                "bundle HiGHS; the second import fails); use backend='scipy' here, or run the "
                "MILP in a separate process"
            )
        if not _have_highspy():
            raise InvalidInputError("backend='highspy' needs the highspy package; use 'scipy'")
    return budget, time_limit


def _verify(graph: RematGraph, sol: RematSolution, claimed: float | None) -> RematSolution:
    """A schedule the MILP calls feasible must fit the budget under the common evaluator.

    An excess within solver tolerances (``1e-6`` of the budget) withholds the schedule (status
    ``"unknown"``, ``info["budget_excess"]``); anything larger, or an objective that is not the
    evaluated cost, is a model bug and raises :class:`RuntimeError`.
    """
    rep = sol.report
    if rep is None:
        return sol
    if rep.peak_memory > sol.budget:
        if rep.peak_memory <= sol.budget * (1 + 1e-6):
            info = {**sol.info, "budget_excess": rep.peak_memory - sol.budget}
            return scored(
                graph, sol.solver, "unknown", sol.budget, None, bound=sol.bound,
                solve_seconds=sol.solve_seconds, info=info,
            )  # fmt: skip
        raise RuntimeError(
            f"Checkmate model bug: the MILP schedule for {graph.name or 'the graph'} peaks at "
            f"{rep.peak_memory} bytes under the evaluator, above the budget {sol.budget}"
        )
    if claimed is not None and not math.isclose(
        rep.total_cost, claimed, rel_tol=1e-6, abs_tol=1e-9 * max(graph.total_cost, 1.0)
    ):
        raise RuntimeError(
            f"Checkmate model bug: the MILP objective {claimed:g} differs from the evaluated "
            f"cost {rep.total_cost:g} of its schedule"
        )
    return sol


# --------------------------------------------------------------------------------------------
# public solvers
# --------------------------------------------------------------------------------------------
def checkmate_milp(
    graph: RematGraph,
    budget: int,
    *,
    time_limit: float | None = None,
    mip_rel_gap: float = 1e-4,
    threads: int | None = None,
    progress: ProgressCallback | None = None,
    linearisation: Literal["hazard", "tight"] = "tight",
    backend: Backend = "auto",
) -> RematSolution:
    """Solve the Checkmate MILP (Jain et al., MLSys 2020, Sec. 4) for ``budget`` bytes.

    Parameters
    ----------
    graph:
        The computation graph (``n`` nodes, topological order as stored).
    budget:
        Memory budget in bytes (already resolved, e.g. by
        :func:`~frugalml.remat.solution.resolve_budget`). Raises
        :class:`~frugalml.errors.InfeasibleError` below ``graph.min_budget``.
    time_limit:
        Wall-clock seconds for HiGHS (``None``: no limit).
    mip_rel_gap:
        Relative optimality gap at which HiGHS stops and reports "optimal".
    threads:
        HiGHS threads (``None``: HiGHS's default). HiGHS keeps one global scheduler per process;
        a different value resets it.
    progress:
        Called as ``progress(seconds, total_cost, bound)`` at every improving schedule (highspy
        backend only).
    linearisation:
        ``"tight"`` (default) or ``"hazard"`` (the paper's) encoding of FREE; see the module
        docstring. Same optimum, different LP relaxation.
    backend:
        ``"scipy"`` (``scipy.optimize.milp``; what ``"auto"`` picks) or ``"highspy"`` (incumbent
        callbacks, threads; only in a process without OR-Tools: both bundle HiGHS).

    Returns
    -------
    RematSolution
        ``status``: ``"optimal"`` (within ``mip_rel_gap``), ``"feasible"`` (a schedule at the
        time limit), ``"timeout"`` (none; ``bound`` is HiGHS's dual bound), ``"infeasible"`` (no
        frontier-advancing schedule fits; ``min_budget`` is only a necessary condition).
        ``objective``/``bound`` are in graph cost units; ``trace`` holds ``(seconds, cost)`` of
        the improving schedules; ``info`` the model size and HiGHS statistics.

    Size ``O(n (n + |E|))`` variables and rows, vectorised build; NP-hard solve.
    """
    t0 = time.perf_counter()
    budget, time_limit = _check_common(graph, budget, time_limit, backend)
    mip_rel_gap = float(mip_rel_gap)
    if not (math.isfinite(mip_rel_gap) and mip_rel_gap >= 0):
        raise InvalidInputError(f"mip_rel_gap must be a finite number >= 0, got {mip_rel_gap}")
    if threads is not None:
        threads = check_int(threads, "threads", low=1)
    check_choice(linearisation, "linearisation", ("hazard", "tight"))
    model = _build_model(graph, budget, linearisation)
    build_seconds = time.perf_counter() - t0
    scale = model.cost_scale

    on_improve = None
    if progress is not None:

        def on_improve(sec: float, obj: float, bnd: float | None) -> None:
            progress(sec, obj * scale, None if bnd is None else bnd * scale)

    remaining = None if time_limit is None else max(time_limit - build_seconds, 1e-3)
    res, used = _solve(
        model, integer=True, time_limit=remaining, mip_rel_gap=mip_rel_gap, threads=threads,
        backend=backend, t0=t0, on_improve=on_improve,
    )  # fmt: skip
    solve_seconds = time.perf_counter() - t0
    info = {**model.info(), **res.info, "backend": used, "build_seconds": build_seconds}
    schedule = None
    objective = None if res.objective is None else res.objective * scale
    bound = None if res.bound is None else res.bound * scale
    if res.x is not None:
        schedule = _stage_nodes(graph.n)[model.r_values(res.x) > 0.5]
    trace = tuple((sec, obj * scale) for sec, obj in res.trace)
    if used == "scipy" and progress is not None and trace:  # no incumbent callbacks there
        progress(trace[-1][0], trace[-1][1], bound)
    seconds_to_best = solve_seconds
    if objective is not None and trace:
        seconds_to_best = next(
            (sec for sec, obj in trace if math.isclose(obj, objective, rel_tol=1e-9)),
            trace[-1][0],
        )
    sol = scored(
        graph, "checkmate_milp", res.status, budget, schedule, objective=objective, bound=bound,
        solve_seconds=solve_seconds, seconds_to_best=seconds_to_best if schedule is not None
        else None, trace=trace, info=info,
    )  # fmt: skip
    return _verify(graph, sol, objective)


def _round(graph: RematGraph, masks: np.ndarray) -> np.ndarray:
    """The cheapest valid R for each rounded S.

    ``masks``: ``(K, n (n-1) / 2)`` bool, candidate S in the model's layout. Returns ``(K, n
    (n+1) / 2)`` bool R. Stages are walked backwards keeping the values a later stage reads
    from ``S``; within stage ``t`` nodes are walked from ``t`` down: a node is *demanded* if it
    is ``t``, read by a node computed in the stage, or held for the next stage and read there;
    a demanded node is recomputed unless ``S[t]`` holds it (then it is demanded from stage
    ``t - 1``). Unused ``S`` bits are dropped, so they never force recomputation. ``O(K n (n +
    |E|))`` with the ``K`` candidates vectorised.
    """
    n = graph.n
    K = masks.shape[0]
    R = np.zeros((K, n * (n + 1) // 2), dtype=bool)
    succs = [np.asarray(s, dtype=np.int64) for s in graph.succs]
    demand_next = np.zeros((K, n), dtype=bool)
    for t in range(n - 1, -1, -1):
        s_t = np.zeros((K, t + 1), dtype=bool)
        s_t[:, :t] = masks[:, _tri0(t) : _tri0(t) + t]
        r_t = np.zeros((K, t + 1), dtype=bool)
        demand = np.zeros((K, n), dtype=bool)
        r_t[:, t] = True
        for i in range(t - 1, -1, -1):
            sc = succs[i]
            sc = sc[sc <= t]
            need = demand_next[:, i].copy()
            if sc.size:
                need |= r_t[:, sc].any(axis=1)
            r_t[:, i] = need & ~s_t[:, i]
            demand[:, i] = need & s_t[:, i]
        R[:, _tri1(t) : _tri1(t) + t + 1] = r_t
        demand_next = demand
    return R


def checkmate_lp_rounding(
    graph: RematGraph,
    budget: int,
    *,
    method: Literal["threshold", "randomized"] = "threshold",
    samples: int = 100,
    rng: RngLike = None,
    time_limit: float | None = None,
    linearisation: Literal["hazard", "tight"] = "tight",
    backend: Backend = "auto",
) -> RematSolution:
    """Checkmate's LP relaxation with two-phase rounding (Jain et al., MLSys 2020, Sec. 5).

    Solves the relaxation of :func:`checkmate_milp`'s model, rounds the storage matrix ``S*``
    (``"threshold"``: ``S = S* >= tau`` for up to ``samples`` thresholds ``tau`` taken from the
    distinct values of ``S*``, plus ``S = 0``; ``"randomized"``: ``samples`` draws ``S ~
    Bernoulli(S*)`` from ``rng``), derives the cheapest computation matrix ``R`` valid for
    each rounded ``S`` (see :func:`_round`), scores every distinct schedule with
    :func:`~frugalml.remat.evaluate.evaluate_schedule`, and keeps the cheapest one within the
    budget.

    Returns a :class:`RematSolution` with ``status="feasible"`` and that schedule, or
    ``status="unknown"``, ``schedule=None`` and ``info["best_peak"]`` (the least peak any
    rounding reached) when none fits; ``"infeasible"`` when the LP itself is infeasible,
    ``"timeout"`` when it did not finish. ``bound`` is the LP optimum, a lower bound on the
    MILP optimum (with the default ``linearisation="tight"`` a higher one than the paper's
    ``"hazard"`` form gives). ``time_limit`` bounds the LP solve. Cost: one LP with ``O(n (n +
    |E|))`` rows (dual simplex), then ``O(samples n (n + |E|))`` rounding and evaluation.
    """
    t0 = time.perf_counter()
    budget, time_limit = _check_common(graph, budget, time_limit, backend)
    check_choice(method, "method", ("threshold", "randomized"))
    samples = check_int(samples, "samples", low=1)
    gen = check_rng(rng) if method == "randomized" else None
    check_choice(linearisation, "linearisation", ("hazard", "tight"))
    model = _build_model(graph, budget, linearisation)
    build_seconds = time.perf_counter() - t0
    remaining = None if time_limit is None else max(time_limit - build_seconds, 1e-3)
    res, used = _solve(
        model, integer=False, time_limit=remaining, mip_rel_gap=0.0, threads=None,
        backend=backend, t0=t0,
    )  # fmt: skip
    info: dict[str, Any] = {
        **model.info(), **res.info, "backend": used, "build_seconds": build_seconds,
        "method": method,
    }  # fmt: skip
    name = f"checkmate_lp_{method}"
    if res.x is None:
        status: Status = res.status if res.status in ("infeasible", "timeout") else "unknown"
        return scored(
            graph, name, status, budget, None, solve_seconds=time.perf_counter() - t0, info=info
        )
    lp_bound = res.objective * model.cost_scale if res.objective is not None else None
    info["lp_seconds"] = time.perf_counter() - t0
    s_star = np.clip(model.s_values(res.x), 0.0, 1.0)
    if method == "threshold":
        values = np.unique(np.round(s_star[s_star > 1e-6], 6))
        if values.size > samples:
            values = np.unique(np.quantile(values, np.linspace(0.0, 1.0, samples)))
        taus = np.concatenate([values - 1e-7, [np.inf]])
        masks = s_star[None, :] >= taus[:, None]
        info["thresholds"] = int(taus.size)
    else:
        assert gen is not None
        masks = gen.random((samples, s_star.size)) < s_star[None, :]
    R = _round(graph, masks)
    nodes = _stage_nodes(graph.n)
    R_unique = np.unique(R, axis=0)
    best: tuple[float, int, np.ndarray] | None = None
    least_peak: int | None = None
    fits = 0
    for row in R_unique:
        sched = nodes[row]
        rep = evaluate_schedule(graph, sched)
        least_peak = rep.peak_memory if least_peak is None else min(least_peak, rep.peak_memory)
        if rep.peak_memory <= budget:
            fits += 1
            key = (rep.total_cost, rep.peak_memory)
            if best is None or key < (best[0], best[1]):
                best = (rep.total_cost, rep.peak_memory, sched)
    info.update(candidates=int(masks.shape[0]), distinct_schedules=int(R_unique.shape[0]),
                within_budget=fits, best_peak=least_peak)  # fmt: skip
    solve_seconds = time.perf_counter() - t0
    if best is None:
        return scored(
            graph, name, "unknown", budget, None, bound=lp_bound, solve_seconds=solve_seconds,
            info=info,
        )  # fmt: skip
    return scored(
        graph, name, "feasible", budget, best[2], objective=best[0], bound=lp_bound,
        solve_seconds=solve_seconds, seconds_to_best=solve_seconds,
        trace=((solve_seconds, best[0]),), info=info,
    )  # fmt: skip
