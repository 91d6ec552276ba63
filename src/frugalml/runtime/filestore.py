"""Shared values as files on this machine: ``.npy`` memory maps on ``/dev/shm``, or pickles.

Used by the executors whose workers run on this machine (the ``local`` process pool, and a
Dask ``LocalCluster`` started by the executor): a value is written once into a private
directory (mode 0700) on ``/dev/shm`` (tmpfs; the system temporary directory when it lacks
room), and workers read it where it lies. NumPy arrays are memory-mapped read-only: zero copy,
no pickling, and the data outlives any worker process that dies. Other values are pickled
once and loaded once per worker process. :meth:`FileStore.close` removes the directories;
so does the garbage collector, or the interpreter's exit, if it was never called.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import weakref
from collections.abc import Callable
from typing import Any

import numpy as np

from .shared import Shared, forget

__all__ = ["FileStore", "is_plain_array", "share_dir_root"]


def share_dir_root(nbytes: int = 0) -> str:
    """Where a shared value of ``nbytes`` goes: ``/dev/shm`` (tmpfs) if writable with room to
    spare, else the system temporary directory."""
    shm = "/dev/shm"
    if os.path.isdir(shm) and os.access(shm, os.W_OK | os.X_OK):
        free = shutil.disk_usage(shm).free
        if nbytes * 1.25 + (64 << 20) < free:
            return shm
    return tempfile.gettempdir()


def is_plain_array(value: Any) -> bool:
    """A NumPy array that ``np.save`` writes without pickling (no objects, no records)."""
    return (
        isinstance(value, np.ndarray)
        and type(value) is np.ndarray
        and not value.dtype.hasobject
        and value.dtype.fields is None
    )


class FileStore:
    """Private share directories of one executor (``owner``), one per file system used."""

    def __init__(self, backend: str, owner: int):
        self.backend = backend
        self.owner = owner
        self._dirs: dict[str, str] = {}  # root -> private directory
        self._finalizers: list[weakref.finalize] = []

    @property
    def dirs(self) -> tuple[str, ...]:
        return tuple(self._dirs.values())

    def _dir_for(self, nbytes: int) -> str:
        root = share_dir_root(nbytes)
        if root not in self._dirs:
            path = tempfile.mkdtemp(prefix="frugalml-share-", dir=root)
            self._dirs[root] = path
            self._finalizers.append(weakref.finalize(self, shutil.rmtree, path, True))
        return self._dirs[root]

    def place(self, value: Any, key: str, what: str) -> Shared:
        """Write ``value`` once; O(size) time, no copy kept in memory."""
        if is_plain_array(value):
            path = os.path.join(self._dir_for(value.nbytes), f"{key}.npy")
            kind = "npy"
            _write_atomic(path, lambda fh: np.save(fh, value, allow_pickle=False))
        else:
            import cloudpickle

            data = cloudpickle.dumps(value, protocol=5)
            path = os.path.join(self._dir_for(len(data)), f"{key}.pkl")
            kind = "pickle"
            _write_atomic(path, lambda fh: fh.write(data))
        return Shared(key, self.backend, self.owner, kind, path, os.path.getsize(path), what)

    @staticmethod
    def unplace(ref: Shared) -> None:
        forget(ref.key)
        if ref.kind in ("npy", "pickle"):
            with contextlib.suppress(OSError):
                os.unlink(ref.handle)

    def close(self) -> None:
        """Remove every share directory. Idempotent."""
        for finalizer in self._finalizers:
            finalizer()


def _write_atomic(path: str, write: Callable[[Any], Any]) -> None:
    tmp = path + ".part"
    try:
        with open(tmp, "wb") as fh:
            write(fh)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
