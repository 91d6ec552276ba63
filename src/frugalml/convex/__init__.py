"""Convex (global) training of neural networks.

Polynomial-activation two-layer networks by semidefinite lifts — B. Bartan and M. Pilanci,
"Neural Spectrahedra and Semidefinite Lifts: Global Convex Optimization of Polynomial Activation
Neural Networks in Fully Polynomial-Time", arXiv:2101.02429 (2021):

* :class:`Polynomial` — the activation ``sigma(t) = a t^2 + b t + c`` and its presets;
* :func:`solve_poly_sdp` / :func:`solve_poly_conv_sdp` — the lifted SDP (CVXPY with Clarabel or
  SCS, the ``convex`` extra), returning a :class:`PolySDPSolution`;
* :func:`decompose` — the Sturm–Zhang neural decomposition into a :class:`PolyNetwork` with the
  same objective;
* :func:`first_order_sdp` — a first-order (FISTA + augmented Lagrangian) solver of the same SDP
  in torch, for larger ``d``.

Quantized (binary-weight) networks — B. Bartan and M. Pilanci, "Training Quantized Neural
Networks to Global Optimality via Semidefinite Programming", ICML 2021 (arXiv:2105.01420):
:func:`solve_quantized_sdp` (the SDP relaxation, a lower bound), :func:`round_quantized`
(rounding with a certified gap) into a :class:`QuantizedNetwork`, :func:`exhaustive_quantized`
(the exact optimum for small ``d``) and the :func:`sign_backprop` baseline.

scikit-learn-style estimators (:mod:`.estimators`): :class:`PolySDPRegressor`,
:class:`PolySDPClassifier`, :class:`QuantizedSDPRegressor`, :class:`QuantizedSDPClassifier`.

Importing this package is light: CVXPY, torch (and SciPy) are imported only when used.
"""

import importlib
from typing import Any

from .activation import Polynomial
from .decompose import PolyNetwork, decompose, rank_one_decomposition
from .estimators import (
    PolySDPClassifier,
    PolySDPRegressor,
    QuantizedSDPClassifier,
    QuantizedSDPRegressor,
)
from .poly_sdp import (
    CLASSIFICATION_LOSSES,
    LOSSES,
    SOLVERS,
    PolySDPSolution,
    SolverFailedError,
    solve_poly_conv_sdp,
    solve_poly_sdp,
)

# Loaded on first access (PEP 562): both modules import ``frugalml.runtime`` (and with it SciPy)
# at import time, which would make ``import frugalml.convex`` heavy.
_LAZY = {
    "FirstOrderResult": "first_order",
    "first_order_sdp": "first_order",
    "QuantizedNetwork": "quantized",
    "QuantizedSDPSolution": "quantized",
    "SignBackpropResult": "quantized",
    "exhaustive_quantized": "quantized",
    "refit_output_weights": "quantized",
    "round_quantized": "quantized",
    "sign_backprop": "quantized",
    "solve_quantized_sdp": "quantized",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


__all__ = [
    "CLASSIFICATION_LOSSES",
    "LOSSES",
    "SOLVERS",
    "FirstOrderResult",
    "PolyNetwork",
    "PolySDPClassifier",
    "PolySDPRegressor",
    "PolySDPSolution",
    "Polynomial",
    "QuantizedNetwork",
    "QuantizedSDPClassifier",
    "QuantizedSDPRegressor",
    "QuantizedSDPSolution",
    "SignBackpropResult",
    "SolverFailedError",
    "decompose",
    "exhaustive_quantized",
    "first_order_sdp",
    "rank_one_decomposition",
    "refit_output_weights",
    "round_quantized",
    "sign_backprop",
    "solve_poly_conv_sdp",
    "solve_poly_sdp",
    "solve_quantized_sdp",
]
