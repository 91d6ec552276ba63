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

scikit-learn estimators (:mod:`.estimators`): :class:`PolySDPRegressor`,
:class:`PolySDPClassifier`, :class:`QuantizedSDPRegressor`, :class:`QuantizedSDPClassifier`.

Modules: :mod:`.activation`, :mod:`.losses`, :mod:`.lift` (moments, features, size limits),
:mod:`.poly_sdp`, :mod:`.first_order` / :mod:`.conditional_gradient`, :mod:`.decompose`,
:mod:`.backprop`, :mod:`.quantized` (a package) and :mod:`.estimators`; :mod:`.gan` holds the
convex Wasserstein GANs.

Importing this package is light: CVXPY, torch and scikit-learn (and SciPy) are imported only
when used (the estimators are exported lazily: importing them imports scikit-learn).
"""

from .._optional import lazy_exports
from ..errors import SolverFailedError
from .activation import Polynomial
from .backprop import BackpropResult, train_poly_backprop
from .decompose import PolyNetwork, decompose, rank_one_decomposition
from .first_order import FirstOrderResult, first_order_sdp
from .poly_sdp import (
    CLASSIFICATION_LOSSES,
    LOSSES,
    SOLVERS,
    PolySDPSolution,
    solve_poly_conv_sdp,
    solve_poly_sdp,
)
from .quantized import (
    QuantizedNetwork,
    QuantizedSDPSolution,
    SignBackpropResult,
    exhaustive_quantized,
    refit_output_weights,
    round_quantized,
    sign_backprop,
    solve_quantized_sdp,
)

#: the scikit-learn estimators, imported on first use (importing them imports scikit-learn)
_LAZY = {
    "PolySDPClassifier": "estimators",
    "PolySDPRegressor": "estimators",
    "QuantizedSDPClassifier": "estimators",
    "QuantizedSDPRegressor": "estimators",
}

__all__ = [
    "CLASSIFICATION_LOSSES",
    "LOSSES",
    "SOLVERS",
    "BackpropResult",
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
    "train_poly_backprop",
]


__getattr__ = lazy_exports(__name__, _LAZY)
