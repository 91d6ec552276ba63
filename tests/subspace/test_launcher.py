"""The local process launcher: results by rank, errors with the worker's traceback (including
mismatched parameter shapes across workers), dead workers, and bad arguments."""

from __future__ import annotations

import os

import pytest

torch = pytest.importorskip("torch")

from frugalml.errors import InvalidInputError, TaskFailedError  # noqa: E402
from frugalml.subspace.launcher import WorkerTimeoutError, free_port, run_workers  # noqa: E402


def _sum_ranks(rank, world, offset):
    import torch.distributed as dist

    t = torch.tensor([float(rank + offset)])
    dist.all_reduce(t)
    return rank, world, float(t), torch.get_num_threads()


def _mismatched_model(rank, world):
    from frugalml.subspace.aggregation import check_same_parameters

    model = torch.nn.Linear(3 if rank == 0 else 4, 2)
    check_same_parameters(model)
    return "unreachable"


def _crash(rank, world):
    if rank == 1:
        raise KeyError("boom")
    return rank


def _die(rank, world):
    if rank == 1:
        os._exit(3)
    return rank


def test_results_by_rank_and_collectives_work():
    out = run_workers(_sum_ranks, 3, args=(10,), timeout=60)
    assert [o[:2] for o in out] == [(0, 3), (1, 3), (2, 3)]
    assert all(o[2] == 33.0 for o in out)  # (10 + 11 + 12)
    assert all(o[3] == 1 for o in out)


def test_mismatched_parameter_shapes_raise_a_clear_error_in_the_parent():
    with pytest.raises(InvalidInputError, match="parameter shapes differ across workers") as info:
        run_workers(_mismatched_model, 2, timeout=60)
    assert "rank 0 has weight (2, 3)" in str(info.value)
    assert isinstance(info.value.__cause__, TaskFailedError)
    assert "Traceback" in str(info.value.__cause__)


@pytest.mark.slow
def test_other_exceptions_become_task_failed_with_traceback():
    with pytest.raises(TaskFailedError, match="worker rank 1 failed") as info:
        run_workers(_crash, 2, timeout=60)
    assert "KeyError" in str(info.value) and "_crash" in str(info.value)


@pytest.mark.slow
def test_dead_worker_is_reported():
    with pytest.raises(TaskFailedError, match="exit code 3"):
        run_workers(_die, 2, timeout=60)


def test_bad_arguments():
    with pytest.raises(InvalidInputError, match="n_workers"):
        run_workers(_sum_ranks, 0)
    with pytest.raises(InvalidInputError, match="backend"):
        run_workers(_sum_ranks, 2, backend="mpi")
    with pytest.raises(InvalidInputError, match="timeout"):
        run_workers(_sum_ranks, 2, timeout=0)
    with pytest.raises(InvalidInputError, match="picklable"):
        run_workers(lambda r, w: r, 2)
    assert 0 < free_port() < 65536


def _sleep_forever(rank, world):
    import time

    time.sleep(600)


def _report_steps(rank, world, steps):
    from frugalml.subspace.launcher import report_progress

    for i in range(steps):
        report_progress((rank, i))
    return rank


def test_timeout_bounds_the_whole_call_start_up_included():
    import time

    from frugalml.subspace.launcher import STOP_MARGIN

    t0 = time.monotonic()
    with pytest.raises(WorkerTimeoutError, match=r"within the timeout of 2 s \(process start-up"):
        run_workers(_sleep_forever, 2, timeout=2)
    elapsed = time.monotonic() - t0
    # before: the deadline was timeout + 30 s of start-up, plus a 5 s grace (37 s here)
    assert elapsed < 2 + STOP_MARGIN + 0.5, elapsed


def test_workers_report_progress_to_the_parent():
    seen = []
    out = run_workers(_report_steps, 2, args=(3,), timeout=120,
                      on_report=lambda rank, item: seen.append((rank, item)))  # fmt: skip
    assert out == [0, 1]
    assert sorted(seen) == [(r, (r, i)) for r in (0, 1) for i in range(3)]
    assert [i for r, (_, i) in seen if r == 0] == [0, 1, 2]  # in order per worker


def test_old_progress_keyword_of_run_workers_still_works_with_a_warning():
    from frugalml.errors import FrugalDeprecationWarning

    # mapped to on_report= (its signature is (rank, item), not the library's Progress)
    with (
        pytest.warns(FrugalDeprecationWarning, match="'progress'.*'on_report'"),
        pytest.raises(InvalidInputError, match="n_workers"),
    ):
        run_workers(_sum_ranks, 0, progress=lambda rank, item: None)
    with pytest.raises(InvalidInputError, match="pass 'on_report' only"):
        run_workers(_sum_ranks, 2, progress=print, on_report=print)
