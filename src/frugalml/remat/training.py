"""Train a PyTorch model under a memory budget: one call in an ordinary training loop.

::

    model = frugalml.remat.rematerialize(model, example_inputs, budget=0.5)
    for x, y in loader:                      # unchanged loop
        loss = loss_fn(model(x), y)
        loss.backward()
        opt.step(); opt.zero_grad()

:func:`rematerialize` compiles the model's ``forward`` in place (an instance attribute) with a
``torch.compile`` backend (:class:`RematBackend`): TorchDynamo captures the forward as one
graph, AOTAutograd traces the joint forward + backward, and our partitioner
(:meth:`RematBackend.partition`) builds the faithful memory model of the step
(:mod:`~frugalml.remat.joint_graph`), solves it with MOCCASIN within the budget, and generates
the forward and backward FX modules that run the schedule
(:mod:`~frugalml.remat.joint_codegen`). The generated code calls the eager ATen kernels in a
straight line, so at the plain order (a budget at or above the plain peak) a step costs what
``torch.compile`` without a compiler costs. What AOTAutograd guarantees stays true:
``loss.backward()`` and the optimizer work unchanged, the parameters are the model's own,
buffer mutations (BatchNorm's running statistics) are applied as in eager, and a new input
shape (the last, smaller batch) or a train/eval switch is re-traced, re-solved and cached by
Dynamo's guards (each plan is kept in :func:`remat_plans`). Random ops that the schedule
recomputes replay their first draw's generator state.

Budgets: a fraction in ``(0, 1]`` of the modelled plain peak or bytes (``> 1``), counting
what the step allocates (activations, saved tensors, gradients, outputs, each op's scratch
memory), not the parameters, buffers and inputs resident before it, nor the loss computed
outside the model, nor the 5 KB generator state kept per recomputed random op. Below the
minimum feasible budget the first call raises :class:`~frugalml.errors.InfeasibleError` with
the minimum.

Paper: Bartan, Li, Teague, Lott, Dilkina, "Moccasin: Efficient Tensor Rematerialization for
Neural Networks" (ICML 2023, arXiv 2304.14463); the compiler stack is PyTorch 2's (Ansel et
al., ASPLOS 2024).
"""

from __future__ import annotations

import functools
import hashlib
import threading
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from .._optional import require
from .._results import ResultRepr
from .._validate import RngLike
from ..errors import FrugalError, InfeasibleError, InvalidInputError
from ..progress import Progress
from .evaluate import evaluate_schedule
from .graph import RematGraph
from .joint_codegen import schedule_modules
from .joint_graph import JointRematGraph, joint_remat_graph
from .joint_seeds import block_checkpoint_schedule
from .solution import check_budget, plain_peak, resolve_budget
from .torch_trace import as_input_tuple

require("torch", what="training under a memory budget", extra="remat")

import torch  # noqa: E402
from torch import nn  # noqa: E402

__all__ = ["RematBackend", "RematPlan", "remat_plans", "rematerialize"]

_ATTR = "_frugalml_remat"


@dataclass(frozen=True, repr=False)
class RematPlan(ResultRepr):
    """What the partitioner decided for one traced graph (one input shape and mode).

    ``input_shapes``: the shapes of the graph's tensor inputs (parameters included).
    ``nodes``: nodes of the solved graph; ``folded``: ops folded into their bases (views).
    ``budget_bytes`` / ``plain_peak_bytes`` / ``peak_bytes``: the budget, the modelled peak of
    the plain order and of the schedule run. ``overhead``: recomputed cost over the plain cost
    (flops + bytes moved). ``status``: the solver's status, or ``"plain"`` when the budget
    needs no rematerialisation. ``solve_seconds``: time to trace the model, solve and generate.
    ``random_recomputed``: recomputations of random ops (replayed with their first draw's
    generator state). ``flops``: FLOPs of the step as scheduled (``FlopCounterMode``'s
    formulas on every computation, recomputations included). ``graph`` and ``schedule``: the
    solved graph and the schedule run.
    """

    input_shapes: tuple[tuple[int, ...], ...]
    nodes: int
    folded: int
    budget_bytes: int
    plain_peak_bytes: int
    peak_bytes: int
    overhead: float
    recomputations: int
    solver: str
    status: str
    solve_seconds: float
    random_recomputed: int = 0
    flops: int = 0
    graph: RematGraph | None = None
    schedule: np.ndarray | None = None

    def summary(self) -> str:
        if self.status == "plain":
            return (
                f"plain order: peak {self.plain_peak_bytes / 2**20:.1f} MiB within the budget "
                f"{self.budget_bytes / 2**20:.1f} MiB, no rematerialisation"
            )
        return (
            f"{self.solver} ({self.status}, {self.solve_seconds:.1f} s): peak "
            f"{self.peak_bytes / 2**20:.1f} MiB of {self.budget_bytes / 2**20:.1f} MiB budget "
            f"(plain {self.plain_peak_bytes / 2**20:.1f} MiB), +{100 * self.overhead:.1f}% "
            f"compute, {self.recomputations} recomputations"
        )


def _graph_key(jg: JointRematGraph) -> str:
    g = jg.graph
    h = hashlib.sha256()
    h.update(g.cost.tobytes())
    h.update(g.memory.tobytes())
    h.update(repr(g.preds).encode())
    h.update(repr(g.names).encode())
    return h.hexdigest()


class RematBackend:
    """A ``torch.compile`` backend that trains the captured graph under a memory budget.

    ``budget``: fraction of the modelled plain peak (``(0, 1]``) or bytes (``> 1``).
    ``solver``: ``"moccasin"`` (default) or any name of :func:`~frugalml.remat.api.solve`.
    ``time_limit``: seconds per solve. ``retrace``: re-trace and re-solve for a new input
    shape (otherwise a second graph raises). ``threads``, ``rng``: of the solver.
    ``progress(message, fraction)``: the solver's progress. Plans are in ``plans``, solved
    schedules cached by graph and budget.
    """

    def __init__(
        self,
        budget: float,
        *,
        solver: str = "moccasin",
        time_limit: float | None = 60.0,
        retrace: bool = True,
        threads: int | None = None,
        rng: RngLike = 0,
        progress: Progress | None = None,
    ) -> None:
        if isinstance(budget, bool) or not isinstance(budget, (int, float)) or budget <= 0:
            raise InvalidInputError(
                f"budget must be a fraction in (0, 1] of the plain peak or a number of bytes "
                f"(> 1), got {budget!r}"
            )
        if not np.isfinite(budget):
            raise InvalidInputError(f"budget must be finite, got {budget!r}")
        from .api import SOLVERS

        if solver not in SOLVERS:
            raise InvalidInputError(f"solver must be one of {', '.join(SOLVERS)}, got {solver!r}")
        self.budget = float(budget)
        self.solver = solver
        self.time_limit = time_limit
        self.retrace = retrace
        self.threads = threads
        self.rng = rng
        self.progress = progress
        self.plans: list[RematPlan] = []
        self._schedules: dict[tuple[str, float], tuple[np.ndarray, str]] = {}
        self._graphs = 0
        self._lock = threading.Lock()

    def __call__(self, gm: Any, example_inputs: list[Any]) -> Callable[..., Any]:
        from torch._functorch.aot_autograd import aot_module_simplified

        with self._lock:
            self._graphs += 1
            if self._graphs > 1 and not self.retrace:
                shapes = [tuple(t.shape) for t in example_inputs if isinstance(t, torch.Tensor)]
                raise InvalidInputError(
                    f"the input shapes or the train/eval mode changed (graph inputs {shapes}) "
                    "and re-tracing is disabled (retrace=False): keep the batch shape fixed "
                    "(e.g. drop_last=True) or pass retrace=True"
                )

        def boxed(module: Any, _inputs: Any) -> Any:
            return boxed_call(module)

        shapes = tuple(tuple(t.shape) for t in example_inputs if isinstance(t, torch.Tensor))

        def partition(joint: Any, joint_inputs: Any, *, num_fwd_outputs: int, **_: Any) -> Any:
            return self.partition(joint, num_fwd_outputs=num_fwd_outputs, input_shapes=shapes)

        return aot_module_simplified(
            gm, example_inputs, fw_compiler=boxed, bw_compiler=boxed, partition_fn=partition
        )

    def partition(
        self, joint: Any, *, num_fwd_outputs: int, input_shapes: tuple = ()
    ) -> tuple[Any, Any]:
        """AOTAutograd partitioner: solve the joint graph within the budget and generate the
        forward and backward modules of the schedule."""
        t0 = time.perf_counter()
        jg = joint_remat_graph(joint, num_fwd_outputs)
        graph = jg.graph
        plain = plain_peak(graph)
        budget = resolve_budget(graph, self.budget)  # raises InfeasibleError below the minimum
        key = (_graph_key(jg), float(budget))
        if key in self._schedules:
            schedule, status = self._schedules[key]
        elif budget >= plain:
            schedule, status = np.arange(graph.n, dtype=np.int64), "plain"
        else:
            schedule, status = self._solve(graph, budget)
        self._schedules[key] = (schedule, status)
        fw, bw = schedule_modules(jg, schedule)
        report = evaluate_schedule(graph, schedule)
        self.plans.append(
            RematPlan(
                input_shapes=input_shapes,
                nodes=graph.n,
                folded=jg.n_folded,
                budget_bytes=int(budget),
                plain_peak_bytes=int(plain),
                peak_bytes=int(report.peak_memory),
                overhead=float(report.overhead),
                recomputations=int(report.recomputations),
                solver="none" if status == "plain" else self.solver,
                status=status,
                solve_seconds=time.perf_counter() - t0,
                random_recomputed=int(sum(np.isin(schedule, list(jg.random)))) - len(jg.random),
                flops=int(np.asarray(graph.meta["flops"], dtype=np.int64)[schedule].sum()),
                graph=graph,
                schedule=schedule,
            )
        )
        return fw, bw

    def _solve(self, graph: Any, budget: int) -> tuple[np.ndarray, str]:
        """MOCCASIN (or another solver) seeded with the checkpointing schedules; the cheapest
        schedule within the budget wins, so the result is never worse than a seed."""
        from .api import solve
        from .baselines import chain_checkpointing

        check_budget(graph, budget)
        seeds: dict[str, np.ndarray] = {}
        for name, selective in (("checkpoint-per-block", False), ("selective", True)):
            s = block_checkpoint_schedule(graph, selective=selective)
            if s is not None:
                seeds[name] = s
        chain = chain_checkpointing(graph, budget)
        if chain.schedule is not None:
            seeds["chain-checkpointing"] = chain.schedule
        hints = list(seeds.values()) if self.solver == "moccasin" else []
        sol = solve(graph, budget, solver=self.solver,  # type: ignore[arg-type]
                    time_limit=self.time_limit, threads=self.threads,
                    progress=self.progress, rng=self.rng, hints=hints)  # fmt: skip
        best: tuple[float, np.ndarray, str] | None = None
        if sol.schedule is not None:
            best = (sol.report.total_cost, np.asarray(sol.schedule, dtype=np.int64), sol.status)
        for name, s in seeds.items():
            r = evaluate_schedule(graph, s)
            if r.peak_memory <= budget and (best is None or r.total_cost < best[0]):
                best = (r.total_cost, s, f"seed {name}")
        if best is None:
            raise InfeasibleError(
                f"{self.solver} found no schedule within {budget} bytes "
                f"({100 * budget / plain_peak(graph):.1f}% of the plain peak) in "
                f"{self.time_limit} s ({sol.status}), nor did checkpointing; raise the budget "
                "or the time limit"
            )
        return best[1], str(best[2])


def boxed_call(module: Any) -> Callable[[list[Any]], Any]:
    """``module`` (a generated ``GraphModule``) called with one list of arguments that its code
    empties after unpacking (AOTAutograd's boxed convention): each saved tensor is then freed
    at its last use in the backward rather than held by the caller until the backward ends."""
    from torch.fx.graph import _BoxedCodeGen

    module.graph.set_codegen(_BoxedCodeGen())
    module.recompile()

    def run(args: list[Any]) -> Any:
        return module.forward(args)

    run._boxed_call = True  # type: ignore[attr-defined]
    return run


def _unwrap(exc: BaseException) -> BaseException | None:
    """The frugalml error inside a Dynamo/AOTAutograd exception chain, if any."""
    seen: set[int] = set()
    cur: BaseException | None = exc
    while cur is not None and id(cur) not in seen:
        seen.add(id(cur))
        if isinstance(cur, FrugalError):
            return cur
        inner = getattr(cur, "inner_exception", None)
        cur = inner if isinstance(inner, BaseException) else (cur.__cause__ or cur.__context__)
    return None


def _capture_error(exc: BaseException) -> InvalidInputError | None:
    """A clear error for a model Dynamo cannot capture as one graph (``fullgraph=True``)."""
    from torch._dynamo import exc as dynamo_exc

    if isinstance(exc, (dynamo_exc.Unsupported, dynamo_exc.UserError)):
        first = str(exc).strip().splitlines()
        reason = first[0] if first else type(exc).__name__
        return InvalidInputError(
            f"the model cannot be captured as one graph for rematerialisation: {reason}. "
            "Data-dependent control flow (an `if` on a tensor's value, .item(), .tolist(), "
            "nonzero) and ops tracing cannot capture must be moved out of the forward, or the "
            "model split into parts rematerialised separately"
        )
    return None


@functools.cache
def _logging_functions() -> frozenset[Any]:
    """The ``logging.Logger`` methods Dynamo skips while tracing (a model that logs in its
    forward, as Hugging Face models do, would otherwise not be captured as one graph); the
    messages are not printed during the trace."""
    import logging

    names = ("debug", "info", "warning", "warn", "error", "critical", "log", "warning_once",
             "info_once")  # fmt: skip
    return frozenset(getattr(logging.Logger, n) for n in names if hasattr(logging.Logger, n))


class _Call:
    """The compiled ``forward`` of a rematerialised module, with errors made readable."""

    def __init__(self, compiled: Callable[..., Any], eager: Callable[..., Any]) -> None:
        self.compiled = compiled
        self.eager = eager

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        from torch.utils._python_dispatch import _get_current_dispatch_mode

        if _get_current_dispatch_mode() is not None:
            # Dynamo does not run under a dispatch mode (FlopCounterMode, ...): say so and run
            # the model's own forward, without rematerialisation
            warnings.warn(
                "a torch dispatch mode is active (e.g. FlopCounterMode); the rematerialised "
                "model runs its eager forward, without rematerialisation, inside it",
                RuntimeWarning,
                stacklevel=3,
            )
            return self.eager(*args, **kwargs)
        try:
            with torch._dynamo.config.patch(ignore_logging_functions=set(_logging_functions())):
                return self.compiled(*args, **kwargs)
        except FrugalError:
            raise
        except Exception as exc:
            inner = _unwrap(exc)
            if inner is not None:
                raise inner.with_traceback(None) from exc
            clear = _capture_error(exc)
            if clear is not None:
                raise clear from exc
            raise


def rematerialize(
    model: nn.Module,
    example_inputs: Any = None,
    *,
    budget: float,
    solver: str = "moccasin",
    time_limit: float | None = 60.0,
    retrace: bool = True,
    threads: int | None = None,
    rng: RngLike = 0,
    progress: Progress | None = None,
) -> nn.Module:
    """Make ``model`` train within ``budget`` bytes of activations by rematerialisation.

    Compiles ``model.forward`` in place (the same module object is returned: its parameters,
    ``state_dict`` and optimizer are unchanged) with a :class:`RematBackend`. With
    ``example_inputs`` (a tensor or a tuple of tensors: the forward's positional arguments) the
    graph is traced and solved now, with the model's buffers and the random state restored
    afterwards, so errors surface here and the first training step does not wait for the
    solver; without them, on the first call. A dict of ``example_inputs`` is passed as keyword
    arguments (e.g. ``{"input_ids": ids, "labels": ids}`` for a Hugging Face model).
    ``budget``: a fraction of the modelled plain peak or bytes (see the module doc). The other
    options are :class:`RematBackend`'s.

    Raises :class:`InvalidInputError` for a model in eval mode (call ``model.train()``), a
    model Dynamo cannot capture as one graph (the message names the reason), and
    :class:`InfeasibleError` for a budget below the minimum (with the minimum).
    """
    if not isinstance(model, nn.Module):
        raise InvalidInputError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    if not model.training:
        raise InvalidInputError(
            "the model is in eval mode; rematerialisation trades memory in training: call "
            "model.train() before rematerialize (eval steps then run without it)"
        )
    backend = RematBackend(
        budget,
        solver=solver,
        time_limit=time_limit,
        retrace=retrace,
        threads=threads,
        rng=rng,
        progress=progress,
    )
    if isinstance(model.__dict__.get("forward"), _Call):
        raise InvalidInputError("this model is already rematerialised; pass the original model")
    eager = model.forward
    compiled = torch.compile(_own_code(eager), backend=backend, fullgraph=True, dynamic=False)
    # an instance attribute: model(...) still runs the module's hooks, then the compiled forward
    model.forward = _Call(compiled, eager)
    setattr(model, _ATTR, backend)
    if example_inputs is not None:
        if isinstance(example_inputs, dict):
            _warm_up(model, (), _check_kwargs(example_inputs))
        else:
            _warm_up(model, as_input_tuple(example_inputs), {})
    return model


def _check_kwargs(inputs: dict[str, Any]) -> dict[str, Any]:
    for key, value in inputs.items():
        if not isinstance(key, str):
            raise InvalidInputError(f"example_inputs keys must be argument names, got {key!r}")
        if not isinstance(value, (torch.Tensor, bool, int, float, str, type(None))):
            raise InvalidInputError(
                f"example input {key!r} is a {type(value).__name__}; pass tensors and plain "
                "values (bool, int, float, str, None)"
            )
    return inputs


def _own_code(forward: Callable[..., Any]) -> Callable[..., Any]:
    """``forward`` behind a function with a code object of its own. Dynamo caches compiled
    graphs per code object and counts every entry against its recompile limit (8): without
    this, all models of one class (every ``nn.Sequential``) would share one cache, and the
    ninth rematerialised model would fail to compile."""

    def call(*args: Any, **kwargs: Any) -> Any:
        return forward(*args, **kwargs)

    call.__code__ = call.__code__.replace()  # a new code object, same code
    return call


def _warm_up(model: nn.Module, inputs: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    """Trace and solve on ``model(*inputs, **kwargs)`` without changing the model (buffers,
    RNG)."""
    buffers = [b.detach().clone() for b in model.buffers()]
    cpu_state = torch.get_rng_state()
    cuda_states = torch.cuda.get_rng_state_all() if torch.cuda.is_initialized() else None
    try:
        with torch.enable_grad():
            model(*inputs, **kwargs)
    finally:
        with torch.no_grad():
            for b, saved in zip(model.buffers(), buffers, strict=True):
                b.copy_(saved)
        torch.set_rng_state(cpu_state)
        if cuda_states is not None:
            torch.cuda.set_rng_state_all(cuda_states)


def remat_plans(model: nn.Module) -> list[RematPlan]:
    """The plans of a model returned by :func:`rematerialize`, one per traced graph."""
    backend = getattr(model, _ATTR, None)
    if backend is None:
        raise InvalidInputError("this model was not returned by frugalml.remat.rematerialize")
    return list(backend.plans)
