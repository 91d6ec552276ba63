"""Subspace methods: saddle-point SESOP and subspace gradient aggregation.

* Saddle points (this module's exports): primal-dual sequential subspace optimisation,
  Choukroun, Zibulevsky & Kisilev, "Primal-Dual Sequential Subspace Optimization for
  Saddle-point Problems" (arXiv 2008.09149), with its minimisation ancestor SESOP (Narkiss &
  Zibulevsky 2005), the first-order baselines (GDA, extragradient, optimistic GDA, proximal
  point, ADMM) and test problems (bilinear and quadratic games, an equality-constrained least
  squares problem via its augmented Lagrangian, a mixture-of-Gaussians GAN).
* Gradient aggregation in subspaces for data-parallel training: Choukroun, Azoulay & Kisilev
  (arXiv 2411.03742): the AdaCons formula on a stack of gradients (``adacons_coefficients``,
  ``adacons_aggregate``; NumPy), ``AdaConsAggregator`` and ``adacons_hook`` (a DDP
  communication hook), the AdaSum baseline and the training tasks. The torch parts are
  exported lazily, as in ``quant``, ``ecc`` and ``remat``: ``import frugalml.subspace`` stays
  NumPy-only and those names import torch on first use (extra ``subspace``).

Modules, one concept each: ``saddle_problem`` (the problem interface), ``recorder`` (result
and run bookkeeping), ``baselines`` (first-order methods), ``directions`` (subspace
directions), ``pd_sesop``, ``sesop``, ``problems`` (test games), ``gan`` (the GAN problem),
``adacons`` (the formula), ``aggregation`` (the DDP aggregator), ``adasum``, ``launcher``
(worker processes), ``workloads`` (training tasks), ``runs`` (run config and result),
``training`` (the training drivers). ``saddle`` and ``tasks`` are the 0.1 paths and re-export.
"""

from .._optional import lazy_exports
from .adacons import AdaConsCoefficients, adacons_aggregate, adacons_coefficients
from .baselines import admm_equality_ls, extragradient, gda, optimistic_gda, proximal_point
from .directions import DIRECTIONS
from .gan import GANProblem, adam_gda, mixture_gan, mode_metrics
from .pd_sesop import INNER_SOLVERS, pd_sesop
from .problems import bilinear_game, constrained_least_squares, quadratic_game
from .recorder import SaddleResult
from .saddle_problem import NonFiniteError, SaddleProblem
from .sesop import SesopResult, sesop_minimize

#: torch-backed names, imported on first access
_LAZY = {
    "AdaConsAggregator": "aggregation",
    "AdaConsStep": "aggregation",
    "adacons_hook": "aggregation",
    "check_same_parameters": "aggregation",
    "AdaSumState": "adasum",
    "adasum_hook": "adasum",
    "adasum_reduce": "adasum",
    "RunConfig": "runs",
    "TrainResult": "runs",
    "make_task": "workloads",
    "train": "training",
    "train_many": "training",
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
