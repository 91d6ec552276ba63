"""Saddle-point problems ``min_x max_y f(x, y)``: the interface and the first-order baselines.

Choukroun, Zibulevsky & Kisilev, "Primal-Dual Sequential Subspace Optimization for
Saddle-point Problems" (arXiv 2008.09149). This module is the public path of 0.1 and
re-exports the names now defined, one concept per module, in:

* :mod:`.saddle_problem` — :class:`SaddleProblem` (partial gradients, Hessian-vector
  products, the gradient-evaluation count every method uses) and :class:`NonFiniteError`;
* :mod:`.recorder` — :class:`SaddleResult` and the :class:`Recorder` the solvers share;
* :mod:`.baselines` — :func:`gda`, :func:`extragradient`, :func:`optimistic_gda`,
  :func:`proximal_point`, :func:`admm_equality_ls`.
"""

from __future__ import annotations

from ..progress import Progress as Progress  # (importable from here, as in 0.1)
from .baselines import admm_equality_ls, extragradient, gda, optimistic_gda, proximal_point
from .recorder import Callback as Callback
from .recorder import Recorder as Recorder
from .recorder import SaddleResult
from .saddle_problem import NonFiniteError, SaddleProblem

__all__ = [
    "NonFiniteError",
    "SaddleProblem",
    "SaddleResult",
    "admm_equality_ls",
    "extragradient",
    "gda",
    "optimistic_gda",
    "proximal_point",
]
