"""Replay a rematerialisation schedule on a traced PyTorch training step.

:func:`execute_schedule` runs the FX graph of a :class:`~frugalml.remat.torch_graph.
TorchRematGraph` node by node in the order of a schedule (a node listed twice is recomputed)
and frees every value by the rule of :func:`~frugalml.remat.evaluate.evaluate_schedule`: the
value computed at step ``s`` is dropped right after its last use (in the graph's edges, which
include the storage-owner edges of views) before the node's next computation, or right after
step ``s`` if nothing uses it. It returns the loss, the gradients and the measured peak memory.

Measured memory. After each step (the output just produced included, before the frees of that
step) the executor sums ``untyped_storage().nbytes()`` over the *distinct* storages (by
``data_ptr``) of the tensors it holds. Resident values (parameters, buffers, inputs,
constants) are not counted, as in the graph. Graph outputs (the loss and the gradients) are
copied to a separate result list the moment they are computed and are not counted after their
step: the graph model, too, frees a value once its last graph consumer ran. With these rules
the measured peak equals the evaluator's predicted peak for the same schedule (the graph was
built from the same storages), except for the rare op whose output both allocates a storage and
aliases another one, where the executor may hold more.

Stale views. A view keeps its base's storage alive. When the graph frees a base computation
while a view of it is still logically held (the base is recomputed before the view's next
use), the executor drops its reference to the now stale view, and re-derives the view from the
current base when it is next read. Views allocate nothing and re-deriving one moves no data, so
this is not counted as a step; :attr:`ExecutionResult.rederived` says how often it happened.

On CUDA the result also carries ``torch.cuda.max_memory_allocated`` over the replay, relative to
the memory allocated when it started (allocator rounding and workspace included, so it is only
comparable, not equal, to the storage count).

Paper: Bartan et al., "Moccasin: Efficient Tensor Rematerialization for Neural Networks" (ICML
2023, arXiv 2304.14463), Sec. 2 (the memory model); extraction after Checkmate (Jain et al.,
MLSys 2020).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from .._optional import require
from .._results import ResultRepr
from ..errors import InvalidInputError
from .evaluate import ScheduleReport, evaluate_schedule
from .torch_graph import TorchRematGraph
from .torch_measure import LiveStorages, StorageKey, storages

require("torch", what="the PyTorch rematerialisation front end", extra="remat")

import torch  # noqa: E402
import torch.fx  # noqa: E402

__all__ = ["ExecutionResult", "execute_schedule"]


@dataclass(frozen=True, eq=False, repr=False)
class ExecutionResult(ResultRepr):
    """The outcome of replaying a schedule.

    Attributes
    ----------
    loss:
        The scalar loss tensor.
    grads:
        One entry per ``model.parameters()``: the gradient (the graph's output tensor, which
        may be a non-contiguous view), or ``None`` for a parameter that does not require one.
    peak_bytes:
        Measured peak of live (non-resident) storage bytes over the steps.
    profile:
        ``(steps,)`` int64, measured live bytes after each step.
    predicted_peak:
        The evaluator's peak for the same schedule (``report.peak_memory``).
    report:
        The evaluator's :class:`~frugalml.remat.evaluate.ScheduleReport`.
    steps, recomputations:
        Node executions, and how many of them were repeats.
    rederived:
        How many times a stale view was re-derived from its current base.
    cuda_peak_bytes:
        ``torch.cuda.max_memory_allocated`` over the replay minus the allocation at its start,
        or ``None`` when the inputs are not on a CUDA device.
    """

    loss: Any
    grads: list[Any]
    peak_bytes: int
    profile: np.ndarray
    predicted_peak: int
    report: ScheduleReport
    steps: int
    recomputations: int
    rederived: int
    cuda_peak_bytes: int | None

    def summary(self) -> str:
        cuda = "" if self.cuda_peak_bytes is None else f", CUDA peak {self.cuda_peak_bytes} B"
        return (
            f"executed {self.steps} steps ({self.recomputations} recomputations, "
            f"{self.rederived} views re-derived): measured peak {self.peak_bytes} B, predicted "
            f"{self.predicted_peak} B{cuda}; loss {float(self.loss):.6g}"
        )


def execute_schedule(
    tg: TorchRematGraph,
    schedule: Sequence[int] | np.ndarray,
    model: Any,
    example_inputs: Any,
) -> ExecutionResult:
    """Run ``tg``'s training step in the order ``schedule`` and measure its memory.

    Parameters
    ----------
    tg:
        From :func:`~frugalml.remat.torch_graph.extract_graph`.
    schedule:
        1-D sequence of node indices of ``tg.graph`` (repeats are recomputations), e.g. from a
        MOCCASIN or Checkmate solver, or ``np.arange(tg.n)`` for the plain order.
    model, example_inputs:
        The model (its current parameters and buffers are used; buffers are cloned, never
        written) and inputs of the same shapes and dtypes as at extraction.

    Raises :class:`InvalidInputError` if the schedule is not valid for ``tg.graph`` (checked by
    :func:`~frugalml.remat.evaluate.evaluate_schedule` first: out-of-range node, an input used
    before it is computed, a node never run), or if the model or inputs do not match the
    traced ones. Cost: ``O(len(schedule))`` op executions, plus
    ``O(sum of in-degrees + storages)`` bookkeeping; runs under ``torch.no_grad()``.
    """
    if not isinstance(tg, TorchRematGraph):
        raise InvalidInputError(
            f"tg must be a TorchRematGraph (from extract_graph), got {type(tg).__name__}"
        )
    report = evaluate_schedule(tg.graph, schedule)
    sched = np.asarray(schedule).astype(np.int64).reshape(-1)
    flat = tg.flat_inputs(model, example_inputs)
    resident = tg.resident_values(flat)
    graph = tg.graph
    n, steps = graph.n, int(sched.size)

    # end[s]: last step that reads the value computed at step s (same rule as the evaluator)
    latest = np.full(n, -1, dtype=np.int64)
    end = np.arange(steps, dtype=np.int64)
    for t in range(steps):
        v = int(sched[t])
        for u in graph.preds[v]:
            end[latest[u]] = t
        latest[v] = t
    frees: list[list[int]] = [[] for _ in range(steps)]
    for s in range(steps):
        frees[int(end[s])].append(s)

    fx_by_name = {nd.name: nd for nd in tg.gm.graph.nodes}
    fx_nodes = [fx_by_name[nm] for nm in tg.node_names]
    index = tg.node_index
    dependents: list[list[int]] = [[] for _ in range(n)]  # owner -> rederivable aliases
    for i in np.flatnonzero(tg.rederivable):
        for o in tg.owners[int(i)]:
            dependents[o].append(int(i))
    output_names = set(tg.outputs.names)
    resident_ptrs: set[StorageKey] = set()
    for value in resident.values():
        resident_ptrs.update(storages(value))

    env: dict[int, Any] = {}
    logical: set[int] = set()  # nodes whose latest computation is still held by the model
    live = LiveStorages(resident_ptrs)
    results: dict[str, Any] = {nm: resident[nm] for nm in output_names if nm in resident}
    profile = np.zeros(steps, dtype=np.int64)
    rederived = 0

    def run(i: int) -> Any:
        nd = fx_nodes[i]
        args = torch.fx.node.map_arg(nd.args, read)
        kwargs = torch.fx.node.map_arg(nd.kwargs, read)
        return nd.target(*args, **kwargs)

    def read(a: Any) -> Any:
        nonlocal rederived
        if a.name in resident:
            return resident[a.name]
        i = index[a.name]
        if i in env:
            return env[i]
        if not tg.rederivable[i]:  # pragma: no cover - guaranteed by the graph's edges
            raise RuntimeError(
                f"internal error: node {i} ({a.name}) is read but not held; please report"
            )
        value = run(i)
        rederived += 1
        if i in logical:
            env[i] = value
            live.add(i, value)
        return value

    cuda = any(isinstance(x, torch.Tensor) and x.is_cuda for x in flat)
    if cuda:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        cuda_base = torch.cuda.memory_allocated()

    with torch.no_grad():
        for t in range(steps):
            v = int(sched[t])
            out = run(v)
            env[v] = out
            logical.add(v)
            live.add(v, out)
            name = tg.node_names[v]
            if name in output_names:
                results[name] = out
            profile[t] = live.bytes
            for s in frees[t]:
                u = int(sched[s])
                logical.discard(u)
                if u in env:
                    del env[u]
                    live.remove(u)
                for a in dependents[u]:  # views of the freed storage are stale now
                    if a in env:
                        del env[a]
                        live.remove(a)
            del out

    cuda_peak = None
    if cuda:
        torch.cuda.synchronize()
        cuda_peak = int(torch.cuda.max_memory_allocated() - cuda_base)
    grads = [None if g is None else results[g] for g in tg.outputs.grads]
    return ExecutionResult(
        loss=results[tg.outputs.loss],
        grads=grads,
        peak_bytes=int(profile.max()),
        profile=profile,
        predicted_peak=report.peak_memory,
        report=report,
        steps=steps,
        recomputations=steps - n,
        rederived=rederived,
        cuda_peak_bytes=cuda_peak,
    )
