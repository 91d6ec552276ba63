"""Convex (global) training of neural networks.

Polynomial-activation two-layer networks by semidefinite lifts — B. Bartan and M. Pilanci,
"Neural Spectrahedra and Semidefinite Lifts: Global Convex Optimization of Polynomial Activation
Neural Networks in Fully Polynomial-Time", arXiv:2101.02429 (2021):

* :class:`Polynomial` — the activation ``sigma(t) = a t^2 + b t + c`` and its presets;
* :func:`solve_poly_sdp` / :func:`solve_poly_conv_sdp` — the lifted SDP (CVXPY with Clarabel or
  SCS, the ``convex`` extra), returning a :class:`PolySDPSolution`;
* :func:`decompose` — the Sturm–Zhang neural decomposition into a :class:`PolyNetwork` with the
  same objective.

Importing this package is light: CVXPY and torch are imported only when used.
"""

from .activation import Polynomial
from .decompose import PolyNetwork, decompose, rank_one_decomposition
from .poly_sdp import (
    CLASSIFICATION_LOSSES,
    LOSSES,
    SOLVERS,
    PolySDPSolution,
    SolverFailedError,
    solve_poly_conv_sdp,
    solve_poly_sdp,
)

__all__ = [
    "CLASSIFICATION_LOSSES",
    "LOSSES",
    "SOLVERS",
    "PolyNetwork",
    "PolySDPSolution",
    "Polynomial",
    "SolverFailedError",
    "decompose",
    "rank_one_decomposition",
    "solve_poly_conv_sdp",
    "solve_poly_sdp",
]
