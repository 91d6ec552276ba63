"""The executor contract, checked on every backend: gather all / first k / deadline,
failures, on_result, argument checks.

Each backend's executor is created once per module (Ray and Dask take seconds to start) and
closed at teardown. Tests that leave slow tasks running come last in the file, so that the
faster ones do not queue behind them.
"""

from __future__ import annotations

import sys
import time

import cloudpickle
import pytest

from frugalml.errors import InvalidInputError, TaskFailedError
from frugalml.runtime import Executor, Gathered, TaskHandle, make_executor

from ._backends import BACKEND_OPTIONS

# Ship this module's task functions by value, so that workers which cannot import the test
# package (Ray, Lithops) still run them.
cloudpickle.register_pickle_by_value(sys.modules[__name__])

#: generous bound for a gather that should finish quickly; only guards against hangs
HANG = 120.0


# -- task functions (module level: picklable by every backend) --------------------------------


def square(x):
    return x * x


def add(a, b=0, *, c=0):
    return a + b + c


def nap(seconds):
    time.sleep(seconds)
    return seconds


def nap_value(value, seconds):
    time.sleep(seconds)
    return value


def boom(message):
    raise ValueError(message)


# -- fixtures ---------------------------------------------------------------------------------


@pytest.fixture(scope="module", params=list(BACKEND_OPTIONS))
def executor(request):
    name, options = BACKEND_OPTIONS[request.param]
    ex = make_executor(name, **options)
    try:
        # Start the workers (processes, Ray workers) before the tests look at latencies.
        warm = ex.gather([ex.submit(nap, 0.2) for _ in range(4)], deadline=HANG)
        assert warm.stopped_by == "all", warm.summary()
        yield ex
    finally:
        ex.close()


@pytest.fixture
def slow(executor):
    """Seconds a "slow" task sleeps: long enough to be still running when a gather returns.

    Lithops starts a fresh interpreter per task (about a second on two cores), so its slow
    tasks sleep longer to keep the same margin."""
    return 4.0 if executor.backend == "lithops" else 3.0


@pytest.fixture(scope="module")
def three_squares(executor):
    """Handles of three tasks, submitted once per backend (a handle may be gathered again)."""
    return [executor.submit(square, i) for i in range(3)]


@pytest.fixture
def other_executor():
    ex = make_executor("local-thread", workers=1)
    yield ex
    ex.close()


def check_timings(g: Gathered, indices):
    assert set(g.timings) == set(indices)
    for i in indices:
        t = g.timings[i]
        assert t.latency_seconds >= 0, f"task {i}: negative latency {t.latency_seconds}"
        assert t.run_seconds is not None
        assert t.run_seconds >= 0
        assert t.latency_seconds >= t.run_seconds, (
            f"task {i}: latency {t.latency_seconds} < run time {t.run_seconds}"
        )


# -- fast tests -------------------------------------------------------------------------------


def test_executor_protocol(executor):
    assert isinstance(executor, Executor)
    assert executor.backend in BACKEND_OPTIONS
    assert "open" in repr(executor)


def test_gather_all_returns_every_value(executor):
    n = 8
    handles = [executor.submit(square, i) for i in range(n)]
    assert all(isinstance(h, TaskHandle) for h in handles)
    assert [h.backend for h in handles] == [executor.backend] * n
    ids = [h.task_id for h in handles]
    assert ids == list(range(ids[0], ids[0] + n))  # a submission counter

    g = executor.gather(handles)
    assert g.stopped_by == "all"
    assert g.results == {i: i * i for i in range(n)}
    assert g.failures == {}
    assert g.pending == ()
    assert sorted(g.arrivals) == list(range(n))
    assert (g.n, g.k, g.backend, g.clock) == (n, n, executor.backend, "wall")
    assert g.done
    assert g.finished == tuple(range(n))
    assert [g.value(i) for i in range(n)] == [i * i for i in range(n)]
    assert g.seconds >= 0
    check_timings(g, range(n))


def test_task_run_time_is_measured_on_the_worker(executor):
    g = executor.gather([executor.submit(nap, 0.3), executor.submit(nap, 0.0)], deadline=HANG)
    assert g.results == {0: 0.3, 1: 0.0}
    assert g.timings[0].run_seconds >= 0.3
    assert g.timings[0].latency_seconds >= g.timings[0].run_seconds
    assert g.timings[1].run_seconds < 0.3


def test_args_kwargs_lambda_and_closure(executor):
    offset = 100

    def closure(x):
        return x + offset

    handles = [
        executor.submit(add, 1, 2, c=3),
        executor.submit(add, a=5),
        executor.submit(lambda x, *, scale: x * scale + offset, 3, scale=2),
        executor.submit(closure, 7),
        executor.submit(sorted, [3, 1, 2], reverse=True),
    ]
    g = executor.gather(handles, deadline=HANG)
    assert g.stopped_by == "all"
    assert g.results == {0: 6, 1: 5, 2: 106, 3: 107, 4: [3, 2, 1]}


def test_map_submits_in_order(executor):
    g = executor.gather(executor.map(square, [3, 4, 5]), deadline=HANG)
    assert g.results == {0: 9, 1: 16, 2: 25}


def test_failed_task_is_recorded_and_others_succeed(executor):
    handles = [
        executor.submit(square, 2),
        executor.submit(boom, "bad input 1"),
        executor.submit(square, 3),
    ]
    g = executor.gather(handles, deadline=HANG)
    assert g.stopped_by == "all"
    assert g.results == {0: 4, 2: 9}
    assert set(g.failures) == {1}
    failure = g.failures[1]
    assert failure.index == 1
    assert failure.error_type == "ValueError"
    assert "bad input 1" in failure.message
    assert "ValueError" in failure.traceback
    assert str(failure) == "task 1: ValueError: bad input 1"
    assert sorted(g.arrivals) == [0, 1, 2]
    assert not g.done  # k defaults to n, and one failed
    assert g.finished == (0, 2)
    check_timings(g, [0, 1, 2])

    assert g.value(0) == 4
    with pytest.raises(TaskFailedError, match="ValueError: bad input 1"):
        g.value(1)
    with pytest.raises(InvalidInputError):
        g.value(3)
    with pytest.raises(InvalidInputError):
        g.value(-1)


def test_first_k_with_failures(executor):
    handles = [executor.submit(boom, "x"), executor.submit(square, 5), executor.submit(boom, "y")]
    g = executor.gather(handles, k=1, deadline=HANG)
    assert g.stopped_by == "k"
    assert g.results == {1: 25}
    assert g.done
    assert set(g.failures) <= {0, 2}
    assert set(g.failures) | set(g.pending) | {1} == {0, 1, 2}


def test_exhausted_when_too_many_fail(executor):
    handles = [
        executor.submit(boom, "first"),
        executor.submit(square, 4),
        executor.submit(boom, "second"),
    ]
    g = executor.gather(handles, k=2, deadline=HANG)
    assert g.stopped_by == "exhausted"
    assert not g.done
    assert set(g.failures) == {0, 2}
    assert all(f.error_type == "ValueError" for f in g.failures.values())
    assert g.results in ({}, {1: 16})
    assert (1 in g.results) != (1 in g.pending)
    with pytest.raises(TaskFailedError):
        g.value(2)


def test_on_result_called_for_each_success_in_arrival_order(executor):
    delays = [0.6, 0.0, 0.3, 0.0, 0.1]
    handles = [executor.submit(nap_value, 10 + i, d) for i, d in enumerate(delays)]
    handles.append(executor.submit(boom, "not a result"))
    calls = []

    def on_result(index, value):
        calls.append((index, value))
        return None

    g = executor.gather(handles, on_result=on_result, deadline=HANG)
    assert g.stopped_by == "all"
    assert g.results == {i: 10 + i for i in range(5)}
    assert set(g.failures) == {5}
    assert calls == [(i, g.results[i]) for i in g.arrivals if i in g.results]


def test_on_result_sees_every_recorded_result(executor):
    """Every success that ``gather`` records went through ``on_result`` ("called on every
    successful arrival"), also when several arrive at once and the first one stops it."""
    handles = [executor.submit(square, i) for i in range(5)]
    assert executor.gather(handles, deadline=HANG).stopped_by == "all"  # all done now
    calls = []

    def stop_at_once(index, value):
        calls.append(index)
        return True

    g = executor.gather(handles, on_result=stop_at_once, deadline=HANG)
    assert g.stopped_by == "callback"
    assert len(calls) == 1
    assert set(g.results) == set(calls), (
        f"results {sorted(g.results)} were recorded but on_result saw only {calls}"
    )


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"k": 4}, "exceeds"),
        ({"k": 0}, ">= 1"),
        ({"k": -1}, ">= 1"),
        ({"k": 2.5}, "integer"),
        ({"k": True}, "integer"),
        ({"k": "2"}, "integer"),
        ({"deadline": -0.5}, ">= 0"),
        ({"deadline": float("nan")}, "finite"),
        ({"deadline": "soon"}, "real number"),
    ],
)
def test_bad_gather_arguments(executor, three_squares, kwargs, match):
    with pytest.raises(InvalidInputError, match=match):
        executor.gather(three_squares, **kwargs)
    # the executor and the handles are still fine
    assert executor.gather(three_squares, deadline=HANG).results == {0: 0, 1: 1, 2: 4}


def test_bad_handles(executor, other_executor):
    with pytest.raises(InvalidInputError, match="at least one"):
        executor.gather([])
    h = executor.submit(square, 6)
    with pytest.raises(InvalidInputError, match="TaskHandle"):
        executor.gather([h, 3])
    with pytest.raises(InvalidInputError, match="twice"):
        executor.gather([h, h])
    foreign = other_executor.submit(square, 7)
    with pytest.raises(InvalidInputError, match="another executor"):
        executor.gather([h, foreign])
    with pytest.raises(InvalidInputError, match="another executor"):
        other_executor.gather([foreign, h])
    executor.cancel([foreign])  # not ours: ignored
    assert executor.gather([h], deadline=HANG).results == {0: 36}
    assert other_executor.gather([foreign], deadline=HANG).results == {0: 49}


def test_submit_rejects_non_callable(executor):
    with pytest.raises(InvalidInputError, match="callable"):
        executor.submit(42)


def test_deadline_zero_returns_at_once(executor):
    h = executor.submit(square, 9)
    g = executor.gather([h], deadline=0)
    assert g.stopped_by == "deadline"
    assert g.results == {}
    assert g.pending == (0,)
    assert executor.gather([h], deadline=HANG).results == {0: 81}


# -- tests that leave slow tasks running (last) -----------------------------------------------


def cancel_slow(executor, handles, submitted_at: float, slow: float) -> None:
    """Cancel, and on Dask wait until the sleepers are done: Dask cannot stop a running task,
    yet its scheduler counts the cancelled task's thread as free and would queue the next
    test's tasks behind the sleeper."""
    executor.cancel(handles)
    if executor.backend == "dask":
        time.sleep(max(0.0, submitted_at + slow + 0.3 - time.perf_counter()))


def test_on_result_true_stops_the_gather(executor, slow):
    handles = [executor.submit(nap_value, i, 0.0) for i in range(3)]
    handles += [executor.submit(nap_value, i, slow) for i in (3, 4)]
    calls = []

    def on_result(index, value):
        calls.append((index, value))
        return len(calls) == 2

    t0 = time.perf_counter()
    g = executor.gather(handles, on_result=on_result, deadline=HANG)
    elapsed = time.perf_counter() - t0
    cancel_slow(executor, handles, t0, slow)
    assert g.stopped_by == "callback"
    assert len(calls) == 2
    assert calls == [(i, g.results[i]) for i in g.arrivals if i in g.results][:2]
    assert all(i < 3 and v == i for i, v in calls)
    assert {3, 4} <= set(g.pending)
    assert elapsed < slow - 0.5, f"gather took {elapsed:.2f}s: did it wait for the slow tasks?"


def test_first_k_returns_the_fast_tasks(executor, slow):
    handles = [executor.submit(nap, s) for s in (0.0, 0.0, slow, slow)]
    t0 = time.perf_counter()
    g = executor.gather(handles, k=2, deadline=HANG)
    elapsed = time.perf_counter() - t0
    cancel_slow(executor, handles[2:], t0, slow)
    assert g.stopped_by == "k"
    assert g.results == {0: 0.0, 1: 0.0}
    assert g.pending == (2, 3)
    assert sorted(g.arrivals) == [0, 1]
    assert g.failures == {}
    assert (g.n, g.k) == (4, 2)
    assert g.done
    check_timings(g, [0, 1])
    with pytest.raises(TaskFailedError, match="not finished"):
        g.value(2)
    assert elapsed < slow - 0.5, f"gather took {elapsed:.2f}s: did it wait for the slow tasks?"
    assert g.seconds <= elapsed


def test_deadline_returns_pending(executor, slow):
    handles = [executor.submit(nap, slow) for _ in range(2)]
    t0 = time.perf_counter()
    g = executor.gather(handles, deadline=0.3)
    elapsed = time.perf_counter() - t0
    executor.cancel(handles)
    assert g.stopped_by == "deadline"
    assert g.pending == (0, 1)
    assert g.results == {}
    assert g.failures == {}
    assert g.arrivals == ()
    assert not g.done
    assert 0.3 <= g.seconds <= elapsed
    assert elapsed < slow - 0.5, f"gather(deadline=0.3) took {elapsed:.2f}s"
    with pytest.raises(TaskFailedError):
        g.value(0)
    if executor.backend != "lithops":  # Lithops cannot cancel a dispatched call
        # Cancelled (or, where a running task cannot be stopped, finished) tasks end; a
        # gather on them does not hang.
        after = executor.gather(handles, deadline=HANG)
        assert after.stopped_by == "all", after.summary()
        assert set(after.results) | set(after.failures) == {0, 1}
        assert all(v == slow for v in after.results.values())


def test_latency_is_never_negative_on_a_fresh_thread_executor():
    """A task's latency counts from its submission, so it is >= 0 and >= its run time, also
    when a thread runs the task before ``submit`` has returned (a fresh pool's first task)."""
    bad = []
    for _ in range(20):
        with make_executor("local-thread", workers=2) as ex:
            g = ex.gather([ex.submit(square, 3)], deadline=HANG)
        assert g.results == {0: 9}
        t = g.timings[0]
        if t.latency_seconds < 0 or t.latency_seconds < t.run_seconds:
            bad.append(t)
    assert not bad, f"{len(bad)}/20 first tasks arrived before they were submitted: {bad[:3]}"
