"""OverSketch-style sketch averaging (frugalml.coded.oversketch).

References are independent of the implementation: dense CountSketch matrices drawn here
(S[j, h_j] = s_j), the plain product A S S^T B, and Monte-Carlo means with stated tolerances
(within 4 standard errors and 10% of the prediction; the relative standard error is 1-3%).
"""

from __future__ import annotations

import math
import time
from typing import Any

import numpy as np
import pytest

from frugalml.coded.matmul import CodedResult
from frugalml.coded.oversketch import (
    _sketch_product,
    countsketch,
    countsketch_error,
    sketch_matmul,
)
from frugalml.errors import InvalidInputError, NotDecodableError
from frugalml.runtime import (
    FailureModel,
    FaultInjector,
    Shared,
    ShiftedExponential,
    TraceReplay,
    make_executor,
)


def rel_sq_err(est: np.ndarray, ref: np.ndarray) -> float:
    return float(np.sum((est - ref) ** 2) / np.sum(ref**2))


def correlated_pair(seed: int, m: int = 8, n: int = 6, p: int = 5):
    """A with unequal column norms and B correlated with A^T, so that every term of the error
    law (||A||^2 ||B||^2, ||AB||^2 and the diagonal sum) matters."""
    rng = np.random.default_rng(seed)
    a = rng.standard_normal((m, n)) * np.geomspace(0.3, 3.0, n)
    b = a.T @ rng.standard_normal((m, p)) + 0.5 * rng.standard_normal((n, p))
    return a, b


def dense_sketch_estimates(a, b, d: int, trials: int, seed: int) -> np.ndarray:
    """(trials, m, p) estimates A S S^T B from dense CountSketch matrices drawn here."""
    rng = np.random.default_rng(seed)
    n = a.shape[1]
    h = rng.integers(0, d, size=(trials, n))
    s = rng.choice([-1.0, 1.0], size=(trials, n))
    sst = (s[:, :, None] * s[:, None, :]) * (h[:, :, None] == h[:, None, :])  # (T, n, n)
    return np.einsum("ij,tjk,kl->til", a, sst, b)


def law(a, b, d: int, m: int = 1) -> float:
    """The expected relative squared error, written out term by term."""
    ab = a @ b
    diag = np.sum(np.sum(a**2, axis=0) * np.sum(b**2, axis=1))
    num = np.sum(a**2) * np.sum(b**2) + np.sum(ab**2) - 2 * diag
    return float(num / (d * m) / np.sum(ab**2))


@pytest.fixture(scope="module")
def pool():
    with make_executor("local-thread", workers=2) as ex:
        yield ex


# -- the error law ----------------------------------------------------------------------------


@pytest.mark.parametrize(("seed", "d"), [(0, 1), (1, 3), (2, 5), (3, 12)])
def test_error_law_monte_carlo_dense_reference(seed, d):
    a, b = correlated_pair(seed)
    pred = countsketch_error(a, b, d)
    assert pred == pytest.approx(law(a, b, d), rel=1e-12)
    ab = a @ b
    est = dense_sketch_estimates(a, b, d, trials=20_000, seed=100 + seed)
    errs = np.sum((est - ab) ** 2, axis=(1, 2)) / np.sum(ab**2)
    mean, se = errs.mean(), errs.std(ddof=1) / math.sqrt(errs.size)
    assert abs(mean - pred) <= 4 * se
    assert abs(mean - pred) <= 0.1 * pred
    # the law is sharp: dropping either correction term would be detected
    diag = np.sum(np.sum(a**2, axis=0) * np.sum(b**2, axis=1))
    for wrong in (pred + 2 * diag / (d * np.sum(ab**2)), pred - 1.0 / d):
        if wrong > 0:
            assert abs(mean - wrong) > 8 * se


def test_error_law_absolute_and_averaging():
    a, b = correlated_pair(7, m=5, n=9, p=4)
    ab2 = float(np.sum((a @ b) ** 2))
    single = countsketch_error(a, b, 4, relative=False)
    assert countsketch_error(a, b, 4) == pytest.approx(single / ab2, rel=1e-12)
    for m in (1, 2, 7):
        assert countsketch_error(a, b, 4, m) == pytest.approx(single / ab2 / m, rel=1e-12)
    # vector right-hand side: the same law with p = 1
    assert countsketch_error(a, b[:, 0], 3) == pytest.approx(
        countsketch_error(a, b[:, :1], 3), rel=1e-12
    )
    # ||AB||^2 through the Gram route (n^2 (m+p) < m n p) agrees with the direct one
    rng = np.random.default_rng(1)
    a2, b2 = rng.standard_normal((40, 3)), rng.standard_normal((3, 50))
    assert countsketch_error(a2, b2, 2) == pytest.approx(law(a2, b2, 2), rel=1e-10)


def test_error_law_zero_product():
    a = np.array([[1.0, 0.0]])
    b = np.array([[0.0], [1.0]])  # A B = 0 but a sketch collides with probability 1/d
    assert countsketch_error(a, b, 2) == math.inf
    assert countsketch_error(a, b, 2, relative=False) == pytest.approx(0.5)
    assert countsketch_error(np.zeros((2, 3)), np.zeros((3, 2)), 2) == 0.0


# -- sketches built on the workers ------------------------------------------------------------


def test_countsketch_structure_and_worker_product():
    n, d = 50, 7
    st = countsketch(n, d, 123)
    assert st.shape == (d, n)
    dense = st.toarray()
    assert np.all(np.count_nonzero(dense, axis=0) == 1)
    assert set(np.unique(dense[dense != 0])) <= {-1.0, 1.0}
    np.testing.assert_array_equal(countsketch(n, d, 123).toarray(), dense)
    assert not np.array_equal(countsketch(n, d, 124).toarray(), dense)
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((6, n)), rng.standard_normal((n, 4))
    ref = a @ dense.T @ dense @ b
    np.testing.assert_allclose(_sketch_product(a, b, 123, d), ref, atol=1e-12)
    np.testing.assert_allclose(_sketch_product(a, b[:, 0], 123, d), ref[:, 0], atol=1e-12)


class Spy:
    """An executor that records what is submitted and delegates to a real one."""

    def __init__(self, inner):
        self.inner = inner
        self.backend = inner.backend
        self.calls: list[tuple[Any, ...]] = []

    def submit(self, fn, /, *args, **kwargs):
        self.calls.append(args)
        return self.inner.submit(fn, *args, **kwargs)

    def gather(self, handles, *, k=None, deadline=None, on_result=None):
        return self.inner.gather(handles, k=k, deadline=deadline, on_result=on_result)

    def cancel(self, handles):
        self.inner.cancel(handles)

    def close(self):
        self.inner.close()

    def share(self, value):
        return self.inner.share(value)

    def release(self, ref):
        self.inner.release(ref)

    @property
    def shared(self):
        return self.inner.shared


def test_only_references_to_a_b_and_int_seeds_are_sent(pool):
    a, b = correlated_pair(3, m=10, n=30, p=4)
    spy = Spy(pool)
    res = sketch_matmul(a, b, spy, n_workers=6, sketch_dim=5, rng=9)
    assert len(spy.calls) == 6
    refs_a = {id(args[0]) for args in spy.calls}
    assert len(refs_a) == 1  # A placed once, the same reference in every task
    for args in spy.calls:
        assert len(args) == 4
        assert isinstance(args[0], Shared) and np.array_equal(args[0].get(), a)
        assert isinstance(args[1], Shared) and np.array_equal(args[1].get(), b)
        assert type(args[2]) is int and type(args[3]) is int and args[3] == 5
    assert pool.shared == ()  # released after the product
    seeds = [args[2] for args in spy.calls]
    assert len(set(seeds)) == 6
    # the average of the sketches rebuilt from those seeds
    ref = np.mean([a @ countsketch(30, 5, s).T @ (countsketch(30, 5, s) @ b) for s in seeds], 0)
    np.testing.assert_allclose(res.value, ref, atol=1e-12)


def test_reproducible_and_same_on_process_pool(pool):
    a, b = correlated_pair(4, m=7, n=20, p=3)
    r1 = sketch_matmul(a, b, pool, n_workers=4, sketch_dim=6, rng=11)
    r2 = sketch_matmul(a, b, None, n_workers=4, sketch_dim=6, rng=11)
    np.testing.assert_allclose(r1.value, r2.value, atol=1e-12)
    with make_executor("local", workers=2) as ex:
        r3 = sketch_matmul(a, b, ex, n_workers=4, sketch_dim=6, rng=11)
        assert ex.shared == ()
    np.testing.assert_allclose(r3.value, r1.value, atol=1e-12)
    assert r3.n_arrived == 4 and r3.gathered.backend == "local"
    # A and B placed once; a task carries two references and two ints
    assert r3.bytes_placed >= a.nbytes + b.nbytes
    assert max(r3.gathered.bytes_sent.values()) < 2048
    assert r3.bytes_sent == r3.gathered.total_bytes_sent and r3.bytes_received > 0


# -- the end-to-end estimate ------------------------------------------------------------------


def test_result_fields_and_vector_rhs(pool):
    a, b = correlated_pair(5, m=9, n=40, p=3)
    res = sketch_matmul(a, b, pool, n_workers=8, sketch_dim=10, rng=0)
    assert isinstance(res, CodedResult)
    assert res.code == "oversketch" and res.exact is False
    assert res.value.shape == (9, 3) and res.n_arrived == res.n_workers == 8
    assert res.predicted_rel_error == pytest.approx(countsketch_error(a, b, 10, 8), rel=1e-12)
    assert res.wait_seconds >= 0 and res.decode_seconds >= 0 and "oversketch" in res.summary()
    vec = sketch_matmul(a, b[:, 0], pool, n_workers=8, sketch_dim=10, rng=0)
    assert vec.value.shape == (9,)
    np.testing.assert_allclose(vec.value, res.value[:, 0], atol=1e-12)  # same seeds
    # default sketch width: ceil(2 n / N)
    dflt = sketch_matmul(a, b, pool, n_workers=8, rng=0)
    assert dflt.predicted_rel_error == pytest.approx(countsketch_error(a, b, 10, 8), rel=1e-12)
    # a sketch as wide as n with N = 1 is still only an estimate, but d -> inf is exact
    wide = sketch_matmul(a, b, pool, n_workers=2, sketch_dim=10**6, rng=0)
    assert rel_sq_err(wide.value, a @ b) < 1e-8


def test_unbiased_and_law_end_to_end(pool):
    """Mean of the averaged estimate -> AB; mean error -> the predicted error (m = 4)."""
    a, b = correlated_pair(6, m=6, n=8, p=4)
    ab = a @ b
    trials, m, d = 400, 4, 3
    vals, errs = [], []
    for t in range(trials):
        res = sketch_matmul(a, b, pool, n_workers=m, sketch_dim=d, rng=t)
        vals.append(res.value)
        errs.append(rel_sq_err(res.value, ab))
    pred = countsketch_error(a, b, d, m)
    assert res.predicted_rel_error == pytest.approx(pred, rel=1e-12)
    vals = np.array(vals)
    z = (vals.mean(0) - ab) / (vals.std(0, ddof=1) / math.sqrt(trials))
    assert np.max(np.abs(z)) < 4.5
    # ||mean - AB||^2 has expectation pred ||AB||^2 / trials
    assert rel_sq_err(vals.mean(0), ab) < 3 * pred / trials
    errs = np.array(errs)
    se = errs.std(ddof=1) / math.sqrt(trials)
    assert abs(errs.mean() - pred) <= 4 * se
    assert abs(errs.mean() - pred) <= 0.1 * pred


def test_error_decreases_like_one_over_m(pool):
    a, b = correlated_pair(8, m=6, n=12, p=4)
    ab = a @ b
    d, n_workers, trials = 4, 16, 60
    single = countsketch_error(a, b, d)
    means = {}
    for m in (1, 4, 16):
        errs = []
        for t in range(trials):
            res = sketch_matmul(a, b, pool, n_workers=n_workers, sketch_dim=d, k=m, rng=1000 + t)
            assert res.n_arrived == m
            assert res.predicted_rel_error == pytest.approx(single / m, rel=1e-12)
            errs.append(rel_sq_err(res.value, ab))
        means[m] = float(np.mean(errs))
    for m in (4, 16):
        assert 0.5 / m < means[m] / means[1] < 2.0 / m
    assert means[16] < means[4] < means[1]


def test_plugin_prediction(pool):
    a, b = correlated_pair(9, m=8, n=30, p=6)
    exact = sketch_matmul(a, b, pool, n_workers=16, sketch_dim=8, rng=2)
    plug = sketch_matmul(a, b, pool, n_workers=16, sketch_dim=8, rng=2, predict="plugin")
    np.testing.assert_allclose(plug.value, exact.value, atol=1e-12)
    assert 0.5 < plug.predicted_rel_error / exact.predicted_rel_error < 2.0
    one = sketch_matmul(a, b, pool, n_workers=4, sketch_dim=8, k=1, rng=2, predict="plugin")
    assert one.n_arrived == 1 and 0 < one.predicted_rel_error < math.inf


# -- stragglers, failures, deadlines ----------------------------------------------------------


def test_deadline_averages_what_arrived_and_cancels_the_rest():
    a, b = correlated_pair(10, m=5, n=16, p=3)
    delays = TraceReplay(np.array([0.0] * 4 + [2.0] * 4), mode="cycle")
    with FaultInjector(make_executor("local-thread", workers=8), stragglers=delays) as ex:
        t0 = time.perf_counter()
        res = sketch_matmul(a, b, ex, n_workers=8, sketch_dim=4, deadline=0.5, rng=3)
        took = time.perf_counter() - t0
    assert took < 1.5
    assert res.n_arrived == 4 and res.gathered.stopped_by == "deadline"
    assert set(res.gathered.results) == {0, 1, 2, 3}
    assert set(res.gathered.pending) == {4, 5, 6, 7}
    assert res.predicted_rel_error == pytest.approx(countsketch_error(a, b, 4, 4), rel=1e-12)


def test_failed_workers_are_left_out():
    a, b = correlated_pair(11, m=5, n=16, p=3)
    fails = FailureModel(tasks=frozenset({0, 3, 5}))
    with FaultInjector(make_executor("local-thread", workers=2), failures=fails) as ex:
        res = sketch_matmul(a, b, ex, n_workers=8, sketch_dim=4, rng=3)
    assert res.n_arrived == 5 and set(res.gathered.failures) == {0, 3, 5}
    assert res.predicted_rel_error == pytest.approx(countsketch_error(a, b, 4, 5), rel=1e-12)
    # the value is the mean of the five successful workers' estimates
    vals = [res.gathered.results[i] for i in sorted(res.gathered.results)]
    np.testing.assert_allclose(res.value, np.mean(vals, axis=0), atol=1e-12)


def test_nothing_arrived_raises():
    a, b = correlated_pair(12)
    sim = FaultInjector(
        make_executor("local-thread", workers=2),
        stragglers=ShiftedExponential(shift=1.0, rate=1.0),
        clock="simulated",
        rng=0,
    )
    with sim, pytest.raises(NotDecodableError, match=r"0 of 4 sketch workers returned"):
        sketch_matmul(a, b, sim, n_workers=4, sketch_dim=2, deadline=0.5, rng=0)
    fails = FailureModel(p=1.0)
    with (
        FaultInjector(make_executor("local-thread", workers=2), failures=fails) as ex,
        pytest.raises(NotDecodableError, match=r"4 failed"),
    ):
        sketch_matmul(a, b, ex, n_workers=4, sketch_dim=2, rng=0)


# -- bad input --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "kwargs", "match"),
    [
        ((np.ones(3), np.ones(3)), {}, "A must have 2"),
        ((np.ones((2, 3)), np.ones((3, 2, 2))), {}, "B must have 1 or 2"),
        ((np.ones((2, 3)), np.ones((4, 2))), {}, "shapes do not match"),
        ((np.ones((2, 3)), np.ones(4)), {}, "shapes do not match"),
        ((np.array([[1.0, np.nan]]), np.ones((2, 2))), {}, "NaN or inf"),
        ((np.ones((2, 2)), np.array([1.0, np.inf])), {}, "NaN or inf"),
        ((np.ones((2, 2)), np.ones((2, 2))), {"sketch_dim": 0}, "sketch_dim must be >= 1"),
        ((np.ones((2, 2)), np.ones((2, 2))), {"sketch_dim": 1.5}, "sketch_dim must be an int"),
        ((np.ones((2, 2)), np.ones((2, 2))), {"n_workers": 0}, "n_workers must be >= 1"),
        ((np.ones((2, 2)), np.ones((2, 2))), {"n_workers": 4, "k": 5}, "k must be <= 4"),
        ((np.ones((2, 2)), np.ones((2, 2))), {"k": 0}, "k must be >= 1"),
        ((np.ones((2, 2)), np.ones((2, 2))), {"deadline": -1.0}, "deadline must be >= 0"),
        ((np.ones((2, 2)), np.ones((2, 2))), {"predict": "guess"}, "predict must be one of"),
        ((np.ones((2, 2)), np.ones((2, 2))), {"rng": "seed"}, "rng must be"),
        ((np.ones((2, 2)), np.ones((2, 2)), "thread-pool"), {}, "Executor protocol"),
        ((np.ones((2, 2)) + 1j, np.ones((2, 2))), {}, "must be real"),
    ],
)
def test_bad_input(args, kwargs, match):
    with pytest.raises(InvalidInputError, match=match):
        sketch_matmul(*args, **kwargs)


def test_bad_input_helpers():
    with pytest.raises(InvalidInputError, match="sketch_dim"):
        countsketch_error(np.ones((2, 2)), np.ones((2, 2)), 0)
    with pytest.raises(InvalidInputError, match="n_sketches"):
        countsketch_error(np.ones((2, 2)), np.ones((2, 2)), 1, 0)
    with pytest.raises(InvalidInputError, match="shapes do not match"):
        countsketch_error(np.ones((2, 2)), np.ones((3, 2)), 1)
    with pytest.raises(InvalidInputError, match="sketch_dim"):
        countsketch(4, 0, 0)
