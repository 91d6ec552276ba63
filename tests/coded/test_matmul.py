"""Coded products on real executors (frugalml.coded.matmul).

The reference is numpy's A @ B. Straggler and failure patterns are deterministic: a
``TraceReplay(mode="cycle")`` model gives worker j the j-th delay, and ``FailureModel(tasks=...)``
names the workers that fail, so every test knows which workers are erasures.
"""

from __future__ import annotations

import itertools
import time

import numpy as np
import pytest

from frugalml.coded.matmul import (
    CODE_NAMES,
    CodedMatVec,
    CodedResult,
    coded_matmul,
    make_code,
    streamed_matmul,
)
from frugalml.coded.polar import PolarCode
from frugalml.errors import InvalidInputError, NotDecodableError
from frugalml.runtime import FailureModel, FaultInjector, TraceReplay, make_executor

N, K = 8, 4
TOL = {"vandermonde": 1e-6}


def rel_err(value: np.ndarray, ref: np.ndarray) -> float:
    return float(np.linalg.norm(value - ref) / np.linalg.norm(ref))


def data(seed: int, m: int = 21, n: int = 10, p: int = 3):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((m, n)), rng.standard_normal((n, p))


@pytest.fixture(scope="module")
def pool():
    with make_executor("local-thread", workers=2) as ex:
        yield ex


def delays(values) -> TraceReplay:
    """Worker j (the j-th submission) sleeps ``values[j]`` seconds."""
    return TraceReplay(np.asarray(values, dtype=float), mode="cycle")


def decodable_failures(code, size: int, seed: int) -> tuple[int, ...]:
    """A set of ``size`` workers whose loss the code survives (searched in random order)."""
    rng = np.random.default_rng(seed)
    order = rng.permutation(code.n)
    for fail in itertools.combinations(order.tolist(), size):
        mask = np.ones(code.n, dtype=bool)
        mask[list(fail)] = False
        if code.decodable(mask):
            return tuple(sorted(fail))
    raise AssertionError(f"{code!r} survives no loss of {size} workers")


# -- exact results ----------------------------------------------------------------------------


@pytest.mark.parametrize("rhs", ["matrix", "vector"])
@pytest.mark.parametrize("name", CODE_NAMES)
def test_exact_for_every_code(pool, name, rhs):
    a, b = data(CODE_NAMES.index(name) + 10 * (rhs == "vector"))
    if rhs == "vector":
        b = b[:, 0]
    assert a.shape[0] % K and a.shape[0] % N  # 21 rows: the blocks are zero-padded
    res = coded_matmul(a, b, pool, code=name, n_workers=N, k_blocks=K, rng=1)
    assert isinstance(res, CodedResult)
    assert res.value.shape == (a @ b).shape
    assert rel_err(res.value, a @ b) <= TOL.get(name, 1e-10)
    assert res.exact and res.predicted_rel_error == 0.0
    assert res.code == name and res.n_workers == N
    assert 1 <= res.n_arrived <= N and name in res.summary()


@pytest.mark.parametrize("name", CODE_NAMES)
def test_matvec_reused_for_several_x(pool, name):
    a, _ = data(5, m=30, n=7)
    rng = np.random.default_rng(0)
    with CodedMatVec(a, pool, code=name, n_workers=N, k_blocks=K, rng=2) as op:
        for _ in range(4):
            x = rng.standard_normal(7)
            assert rel_err(op(x).value, a @ x) <= TOL.get(name, 1e-10)
        xs = rng.standard_normal((7, 5))
        assert rel_err(op(xs).value, a @ xs) <= TOL.get(name, 1e-10)


def test_gradient_descent_through_coded_matvecs(pool):
    """x <- x - (1/L) A^T (A x - b) with both products coded converges to lstsq."""
    rng = np.random.default_rng(3)
    u, _ = np.linalg.qr(rng.standard_normal((40, 10)))
    v, _ = np.linalg.qr(rng.standard_normal((10, 10)))
    a = u @ np.diag(np.linspace(1.0, 2.0, 10)) @ v.T  # singular values in [1, 2]
    b = rng.standard_normal(40)
    x_star = np.linalg.lstsq(a, b, rcond=None)[0]
    fwd = CodedMatVec(a, pool, code="polar", n_workers=N, k_blocks=K, rng=0)
    adj = CodedMatVec(a.T, pool, code="mds", n_workers=N, k_blocks=K, rng=1)
    x = np.zeros(10)
    for _ in range(120):
        r = fwd(x).value - b
        x = x - adj(r).value / 4.0
    fwd.close()
    adj.close()
    assert np.linalg.norm(x - x_star) <= 1e-9 * np.linalg.norm(x_star)


def test_process_pool_exact():
    a, b = data(7)
    with make_executor("local", workers=2) as ex:
        res = coded_matmul(a, b, ex, code="polar", n_workers=N, k_blocks=K, rng=0)
    assert res.exact and rel_err(res.value, a @ b) <= 1e-10
    assert res.gathered.backend == "local"


def test_default_executor_and_defaults():
    a, b = data(8, m=32)
    res = coded_matmul(a, b)  # polar, N = 16, K = 8, a thread pool made and closed inside
    assert res.exact and res.n_workers == 16 and rel_err(res.value, a @ b) <= 1e-10


# -- erasures: failures and stragglers --------------------------------------------------------


@pytest.mark.parametrize(("name", "lost"), [("polar", 2), ("replication", 3), ("mds", 4),
                                            ("vandermonde", 4)])  # fmt: skip
def test_failed_workers_are_erasures(name, lost):
    a, b = data(9)
    code = make_code(name, N, K, rng=4)
    failed = decodable_failures(code, lost, seed=lost)
    # failures first (no delay), the others after 0.2 s, so every failure is recorded
    trace = delays([0.0 if j in failed else 0.2 for j in range(N)])
    fails = FailureModel(tasks=frozenset(failed))
    inner = make_executor("local-thread", workers=N)
    with FaultInjector(inner, stragglers=trace, failures=fails) as ex:
        res = coded_matmul(a, b, ex, code=code)
    assert res.exact and rel_err(res.value, a @ b) <= TOL.get(name, 1e-10)
    got = res.gathered
    assert set(got.failures) == set(failed)
    assert all(f.error_type == "InjectedFailure" for f in got.failures.values())
    assert not set(got.results) & set(failed)
    assert res.n_arrived == len(got.results) <= N - lost


def test_uncoded_cannot_lose_a_worker():
    a, b = data(10)
    fails = FailureModel(tasks=frozenset({3}))
    with (
        FaultInjector(make_executor("local-thread", workers=2), failures=fails) as ex,
        pytest.raises(NotDecodableError, match=r"7 of 8 workers returned \(1 failed"),
    ):
        coded_matmul(a, b, ex, code="uncoded", n_workers=N)


def test_stragglers_are_left_behind():
    """Decoding starts as soon as the arrived set suffices; the 5 s stragglers stay pending."""
    a, b = data(11, m=32)
    n = 16
    slow = {12, 13, 14, 15}
    trace = delays([5.0 if j in slow else 0.0 for j in range(n)])
    inner = make_executor("local-thread", workers=n)
    with FaultInjector(inner, stragglers=trace) as ex:
        t0 = time.perf_counter()
        res = coded_matmul(a, b, ex, code="mds", n_workers=n, k_blocks=8, rng=0)
        took = time.perf_counter() - t0
    assert took < 3.0
    assert res.exact and rel_err(res.value, a @ b) <= 1e-10
    assert res.gathered.stopped_by == "callback"
    assert res.gathered.pending and slow <= set(res.gathered.pending)
    assert res.n_arrived < n


# -- deadlines: anytime estimates and NotDecodableError ---------------------------------------


def simulated(values) -> FaultInjector:
    """A simulated clock on which worker j finishes at ``values[j]``."""
    return FaultInjector(
        make_executor("local-thread", workers=2), stragglers=delays(values), clock="simulated"
    )


def test_anytime_estimate_error_matches_prediction_on_average():
    """6 of 16 workers by the deadline (fewer than K = 8): never decodable, so an estimate."""
    a, b = data(12, m=64, n=12, p=3)
    ab = a @ b
    for estimator in ("hybrid", "unbiased", "lstsq"):
        measured, predicted = [], []
        for seed in range(8):
            with simulated(np.arange(16.0)) as ex:
                res = coded_matmul(
                    a, b, ex, code="polar", n_workers=16, k_blocks=8, mode="anytime",
                    deadline=5.5, estimator=estimator, rng=seed,
                )  # fmt: skip
            assert not res.exact and res.n_arrived == 6
            assert res.gathered.stopped_by == "deadline" and res.gathered.clock == "simulated"
            assert 0 < res.predicted_rel_error < 1.5
            measured.append(rel_err(res.value, ab) ** 2)
            predicted.append(res.predicted_rel_error)
        assert 0.6 < np.mean(measured) / np.mean(predicted) < 1.6, estimator


def test_anytime_tiny_wall_deadline():
    a, b = data(13, m=32)
    trace = delays([0.0] * 6 + [3.0] * 10)
    inner = make_executor("local-thread", workers=16)
    with FaultInjector(inner, stragglers=trace) as ex:
        res = coded_matmul(
            a, b, ex, code="polar", n_workers=16, k_blocks=8, mode="anytime", deadline=0.5, rng=0
        )
    assert not res.exact and res.n_arrived == 6
    assert 0 < res.predicted_rel_error < np.inf
    assert res.value.shape == (32, 3) and np.all(np.isfinite(res.value))
    assert "estimate" in res.summary()


def test_anytime_before_any_arrival_and_for_other_codes():
    a, b = data(14, m=32)
    with simulated(np.arange(1.0, 17.0)) as ex:
        res = coded_matmul(
            a, b, ex, code="polar", n_workers=16, k_blocks=8, mode="anytime", deadline=0.5
        )
    assert res.n_arrived == 0 and not res.exact and np.all(res.value == 0)
    with simulated(np.arange(16.0)) as ex:  # 6 systematic workers of an MDS code arrive
        res = coded_matmul(
            a, b, ex, code="mds", n_workers=16, k_blocks=8, mode="anytime", deadline=5.5, rng=0
        )
    assert not res.exact and res.predicted_rel_error == pytest.approx(2 / 8)
    np.testing.assert_allclose(res.value[:24], (a @ b)[:24], atol=1e-10)  # 6 known blocks


def test_exact_mode_deadline_too_short():
    a, b = data(15, m=32)
    with (
        simulated(np.arange(16.0)) as ex,
        pytest.raises(NotDecodableError, match=r"6 of 16 workers returned"),
    ):
        coded_matmul(a, b, ex, code="polar", n_workers=16, k_blocks=8, deadline=5.5)
    trace = delays([0.5] * 8)
    with (
        FaultInjector(make_executor("local-thread", workers=8), stragglers=trace) as ex,
        pytest.raises(NotDecodableError, match=r"0 of 8 workers returned.*deadline"),
    ):
        coded_matmul(a, b, ex, code="mds", n_workers=8, k_blocks=4, deadline=0.0)


def test_exact_mode_decodes_before_deadline():
    a, b = data(16, m=32)
    with simulated(np.arange(16.0)) as ex:
        res = coded_matmul(a, b, ex, code="mds", n_workers=16, k_blocks=8, deadline=10.0, rng=0)
    assert res.exact and res.n_arrived == 8 and rel_err(res.value, a @ b) <= 1e-10


# -- bad input --------------------------------------------------------------------------------


def test_bad_input(pool):
    a, b = data(17)
    cases = [
        (dict(a=a, b=np.ones((9, 2))), "shapes do not match"),
        (dict(a=a, b=np.ones(11)), "shapes do not match"),
        (dict(a=np.where(np.eye(21, 10) > 0, np.nan, a), b=b), "NaN or inf"),
        (dict(a=a, b=np.full((10, 3), np.inf)), "NaN or inf"),
        (dict(a=a, b=b, code="ldpc"), "code must be one of"),
        (dict(a=np.ones((3, 10)), b=b, n_workers=8, k_blocks=4), "fewer than K=4"),
        (dict(a=a, b=b, n_workers=8, k_blocks=9), "k_blocks must be <= 8"),
        (dict(a=a, b=b, code="replication", n_workers=8, k_blocks=3), "divisible"),
        (dict(a=a, b=b, mode="anytime"), "needs a deadline"),
        (dict(a=a, b=b, mode="fast"), "mode must be one of"),
        (dict(a=a, b=b, deadline=-1.0), "deadline must be >= 0"),
        (dict(a=a[0], b=b), "A must have 2"),
        (dict(a=a, b=np.ones((10, 3, 2))), "B must have 1 or 2"),
    ]
    for kwargs, match in cases:
        with pytest.raises(InvalidInputError, match=match):
            coded_matmul(kwargs.pop("a"), kwargs.pop("b"), pool, **kwargs)


def test_bad_input_matvec(pool):
    a, _ = data(18)
    with CodedMatVec(a, pool, code="mds", n_workers=N, k_blocks=K) as op:
        with pytest.raises(InvalidInputError, match="shapes do not match"):
            op(np.ones(11))
        with pytest.raises(InvalidInputError, match="NaN or inf"):
            op(np.full(10, np.nan))
        with pytest.raises(InvalidInputError, match="needs a deadline"):
            op(np.ones(10), mode="anytime")


def test_bad_deadline_and_estimator_fail_before_any_task_is_submitted():
    """Validation happens up front: nothing is submitted, nothing waits out the deadline."""
    rng = np.random.default_rng(0)
    a, x = rng.standard_normal((32, 4)), rng.standard_normal(4)
    with make_executor("local-thread", workers=2) as ex:
        submitted = []
        original = ex.submit
        ex.submit = lambda *args, **kw: submitted.append(1) or original(*args, **kw)
        op = CodedMatVec(a, ex, code=PolarCode(8, 4, kernel="arikan", rng=0))
        with pytest.raises(InvalidInputError, match="deadline"):
            op(x, deadline=-1.0)
        t0 = time.perf_counter()
        with pytest.raises(InvalidInputError, match="Hadamard"):
            op(x, mode="anytime", deadline=5.0)
        assert time.perf_counter() - t0 < 1.0
        with pytest.raises(InvalidInputError, match="estimator"):
            op(x, mode="anytime", deadline=1.0, estimator="magic")
        assert submitted == []


@pytest.mark.parametrize("code", ["polar", "uncoded", "mds"])
def test_streamed_matmul_from_memmap_is_exact(tmp_path, code):
    rng = np.random.default_rng(5)
    a = np.lib.format.open_memmap(tmp_path / "a.npy", mode="w+", dtype=np.float64, shape=(1003, 12))
    a[:] = rng.standard_normal(a.shape)
    b = rng.standard_normal((12, 4))
    res = streamed_matmul(a, b, chunk_rows=256, code=code, n_workers=8, rng=1)
    assert res.chunks == 4 and res.rows == 1003
    assert rel_err(res.value, np.asarray(a) @ b) <= 1e-10
    out = np.lib.format.open_memmap(
        tmp_path / "o.npy", mode="w+", dtype=np.float64, shape=(1003, 4)
    )
    streamed_matmul(a, b, chunk_rows=300, code=code, n_workers=8, out=out, rng=1)
    assert rel_err(np.asarray(out), np.asarray(a) @ b) <= 1e-10


def test_streamed_matmul_bad_input():
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((64, 5)), rng.standard_normal((5, 2))
    with pytest.raises(InvalidInputError, match="shapes do not match"):
        streamed_matmul(a, rng.standard_normal((4, 2)))
    with pytest.raises(InvalidInputError, match="chunk_rows"):
        streamed_matmul(a, b, chunk_rows=2, n_workers=8)
    with pytest.raises(InvalidInputError, match="out must have shape"):
        streamed_matmul(a, b, out=np.empty((3, 3)))
    a[40, 1] = np.nan
    with pytest.raises(InvalidInputError, match="NaN"):
        streamed_matmul(a, b, chunk_rows=32, n_workers=8)


@pytest.mark.parametrize("code", CODE_NAMES)
def test_float32_stays_float32(code):
    rng = np.random.default_rng(2)
    a = rng.standard_normal((64, 8)).astype(np.float32)
    b = rng.standard_normal((8, 3)).astype(np.float32)
    res = coded_matmul(a, b, code=code, n_workers=8, k_blocks=8 if code == "uncoded" else 4)
    assert res.value.dtype == np.float32
    tol = 1e-4 if code == "vandermonde" else 1e-6
    assert rel_err(res.value.astype(np.float64), a.astype(np.float64) @ b) <= tol


@pytest.mark.slow
def test_streamed_matmul_at_scale(tmp_path):
    """200k x 1024 float32 features times a 1024 x 100 classifier, streamed from disk."""
    rng = np.random.default_rng(11)
    m, n, p = 200_000, 1024, 100
    a = np.lib.format.open_memmap(tmp_path / "f.npy", mode="w+", dtype=np.float32, shape=(m, n))
    for start in range(0, m, 50_000):
        a[start : start + 50_000] = rng.standard_normal((50_000, n), dtype=np.float32)
    b = rng.standard_normal((n, p), dtype=np.float32)
    res = streamed_matmul(a, b, chunk_rows=32_768, code="polar", n_workers=16, rng=0)
    ref = np.asarray(a[:20_000], dtype=np.float64) @ b.astype(np.float64)
    assert rel_err(res.value[:20_000].astype(np.float64), ref) <= 1e-5
    assert res.chunks == -(-m // 32_768)


# -- data placed once: bytes on the wire ------------------------------------------------------


@pytest.fixture(scope="module")
def processes():
    with make_executor("local", workers=4) as ex:
        ex.start()
        yield ex


def test_matvec_places_blocks_once_and_sends_only_x(processes):
    """50 calls: every task carries x and a block reference, never the block itself."""
    ex = processes
    rng = np.random.default_rng(21)
    a = rng.standard_normal((256, 48))
    placed_before = ex.bytes_placed
    with CodedMatVec(a, ex, code="polar", n_workers=16, k_blocks=8, rng=0) as op:
        blocks = op.coded.nbytes
        assert op.bytes_placed >= blocks
        assert ex.bytes_placed - placed_before == op.bytes_placed
        assert len(ex.shared) == 16
        for _ in range(50):
            x = rng.standard_normal(48)
            res = op(x)
            assert res.exact
            np.testing.assert_allclose(res.value, a @ x, rtol=1e-10, atol=1e-10)
            per_task = res.gathered.bytes_sent
            assert len(per_task) == 16
            assert max(per_task.values()) <= x.nbytes + 4096 < blocks / 16
            assert res.bytes_sent == sum(per_task.values())
            assert 0 < res.bytes_received == res.gathered.total_bytes_received
            assert res.bytes_placed == op.bytes_placed
        assert ex.bytes_placed - placed_before == op.bytes_placed  # nothing placed per call
        assert "placed once" in res.summary()
    assert ex.shared == ()  # close() released the blocks
    with pytest.raises(InvalidInputError, match="closed"):
        op(x)
    op.close()  # idempotent


def test_coded_matmul_sends_references_only(processes):
    """A's blocks and B are placed once; a task's call does not grow with A or B."""
    rng = np.random.default_rng(22)
    sent = []
    for m, n, p in [(32, 8, 2), (512, 64, 40)]:
        a, b = rng.standard_normal((m, n)), rng.standard_normal((n, p))
        res = coded_matmul(a, b, processes, code="mds", n_workers=8, k_blocks=4, rng=0)
        assert res.exact and rel_err(res.value, a @ b) <= 1e-10
        assert res.bytes_placed >= a.nbytes + b.nbytes
        sent.append(max(res.gathered.bytes_sent.values()))
        assert processes.shared == ()
    assert sent[1] < 1024 and abs(sent[1] - sent[0]) < 64


def test_streamed_matmul_places_b_once(processes):
    rng = np.random.default_rng(23)
    a, b = rng.standard_normal((100, 12)), rng.standard_normal((12, 30))
    before = processes.bytes_placed
    res = streamed_matmul(a, b, processes, chunk_rows=40, code="mds", n_workers=8, rng=0)
    assert rel_err(res.value, a @ b) <= 1e-10 and res.chunks == 3
    assert processes.shared == ()
    # B once + every chunk's coded blocks (2x the chunk for a rate-1/2 code), no B per chunk
    assert processes.bytes_placed - before < b.nbytes + 3 * 2 * 40 * 12 * 8 + 8 * 3 * 4096


def test_thread_pool_shares_by_identity(pool):
    a, b = data(24)
    with CodedMatVec(a, pool, code="mds", n_workers=N, k_blocks=K, rng=0) as op:
        assert len(pool.shared) == N
        res = op(b)
        assert res.bytes_sent == 0 and res.bytes_received == 0  # nothing copied
        assert "0 B sent" in res.summary()
    assert pool.shared == ()


def _crash_seeds(processes, seeds) -> list[int]:
    """Seeds for which coded_matmul decoded exactly with 10% of the workers killed."""
    rng = np.random.default_rng(25)
    a, b = rng.standard_normal((64, 16)), rng.standard_normal((16, 4))
    ok, crashed = [], 0
    for seed in seeds:
        inj = FaultInjector(processes, failures=FailureModel(p=0.1, kind="crash"), rng=seed)
        res = coded_matmul(a, b, inj, code="polar", n_workers=16, k_blocks=8, rng=seed)
        lost = res.gathered.failures
        died = ("ProcessExpired", "KilledWorker", "WorkerCrashedError")
        assert all(f.error_type in died for f in lost.values()), lost
        crashed += len(lost)
        if res.exact and rel_err(res.value, a @ b) <= 1e-10:
            ok.append(seed)
        assert processes.shared == ()
    assert crashed > 0  # workers really died
    return ok


def test_worker_crashes_are_erasures(processes):
    """A dead worker process costs exactly its own task: 10/10 seeds decode exactly."""
    seeds = list(range(10))
    assert _crash_seeds(processes, seeds) == seeds


def test_worker_crashes_are_erasures_on_dask():
    """On a Dask LocalCluster the coded blocks live in /dev/shm files, so a dying worker
    takes no one else's data with it: every seed decodes."""
    pytest.importorskip("distributed")
    from frugalml.runtime import make_executor

    with make_executor("dask", workers=2, threads_per_worker=1) as ex:
        seeds = list(range(4))
        assert _crash_seeds(ex, seeds) == seeds
