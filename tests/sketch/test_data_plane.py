"""Data placed once: distributed sketch solvers share A once, ship O(d) per task, accept
row-sharded data, and give the answers of the in-memory path (same seeds)."""

from __future__ import annotations

import itertools
import os

import numpy as np
import pytest

from frugalml.errors import InvalidInputError
from frugalml.runtime import make_executor, payload_nbytes
from frugalml.sketch import SketchedLogisticRegression, SketchedRidge, make_sketch
from frugalml.sketch.distributed import distributed_lstsq, sketch_and_solve_task
from frugalml.sketch.newton import distributed_newton
from frugalml.sketch.privacy import private_lstsq

N, D, Q, M = 4000, 20, 4, 120


@pytest.fixture(scope="module")
def data():
    gen = np.random.default_rng(0)
    a = gen.standard_normal((N, D)) * np.linspace(1.0, 3.0, D)
    b = a @ gen.standard_normal(D) + gen.standard_normal(N)
    labels = np.where(a @ gen.standard_normal(D) / 4 + gen.standard_normal(N) > 0, 1.0, -1.0)
    return a, b, labels


@pytest.fixture(scope="module")
def threads():
    with make_executor("local-thread", workers=2) as ex:
        yield ex


@pytest.fixture(scope="module")
def procs():
    with make_executor("local", workers=2) as ex:
        ex.start()
        yield ex


@pytest.fixture(params=["local-thread", "local"])
def ex(request, threads, procs):
    return threads if request.param == "local-thread" else procs


def _old_path(a, b, q, m, seed, lam=0.0):
    """What distributed_lstsq computed before (every worker on the stacked data)."""
    gen = np.random.default_rng(seed)
    seeds = gen.integers(0, 2**63 - 1, size=q)
    xs = [sketch_and_solve_task(a, b, make_sketch("gaussian", m), int(s), lam) for s in seeds]
    return np.mean(xs, axis=0)


# -- distributed_lstsq ---------------------------------------------------------------------------
def test_lstsq_places_once_and_ships_only_the_task(data, ex):
    a, b, _ = data
    res = distributed_lstsq(a, b, Q, M, executor=ex, rng=3)
    np.testing.assert_allclose(res.x, _old_path(a, b, Q, M, 3), rtol=1e-12, atol=1e-14)
    assert res.bytes_placed >= a.nbytes + b.nbytes
    assert ex.shared == ()  # released
    if ex.backend == "local-thread":
        assert res.bytes_sent == 0 and res.bytes_received == 0
        return
    own = payload_nbytes((sketch_and_solve_task, (make_sketch("gaussian", M), 2**62, 0.0), {}))
    result = payload_nbytes(np.zeros(D))
    for i in range(Q):
        assert res.gathered.bytes_sent[i] <= 1.1 * (own + result)
        assert res.gathered.bytes_received[i] <= 1.1 * result + 64
    assert res.bytes_sent == res.gathered.total_bytes_sent
    assert res.bytes_per_task < 0.002 * N * D * 8  # O(1) in n d
    assert "placed" in res.summary() and "/task" in res.summary()


def test_lstsq_uses_a_shared_reference_as_is(data, ex):
    a, b, _ = data
    ref = ex.share(a)
    try:
        res = distributed_lstsq(ref, b, Q, M, executor=ex, rng=3)
        assert ex.shared == (ref,)  # not released: the caller owns it
        assert res.bytes_placed < a.nbytes  # only b was placed
        np.testing.assert_allclose(res.x, _old_path(a, b, Q, M, 3), rtol=1e-12, atol=1e-14)
    finally:
        ex.release(ref)


def test_lstsq_rejects_a_reference_of_another_executor(data, threads):
    a, b, _ = data
    with make_executor("local-thread", workers=1) as other:
        ref = other.share(a)
        with pytest.raises(InvalidInputError, match="another"):
            distributed_lstsq(ref, b, Q, M, executor=threads, rng=3)
        with pytest.raises(InvalidInputError, match="another"):
            distributed_lstsq(ref, b, Q, M, rng=3)


def test_lstsq_on_sharded_data_matches_in_memory(data, ex, tmp_path):
    a, b, _ = data
    mem = distributed_lstsq(a, b, Q, M, executor=ex, rng=5)
    np.save(tmp_path / "a.npy", a)
    cuts = [0, 700, 2500, 4000]
    blocks = [a[i:j] for i, j in itertools.pairwise(cuts)]
    b_blocks = [b[:1000].copy(), b[1000:].copy()]
    for src, rhs in ((blocks, b), (blocks, b_blocks), (str(tmp_path / "a.npy"), b)):
        res = distributed_lstsq(src, rhs, Q, M, executor=ex, rng=5)
        np.testing.assert_allclose(res.x, mem.x, rtol=1e-10, atol=1e-12)
        assert res.measured_error == pytest.approx(mem.measured_error, rel=1e-8)
        assert res.f_star == pytest.approx(mem.f_star, rel=1e-10)
        assert res.predicted_error == mem.predicted_error
        assert ex.shared == ()
    path_run = distributed_lstsq(str(tmp_path / "a.npy"), b, Q, M, executor=ex, rng=5)
    assert path_run.bytes_placed < a.nbytes  # only b: workers map the file themselves


@pytest.mark.parametrize("sketch", ["sparse-sign", "uniform", "rademacher"])
def test_sharded_streaming_sketches_match(data, threads, sketch):
    a, b, _ = data
    kw = {"sketch": sketch, "executor": threads, "rng": 2, "lam": 0.5}
    mem = distributed_lstsq(a, b, 3, 200, **kw)
    res = distributed_lstsq([a[:1500], a[1500:]], b, 3, 200, **kw)
    np.testing.assert_allclose(res.x, mem.x, rtol=1e-10, atol=1e-12)
    assert res.measured_error == pytest.approx(mem.measured_error, rel=1e-7)


def test_sharded_dask_array(data, threads):
    da = pytest.importorskip("dask.array")
    a, b, _ = data
    mem = distributed_lstsq(a, b, Q, M, executor=threads, rng=7)
    res = distributed_lstsq(da.from_array(a, chunks=(1000, D)), b, Q, M, executor=threads, rng=7)
    np.testing.assert_allclose(res.x, mem.x, rtol=1e-10, atol=1e-12)


def test_sharded_rejects_sketches_that_need_all_rows(data, threads):
    a, b, _ = data
    for sketch in ("srht", "leverage"):
        with pytest.raises(InvalidInputError, match="cannot stream over row-sharded"):
            distributed_lstsq([a[:2000], a[2000:]], b, 2, M, sketch=sketch, executor=threads)
    with pytest.raises(InvalidInputError, match="b has shape"):
        distributed_lstsq([a[:2000], a[2000:]], b[:10], 2, M, executor=threads)


# -- distributed_newton --------------------------------------------------------------------------
@pytest.mark.parametrize("loss", ["least-squares", "logistic"])
def test_newton_ships_o_d_per_round(data, procs, threads, loss):
    a, b, labels = data
    y = b if loss == "least-squares" else labels
    kw = {"loss": loss, "lam": 1.0, "q": Q, "max_iter": 6, "rng": 4}
    ref = distributed_newton(a, y, executor=threads, **kw)
    res = distributed_newton(a, y, executor=procs, **kw)
    np.testing.assert_allclose(res.x, ref.x, rtol=1e-10, atol=1e-12)
    assert res.iterations == ref.iterations and len(res.round_bytes_sent) == res.iterations
    per_task = np.array(res.round_bytes_sent) / Q
    assert np.all(per_task < 64 * D + 4096) and np.all(per_task < 0.01 * N * D * 8)
    assert np.all(np.array(res.round_bytes_received) / Q < 64 * D + 1024)
    assert res.bytes_placed >= a.nbytes and procs.shared == ()
    assert res.bytes_sent == sum(res.round_bytes_sent) and "per task per round" in res.summary()
    assert ref.round_bytes_sent == (0,) * ref.iterations and ref.bytes_placed == a.nbytes


@pytest.mark.parametrize("loss", ["least-squares", "logistic"])
def test_newton_on_sharded_data_matches_in_memory(data, ex, tmp_path, loss):
    a, b, labels = data
    y = b if loss == "least-squares" else labels
    kw = {"loss": loss, "lam": 1.0, "q": Q, "max_iter": 5, "rng": 8, "executor": ex}
    mem = distributed_newton(a, y, **kw)
    np.save(tmp_path / "a.npy", a)
    for src in ([a[:1234], a[1234:3000], a[3000:]], str(tmp_path / "a.npy")):
        res = distributed_newton(src, y, **kw)
        assert res.iterations == mem.iterations and res.sizes == mem.sizes
        np.testing.assert_allclose(res.x, mem.x, rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose([h[0] for h in res.history], [h[0] for h in mem.history],
                                   rtol=1e-10)  # fmt: skip
        if ex.backend == "local":
            assert np.all(np.array(res.round_bytes_sent) / Q < 64 * D + 4096)
        assert ex.shared == ()


def test_newton_exact_on_sharded_data(data):
    a, b, _ = data
    mem = distributed_newton(a, b, lam=0.5, averaging="exact", max_iter=3)
    res = distributed_newton([a[:2000], a[2000:]], b, lam=0.5, averaging="exact", max_iter=3)
    np.testing.assert_allclose(res.x, mem.x, rtol=1e-10, atol=1e-12)


def test_newton_sharded_bad_sketch(data, threads):
    a, b, _ = data
    with pytest.raises(InvalidInputError, match="cannot stream"):
        distributed_newton([a[:2000], a[2000:]], b, lam=1.0, sketch="srht", executor=threads)


# -- estimators and privacy ----------------------------------------------------------------------
def test_estimators_share_the_data_on_the_executor(data, procs):
    a, b, labels = data
    ridge = SketchedRidge(lam=1.0, n_workers=3, random_state=1, max_iter=4)
    mem = ridge.fit(a, b).coef_
    fitted = SketchedRidge(lam=1.0, n_workers=3, random_state=1, max_iter=4, executor=procs)
    fitted.fit(a, b)
    np.testing.assert_allclose(fitted.coef_, mem, rtol=1e-10, atol=1e-12)
    assert fitted.result_.bytes_placed >= a.nbytes
    assert max(fitted.result_.round_bytes_sent) / 3 < 64 * D + 4096
    logit = SketchedLogisticRegression(lam=1.0, n_workers=2, random_state=1, max_iter=4,
                                       executor=procs).fit(a, labels)  # fmt: skip
    assert max(logit.result_.round_bytes_sent) / 2 < 64 * (D + 1) + 4096


def test_private_workers_receive_only_releases(data, procs):
    a, b, _ = data
    rows = np.sqrt(np.einsum("ij,ij->i", a, a) + b * b).max()
    kw = {"m": 60, "q": 3, "epsilon": 2.0, "row_norm": rows, "rng": 0}
    local = private_lstsq(a, b, **kw)
    res = private_lstsq(a, b, executor=procs, **kw)
    np.testing.assert_allclose(res.x, local.x, rtol=1e-12)
    assert res.release_nbytes == 60 * (D + 1) * 8
    assert res.bytes_sent / 3 < res.release_nbytes + 1024  # the release and nothing else
    assert res.bytes_sent / 3 < 0.02 * N * D * 8
    assert "only their releases" in res.summary() and local.bytes_sent == 0


# -- cleanup -------------------------------------------------------------------------------------
def test_no_shared_files_left_behind(data, tmp_path):
    a, b, _ = data
    np.save(tmp_path / "a.npy", a)
    ex = make_executor("local", workers=2)
    try:
        distributed_lstsq(a, b, 2, M, executor=ex, rng=1)
        distributed_lstsq([a[:2000], a[2000:]], b, 2, M, executor=ex, rng=1, reference=False)
        distributed_newton(str(tmp_path / "a.npy"), b, lam=1.0, q=2, max_iter=2, executor=ex)
        dirs = list(ex.share_dirs)
        assert dirs and all(os.listdir(folder) == [] for folder in dirs)
    finally:
        ex.close()
    assert not any(os.path.exists(folder) for folder in dirs)


@pytest.mark.parametrize("sketch", ["countsketch", "sparse-sign", "gaussian"])
def test_newton_worker_streams_a_large_hessian_root(monkeypatch, sketch):
    """Above the streaming threshold a logistic worker accumulates S B over row chunks
    instead of forming B (n, d): same direction and log-determinant as forming B."""
    from frugalml.sketch import newton_tasks as newton

    gen = np.random.default_rng(11)
    a = gen.standard_normal((3000, 12))
    x = 0.3 * gen.standard_normal(12)
    g = gen.standard_normal(12)
    sk = make_sketch(sketch, 60)
    whole = newton.newton_shared_task(a, x, "logistic", g, sk, 5, 0.1, 1.0)
    monkeypatch.setattr(newton, "_STREAM_BYTES", 0)
    monkeypatch.setattr(newton, "_CHUNK_BYTES", 8 * 12 * 700)  # 700-row chunks
    streamed = newton.newton_shared_task(a, x, "logistic", g, sk, 5, 0.1, 1.0)
    np.testing.assert_allclose(streamed[0], whole[0], rtol=1e-9, atol=1e-12)
    assert streamed[1] == pytest.approx(whole[1], rel=1e-10)
