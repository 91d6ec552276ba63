"""Crashing workers, closing executors, and choosing backends by name."""

from __future__ import annotations

import contextlib
import importlib
import os
import sys
import time

import cloudpickle
import psutil
import pytest

from frugalml import _optional
from frugalml.errors import BackendUnavailableError, FrugalError, InvalidInputError
from frugalml.runtime import BACKENDS, backend_info, make_executor

from ._backends import BACKEND_OPTIONS, PROCESS_BACKENDS

cloudpickle.register_pickle_by_value(sys.modules[__name__])

HANG = 60.0


def square(x):
    return x * x


def pid_of_worker(seconds):
    time.sleep(seconds)
    return os.getpid()


def die(code):
    os._exit(code)


def nap(seconds):
    time.sleep(seconds)
    return seconds


def leftover_children(before, child_processes, timeout=15.0):
    """Children started since ``before`` that are still alive after ``timeout`` seconds.

    They are described, then killed by pid so as not to linger for the rest of the session.
    """
    left = child_processes() - before
    end = time.monotonic() + timeout
    while left and time.monotonic() < end:
        time.sleep(0.25)
        left = child_processes() - before
    described = describe(left)
    for pid in left:
        with contextlib.suppress(psutil.Error):
            psutil.Process(pid).kill()
    return described


def describe(pids):
    out = []
    for pid in sorted(pids):
        try:
            out.append(f"{pid}: {' '.join(psutil.Process(pid).cmdline())[:120]}")
        except psutil.Error:
            out.append(f"{pid}: (gone)")
    return out


@pytest.fixture(scope="module", params=PROCESS_BACKENDS)
def fresh(request, child_processes):
    """A new executor of each process backend, and this process's children before it."""
    before = child_processes()
    name, options = BACKEND_OPTIONS[request.param]
    ex = make_executor(name, **options)
    yield ex, before
    ex.close()


def test_crashing_task_is_a_failure_and_executor_stays_usable(fresh):
    ex, _ = fresh
    # Which processes run tasks now (four at once, so each takes a worker).
    warm = ex.gather([ex.submit(pid_of_worker, 0.3) for _ in range(4)], deadline=HANG)
    assert warm.stopped_by == "all", warm.summary()
    old_pids = set(warm.results.values())
    assert os.getpid() not in old_pids

    t0 = time.perf_counter()
    g = ex.gather([ex.submit(die, 3)], deadline=HANG)
    elapsed = time.perf_counter() - t0
    assert g.stopped_by == "all", f"{g.summary()}: the crash was not noticed ({elapsed:.1f}s)"
    assert g.results == {}
    assert set(g.failures) == {0}
    assert g.failures[0].error_type
    assert g.failures[0].message
    assert g.timings[0].latency_seconds >= 0

    after = ex.gather([ex.submit(pid_of_worker, 0.0) for _ in range(3)], deadline=HANG)
    assert after.stopped_by == "all", after.summary()
    assert len(after.results) == 3
    if ex.backend == "local":
        # Only the dead worker was replaced: the others are the same processes, still alive.
        alive = {pid for pid in old_pids if psutil.pid_exists(pid)}
        assert len(alive) >= len(old_pids) - 1, (old_pids, alive)
    g = ex.gather([ex.submit(square, i) for i in range(4)], deadline=HANG)
    assert g.results == {0: 0, 1: 1, 2: 4, 3: 9}


def test_close_leaves_no_child_processes(fresh, child_processes):
    """close() stops the workers, a straggler still running included ("running tasks are
    stopped rather than waited for"), so no process started by the executor outlives it."""
    ex, before = fresh
    assert ex.gather([ex.submit(square, i) for i in range(4)], deadline=HANG).done
    straggler = ex.submit(nap, 30.0)
    assert ex.gather([straggler], deadline=1.0).pending == (0,)
    ex.close()
    assert "closed" in repr(ex)

    left = leftover_children(before, child_processes)
    assert not left, f"{ex.backend}: close() left {len(left)} child process(es): {left}"


def test_local_close_after_finished_tasks_leaves_no_child_processes(child_processes):
    before = child_processes()
    ex = make_executor("local", workers=2)
    g = ex.gather([ex.submit(pid_of_worker, 0.2) for _ in range(2)], deadline=HANG)
    assert g.stopped_by == "all", g.summary()
    assert set(g.results.values()) <= child_processes() - before  # the pool's workers
    ex.close()
    left = leftover_children(before, child_processes)
    assert not left, f"close() left {len(left)} child process(es): {left}"


def blas_setup():
    from threadpoolctl import threadpool_info

    threads = {d["num_threads"] for d in threadpool_info() if d["user_api"] == "blas"}
    return threads, os.environ.get("OMP_NUM_THREADS")


@pytest.mark.parametrize("blas_threads", [1, 2])
def test_local_workers_limit_blas_threads(blas_threads):
    with make_executor("local", workers=1, blas_threads=blas_threads) as ex:
        g = ex.gather([ex.submit(blas_setup)], deadline=HANG)
    assert g.results == {0: ({blas_threads}, str(blas_threads))}


def test_closed_executor_rejects_work(fresh):
    ex, _ = fresh
    ex.close()  # idempotent
    with pytest.raises(FrugalError, match="closed"):
        ex.submit(square, 2)
    with pytest.raises(FrugalError, match="closed"):
        ex.map(square, [1, 2])


def test_closed_thread_executor_rejects_work():
    with make_executor("local-thread", workers=2) as ex:
        handles = [ex.submit(square, 3)]
        assert ex.gather(handles).results == {0: 9}
    with pytest.raises(FrugalError, match="closed"):
        ex.submit(square, 2)
    with pytest.raises(FrugalError, match="closed"):
        ex.gather(handles)
    ex.cancel(handles)  # a no-op once closed
    ex.close()


def test_thread_executor_is_not_process_isolated():
    with make_executor("local-thread", workers=1) as ex:
        assert ex.isolates_processes is False
        assert ex.gather([ex.submit(os.getpid)]).results == {0: os.getpid()}


# -- choosing a backend -----------------------------------------------------------------------


@pytest.mark.parametrize("name", ["nope", "", "Local", "threads"])
def test_unknown_backend_raises(name):
    with pytest.raises(InvalidInputError, match="backend must be one of"):
        make_executor(name)
    with pytest.raises(InvalidInputError):
        backend_info(name)


@pytest.mark.parametrize(
    ("backend", "module", "extra"),
    [
        ("ray", "ray", "distributed"),
        ("dask", "dask", "distributed"),
        ("lithops", "lithops", "serverless"),
    ],
)
def test_missing_extra_names_it(monkeypatch, backend, module, extra):
    real = importlib.import_module

    def fake_import(name, package=None):
        if name.split(".")[0] == module:
            raise ImportError(f"No module named {name!r}")
        return real(name, package)

    monkeypatch.setattr(_optional.importlib, "import_module", fake_import)
    with pytest.raises(BackendUnavailableError, match=rf"frugalml\[{extra}\]") as info:
        make_executor(backend)
    assert isinstance(info.value, ImportError)
    assert info.value.package == module
    assert info.value.extra == extra


def test_backend_info_reports_installed_backends():
    assert set(BACKENDS) == set(BACKEND_OPTIONS)
    for name in ("local", "local-thread"):
        info = backend_info(name)
        assert (info.name, info.installed, info.extra) == (name, True, None)
    for name, extra in [("ray", "distributed"), ("dask", "distributed"), ("lithops", "serverless")]:
        info = backend_info(name)
        assert info.installed
        assert info.extra == extra
        assert info.version


# -- a dead worker costs only its own task ------------------------------------------------


def nap_or_die(i, dying):
    if i in dying:
        os._exit(3)
    time.sleep(0.3)
    return i


#: one task slot per worker process, so that a dying process holds no one else's task
ONE_SLOT = {
    "local": {"workers": 4},
    "ray": {"workers": 2},
    "dask": {"workers": 2, "threads_per_worker": 1},
    "lithops": {"workers": 4},
}


@pytest.mark.parametrize("backend", PROCESS_BACKENDS)
def test_two_dying_tasks_of_sixteen_fail_alone(backend):
    """16 tasks, 2 of which kill their worker: exactly those 2 fail, the other 14 finish
    (the README's promise that a dead worker is one erasure)."""
    with make_executor(backend, **ONE_SLOT[backend]) as ex:
        handles = [ex.submit(nap_or_die, i, (3, 11)) for i in range(16)]
        got = ex.gather(handles, deadline=HANG)
        assert got.stopped_by == "all", got.summary()
        failed = set(got.failures)
        if backend == "dask":
            # Dask's scheduler sends a task to a busy worker now and then (tasks submitted
            # one by one are not queued on the scheduler until their group is large), and
            # such a task dies with that worker: at most one more erasure per crash.
            assert {3, 11} <= failed and len(failed) <= 4, got.summary()
        else:
            assert failed == {3, 11}, got.summary()
        assert got.results == {i: i for i in range(16) if i not in failed}
        # the pool is whole again afterwards
        again = ex.gather([ex.submit(square, i) for i in range(4)], deadline=HANG)
        assert again.results == {i: i * i for i in range(4)}


_HANG_SCRIPT = """
import time
from frugalml.runtime import make_executor
if __name__ == "__main__":
    ex = make_executor({backend!r}, workers=2)
    got = ex.gather([ex.submit(time.sleep, 1000)], deadline=0.5)
    assert got.pending == (0,), got.summary()
    ex.close()
    print("closed", flush=True)
"""


@pytest.mark.parametrize("backend", ["local-thread", "local"])
def test_hung_task_does_not_keep_the_interpreter_alive(tmp_path, backend):
    import subprocess

    script = tmp_path / "hang.py"
    script.write_text(_HANG_SCRIPT.format(backend=backend))
    t0 = time.monotonic()
    proc = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "closed" in proc.stdout
    assert time.monotonic() - t0 < 30  # not the 1000 s of the hung task


def test_pool_start_up_is_not_billed_to_the_deadline():
    """The first submit starts the workers and waits for them; a gather deadline shorter
    than the start-up still sees quick tasks finish."""
    with make_executor("local", workers=4) as ex:
        handles = [ex.submit(square, i) for i in range(4)]
        assert ex.start_seconds is not None and ex.start_seconds > 0
        got = ex.gather(handles, deadline=max(0.5 * ex.start_seconds, 0.2) + 0.5)
        assert got.results == {i: i * i for i in range(4)}, got.summary()


@pytest.mark.parametrize(
    ("backend", "alias"),
    [("local", "max_workers"), ("local-thread", "max_workers"), ("dask", "n_workers")],
)
def test_workers_is_the_one_keyword(backend, alias):
    with make_executor(backend, workers=2) as ex:
        assert ex.workers == 2
    with make_executor(backend, **{alias: 2}) as ex:
        assert ex.workers == 2
    with pytest.raises(InvalidInputError, match="give only workers"):
        make_executor(backend, workers=2, **{alias: 3})


def module_loaded(name):
    return name in sys.modules


def test_preload_imports_modules_during_start_up():
    with make_executor("local", workers=1, preload=("fractions", "frugalml.sketch")) as ex:
        got = ex.gather([ex.submit(module_loaded, "frugalml.sketch")], deadline=HANG)
        assert got.results == {0: True}
    with pytest.raises(InvalidInputError, match="preload"):
        make_executor("local", preload="frugalml.sketch")
