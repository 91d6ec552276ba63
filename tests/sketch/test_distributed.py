"""Distributed sketch-and-solve on frugalml.runtime executors, against the exact theory."""

from __future__ import annotations

import time

import numpy as np
import pytest

from frugalml.errors import FrugalDeprecationWarning, InvalidInputError, TaskFailedError
from frugalml.runtime import FailureModel, FaultInjector, TraceReplay, make_executor
from frugalml.sketch import SKETCHES, GaussianSketch
from frugalml.sketch.datasets import synthetic_regression
from frugalml.sketch.distributed import (
    DistributedResult,
    distributed_lstsq,
    sketch_and_solve_task,
)
from frugalml.sketch.theory import gaussian_averaged_error, gaussian_weighted_error

N, D = 200, 8


@pytest.fixture(scope="module")
def problem():
    p = synthetic_regression(N, D, rng=0)
    x = np.linalg.lstsq(p.a, p.b, rcond=None)[0]
    f = float(np.sum((p.b - p.a @ x) ** 2))
    return p.a, p.b, x, f


@pytest.fixture(scope="module")
def threads():
    ex = make_executor("local-thread", workers=4)
    yield ex
    ex.close()


def measured(a, xbar, x, f):
    return float(np.sum((a @ (xbar - x)) ** 2) / f)


# -- the averaged error against the exact theory ---------------------------------------------------


def _mean_error(problem, threads, seeds, q, m):
    a, b, x, f = problem
    errs = np.empty(len(seeds))
    predicted = None
    for i, s in enumerate(seeds):
        res = distributed_lstsq(a, b, q, m, executor=threads, rng=int(s))
        predicted = res.predicted_error
        assert res.f_star == pytest.approx(f, rel=1e-10)
        # the reported error is the one measured against an independent solve
        assert res.measured_error == pytest.approx(measured(a, res.x, x, f), rel=1e-7, abs=1e-14)
        errs[i] = res.measured_error
    return errs, predicted


def test_averaged_error_matches_theory(problem, threads):
    """q = 4 Gaussian sketches of m = 30 (d = 8): E error / f = d / (q (m - d - 1)) = 2/21.

    One run's error has a relative standard deviation of ~0.5 (measured: 0.51), so the mean
    of 400 seeds has a relative standard error of ~2.5%: 10% is 4 standard errors. The test
    asserts both the 10% band and 4 empirical standard errors.
    """
    q, m = 4, 30
    errs, predicted = _mean_error(problem, threads, range(400), q, m)
    assert predicted == pytest.approx(gaussian_averaged_error(m, D, q), rel=1e-12)
    assert predicted == pytest.approx(D / (q * (m - D - 1)), rel=1e-12)
    se = errs.std(ddof=1) / np.sqrt(errs.size)
    assert se / predicted < 0.035
    assert abs(errs.mean() - predicted) < min(0.1 * predicted, 4 * se)


@pytest.mark.slow
def test_averaged_error_matches_theory_many_seeds(problem, threads):
    q, m = 8, 20
    errs, predicted = _mean_error(problem, threads, range(1000, 4000), q, m)
    se = errs.std(ddof=1) / np.sqrt(errs.size)
    assert abs(errs.mean() - predicted) < min(0.05 * predicted, 4 * se)


def test_default_executor_and_result_fields(problem):
    a, b, _x, _f = problem
    res = distributed_lstsq(a, b, 3, 25, rng=1)  # local-thread executor made and closed inside
    assert isinstance(res, DistributedResult)
    assert res.q == 3 and res.sizes == (25, 25, 25) and res.arrived == (0, 1, 2)
    assert res.estimates.shape == (3, D)
    np.testing.assert_allclose(res.weights, 1 / 3)
    np.testing.assert_allclose(res.x, res.estimates.mean(axis=0), rtol=1e-13)
    assert res.sketch == {"sketch": "gaussian"} and res.lam == 0.0
    assert res.gathered.backend == "local-thread"
    text = res.summary()
    assert "3/3 workers averaged" in text and "exact theory" in text and "measured" in text
    # each worker draws its own sketch: three different sketched solutions
    assert len({tuple(np.round(e, 12)) for e in res.estimates}) == 3
    # reproducible from the seed
    again = distributed_lstsq(a, b, 3, 25, rng=1)
    np.testing.assert_array_equal(again.x, res.x)


def test_worker_task_solves_its_sketched_problem(problem):
    a, b, _, _ = problem
    sketch = GaussianSketch(20)
    x_k = sketch_and_solve_task(a, b, sketch, 123, 0.0)
    s = sketch.draw(N, rng=123).to_dense()
    np.testing.assert_allclose(x_k, np.linalg.lstsq(s @ a, s @ b, rcond=None)[0], rtol=1e-10)
    x_r = sketch_and_solve_task(a, b, sketch, 123, 0.5)
    ref = np.linalg.solve((s @ a).T @ (s @ a) + 0.5 * np.eye(D), (s @ a).T @ (s @ b))
    np.testing.assert_allclose(x_r, ref, rtol=1e-10)
    # rng= is the task's seed; the 0.1 keyword seed= still works, with a warning
    np.testing.assert_array_equal(sketch_and_solve_task(a, b, sketch, rng=123, lam=0.0), x_k)
    with pytest.warns(FrugalDeprecationWarning, match="'seed' is deprecated"):
        np.testing.assert_array_equal(sketch_and_solve_task(a, b, sketch, seed=123, lam=0.0), x_k)


def test_reference_can_be_skipped(problem):
    a, b, _, _ = problem
    res = distributed_lstsq(a, b, 2, 30, reference=False, rng=0)
    assert res.measured_error is None and res.f_star is None
    assert res.predicted_error is not None and "measured" not in res.summary()


# -- first k, heterogeneous workers ----------------------------------------------------------------


def test_first_k_of_q_averages_exactly_k(problem, threads):
    a, b, _, _ = problem
    q, k, m = 8, 3, 30
    full = distributed_lstsq(a, b, q, m, executor=threads, rng=5)
    res = distributed_lstsq(a, b, q, m, executor=threads, k=3, rng=5)
    assert len(res.arrived) == k and res.estimates.shape == (k, D)
    assert list(res.arrived) == sorted(res.arrived) and set(res.arrived) <= set(range(q))
    np.testing.assert_allclose(res.weights, 1 / k)
    np.testing.assert_allclose(res.x, res.estimates.mean(axis=0), rtol=1e-13)
    # the same seed gives each worker the same sketch: the k estimates are those of a full run
    np.testing.assert_allclose(res.estimates, full.estimates[list(res.arrived)], rtol=1e-12)
    assert res.predicted_error == pytest.approx(gaussian_averaged_error(m, D, k), rel=1e-12)
    assert res.sizes == (m,) * q and res.q == q
    assert f"{k}/{q} workers averaged" in res.summary()


def test_heterogeneous_sizes_inverse_variance_weights(problem, threads):
    a, b, _, _ = problem
    sizes = [12, 20, 35, 60]
    res = distributed_lstsq(a, b, 4, sizes, executor=threads, rng=2)
    raw = np.array(sizes) - D - 1
    np.testing.assert_allclose(res.weights, raw / raw.sum(), rtol=1e-14)
    np.testing.assert_allclose(res.x, res.weights @ res.estimates, rtol=1e-13)
    assert res.predicted_error == pytest.approx(D / raw.sum(), rel=1e-12)
    assert res.sizes == tuple(sizes)
    uni = distributed_lstsq(a, b, 4, sizes, executor=threads, weights="uniform", rng=2)
    np.testing.assert_allclose(uni.weights, 0.25)
    np.testing.assert_allclose(uni.estimates, res.estimates, rtol=1e-12)
    expected_uniform = sum(D / (16 * r) for r in raw)
    assert uni.predicted_error == pytest.approx(expected_uniform, rel=1e-12)
    assert uni.predicted_error > res.predicted_error


def test_heterogeneous_mean_error_matches_theory(problem, threads):
    """Inverse-variance weighted average of sizes (12, 20, 35): E error / f = 8/40 = 0.2.
    300 seeds; relative std of one error ~0.55 -> 4 standard errors ~13%."""
    a, b, _x, _f = problem
    sizes = [12, 20, 35]
    errs = np.array([
        distributed_lstsq(a, b, 3, sizes, executor=threads, rng=s).measured_error
        for s in range(300)
    ])  # fmt: skip
    predicted = gaussian_weighted_error(sizes, D, np.array([3, 11, 26]) / 40)
    assert predicted == pytest.approx(0.2, rel=1e-12)
    se = errs.std(ddof=1) / np.sqrt(errs.size)
    assert abs(errs.mean() - predicted) < 4 * se and se / predicted < 0.05


# -- stragglers and failures ----------------------------------------------------------------------


def test_deadline_on_simulated_clock_returns_the_fast_workers(problem, threads):
    a, b, _, _ = problem
    delays = TraceReplay(np.array([0.1, 5.0, 0.2, 5.0, 0.3, 5.0]), mode="cycle")
    inj = FaultInjector(threads, stragglers=delays, clock="simulated", rng=0)
    res = distributed_lstsq(a, b, 6, 30, executor=inj, deadline=1.0, rng=3)
    assert res.arrived == (0, 2, 4)
    assert res.gathered.stopped_by == "deadline" and set(res.gathered.pending) == {1, 3, 5}
    assert res.predicted_error == pytest.approx(gaussian_averaged_error(30, D, 3), rel=1e-12)
    full = distributed_lstsq(a, b, 6, 30, executor=threads, rng=3)
    np.testing.assert_allclose(res.estimates, full.estimates[[0, 2, 4]], rtol=1e-12)


def test_deadline_on_wall_clock_with_a_delayed_worker(problem):
    a, b, _, _ = problem
    with make_executor("local-thread", workers=4) as ex:
        delays = TraceReplay(np.array([0.0, 0.0, 0.0, 1.5]), mode="cycle")
        inj = FaultInjector(ex, stragglers=delays, clock="wall", rng=0)
        t0 = time.perf_counter()
        res = distributed_lstsq(a, b, 4, 30, executor=inj, deadline=0.4, rng=4)
        took = time.perf_counter() - t0
    assert res.arrived == (0, 1, 2) and res.gathered.pending == (3,)
    assert took < 1.2  # did not wait for the 1.5 s straggler
    assert res.predicted_error == pytest.approx(gaussian_averaged_error(30, D, 3), rel=1e-12)


def test_failed_workers_are_left_out(problem, threads):
    a, b, _, _ = problem
    inj = FaultInjector(threads, failures=FailureModel(tasks=frozenset({1, 3})), rng=0)
    res = distributed_lstsq(a, b, 5, 30, executor=inj, rng=6)
    assert res.arrived == (0, 2, 4)
    assert set(res.gathered.failures) == {1, 3}
    assert res.predicted_error == pytest.approx(gaussian_averaged_error(30, D, 3), rel=1e-12)


def test_all_workers_failing_raises(problem, threads):
    a, b, _, _ = problem
    inj = FaultInjector(threads, failures=FailureModel(p=1.0), rng=0)
    with pytest.raises(TaskFailedError, match="no worker returned a solution"):
        distributed_lstsq(a, b, 4, 30, executor=inj, rng=0)


def test_nothing_by_the_deadline_raises(problem, threads):
    a, b, _, _ = problem
    inj = FaultInjector(threads, stragglers=TraceReplay(np.array([5.0]), mode="cycle"),
                        clock="simulated", rng=0)  # fmt: skip
    with pytest.raises(TaskFailedError, match="raise the deadline"):
        distributed_lstsq(a, b, 3, 30, executor=inj, deadline=1.0, rng=0)


# -- sketch families, ridge, process pool ---------------------------------------------------------


@pytest.mark.parametrize("sketch", list(SKETCHES))
def test_every_sketch_family_runs(problem, threads, sketch):
    a, b, x, f = problem
    res = distributed_lstsq(a, b, 3, 40, sketch=sketch, executor=threads, rng=1)
    assert res.sketch["sketch"] == sketch and res.arrived == (0, 1, 2)
    assert np.all(np.isfinite(res.x))
    assert res.measured_error == pytest.approx(measured(a, res.x, x, f), rel=1e-7)
    # a sketch-and-solve answer: close to, but not at, the least-squares solution
    assert 0 < res.measured_error < 2.0
    if sketch == "gaussian":
        assert res.predicted_error == pytest.approx(gaussian_averaged_error(40, D, 3))
    else:
        assert res.predicted_error is None


def test_sketch_options_are_passed(problem, threads):
    a, b, _, _ = problem
    res = distributed_lstsq(a, b, 2, 40, sketch="leverage", sketch_options={"mix": 0.5},
                            executor=threads, rng=1)  # fmt: skip
    assert res.sketch == {"sketch": "leverage", "mix": 0.5}
    with pytest.raises(InvalidInputError, match="bad option"):
        distributed_lstsq(a, b, 2, 40, sketch="gaussian", sketch_options={"nope": 1},
                          executor=threads)  # fmt: skip


def test_ridge_has_no_prediction_and_a_finite_error(problem, threads):
    a, b, _, _ = problem
    lam = 0.3
    res = distributed_lstsq(a, b, 4, 30, lam=lam, executor=threads, rng=2)
    assert res.predicted_error is None and res.lam == lam
    xr = np.linalg.solve(a.T @ a + lam * np.eye(D), a.T @ b)
    fr = float(np.sum((b - a @ xr) ** 2) + lam * xr @ xr)
    assert res.f_star == pytest.approx(fr, rel=1e-9)
    dx = res.x - xr
    expected = (np.sum((a @ dx) ** 2) + lam * dx @ dx) / fr
    assert np.isfinite(res.measured_error)
    assert res.measured_error == pytest.approx(expected, rel=1e-6)
    # with ridge, sketches smaller than d + 2 are allowed
    small = distributed_lstsq(a, b, 2, 5, lam=lam, executor=threads, rng=2)
    assert np.all(np.isfinite(small.x)) and small.predicted_error is None


def test_process_pool_gives_the_same_answer(problem):
    a, b, _, _ = problem
    with make_executor("local", workers=2) as ex:
        res = distributed_lstsq(a, b, 4, 30, executor=ex, rng=9)
    assert res.gathered.backend == "local" and res.arrived == (0, 1, 2, 3)
    local = distributed_lstsq(a, b, 4, 30, rng=9)
    np.testing.assert_allclose(res.x, local.x, rtol=1e-12)


# -- bad input -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "kwargs", "needle"),
    [
        ((0, 30), {}, "q .* must be >= 1"),
        ((3, [30, 30]), {}, "2 sketch sizes for q=3"),
        ((2, [30, 30, 30]), {}, "3 sketch sizes for q=2"),
        ((3, D + 1), {}, r"must exceed d \+ 1"),
        ((3, [30, D + 1, 30]), {}, r"must exceed d \+ 1"),
        ((3, 0), {"lam": 1.0}, "m must be >= 1"),
        ((3, 30), {"k": 4}, "k must be <= 3"),
        ((3, 30), {"k": 0}, "k must be >= 1"),
        ((3, 30), {"sketch": "fourier"}, "sketch must be one of"),
        ((3, 30), {"weights": "optimal"}, "weights must be one of"),
        ((3, 30), {"deadline": 0.0}, "deadline must be > 0"),
        ((3, 30), {"lam": -1.0}, "lam must be >= 0"),
        ((2.5, 30), {}, "integer"),
    ],
)
def test_bad_input_raises(problem, args, kwargs, needle):
    a, b, _, _ = problem
    with pytest.raises(InvalidInputError, match=needle):
        distributed_lstsq(a, b, *args, **kwargs)


def test_bad_data_raises(problem):
    a, b, _, _ = problem
    with pytest.raises(InvalidInputError, match="entries but A has"):
        distributed_lstsq(a, b[:-1], 2, 30)
    bad = a.copy()
    bad[0, 0] = np.nan
    with pytest.raises(InvalidInputError, match="NaN"):
        distributed_lstsq(bad, b, 2, 30)
    with pytest.raises(InvalidInputError, match="n < d"):
        distributed_lstsq(a[:5], b[:5], 2, 30)
