"""Shared test setup: single-threaded BLAS, and a view of this process's children."""

from __future__ import annotations

import os

# Before numpy (or anything importing it) loads: one BLAS/OpenMP thread per process, so that
# worker pools and the test process do not oversubscribe the cores.
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"

from frugalml._highs import before_highspy  # noqa: E402

# OR-Tools and highspy (via CVXPY) cannot share a process unless OR-Tools is loaded first
before_highspy()

import psutil  # noqa: E402
import pytest  # noqa: E402
from threadpoolctl import threadpool_limits  # noqa: E402

_IGNORED_CHILDREN = ("resource_tracker", "forkserver")


def child_processes() -> set[int]:
    """Pids of the live (non-zombie) descendants of this process.

    The multiprocessing resource tracker and forkserver are left out: they are started once
    per interpreter and live until it exits, whoever started them.
    """
    pids: set[int] = set()
    for proc in psutil.Process().children(recursive=True):
        try:
            if proc.status() == psutil.STATUS_ZOMBIE:
                continue
            cmdline = " ".join(proc.cmdline())
        except (psutil.NoSuchProcess, psutil.ZombieProcess):
            continue
        except psutil.AccessDenied:
            cmdline = ""
        if any(name in cmdline for name in _IGNORED_CHILDREN):
            continue
        pids.add(proc.pid)
    return pids


@pytest.fixture(name="child_processes", scope="session")
def child_processes_fixture():
    """The :func:`child_processes` function, for tests and fixtures that need it."""
    return child_processes


@pytest.fixture(scope="session", autouse=True)
def _single_threaded_blas():
    with threadpool_limits(1):
        yield
