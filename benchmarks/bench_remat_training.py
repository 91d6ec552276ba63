"""Training under a memory budget: frugalml's ``rematerialize`` (MOCCASIN schedules) against what
PyTorch users already have, in the same run, on real architectures, measured by the allocator.

For each model of :mod:`remat_models` (ResNet-18 and MobileNetV2 from their papers, GPT-2 and
BERT with 4 layers from ``transformers`` default configs, dropout on), one training step
(gradients to ``None``, forward, loss, backward) of every method of :mod:`remat_baselines`
(eager, checkpoint-per-block, selective activation checkpointing, the min-cut partitioner at
several ``activation_memory_budget`` values) is measured by
:func:`remat_baselines.measure`: allocator peak above the step's start, FLOPs
(``FlopCounterMode``: recomputed matmuls and convolutions count again), median time of the SGD
steps, and the parameters after them compared with eager's. Then ``rematerialize`` runs:

- at the plain order (``budget=1.0``): its step-time overhead over eager, and the modelled
  plain peak against eager's allocator peak (the memory model's fidelity);
- at the *measured* peak of every baseline, as a budget in bytes ("MOCCASIN at the same
  memory"): its measured peak, FLOPs and time, so the FLOPs of two methods at one memory level
  compare directly;
- below the lowest baseline, at fractions of it, until no schedule is found: how low it goes.

Sizes: full (the report's full run): ResNet-18 and MobileNetV2 at 224x224, batch 8; GPT-2 and
BERT with 4 layers at sequence length 512, batch 2 (at 128 their gradients, not activations,
make the peak: no method lowers it); 60 s per solve. Quick (the report's default): ResNet-18
at 96x96, batch 4 (gradient-dominated: a smoke-sized comparison), 10 s per solve. Tiny (the
smoke test): the same model, min-cut at 0.5 only, 5 s per solve, one step.

Usage: python benchmarks/bench_remat_training.py [--quick | --tiny] [--models a,b]
[--time-limit S] [--out DIR]. Torch runs on one thread. Writes DIR/remat-training.json and
remat-training_peak_vs_flops.png (DIR: benchmarks/results) and prints the tables.
"""

from __future__ import annotations

import copy
import sys
import time
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

import remat_baselines as RB
import remat_models as RM
from frugalml.progress import Progress
from frugalml.remat import remat_plans, rematerialize
from frugalml.report.output import optional_figures, pyplot
from frugalml.report.results import MET, NOT_CHECKED, NOT_MET, BenchResult, Table
from frugalml.report.script import bench_main, bench_parser

__all__ = ["REPORT_AREA", "REPORT_TITLE", "main", "run"]

REPORT_AREA = "remat-training"
REPORT_TITLE = "Training under a memory budget: MOCCASIN vs checkpointing and min-cut"
RESULTS = Path(__file__).resolve().parent / "results"

THREADS = RB.THREADS
LOWER = (0.9, 0.8, 0.7)  # fractions of the lowest baseline's peak tried below it
BUDGETS = (0.5, 0.1)  # the min-cut partitioner's activation_memory_budget values


def _example(batch: Any) -> Any:
    """The forward's inputs of a batch (positional tensor, or the HF keyword arguments)."""
    return batch if isinstance(batch, dict) else batch[0]


def moccasin(budget: float, *, time_limit: float) -> RB.Factory:
    """The factory of ``frugalml.remat.rematerialize`` at ``budget`` (fraction or bytes); the
    step's FLOPs are those of the schedule it runs (``plan.flops``: FlopCounterMode makes
    ``torch.compile`` fall back to eager)."""

    def factory(model, loss_fn, batch, blocks):
        clone = copy.deepcopy(model)
        torch._dynamo.reset()
        t0 = time.perf_counter()
        runner = rematerialize(clone, _example(batch), budget=budget, time_limit=time_limit)
        label = f"moccasin {budget / 2**20:.1f} MiB" if budget > 1 else f"moccasin {budget:g}"
        step = RB.TrainStep(label, clone, runner, loss_fn, batch)
        plan = remat_plans(clone)[0]
        step.graph_flops.append(plan.flops)
        step.info.update(
            modelled_peak_bytes=plan.peak_bytes,
            budget_bytes=plan.budget_bytes,
            modelled_plain_bytes=plan.plain_peak_bytes,
            nodes=plan.nodes,
            folded=plan.folded,
            solve_seconds=plan.solve_seconds,
            solver_status=plan.status,
            random_recomputed=plan.random_recomputed,
        )
        step.notes.append(f"trace+solve {time.perf_counter() - t0:.1f} s, {plan.status}")
        return step

    return factory


def _moccasin_row(budget, spec, batch, repeats, eager, eager_params, dropout, time_limit, say):
    rec = RB.run_method(f"moccasin {budget:g}", moccasin(budget, time_limit=time_limit), spec,
                        batch, repeats, eager_params, dropout, say)  # fmt: skip
    RB.add_ratios(rec, eager)
    rec.pop("_params", None)
    return rec


def run_model(
    workload: str,
    *,
    time_limit: float,
    repeats: int,
    budgets: tuple[float, ...] = BUDGETS,
    lower: tuple[float, ...] = LOWER,
    say=print,
) -> list[dict]:
    """The baselines of :func:`remat_baselines.run` and MOCCASIN at the plain order, at each
    baseline's measured peak (calibrated: when the measured peak exceeds the target, solved
    once more at ``budget * target / measured``) and below the lowest one."""
    records = RB.run([workload], budgets=budgets, repeats=repeats, say=say, keep_params=True)
    records = records["records"]
    eager = next(r for r in records if r["method"] == "eager")
    eager_params = eager.pop("_params")  # after the same SGD steps: the reference
    spec, batch = RM.build(workload)
    dropout = RM.WORKLOADS[workload].dropout
    kw = dict(spec=spec, batch=batch, repeats=repeats, eager=eager, eager_params=eager_params,
              dropout=dropout, time_limit=time_limit, say=say)  # fmt: skip
    plain = _moccasin_row(1.0, **kw)
    plain["method"] = "moccasin plain"
    records.append(plain)
    levels = sorted({r["peak_bytes"] for r in records
                     if r.get("status") == "ok" and r["method"] != "eager"
                     and r["peak_bytes"] < eager["peak_bytes"]})  # fmt: skip
    targets = [(v, "same memory") for v in reversed(levels)]
    if levels:
        targets += [(int(f * levels[0]), "below every baseline") for f in lower]
    for target, why in targets:
        rec = _moccasin_row(target, **kw)
        if rec["status"] == "ok" and rec["peak_bytes"] > target:
            retry = _moccasin_row(int(target * target / rec["peak_bytes"]), **kw)
            if retry["status"] == "ok" and retry["peak_bytes"] < rec["peak_bytes"]:
                rec = retry
        rec.update(target_bytes=target, target=why, method=f"moccasin @ {target / 2**20:.1f} MiB")
        records.append(rec)
        say(f"  {rec['method']}: {_brief(rec)}")
        if rec["status"] != "ok" and why == "below every baseline":
            break
    for r in records:
        r.setdefault("model", workload)
        r.setdefault("workload", RM.WORKLOADS[workload].describe())
    return records


def _brief(rec: dict) -> str:
    if rec.get("status") != "ok":
        return rec.get("error", "failed")
    return (
        f"peak {rec['peak_bytes'] / 2**20:.1f} MiB, {rec['flops'] / 1e9:.2f} GFLOP, "
        f"{rec['median_seconds'] * 1e3:.0f} ms, params diff {rec.get('params_rel_diff', 0):.1e}"
    )


COLUMNS = ("model", "method", "peak MiB", "peak / eager", "GFLOP", "FLOP overhead %", "step ms",
           "time / eager", "params vs eager", "solve s")  # fmt: skip


def _row(r: dict) -> tuple:
    if r.get("status") != "ok":
        return (r["model"], r["method"], None, None, None, None, None, None,
                r.get("error", "failed")[:80], None)  # fmt: skip
    return (
        r["model"], r["method"], round(r["peak_bytes"] / 2**20, 1), round(r["peak_ratio"], 3),
        round(r["flops"] / 1e9, 2), round(100 * r["flop_overhead"], 1),
        round(1e3 * r["median_seconds"]), round(r["time_ratio"], 2),
        f"{r.get('params_rel_diff', 0.0):.1e}", r.get("solve_seconds"),
    )  # fmt: skip


def goal(records: list[dict]) -> tuple[bool, list[str]]:
    """Per model: at every level a baseline reaches, MOCCASIN reaches it (measured) with fewer
    FLOPs, and it reaches a lower level than all of them."""
    ok, lines = True, []
    for model in dict.fromkeys(r["model"] for r in records):
        rs = [r for r in records if r["model"] == model and r.get("status") == "ok"]
        base = [r for r in rs if not r["method"].startswith("moccasin") and r["method"] != "eager"]
        moc = [r for r in rs if r["method"].startswith("moccasin") and "target_bytes" in r]
        eager = next(r for r in rs if r["method"] == "eager")
        beaten = 0
        for b in base:
            if b["peak_bytes"] >= eager["peak_bytes"]:
                beaten += 1  # no memory saved: nothing to match
                continue
            if any(m["peak_bytes"] <= b["peak_bytes"] and m["flops"] <= b["flops"] for m in moc):
                beaten += 1
        lowest_base = min((b["peak_bytes"] for b in base), default=eager["peak_bytes"])
        lowest = min((m["peak_bytes"] for m in moc), default=None)
        lower = lowest is not None and lowest < lowest_base
        ok &= beaten == len(base) and lower
        lines.append(
            f"{model}: matched {beaten}/{len(base)} baselines with <= FLOPs; lowest MOCCASIN "
            + ("none" if lowest is None else f"{lowest / 2**20:.1f} MiB")
            + f" vs lowest baseline {lowest_base / 2**20:.1f} MiB"
        )
    return ok, lines


def _figure(records: list[dict]) -> dict[str, Any]:
    plt = pyplot()
    models = list(dict.fromkeys(r["model"] for r in records))
    fig, axes = plt.subplots(1, len(models), figsize=(4.2 * len(models), 3.6), squeeze=False)
    for ax, model in zip(axes[0], models, strict=True):
        for r in records:
            if r["model"] != model or r.get("status") != "ok":
                continue
            moc = r["method"].startswith("moccasin")
            ax.scatter(r["peak_bytes"] / 2**20, 100 * r["flop_overhead"],
                       marker="o" if moc else "s", color="C0" if moc else "C3", s=22)  # fmt: skip
            if not moc:
                ax.annotate(r["method"], (r["peak_bytes"] / 2**20, 100 * r["flop_overhead"]),
                            fontsize=6)  # fmt: skip
        ax.set_title(model, fontsize=9)
        ax.set_xlabel("allocator peak (MiB)")
        ax.set_ylabel("extra FLOPs (%)")
    fig.suptitle("MOCCASIN (circles) vs PyTorch baselines (squares)", fontsize=9)
    fig.tight_layout()
    return {"peak_vs_flops": fig}


def run(
    *,
    quick: bool = True,
    tiny: bool = False,
    progress: Progress | None = None,
    models: list[str] | None = None,
    time_limit: float | None = None,
) -> BenchResult:
    """Full: the four full-size workloads; quick: two small ones; tiny: one (module doc)."""
    torch.set_num_threads(THREADS)
    say_progress = progress or (lambda s, f: None)
    if models is None:
        models = (["resnet18-quick"] if quick
                  else ["resnet18", "mobilenet_v2", "gpt2-long", "bert-long"])  # fmt: skip
    limit = time_limit or (5.0 if tiny else 10.0 if quick else 60.0)
    repeats = 1 if tiny else 5
    records: list[dict] = []
    for k, name in enumerate(models):
        fraction = k / len(models)
        say_progress(name, fraction)
        records += run_model(
            name,
            time_limit=limit,
            repeats=repeats,
            budgets=(0.5,) if tiny else BUDGETS,
            lower=(0.9,) if tiny else LOWER,
            say=lambda s, f=fraction: say_progress(s, f),
        )
    for r in records:
        r.pop("seconds", None)
    met, lines = goal(records)
    fidelity = []
    for model in dict.fromkeys(r["model"] for r in records):
        mine = [r for r in records if r["model"] == model]
        eager = next(r for r in mine if r["method"] == "eager")
        plain = next(
            (r for r in mine if r["method"] == "moccasin plain" and r.get("status") == "ok"), None
        )
        if plain is not None:
            fidelity.append(
                (
                    model,
                    round(eager["peak_bytes"] / 2**20, 1),
                    round(plain["modelled_plain_bytes"] / 2**20, 1),
                    round(plain["modelled_plain_bytes"] / eager["peak_bytes"], 3),
                    round(plain["peak_bytes"] / 2**20, 1),
                    round(plain["median_seconds"] / eager["median_seconds"], 3),
                )
            )
    steps_title = (
        "Training step per method (allocator peak above the step's start, FLOPs, median step "
        f"time of {repeats}, parameters after the SGD steps vs eager's)"
    )
    fidelity_columns = ("model", "eager peak MiB", "modelled plain MiB", "modelled / eager",
                        "ours plain, measured MiB", "ours plain time / eager")  # fmt: skip
    tables = (
        Table(steps_title, COLUMNS, [_row(r) for r in records]),
        Table("Memory model and plain-order overhead", fidelity_columns, fidelity),
    )
    status = NOT_CHECKED if quick else (MET if met else NOT_MET)
    headline = "; ".join(lines)
    return BenchResult(
        name="remat-training",
        title=REPORT_TITLE,
        headline=headline,
        status=status,
        tables=tables,
        figures=optional_figures(_figure, records),
        data={
            "records": records,
            "threads": THREADS,
            "time_limit": limit,
            "torch": torch.__version__,
        },
        mode="allocator peak, FLOPs, wall clock; one torch thread",
    )


def main(argv: list[str] | None = None) -> BenchResult:
    parser = bench_parser(f"{REPORT_TITLE} benchmark", RESULTS)
    parser.add_argument("--models", default=None, help="workloads of remat_models, comma-separated")
    parser.add_argument("--time-limit", type=float, default=None, help="seconds per solve")
    return bench_main(run, RESULTS, title=REPORT_TITLE, argv=argv, parser=parser,
                      run_kwargs=lambda a: {"models": a.models.split(",") if a.models else None,
                                            "time_limit": a.time_limit})  # fmt: skip


if __name__ == "__main__":
    main()
