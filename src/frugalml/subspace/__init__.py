"""Subspace methods: saddle-point SESOP and subspace gradient aggregation.

* Saddle points (this module's exports): primal-dual sequential subspace optimisation,
  Choukroun, Zibulevsky & Kisilev, "Primal-Dual Sequential Subspace Optimization for
  Saddle-point Problems" (arXiv 2008.09149), with its minimisation ancestor SESOP (Narkiss &
  Zibulevsky 2005), the first-order baselines (GDA, extragradient, optimistic GDA, proximal
  point, ADMM) and test problems (bilinear and quadratic games, an equality-constrained least
  squares problem via its augmented Lagrangian, a mixture-of-Gaussians GAN).
* Gradient aggregation in subspaces for data-parallel training: Choukroun, Azoulay & Kisilev
  (arXiv 2411.03742), in the torch-only modules ``frugalml.subspace.aggregation*`` (import them
  explicitly; they are not imported here so that ``import frugalml.subspace`` stays NumPy-only).
"""

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

__all__ = [
    "DIRECTIONS",
    "INNER_SOLVERS",
    "GANProblem",
    "NonFiniteError",
    "SaddleProblem",
    "SaddleResult",
    "SesopResult",
    "adam_gda",
    "admm_equality_ls",
    "bilinear_game",
    "constrained_least_squares",
    "extragradient",
    "gda",
    "mixture_gan",
    "mode_metrics",
    "optimistic_gda",
    "pd_sesop",
    "proximal_point",
    "quadratic_game",
    "sesop_minimize",
]
