"""AdaCons: the aggregation formula on a stack of worker gradients (NumPy, no torch).

Paper: Choukroun, Azoulay, Kisilev, "Adaptive Consensus Gradients Aggregation for Scaled
Distributed Training" (arXiv 2411.03742).

Instead of averaging the ``N`` workers' gradients ``g_i``, AdaCons steps along a point of the
subspace spanned by the normalised gradients ``u_i = g_i / ||g_i||``::

    raw_i   = <u_i, r>                      r = mean_i g_i   (or the previous step's direction)
    m_t     = beta * m_{t-1} + (1 - beta) * sort(raw)          "subspace momentum" on the
    s_i     = m_t[rank of raw_i among raw]                      *sorted* coefficients
    alpha   = s / sum(s)                                        unbiased: sum(alpha) = 1
    d       = c * sum_i alpha_i u_i        c = mean_i ||g_i||  (rescale="mean_norm") or 1

The smoothed coefficients are handed back *rank-preservingly*: the worker whose coefficient is
the k-th smallest this step receives the k-th smallest smoothed value (``s[perm[k]] = m[k]``,
i.e. ``m`` indexed by the inverse permutation). The authors' public sample code indexes with the
permutation itself (``s = m[perm]``), which hands the smoothed values to the wrong workers
whenever the order is not the identity; :func:`update_coefficients` implements the
rank-preserving mapping and ``mapping="sample"`` reproduces the sample for comparison.

Guards: if ``sum(s) <= guard * sum(|s|)`` (the normalisation would blow up or flip the
direction into an ascent direction), ``alpha = 1/N`` for that step and the step is marked as a
fallback. With the previous direction as reference its sign carries no information
(``s / sum(s)`` does not change when ``r`` flips), so there only ``|sum(s)|`` is guarded.
Non-finite gradients on any worker skip the step on every worker.

:func:`adacons_coefficients` / :func:`adacons_aggregate` compute the formula on a stacked
``(N, P)`` array of gradients (the single-process reference); :func:`update_coefficients` is
the momentum and normalisation step that the distributed
:class:`~.aggregation.AdaConsAggregator` shares with them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from .._results import ResultRepr
from .._validate import check_array, check_choice, check_nonnegative_float, check_probability

__all__ = [
    "MAPPINGS",
    "RESCALES",
    "AdaConsCoefficients",
    "adacons_aggregate",
    "adacons_coefficients",
    "update_coefficients",
]

RESCALES = ("mean_norm", "none")
MAPPINGS = ("rank", "sample")


def update_coefficients(
    raw: np.ndarray,
    state: np.ndarray | None = None,
    *,
    beta: float = 0.0,
    guard: float = 1e-3,
    mapping: str = "rank",
    sign_free: bool = False,
) -> tuple[np.ndarray, np.ndarray, bool]:
    """Subspace momentum and normalisation of the raw coefficients (O(N log N)).

    Parameters
    ----------
    raw:
        ``(N,)`` raw coefficients ``<g_i/||g_i||, r>`` of this step.
    state:
        ``(N,)`` moving average of the sorted coefficients from the previous step (ascending),
        or ``None`` on the first step (the state starts at ``sort(raw)``).
    beta:
        Momentum in ``[0, 1)``; 0 disables smoothing.
    guard:
        Fall back to ``alpha = 1/N`` when ``sum(s) <= guard * sum(|s|)``.
    mapping:
        ``"rank"``: the worker with the k-th smallest raw coefficient gets the k-th smallest
        smoothed value (correct). ``"sample"``: ``s = m[perm]`` as in the authors' sample code.
    sign_free:
        The reference direction's sign carries no information (it is the previous step's
        direction, not the current mean gradient): ``alpha = s / sum(s)`` is then invariant to
        flipping it, and only ``|sum(s)| <= guard * sum(|s|)`` falls back. With the mean
        gradient as reference (default ``False``) a non-positive sum also falls back, since
        ``s / sum(s)`` would then point uphill along the mean gradient.

    Returns
    -------
    (alpha, new_state, fallback)
        ``alpha`` ``(N,)`` sums to one; ``new_state`` ``(N,)`` ascending; ``fallback`` tells
        whether the guard replaced ``alpha`` by ``1/N``.
    """
    raw = check_array(raw, "raw", ndim=1)
    n = raw.shape[0]
    beta = check_probability(beta, "beta", allow_one=False)
    guard = check_nonnegative_float(guard, "guard")
    check_choice(mapping, "mapping", MAPPINGS)
    perm = np.argsort(raw, kind="stable")
    sorted_raw = raw[perm]
    if state is None:
        new_state = sorted_raw.copy()
    else:
        state = check_array(state, "state", shape=(n,))
        new_state = beta * state + (1.0 - beta) * sorted_raw
    if mapping == "rank":
        smoothed = np.empty(n)
        smoothed[perm] = new_state
    else:
        smoothed = new_state[perm]
    total = float(smoothed.sum())
    scale = float(np.abs(smoothed).sum())
    size = abs(total) if sign_free else total
    if not (math.isfinite(total) and size > guard * scale and size > 0.0):
        return np.full(n, 1.0 / n), new_state, True
    return smoothed / total, new_state, False


@dataclass(frozen=True, repr=False)
class AdaConsCoefficients(ResultRepr):
    """The AdaCons coefficients of one step.

    alpha: ``(N,)`` normalised coefficients (sum to one) of the unit gradients.
    raw: ``(N,)`` raw coefficients ``<g_i/||g_i||, r>`` before momentum.
    norms: ``(N,)`` gradient norms ``||g_i||``.
    weights: ``(N,)`` multipliers of the *unnormalised* gradients: the aggregate is
        ``sum_i weights_i g_i`` (``= c alpha_i / ||g_i||``).
    state: ``(N,)`` sorted-coefficient momentum state to pass to the next step.
    fallback: whether the ``sum(alpha) ~ 0`` guard replaced alpha by ``1/N``.
    """

    alpha: np.ndarray
    raw: np.ndarray
    norms: np.ndarray
    weights: np.ndarray
    state: np.ndarray
    fallback: bool

    def summary(self) -> str:
        a = self.alpha
        return (
            f"AdaCons N={a.size}: alpha in [{a.min():.4g}, {a.max():.4g}] "
            f"(uniform {1 / a.size:.4g}), raw in [{self.raw.min():.4g}, {self.raw.max():.4g}]"
            + (", guard fallback to 1/N" if self.fallback else "")
        )


def adacons_coefficients(
    G: Any,
    *,
    reference: Any = None,
    state: Any = None,
    beta: float = 0.0,
    rescale: str = "mean_norm",
    guard: float = 1e-3,
    eps: float = 1e-12,
    mapping: str = "rank",
) -> AdaConsCoefficients:
    """AdaCons coefficients of a stack of worker gradients (single-process reference).

    Parameters
    ----------
    G:
        ``(N, P)`` gradients, one row per worker (finite).
    reference:
        ``(P,)`` consensus direction ``r``; default the mean gradient ``G.mean(0)``. An
        explicit reference (e.g. the previous aggregate) is treated as sign-free, see
        :func:`update_coefficients`.
    state, beta, guard, mapping:
        Subspace momentum, see :func:`update_coefficients`.
    rescale:
        ``"mean_norm"`` multiplies the aggregate by ``mean_i ||g_i||`` (so that learning
        rates tuned for averaging transfer; identical gradients give exactly the mean);
        ``"none"`` returns the paper's ``sum_i alpha_i g_i/||g_i||``.
    eps:
        Added to the norms before dividing (a zero gradient gets weight 0).

    Complexity O(N P) time, O(N) extra memory.
    """
    G = check_array(G, "G", ndim=2)
    check_choice(rescale, "rescale", RESCALES)
    eps = check_nonnegative_float(eps, "eps")
    norms = np.linalg.norm(G, axis=1)
    if reference is None:
        r = G.mean(axis=0)
    else:
        r = check_array(reference, "reference", shape=(G.shape[1],))
    raw = (G @ r) / (norms + eps)
    alpha, new_state, fallback = update_coefficients(
        raw, state, beta=beta, guard=guard, mapping=mapping, sign_free=reference is not None
    )
    c = float(norms.mean()) if rescale == "mean_norm" else 1.0
    weights = c * alpha / (norms + eps)
    return AdaConsCoefficients(alpha, raw, norms, weights, new_state, fallback)


def adacons_aggregate(G: Any, **options: Any) -> tuple[np.ndarray, AdaConsCoefficients]:
    """The AdaCons aggregate ``d = sum_i weights_i g_i`` of ``(N, P)`` gradients ``G``.

    Keyword options as in :func:`adacons_coefficients`. Returns ``(d, coefficients)`` with
    ``d`` of shape ``(P,)``. O(N P).
    """
    coef = adacons_coefficients(G, **options)
    G = np.asarray(G, dtype=np.float64)
    return coef.weights @ G, coef
