"""A rematerialisation schedule of a joint graph as generated forward and backward FX modules.

:func:`schedule_modules` turns a schedule of a
:class:`~frugalml.remat.joint_graph.JointRematGraph` (a sequence of its node ids, a node that
appears twice is recomputed) into the two ``GraphModule``s an AOTAutograd partitioner returns:

- the **forward** ``(*primals) -> (*forward outputs, *saved)`` runs the schedule's steps before
  the boundary, in order, each computation a fresh FX node reading the most recent computation
  of its inputs;
- the **backward** ``(*saved, *tangents) -> (*gradients)`` runs the steps after it; ``saved``
  are the values computed before the boundary that a later step reads (the primals among them
  are references, not copies).

Folded nodes (views, the ``getitem`` of an op's largest output) are re-emitted next to their
first use after each (re)computation of their base, in the phase that uses them, so a view
never keeps a stale computation alive. FX code generation frees every value right after its
last use, so the generated step holds what the schedule's memory model holds. The generated
code is straight-line Python calling the same ATen kernels as eager: no per-op interpretation.

**Random ops.** A seeded random op (dropout, ...) that the schedule recomputes captures the
generator state of its device right before its first computation (the state tensor is saved
for the backward if a recomputation happens there), and every recomputation runs with that
state restored, then puts the generator back: the recomputed mask equals the first one, as
``torch.utils.checkpoint`` guarantees, and the random stream the rest of the step sees is the
eager one. The first computations follow the joint graph's order (MOCCASIN's schedules fix
them at their topological position; checked), so the draws match eager's.

``O(len(schedule) + folded nodes)``. Paper: Bartan et al., "Moccasin" (ICML 2023,
arXiv 2304.14463); the forward/backward module convention is AOTAutograd's (Ansel et al.,
"PyTorch 2", ASPLOS 2024).
"""

from __future__ import annotations

import operator
from collections import Counter
from collections.abc import Sequence
from typing import Any

import numpy as np

from .._optional import require
from ..errors import InvalidInputError
from .joint_graph import JointRematGraph

require("torch", what="the PyTorch rematerialisation front end", extra="remat")

import torch  # noqa: E402
import torch.fx  # noqa: E402
from torch.utils import _pytree as pytree  # noqa: E402

__all__ = ["rng_state", "schedule_modules"]


def rng_state(device: torch.device) -> torch.Tensor:
    """The state of the default generator of ``device`` (CPU or CUDA), as a tensor."""
    if device.type == "cuda":
        return torch.cuda.get_rng_state(device)
    if device.type != "cpu":
        raise InvalidInputError(
            f"recomputing a random op on {device.type} is not supported (CPU and CUDA are); "
            "use a budget at which it is not recomputed"
        )
    return torch.get_rng_state()


def _set_rng_state(device: torch.device, state: torch.Tensor) -> None:
    if device.type == "cuda":
        torch.cuda.set_rng_state(state, device)
    else:
        torch.set_rng_state(state)


class _Replay:
    """``op(*args, **kwargs)`` with the generator of ``device`` set to ``state``, restored
    afterwards: a random op's recomputation. A callable FX target (named for the code)."""

    __module__ = __name__

    def __init__(self, op: Any, device: torch.device) -> None:
        self.op = op
        self.device = device
        self.__name__ = "replay_" + str(op).replace(".", "_")

    def __call__(self, state: torch.Tensor, *args: Any, **kwargs: Any) -> Any:
        current = rng_state(self.device)
        _set_rng_state(self.device, state)
        try:
            return self.op(*args, **kwargs)
        finally:
            _set_rng_state(self.device, current)


class _CaptureState:
    """``rng_state(device)``: an FX target with a stable name."""

    __module__ = __name__

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.__name__ = f"rng_state_{device.type}"

    def __call__(self) -> torch.Tensor:
        return rng_state(self.device)


def _device_of(fx_node: Any) -> torch.device:
    for t in pytree.tree_leaves(fx_node.meta.get("val")):
        if isinstance(t, torch.Tensor):
            return t.device
    return torch.device("cpu")


def _fake_state(fx_node: Any) -> Any:
    """A fake tensor standing for a generator state (for the saved values' metadata)."""
    for t in pytree.tree_leaves(fx_node.meta.get("val")):
        mode = getattr(t, "fake_mode", None)
        if mode is not None:
            with mode:
                return torch.empty(rng_state(torch.device("cpu")).numel(), dtype=torch.uint8)
    return None


def _check_schedule(jg: JointRematGraph, schedule: np.ndarray) -> None:
    n = jg.graph.n
    if schedule.ndim != 1 or schedule.size == 0 or schedule.min() < 0 or schedule.max() >= n:
        raise InvalidInputError(f"a schedule must be a 1-D sequence of node ids in 0..{n - 1}")
    firsts = {}
    for step, v in enumerate(schedule.tolist()):
        firsts.setdefault(v, step)
    if len(firsts) != n:
        missing = next(v for v in range(n) if v not in firsts)
        raise InvalidInputError(f"the schedule never computes node {missing}")
    # the boundary and the sink cost nothing, so a solver may repeat them: the step is cut at
    # the first boundary (the forward outputs are returned there), later ones are no-ops
    random_firsts = [firsts[v] for v in sorted(jg.random)]
    if random_firsts != sorted(random_firsts):
        raise InvalidInputError(
            "the schedule reorders the first computations of random ops; their draws would "
            "differ from eager's"
        )


def schedule_modules(jg: JointRematGraph, schedule: Sequence[int] | np.ndarray) -> tuple[Any, Any]:
    """The forward and backward ``GraphModule``s that run ``schedule`` (see the module doc).

    ``schedule``: node ids of ``jg.graph`` (boundary and sink included once each), valid for
    :func:`~frugalml.remat.evaluate.evaluate_schedule`. Raises :class:`InvalidInputError` for a
    schedule that is not one of ``jg``.
    """
    sched = np.asarray(schedule, dtype=np.int64)
    _check_schedule(jg, sched)
    joint = jg.joint
    counts = Counter(sched.tolist())
    seq = torch.fx.Graph()  # the whole step in schedule order, split below
    env: dict[Any, Any] = {}  # joint FX node -> its current computation in `seq`
    folded: dict[Any, Any] = {}  # folded joint FX node -> its emitted copy (this phase)
    states: dict[Any, Any] = {}  # random joint FX node -> node holding its generator state
    placeholders = [n for n in joint.graph.nodes if n.op == "placeholder"]
    for ph in placeholders:
        env[ph] = seq.node_copy(ph)
    for node in joint.graph.nodes:
        if node.op == "get_attr":
            env[node] = seq.node_copy(node)

    def value(a: Any) -> Any:
        if a in env:
            return env[a]
        if a in folded:
            return folded[a]
        if a not in jg.owner:
            raise InvalidInputError(f"{a.name} is read before it is computed in this schedule")
        folded[a] = seq.node_copy(a, value)
        return folded[a]

    boundary_at: Any = None
    fw_outputs: list[Any] = []
    out_node = next(iter(joint.graph.find_nodes(op="output")))
    outputs = list(out_node.args[0])
    seen: Counter[int] = Counter()
    for v in sched.tolist():
        if v == jg.sink:
            continue
        if v == jg.boundary:
            if boundary_at is not None:
                continue
            fw_outputs = [value(o) if isinstance(o, torch.fx.Node) else o
                          for o in outputs[: jg.num_fwd_outputs]]  # fmt: skip
            boundary_at = len(seq.nodes)
            folded.clear()
            continue
        fx_node = jg.nodes[v]
        if fx_node is None:  # an op's scratch memory: allocated by the op itself
            continue
        seen[v] += 1
        if seen[v] > 1:
            for stale in [f for f in folded if _depends_on(f, fx_node, jg)]:
                del folded[stale]
        if v in jg.random and counts[v] > 1:
            device = _device_of(fx_node)
            if seen[v] == 1:
                states[fx_node] = seq.call_function(_CaptureState(device))
                states[fx_node].meta["val"] = _fake_state(fx_node)
                env[fx_node] = seq.node_copy(fx_node, value)
            else:
                args, kwargs = pytree.tree_map(
                    lambda a: value(a) if isinstance(a, torch.fx.Node) else a,
                    (fx_node.args, fx_node.kwargs),
                )
                new = seq.call_function(
                    _Replay(fx_node.target, device), (states[fx_node], *args), kwargs
                )
                new.meta = dict(fx_node.meta)
                env[fx_node] = new
        else:
            env[fx_node] = seq.node_copy(fx_node, value)
    bw_outputs = [value(o) if isinstance(o, torch.fx.Node) else o
                  for o in outputs[jg.num_fwd_outputs:]]  # fmt: skip
    descs = out_node.meta.get("desc")
    mutated = {env[ph] for ph in _mutated_inputs(placeholders, descs)}
    return _split(joint, seq, boundary_at, fw_outputs, bw_outputs, descs, mutated)


def _mutated_inputs(placeholders: list[Any], descs: Any) -> list[Any]:
    """The placeholders whose tensors the runtime updates after the forward (buffers such as
    BatchNorm's running statistics), from the forward outputs' AOTAutograd descriptors."""
    from torch._functorch._aot_autograd.descriptors import InputMutationAOTOutput

    targets = [d.mutated_input for d in descs or () if isinstance(d, InputMutationAOTOutput)]
    return [ph for ph in placeholders if ph.meta.get("desc") in targets]


def _reads_buffer_safely(node: Any, buffer: Any) -> bool:
    """Whether recomputing ``node`` after ``buffer`` was updated gives the same tensors the
    step reads: BatchNorm in training mode normalises with the batch statistics, and only its
    (then unused) running-statistics outputs read the buffers."""
    op = getattr(torch.ops.aten, "_native_batch_norm_legit_functional", None)
    return op is not None and node.target is op.default and bool(node.args[5])


def _depends_on(folded_node: Any, base: Any, jg: JointRematGraph) -> bool:
    """Whether the folded node's emitted copy reads (through other folded nodes) ``base``."""
    stack = [folded_node]
    while stack:
        f = stack.pop()
        for a in f.all_input_nodes:
            if a is base:
                return True
            if a in jg.owner:
                stack.append(a)
    return False


def _split(
    joint: Any,
    seq: Any,
    boundary_at: int,
    fw_outputs: list,
    bw_outputs: list,
    descs: Any,
    mutated: set[Any],
) -> tuple[Any, Any]:
    """Cut the scheduled graph ``seq`` at its ``boundary_at``-th node into the forward and the
    backward module (saved values: forward nodes read after the cut). ``mutated``: the
    placeholders updated after the forward; a recomputation after the cut that reads one must
    not depend on its value (checked), and it is saved without autograd's version check."""
    from torch._functorch._aot_autograd.descriptors import SavedForBackwardsAOTOutput

    nodes = list(seq.nodes)
    before, after = nodes[:boundary_at], nodes[boundary_at:]
    in_before = set(before)
    # a getitem after the cut of an op before it moves before the cut: the tensor is saved,
    # never the op's tuple (it holds no more memory than the tuple did)
    for node in list(after):
        if node.target is operator.getitem and node.args[0] in in_before:
            after.remove(node)
            before.append(node)
            in_before.add(node)
    # computations after the cut that nothing after it reads (e.g. a forward output the
    # schedule recomputed to hold it to the end of the step; the caller already has it)
    live = {o for o in bw_outputs if isinstance(o, torch.fx.Node)}
    kept = []
    for node in reversed(after):
        if node in live or _is_tangent(node):
            kept.append(node)
            live.update(node.all_input_nodes)
    after = kept[::-1]
    saved: list[Any] = []
    taken: set[Any] = set()
    for node in after:
        for a in node.all_input_nodes:
            if a in mutated and not _reads_buffer_safely(node, a):
                raise InvalidInputError(
                    f"the schedule recomputes {node.target} ({node.name}) in the backward, "
                    f"after the buffer it reads ({a.name}) was updated by the forward; raise "
                    "the budget so that it is not recomputed there"
                )
            if a in in_before and a not in taken and not _is_tangent(a):
                taken.add(a)
                saved.append(a)
    for o in bw_outputs:
        if isinstance(o, torch.fx.Node) and o in in_before and o not in taken:
            taken.add(o)
            saved.append(o)
    position = {node: k for k, node in enumerate(nodes)}
    # AOTAutograd's convention: tensors with version-counter checks first, then the others
    saved.sort(key=lambda node: (node in mutated, position[node]))

    fw = torch.fx.Graph()
    fenv: dict[Any, Any] = {}
    for node in before:
        if _is_tangent(node):
            continue
        fenv[node] = fw.node_copy(node, lambda a: fenv[a])
    for s in saved:
        if s in mutated:
            fenv[s].meta = {**s.meta, "saved_tensor_with_no_vc_check": True}
    fw_out = fw.output(tuple(fenv[o] if isinstance(o, torch.fx.Node) else o
                             for o in [*fw_outputs, *saved]))  # fmt: skip
    n_fw = len(fw_outputs)
    if descs is not None:
        saved_descs = [SavedForBackwardsAOTOutput(i) for i in range(len(saved))]
        fw_out.meta["desc"] = list(descs)[:n_fw] + saved_descs

    bw = torch.fx.Graph()
    benv: dict[Any, Any] = {}
    for s in saved:
        benv[s] = bw.placeholder(s.name)
        benv[s].meta = dict(s.meta)
    for node in before:
        if _is_tangent(node):
            benv[node] = bw.node_copy(node)
    for node in after:
        benv[node] = bw.node_copy(node, lambda a: benv[a])
    bw_out = bw.output(tuple(benv[o] if isinstance(o, torch.fx.Node) else o for o in bw_outputs))
    if descs is not None:
        bw_out.meta["desc"] = list(descs)[n_fw:]
    fw.lint()
    bw.lint()
    return torch.fx.GraphModule(joint, fw), torch.fx.GraphModule(joint, bw)


def _is_tangent(node: Any) -> bool:
    return node.op == "placeholder" and "tangents" in str(node.target)
