"""What PyTorch users already have for activation memory, measured by the allocator.

Not a report area (no ``REPORT_AREA``): the training harness that issue 25's comparison runs
frugalml's rematerialisation against, in the same run, on the real architectures of
:mod:`remat_models`. Every method trains its own deep copy of the same model on the same batch;
one *training step* is: gradients set to ``None``, forward, loss, backward (no optimiser).

Methods (each a factory ``(model, loss_fn, batch, blocks) -> TrainStep``):

- :func:`eager`: plain autograd, every activation autograd saves is kept.
- :func:`checkpoint_per_block`: each block's ``forward`` is wrapped in
  ``torch.utils.checkpoint.checkpoint(..., use_reentrant=False)`` (Chen, Xu, Zhang, Guestrin,
  "Training Deep Nets with Sublinear Memory Cost", 2016): only the blocks' inputs are kept, each
  block is recomputed once in the backward. BatchNorm running statistics are updated twice
  (forward and recomputation), a known property of checkpointing; the parameters are not
  affected in train mode.
- :func:`selective_checkpointing`: the same per-block wrapping with
  ``context_fn = create_selective_checkpoint_contexts(policy)`` (PyTorch's selective activation
  checkpointing): the outputs of the matmul, convolution and attention ops
  (:data:`SAVE_OPS`) are saved (``MUST_SAVE``), every other op of the block is recomputed
  (``PREFER_RECOMPUTE``).
- :func:`min_cut` ``(budget)``: ``torch.compile`` with an AOTAutograd backend whose compilers
  run the FX graphs as they are (``aot_eager``-like: no Inductor, no fusion, so the memory
  difference is the partition's alone) and whose ``partition_fn`` is
  ``min_cut_rematerialization_partition`` under
  ``torch._functorch.config.activation_memory_budget = budget``. The graphs are called with
  AOTAutograd's boxed convention, so each saved tensor is freed at its last use in the
  backward (``frugalml.remat.training.boxed_call``, as ``rematerialize`` does; functorch's
  ``make_boxed_func`` would hold every saved tensor to the end of the backward and overstate
  the partitioner's peak). Inductor does work on this machine (a C++ compiler is installed)
  but took 17 s to compile a one-line function on these 2 cores; its fusion would also change
  the memory for reasons other than the partition.

:func:`measure` runs a step once to warm it up (``torch.compile`` compiles then), then measures
one step with :func:`frugalml.remat.torch_memory.allocator_peak` (the allocator's peak above
the level before the step, which holds the parameters, the buffers and the batch; gradients
are set to ``None`` first, so the step's own gradient buffers count in its peak), one step
under ``torch.utils.flop_counter.FlopCounterMode`` (the FLOPs of matmuls, convolutions and
attention, counted when they run: a recomputed convolution counts twice; recomputed pointwise
ops and normalisations count 0 FLOPs, so selective checkpointing shows no FLOP overhead; a
compiled method's FLOPs are counted on its forward and backward graphs instead, since under
``FlopCounterMode`` ``torch.compile`` falls back to eager), and the median wall-clock time of
``repeats`` steps (5 in the benchmark), each followed by an untimed SGD update, from
``torch.manual_seed(rng)``: the parameters after them, compared with eager's, check that every
method computes eager's gradients (:func:`train_params` does the same SGD steps alone).

Usage: python benchmarks/remat_baselines.py [--quick] [--models a,b] [--budgets 0.5,0.3,0.1]
[--repeats 5] [--out DIR]. Prints the table and writes DIR/remat_baselines.json (DIR:
benchmarks/results). Torch runs on 1 thread (:data:`THREADS`).
"""

from __future__ import annotations

import argparse
import copy
import functools
import os
import statistics
import sys
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

import remat_models
from frugalml.errors import InvalidInputError
from frugalml.remat.torch_memory import allocator_peak

__all__ = [
    "SAVE_OPS",
    "THREADS",
    "TrainStep",
    "checkpoint_per_block",
    "eager",
    "main",
    "measure",
    "min_cut",
    "params_diff",
    "run",
    "selective_checkpointing",
    "train_params",
]

#: torch intra-op threads of every measurement
THREADS = 1
RESULTS = Path(__file__).resolve().parent / "results"
FULL_MODELS = ("resnet18", "mobilenet_v2", "gpt2", "bert")
QUICK_MODELS = ("resnet18-quick", "mobilenet_v2-quick", "gpt2-quick", "bert-quick")
BUDGETS = (0.5, 0.3, 0.1)

_aten = torch.ops.aten
#: ops whose outputs selective checkpointing saves: matmuls, convolutions, attention
SAVE_OPS = frozenset(
    op
    for op in (
        _aten.mm.default,
        _aten.addmm.default,
        _aten.bmm.default,
        _aten.baddbmm.default,
        _aten.convolution.default,
        _aten._scaled_dot_product_flash_attention_for_cpu.default,
        _aten._scaled_dot_product_efficient_attention.default,
        _aten._scaled_dot_product_flash_attention.default,
        _aten._scaled_dot_product_cudnn_attention.default,
    )
)


@dataclass
class TrainStep:
    """One training step of one method: ``step()`` sets the gradients of ``model`` to None,
    computes ``loss_fn(runner, batch)`` and its backward, and returns the detached loss.

    ``model`` owns the parameters (a copy made for this method); ``runner`` is what the loss
    function calls (the model itself, or its ``torch.compile`` wrapper)."""

    method: str
    model: nn.Module
    runner: Any
    loss_fn: Callable[[Any, Any], torch.Tensor]
    batch: Any
    notes: list[str] = field(default_factory=list)
    #: FLOPs of each compiled graph (forward and backward) of a compiled method, counted on the
    #: graphs: under FlopCounterMode, torch.compile falls back to eager
    graph_flops: list[int] = field(default_factory=list)
    #: more fields for the method's record (e.g. what a solver decided)
    info: dict[str, Any] = field(default_factory=dict)

    def __call__(self) -> torch.Tensor:
        self.model.zero_grad(set_to_none=True)
        loss = self.loss_fn(self.runner, self.batch)
        loss.backward()
        return loss.detach()


Factory = Callable[[nn.Module, Callable, Any, Sequence[nn.Module]], TrainStep]


def _copy_with_blocks(model: nn.Module, blocks: Sequence[nn.Module]) -> tuple[nn.Module, list]:
    """A deep copy of ``model`` and its submodules at the positions of ``blocks``."""
    names = {id(m): name for name, m in model.named_modules()}
    missing = [i for i, b in enumerate(blocks) if id(b) not in names]
    if missing:
        raise InvalidInputError(f"blocks {missing} are not submodules of the model")
    clone = copy.deepcopy(model)
    return clone, [clone.get_submodule(names[id(b)]) for b in blocks]


def eager(model: nn.Module, loss_fn: Callable, batch: Any, blocks: Sequence[nn.Module]):
    """Plain autograd on a copy of ``model``."""
    clone, _ = _copy_with_blocks(model, blocks)
    return TrainStep("eager", clone, clone, loss_fn, batch)


def _wrap_blocks(blocks: Sequence[nn.Module], context_fn: Callable | None) -> None:
    from torch.utils.checkpoint import checkpoint

    for block in blocks:
        kwargs: dict[str, Any] = {"use_reentrant": False}
        if context_fn is not None:
            kwargs["context_fn"] = context_fn
        # an instance attribute: Module.__call__ (and its hooks) then runs the checkpoint
        block.forward = functools.partial(checkpoint, block.forward, **kwargs)


def checkpoint_per_block(
    model: nn.Module, loss_fn: Callable, batch: Any, blocks: Sequence[nn.Module]
) -> TrainStep:
    """Non-reentrant ``torch.utils.checkpoint`` around every block of a copy of ``model``."""
    clone, cblocks = _copy_with_blocks(model, blocks)
    _wrap_blocks(cblocks, None)
    return TrainStep("checkpoint per block", clone, clone, loss_fn, batch)


def _save_matmuls_policy(ctx: Any, op: Any, *args: Any, **kwargs: Any) -> Any:
    from torch.utils.checkpoint import CheckpointPolicy

    return CheckpointPolicy.MUST_SAVE if op in SAVE_OPS else CheckpointPolicy.PREFER_RECOMPUTE


def selective_checkpointing(
    model: nn.Module, loss_fn: Callable, batch: Any, blocks: Sequence[nn.Module]
) -> TrainStep:
    """Per-block selective activation checkpointing: :data:`SAVE_OPS` saved, the rest
    recomputed."""
    from torch.utils.checkpoint import create_selective_checkpoint_contexts

    clone, cblocks = _copy_with_blocks(model, blocks)
    _wrap_blocks(cblocks, functools.partial(create_selective_checkpoint_contexts,
                                            _save_matmuls_policy))  # fmt: skip
    return TrainStep("selective checkpointing", clone, clone, loss_fn, batch)


def _min_cut_backend(budget: float, graph_flops: list[int]) -> Any:
    from torch._dynamo.backends.common import aot_autograd
    from torch._functorch.partitioners import min_cut_rematerialization_partition

    from frugalml.remat.joint_graph import node_flops
    from frugalml.remat.training import boxed_call

    def partition(*args: Any, **kwargs: Any) -> Any:
        with torch._functorch.config.patch(activation_memory_budget=budget):
            return min_cut_rematerialization_partition(*args, **kwargs)

    def run_as_is(gm: torch.fx.GraphModule, example_inputs: Any) -> Any:
        graph_flops.append(sum(node_flops(n) for n in gm.graph.nodes if n.op == "call_function"))
        # the boxed convention that frees each saved tensor at its last use in the backward
        # (functorch's make_boxed_func keeps every argument alive to the end of the call)
        return boxed_call(gm)

    return aot_autograd(fw_compiler=run_as_is, bw_compiler=run_as_is, partition_fn=partition)


def _untrack_running_stats(model: nn.Module) -> int:
    """Make every BatchNorm of ``model`` normalise with batch statistics without updating
    running statistics (as ``track_running_stats=False``); returns how many."""
    n = 0
    for m in model.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            m.track_running_stats = False
            m.running_mean = m.running_var = m.num_batches_tracked = None
            n += 1
    return n


def min_cut(budget: float, *, bn_running_stats: bool = True) -> Factory:
    """The factory of ``torch.compile`` with PyTorch's min-cut partitioner at
    ``activation_memory_budget = budget`` (0 < budget <= 1).

    ``bn_running_stats=False`` stops the BatchNorm layers of the copy from tracking running
    statistics (train-mode outputs and gradients are unchanged): with budget < 1 the
    partitioner may save a BatchNorm's running mean for a recomputation in the backward, which
    the forward's in-place running-statistics update then invalidates ("one of the variables
    needed for gradient computation has been modified by an inplace operation", torch 2.13)."""
    if not (isinstance(budget, (int, float)) and 0 < budget <= 1):
        raise InvalidInputError(f"budget must be in (0, 1], got {budget!r}")

    def factory(model: nn.Module, loss_fn: Callable, batch: Any, blocks: Sequence[nn.Module]):
        clone, _ = _copy_with_blocks(model, blocks)
        name = f"min-cut {budget:g}"
        notes = []
        if not bn_running_stats and _untrack_running_stats(clone):
            name += " (BN stats off)"
            notes.append("BatchNorm running statistics not tracked")
        torch._dynamo.reset()  # a fresh compilation for this budget
        step = TrainStep(name, clone, clone, loss_fn, batch, notes)
        step.runner = torch.compile(clone, backend=_min_cut_backend(budget, step.graph_flops))
        return step

    return factory


def measure(
    step: Callable[[], Any], *, repeats: int = 3, sgd_lr: float | None = None, rng: int = 0
) -> dict[str, Any]:
    """Warm-up, allocator peak, FLOPs and median time of a training step (see the module
    docstring). ``step`` is a :class:`TrainStep` (its model's gradients are set to ``None``
    before the measured step) or any callable.

    The ``repeats`` timed steps run after ``torch.manual_seed(rng)``. With ``sgd_lr`` (a
    :class:`TrainStep` only), each is followed by an untimed SGD update ``p -= sgd_lr * grad``
    and the result has ``"params"``, the parameters after them: with ``repeats=5`` the same
    as :func:`train_params` ``(step, steps=5, lr=sgd_lr, rng=rng)``, at no extra step."""
    from torch.utils.flop_counter import FlopCounterMode

    if repeats < 1:
        raise InvalidInputError(f"repeats must be at least 1, got {repeats}")
    model = getattr(step, "model", None)
    if sgd_lr is not None and model is None:
        raise InvalidInputError("sgd_lr needs a TrainStep (a step with a .model to update)")

    def clear() -> None:
        if model is not None:
            model.zero_grad(set_to_none=True)

    with torch.random.fork_rng(devices=[]):
        t0 = time.perf_counter()
        step()  # warm-up: compilation, lazy initialisation
        first = time.perf_counter() - t0
        clear()
        peak = allocator_peak(step)
        clear()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # compiled steps run eagerly here
            with FlopCounterMode(display=False) as counter:
                step()
        flops = counter.get_total_flops()
        if getattr(step, "graph_flops", None):  # a compiled step: its graphs' FLOPs
            flops = sum(step.graph_flops)
        times = []
        torch.manual_seed(rng)
        for _ in range(repeats):
            clear()
            t0 = time.perf_counter()
            step()
            times.append(time.perf_counter() - t0)
            if sgd_lr is not None:
                _sgd_update(model, sgd_lr)
        clear()
    out = {
        "peak_bytes": peak.peak_bytes,
        "net_bytes": peak.net_bytes,
        "flops": int(flops),
        "median_seconds": statistics.median(times),
        "seconds": times,
        "first_seconds": first,
        "loss": float(peak.result) if isinstance(peak.result, torch.Tensor) else None,
    }
    if sgd_lr is not None:
        out["params"] = [p.detach().clone() for p in model.parameters()]
    return out


def _sgd_update(model: nn.Module, lr: float) -> None:
    with torch.no_grad():
        for p in model.parameters():
            if p.grad is not None:
                p.sub_(lr * p.grad)


def train_params(
    step: TrainStep, *, steps: int = 5, lr: float = 1e-3, rng: int = 0
) -> list[torch.Tensor]:
    """The parameters of ``step.model`` after ``steps`` plain SGD steps (``p -= lr * grad``),
    the global RNG seeded with ``rng`` first (dropout masks); the model is updated in place."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(rng)
        for _ in range(steps):
            step()
            _sgd_update(step.model, lr)
    step.model.zero_grad(set_to_none=True)
    return [p.detach().clone() for p in step.model.parameters()]


def params_diff(a: Sequence[torch.Tensor], b: Sequence[torch.Tensor]) -> float:
    """``max |a - b| / max(max |b|, 1e-12)`` over all the parameters (0 when equal)."""
    if len(a) != len(b):
        raise InvalidInputError(f"{len(a)} vs {len(b)} parameter tensors")
    num = max(float((x - y).abs().max()) for x, y in zip(a, b, strict=True))
    den = max(float(y.abs().max()) for y in b)
    return num / max(den, 1e-12)


#: the learning rate of the parameter check's SGD steps
SGD_LR = 1e-3
#: a method's parameters "equal" eager's when params_diff is at most this (float32 rounding
#: of a different but equivalent evaluation order, e.g. a compiled graph)
PARAMS_RTOL = 1e-5


def _methods(budgets: Sequence[float]) -> list[tuple[str, Factory]]:
    out: list[tuple[str, Factory]] = [
        ("eager", eager),
        ("checkpoint per block", checkpoint_per_block),
        ("selective checkpointing", selective_checkpointing),
    ]
    out += [(f"min-cut {b:g}", min_cut(b)) for b in budgets]
    return out


def _error(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0][:160] if text else ''}"


def run_method(name, factory, spec, batch, repeats, eager_params, dropout, say) -> dict:
    model, _, loss_fn, blocks = spec
    say(f"  {name}")
    record: dict[str, Any] = {"method": name}
    try:
        step = factory(model, loss_fn, batch, blocks)
        record["method"] = step.method
        record["notes"] = list(step.notes)
        record.update(step.info)
        record.update(measure(step, repeats=repeats, sgd_lr=SGD_LR))
        params = record.pop("params")
    except Exception as exc:  # a method that fails on a model is a result, not a crash
        record["status"] = "failed"
        record["error"] = _error(exc)
        return record
    record["status"] = "ok"
    if eager_params is None:
        record["params_rel_diff"] = 0.0
    else:
        record["params_rel_diff"] = params_diff(params, eager_params)
    record["params_equal"] = record["params_rel_diff"] <= PARAMS_RTOL
    record["params_check"] = "informative (dropout)" if dropout else "required"
    record["_params"] = params
    return record


def run(
    models: Sequence[str] = FULL_MODELS,
    *,
    budgets: Sequence[float] = BUDGETS,
    repeats: int = 5,
    rng: int = 0,
    say: Callable[[str], None] = lambda s: None,
    keep_params: bool = False,
) -> dict[str, Any]:
    """Every method on every model of ``models`` (names of :data:`remat_models.WORKLOADS`).

    Returns ``{"records": [...], "threads": THREADS, ...}``: one record per (model, method)
    with the measurements of :func:`measure`, ``status`` ("ok" or "failed" with ``error``),
    ``params_rel_diff`` / ``params_equal`` against eager after the ``repeats`` SGD steps
    (``params_check`` "required" for models without dropout, "informative (dropout)"
    otherwise), and the
    ratios to eager: ``peak_ratio`` and ``flop_overhead`` (extra FLOPs / eager's FLOPs).
    On a model with BatchNorm, a min-cut budget that fails is rerun with the running
    statistics off (:func:`min_cut`, ``bn_running_stats=False``). ``keep_params``: eager's
    record keeps its parameters after the SGD steps (``"_params"``), the reference of further
    methods."""
    torch.set_num_threads(THREADS)
    records = []
    for name in models:
        workload = remat_models.WORKLOADS[name]
        say(f"{name}: {workload.describe()}")
        spec, batch = remat_models.build(name, rng=rng)
        model = spec[0]
        n_params = sum(p.numel() for p in model.parameters())
        has_bn = any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in model.modules())
        base: dict | None = None
        for mname, factory in _methods(budgets):
            rec = run_method(mname, factory, spec, batch, repeats,
                              None if base is None else base["_params"], workload.dropout,
                              say)  # fmt: skip
            if base is None:
                if rec["status"] != "ok":
                    raise RuntimeError(f"eager failed on {name}: {rec['error']}")
                base = rec
            tries = [rec]
            if rec["status"] == "failed" and mname.startswith("min-cut") and has_bn:
                budget = float(mname.split()[-1])
                tries.append(run_method(f"{mname} (BN stats off)",
                                         min_cut(budget, bn_running_stats=False), spec,
                                         batch, repeats, base["_params"], workload.dropout,
                                         say))  # fmt: skip
            for r in tries:
                r.update(model=name, workload=workload.describe(), params=n_params,
                         param_bytes=4 * n_params)  # fmt: skip
                add_ratios(r, base)
                records.append(r)
        del base
    for r in records:
        if not keep_params or r["method"] != "eager":
            r.pop("_params", None)
    return {"records": records, "threads": THREADS, "budgets": list(budgets), "repeats": repeats}


def add_ratios(record: dict, eager: dict) -> None:
    """A successful record's ``peak_ratio``, ``flop_overhead`` and ``time_ratio`` to eager."""
    if record["status"] == "ok":
        record["peak_ratio"] = record["peak_bytes"] / eager["peak_bytes"]
        record["flop_overhead"] = record["flops"] / eager["flops"] - 1
        record["time_ratio"] = record["median_seconds"] / eager["median_seconds"]


def _mib(b: float | None) -> float | None:
    return None if b is None else round(b / 2**20, 1)


def table_rows(records: Sequence[dict]) -> list[tuple]:
    rows = []
    for r in records:
        if r["status"] != "ok":
            rows.append((r["model"], r["method"], _mib(r["param_bytes"]), "failed", None, None,
                         None, None, None, r["error"][:90]))  # fmt: skip
            continue
        rows.append((
            r["model"], r["method"], _mib(r["param_bytes"]), _mib(r["peak_bytes"]),
            round(r["peak_ratio"], 3),
            round(r["flops"] / 1e9, 2), round(100 * r["flop_overhead"], 1),
            round(r["median_seconds"], 3), round(r["time_ratio"], 2),
            f"{'equal' if r['params_equal'] else 'differ'} ({r['params_rel_diff']:.1e}; "
            f"{r['params_check']})" + (f"; {'; '.join(r['notes'])}" if r["notes"] else ""),
        ))  # fmt: skip
    return rows


COLUMNS = ("model", "method", "grads MiB", "peak MiB", "peak / eager", "GFLOP", "FLOP overhead %",
           "median s", "time / eager", "params after the SGD steps vs eager")  # fmt: skip


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    from frugalml.report.output import rich_table, save_result
    from frugalml.report.results import BenchResult, Table, machine_info

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="the -quick workloads")
    parser.add_argument("--models", default=None, help="comma-separated workload names")
    parser.add_argument("--budgets", default=",".join(map(str, BUDGETS)))
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--out", default=str(RESULTS))
    args = parser.parse_args(argv)
    models = (
        args.models.split(",") if args.models else (QUICK_MODELS if args.quick else FULL_MODELS)
    )
    budgets = [float(b) for b in args.budgets.split(",") if b]
    load_before = os.getloadavg()
    t0 = time.perf_counter()
    data = run(models, budgets=budgets, repeats=args.repeats,
               say=lambda s: print(s, file=sys.stderr, flush=True))  # fmt: skip
    seconds = time.perf_counter() - t0
    import transformers

    machine = machine_info() | {
        "torch_threads": THREADS,
        "transformers": transformers.__version__,
        "loadavg_before": load_before,
        "loadavg_after": os.getloadavg(),
    }
    note = (
        f"CPU, float32, torch.set_num_threads({THREADS}); peak: allocator peak above the "
        "level before the step (parameters, buffers, batch resident; the step's gradients "
        "count); FLOPs: FlopCounterMode (matmul/conv/attention only); time: median of "
        f"{args.repeats} steps after a warm-up, each followed by an untimed SGD update (lr "
        f"{SGD_LR:g}, same seed for every method); params: max|p - p_eager| / max|p_eager| "
        f"after those {args.repeats} SGD steps, equal when <= "
        f"{PARAMS_RTOL:g}. Load average before/after: {load_before[0]:.2f} / "
        f"{machine['loadavg_after'][0]:.2f} (2 cores shared: timings are noisy when high)."
    )
    table = Table("Activation-memory baselines: allocator peak, FLOPs, time", COLUMNS,
                  table_rows(data["records"]), note)  # fmt: skip
    result = BenchResult(
        name="remat_baselines",
        title="Rematerialisation baselines in PyTorch training",
        headline=f"{len(models)} models, {len(data['records'])} runs",
        tables=(table,),
        data=data,
        mode="allocator peak (torch profiler), wall clock",
        machine=machine,
        seconds=seconds,
    )
    from rich.console import Console

    Console(width=160).print(rich_table(table, width=160))
    print(note)
    paths = save_result(result, args.out)
    print(f"wrote {paths['json']} in {seconds:.0f} s")
    return data


if __name__ == "__main__":
    main()
