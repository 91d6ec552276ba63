"""The AOTAutograd joint graph of a training step as a :class:`RematGraph`, with a faithful
memory model.

:func:`joint_remat_graph` reads the joint forward + backward FX graph that AOTAutograd traces
for ``torch.compile`` (``(primals, tangents) -> (forward outputs, gradients)``, ops as the
eager kernels see them: ``convolution``, ``_native_batch_norm_legit_functional``,
``native_dropout``, ``convolution_backward``, ...) and builds the graph MOCCASIN schedules.
Sizes come from the fake tensors of the trace (``node.meta["val"]``); nothing runs.

Memory model (what eager PyTorch and the generated step really hold):

- **Storages, not values.** A node's memory is the bytes of the storages it *allocates*
  (``untyped_storage().nbytes()``, identity by the fake storage). An op whose outputs only alias
  its inputs' storages (``view``, ``t``, ``permute``, ``expand``, ``detach``, ...) is *folded*:
  it is not a node, and a consumer of the view depends on the node that owns the storage, so
  the base stays alive until the view's last use. About 40% of a traced transformer's ops are
  such views; they get no solver variables.
- **Multi-output ops.** The op node owns its largest output (the ``getitem`` of that output is
  folded into it); every other output is a ``getitem`` node owning its own storage, so a small
  saved statistic (BatchNorm's mean and inverse std, LayerNorm's mean and rstd, dropout's
  mask) does not keep the large output alive. While the op itself runs only its largest output
  is counted (the others, written in the same step, are counted from the next step).
- **What autograd keeps alive.** A forward value is held until its last use in the backward,
  exactly as the saved tensors of the partitioned step are.
- **Gradients and outputs until consumed.** The forward outputs (returned to the caller, who
  holds them through the loss and the backward) and the gradients (accumulated into ``.grad``,
  read by the optimizer after the step) are held to the end of the step: a sink node consumes
  them all.
- **The forward/backward boundary.** A boundary node consumes every forward output and every
  node that reads a tangent (the incoming gradients, known only when ``backward()`` runs)
  depends on it, so a schedule finishes the forward before it starts the backward.
- Parameters, buffers, inputs and tangents (placeholders) are resident and not counted.

Cost of a node: ``flops + BYTES_WEIGHT * bytes_moved`` (flops from
:mod:`torch.utils.flop_counter`'s formulas on the fake shapes, bytes moved = logical bytes of
the tensor inputs read plus the bytes allocated), floored at 1; the boundary and the sink cost
0. ``O(N + E)`` for ``N`` FX nodes and ``E`` FX edges.

Paper: Bartan, Li, Teague, Lott, Dilkina, "Moccasin: Efficient Tensor Rematerialization for
Neural Networks" (ICML 2023, arXiv 2304.14463), Sec. 2 (graph and memory model); the joint
graph is AOTAutograd's (Ansel et al., "PyTorch 2", ASPLOS 2024).
"""

from __future__ import annotations

import operator
from dataclasses import dataclass
from typing import Any

import numpy as np

from .._optional import require
from ..errors import InvalidInputError
from .graph import RematGraph
from .torch_measure import BYTES_WEIGHT, flop_mapping, logical_bytes

require("torch", what="the PyTorch rematerialisation front end", extra="remat")

import torch  # noqa: E402
import torch.fx  # noqa: E402
from torch.multiprocessing.reductions import StorageWeakRef  # noqa: E402
from torch.utils import _pytree as pytree  # noqa: E402

__all__ = ["BOUNDARY", "SINK", "JointRematGraph", "is_random", "joint_remat_graph", "node_flops"]

#: name of the boundary node (every forward output before, every tangent reader after)
BOUNDARY = "<boundary>"
#: name of the sink node (holds the outputs and gradients to the end of the step)
SINK = "<sink>"


@dataclass(frozen=True, eq=False)
class JointRematGraph:
    """A joint graph and the :class:`RematGraph` of its non-folded nodes.

    ``graph``: node ``i`` is the FX node ``nodes[i]`` (``None`` for the boundary and the sink,
    at ``boundary`` and ``sink``). ``owner``: for each folded FX node (a view, or the
    ``getitem`` of an op's largest output), the FX node whose computation makes it (``None``
    when it only aliases placeholders). ``random``: graph indices of the seeded random ops.
    """

    joint: Any
    graph: RematGraph
    nodes: tuple[Any, ...]
    index: dict[Any, int]
    owner: dict[Any, Any]
    boundary: int
    sink: int
    random: frozenset[int]
    num_fwd_outputs: int

    @property
    def n_folded(self) -> int:
        """How many FX ops were folded into their bases (views, largest getitems)."""
        return len(self.owner)


def is_random(target: Any) -> bool:
    """True for a seeded random op (dropout, ``rand``, ``bernoulli``...), whatever its ``p``:
    recomputing it must replay the RNG state its first computation drew from."""
    return torch.Tag.nondeterministic_seeded in getattr(target, "tags", ())


def _tensors(value: Any) -> list[Any]:
    return [t for t in pytree.tree_leaves(value) if isinstance(t, torch.Tensor)]


def _storage(t: Any) -> Any:
    return StorageWeakRef(t.untyped_storage())


def node_flops(node: Any, formulas: dict[Any, Any] | None = None) -> int:
    """FLOPs of an FX node from its traced values (``torch.utils.flop_counter``'s formulas,
    the counts ``FlopCounterMode`` gives when the op runs; 0 for ops without a formula)."""
    return _flops(node, node.meta.get("val"), _formulas() if formulas is None else formulas)


def _flops(node: Any, out: Any, formulas: dict[Any, Any]) -> int:
    target = node.target
    packet = getattr(target, "overloadpacket", None)
    formula = formulas.get(packet)
    if formula is None:
        return 0
    args, kwargs = pytree.tree_map(
        lambda a: a.meta.get("val") if isinstance(a, torch.fx.Node) else a, (node.args, node.kwargs)
    )
    try:
        return int(formula(*args, **kwargs, out_val=out))
    except Exception:  # a formula that cannot read these arguments: count the bytes only
        return 0


def _formulas() -> dict[Any, Any]:
    from torch.utils import flop_counter as fc

    table = dict(fc.flop_registry)
    for packet, formula in flop_mapping().items():
        table[packet] = fc.shape_wrapper(formula)
    return table


#: op names whose outputs selective checkpointing saves (the rest of a block is recomputed)
EXPENSIVE_OPS = ("mm", "addmm", "bmm", "baddbmm", "convolution", "_scaled_dot_product")


def _expensive(fx_node: Any) -> bool:
    name = str(getattr(fx_node.target, "__name__", fx_node.target)).split(".")[0]
    return any(name == op or name.startswith(op) for op in EXPENSIVE_OPS)


def _name(v: Any) -> str:
    if isinstance(v, str):
        return v
    if isinstance(v, _Scratch):
        return f"scratch of {v.of.name}"
    return f"{v.name}:{v.target}"


def _blocks(forward: list[Any], n: int) -> list[int]:
    """Block id of each forward node (``-1``: none): the instances of the module type that
    repeats (two or more disjoint instances) and covers the most forward nodes, e.g. the
    residual blocks of a ResNet or the layers of a transformer, read from Dynamo's
    ``nn_module_stack``."""
    covered: dict[str, int] = {}
    paths_of: dict[str, set[str]] = {}
    stacks = []
    for item in forward:
        fx_node = item.of if isinstance(item, _Scratch) else item
        stack = fx_node.meta.get("nn_module_stack") or {}
        entries = [(str(path), str(kind)) for path, kind in stack.values()]
        stacks.append(entries)
        for path, kind in entries:
            covered[kind] = covered.get(kind, 0) + 1
            paths_of.setdefault(kind, set()).add(path)

    def disjoint(paths: set[str]) -> bool:
        return not any(a != b and b.startswith(a + ".") for a in paths for b in paths)

    kinds = [k for k, p in paths_of.items() if len(p) >= 2 and disjoint(p)]
    labels = [-1] * n
    if not kinds:
        return labels
    kind = max(kinds, key=lambda k: (covered[k], len(paths_of[k])))
    ids: dict[str, int] = {}
    for k, entries in enumerate(stacks):
        for path, kd in entries:
            if kd == kind:
                labels[k] = ids.setdefault(path, len(ids))
    return labels


@dataclass(frozen=True)
class _Scratch:
    """The scratch memory of an op, a node held only while the op runs."""

    of: Any


def joint_remat_graph(
    joint: Any,
    num_fwd_outputs: int,
    *,
    bytes_weight: float = BYTES_WEIGHT,
    workspace: bool = True,
    name: str = "",
) -> JointRematGraph:
    """Build the :class:`JointRematGraph` of an AOTAutograd joint ``GraphModule``.

    ``num_fwd_outputs``: how many of the joint graph's outputs are the forward's (AOTAutograd
    passes it to a partitioner). ``workspace``: measure each op's scratch memory
    (:func:`~frugalml.remat.workspace.op_workspace`, runs the op once per distinct signature)
    and add it as a node that its op reads, held only while the op runs. Raises
    :class:`InvalidInputError` for a node without a traced value (a graph that was not traced
    with fake tensors).
    """
    fx_graph = joint.graph
    formulas = _formulas()
    owner_of: dict[Any, Any] = {}  # storage -> FX node that allocated it (None: resident)
    owner: dict[Any, Any] = {}  # folded FX node -> FX node that computes it
    tangent: dict[Any, bool] = {}  # FX node -> reads a tangent (directly or through views)
    nodes: list[Any] = []
    memory: dict[Any, int] = {}
    cost: dict[Any, float] = {}
    flops: dict[Any, int] = {}
    preds: dict[Any, set[Any]] = {}
    random: set[Any] = set()
    first_tangent_reader: int | None = None
    out_node = None
    for fx_node in fx_graph.nodes:
        if fx_node.op == "output":
            out_node = fx_node
            continue
        val = fx_node.meta.get("val")
        if fx_node.op in ("placeholder", "get_attr"):
            for t in _tensors(val):
                owner_of.setdefault(_storage(t), None)
            tangent[fx_node] = fx_node.op == "placeholder" and fx_node.name.startswith("tangents")
            continue
        if fx_node.op != "call_function":
            raise InvalidInputError(f"unexpected {fx_node.op} node {fx_node.name} in a joint graph")
        if "val" not in fx_node.meta:
            raise InvalidInputError(
                f"node {fx_node.name} ({fx_node.target}) has no traced value; the joint graph "
                "must come from AOTAutograd (traced with fake tensors)"
            )
        inputs = list(fx_node.all_input_nodes)
        tangent[fx_node] = any(tangent.get(a, False) for a in inputs)
        in_owners: set[Any] = set()
        for a in inputs:
            if a in memory:  # a graph node's value (its tuple, for a multi-output op)
                in_owners.add(a)
            for t in _tensors(a.meta.get("val")):
                o = owner_of.get(_storage(t))
                if o is not None:
                    in_owners.add(o)
        if fx_node.target is operator.getitem:
            base = fx_node.args[0]
            outs = _tensors(val)
            s = _storage(outs[0]) if outs else None
            if s is not None and owner_of.get(s, "missing") == base:
                owner[fx_node] = base  # the op's largest output: folded into the op
                continue
            if s is None or s in owner_of:  # a non-tensor, or an output aliasing something known
                owner[fx_node] = owner_of.get(s) if s is not None else base
                continue
            owner_of[s] = fx_node
            memory[fx_node] = int(outs[0].untyped_storage().nbytes())
            cost[fx_node] = 1.0
            preds[fx_node] = {base}
        else:
            fresh: dict[Any, int] = {}
            for t in _tensors(val):
                s = _storage(t)
                if s not in owner_of and s not in fresh:
                    fresh[s] = int(t.untyped_storage().nbytes())
            if not fresh and _tensors(val) and not is_random(fx_node.target):
                # a view: owned by whatever owns the storage it aliases (None: resident)
                owners = {owner_of[_storage(t)] for t in _tensors(val)} - {None}
                if len(owners) <= 1:
                    owner[fx_node] = next(iter(owners), None)
                    continue
                # aliases several computed storages (rare): a zero-byte node reading them all
            largest = max(fresh, key=fresh.__getitem__) if fresh else None
            if largest is not None:
                owner_of[largest] = fx_node
            memory[fx_node] = fresh.get(largest, 0) if largest is not None else 0
            moved = sum(logical_bytes(a.meta.get("val")) for a in inputs) + sum(fresh.values())
            flops[fx_node] = _flops(fx_node, val, formulas)
            cost[fx_node] = max(1.0, flops[fx_node] + bytes_weight * moved)
            preds[fx_node] = in_owners
            if is_random(fx_node.target):
                random.add(fx_node)
        if tangent[fx_node] and first_tangent_reader is None:
            first_tangent_reader = len(nodes)
        nodes.append(fx_node)
    if out_node is None:
        raise InvalidInputError("the joint graph has no output node")
    outputs = list(out_node.args[0])
    fw_outs = [o for o in outputs[:num_fwd_outputs] if isinstance(o, torch.fx.Node)]
    all_outs = [o for o in outputs if isinstance(o, torch.fx.Node)]

    def owners_of(value_nodes: list[Any]) -> set[Any]:
        found: set[Any] = set()
        for v in value_nodes:
            if v in memory:
                found.add(v)
            for t in _tensors(v.meta.get("val")):
                o = owner_of.get(_storage(t))
                if o is not None:
                    found.add(o)
        return found

    boundary_preds = owners_of(fw_outs)
    sink_preds = owners_of(all_outs)
    # order: the joint order, the boundary just before the first tangent reader (moved later
    # if a forward output is only computed after it; then readers before it are moved too)
    cut = len(nodes) if first_tangent_reader is None else first_tangent_reader
    position = {v: k for k, v in enumerate(nodes)}
    last_fw = max((position[v] for v in boundary_preds), default=-1)
    if last_fw >= cut:
        raise InvalidInputError(
            "the joint graph computes a forward output after the backward has started; this "
            "step cannot be split into a forward and a backward pass"
        )
    scratch: dict[Any, int] = {}
    if workspace:
        from .workspace import op_workspace

        for v in nodes:
            if v.target is not operator.getitem:
                w = op_workspace(v)
                if w > 0:
                    scratch[v] = w

    def with_scratch(part: list[Any]) -> list[Any]:
        return [x for v in part for x in ((_Scratch(v), v) if v in scratch else (v,))]

    ordered = [*with_scratch(nodes[:cut]), BOUNDARY, *with_scratch(nodes[cut:]), SINK]
    index = {v: k for k, v in enumerate(ordered)}
    edges: list[tuple[int, int]] = []
    for v in nodes:
        for u in preds[v]:
            edges.append((index[u], index[v]))
        if tangent[v]:
            edges.append((index[BOUNDARY], index[v]))
        if v in scratch:
            edges.append((index[_Scratch(v)], index[v]))
    edges += [(index[u], index[BOUNDARY]) for u in boundary_preds]
    edges += [(index[u], index[SINK]) for u in sink_preds]
    n = len(ordered)
    mem = np.zeros(n, dtype=np.int64)
    cst = np.zeros(n, dtype=np.float64)
    for v in nodes:
        mem[index[v]] = memory[v]
        cst[index[v]] = cost[v]
    for v, w in scratch.items():
        mem[index[_Scratch(v)]] = w
    scratch_of = [index[x.of] if isinstance(x, _Scratch) else -1 for x in ordered]
    graph = RematGraph.from_edges(
        cst,
        mem,
        sorted(set(edges)),
        names=[_name(v) for v in ordered],
        order=list(range(n)),
        name=name,
        meta={
            "backward": [k > index[BOUNDARY] for k in range(n)],
            "block": _blocks(ordered[: index[BOUNDARY]], n),
            "expensive": [isinstance(v, torch.fx.Node) and _expensive(v) for v in ordered],
            "scratch_of": scratch_of,
            "flops": [flops.get(v, 0) for v in ordered],
        },
    )
    return JointRematGraph(
        joint=joint,
        graph=graph,
        nodes=tuple(v if isinstance(v, torch.fx.Node) else None for v in ordered),
        index={v: k for k, v in enumerate(ordered) if isinstance(v, torch.fx.Node)},
        owner=owner,
        boundary=index[BOUNDARY],
        sink=index[SINK],
        random=frozenset(index[v] for v in random),
        num_fwd_outputs=num_fwd_outputs,
    )
