"""HiGHS glue for the Checkmate MILP and its LP relaxation: ``highspy`` (incumbent callbacks,
threads) or ``scipy.optimize.milp``.

``highspy`` and OR-Tools each bundle a HiGHS build and cannot share a process (whichever is
imported second fails with undefined symbols), so ``backend="auto"`` is scipy. HiGHS keeps one
global thread scheduler per process: a different ``threads`` resets it.

Paper: Jain et al., "Checkmate: Breaking the Memory Wall with Optimal Tensor Rematerialization"
(MLSys 2020), Sec. 4 (the MILP solved here) and Sec. 5 (its LP relaxation).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from .checkmate_model import CheckmateModel
from .solution import Status

__all__ = ["Backend", "HighsOutcome", "have_highspy", "solve_model"]

Backend = Literal["auto", "highspy", "scipy"]


@dataclass
class HighsOutcome:
    """What HiGHS returned for a :class:`~frugalml.remat.checkmate_model.CheckmateModel`:
    ``x`` the column values (``None`` without a usable solution), objective and bound in the
    model's scaled cost units, ``trace`` the improving incumbents."""

    status: Status
    x: np.ndarray | None
    objective: float | None  # scaled units
    bound: float | None  # scaled units
    trace: list[tuple[float, float]]  # (seconds since t0, scaled objective)
    info: dict[str, Any]


_HIGHS_THREADS: list[int | None] = [None]


def have_highspy() -> bool:
    """True if ``highspy`` imports (never call it in a process that uses OR-Tools)."""
    try:
        import highspy  # noqa: F401
    except ImportError:
        return False
    return True


def _solve_highspy(
    model: CheckmateModel,
    *,
    integer: bool,
    time_limit: float | None,
    mip_rel_gap: float,
    threads: int | None,
    t0: float,
    on_improve: Any,
) -> HighsOutcome:
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
    return HighsOutcome(st, x, obj, bound, trace, extra)


def _solve_scipy(
    model: CheckmateModel,
    *,
    integer: bool,
    time_limit: float | None,
    mip_rel_gap: float,
    t0: float,
) -> HighsOutcome:
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
    return HighsOutcome(st, x, obj, bound, trace, {"model_status": str(res.message)})


def solve_model(
    model: CheckmateModel,
    *,
    integer: bool,
    time_limit: float | None,
    mip_rel_gap: float,
    threads: int | None,
    backend: Backend,
    t0: float,
    on_improve: Any = None,
) -> tuple[HighsOutcome, str]:
    """Solve ``model`` (``integer=False``: its LP relaxation) and say which backend ran.

    ``t0``: the ``time.perf_counter()`` the trace's seconds count from; ``on_improve(seconds,
    objective, bound)`` (scaled units) at each improving incumbent (highspy only).
    """
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
