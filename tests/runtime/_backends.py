"""Backend names and constructor options shared by the runtime tests."""

from __future__ import annotations

from typing import Any

#: test id -> (make_executor name, options). Small pools: the test machine has 2 cores.
BACKEND_OPTIONS: dict[str, tuple[str, dict[str, Any]]] = {
    "local": ("local", {"workers": 4}),
    "local-thread": ("local-thread", {"workers": 4}),
    "ray": ("ray", {"workers": 2, "task_cpus": 0.25}),
    "dask": ("dask", {"workers": 2, "threads_per_worker": 2}),
    "lithops": ("lithops", {"workers": 4}),
}

#: backends whose tasks run in separate processes
PROCESS_BACKENDS = ("local", "ray", "dask", "lithops")
