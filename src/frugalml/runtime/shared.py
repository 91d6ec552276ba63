"""Shared references: a value placed once with an executor, resolved on the workers.

``ref = executor.share(value)`` puts ``value`` where the backend's workers can read it and
returns a :class:`Shared` — a small token that tasks carry instead of the data:

===============  ==========================================================================
backend          where the value lives
===============  ==========================================================================
``local-thread`` nowhere new: the reference holds the object itself (identity, no copy)
``local``        NumPy arrays: a ``.npy`` file on ``/dev/shm`` (tmpfs) memory-mapped read-only by
                 every worker (zero copy, no pickling); other values: pickled once to a file
                 there, loaded once per worker process
``ray``          the Ray object store (``ray.put``; arrays are read zero-copy)
``dask``         the Dask workers' memory (``Client.scatter(broadcast=True)``)
``lithops``      Lithops storage (``localhost`` storage in tests, cloud object storage by
                 configuration); arrays as ``.npy`` bytes, other values pickled
===============  ==========================================================================

A task receives the reference anywhere in its arguments (top level or nested in lists,
tuples and dicts) and sees the *value*: the executor resolves references on the worker before
calling the task. ``ref.get()`` resolves explicitly.

This module is imported on workers, so it imports nothing heavy.
"""

from __future__ import annotations

import itertools
import os
import secrets
import threading
import weakref
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..errors import InvalidInputError, SharedDataLostError

__all__ = [
    "Shared",
    "SharedDataLostError",
    "collect_shared",
    "describe",
    "register_releaser",
    "resolve",
    "resolve_args",
    "substitute",
    "unregister_releaser",
]

_keys = itertools.count()
_TOKEN = secrets.token_hex(4)
_CACHE_SIZE = 64


def describe(value: Any) -> str:
    """A short human description of a value (for error messages), e.g. ``ndarray float64
    (200000, 200)``."""
    shape = getattr(value, "shape", None)
    dtype = getattr(value, "dtype", None)
    name = type(value).__name__
    if shape is not None and dtype is not None:
        return f"{name} {dtype} {tuple(shape)}"
    if isinstance(value, (list, tuple, dict)):
        return f"{name} of {len(value)}"
    return name


def new_key(owner: int) -> str:
    """A key unique across processes and executors."""
    return f"{os.getpid()}-{_TOKEN}-{owner}-{next(_keys)}"


@dataclass(frozen=True, eq=False)
class Shared:
    """A value placed once with an executor. Compare and hash by identity.

    Attributes
    ----------
    key: unique name of the placed value.
    backend: the executor backend that placed it.
    owner: that executor's id (a reference is only valid on the executor that made it).
    kind: how it is stored: ``"object"`` (thread: the value itself), ``"npy"`` / ``"pickle"``
        (local process pool: a file path), ``"ray"``, ``"dask"``, ``"lithops"``.
    nbytes: bytes placed (the array's data, or the pickle's length).
    what: short description of the value, e.g. ``ndarray float64 (200000, 200)``.
    """

    key: str
    backend: str
    owner: int
    kind: str
    handle: Any = field(repr=False)
    nbytes: int
    what: str

    def get(self) -> Any:
        """The value (on a worker or on the master)."""
        return resolve(self)

    def __reduce__(self):
        if self.kind == "object":
            raise InvalidInputError(
                f"shared reference {self.key} ({self.what}) belongs to a local-thread executor "
                "and cannot leave this process; share the value with the executor that runs "
                "the task"
            )
        # The wire form is what a worker needs (key, kind, handle): a few dozen bytes plus the
        # handle (a path, an ObjectRef, ...). The master adds the description to errors.
        return (_from_wire, (self.key, self.kind, self.handle))

    # context manager: ``with ex.share(a) as ref:`` releases on exit
    def __enter__(self) -> Shared:
        return self

    def __exit__(self, *exc: object) -> None:
        method = _releasers.get(self.owner)
        release = method() if method is not None else None
        if release is not None:
            release(self)


def _from_wire(key: str, kind: str, handle: Any) -> Shared:
    return Shared(key, "", 0, kind, handle, 0, "")


def _named(ref: Shared) -> str:
    """``key (what)`` on the master, ``key`` on a worker (the master adds the description)."""
    return f"{ref.key} ({ref.what})" if ref.what else ref.key


# executor id -> weak reference to its release method (``with ref:`` releases through it)
_releasers: dict[int, Any] = {}


def register_releaser(owner: int, release: Callable[[Shared], None]) -> None:
    """Let ``with ref:`` free the references of executor ``owner`` through ``release`` (a
    bound method, held weakly: a forgotten executor can still be collected)."""
    _releasers[owner] = weakref.WeakMethod(release)


def unregister_releaser(owner: int) -> None:
    """Forget executor ``owner`` (it closed); ``with ref:`` on its references does nothing."""
    _releasers.pop(owner, None)


# -- worker side ------------------------------------------------------------------------------
_cache: OrderedDict[str, Any] = OrderedDict()
_cache_lock = threading.Lock()
#: set by the Lithops entry point on its workers (the storage handle Lithops injects)
lithops_storage: Any = None


def _load(ref: Shared) -> Any:
    kind = ref.kind
    if kind == "npy":
        import numpy as np

        try:
            return np.load(ref.handle, mmap_mode="r", allow_pickle=False)
        except FileNotFoundError:
            raise SharedDataLostError(
                f"the data of shared reference {_named(ref)} is gone: its file "
                f"{ref.handle} was deleted (released, or its executor closed)"
            ) from None
    if kind == "pickle":
        import cloudpickle

        try:
            with open(ref.handle, "rb") as fh:
                # our own file, written by share() into a private directory (mode 0700)
                return cloudpickle.load(fh)
        except FileNotFoundError:
            raise SharedDataLostError(
                f"the data of shared reference {_named(ref)} is gone: its file "
                f"{ref.handle} was deleted (released, or its executor closed)"
            ) from None
    if kind == "ray":
        import ray

        try:
            return ray.get(ref.handle)
        except Exception as exc:
            raise SharedDataLostError(
                f"the data of shared reference {_named(ref)} could not be read from "
                f"the Ray object store: {type(exc).__name__}: {exc}"
            ) from exc
    if kind == "dask":
        # Normally substituted by the Dask executor at submit; this path is for ref.get().
        try:
            return ref.handle.result()
        except Exception as exc:
            raise SharedDataLostError(
                f"the data of shared reference {_named(ref)} could not be read from "
                f"Dask: {type(exc).__name__}: {exc}"
            ) from exc
    if kind == "lithops":
        return _load_lithops(ref)
    raise SharedDataLostError(f"shared reference {ref.key} has unknown kind {kind!r}")


def _load_lithops(ref: Shared) -> Any:
    storage = lithops_storage
    if storage is None:
        import lithops

        storage = lithops.Storage(backend=ref.handle[1])
    cobj, _backend, fmt = ref.handle
    if cobj.backend == "localhost" and fmt == "npy":
        # localhost storage is a directory on this machine: map the array where it lives
        import numpy as np
        from lithops.constants import LITHOPS_TEMP_DIR

        path = os.path.join(LITHOPS_TEMP_DIR, cobj.bucket, cobj.key)
        try:
            return np.load(path, mmap_mode="r", allow_pickle=False)
        except FileNotFoundError:
            raise SharedDataLostError(
                f"the data of shared reference {_named(ref)} is gone from Lithops "
                f"localhost storage ({path}): released, or its executor closed"
            ) from None
    try:
        data = storage.get_cloudobject(cobj)
    except Exception as exc:
        raise SharedDataLostError(
            f"the data of shared reference {_named(ref)} could not be read from "
            f"Lithops storage: {type(exc).__name__}: {exc}"
        ) from exc
    if fmt == "npy":
        import io

        import numpy as np

        return np.load(io.BytesIO(data), allow_pickle=False)
    import cloudpickle

    return cloudpickle.loads(data)  # written by this executor's share(), not user input


def resolve(ref: Shared) -> Any:
    """The value behind ``ref``, loaded at most once per process (LRU cache of 64)."""
    if ref.kind == "object":
        return ref.handle
    with _cache_lock:
        if ref.key in _cache:
            _cache.move_to_end(ref.key)
            return _cache[ref.key]
    value = _load(ref)
    with _cache_lock:
        _cache[ref.key] = value
        while len(_cache) > _CACHE_SIZE:
            _cache.popitem(last=False)
    return value


def forget(key: str) -> None:
    """Drop ``key`` from this process's cache (the master does this on release)."""
    with _cache_lock:
        _cache.pop(key, None)


def substitute(obj: Any, fn: Any, _depth: int = 0) -> Any:
    """``obj`` with every :class:`Shared` in it (nested plain lists, tuples and dicts, 8
    levels deep) replaced by ``fn(ref)``. Containers without references are returned as they
    are; other containers (namedtuples, dataclasses) are not looked into."""
    if isinstance(obj, Shared):
        return fn(obj)
    if _depth >= 8:
        return obj
    kind = type(obj)
    if kind is list or kind is tuple:
        items = [substitute(x, fn, _depth + 1) for x in obj]
        if all(a is b for a, b in zip(items, obj, strict=True)):
            return obj
        return kind(items)
    if kind is dict:
        new = {k: substitute(v, fn, _depth + 1) for k, v in obj.items()}
        if all(new[k] is obj[k] for k in obj):
            return obj
        return new
    return obj


def collect_shared(obj: Any) -> list[Shared]:
    """Every :class:`Shared` in ``obj`` (same traversal as :func:`substitute`)."""
    found: list[Shared] = []

    def keep(ref: Shared) -> Shared:
        found.append(ref)
        return ref

    substitute(obj, keep)
    return found


def resolve_args(args: tuple, kwargs: dict) -> tuple[tuple, dict]:
    """``args`` and ``kwargs`` with their references resolved (on the worker)."""
    return substitute(args, resolve), substitute(kwargs, resolve)
