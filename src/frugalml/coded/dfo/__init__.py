"""Straggler-resilient derivative-free optimisation with coded search directions.

Bartan & Pilanci, "Distributed Black-Box Optimization via Error Correcting Codes"
(arXiv 1907.05984): evolution strategies whose N workers evaluate finite differences along
coded directions w_j = sum_i G_ji v_i, so that the directional derivatives along the K
directions v_i are decoded from any decodable set of non-stragglers. Baselines: plain ES/NES
waiting for all, ES dropping stragglers, structured (orthogonal) exploration (Choromanski et
al. 2018, arXiv 1804.02395). Black-box l_inf attacks on small CNNs (NES-PGD style, Ilyas et al.
2018, arXiv 1804.08598) live in :mod:`frugalml.coded.dfo.attack` (needs torch; imported lazily).

Modules: :mod:`.coded_es` (the optimiser), :mod:`.baselines`, :mod:`.results`,
:mod:`.estimator` (coded directions and their decoding), :mod:`.differences` (a worker's
finite difference), :mod:`.directions`, :mod:`.functions` (test functions); :mod:`.es` keeps
the 0.1 import path of the optimiser, baselines and results.
"""

from .baselines import DropStragglersES, StructuredES, WaitAllES
from .coded_es import CodedES, DivergedError, DivergenceWarning
from .differences import evaluate_differences, finite_difference
from .directions import DIRECTIONS, sample_directions
from .estimator import CODES, CodedDirections, GradientEstimate, estimate_gradient
from .functions import LogisticLoss, Quadratic, Rosenbrock, TestFunction
from .results import ESResult, StepInfo

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
