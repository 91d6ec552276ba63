"""Hardening of the runtime: pool sizes, unknown executor options, fault-model inputs, memory
guards of the straggler draws and of simulate_first_k, unreadable trace files, and readable
result objects."""

from __future__ import annotations

import pytest

from frugalml.errors import InvalidInputError, TooLargeError
from frugalml.runtime import (
    FailureModel,
    ShiftedExponential,
    TraceReplay,
    backend_info,
    make_executor,
)
from frugalml.runtime.simulate import simulate_first_k


@pytest.mark.parametrize(("backend", "workers"), [("local", 10**6), ("local-thread", 10**8)])
def test_huge_pools_are_refused_when_made(backend, workers):
    with pytest.raises(TooLargeError, match=f"pool of {workers} workers would need about"):
        make_executor(backend, workers=workers)


def test_pool_memory_follows_the_memory_limit(monkeypatch):
    monkeypatch.setenv("FRUGALML_MEMORY_LIMIT", str(200 * 2**20))
    with pytest.raises(TooLargeError, match="process pool of 4 workers"):
        make_executor("local", workers=4)  # 4 x 64 MiB > 0.9 x 200 MiB
    make_executor("local", workers=2).close()  # nothing started, nothing refused


def test_unknown_executor_options_are_input_errors():
    with pytest.raises(InvalidInputError, match=r"no option.* frobnicate; it takes .*workers"):
        make_executor("local-thread", frobnicate=1)
    with pytest.raises(InvalidInputError, match="omit kind"):
        make_executor("local-thread", kind="process")


@pytest.mark.parametrize(
    ("tasks", "needle"), [(["a"], "must be an integer"), ([-1], ">= 0"), (5, "collection")]
)
def test_failure_model_task_numbers(tasks, needle):
    with pytest.raises(InvalidInputError, match=needle):
        FailureModel(tasks=tasks)


def test_sampling_and_simulation_sizes_are_checked(monkeypatch):
    monkeypatch.setenv("FRUGALML_MEMORY_LIMIT", str(2**20))
    with pytest.raises(TooLargeError, match="completion-time draws"):
        ShiftedExponential().sample(10**6)
    with pytest.raises(TooLargeError, match="Monte-Carlo trials of n=1000"):
        simulate_first_k(ShiftedExponential(), 1000, [1], trials=1000)
    with pytest.raises(InvalidInputError, match="StragglerModel"):
        simulate_first_k("pareto", 10, [1])


def test_simulate_first_k_reports_progress_and_readable_rows():
    seen = []
    rows = simulate_first_k(
        ShiftedExponential(), 8, [2, 8], trials=50, rng=0, progress=lambda m, f: seen.append(f)
    )
    assert seen[0] == 0.0 and seen[-1] == 1.0 and seen == sorted(seen)
    assert repr(rows[0]).startswith("FirstKRow(k=2, exact=")
    assert str(rows[1]).startswith("first k=8: E[T] =")


def test_binary_trace_file_is_an_input_error(tmp_path):
    path = tmp_path / "t.csv"
    path.write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(InvalidInputError, match="not a readable text/JSON file"):
        TraceReplay.from_file(path)


def test_gathered_repr_and_summary():
    with make_executor("local-thread", workers=2) as ex:
        got = ex.gather([ex.submit(abs, -i) for i in range(8)])
    assert "results=dict(len=8)" in repr(got) and str(got) == got.summary()
    info = backend_info("local-thread")
    assert str(info) == "local-thread: installed" and "installed=True" in repr(info)
