"""FaultInjector: straggler delays and failures on a simulated or a wall clock."""

from __future__ import annotations

import math
import sys
import time

import cloudpickle
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from frugalml.errors import InvalidInputError
from frugalml.runtime import (
    FailureModel,
    FaultInjector,
    Pareto,
    ShiftedExponential,
    TraceReplay,
    concurrent_options,
    make_executor,
)

cloudpickle.register_pickle_by_value(sys.modules[__name__])

HANG = 60.0
MODEL = ShiftedExponential(shift=0.5, rate=1.0)


def square(x):
    return x * x


@pytest.fixture(scope="module")
def threads():
    ex = make_executor("local-thread", workers=4)
    yield ex
    ex.close()


def simulated(executor, *, rng, stragglers=MODEL, failures=None):
    return FaultInjector(
        executor, stragglers=stragglers, failures=failures, clock="simulated", rng=rng
    )


def reference(delays, k, deadline, failing=frozenset()):
    """What a simulated gather must return: tasks arrive in order of their delays."""
    n = len(delays)
    results, failures, arrivals = set(), set(), []
    for pos, i in enumerate(np.argsort(delays, kind="stable").tolist()):
        if deadline is not None and delays[i] > deadline:
            return results, failures, arrivals, "deadline", deadline
        arrivals.append(i)
        (failures if i in failing else results).add(i)
        if k is None:
            continue
        if len(results) >= k:
            return results, failures, arrivals, "k", delays[i]
        if len(results) + (n - pos - 1) < k:
            return results, failures, arrivals, "exhausted", delays[i]
    return results, failures, arrivals, "all", max(delays)


# -- simulated clock --------------------------------------------------------------------------


def test_simulated_arrival_order_is_argsort_of_delays(threads):
    inj = simulated(threads, rng=1)
    handles = inj.map(square, range(10))
    delays = np.array([inj.delay_of(h) for h in handles])
    assert np.all(delays >= MODEL.shift)
    assert len(set(delays.tolist())) == 10
    g = inj.gather(handles)
    assert g.clock == "simulated"
    assert g.stopped_by == "all"
    assert g.arrivals == tuple(np.argsort(delays).tolist())
    assert g.results == {i: i * i for i in range(10)}  # real results
    assert g.seconds == delays.max()
    assert g.pending == ()
    for i in range(10):
        assert g.timings[i].latency_seconds == delays[i]
        assert g.timings[i].run_seconds is not None


def test_simulated_first_k_returns_the_k_fastest(threads):
    inj = simulated(threads, rng=2, stragglers=Pareto(scale=1.0, alpha=1.5))
    handles = inj.map(square, range(12))
    delays = np.array([inj.delay_of(h) for h in handles])
    g = inj.gather(handles, k=5)
    fastest = np.argsort(delays)[:5].tolist()
    assert g.stopped_by == "k"
    assert set(g.results) == set(fastest)
    assert g.arrivals == tuple(fastest)
    assert g.results == {i: i * i for i in fastest}
    assert g.seconds == np.sort(delays)[4]
    assert set(g.pending) == set(range(12)) - set(fastest)
    assert g.done


def test_simulated_deadline_is_in_simulated_seconds(threads):
    inj = simulated(threads, rng=3)
    handles = inj.map(square, range(8))
    delays = np.sort([inj.delay_of(h) for h in handles])
    deadline = float((delays[2] + delays[3]) / 2)
    for k in (None, 8, 4):
        g = inj.gather(handles, k=k, deadline=deadline)
        assert g.stopped_by == "deadline"
        assert g.seconds == deadline
        assert len(g.results) == 3
        assert all(inj.delay_of(handles[i]) <= deadline for i in g.results)
        assert all(inj.delay_of(handles[i]) > deadline for i in g.pending)
        assert len(g.pending) == 5
    # a deadline after every task: all arrive
    g = inj.gather(handles, deadline=float(delays[-1]) + 1.0)
    assert g.stopped_by == "all"
    assert g.seconds == delays[-1]


def test_simulated_on_result_stops_in_simulated_order(threads):
    inj = simulated(threads, rng=4)
    handles = inj.map(square, range(9))
    delays = np.array([inj.delay_of(h) for h in handles])
    order = np.argsort(delays).tolist()
    calls = []

    def on_result(i, value):
        calls.append((i, value))
        return len(calls) == 4

    g = inj.gather(handles, on_result=on_result)
    assert g.stopped_by == "callback"
    assert calls == [(i, i * i) for i in order[:4]]
    assert g.seconds == delays[order[3]]
    assert set(g.pending) == set(order[4:])


def test_simulated_failures_and_exhaustion(threads):
    inj = simulated(threads, rng=5, failures=FailureModel(tasks=frozenset({0, 1, 2, 3})))
    handles = inj.map(square, range(6))
    g = inj.gather(handles, k=3)
    delays = [inj.delay_of(h) for h in handles]
    want = reference(delays, 3, None, failing={0, 1, 2, 3})
    assert g.stopped_by == "exhausted" == want[3]
    assert set(g.results) == want[0]
    assert set(g.failures) == want[1]
    assert all(f.error_type == "InjectedFailure" for f in g.failures.values())

    g = inj.gather(handles)
    assert g.stopped_by == "all"
    assert set(g.failures) == {0, 1, 2, 3}
    assert g.results == {4: 16, 5: 25}


def test_simulated_clock_needs_a_straggler_model(threads):
    with pytest.raises(InvalidInputError, match="straggler model"):
        FaultInjector(threads, clock="simulated")


@settings(max_examples=60, deadline=None)
@given(
    data=st.data(),
    n=st.integers(1, 20),
    seed=st.integers(0, 2**32 - 1),
    use_deadline=st.booleans(),
    want_all=st.booleans(),
)
def test_simulated_gather_property(threads, data, n, seed, use_deadline, want_all):
    k = None if want_all else data.draw(st.integers(1, n), label="k")
    failing = frozenset(data.draw(st.sets(st.integers(0, n - 1), max_size=n), label="failing"))
    inj = simulated(threads, rng=seed, failures=FailureModel(tasks=failing))
    handles = inj.map(square, range(n))
    delays = [inj.delay_of(h) for h in handles]
    deadline = (
        data.draw(st.floats(0.0, 6.0, allow_nan=False), label="deadline") if use_deadline else None
    )
    results, failures, arrivals, stopped_by, elapsed = reference(delays, k, deadline, failing)
    g = inj.gather(handles, k=k, deadline=deadline)
    assert g.stopped_by == stopped_by
    assert g.seconds == elapsed
    assert g.arrivals == tuple(arrivals)
    assert g.results == {i: i * i for i in results}
    assert set(g.failures) == failures
    assert set(g.pending) == set(range(n)) - set(arrivals)
    assert all(g.timings[i].latency_seconds == delays[i] for i in arrivals)


def test_256_simulated_tasks_on_two_cores_run_fast(threads):
    # ~110 simulated seconds per task: some seven hours if they were slept in turn
    model = ShiftedExponential(shift=100.0, rate=0.1)
    inj = simulated(threads, rng=6, stragglers=model)
    t0 = time.perf_counter()
    handles = inj.map(square, range(256))
    g = inj.gather(handles, k=200)
    wall = time.perf_counter() - t0
    delays = np.array([inj.delay_of(h) for h in handles])
    assert g.stopped_by == "k"
    assert g.seconds == np.sort(delays)[199]
    assert g.seconds > 100.0
    assert set(g.results) == set(np.argsort(delays)[:200].tolist())
    assert all(v == i * i for i, v in g.results.items())
    assert wall < 30.0, f"256 simulated tasks took {wall:.1f}s of wall time"


def test_delays_are_reproducible_from_the_seed(threads):
    def delays(seed):
        inj = simulated(threads, rng=seed)
        return [inj.delay_of(h) for h in inj.map(square, range(5))]

    assert delays(7) == delays(7)
    assert delays(7) != delays(8)


# -- failures ---------------------------------------------------------------------------------


@pytest.mark.parametrize("clock", ["wall", "simulated"])
def test_listed_tasks_fail(threads, clock):
    inj = FaultInjector(
        threads,
        stragglers=None if clock == "wall" else MODEL,
        failures=FailureModel(tasks={1, 3}),
        clock=clock,
        rng=0,
    )
    handles = inj.map(square, range(6))
    g = inj.gather(handles, deadline=HANG)
    assert g.stopped_by == "all"
    assert set(g.failures) == {1, 3}
    assert {f.error_type for f in g.failures.values()} == {"InjectedFailure"}
    assert g.results == {0: 0, 2: 4, 4: 16, 5: 25}
    # numbering counts submissions through the injector: later ones do not fail
    later = inj.map(square, range(4))
    assert inj.gather(later, deadline=HANG).results == {i: i * i for i in range(4)}


@pytest.mark.parametrize("p", [0.1, 0.5])
def test_failure_probability_matches_binomial(threads, p):
    n = 400
    inj = FaultInjector(threads, failures=FailureModel(p=p), rng=9)
    g = inj.gather(inj.map(square, range(n)), deadline=HANG)
    assert g.stopped_by == "all"
    failed = len(g.failures)
    sd = math.sqrt(n * p * (1 - p))
    assert abs(failed - n * p) < 4 * sd, (
        f"{failed}/{n} failed with p={p}: expected {n * p:.0f} +- 4*{sd:.1f}"
    )
    assert {f.error_type for f in g.failures.values()} == {"InjectedFailure"}
    assert all(g.results[i] == i * i for i in g.results)


def test_failure_probability_zero_and_one(threads):
    inj = FaultInjector(threads, failures=FailureModel(p=0.0), rng=1)
    assert inj.gather(inj.map(square, range(20)), deadline=HANG).failures == {}
    inj = FaultInjector(threads, failures=FailureModel(p=1.0), rng=1)
    g = inj.gather(inj.map(square, range(20)), deadline=HANG)
    assert set(g.failures) == set(range(20))


def test_crash_needs_a_process_backend(threads):
    with pytest.raises(InvalidInputError, match="crash"):
        FaultInjector(threads, failures=FailureModel(tasks={0}, kind="crash"))


def test_crash_on_local_process_executor_is_recorded():
    with make_executor("local", workers=2) as ex:
        inj = FaultInjector(ex, failures=FailureModel(tasks={0}, kind="crash"))
        g = inj.gather([inj.submit(square, 2)], deadline=HANG)
        assert g.stopped_by == "all", g.summary()
        assert set(g.failures) == {0}
        assert g.failures[0].error_type != "InjectedFailure"  # the worker died; nothing raised
        # the executor recovers; task 1 is not listed
        g = inj.gather([inj.submit(square, 3)], deadline=HANG)
        assert g.results == {0: 9}


# -- wall clock -------------------------------------------------------------------------------


def test_wall_clock_trace_delays_are_slept(threads):
    trace = TraceReplay(np.array([0.0, 0.0, 1.5, 1.5]), mode="cycle")
    inj = FaultInjector(threads, stragglers=trace, clock="wall")
    handles = inj.map(square, [1, 2, 3, 4])
    assert [inj.delay_of(h) for h in handles] == [0.0, 0.0, 1.5, 1.5]
    g = inj.gather(handles, k=2, deadline=HANG)
    assert g.clock == "wall"
    assert g.stopped_by == "k"
    assert g.results == {0: 1, 1: 4}
    assert g.pending == (2, 3)
    rest = inj.gather(handles[2:], deadline=HANG)
    assert rest.results == {0: 9, 1: 16}
    assert all(t.run_seconds >= 1.5 for t in rest.timings.values())  # the delay was slept


# -- bad input --------------------------------------------------------------------------------


def test_bad_injector_arguments(threads):
    with pytest.raises(InvalidInputError, match="Executor"):
        FaultInjector(object())
    with pytest.raises(InvalidInputError, match="StragglerModel"):
        FaultInjector(threads, stragglers="pareto")
    with pytest.raises(InvalidInputError, match="FailureModel"):
        FaultInjector(threads, failures=0.1)
    with pytest.raises(InvalidInputError, match="clock"):
        FaultInjector(threads, stragglers=MODEL, clock="cpu")
    with pytest.raises(InvalidInputError):
        FaultInjector(threads, rng=-3)
    with pytest.raises(InvalidInputError):
        FailureModel(p=1.5)
    with pytest.raises(InvalidInputError):
        FailureModel(kind="explode")
    inj = FaultInjector(threads, stragglers=MODEL, clock="simulated", rng=0)
    with pytest.raises(InvalidInputError, match="callable"):
        inj.submit("square")
    foreign = threads.submit(square, 2)
    with pytest.raises(InvalidInputError, match="injector"):
        inj.delay_of(foreign)
    with pytest.raises(InvalidInputError):
        inj.gather([foreign])
    with pytest.raises(InvalidInputError):
        inj.gather([])
    h = inj.submit(square, 2)
    for kwargs in ({"k": 2}, {"k": 0}, {"deadline": -1.0}):
        with pytest.raises(InvalidInputError):
            inj.gather([h], **kwargs)
    assert inj.gather([h]).results == {0: 4}
    assert threads.gather([foreign], deadline=HANG).results == {0: 4}


def test_concurrent_options_run_all_waiting_tasks_at_once():
    """8 tasks sleeping 0.5 s each finish together, not 4 rounds of 2 (2-core machine)."""
    with make_executor("local-thread", **concurrent_options("local-thread", 8)) as ex:
        got = ex.gather([ex.submit(time.sleep, 0.5) for _ in range(8)], deadline=60)
    assert got.stopped_by == "all" and len(got.results) == 8
    assert got.seconds < 1.5, f"8 sleeping tasks took {got.seconds:.2f}s: not concurrent"
    with pytest.raises(InvalidInputError, match="backend must be one of"):
        concurrent_options("slurm", 8)


# -- communication model on the simulated clock ---------------------------------------------


def zeros_of(n):
    return np.zeros(n)


@pytest.mark.parametrize(
    ("seed", "backend"), [(s, "local") for s in range(3)] + [(3, "local-thread")]
)
def test_comm_model_adds_measured_transfer_time(seed, backend):
    """Completion = delay + latency + (sent + received) / bandwidth, with the bytes each
    task really moved; arrivals follow those times (checked against a sort of them)."""
    from frugalml.runtime import CommModel

    gen = np.random.default_rng(seed)
    n = 12
    delays = gen.uniform(0.0, 0.01, size=n)
    sizes = gen.integers(0, 200_000, size=n)  # result lengths: up to 1.6 MB back
    comm = CommModel(latency=0.002, bandwidth=1e8)
    with make_executor(backend, workers=2) as ex:
        inj = FaultInjector(
            ex, stragglers=TraceReplay(delays), clock="simulated", comm=comm, rng=seed
        )
        handles = [inj.submit(zeros_of, int(s)) for s in sizes]
        got = inj.gather(handles)
    assert got.stopped_by == "all"
    expected = np.array(
        [
            inj.delay_of(handles[i]) + comm.transfer_time(got.bytes_sent[i], got.bytes_received[i])
            for i in range(n)
        ]
    )
    for i in range(n):
        assert got.bytes_sent[i] > 0  # measured on the thread pool too
        assert got.bytes_received[i] >= 8 * sizes[i]
        assert got.timings[i].latency_seconds == pytest.approx(expected[i], rel=1e-12)
    assert list(got.arrivals) == np.argsort(expected, kind="stable").tolist()
    assert got.seconds == pytest.approx(expected.max())


def test_comm_model_needs_the_simulated_clock(threads):
    from frugalml.runtime import CommModel

    with pytest.raises(InvalidInputError, match="simulated"):
        FaultInjector(threads, stragglers=MODEL, clock="wall", comm=CommModel(0.01, 1e8))
    with pytest.raises(InvalidInputError, match="bandwidth"):
        CommModel(0.01, 0.0)
    with pytest.raises(InvalidInputError, match="no measured"):
        CommModel.for_backend("smoke-signals")
    assert CommModel.for_backend("ray").bandwidth > 0
