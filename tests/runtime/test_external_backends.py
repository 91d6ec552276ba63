"""Joining infrastructure the caller owns: an existing Dask scheduler, an already running Ray,
a user-supplied Lithops configuration. close() must release only what the executor started."""

from __future__ import annotations

import logging
import sys

import pytest

from frugalml.runtime import make_executor


def cube(x):
    return x**3


def test_dask_joins_an_existing_scheduler_and_leaves_it_running():
    distributed = pytest.importorskip("distributed")
    cluster = distributed.LocalCluster(
        n_workers=1, threads_per_worker=2, processes=False, dashboard_address=None,
        silence_logs=logging.ERROR,
    )  # fmt: skip
    try:
        with make_executor("dask", address=cluster.scheduler_address) as ex:
            got = ex.gather([ex.submit(cube, i) for i in range(5)], deadline=60)
            assert got.results == {i: i**3 for i in range(5)}
        # the executor closed its client only: the cluster still serves a new client
        with distributed.Client(cluster.scheduler_address, set_as_default=False) as client:
            assert client.submit(cube, 3).result(timeout=60) == 27
    finally:
        cluster.close()


def test_ray_reuses_a_running_instance_and_leaves_it_running():
    ray = pytest.importorskip("ray")
    if ray.is_initialized():
        pytest.skip("another test left Ray running")
    ray.init(num_cpus=1, include_dashboard=False, log_to_driver=False, logging_level=logging.ERROR)
    try:
        with make_executor("ray") as ex:
            got = ex.gather([ex.submit(cube, i) for i in range(3)], deadline=120)
            assert got.results == {0: 0, 1: 1, 2: 8}
        assert ray.is_initialized()  # not shut down: the caller started it
        assert ray.get(ray.remote(cube).remote(2), timeout=60) == 8
    finally:
        ray.shutdown()


def test_lithops_user_config_gets_the_running_interpreter():
    pytest.importorskip("lithops")
    config = {"lithops": {"backend": "localhost", "storage": "localhost"}}
    with make_executor("lithops", config=config, workers=2) as ex:
        assert ex.config["localhost"]["runtime"] == sys.executable
        assert ex.config["localhost"]["worker_processes"] == 2
        assert "runtime" not in config.get("localhost", {})  # the caller's dict is not mutated
        got = ex.gather([ex.submit(cube, 4)], deadline=120)
        assert got.results == {0: 64}
