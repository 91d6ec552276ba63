"""Quantized (sign-weight) two-layer networks and the convex refit of their output weights.

Paper: Bartan & Pilanci, "Training Quantized Neural Networks to Global Optimality via
Semidefinite Programming" (ICML 2021, arXiv 2105.01420).

A :class:`QuantizedNetwork` is ``f(x) = sum_j alpha_j sigma(x^T u_j)`` with ``U`` in
``{-1, +1}``; :func:`refit_output_weights` finds the best ``alpha`` for fixed neurons (a lasso-type
convex program), which the rounding, the enumeration and the baseline all end with.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from ..._results import ResultRepr
from ..._validate import check_array, check_nonnegative_float
from ...errors import InvalidInputError
from ..activation import Polynomial
from .problem import (
    check_quantized_data,
    check_quantized_problem,
    import_cvxpy,
    quantized_cvx_loss,
    quantized_loss,
    solve_program,
)

__all__ = ["QuantizedNetwork", "refit_output_weights", "unique_neurons"]


@dataclass(frozen=True, repr=False)
class QuantizedNetwork(ResultRepr):
    """``f(x) = sum_j alpha_j sigma(x^T u_j)``: ``U`` ``(d, m)`` in ``{-1, +1}``, ``alpha``
    ``(m,)``, with the ``loss`` and ``beta`` of the problem it was fitted to.

    From :func:`round_quantized`: ``lower_bound`` (the SDP bound), ``train_objective`` (the
    objective on the training data) and :attr:`certified_gap`; ``n_candidates``: distinct
    neurons the refit chose from; ``seconds``: rounding time.
    """

    U: np.ndarray
    alpha: np.ndarray
    activation: Polynomial
    loss: str
    beta: float
    lower_bound: float | None = None
    train_objective: float | None = None
    n_candidates: int | None = None
    seconds: float | None = None

    @property
    def width(self) -> int:
        return int(self.alpha.shape[0])

    @property
    def certified_gap(self) -> float | None:
        """``(train_objective - lower_bound) / train_objective``: the rounded network is within
        this relative distance of the global optimum (>= 0 up to solver tolerance)."""
        if self.lower_bound is None or self.train_objective is None:
            return None
        if self.train_objective <= 0.0:
            return 0.0
        return (self.train_objective - self.lower_bound) / self.train_objective

    def hidden(self, X: Any) -> np.ndarray:
        """``sigma(X U)``: ``(n, m)``. Cost ``O(n d m)``."""
        Xa = check_array(X, "X", ndim=2, shape=(None, self.U.shape[0]))
        return self.activation(Xa @ self.U)

    def predict(self, X: Any) -> np.ndarray:
        """``f(X)``: ``(n,)``."""
        return self.hidden(X) @ self.alpha

    def objective(self, X: Any, y: Any) -> float:
        """``loss(f(X), y) + beta ||alpha||_1``."""
        Xa, ya = check_quantized_data(X, y, self.loss)
        return quantized_loss(self.loss, self.predict(Xa), ya) + self.beta * float(
            np.abs(self.alpha).sum()
        )

    def summary(self) -> str:
        s = (
            f"quantized network: width {self.width}, d={self.U.shape[0]}, "
            f"{self.activation.summary()}, {self.loss} loss, beta={self.beta:g}"
        )
        if self.train_objective is not None:
            s += f", objective {self.train_objective:.8g}"
        if self.lower_bound is not None:
            s += f", SDP bound {self.lower_bound:.8g}, certified gap {self.certified_gap:.3%}"
        if self.n_candidates is not None:
            s += f", {self.n_candidates} candidate neurons"
        if self.seconds is not None:
            s += f", {self.seconds:.2f}s"
        return s


def unique_neurons(U: np.ndarray, even: bool) -> np.ndarray:
    """Distinct columns of ``U`` ``(d, m)``; for an even activation ``u`` and ``-u`` are the
    same neuron and are merged (canonical sign: first entry +1)."""
    if U.shape[1] == 0:
        return U
    if even:
        U = U * np.where(U[0] < 0, -1.0, 1.0)[None, :]
    return np.unique(U, axis=1)


def refit_output_weights(
    X: Any,
    y: Any,
    U: Any,
    *,
    activation: Any = None,
    a: float | None = None,
    b: float | None = None,
    c: float | None = None,
    beta: float,
    loss: str = "squared",
    solver: str = "clarabel",
    solver_options: dict[str, Any] | None = None,
    prune_tol: float = 1e-7,
) -> QuantizedNetwork:
    """The best output weights for fixed neurons: ``alpha = argmin loss(H alpha, y) +
    beta ||alpha||_1`` with ``H = sigma(X U)`` ``(n, m)`` (a convex program, solved by CVXPY).

    ``U``: ``(d, m)`` with entries in ``{-1, +1}``. Neurons whose output contribution
    ``|alpha_j| ||H_j||`` is at most ``prune_tol max(max_k |alpha_k| ||H_k||, ||y||)`` are
    dropped: interior-point solvers leave such crumbs instead of zeros, and removing them at the
    optimum changes the objective only to second order (the returned ``train_objective`` is
    evaluated after pruning). The result may have width 0 (``alpha = 0`` is optimal for large
    ``beta``).
    Returns the network with ``train_objective`` set. Cost: one conic solve with ``m`` weights.
    """
    Xa, ya, act, beta, loss, solver = check_quantized_problem(
        X, y, activation=activation, a=a, b=b, c=c, beta=beta, loss=loss, solver=solver
    )
    prune_tol = check_nonnegative_float(prune_tol, "prune_tol")
    Ua = check_array(U, "U", ndim=2, shape=(Xa.shape[1], None), min_size=0)
    if not np.all(np.isin(Ua, (-1.0, 1.0))):
        raise InvalidInputError("U must have entries in {-1, +1}")
    if Ua.shape[1] == 0:
        alpha = np.zeros(0)
    else:
        cp = import_cvxpy()
        H = act(Xa @ Ua)
        al = cp.Variable(Ua.shape[1])
        prob = cp.Problem(
            cp.Minimize(quantized_cvx_loss(cp, loss, H @ al, ya) + beta * cp.norm1(al)),
        )
        solve_program(prob, cp, solver, solver_options, loss)
        alpha = np.asarray(al.value, dtype=np.float64)
        contrib = np.abs(alpha) * np.linalg.norm(H, axis=0)
        keep = contrib > prune_tol * max(contrib.max(), float(np.linalg.norm(ya)))
        Ua, alpha = Ua[:, keep], alpha[keep]
    net = QuantizedNetwork(U=Ua, alpha=alpha, activation=act, loss=loss, beta=beta)
    return replace(net, train_objective=net.objective(Xa, ya))
