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

Usage: python benchmarks/remat_training.py [--quick] [--models a,b] [--time-limit S] [--out DIR]
(``--quick``: the small workloads). Torch runs on one thread. Writes DIR/remat_training.json
(DIR: benchmarks/results) and prints the table.
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
import time
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

import remat_baselines as RB
import remat_models as RM
from frugalml.remat import remat_plans, rematerialize

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
    if rec["status"] == "ok":
        rec["peak_ratio"] = rec["peak_bytes"] / eager["peak_bytes"]
        rec["flop_overhead"] = rec["flops"] / eager["flops"] - 1
        rec["time_ratio"] = rec["median_seconds"] / eager["median_seconds"]
    rec.pop("_params", None)
    return rec


def run_model(workload: str, *, time_limit: float, repeats: int, say=print) -> list[dict]:
    """The baselines of :func:`remat_baselines.run` and MOCCASIN at the plain order, at each
    baseline's measured peak (calibrated: when the measured peak exceeds the target, solved
    once more at ``budget * target / measured``) and below the lowest one."""
    records = RB.run([workload], budgets=BUDGETS, repeats=repeats, say=say)["records"]
    eager = next(r for r in records if r["method"] == "eager")
    spec, batch = RM.build(workload)
    dropout = RM.WORKLOADS[workload].dropout
    eager_params = RB.train_params(RB.eager(spec[0], spec[2], batch, spec[3]), steps=repeats,
                                   lr=RB.SGD_LR, rng=0)  # fmt: skip
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
        targets += [(int(f * levels[0]), "below every baseline") for f in LOWER]
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


def table(records: list[dict]) -> str:
    head = "model | method | peak MiB | vs eager | GFLOP | +FLOPs | step ms | vs eager | params"
    rows = [head]
    for r in records:
        if r.get("status") != "ok":
            rows.append(f"{r['model']} | {r['method']} | {r.get('error', 'failed')[:70]}")
            continue
        rows.append(
            f"{r['model']} | {r['method']} | {r['peak_bytes'] / 2**20:.1f} | "
            f"{r['peak_ratio']:.2f} | {r['flops'] / 1e9:.2f} | {100 * r['flop_overhead']:+.1f}% | "
            f"{r['median_seconds'] * 1e3:.0f} | {r['time_ratio']:.2f} | "
            f"{r.get('params_rel_diff', 0):.1e}"
        )
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--models", default=None)
    ap.add_argument("--time-limit", type=float, default=60.0)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--out", default=str(Path(__file__).resolve().parent / "results"))
    args = ap.parse_args(argv)
    torch.set_num_threads(THREADS)
    names = ["resnet18", "mobilenet_v2", "gpt2-long", "bert-long"]
    if args.quick:
        names = [n + "-quick" for n in names]
    if args.models:
        names = args.models.split(",")
    records: list[dict] = []
    for name in names:
        records += run_model(name, time_limit=args.time_limit, repeats=args.repeats)
    text = table(records)
    print(text)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    result = {"threads": THREADS, "time_limit": args.time_limit, "records": records,
              "torch": torch.__version__}  # fmt: skip
    tmp = out / "remat_training.json.tmp"
    tmp.write_text(json.dumps(result, indent=1, default=str))
    tmp.replace(out / "remat_training.json")
    return result


if __name__ == "__main__":
    main()
