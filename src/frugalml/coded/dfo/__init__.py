"""Straggler-resilient derivative-free optimisation with coded search directions.

Bartan & Pilanci, "Distributed Black-Box Optimization via Error Correcting Codes"
(arXiv 1907.05984): evolution strategies whose N workers evaluate finite differences along
coded directions w_j = sum_i G_ji v_i, so that the directional derivatives along the K
directions v_i are decoded from any decodable set of non-stragglers. Baselines: plain ES/NES
waiting for all, ES dropping stragglers, structured (orthogonal) exploration (Choromanski et
al. 2018, arXiv 1804.02395). Black-box l_inf attacks on small CNNs (NES-PGD style, Ilyas et al.
2018, arXiv 1804.08598) live in :mod:`frugalml.coded.dfo.attack` (needs torch; imported lazily).
"""

from .directions import DIRECTIONS, sample_directions
from .es import (
    CodedES,
    DivergedError,
    DivergenceWarning,
    DropStragglersES,
    ESResult,
    StepInfo,
    StructuredES,
    WaitAllES,
)
from .estimator import (
    CODES,
    CodedDirections,
    GradientEstimate,
    estimate_gradient,
    evaluate_differences,
    finite_difference,
)
from .functions import LogisticLoss, Quadratic, Rosenbrock, TestFunction

__all__ = [
    "CODES",
    "DIRECTIONS",
    "CodedDirections",
    "CodedES",
    "DivergedError",
    "DivergenceWarning",
    "DropStragglersES",
    "ESResult",
    "GradientEstimate",
    "LogisticLoss",
    "Quadratic",
    "Rosenbrock",
    "StepInfo",
    "StructuredES",
    "TestFunction",
    "WaitAllES",
    "estimate_gradient",
    "evaluate_differences",
    "finite_difference",
    "sample_directions",
]
