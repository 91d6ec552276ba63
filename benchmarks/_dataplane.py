"""Data-plane sections of the runtime benchmark: data placed once, bytes counted, a dead
worker is one erasure.

Not a report area of its own: ``bench_runtime.py`` runs these sections after its first-k
sections (``--dataplane-only`` runs only them and writes ``results/runtime_dataplane.json``).

Sections (each a table):

1. **Distributed least squares** (``distributed_lstsq``, A of n x d, q = 8 sketching workers)
   on every backend, 2 workers each, in the same run: wall time of the whole call (placing A
   and b included; executors started and warmed beforehand, untimed), bytes placed once,
   bytes per task, and the ratio of bytes per task to the task's own payload (the call
   without its data: function, sketch, seed; plus its d-vector result). The same tasks with
   A and b copied into every call (what every backend did before ``share``) are timed beside.
2. **Distributed Newton sketch** (logistic): per-iteration bytes per task and wall time on
   Dask and Ray against the thread executor.
3. **CodedMatVec**: 50 repeated ``A @ x`` calls on Ray and Dask (and the local pool): the
   coded blocks are placed at construction; per-call bytes and time against the first call,
   and against the blocks copied into every call.
4. **Crashes**: on every process backend, 16 tasks of which 2 call ``os._exit``; and
   ``coded_matmul`` with 10% of tasks crashing their worker, over 10 seeds.
5. **Simulated serverless** (256 workers, simulated clock with the communication model):
   coded ``A @ x`` vs uncoded wait-all, and distributed Newton first-k vs wait-all.
"""

from __future__ import annotations

import os
import statistics
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from frugalml.progress import Progress
from frugalml.report.output import pyplot
from frugalml.report.results import Table
from frugalml.runtime import (
    BimodalStragglers,
    CommModel,
    FailureModel,
    FaultInjector,
    ShiftedExponential,
    backend_info,
    make_executor,
    payload_nbytes,
)

__all__ = ["dataplane_figures", "run_dataplane"]

PROCESS_BACKENDS = ("local", "dask", "ray", "lithops")
ALL_BACKENDS = ("local-thread", *PROCESS_BACKENDS)


def _options(backend: str) -> dict[str, Any]:
    """Two workers, one task slot each, on every backend."""
    if backend == "dask":
        return {"workers": 2, "threads_per_worker": 1}
    return {"workers": 2}


def _installed(names: tuple[str, ...], tiny: bool = False) -> list[str]:
    """The installed backends of ``names``; ``tiny`` (the smoke test): the thread pool only."""
    if tiny:
        return ["local-thread"]
    return [b for b in names if backend_info(b).installed]


def _noop(i: int) -> int:
    return i


def _warm(ex: Any) -> None:
    """Untimed: start the workers and import the algorithms' modules in them (a tiny run of
    each), so that first-use imports are not billed to the first measurement."""
    from frugalml.coded.matmul import CodedMatVec
    from frugalml.sketch.distributed import distributed_lstsq
    from frugalml.sketch.newton import distributed_newton

    got = ex.gather([ex.submit(_noop, i) for i in range(4)], deadline=600)
    if len(got.results) != 4:
        raise RuntimeError(f"warm-up failed: {got.summary()}")
    if ex.backend == "lithops":  # a fresh interpreter per call: nothing stays warm
        return
    gen = np.random.default_rng(0)
    a = gen.standard_normal((400, 5))
    y = np.sign(gen.standard_normal(400))
    for _ in range(2):  # every worker, most likely
        distributed_lstsq(a, y, 4, 40, sketch="countsketch", executor=ex, reference=False, rng=0)
        distributed_newton(a, y, loss="logistic", lam=1.0, q=4, m=40, sketch="countsketch",
                           executor=ex, max_iter=1, rng=0)  # fmt: skip
    with CodedMatVec(a, ex, code="polar", n_workers=8, k_blocks=4, rng=0) as op:
        op(np.ones(5))


def _median_time(fn: Callable[[], Any], repeats: int) -> tuple[float, Any]:
    times, out = [], None
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), out


class _SimClock:
    """Wraps an executor and adds up the (simulated) seconds its gathers waited."""

    def __init__(self, inner: Any):
        self.inner = inner
        self.seconds = 0.0
        self.backend = inner.backend

    def gather(self, handles: Any, **kwargs: Any) -> Any:
        got = self.inner.gather(handles, **kwargs)
        self.seconds += got.seconds
        return got

    def submit(self, fn: Any, /, *args: Any, **kwargs: Any) -> Any:
        return self.inner.submit(fn, *args, **kwargs)

    def share(self, value: Any) -> Any:
        return self.inner.share(value)

    def release(self, ref: Any) -> None:
        self.inner.release(ref)

    def cancel(self, handles: Any) -> None:
        self.inner.cancel(handles)

    def close(self) -> None:
        self.inner.close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


# -- 1. distributed least squares -------------------------------------------------------------


def _lstsq_section(
    quick: bool, progress: Progress | None, tiny: bool = False
) -> tuple[Table, dict[str, Any]]:
    from frugalml.sketch.distributed import distributed_lstsq, sketch_and_solve_task
    from frugalml.sketch.factory import make_sketch

    n, d = (2_000, 10) if tiny else (20_000, 50) if quick else (200_000, 200)
    q, m, sketch = 8, 4 * d, "countsketch"
    repeats = 1 if quick else 3
    gen = np.random.default_rng(0)
    a = gen.standard_normal((n, d))
    b = a @ gen.standard_normal(d) + 0.1 * gen.standard_normal(n)
    sk = make_sketch(sketch, m)
    own_call = payload_nbytes((sketch_and_solve_task, (None, None, sk, 2**62, 0.0), {}))
    own = own_call + payload_nbytes(np.zeros(d))
    rows, data = [], {}
    base = base_solve = None
    for j, backend in enumerate(_installed(ALL_BACKENDS, tiny)):
        if progress:
            progress(f"lstsq on {backend}", j / len(ALL_BACKENDS))
        try:
            with make_executor(backend, **_options(backend)) as ex:
                _warm(ex)

                def shared(ex=ex):
                    return distributed_lstsq(
                        a, b, q, m, sketch=sketch, executor=ex, reference=False, rng=1
                    )

                secs, res = _median_time(shared, repeats)

                def place_and_solve(ex=ex):
                    t0 = time.perf_counter()
                    ra, rb = ex.share(a), ex.share(b)
                    t1 = time.perf_counter()
                    distributed_lstsq(ra, rb, q, m, sketch=sketch, executor=ex,
                                      reference=False, rng=1)  # fmt: skip
                    t2 = time.perf_counter()
                    ex.release(ra)
                    ex.release(rb)
                    return t1 - t0, t2 - t1

                splits = [place_and_solve() for _ in range(repeats)]
                place_s = statistics.median(p for p, _ in splits)
                solve_s = statistics.median(s for _, s in splits)
                sent = res.bytes_sent / q
                recv = res.bytes_received / max(len(res.arrived), 1)
                if backend == "local-thread":
                    base, base_solve = secs, solve_s
                entry = {
                    "seconds": secs,
                    "place_seconds": place_s,
                    "solve_seconds_preplaced": solve_s,
                    "bytes_placed": res.bytes_placed,
                    "bytes_per_task": sent,
                    "received_per_task": recv,
                    "own_payload": own,
                    "x_norm": float(np.linalg.norm(res.x)),
                }
                rows.append(
                    (backend, "shared once", secs, secs / base if base else None, place_s,
                     solve_s, solve_s / base_solve if base_solve else None,
                     res.bytes_placed / 1e6, sent, recv,
                     (sent + recv) / own if backend != "local-thread" else None)
                )  # fmt: skip
                if backend in ("local", "dask", "ray"):
                    seeds = np.random.default_rng(1).integers(0, 2**62, size=q)

                    def copied(ex=ex, seeds=seeds):
                        hs = [
                            ex.submit(sketch_and_solve_task, a, b, sk, int(s), 0.0) for s in seeds
                        ]
                        return ex.gather(hs, deadline=3600)

                    csecs, got = _median_time(copied, repeats)
                    csent = got.total_bytes_sent / q
                    entry["copied"] = {"seconds": csecs, "bytes_per_task": csent}
                    rows.append(
                        (backend, "copied per task", csecs, csecs / base if base else None,
                         None, None, None, 0.0, csent, got.total_bytes_received / q, None)
                    )  # fmt: skip
                data[backend] = entry
        except Exception as exc:  # a backend that fails is reported, not fatal
            data[backend] = {"error": f"{type(exc).__name__}: {exc}"}
            rows.append((backend, f"error: {type(exc).__name__}", *([None] * 9)))
    note = (
        f"A {n} x {d} float64 ({a.nbytes / 1e6:.0f} MB), b ({n},), q = {q} workers' "
        f"{sketch} sketches of m = {m} rows, 2 workers per backend (Dask: 2 processes x 1 "
        f"thread), median of {repeats}; wall time of the whole call, placement included, "
        f"executor start-up excluded; then placing A and b (share) and solving on the placed "
        f"references, timed apart. Own payload = call without data ({own_call} B) + "
        f"d-vector result. Lithops refuses calls over 4 MiB, so it has no 'copied' row."
    )
    table = Table(
        "Distributed least squares: data placed once vs copied per task",
        ("backend", "data", "wall s", "vs local-thread", "place s", "solve s (placed)",
         "solve vs local-thread", "placed MB", "sent B/task", "received B/task",
         "bytes / own payload"),
        tuple(rows),
        note=note,
    )  # fmt: skip
    return table, {"n": n, "d": d, "q": q, "m": m, "sketch": sketch, "backends": data}


# -- 2. distributed Newton sketch -------------------------------------------------------------


def _newton_section(
    quick: bool, progress: Progress | None, tiny: bool = False
) -> tuple[Table, dict[str, Any]]:
    from frugalml.sketch.newton import distributed_newton

    n, d = (2_000, 10) if tiny else (20_000, 50) if quick else (1_000_000, 500)
    q, sketch, iters = 4, "countsketch", 5
    gen = np.random.default_rng(2)
    a = gen.standard_normal((n, d)) / np.sqrt(d)
    x_true = gen.standard_normal(d)
    y = np.where(gen.random(n) < 1 / (1 + np.exp(-a @ x_true)), 1.0, -1.0)
    rows, data = [], {}
    base = None
    for j, backend in enumerate(_installed(("local-thread", "dask", "ray"), tiny)):
        if progress:
            progress(f"newton on {backend}", j / 3)
        try:
            with make_executor(backend, **_options(backend)) as ex:
                _warm(ex)
                t0 = time.perf_counter()
                res = distributed_newton(
                    a, y, loss="logistic", lam=1e-3, q=q, m=8 * d, sketch=sketch,
                    executor=ex, max_iter=iters, tol=1e-14, rng=3,
                )  # fmt: skip
                secs = time.perf_counter() - t0
            if backend == "local-thread":
                base = secs
            its = max(len(res.round_bytes_sent), 1)
            per_task = res.bytes_sent / (its * q)
            per_recv = res.bytes_received / (its * q)
            data[backend] = {
                "seconds": secs,
                "iterations": its,
                "bytes_placed": res.bytes_placed,
                "bytes_per_task_per_iter": per_task,
                "received_per_task_per_iter": per_recv,
                "objective": float(res.objective),
            }
            rows.append(
                (backend, its, secs, secs / base if base else None, res.bytes_placed / 1e6,
                 per_task, per_recv, float(res.objective))
            )  # fmt: skip
        except Exception as exc:
            data[backend] = {"error": f"{type(exc).__name__}: {exc}"}
            rows.append((backend, f"error: {type(exc).__name__}: {exc}"[:80], *([None] * 6)))
    note = (
        f"logistic regression, A {n} x {d} float64 ({n * d * 8 / 1e9:.2f} GB), lam 1e-3, "
        f"q = {q} workers, {sketch} m = {8 * d}, {iters} iterations; 2 workers per backend. "
        f"A and y placed once; per iteration each task carries x, the gradient and a seed "
        f"(d = {d}: {8 * d} B per vector)."
    )
    table = Table(
        "Distributed Newton sketch: per-iteration bytes and wall time",
        ("backend", "iterations", "wall s", "vs local-thread", "placed MB",
         "sent B/task/iter", "received B/task/iter", "objective"),
        tuple(rows),
        note=note,
    )  # fmt: skip
    return table, {"n": n, "d": d, "q": q, "backends": data}


# -- 3. CodedMatVec ---------------------------------------------------------------------------


def _block_product(block: np.ndarray, x: np.ndarray) -> np.ndarray:
    return np.asarray(block @ x)


def _matvec_section(
    quick: bool, progress: Progress | None, tiny: bool = False
) -> tuple[Table, dict[str, Any]]:
    from frugalml.coded.matmul import CodedMatVec

    rows_, cols = (256, 64) if tiny else (2048, 512) if quick else (16_384, 2048)
    calls = 3 if tiny else 10 if quick else 50
    gen = np.random.default_rng(4)
    a = gen.standard_normal((rows_, cols))
    xs = gen.standard_normal((calls, cols))
    rows, data = [], {}
    for j, backend in enumerate(_installed(("local", "dask", "ray"), tiny)):
        if progress:
            progress(f"CodedMatVec on {backend}", j / 3)
        try:
            with make_executor(backend, **_options(backend)) as ex:
                _warm(ex)
                t0 = time.perf_counter()
                op = CodedMatVec(a, ex, code="polar", n_workers=8, k_blocks=4, rng=0)
                build = time.perf_counter() - t0
                secs, sent = [], []
                for x in xs:
                    t0 = time.perf_counter()
                    res = op(x)
                    secs.append(time.perf_counter() - t0)
                    sent.append(res.bytes_sent / res.n_workers)
                    if not np.allclose(res.value, a @ x, rtol=1e-8, atol=1e-8):
                        raise RuntimeError("CodedMatVec returned a wrong product")
                # the same products with every coded block copied into every call
                copied = []
                for x in xs[:3]:
                    t0 = time.perf_counter()
                    hs = [ex.submit(_block_product, op.coded[i], x) for i in range(op.code.n)]
                    got = ex.gather(hs, deadline=3600)
                    copied.append(time.perf_counter() - t0)
                copied_bytes = got.total_bytes_sent / op.code.n
                placed = op.bytes_placed
                op.close()
            later = statistics.median(secs[1:])
            data[backend] = {
                "build_s": build,
                "first_call_s": secs[0],
                "later_calls_median_s": later,
                "bytes_per_task_first": sent[0],
                "bytes_per_task_later_max": max(sent[1:]),
                "bytes_placed": placed,
                "copied_call_s": statistics.median(copied),
                "copied_bytes_per_task": copied_bytes,
            }
            rows.append(
                (backend, build, placed / 1e6, secs[0], later, sent[0], max(sent[1:]),
                 statistics.median(copied), copied_bytes)
            )  # fmt: skip
        except Exception as exc:
            data[backend] = {"error": f"{type(exc).__name__}: {exc}"}
            rows.append((backend, f"error: {type(exc).__name__}", *([None] * 7)))
    note = (
        f"A {rows_} x {cols} float64 ({a.nbytes / 1e6:.0f} MB), polar code N = 8, K = 4 "
        f"(8 coded blocks of {a.nbytes / 4e6:.1f} MB placed at construction), {calls} calls "
        f"A @ x, each checked against NumPy; 2 workers per backend. 'Copied': the same 8 "
        f"block products with each coded block sent in the call (3 calls, median)."
    )
    table = Table(
        f"CodedMatVec: {calls} repeated A @ x calls",
        ("backend", "build s", "placed MB", "first call s", "later calls s (median)",
         "B/task first", "B/task later (max)", "copied call s", "copied B/task"),
        tuple(rows),
        note=note,
    )  # fmt: skip
    return table, {"shape": [rows_, cols], "calls": calls, "backends": data}


# -- 4. crashes -------------------------------------------------------------------------------


def _nap_or_die(i: int, dying: tuple[int, ...]) -> int:
    if i in dying:
        os._exit(3)
    time.sleep(0.2)
    return i


def _crash_section(
    quick: bool, progress: Progress | None, tiny: bool = False
) -> tuple[Table, dict[str, Any]]:
    from frugalml.coded.matmul import coded_matmul

    seeds = 1 if tiny else 3 if quick else 10
    gen = np.random.default_rng(5)
    a = gen.standard_normal((256, 64))
    bmat = gen.standard_normal((64, 8))
    rows, data = [], {}
    names = _installed(("local",) if quick else PROCESS_BACKENDS)
    for j, backend in enumerate(names):
        if progress:
            progress(f"crashes on {backend}", j / len(names))
        try:
            with make_executor(backend, **_options(backend)) as ex:
                _warm(ex)
                got = ex.gather([ex.submit(_nap_or_die, i, (3, 11)) for i in range(16)],
                                deadline=600)  # fmt: skip
                failed = sorted(got.failures)
                decoded, deaths, why = 0, 0, []
                for seed in range(seeds):
                    inj = FaultInjector(ex, failures=FailureModel(p=0.1, kind="crash"), rng=seed)
                    try:
                        res = coded_matmul(a, bmat, inj, code="polar", n_workers=16, k_blocks=8,
                                           rng=seed)  # fmt: skip
                    except Exception as exc:  # counted as not decoded, with the reason
                        why.append(f"seed {seed}: {type(exc).__name__}: {exc}"[:200])
                        continue
                    deaths += res.n_workers - res.n_arrived
                    decoded += bool(res.exact and np.allclose(res.value, a @ bmat))
        except Exception as exc:
            data[backend] = {"error": f"{type(exc).__name__}: {exc}"}
            rows.append((backend, f"error: {type(exc).__name__}: {exc}"[:80], None, None))
            continue
        data[backend] = {
            "failed_of_16": failed,
            "decoded": decoded,
            "seeds": seeds,
            "not_decoded": why,
        }
        rows.append((backend, ", ".join(map(str, failed)), f"{decoded}/{seeds}", deaths))
    table = Table(
        "Dead workers are erasures",
        ("backend", "failed of 16 (tasks 3 and 11 exit)", "coded_matmul decoded",
         "tasks not used"),
        tuple(rows),
        note=(
            "16 tasks sleeping 0.2 s, tasks 3 and 11 call os._exit; coded_matmul "
            "(256 x 64 @ 64 x 8, polar N = 16, K = 8) with each task crashing its worker with "
            "probability 0.1, one seed per run; 2 workers per backend (Dask 1 thread each)."
        ),
    )  # fmt: skip
    return table, {"backends": data}


# -- 5. simulated serverless ------------------------------------------------------------------

#: compute-time model of one serverless function: 0.1 s + Exp(mean 50 ms), 5% slowed 8x
SERVERLESS = BimodalStragglers(ShiftedExponential(shift=0.1, rate=20.0), p_slow=0.05,
                               slowdown=8.0)  # fmt: skip
CLOUD = CommModel(latency=0.03, bandwidth=80e6, source="stated: Lambda + S3 order of magnitude")


def _serverless_section(
    quick: bool, progress: Progress | None, tiny: bool = False
) -> tuple[Table, dict[str, Any]]:
    from frugalml.coded.matmul import CodedMatVec
    from frugalml.sketch.newton import distributed_newton

    workers = 16 if tiny else 64 if quick else 256
    gen = np.random.default_rng(6)
    a = gen.standard_normal((workers * 16, 512))
    x = gen.standard_normal(512)
    na, nd = (1_000, 10) if tiny else (8_000, 40) if quick else (50_000, 100)
    an = gen.standard_normal((na, nd)) / np.sqrt(nd)
    yn = np.where(gen.random(na) < 1 / (1 + np.exp(-an @ gen.standard_normal(nd))), 1.0, -1.0)
    comms = {"lithops localhost (measured)": CommModel.for_backend("lithops"), "cloud": CLOUD}
    rows, data = [], {}
    with make_executor("local-thread", workers=2) as base:
        for label, comm in comms.items():
            for case, code, k_blocks in (
                ("polar N, K = N/2", "polar", workers // 2),
                ("uncoded, wait for all", "uncoded", workers),
            ):
                if progress:
                    progress(f"serverless {case} {label}", 0.5)
                sim = _SimClock(FaultInjector(base, stragglers=SERVERLESS, clock="simulated",
                                              comm=comm, rng=7))  # fmt: skip
                op = CodedMatVec(a, sim, code=code, n_workers=workers, k_blocks=k_blocks, rng=0)
                times = []
                for _ in range(5):
                    sim.seconds = 0.0
                    res = op(x)
                    times.append(sim.seconds)
                ok = bool(np.allclose(res.value, a @ x))
                op.close()
                per = res.bytes_sent / workers
                rows.append(("A @ x", label, case, statistics.mean(times), per, ok))
                data[f"matvec/{label}/{code}"] = {"sim_seconds": times, "bytes_per_task": per}
            for case, k in (("first 3/4 of q", 3 * workers // 4), ("wait for all q", None)):
                if progress:
                    progress(f"serverless newton {case} {label}", 0.8)
                sim = _SimClock(FaultInjector(base, stragglers=SERVERLESS, clock="simulated",
                                              comm=comm, rng=8))  # fmt: skip
                res = distributed_newton(
                    an, yn, loss="logistic", lam=1e-3, q=workers, m=6 * nd, sketch="countsketch",
                    executor=sim, k=k, max_iter=5, tol=1e-14, rng=9,
                )  # fmt: skip
                its = max(len(res.round_bytes_sent), 1)
                per = res.bytes_sent / (its * workers)
                rows.append(("Newton, 5 iterations", label, case, sim.seconds, per,
                             bool(np.isfinite(res.objective))))  # fmt: skip
                data[f"newton/{label}/{case}"] = {
                    "sim_seconds": sim.seconds,
                    "objective": float(res.objective),
                    "bytes_per_task_per_iter": per,
                }
    note = (
        f"{workers} simulated workers on the simulated clock: each task's time = compute "
        f"(0.1 s + Exp(mean 50 ms), 5% slowed 8x) + latency + (bytes sent + received) / "
        f"bandwidth, with the bytes really moved. Communication models: lithops localhost as "
        f"measured here ({CommModel.for_backend('lithops').describe()}), and "
        f"{CLOUD.describe()}. A @ x: A {a.shape[0]} x {a.shape[1]}, blocks placed once (not "
        f"counted per call), mean of 5 calls. Newton: logistic {na} x {nd}, q = {workers}."
    )
    table = Table(
        f"Simulated serverless run, {workers} workers, with the communication model",
        ("job", "communication", "strategy", "simulated s", "sent B/task", "correct"),
        tuple(rows),
        note=note,
    )
    return table, {"workers": workers, "cases": data, "model": SERVERLESS.describe()}


SECTIONS = {
    "lstsq": _lstsq_section,
    "newton": _newton_section,
    "matvec": _matvec_section,
    "crash": _crash_section,
    "serverless": _serverless_section,
}


def run_dataplane(
    *,
    quick: bool = True,
    progress: Progress | None = None,
    sections: tuple[str, ...] | None = None,
    tiny: bool = False,
) -> tuple[tuple[Table, ...], dict[str, Any]]:
    """Run the data-plane sections (``None``: all; else those named, possibly none);
    returns the tables and raw data. ``tiny``: smoke-test sizes, the thread pool only
    (the crash section: the local process pool, one seed)."""
    tables, data = [], {}
    for name in tuple(SECTIONS) if sections is None else sections:
        t0 = time.perf_counter()
        table, raw = SECTIONS[name](quick, progress, tiny)
        raw["seconds"] = time.perf_counter() - t0
        tables.append(table)
        data[name] = raw
    return tuple(tables), data


def dataplane_figures(data: dict[str, Any]) -> dict[str, Any]:
    """Least-squares bytes per task and wall time per backend, placed once vs copied."""
    lstsq = data.get("lstsq", {}).get("backends", {})
    names = [b for b, v in lstsq.items() if "seconds" in v]
    if not names:
        return {}
    plt = pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6))
    pos = np.arange(len(names))
    for ax, field_, label in zip(
        axes, ("bytes_per_task", "seconds"), ("bytes sent per task", "wall seconds"), strict=True
    ):
        shared = [max(lstsq[b][field_], 1e-3) for b in names]
        copied = [lstsq[b].get("copied", {}).get(field_, np.nan) for b in names]
        ax.bar(pos - 0.2, shared, 0.4, label="placed once")
        ax.bar(pos + 0.2, copied, 0.4, label="copied per task")
        ax.set_yscale("log")
        ax.set_xticks(pos, names, fontsize=8)
        ax.set_ylabel(f"{label} (log)")
        ax.set_title(f"distributed_lstsq: {label}")
        ax.legend(fontsize=8)
    fig.tight_layout()
    return {"dataplane_lstsq": fig}
