"""Shared references and byte accounting, on every backend.

A value is placed once (``share``) and tasks carry a reference that the worker resolves; the
bytes each task moves are counted, so "data placed once" is checked by numbers: a task that
carries a reference to a 2 MB array ships under 2 KB. Bad use (released reference, another
executor's reference, unpicklable value, data deleted behind a reference) is a clear error,
and nothing is left in /dev/shm or the temporary directory after close.
"""

from __future__ import annotations

import glob
import os
import sys
import tempfile
import threading

import cloudpickle
import numpy as np
import pytest
import scipy.sparse as sp

from frugalml.errors import FrugalError, InvalidInputError
from frugalml.runtime import (
    Shared,
    SharedDataLostError,
    make_executor,
    payload_nbytes,
)

from ._backends import BACKEND_OPTIONS

cloudpickle.register_pickle_by_value(sys.modules[__name__])

HANG = 120.0
A = np.random.default_rng(0).standard_normal((2000, 128))  # 2 MB


def column_sum(a, j):
    if isinstance(a, list):  # [array]
        (a,) = a
    return float(np.asarray(a)[:, j].sum())


def weighted(blocks, w):
    """Sum of the blocks (a list of shared arrays) times w."""
    return float(sum(np.asarray(b).sum() for b in blocks) * w)


def kind_of(value):
    return type(value).__name__


def echo(value):
    return value


def share_files():
    """frugalml share directories in /dev/shm and the temporary directory."""
    found = []
    for root in ("/dev/shm", tempfile.gettempdir()):
        found += glob.glob(os.path.join(root, "frugalml-share-*"))
    return set(found)


@pytest.fixture(scope="module", params=list(BACKEND_OPTIONS))
def executor(request):
    name, options = BACKEND_OPTIONS[request.param]
    ex = make_executor(name, **options)
    try:
        yield ex
    finally:
        ex.close()


def test_tasks_see_the_value_and_ship_only_a_token(executor):
    ref = executor.share(A)
    assert isinstance(ref, Shared)
    assert ref.nbytes >= A.nbytes
    assert "float64" in ref.what and "(2000, 128)" in ref.what
    handles = [executor.submit(column_sum, ref, j) for j in range(6)]
    got = executor.gather(handles, deadline=HANG)
    assert got.stopped_by == "all", got.summary()
    for j in range(6):
        assert got.results[j] == pytest.approx(A[:, j].sum(), rel=1e-12)
    if executor.backend == "local-thread":
        assert got.total_bytes_sent == 0  # nothing is copied between threads
    else:
        for j in range(6):
            # the call (function + reference + j) is a few hundred bytes, not 2 MB
            assert 0 < got.bytes_sent[j] < 2048, got.bytes_sent
            assert 0 < got.bytes_received[j] < 256, got.bytes_received
        assert got.total_bytes_sent == sum(got.bytes_sent.values())
    executor.release(ref)


def test_unshared_array_is_counted_in_full(executor):
    if executor.backend == "local-thread":
        pytest.skip("threads copy nothing")
    got = executor.gather([executor.submit(column_sum, A, 0)], deadline=HANG)
    assert got.results[0] == pytest.approx(A[:, 0].sum())
    assert A.nbytes <= got.bytes_sent[0] < A.nbytes + 2048
    ref = executor.share(A)
    back = executor.gather([executor.submit(echo, ref)], deadline=HANG)
    np.testing.assert_array_equal(back.results[0], A)
    if executor.backend != "local-thread":
        assert A.nbytes <= back.bytes_received[0] < A.nbytes + 2048
    executor.release(ref)


def test_references_nested_in_lists_and_dicts(executor):
    blocks = [executor.share(A[i : i + 500]) for i in range(0, 2000, 500)]
    got = executor.gather(
        [
            executor.submit(weighted, blocks, 2.0),
            executor.submit(weighted, blocks=list(blocks), w=0.5),
        ],
        deadline=HANG,
    )
    assert got.results[0] == pytest.approx(2.0 * A.sum())
    assert got.results[1] == pytest.approx(0.5 * A.sum())
    for ref in blocks:
        executor.release(ref)


def test_non_array_values_and_sparse_matrices(executor):
    mat = sp.random(300, 40, density=0.05, format="csr", random_state=1)
    ref = executor.share(mat)
    cfg = executor.share({"scale": 3.0, "names": ["a", "b"]})
    got = executor.gather(
        [executor.submit(kind_of, ref), executor.submit(echo, cfg)], deadline=HANG
    )
    assert got.results[0] == type(mat).__name__
    assert got.results[1] == {"scale": 3.0, "names": ["a", "b"]}
    executor.release(ref)
    executor.release(cfg)


def test_released_and_foreign_references_are_refused(executor):
    ref = executor.share(np.arange(5.0))
    executor.release(ref)
    with pytest.raises(InvalidInputError, match="released"):
        executor.submit(echo, ref)
    with pytest.raises(InvalidInputError, match="already released"):
        executor.release(ref)
    with make_executor("local-thread", workers=1) as other:
        foreign = other.share(np.arange(3.0))
        with pytest.raises(InvalidInputError, match="another"):
            executor.submit(echo, [foreign])
        with pytest.raises(InvalidInputError, match="another"):
            executor.release(foreign)
    with pytest.raises(InvalidInputError, match="already a shared reference"):
        executor.share(executor.share(np.ones(2)))


def test_context_manager_releases(executor):
    with executor.share(np.arange(4.0)) as ref:
        got = executor.gather([executor.submit(echo, ref)], deadline=HANG)
        np.testing.assert_array_equal(got.results[0], np.arange(4.0))
    assert ref.key not in {r.key for r in executor.shared}
    with pytest.raises(InvalidInputError, match="released"):
        executor.submit(echo, ref)


def test_unpicklable_value_is_a_clear_error(executor):
    if executor.backend == "local-thread":
        pytest.skip("threads share objects as they are")
    with pytest.raises(InvalidInputError, match="cannot share"):
        executor.share(threading.Lock())


def test_thread_reference_cannot_leave_its_process():
    with make_executor("local-thread", workers=1) as ex:
        ref = ex.share(np.ones(3))
        assert ref.get() is ref.handle
        with pytest.raises(InvalidInputError, match="local-thread"):
            cloudpickle.dumps(ref)


def test_deleted_data_fails_the_task_with_a_named_error():
    with make_executor("local", workers=1) as ex:
        ref = ex.share(np.arange(10.0))
        os.unlink(ref.handle)  # the data vanishes behind the reference
        got = ex.gather([ex.submit(echo, ref)], deadline=HANG)
        assert set(got.failures) == {0}
        assert got.failures[0].error_type == "SharedDataLostError"
        assert ref.key in got.failures[0].message
        assert "ndarray float64 (10,)" in got.failures[0].message  # the master names it
        with pytest.raises(SharedDataLostError, match="deleted"):
            ref.get()
    assert not os.path.exists(os.path.dirname(ref.handle))


def test_close_removes_every_placed_file_also_after_a_crash():
    ex = make_executor("local", workers=2)
    refs = [ex.share(A), ex.share({"x": 1})]
    placed = {os.path.dirname(r.handle) for r in refs} | {r.handle for r in refs}
    assert all(os.path.exists(p) for p in placed)
    assert {os.path.dirname(r.handle) for r in refs} <= share_files()
    ex.gather([ex.submit(os._exit, 3), ex.submit(column_sum, refs[0], 1)], deadline=HANG)
    ex.close()
    assert not any(os.path.exists(p) for p in placed)
    with pytest.raises(FrugalError, match="closed"):
        ex.share(A)


def test_payload_nbytes_counts_buffers_and_tokens():
    arr = np.ones(1000)
    assert arr.nbytes < payload_nbytes(arr) < arr.nbytes + 200
    with make_executor("local", workers=1) as ex:
        ref = ex.share(arr)
        by_ref = payload_nbytes((echo, (ref,), {}))
        by_value = payload_nbytes((echo, (arr,), {}))
        assert by_ref < 1024
        assert by_value - by_ref > arr.nbytes - 200
    assert payload_nbytes(threading.Lock()) == -1


def test_owns_tells_whose_reference_it_is():
    from frugalml.runtime import FaultInjector

    with (
        make_executor("local-thread", workers=1) as ex,
        make_executor("local-thread", workers=1) as other,
    ):
        ref = ex.share(np.ones(2))
        assert ex.owns(ref) and not other.owns(ref)
        assert FaultInjector(ex).owns(ref)
        assert not ex.owns(np.ones(2))


def test_forgotten_executor_frees_its_files():
    """An executor dropped without close() still removes its share directory once it is
    garbage-collected (and at interpreter exit)."""
    import gc

    ex = make_executor("local", workers=1)
    ref = ex.share(np.ones(10))
    path = ref.handle
    assert os.path.exists(path)
    del ex
    gc.collect()
    assert not os.path.exists(os.path.dirname(path))


def test_dask_scatter_placement():
    """On a cluster joined by address Dask scatters shares; the same results and bytes."""
    pytest.importorskip("distributed")
    with make_executor("dask", workers=2, placement="scatter") as ex:
        ref = ex.share(A)
        assert ref.kind == "dask"
        got = ex.gather([ex.submit(column_sum, [ref], j) for j in range(3)], deadline=HANG)
        for j in range(3):
            assert got.results[j] == pytest.approx(A[:, j].sum())
            assert got.bytes_sent[j] < 2048
        ex.release(ref)
    with make_executor("dask", workers=1) as ex:
        assert ex.placement == "file"
        assert ex.share(A).kind == "npy"
        dirs = ex.share_dirs
    assert not any(os.path.exists(d) for d in dirs)
