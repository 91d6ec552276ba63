"""Subspace methods: saddle-point SESOP and subspace gradient aggregation.

* Saddle points (this module's exports): primal-dual sequential subspace optimisation,
  Choukroun, Zibulevsky & Kisilev, "Primal-Dual Sequential Subspace Optimization for
  Saddle-point Problems" (arXiv 2008.09149), with its minimisation ancestor SESOP (Narkiss &
  Zibulevsky 2005), the first-order baselines (GDA, extragradient, optimistic GDA, proximal
  point, ADMM) and test problems (bilinear and quadratic games, an equality-constrained least
  squares problem via its augmented Lagrangian, a mixture-of-Gaussians GAN).
* Gradient aggregation in subspaces for data-parallel training: Choukroun, Azoulay & Kisilev
  (arXiv 2411.03742): ``AdaConsAggregator``, ``adacons_hook`` (a DDP communication hook),
  the AdaSum baseline and the training tasks. They need torch and are exported lazily, as in
  ``quant``, ``ecc`` and ``remat``: ``import frugalml.subspace`` stays NumPy-only and the names
  import torch on first use (extra ``subspace``).
"""

from .._optional import lazy_exports
from .pd_sesop import DIRECTIONS, INNER_SOLVERS, pd_sesop
from .problems import (
    GANProblem,
    adam_gda,
    bilinear_game,
    constrained_least_squares,
    mixture_gan,
    mode_metrics,
    quadratic_game,
)
from .saddle import (
    NonFiniteError,
    SaddleProblem,
    SaddleResult,
    admm_equality_ls,
    extragradient,
    gda,
    optimistic_gda,
    proximal_point,
)
from .sesop import SesopResult, sesop_minimize

#: torch-backed names, imported on first access
_LAZY = {
    "AdaConsAggregator": "aggregation",
    "AdaConsCoefficients": "aggregation",
    "AdaConsStep": "aggregation",
    "adacons_aggregate": "aggregation",
    "adacons_coefficients": "aggregation",
    "adacons_hook": "aggregation",
    "check_same_parameters": "aggregation",
    "AdaSumState": "adasum",
    "adasum_hook": "adasum",
    "adasum_reduce": "adasum",
    "RunConfig": "tasks",
    "TrainResult": "tasks",
    "make_task": "tasks",
    "train": "tasks",
    "train_many": "tasks",
}

__all__ = [
    "DIRECTIONS",
    "INNER_SOLVERS",
    "AdaConsAggregator",
    "AdaConsCoefficients",
    "AdaConsStep",
    "AdaSumState",
    "GANProblem",
    "NonFiniteError",
    "RunConfig",
    "SaddleProblem",
    "SaddleResult",
    "SesopResult",
    "TrainResult",
    "adacons_aggregate",
    "adacons_coefficients",
    "adacons_hook",
    "adam_gda",
    "adasum_hook",
    "adasum_reduce",
    "admm_equality_ls",
    "bilinear_game",
    "check_same_parameters",
    "constrained_least_squares",
    "extragradient",
    "gda",
    "make_task",
    "mixture_gan",
    "mode_metrics",
    "optimistic_gda",
    "pd_sesop",
    "proximal_point",
    "quadratic_game",
    "sesop_minimize",
    "train",
    "train_many",
]


__getattr__ = lazy_exports(__name__, _LAZY)
