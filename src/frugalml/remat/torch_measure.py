"""Memory and compute of aten ops, measured in the units of :mod:`frugalml.remat`.

The rules every PyTorch part of the area shares (:func:`~frugalml.remat.torch_graph.
extract_graph`, :func:`~frugalml.remat.execute.execute_schedule`, :func:`measure_graph` and
:func:`~frugalml.remat.torch_partitioner.partitioner_schedule`):

- **Storages.** A tensor's memory is its storage: :func:`storages` keys each non-empty
  storage by ``(device, data_ptr)`` with its ``nbytes``; two live tensors share a storage iff
  their keys are equal, so views cost nothing and keep their base alive.
  :class:`LiveStorages` counts the bytes of the distinct storages some held value uses,
  resident ones (parameters, buffers, inputs, constants) excluded.
- **Cost.** Per op, ``flops + BYTES_WEIGHT * bytes_moved``, floored at 1: the flops from
  :class:`torch.utils.flop_counter.FlopCounterMode` (plus :func:`flop_mapping`'s formulas of
  the fused CPU flash attention), ``bytes_moved`` = :func:`logical_bytes` of the inputs read
  plus the bytes of the storages the op allocates, 0 for an alias. :data:`BYTES_WEIGHT` = 8
  flops per byte is a round figure for the flops-to-bandwidth balance of current CPUs and of
  GPUs outside their matrix units. :func:`time_call` gives the measured alternative (median
  seconds of repeated runs).
- **Graphs.** :func:`measure_graph` runs an FX graph of aten ops once, op by op
  (:class:`MeasuringInterpreter`), with these rules.

Only the tensors' storages are counted, never the allocator's caching or workspaces.

Paper: the memory model is that of Bartan, Li, Teague, Lott, Dilkina, "Moccasin: Efficient
Tensor Rematerialization for Neural Networks" (ICML 2023, arXiv 2304.14463), Sec. 2; per-op
costs of a training graph after Jain et al., "Checkmate: Breaking the Memory Wall with Optimal
Tensor Rematerialization" (MLSys 2020).
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .._optional import require
from .._results import ResultRepr

require("torch", what="the PyTorch rematerialisation front end", extra="remat")

import torch  # noqa: E402
import torch.fx  # noqa: E402
from torch.utils import _pytree as pytree  # noqa: E402

__all__ = [
    "BYTES_WEIGHT",
    "GraphMeasurement",
    "LiveStorages",
    "MeasuringInterpreter",
    "StorageKey",
    "StorageTracker",
    "flop_mapping",
    "logical_bytes",
    "measure_graph",
    "storages",
    "tensor_leaves",
    "time_call",
]

#: flop-equivalents charged per byte a node reads or writes (``cost="flops"``)
BYTES_WEIGHT = 8.0

#: ``(device, data_ptr)`` of a storage
StorageKey = tuple[str, int]


def tensor_leaves(value: Any) -> list[Any]:
    """The tensors among the pytree leaves of ``value`` (a tensor, tuple, list, dict...)."""
    return [x for x in pytree.tree_leaves(value) if isinstance(x, torch.Tensor)]


def storages(value: Any) -> dict[StorageKey, int]:
    """``{(device, data_ptr): nbytes}`` of the non-empty storages of the tensors in ``value``.

    Two live tensors share a storage iff their keys are equal."""
    out: dict[StorageKey, int] = {}
    for t in tensor_leaves(value):
        st = t.untyped_storage()
        nb = int(st.nbytes())
        if nb > 0:
            out[(str(t.device), int(st.data_ptr()))] = nb
    return out


def logical_bytes(value: Any) -> int:
    """``sum(numel * element_size)`` over the tensors in ``value`` (what an op reads of them,
    whatever their storages hold)."""
    return sum(int(t.numel()) * t.element_size() for t in tensor_leaves(value))


def flop_mapping() -> dict[Any, Callable[..., int]]:
    """Flop formulas FlopCounterMode lacks (the CPU flash attention and its backward)."""
    from torch.utils import flop_counter as fc

    aten = torch.ops.aten

    def fwd(q: Any, k: Any, v: Any, *args: Any, out_shape: Any = None, **kw: Any) -> int:
        return int(fc.sdpa_flop_count(q, k, v))

    def bwd(g: Any, q: Any, k: Any, v: Any, *args: Any, out_shape: Any = None, **kw: Any) -> int:
        return int(fc.sdpa_backward_flop_count(g, q, k, v))

    mapping: dict[Any, Callable[..., int]] = {}
    for op, formula in (
        ("_scaled_dot_product_flash_attention_for_cpu", fwd),
        ("_scaled_dot_product_flash_attention_for_cpu_backward", bwd),
    ):
        packet = getattr(aten, op, None)
        if packet is not None and packet not in fc.flop_registry:
            mapping[packet] = formula
    return mapping


def time_call(fn: Callable[[], Any], repeats: int, sync: bool) -> float:
    """Median wall time in seconds of ``repeats`` calls of ``fn`` after one warm-up call
    (``sync``: ``torch.cuda.synchronize()`` around each, for CUDA ops)."""
    times = []
    fn()  # warm-up
    for _ in range(repeats):
        if sync:
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        fn()
        if sync:
            torch.cuda.synchronize()
        times.append(time.perf_counter() - t0)
    return float(statistics.median(times))


class LiveStorages:
    """Reference-counted distinct live storages: the bytes of every storage some held value
    uses, each counted once (views share their base's). Keys are any hashable (a node, a value
    name); ``add`` replaces what a key held. ``O(#storages of the value)`` per add or remove."""

    def __init__(self, resident: set[StorageKey]) -> None:
        self.resident = resident
        self.count: dict[StorageKey, int] = {}
        self.bytes = 0
        self.held: dict[Hashable, dict[StorageKey, int]] = {}  # key -> {storage: nbytes}

    def add(self, key: Hashable, value: Any) -> None:
        self.remove(key)
        st = {p: b for p, b in storages(value).items() if p not in self.resident}
        self.held[key] = st
        for p, b in st.items():
            c = self.count.get(p, 0)
            if c == 0:
                self.bytes += b
            self.count[p] = c + 1

    def remove(self, key: Hashable) -> None:
        st = self.held.pop(key, None)
        if st is None:
            return
        for p, b in st.items():
            c = self.count[p] - 1
            if c == 0:
                del self.count[p]
                self.bytes -= b
            else:
                self.count[p] = c


class StorageTracker(LiveStorages):
    """:class:`LiveStorages` shared by the runs of several graphs (a forward and its
    backward), which also holds a reference to every held value, so that no storage is freed
    (and its address reused) while it is logically live, and records the live bytes on
    request (:attr:`profile`)."""

    def __init__(self, resident: set[StorageKey]) -> None:
        super().__init__(resident)
        self.values: dict[str, Any] = {}
        self.profile: list[int] = []

    def add(self, key: str, value: Any) -> None:
        super().add(key, value)
        self.values[key] = value

    def remove(self, key: str) -> None:
        super().remove(key)
        self.values.pop(key, None)

    def remove_prefix(self, prefix: str) -> None:
        """Release every value whose key starts with ``prefix`` (one graph's values)."""
        for key in [k for k in self.held if k.startswith(prefix)]:
            self.remove(key)

    def record(self) -> int:
        """Append the live bytes to :attr:`profile` and return them."""
        self.profile.append(self.bytes)
        return self.bytes


class MeasuringInterpreter(torch.fx.Interpreter):
    """Runs a graph op by op, charging ``extract_graph``'s cost and tracking live storages.

    A value is held under ``prefix + name`` from its creation until its last use by an op;
    uses by the output node do not count (outputs are copied out), except for the values named
    in ``keep`` (saved for another graph), which stay held until the caller releases them.
    """

    def __init__(
        self,
        gm: Any,
        tracker: StorageTracker,
        prefix: str,
        keep: set[str],
        bytes_weight: float,
    ) -> None:
        super().__init__(gm, garbage_collect_values=True)
        self.tracker = tracker
        self.prefix = prefix
        self.bytes_weight = float(bytes_weight)
        self.flop_map = flop_mapping()
        self.costs: dict[str, float] = {}
        self.peak = 0
        nodes = list(gm.graph.nodes)
        last: dict[str, str] = {}
        for nd in nodes:
            if nd.op != "output":
                for a in nd.all_input_nodes:
                    last[a.name] = nd.name
        self.release_after: dict[str, list[str]] = {nd.name: [] for nd in nodes}
        for nd in nodes:
            if nd.op != "output" and nd.name not in keep:
                self.release_after[last.get(nd.name, nd.name)].append(nd.name)

    def run_node(self, n: Any) -> Any:
        if n.op == "output":
            return super().run_node(n)
        if n.op == "placeholder":
            out = super().run_node(n)
            self.tracker.add(self.prefix + n.name, out)
        elif n.op == "get_attr":  # a constant of the graph module: resident
            out = super().run_node(n)
            self.tracker.resident.update(storages(out))
        else:
            from torch.utils.flop_counter import FlopCounterMode

            ins = [self.env[a] for a in n.all_input_nodes]
            with FlopCounterMode(display=False, custom_mapping=self.flop_map) as counter:
                out = super().run_node(n)
            # extract_graph's per-node cost, term by term: a node that allocates nothing and
            # shares an input's storage is an alias and moves no bytes
            in_ptrs: set[StorageKey] = set()
            for v in ins:
                in_ptrs.update(storages(v))
            st = storages(out)
            fresh = sum(nb for p, nb in st.items() if p not in in_ptrs)
            is_alias = bool(tensor_leaves(out)) and fresh == 0 and bool(st)
            moved = 0.0 if is_alias else float(sum(logical_bytes(v) for v in ins) + fresh)
            flops = float(counter.get_total_flops())
            self.costs[n.name] = max(flops + self.bytes_weight * moved, 1.0)
            self.tracker.add(self.prefix + n.name, out)
            self.peak = max(self.peak, self.tracker.record())
        for name in self.release_after[n.name]:
            self.tracker.remove(self.prefix + name)
        return out


@dataclass(frozen=True, eq=False, repr=False)
class GraphMeasurement(ResultRepr):
    """One measured run of an FX graph (see :func:`measure_graph`).

    Attributes
    ----------
    peak_bytes:
        Peak of distinct live non-resident storage bytes after an op.
    costs:
        ``{fx node name: cost}`` of every ``call_function`` node, in graph order, by
        ``extract_graph``'s ``cost="flops"`` model.
    profile:
        ``(ops,)`` int64, live bytes after each op.
    """

    peak_bytes: int
    costs: dict[str, float]
    profile: np.ndarray = field(repr=False)

    @property
    def total_cost(self) -> float:
        """Sum of the per-op costs."""
        return float(sum(self.costs.values()))

    def summary(self) -> str:
        return (
            f"measured {len(self.costs)} ops: peak {self.peak_bytes} B of live storage, "
            f"total cost {self.total_cost:g}"
        )


def measure_graph(
    gm: Any,
    args: Sequence[Any],
    *,
    resident: Sequence[Any] | None = None,
    bytes_weight: float = BYTES_WEIGHT,
) -> GraphMeasurement:
    """Run an FX graph of aten ops once, in its node order, and measure it.

    The memory rule is that of :mod:`frugalml.remat.execute` at the granularity of FX values:
    a value is held from its creation until its last use by an op (outputs are copied out
    right after their last use, or their own step); the live bytes after each op are the sum
    over the distinct storages held, without the storages of ``resident`` (default: all of
    ``args``) and of the module's constants. The cost of each op is ``extract_graph``'s
    ``cost="flops"`` formula, so ``measure_graph(tg.gm, tg.flat_inputs(model, x)).costs`` are
    the node costs of ``tg.graph``. Runs under ``torch.no_grad()``; ``O(ops)`` op executions.

    Unlike the extracted :class:`~frugalml.remat.graph.RematGraph`, where a multi-output op
    (e.g. ``native_batch_norm``) is one node that holds all its outputs until the last use of
    any of them, each ``getitem`` here holds only its own storage, so the peak is at most the
    executor's plain-order peak and lower when a small output of a large tuple is kept long.
    """
    args = list(args)
    resident_ptrs: set[StorageKey] = set()
    for v in args if resident is None else resident:
        resident_ptrs.update(storages(v))
    tracker = StorageTracker(resident_ptrs)
    interp = MeasuringInterpreter(gm, tracker, "", set(), bytes_weight)
    with torch.no_grad():
        interp.run(*args)
    profile = np.asarray(tracker.profile, dtype=np.int64)
    profile.setflags(write=False)
    return GraphMeasurement(peak_bytes=int(interp.peak), costs=interp.costs, profile=profile)
