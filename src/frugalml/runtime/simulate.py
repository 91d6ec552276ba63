"""Latency of first-k versus all-n under a straggler model (Monte-Carlo and exact).

Pure computation behind ``frugalml runtime simulate``: for each k, the expected time until k
of n i.i.d. tasks have finished, exactly (``StragglerModel.expected_order_statistic``) and by
Monte-Carlo over ``trials`` draws, with its standard error. Cost O(trials * n log n).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from .._resources import check_memory
from .._results import ResultRepr
from .._validate import RngLike, check_int, check_rng
from ..errors import InvalidInputError
from ..progress import Progress
from .stragglers import StragglerModel

__all__ = ["FirstKRow", "simulate_first_k"]


@dataclass(frozen=True, repr=False)
class FirstKRow(ResultRepr):
    """Latency of the first k of n tasks: ``exact`` E[T_(k:n)] (None where infinite), the
    Monte-Carlo mean and its standard error, and ``vs_all`` = E[T_(n:n)] / E[T_(k:n)] (by
    Monte-Carlo)."""

    k: int
    exact: float | None  # E[T_(k:n)], None where infinite
    mc_mean: float
    mc_stderr: float
    vs_all: float  # E[T_(n:n)] / E[T_(k:n)] by Monte-Carlo

    def summary(self) -> str:
        exact = "inf" if self.exact is None else f"{self.exact:.4g}"
        return (
            f"first k={self.k}: E[T] = {exact} exact, {self.mc_mean:.4g} +- "
            f"{self.mc_stderr:.2g} Monte-Carlo; waiting for all is {self.vs_all:.3g}x slower"
        )


def simulate_first_k(
    model: StragglerModel,
    n: int,
    ks: Sequence[int],
    *,
    trials: int = 2000,
    rng: RngLike = None,
    progress: Progress | None = None,
) -> list[FirstKRow]:
    """Expected latency of the first k of n tasks for each k in ``ks``.

    Memory: the (trials, n) draws, twice (sampling and sorting), checked up front.
    ``progress(message, fraction)`` is called as the k values are done (the exact
    expectations need a quadrature per k for models without a closed form).
    """
    if not isinstance(model, StragglerModel):
        raise InvalidInputError(f"model must be a StragglerModel, got {type(model).__name__}")
    n = check_int(n, "n", low=1)
    trials = check_int(trials, "trials", low=2)
    ks = [check_int(k, "k", low=1) for k in ks]
    if not ks:
        raise InvalidInputError("give at least one k")
    for k in ks:
        if k > n:
            raise InvalidInputError(f"k={k} exceeds n={n}; need 1 <= k <= n")
    check_memory(
        2 * 8.0 * n * trials,
        f"{trials} Monte-Carlo trials of n={n} tasks",
        fix="lower the trials (--trials) or n (--n)",
    )
    gen = check_rng(rng)
    draws = np.sort(model.sample(n * trials, gen).reshape(trials, n), axis=1)
    all_n = draws[:, n - 1].mean()
    rows = []
    for i, k in enumerate(ks):
        if progress is not None and i % max(1, len(ks) // 100) == 0:
            progress(f"k = {k}", i / len(ks))
        col = draws[:, k - 1]
        try:
            exact: float | None = model.expected_order_statistic(k, n)
        except InvalidInputError:
            exact = None
        rows.append(
            FirstKRow(
                k=k,
                exact=exact,
                mc_mean=float(col.mean()),
                mc_stderr=float(col.std(ddof=1) / np.sqrt(trials)),
                vs_all=float(all_n / col.mean()),
            )
        )
    if progress is not None:
        progress("done", 1.0)
    return rows
