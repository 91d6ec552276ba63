"""Finite differences of a black-box objective: what one worker of coded ES computes.

Bartan & Pilanci, "Distributed Black-Box Optimization via Error Correcting Codes"
(arXiv 1907.05984): worker j returns the central difference
y_j = (f(x + s w_j) - f(x - s w_j)) / (2 s) along its coded direction w_j (or the forward
difference (f(x + s w_j) - f(x)) / s); :mod:`.estimator` decodes the directional
derivatives from them. The objective is called on one point (d,) at a time, or on a batch
(m, d) -> (m,) with ``batched=True``; non-finite values are kept (they become erasures).

Cost: 2 evaluations of f per worker (1 with forward differences), O(d) arithmetic each.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from ...errors import InvalidInputError

__all__ = ["Objective", "call_objective", "evaluate_differences", "finite_difference"]

Objective = Callable[[np.ndarray], Any]


def _scalar(value: Any, where: str) -> float:
    try:
        arr = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise InvalidInputError(
            f"the objective must return a real number, got {type(value).__name__} at {where}"
        ) from exc
    if arr.size != 1 or arr.ndim > 1:
        raise InvalidInputError(
            f"the objective must return a scalar (float or size-1 array), got shape "
            f"{arr.shape} at {where}; with batched=True it maps (m, d) to (m,)"
        )
    return float(arr.reshape(()))


def call_objective(objective: Objective, points: np.ndarray, batched: bool) -> np.ndarray:
    """f at each row of ``points`` (m, d) -> (m,) float64; non-finite values are kept.

    Raises ``InvalidInputError`` when the objective returns a non-number or a wrong shape.
    """
    m = points.shape[0]
    if not batched:
        return np.array([_scalar(objective(p), f"point {i}") for i, p in enumerate(points)])
    out = objective(points)
    try:
        arr = np.asarray(out, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise InvalidInputError(
            f"a batched objective must return an array of shape ({m},), got {type(out).__name__}"
        ) from exc
    if arr.shape not in ((m,), (m, 1)):
        raise InvalidInputError(
            f"a batched objective must map ({m}, d) points to shape ({m},), got {arr.shape}"
        )
    return arr.reshape(m)


def finite_difference(
    objective: Objective,
    x: np.ndarray,
    w: np.ndarray,
    sigma: float,
    antithetic: bool = True,
    f0: float | None = None,
    batched: bool = False,
) -> float:
    """One worker's output: (f(x + s w) - f(x - s w)) / (2 s), or (f(x + s w) - f0) / s.

    Module-level (picklable) so that process and serverless executors can run it.
    :func:`evaluate_differences` on the single direction ``w`` (the same points, the same
    arithmetic).
    """
    diffs = evaluate_differences(
        objective, x, w[None, :], sigma, antithetic=antithetic, f0=f0, batched=batched
    )
    return float(diffs[0])


def evaluate_differences(
    objective: Objective,
    x: np.ndarray,
    coded: np.ndarray,
    sigma: float,
    *,
    antithetic: bool = True,
    f0: float | None = None,
    batched: bool = False,
) -> np.ndarray:
    """All N workers' finite differences in this process: (N,) from coded directions (N, d).

    With ``batched`` the objective is called once on all 2N (or N) points.
    """
    n = coded.shape[0]
    if antithetic:
        pts = np.concatenate([x + sigma * coded, x - sigma * coded])
        vals = call_objective(objective, pts, batched)
        with np.errstate(invalid="ignore", over="ignore"):
            return (vals[:n] - vals[n:]) / (2.0 * sigma)
    if f0 is None:
        f0 = call_objective(objective, x[None, :], batched)[0]
    vals = call_objective(objective, x + sigma * coded, batched)
    with np.errstate(invalid="ignore", over="ignore"):
        return (vals - f0) / sigma
