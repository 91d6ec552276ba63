"""The training losses of the polynomial-activation networks, in NumPy, CVXPY and torch.

Reference: B. Bartan and M. Pilanci, "Neural Spectrahedra and Semidefinite Lifts: Global Convex
Optimization of Polynomial Activation Neural Networks in Fully Polynomial-Time",
arXiv:2101.02429 (2021).

Losses are sums over samples and outputs (not means): ``"squared"`` ``1/2 ||y_hat - y||^2``,
``"absolute"`` ``||y_hat - y||_1``, ``"huber"`` ``sum h(y_hat - y)`` with ``h(r) = r^2/2`` for
``|r| <= delta`` and ``delta (|r| - delta/2)`` beyond, and for labels ``y in {-1, +1}``
``"logistic"`` ``sum log(1 + exp(-y y_hat))`` and ``"hinge"`` ``sum max(0, 1 - y y_hat)``.
The three implementations (:func:`loss_value`, :func:`cvx_loss`, :func:`torch_loss`) use the
same definitions, so the lifted SDP, the decomposed network and the backpropagation baseline
measure one objective. Each costs ``O(size of y)``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..errors import InvalidInputError

__all__ = ["CLASSIFICATION_LOSSES", "LOSSES", "cvx_loss", "loss_value", "torch_loss"]

LOSSES = ("squared", "absolute", "huber", "logistic", "hinge")
#: the losses that need labels in ``{-1, +1}``
CLASSIFICATION_LOSSES = ("logistic", "hinge")


def loss_value(yhat: np.ndarray, y: np.ndarray, loss: str, huber_delta: float = 1.0) -> float:
    """The loss (a sum over all entries) in NumPy, the same definitions as the SDP uses."""
    if loss == "squared":
        return float(0.5 * np.sum((yhat - y) ** 2))
    if loss == "absolute":
        return float(np.sum(np.abs(yhat - y)))
    if loss == "huber":
        r = np.abs(yhat - y)
        return float(
            np.sum(np.where(r <= huber_delta, 0.5 * r**2, huber_delta * (r - 0.5 * huber_delta)))
        )
    if loss == "logistic":
        return float(np.sum(np.logaddexp(0.0, -y * yhat)))
    if loss == "hinge":
        return float(np.sum(np.maximum(0.0, 1.0 - y * yhat)))
    raise InvalidInputError(f"unknown loss {loss!r}; choose one of {', '.join(LOSSES)}")


def cvx_loss(cp: Any, yhat: Any, y: np.ndarray, loss: str, huber_delta: float) -> Any:
    """The CVXPY expression of :func:`loss_value` (``cp`` the cvxpy module, ``yhat`` an affine
    expression, ``y`` (n,))."""
    if loss == "squared":
        return 0.5 * cp.sum_squares(yhat - y)
    if loss == "absolute":
        return cp.norm1(yhat - y)
    if loss == "huber":
        return 0.5 * cp.sum(cp.huber(yhat - y, huber_delta))
    if loss == "logistic":
        return cp.sum(cp.logistic(-cp.multiply(y, yhat)))
    return cp.sum(cp.pos(1.0 - cp.multiply(y, yhat)))


def torch_loss(torch: Any, name: str, f: Any, y: Any, delta: float) -> Any:
    """The summed loss in torch (``torch`` the module, ``f`` and ``y`` tensors of one shape),
    with :func:`loss_value`'s definitions."""
    if name == "squared":
        r = f - y
        return 0.5 * (r * r).sum()
    if name == "absolute":
        return (f - y).abs().sum()
    if name == "huber":
        r = (f - y).abs()
        return torch.where(r <= delta, 0.5 * r * r, delta * (r - 0.5 * delta)).sum()
    if name == "logistic":
        return torch.nn.functional.softplus(-y * f).sum()
    return torch.relu(1.0 - y * f).sum()  # hinge
