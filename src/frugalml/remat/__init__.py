"""Memory-budgeted rematerialisation of computation graphs.

Paper: Bartan, Li, Teague, Lott, Dilkina, "Moccasin: Efficient Tensor Rematerialization for
Neural Networks" (ICML 2023, arXiv 2304.14463); baseline: Jain et al., "Checkmate: Breaking the
Memory Wall with Optimal Tensor Rematerialization" (MLSys 2020).

Training under a memory budget: ``rematerialize(model, example_inputs, budget=...)``. The
PyTorch front end (``rematerialize``, ``extract_graph``, ``execute_schedule``,
``measure_graph``, ``partitioner_schedule``, ``allocator_peak``, the model builders) is
exported lazily: ``frugalml.remat`` imports without torch, and those names import it on first
use (extra ``remat``).
"""

from .._optional import lazy_exports
from .api import SOLVERS, solve
from .baselines import chain_checkpointing, checkpoint_schedule, no_remat
from .checkmate import checkmate_lp_rounding, checkmate_milp
from .coarsen import Coarsening, coarsen_chains, refine
from .evaluate import ScheduleReport, evaluate_schedule, topological_schedule
from .formats import load_graph, save_graph
from .generate import random_layered_graph
from .graph import RematGraph
from .greedy import (
    best_greedy_schedule,
    cascading_schedule,
    greedy,
    greedy_schedule,
    repair_schedule,
)
from .moccasin import MoccasinSolver, moccasin
from .solution import RematSolution, SolutionCallback, plain_peak, resolve_budget
from .sweep import budget_sweep, lowest_schedulable_budget, min_feasible_budget

#: torch-backed names, imported on first access
_LAZY = {
    "extract_graph": "torch_graph",
    "TorchRematGraph": "torch_graph",
    "execute_schedule": "execute",
    "ExecutionResult": "execute",
    "measure_graph": "torch_measure",
    "partitioner_schedule": "torch_partitioner",
    "GraphMeasurement": "torch_measure",
    "PartitionerResult": "torch_partitioner",
    "mlp": "models",
    "resnet_cnn": "models",
    "transformer_encoder": "models",
    "rematerialize": "training",
    "remat_plans": "training",
    "RematPlan": "training",
    "RematBackend": "training",
    "allocator_peak": "torch_memory",
}

__all__ = [
    "SOLVERS",
    "Coarsening",
    "ExecutionResult",
    "GraphMeasurement",
    "MoccasinSolver",
    "PartitionerResult",
    "RematBackend",
    "RematGraph",
    "RematPlan",
    "RematSolution",
    "ScheduleReport",
    "SolutionCallback",
    "TorchRematGraph",
    "allocator_peak",
    "best_greedy_schedule",
    "budget_sweep",
    "cascading_schedule",
    "chain_checkpointing",
    "checkmate_lp_rounding",
    "checkmate_milp",
    "checkpoint_schedule",
    "coarsen_chains",
    "evaluate_schedule",
    "execute_schedule",
    "extract_graph",
    "greedy",
    "greedy_schedule",
    "load_graph",
    "lowest_schedulable_budget",
    "measure_graph",
    "min_feasible_budget",
    "mlp",
    "moccasin",
    "no_remat",
    "partitioner_schedule",
    "plain_peak",
    "random_layered_graph",
    "refine",
    "remat_plans",
    "rematerialize",
    "repair_schedule",
    "resnet_cnn",
    "resolve_budget",
    "save_graph",
    "solve",
    "topological_schedule",
    "transformer_encoder",
]


__getattr__ = lazy_exports(__name__, _LAZY)
