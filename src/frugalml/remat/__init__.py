"""Memory-budgeted rematerialisation of computation graphs.

Paper: Bartan, Li, Teague, Lott, Dilkina, "Moccasin: Efficient Tensor Rematerialization for
Neural Networks" (ICML 2023, arXiv 2304.14463); baseline: Jain et al., "Checkmate: Breaking the
Memory Wall with Optimal Tensor Rematerialization" (MLSys 2020).
"""

from .api import SOLVERS, solve
from .evaluate import ScheduleReport, evaluate_schedule, topological_schedule
from .formats import load_graph, save_graph
from .graph import RematGraph
from .solution import RematSolution, plain_peak, resolve_budget

__all__ = [
    "SOLVERS",
    "RematGraph",
    "RematSolution",
    "ScheduleReport",
    "evaluate_schedule",
    "load_graph",
    "plain_peak",
    "resolve_budget",
    "save_graph",
    "solve",
    "topological_schedule",
]
