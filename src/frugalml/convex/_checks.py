"""Input checks shared by the polynomial-network solvers (SDP, decomposition, backprop).

Reference: B. Bartan and M. Pilanci, "Neural Spectrahedra and Semidefinite Lifts: Global Convex
Optimization of Polynomial Activation Neural Networks in Fully Polynomial-Time",
arXiv:2101.02429 (2021) — the data ``X`` (n, d), targets ``y`` (n,) or (n, k) and the
activation ``sigma(t) = a t^2 + b t + c`` of its two-layer networks.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .._validate import check_array
from ..errors import InvalidInputError
from .activation import Polynomial
from .losses import CLASSIFICATION_LOSSES

__all__ = ["check_activation", "check_data"]


def check_activation(activation: Any) -> Polynomial:
    """A :class:`Polynomial`, or the tuple ``(a, b, c)`` made into one; else
    :class:`~frugalml.errors.InvalidInputError`."""
    if isinstance(activation, Polynomial):
        return activation
    if isinstance(activation, (tuple, list)) and len(activation) == 3:
        return Polynomial(*activation)
    raise InvalidInputError(
        "activation must be a Polynomial (e.g. Polynomial.fit_relu()) or a tuple (a, b, c), "
        f"got {activation!r}"
    )


def check_data(X: Any, y: Any, loss: str) -> tuple[np.ndarray, np.ndarray]:
    """Finite float arrays ``X`` (n, d) and ``y`` (n,) or (n, k) with as many rows; labels in
    ``{-1, +1}`` for the classification losses. ``O(n d + n k)``."""
    X = check_array(X, "X", ndim=2)
    y = check_array(y, "y", ndim=(1, 2))
    if y.shape[0] != X.shape[0]:
        raise InvalidInputError(
            f"X and y must have the same number of rows (samples): X has {X.shape[0]}, "
            f"y has {y.shape[0]}"
        )
    if loss in CLASSIFICATION_LOSSES and not np.all((y == 1.0) | (y == -1.0)):
        bad = np.unique(y[(y != 1.0) & (y != -1.0)])[:5]
        raise InvalidInputError(
            f"the {loss} loss needs labels y in {{-1, +1}}; found other values, e.g. "
            f"{bad.tolist()} (map {{0, 1}} labels with y = 2 * y - 1)"
        )
    return X, y
