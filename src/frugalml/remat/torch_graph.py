"""Extract the joint forward + backward graph of a PyTorch model as a :class:`RematGraph`.

:func:`extract_graph` traces one training step of ``model`` and a loss, ``(params, buffers,
*inputs) -> (loss, *grads)``, into an FX graph of core-aten operations (``make_fx`` over
``torch.func.functionalize(torch.func.grad_and_value(...))``), then runs that graph once on the
example inputs to measure every node. Each FX ``call_function`` node becomes one node of the
:class:`RematGraph`, in the FX (topological) order:

- **Resident values.** Placeholders (parameters, buffers, inputs) and ``get_attr`` constants are
  not nodes: they are resident for the whole step and are counted neither in the graph's memory
  nor in the executor's measured memory.
- **Memory** of a node = the bytes of the storages its outputs *allocate* (for a dense output,
  ``numel * element_size``; tuples are summed; non-tensor outputs are 0). Storage identity is
  taken from the real run (``untyped_storage().data_ptr()`` compared with the storages of the
  op's inputs), so it is exact whatever the op's alias annotations say.
- **Aliasing.** A view/alias node (``view``, ``permute``, ``expand``, ``getitem`` of a tuple,
  ...), whose outputs share storage with an input, allocates nothing: memory 0. A view keeps the
  storage of its base alive, so for every storage a value aliases, the node that allocated it
  (its *owner*) gets an edge to every consumer of that value: the owner is then held until the
  view's last use. Liveness thus follows storages, not FX values, and
  :func:`~frugalml.remat.evaluate.evaluate_schedule` on the result predicts the bytes the
  executor (:mod:`frugalml.remat.execute`) really holds.
- **Cost.** ``cost="flops"``: ``flops + bytes_weight * bytes_moved`` (flops from
  :class:`torch.utils.flop_counter.FlopCounterMode`; ``bytes_moved`` = bytes of the tensor
  inputs read plus the bytes allocated for the output, 0 for an alias; ``bytes_weight`` defaults
  to :data:`BYTES_WEIGHT` = 8 flops per byte, a round figure for the flops-to-bandwidth balance
  of current CPUs and of GPUs outside their matrix units), floored at 1 so that no node is
  free. ``cost="measured"``: the median wall time in seconds of ``repeats`` runs of the node on
  the real inputs.

Buffer mutations (e.g. BatchNorm's running statistics) are removed from the graph: it computes
the loss and the gradients only and never writes the model's buffers. The CPU flash attention is
kept fused (with its fused backward): torch's core-aten decomposition of it returns the
attention probabilities in place of the log-sum-exp the backward reads, which gives wrong
gradients. Random operations (dropout with ``p > 0``, ...) are refused: a recomputation would
draw different numbers. Storages are identified by ``(device, data_ptr)``.

The extraction idea (a training graph of framework ops, with per-op durations and output
sizes) is Checkmate's: Jain et al., "Checkmate: Breaking the Memory Wall with Optimal Tensor
Rematerialization" (MLSys 2020). The graph and memory model are those of Bartan, Li, Teague,
Lott, Dilkina, "Moccasin: Efficient Tensor Rematerialization for Neural Networks" (ICML 2023,
arXiv 2304.14463), Sec. 2.

Modules: the trace is :mod:`frugalml.remat.torch_trace`, the storage and cost rules
:mod:`frugalml.remat.torch_measure`; this module runs the traced step once and builds the graph.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Literal

import numpy as np

from .._optional import require
from .._results import ResultRepr
from ..errors import FrugalError, InvalidInputError
from .graph import RematGraph
from .torch_measure import (
    BYTES_WEIGHT,
    StorageKey,
    flop_mapping,
    logical_bytes,
    storages,
    tensor_leaves,
    time_call,
)
from .torch_trace import as_input_tuple, build_joint, check_eager, clean_graph, trace_joint

require("torch", what="the PyTorch rematerialisation front end", extra="remat")

import torch  # noqa: E402
import torch.fx  # noqa: E402
from torch import nn  # noqa: E402
from torch.utils import _pytree as pytree  # noqa: E402

__all__ = ["BYTES_WEIGHT", "RESIDENT", "OutputSpec", "TorchRematGraph", "extract_graph"]

#: owner id of a storage that belongs to a resident value (parameter, buffer, input, constant)
RESIDENT = -1

CostModel = Literal["flops", "measured"]


@dataclass(frozen=True)
class OutputSpec:
    """Where the loss and the gradients are among the traced graph's values.

    ``loss``: the FX node name of the loss. ``grads[k]``: the FX node name of the gradient of
    the ``k``-th entry of ``model.parameters()``, or ``None`` for a parameter that does not
    require a gradient. A name may be a placeholder's (a value that is an input) as well as a
    graph node's.
    """

    loss: str
    grads: tuple[str | None, ...]

    @property
    def names(self) -> tuple[str, ...]:
        """Every output name, loss first (may repeat)."""
        return (self.loss, *(g for g in self.grads if g is not None))


@dataclass(frozen=True, eq=False, repr=False)
class TorchRematGraph(ResultRepr):
    """A traced training step and the :class:`RematGraph` built from it.

    Attributes
    ----------
    graph:
        The rematerialisation graph; node ``i`` is the FX node ``node_names[i]``.
    gm:
        The FX ``GraphModule`` of core-aten ops, ``(*params, *buffers, *inputs) -> [loss,
        *grads]`` (gradients only of the parameters that require one).
    node_names:
        ``(n,)`` FX node name of each graph node.
    input_names:
        FX placeholder names in the flat input order: every entry of ``model.parameters()``,
        then every entry of ``model.buffers()``, then the example inputs.
    param_names, buffer_names:
        Qualified names of the model's parameters and buffers, in that order.
    num_inputs:
        Number of example inputs.
    input_meta:
        ``(shape, dtype, device)`` of each flat input, as traced.
    outputs:
        The :class:`OutputSpec`.
    owners:
        ``owners[i]``: the graph nodes that allocated the storages node ``i``'s outputs use
        (``i`` itself when it allocates one; resident storages are left out).
    is_alias:
        ``(n,)`` bool, True for nodes that allocate nothing and alias an input's storage.
    rederivable:
        ``(n,)`` bool, aliases the executor may re-derive from their (held) owners when a stale
        copy must be dropped; see :mod:`frugalml.remat.execute`.
    is_forward:
        ``(n,)`` bool, True for the loss and the nodes it depends on.
    flops, bytes_moved:
        ``(n,)`` per-node flop count (whatever the cost model) and bytes read plus written.
    cost_model:
        ``"flops"`` or ``"measured"``.
    """

    graph: RematGraph
    gm: Any
    node_names: tuple[str, ...]
    input_names: tuple[str, ...]
    param_names: tuple[str, ...]
    buffer_names: tuple[str, ...]
    num_inputs: int
    input_meta: tuple[tuple[tuple[int, ...], Any, Any], ...]
    outputs: OutputSpec
    owners: tuple[tuple[int, ...], ...]
    is_alias: np.ndarray
    rederivable: np.ndarray
    is_forward: np.ndarray
    flops: np.ndarray
    bytes_moved: np.ndarray
    cost_model: str
    meta: dict[str, Any] = field(default_factory=dict, repr=False)

    @property
    def n(self) -> int:
        """Number of graph nodes."""
        return self.graph.n

    @cached_property
    def node_index(self) -> dict[str, int]:
        """``{fx node name: graph index}``."""
        return {nm: i for i, nm in enumerate(self.node_names)}

    def resident_values(self, flat: Sequence[Any]) -> dict[str, Any]:
        """``{fx name: value}`` of every resident value: the placeholders (``flat``, as from
        :meth:`flat_inputs`) and the graph module's ``get_attr`` constants."""
        if len(flat) != len(self.input_names):
            raise InvalidInputError(
                f"got {len(flat)} flat inputs, the graph has {len(self.input_names)}"
            )
        values = dict(zip(self.input_names, flat, strict=True))
        for nd in self.gm.graph.nodes:
            if nd.op == "get_attr":
                values[nd.name] = getattr(self.gm, nd.target)
        return values

    def flat_inputs(self, model: Any, example_inputs: Any) -> list[Any]:
        """The placeholder values for ``model`` and ``example_inputs``, in the flat order.

        Parameters are detached, buffers detached *and cloned* (the graph may contain ops such
        as ``native_batch_norm`` that write running statistics in place; the clones keep the
        model's buffers untouched). Raises :class:`InvalidInputError` if the model's parameters,
        buffers or the inputs differ in number, shape or dtype from what was traced.
        """
        if not isinstance(model, nn.Module):
            raise InvalidInputError(f"model must be a torch.nn.Module, got {type(model).__name__}")
        inputs = as_input_tuple(example_inputs)
        params = [p for _, p in model.named_parameters()]
        buffers = [b for _, b in model.named_buffers()]
        if len(params) != len(self.param_names) or len(buffers) != len(self.buffer_names):
            raise InvalidInputError(
                f"the model has {len(params)} parameters and {len(buffers)} buffers, the traced "
                f"one had {len(self.param_names)} and {len(self.buffer_names)}; pass the model "
                "the graph was extracted from"
            )
        if len(inputs) != self.num_inputs:
            raise InvalidInputError(
                f"got {len(inputs)} example inputs, the graph was traced with {self.num_inputs}"
            )
        flat = [p.detach() for p in params]
        flat += [b.detach().clone() for b in buffers]
        flat += [x.detach() for x in inputs]
        for k, (value, (shape, dtype, _device)) in enumerate(
            zip(flat, self.input_meta, strict=True)
        ):
            if tuple(value.shape) != shape or value.dtype != dtype:
                raise InvalidInputError(
                    f"input {self.input_names[k]} ({self._input_label(k)}) has shape "
                    f"{tuple(value.shape)} and dtype {value.dtype}, the graph was traced with "
                    f"{shape} and {dtype}; extract the graph again for new shapes"
                )
        return flat

    def _input_label(self, k: int) -> str:
        np_, nb = len(self.param_names), len(self.buffer_names)
        if k < np_:
            return f"parameter {self.param_names[k]}"
        if k < np_ + nb:
            return f"buffer {self.buffer_names[k - np_]}"
        return f"example input {k - np_ - nb}"

    def summary(self) -> str:
        """One line: sizes and the number of alias and forward nodes."""
        return (
            f"{self.graph.describe()}; {int(self.is_alias.sum())} alias nodes, "
            f"{int(self.is_forward.sum())} forward nodes, cost model {self.cost_model}"
        )


def extract_graph(
    model: Any,
    loss_fn: Callable[..., Any] | None,
    example_inputs: Any,
    *,
    cost: CostModel = "flops",
    num_model_inputs: int | None = None,
    bytes_weight: float = BYTES_WEIGHT,
    repeats: int = 5,
    name: str | None = None,
) -> TorchRematGraph:
    """Trace one training step of ``model`` and return its rematerialisation graph.

    Parameters
    ----------
    model:
        A ``torch.nn.Module``; traced in its current mode (``train()`` / ``eval()``). Its
        parameters and buffers are read, never written.
    loss_fn:
        ``loss_fn(output, *targets) -> scalar``. The model is called on the first
        ``num_model_inputs`` example inputs, the loss on the output and the rest. ``None``:
        the loss is the sum of the model's output (all tensors in it) and every input goes to
        the model.
    example_inputs:
        A tensor or a tuple of tensors, e.g. ``(x, y)``. Shapes, dtypes and devices are baked
        into the graph.
    cost:
        ``"flops"`` (deterministic, see the module docstring) or ``"measured"`` (median seconds
        of ``repeats`` timed runs per node).
    num_model_inputs:
        How many leading inputs the model takes; default: all when ``loss_fn`` is ``None``,
        otherwise 1.
    bytes_weight:
        Flop-equivalents per byte moved for ``cost="flops"``.
    name:
        Name of the graph (default: the model's class name).

    Returns
    -------
    TorchRematGraph
        With ``n`` = the number of FX ``call_function`` nodes of the joint graph.

    Raises :class:`InvalidInputError` when the forward or the loss fails on the inputs (the
    original exception is chained), when the loss is not a scalar, when tracing fails, or when
    the step contains random ops. Cost: one trace, plus one run of the step (``repeats + 1``
    runs per node for ``"measured"``); the real run holds each value until its last FX use.
    """
    if not isinstance(model, nn.Module):
        raise InvalidInputError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    if loss_fn is not None and not callable(loss_fn):
        raise InvalidInputError(f"loss_fn must be callable or None, got {type(loss_fn).__name__}")
    if cost not in ("flops", "measured"):
        raise InvalidInputError(f"cost must be 'flops' or 'measured', got {cost!r}")
    if not (isinstance(repeats, int) and repeats >= 1):
        raise InvalidInputError(f"repeats must be a positive integer, got {repeats!r}")
    if not (np.isfinite(bytes_weight) and bytes_weight >= 0):
        raise InvalidInputError(f"bytes_weight must be finite and >= 0, got {bytes_weight!r}")
    inputs = as_input_tuple(example_inputs)
    if not inputs:
        raise InvalidInputError("example_inputs must hold at least one tensor")
    if num_model_inputs is None:
        num_model_inputs = len(inputs) if loss_fn is None else 1
    if not (isinstance(num_model_inputs, int) and 0 <= num_model_inputs <= len(inputs)):
        raise InvalidInputError(
            f"num_model_inputs must be in 0..{len(inputs)}, got {num_model_inputs!r}"
        )

    named_params = list(model.named_parameters())
    named_buffers = list(model.named_buffers())
    param_names = [nm for nm, _ in named_params]
    buffer_names = [nm for nm, _ in named_buffers]
    params = [p for _, p in named_params]
    buffers = [b for _, b in named_buffers]
    trainable = [bool(p.requires_grad) for p in params]
    if not any(trainable):
        raise InvalidInputError("the model has no parameter that requires a gradient")

    joint = build_joint(model, loss_fn, param_names, trainable, buffer_names, num_model_inputs)
    try:
        gm = trace_joint(joint, params, buffers, inputs)
    except FrugalError:
        raise
    except Exception as exc:
        check_eager(
            model, loss_fn, params, buffers, param_names, buffer_names, inputs, num_model_inputs
        )
        raise InvalidInputError(
            f"tracing {type(model).__name__} into aten ops failed although its forward and "
            f"loss run eagerly: {type(exc).__name__}: {exc}"
        ) from exc
    clean_graph(gm)

    fx_nodes = list(gm.graph.nodes)
    placeholders = [nd for nd in fx_nodes if nd.op == "placeholder"]
    n_flat = len(params) + len(buffers) + len(inputs)
    if len(placeholders) != n_flat:  # pragma: no cover - make_fx keeps every input
        raise RuntimeError(f"traced {len(placeholders)} placeholders for {n_flat} inputs")
    out_node = next(nd for nd in fx_nodes if nd.op == "output")
    out_vals = list(pytree.tree_leaves(out_node.args[0]))
    if len(out_vals) != 1 + sum(trainable):  # pragma: no cover
        raise RuntimeError(f"traced {len(out_vals)} outputs for {1 + sum(trainable)}")
    for v in out_vals:
        if not isinstance(v, torch.fx.Node):
            raise InvalidInputError(
                f"the traced step returns a constant ({v!r}) instead of a computed tensor"
            )
    grad_iter = iter(out_vals[1:])
    outputs = OutputSpec(
        loss=out_vals[0].name,
        grads=tuple(next(grad_iter).name if t else None for t in trainable),
    )

    nodes = [nd for nd in fx_nodes if nd.op == "call_function"]
    if not nodes:
        raise InvalidInputError("the traced step has no operations")
    index = {nd.name: i for i, nd in enumerate(nodes)}
    n = len(nodes)

    # -- one real run in FX order: storages, flops, bytes, durations --------------------------
    from torch.utils.flop_counter import FlopCounterMode

    flop_map = flop_mapping()

    flat = [p.detach() for p in params] + [b.detach().clone() for b in buffers] + list(inputs)
    env: dict[str, Any] = {}
    node_storage: dict[str, dict[StorageKey, int]] = {}  # value name -> {storage: owner}
    for ph, value in zip(placeholders, flat, strict=True):
        env[ph.name] = value
        node_storage[ph.name] = dict.fromkeys(storages(value), RESIDENT)
    for nd in fx_nodes:
        if nd.op == "get_attr":
            value = getattr(gm, nd.target)
            env[nd.name] = value
            node_storage[nd.name] = dict.fromkeys(storages(value), RESIDENT)
    last_use: dict[str, int] = {}
    for pos, nd in enumerate(fx_nodes):
        for a in nd.all_input_nodes:
            last_use[a.name] = pos
    sync = any(x.is_cuda for x in flat)

    memory = np.zeros(n, dtype=np.int64)
    flops = np.zeros(n, dtype=np.float64)
    moved = np.zeros(n, dtype=np.float64)
    seconds = np.zeros(n, dtype=np.float64)
    owners: list[tuple[int, ...]] = []
    is_alias = np.zeros(n, dtype=bool)
    with torch.no_grad():
        for pos, nd in enumerate(fx_nodes):
            if nd.op != "call_function":
                continue
            i = index[nd.name]
            args = torch.fx.node.map_arg(nd.args, lambda a: env[a.name])
            kwargs = torch.fx.node.map_arg(nd.kwargs, lambda a: env[a.name])
            target = nd.target
            try:
                with FlopCounterMode(display=False, custom_mapping=flop_map) as counter:
                    out = target(*args, **kwargs)
                flops[i] = float(counter.get_total_flops())
                if cost == "measured":
                    seconds[i] = time_call(lambda t=target, a=args, k=kwargs: t(*a, **k),
                                            repeats, sync)  # fmt: skip
            except Exception as exc:  # pragma: no cover - the trace ran the same ops
                raise InvalidInputError(
                    f"running the traced op {target} ({nd.name}) failed: {exc}"
                ) from exc
            env[nd.name] = out
            in_ptrs: dict[StorageKey, int] = {}
            for a in nd.all_input_nodes:
                in_ptrs.update(node_storage[a.name])
            mine: dict[StorageKey, int] = {}
            fresh = 0
            for ptr, nb in storages(out).items():
                if ptr in in_ptrs:
                    mine[ptr] = in_ptrs[ptr]
                else:
                    mine[ptr] = i
                    fresh += nb
            node_storage[nd.name] = mine
            memory[i] = fresh
            has_tensor = bool(tensor_leaves(out))
            is_alias[i] = has_tensor and fresh == 0 and bool(mine)
            owners.append(tuple(sorted({o for o in mine.values() if o != RESIDENT})))
            if not is_alias[i]:
                read = sum(logical_bytes(env[a.name]) for a in nd.all_input_nodes)
                moved[i] = float(read + fresh)
            for a in nd.all_input_nodes:
                if last_use.get(a.name) == pos and a.op == "call_function":
                    del env[a.name]

    # -- edges: FX inputs, plus storage owners of every input -> this node ------------------
    preds: list[tuple[int, ...]] = []
    for i, nd in enumerate(nodes):
        ps: set[int] = set()
        for a in nd.all_input_nodes:
            if a.op != "call_function":
                continue
            j = index[a.name]
            ps.add(j)
            ps.update(owners[j])
        ps.discard(i)
        preds.append(tuple(sorted(ps)))

    rederivable = np.zeros(n, dtype=bool)
    for i, nd in enumerate(nodes):
        if not is_alias[i]:
            continue
        own = set(owners[i])
        ok = True
        for a in nd.all_input_nodes:
            if a.op != "call_function":
                continue
            j = index[a.name]
            if j in own or (rederivable[j] and set(owners[j]) <= own):
                continue
            ok = False
            break
        rederivable[i] = ok

    is_forward = np.zeros(n, dtype=bool)
    if outputs.loss in index:
        stack = [nodes[index[outputs.loss]]]
        while stack:
            nd = stack.pop()
            k = index[nd.name]
            if is_forward[k]:
                continue
            is_forward[k] = True
            stack.extend(a for a in nd.all_input_nodes if a.op == "call_function")

    if cost == "flops":
        node_cost = np.maximum(flops + float(bytes_weight) * moved, 1.0)
    else:
        node_cost = np.maximum(seconds, 1e-9)
    ops = [str(nd.target) for nd in nodes]
    names = [nd.name for nd in nodes]
    graph = RematGraph(
        cost=node_cost,
        memory=memory,
        preds=tuple(preds),
        names=tuple(names),
        ids=tuple(names),
        name=name if name is not None else type(model).__name__,
        meta={"format": "torch", "ops": ops, "backward": [not f for f in is_forward.tolist()]},
    )
    for arr in (is_alias, rederivable, is_forward, flops, moved):
        arr.setflags(write=False)
    return TorchRematGraph(
        graph=graph,
        gm=gm,
        node_names=tuple(names),
        input_names=tuple(ph.name for ph in placeholders),
        param_names=tuple(param_names),
        buffer_names=tuple(buffer_names),
        num_inputs=len(inputs),
        input_meta=tuple((tuple(x.shape), x.dtype, x.device) for x in flat),
        outputs=outputs,
        owners=tuple(owners),
        is_alias=is_alias,
        rederivable=rederivable,
        is_forward=is_forward,
        flops=flops,
        bytes_moved=moved,
        cost_model=cost,
        meta={"ops": tuple(ops)},
    )
