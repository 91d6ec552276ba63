"""PyTorch's own memory-budget partitioner, measured in the units of :mod:`frugalml.remat`.

:func:`partitioner_schedule` hands one training step of a model to AOTAutograd
(``torch._functorch.aot_autograd.aot_function``) with PyTorch's min-cut rematerialisation
partitioner (``torch._functorch.partitioners.min_cut_rematerialization_partition``) under
``torch._functorch.config.activation_memory_budget``, captures the forward and backward FX
graphs it produces, and runs them once, node by node, to measure what the partition costs with
the *same* memory and compute models as :func:`~frugalml.remat.torch_graph.extract_graph` and
:func:`~frugalml.remat.execute.execute_schedule`. That makes the partitioner directly comparable
with the schedules of MOCCASIN (Bartan, Li, Teague, Lott, Dilkina, "Moccasin: Efficient Tensor
Rematerialization for Neural Networks", ICML 2023, arXiv 2304.14463) and Checkmate (Jain et
al., MLSys 2020) on the extracted joint graph.

What PyTorch's partitioner does (as documented in its source; nothing of it is copied here): it
splits the AOTAutograd joint graph into a forward and a backward graph by a minimum cut that
minimises the bytes *saved* for the backward, letting the backward recompute cheap ("fusible",
mostly pointwise) forward ops. With ``activation_memory_budget < 1`` it then solves a knapsack
over the ops it would otherwise refuse to recompute (matmuls, convolutions, reductions, ...),
with flop-count runtimes, so that the saved activations shrink to about ``budget`` times the
span between "save everything the default cut saves" (1.0) and "save only the inputs" (0.0).
It decides *what is saved* at the forward/backward boundary; the order of the backward is fixed
(the autograd engine's), and every recomputation happens in the backward.

Measurement (same rules as :mod:`frugalml.remat.execute`):

- **Memory.** Each graph runs in a :class:`torch.fx.Interpreter`. After every op the live
  bytes are the sum of ``untyped_storage().nbytes()`` over the *distinct* storages held, with
  the parameters, buffers and inputs (and views of them) resident and not counted. A value is
  held from its creation until its last use; values saved for the backward are held from their
  creation in the forward until their last use in the backward. Graph outputs that are not
  saved (the loss, the gradients) are "copied out" right after their last use in the graph
  (right after their own step if nothing in the graph reads them), as the executor does. The
  loss's incoming gradient (an 8-byte tangent made by autograd) is counted from the start of
  the backward; the extracted joint graph makes the same scalar with an op.
- **Cost.** Per op, ``flops + BYTES_WEIGHT * bytes_moved``, floored at 1, with the flops from
  :class:`torch.utils.flop_counter.FlopCounterMode` (plus the fused CPU flash-attention formulas
  of :mod:`~frugalml.remat.torch_measure`), ``bytes_moved`` = logical bytes of the inputs read
  plus bytes of the storages the op allocates, 0 for an alias (a view costs the floor, 1). The
  storage helpers, the flop mapping, ``BYTES_WEIGHT`` and the measuring interpreter are those
  of :mod:`frugalml.remat.torch_measure`, the decomposition table (core-aten decompositions,
  CPU flash attention kept fused) that of :mod:`frugalml.remat.torch_trace`; the per-op
  formula, inline in ``extract_graph`` rather than a helper, is re-derived term by term by
  :class:`~frugalml.remat.torch_measure.MeasuringInterpreter`, and
  :func:`~frugalml.remat.torch_measure.measure_graph` on ``tg.gm`` reproduces ``tg.graph.cost``
  exactly (tested; ``measure_graph`` and ``GraphMeasurement`` are re-exported here).
- **Baselines.** ``baseline_cost``: the unpartitioned joint graph of ``extract_graph`` (what
  ``overhead`` is relative to). ``joint_cost`` / ``joint_peak_bytes``: AOTAutograd's own joint
  graph, after the dead-code elimination and CSE the partitioner applies first, run in its
  plain order by the same interpreter; ``joint_overhead`` isolates what the partition itself
  costs from how the step was traced.
- **Gradients.** The captured graphs run inside AOTAutograd's real forward and backward, so
  the loss and the gradients in the result are the partitioned step's; they are compared with
  plain autograd on a copy of the model.

Systematic differences from ``execute_schedule(tg, np.arange(tg.n), ...)`` (measured with
torch 2.13, float64, the default in-house models):

- **Tuple outputs.** In the extracted :class:`~frugalml.remat.graph.RematGraph` a multi-output
  op is one node that owns all its outputs, so ``native_batch_norm``'s 64 KiB output stays
  live as long as its 64-byte saved mean is needed by the backward. Here each ``getitem`` holds
  only its own storage. For the ResNet this alone lowers the plain-order peak from 1 313 024 B
  to 918 784 B (``measure_graph(tg.gm, ...)``); for the MLP, which has no tuple outputs, the
  two agree exactly.
- **Tracing.** AOTAutograd traces the backward through the autograd engine, not
  ``torch.func.grad``. ``F.dropout(p=0)`` in training mode becomes a ``clone`` there and
  nothing in ``extract_graph``; the Transformer's feed-forward dropout then keeps a second copy
  of each ReLU output (128 KiB per layer), so at budget 1.0 its peak is about 4% *above* the
  plain order's. BatchNorm is ``_native_batch_norm_legit_functional`` on clones of the buffers
  (the clones, a few hundred bytes, may be saved; the running-statistics updates are dead
  code and never reach the model).
- **CSE.** The partitioner merges common subexpressions of the joint graph first; the
  backward of BatchNorm then reuses the forward's centred input instead of recomputing it,
  which makes the ResNet's partitioned step 5% *cheaper* than the extracted joint graph at
  budget 1.0 (``joint_overhead`` is 0 there) and lowers its peak further, to 886 920 B.
- **Where recomputation happens.** The partitioner chooses what is saved at the
  forward/backward boundary; each forward op is recomputed at most once, in the backward,
  where the autograd-ordered backward first needs it, and the recomputed values then stay live
  until their last backward use. Lower budgets always shrink the saved bytes and the forward's
  peak, but not necessarily the overall peak, which is usually reached in the backward: for the
  MLP the peak is the same at every budget (the whole recomputed tail is live again at the
  last layer's weight gradient), and for the ResNet the peak at budget 0.5 is above the one
  at 0.9. MOCCASIN and Checkmate schedules, which may recompute a value several times and
  interleave recomputation with the backward, target the peak itself.

Only the tensors' storages are counted, never the allocator's caching or workspaces. Requires
torch with ``torch._functorch.config.activation_memory_budget`` (torch >= 2.4) and ``networkx``
(the min cut); otherwise :class:`~frugalml.errors.BackendUnavailableError`.
"""

from __future__ import annotations

import copy
import math
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .._optional import require
from .._results import ResultRepr
from ..errors import BackendUnavailableError, FrugalError, InvalidInputError
from .torch_graph import TorchRematGraph, extract_graph
from .torch_measure import (
    BYTES_WEIGHT,
    GraphMeasurement,
    MeasuringInterpreter,
    StorageKey,
    StorageTracker,
    measure_graph,
    storages,
)
from .torch_trace import as_input_tuple, check_eager, decomposition_table, default_loss

require("torch", what="the PyTorch partitioner comparison", extra="remat")

import torch  # noqa: E402
import torch.fx  # noqa: E402
from torch import nn  # noqa: E402

__all__ = ["GraphMeasurement", "PartitionerResult", "measure_graph", "partitioner_schedule"]

_WHAT = "the comparison with PyTorch's min-cut partitioner"


@dataclass(frozen=True, eq=False, repr=False)
class PartitionerResult(ResultRepr):
    """What PyTorch's partitioner chose at one memory budget, measured in frugalml's units.

    Attributes
    ----------
    memory_budget:
        The ``activation_memory_budget`` the partitioner ran under.
    peak_bytes:
        Measured peak of distinct live non-resident storage bytes over the forward and then
        the backward graph (comparable with :attr:`ExecutionResult.peak_bytes
        <frugalml.remat.execute.ExecutionResult>`).
    forward_peak_bytes:
        The same peak over the forward graph only.
    saved_bytes:
        Distinct non-resident bytes of the values saved for the backward (held between the
        two graphs).
    total_cost, forward_cost, backward_cost:
        Sum of the per-op costs (``extract_graph``'s ``cost="flops"`` model) of both graphs,
        and of each.
    recompute_cost:
        Cost of the backward ops that recompute a forward op (same FX name in both graphs).
    baseline_cost:
        Cost of ``extract_graph``'s unpartitioned joint graph (no recomputation).
    overhead:
        ``total_cost / baseline_cost - 1`` (a fraction: 0.05 is 5%). The two tracings differ
        slightly (see the module docstring), so it is not exactly 0 without recomputation.
    joint_peak_bytes, joint_cost:
        AOTAutograd's own unpartitioned joint graph run in its plain order by the same
        interpreter (``None`` when not measured): the reference that isolates what the
        partitioner changed from how the step was traced.
    joint_overhead:
        ``total_cost / joint_cost - 1`` (``None`` when not measured).
    n_saved:
        Number of values the forward saves for the backward (views of parameters and saved
        inputs included; they cost no memory).
    n_recomputed:
        Number of backward ops that recompute a forward op.
    n_forward_ops, n_backward_ops:
        ``call_function`` nodes in each graph.
    loss, grads:
        The loss and the gradients (one per ``model.parameters()``, ``None`` for a parameter
        that does not require one) from running the captured graphs.
    max_grad_diff:
        Largest absolute difference of ``loss`` and ``grads`` from plain autograd on a copy of
        the model (``nan`` when not checked).
    seconds:
        Wall time of AOTAutograd's trace and partition (the measuring runs excluded).
    partition_seconds:
        Wall time of the partitioner call alone.
    profile:
        ``(steps,)`` int64, live bytes after each forward op, at the start of the backward
        (saved values and the incoming gradient), and after each backward op.
    forward_graph, backward_graph:
        The captured ``torch.fx.GraphModule`` objects.
    """

    memory_budget: float
    peak_bytes: int
    forward_peak_bytes: int
    saved_bytes: int
    total_cost: float
    forward_cost: float
    backward_cost: float
    recompute_cost: float
    baseline_cost: float
    overhead: float
    joint_peak_bytes: int | None
    joint_cost: float | None
    joint_overhead: float | None
    n_saved: int
    n_recomputed: int
    n_forward_ops: int
    n_backward_ops: int
    loss: Any = field(repr=False)
    grads: list[Any] = field(repr=False)
    max_grad_diff: float
    seconds: float
    partition_seconds: float
    profile: np.ndarray = field(repr=False)
    forward_graph: Any = field(repr=False)
    backward_graph: Any = field(repr=False)

    def summary(self) -> str:
        """One line: budget, peak, saved bytes, overhead, recomputations, time."""
        return (
            f"budget {self.memory_budget:g}: peak {self.peak_bytes} B, saved "
            f"{self.saved_bytes} B in {self.n_saved} values, cost {self.total_cost:.4g} "
            f"({100 * self.overhead:+.2f}% vs the extracted joint graph), "
            f"{self.n_recomputed} recomputed ops, {self.seconds:.2f} s"
        )


def _partitioner_api() -> tuple[Any, Any, Any, Any]:
    """``(aot_function, make_boxed_func, min_cut_rematerialization_partition, config)``."""
    try:
        import torch._functorch.config as fconfig
        from torch._functorch.aot_autograd import aot_function, make_boxed_func
        from torch._functorch.partitioners import min_cut_rematerialization_partition
    except ImportError as exc:
        raise BackendUnavailableError(
            _WHAT, "torch", "remat", detail=f"torch {torch.__version__}: {exc}"
        ) from exc
    if not hasattr(fconfig, "activation_memory_budget"):
        raise BackendUnavailableError(
            _WHAT,
            "torch",
            "remat",
            detail=f"torch {torch.__version__} has no torch._functorch.config."
            "activation_memory_budget; upgrade to torch >= 2.4",
        )
    try:
        import networkx  # noqa: F401
    except ImportError as exc:
        raise BackendUnavailableError(_WHAT, "networkx", "remat", detail=str(exc)) from exc
    return aot_function, make_boxed_func, min_cut_rematerialization_partition, fconfig


def _check_budget(memory_budget: Any) -> float:
    if isinstance(memory_budget, bool) or not isinstance(memory_budget, (int, float, np.number)):
        raise InvalidInputError(
            f"memory_budget must be a number in [0, 1], got {type(memory_budget).__name__} "
            f"{memory_budget!r}"
        )
    b = float(memory_budget)
    if not (math.isfinite(b) and 0.0 <= b <= 1.0):
        raise InvalidInputError(
            "memory_budget must be in [0, 1] (1: the default min cut, 0: save only the "
            f"inputs), got {memory_budget!r}"
        )
    return b


def _reference(
    model: Any, loss_fn: Callable[..., Any] | None, inputs: tuple[Any, ...], k: int
) -> tuple[Any, list[Any]]:
    """Loss and ``model.parameters()`` gradients by plain autograd on a copy of the model."""
    m = copy.deepcopy(model)
    m.zero_grad(set_to_none=True)
    out = m(*inputs[:k])
    loss = default_loss(out) if loss_fn is None else loss_fn(out, *inputs[k:])
    loss.reshape(()).backward()
    return loss.detach(), [None if p.grad is None else p.grad.detach() for p in m.parameters()]


def _joint_args(joint: Any, flat: list[Any]) -> list[Any] | None:
    """Real inputs for AOTAutograd's joint graph: the primals, then a gradient of ones for
    each tangent (one per differentiable output: the loss). ``None`` if the layout is not
    the expected one."""
    placeholders = [nd for nd in joint.graph.nodes if nd.op == "placeholder"]
    if len(placeholders) < len(flat):
        return None
    args = list(flat)
    for nd in placeholders[len(flat) :]:
        val = nd.meta.get("val")
        if not isinstance(val, torch.Tensor) or not nd.name.startswith("tangents"):
            return None
        args.append(torch.ones(tuple(val.shape), dtype=val.dtype, device=val.device))
    return args


def _prepared_joint(joint: Any, fconfig: Any) -> Any:
    """A copy of AOTAutograd's joint graph as the partitioner first rewrites it: dead code
    removed and, when ``torch._functorch.config.cse`` is on, common subexpressions merged."""
    with warnings.catch_warnings():  # deep-copying a GraphModule warns in some torch versions
        warnings.simplefilter("ignore", FutureWarning)
        gm = copy.deepcopy(joint)
    gm.graph.eliminate_dead_code()
    if getattr(fconfig, "cse", False):
        try:
            from torch._functorch.compile_utils import fx_graph_cse

            gm = torch.fx.GraphModule(gm, fx_graph_cse(gm.graph))
        except ImportError:  # pragma: no cover - moved in another torch version: no CSE
            pass
    gm.recompile()
    return gm


def partitioner_schedule(
    model: Any,
    loss_fn: Callable[..., Any] | None,
    example_inputs: Any,
    *,
    memory_budget: float,
    num_model_inputs: int | None = None,
    baseline: TorchRematGraph | None = None,
    check_gradients: bool = True,
    measure_joint: bool = True,
    bytes_weight: float = BYTES_WEIGHT,
) -> PartitionerResult:
    """Partition one training step with PyTorch's min-cut partitioner and measure it.

    Parameters
    ----------
    model, loss_fn, example_inputs, num_model_inputs:
        As for :func:`~frugalml.remat.torch_graph.extract_graph`: the loss is
        ``loss_fn(model(*inputs[:k]), *inputs[k:])`` (``k`` defaults to 1 with a loss, all
        inputs without; ``loss_fn=None`` sums the output). The model's parameters and buffers
        are read, never written.
    memory_budget:
        ``torch._functorch.config.activation_memory_budget``, in ``[0, 1]``: 1 is the default
        min cut, 0 saves only the inputs (everything else is recomputed).
    baseline:
        The ``extract_graph(model, loss_fn, example_inputs)`` result to take ``baseline_cost``
        from (``cost="flops"``, the same ``bytes_weight``); extracted here when ``None``.
    check_gradients:
        Compare the captured graphs' loss and gradients with plain autograd on a deep copy of
        the model (:attr:`PartitionerResult.max_grad_diff`).
    measure_joint:
        Also run AOTAutograd's unpartitioned joint graph in its plain order
        (:attr:`PartitionerResult.joint_peak_bytes`, ``joint_cost``).
    bytes_weight:
        Flop-equivalents per byte moved, as in ``extract_graph``.

    Returns
    -------
    PartitionerResult

    Raises :class:`InvalidInputError` for a budget outside ``[0, 1]`` (or not a number), a bad
    model, loss or inputs (as ``extract_graph``, which also refuses random ops), or a
    ``baseline`` that is not a ``cost="flops"`` graph of this model;
    :class:`BackendUnavailableError` when this torch lacks the partitioner API or ``networkx``
    is missing. Cost: one ``extract_graph`` (unless ``baseline`` is given), one AOTAutograd
    trace and partition (about a second for the in-house models), one measured run of each
    graph (and of the joint graph), one autograd reference run. Not thread-safe: it patches
    ``torch._functorch.config`` for the duration of the trace.
    """
    budget = _check_budget(memory_budget)
    if not isinstance(model, nn.Module):
        raise InvalidInputError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    if loss_fn is not None and not callable(loss_fn):
        raise InvalidInputError(f"loss_fn must be callable or None, got {type(loss_fn).__name__}")
    if not (np.isfinite(bytes_weight) and bytes_weight >= 0):
        raise InvalidInputError(f"bytes_weight must be finite and >= 0, got {bytes_weight!r}")
    inputs = as_input_tuple(example_inputs)
    if not inputs:
        raise InvalidInputError("example_inputs must hold at least one tensor")
    k = (len(inputs) if loss_fn is None else 1) if num_model_inputs is None else num_model_inputs
    if isinstance(k, bool) or not (isinstance(k, int) and 0 <= k <= len(inputs)):
        raise InvalidInputError(f"num_model_inputs must be in 0..{len(inputs)}, got {k!r}")
    aot_function, make_boxed_func, min_cut, fconfig = _partitioner_api()

    if baseline is None:
        baseline = extract_graph(model, loss_fn, inputs, num_model_inputs=k,
                                 bytes_weight=bytes_weight)  # fmt: skip
    elif not isinstance(baseline, TorchRematGraph) or baseline.cost_model != "flops":
        raise InvalidInputError(
            "baseline must be a TorchRematGraph extracted with cost='flops' from the same model"
        )
    baseline.flat_inputs(model, inputs)  # raises if the model or the inputs do not match
    baseline_cost = float(np.sum(baseline.graph.cost))

    named_params = list(model.named_parameters())
    named_buffers = list(model.named_buffers())
    param_names = [nm for nm, _ in named_params]
    buffer_names = [nm for nm, _ in named_buffers]
    n_p, n_b = len(param_names), len(buffer_names)

    def step(*flat: Any) -> Any:
        from torch.func import functional_call

        state = dict(zip(param_names, flat[:n_p], strict=True))
        # buffers are cloned inside the step: AOTAutograd then sees no input mutation (the
        # running-statistics updates are dead code) and may save the clones for a recomputed
        # BatchNorm (with the buffers as mutated inputs, saving them fails at backward time)
        state.update(zip(buffer_names, [b.clone() for b in flat[n_p : n_p + n_b]], strict=True))
        xs = flat[n_p + n_b :]
        out = functional_call(model, state, tuple(xs[:k]))
        loss = default_loss(out) if loss_fn is None else loss_fn(out, *xs[k:])
        return loss.reshape(())

    table = decomposition_table()  # the same table as extract_graph's trace

    # parameters as fresh leaves (their .grad is the result), buffers detached, inputs as given
    params = [p.detach().clone().requires_grad_(p.requires_grad) for _, p in named_params]
    flat = [*params, *(b.detach() for _, b in named_buffers), *(x.detach() for x in inputs)]
    resident: set[StorageKey] = set()
    for v in flat:
        resident.update(storages(v))
    tracker = StorageTracker(resident)
    info: dict[str, Any] = {"excluded": 0.0}

    def partition(joint: Any, joint_inputs: Any, **kwargs: Any) -> Any:
        info["num_fwd_outputs"] = int(kwargs["num_fwd_outputs"])
        if measure_joint:  # measured after the step, outside AOTAutograd's tracing context
            t0 = time.perf_counter()
            info["joint_gm"] = _prepared_joint(joint, fconfig)
            info["excluded"] += time.perf_counter() - t0
        t0 = time.perf_counter()
        fw, bw = min_cut(joint, joint_inputs, **kwargs)
        info["partition_seconds"] = time.perf_counter() - t0
        return fw, bw

    def fw_compiler(gm: Any, _example: Any) -> Any:
        info["t_compiled"] = time.perf_counter()
        info["fw"] = gm
        out_node = next(nd for nd in gm.graph.nodes if nd.op == "output")
        saved = list(out_node.args[0])[info["num_fwd_outputs"] :]
        info["n_saved"] = len(saved)
        keep = {a.name for a in saved if isinstance(a, torch.fx.Node)}
        interp = MeasuringInterpreter(gm, tracker, "fw:", keep, bytes_weight)
        info["fw_interp"] = interp

        def run(*args: Any) -> Any:
            result = interp.run(*args)
            info["saved_bytes"] = tracker.bytes
            return result

        return make_boxed_func(run)

    def bw_compiler(gm: Any, _example: Any) -> Any:
        info["bw"] = gm
        interp = MeasuringInterpreter(gm, tracker, "bw:", set(), bytes_weight)
        info["bw_interp"] = interp
        placeholders = [nd.name for nd in gm.graph.nodes if nd.op == "placeholder"]

        def run(*args: Any) -> Any:
            # hand the saved values over from the forward to the backward's placeholders
            for name, value in zip(placeholders, args, strict=True):
                tracker.add("bw:" + name, value)
            tracker.remove_prefix("fw:")
            interp.peak = tracker.record()
            return interp.run(*args)

        return make_boxed_func(run)

    compiled = aot_function(
        step,
        fw_compiler,
        bw_compiler,
        partition_fn=partition,
        decompositions=table,
        num_params_buffers=n_p + n_b,
    )
    t_start = time.perf_counter()
    try:
        with fconfig.patch(activation_memory_budget=budget), torch.enable_grad():
            loss = compiled(*flat)
            loss.backward()
    except FrugalError:
        raise
    except Exception as exc:
        if isinstance(exc, ImportError) and "networkx" in str(exc):  # pragma: no cover
            raise BackendUnavailableError(_WHAT, "networkx", "remat", detail=str(exc)) from exc
        check_eager(model, loss_fn, [p for _, p in named_params],
                     [b for _, b in named_buffers], param_names, buffer_names, inputs,
                     k)  # fmt: skip
        raise InvalidInputError(
            f"AOTAutograd with the min-cut partitioner failed on {type(model).__name__} at "
            f"memory_budget={budget:g}: {type(exc).__name__}: {exc}"
        ) from exc
    if "bw_interp" not in info:  # pragma: no cover - extract_graph refuses such steps first
        raise InvalidInputError(
            f"AOTAutograd produced no backward graph for {type(model).__name__}; does any "
            "parameter require a gradient?"
        )
    seconds = info["t_compiled"] - t_start - info["excluded"]

    max_diff = float("nan")
    if check_gradients:
        ref_loss, ref_grads = _reference(model, loss_fn, inputs, k)
        diffs = [float((loss.detach() - ref_loss).abs())]
        for p, g_ref in zip(params, ref_grads, strict=True):
            if (p.grad is None) != (g_ref is None):
                diffs.append(float("inf"))
            elif g_ref is not None:
                diffs.append(float((p.grad - g_ref).abs().max()))
        max_diff = max(diffs)

    fw_interp, bw_interp = info["fw_interp"], info["bw_interp"]
    fw_gm, bw_gm = info["fw"], info["bw"]
    fw_ops = set(fw_interp.costs)
    recomputed = [nm for nm in bw_interp.costs if nm in fw_ops]
    fw_cost = float(sum(fw_interp.costs.values()))
    bw_cost = float(sum(bw_interp.costs.values()))
    total = fw_cost + bw_cost
    joint: GraphMeasurement | None = None
    if "joint_gm" in info:
        joint_gm = info["joint_gm"]
        jargs = _joint_args(joint_gm, flat)
        if jargs is not None:
            joint = measure_graph(joint_gm, jargs, resident=flat, bytes_weight=bytes_weight)
    profile = np.asarray(tracker.profile, dtype=np.int64)
    profile.setflags(write=False)
    return PartitionerResult(
        memory_budget=budget,
        peak_bytes=int(profile.max()),
        forward_peak_bytes=int(fw_interp.peak),
        saved_bytes=int(info.get("saved_bytes", 0)),
        total_cost=total,
        forward_cost=fw_cost,
        backward_cost=bw_cost,
        recompute_cost=float(sum(bw_interp.costs[nm] for nm in recomputed)),
        baseline_cost=baseline_cost,
        overhead=total / baseline_cost - 1.0,
        joint_peak_bytes=None if joint is None else joint.peak_bytes,
        joint_cost=None if joint is None else joint.total_cost,
        joint_overhead=None if joint is None else total / joint.total_cost - 1.0,
        n_saved=int(info["n_saved"]),
        n_recomputed=len(recomputed),
        n_forward_ops=len(fw_interp.costs),
        n_backward_ops=len(bw_interp.costs),
        loss=loss.detach(),
        grads=[None if p.grad is None else p.grad.detach() for p in params],
        max_grad_diff=max_diff,
        seconds=float(seconds),
        partition_seconds=float(info.get("partition_seconds", float("nan"))),
        profile=profile,
        forward_graph=fw_gm,
        backward_graph=bw_gm,
    )
