"""Row-sharded data: a matrix (or vector) held as row blocks that workers read where they live.

``rows = as_row_blocks(data)`` accepts

* a list (or tuple) of row blocks: 2-D arrays with the same column count and dtype (1-D
  arrays for a vector), stacked in order;
* the path of a ``.npy`` file (``str`` or :class:`os.PathLike`): opened with
  ``np.load(mmap_mode="r")``, so the master never reads it whole; it is cut into blocks of
  ``block_rows`` rows;
* a ``dask.array`` (its chunks along the rows);
* a :class:`RowBlocks` (returned as it is).

and validates it block by block (streaming): consistent shapes and dtypes, a real numeric
dtype, finite values. Problems raise :class:`~frugalml.errors.InvalidInputError` naming the
block or file and what to do.

``placed = rows.place(executor)`` makes the blocks readable by the executor's workers: each
block is shared once (:meth:`~frugalml.runtime.BaseExecutor.share`), or — for a ``.npy`` file
on a backend whose workers run on this machine (``local``, ``local-thread``, ``ray``,
``dask``) — only the path and row range of each block travel (:class:`NpyRows`) and every
worker memory-maps the file itself. A task receives ``placed.parts`` (anywhere in its
arguments) and reads block ``j`` with :func:`load_block`; ``placed.offsets[j]`` is its first
row. ``placed.release()`` (or ``with rows.place(ex) as placed:``) frees what was shared.

This module is imported on workers, so it imports only NumPy.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .._results import ResultRepr
from ..errors import InvalidInputError
from .shared import Shared

__all__ = [
    "SHARED_FILE_BACKENDS",
    "NpyRows",
    "PlacedRows",
    "RowBlocks",
    "as_row_blocks",
    "is_row_sharded",
    "load_block",
]

#: backends whose workers run on the master's machine (a .npy path is readable there)
SHARED_FILE_BACKENDS = ("local", "local-thread", "ray", "dask")
#: default rows per block of a .npy file: about this many bytes per block
DEFAULT_BLOCK_BYTES = 32 << 20


@dataclass(frozen=True)
class NpyRows:
    """Rows ``[start, stop)`` of the ``.npy`` file ``path``, read on the worker (memory-mapped)."""

    path: str
    start: int
    stop: int

    def load(self) -> np.ndarray:
        """The rows, shape ``(stop - start, d)`` or ``(stop - start,)`` (a read-only memmap)."""
        return np.load(self.path, mmap_mode="r", allow_pickle=False)[self.start : self.stop]


def load_block(part: Any) -> np.ndarray:
    """A block as an array, whatever form it travelled in (array, :class:`NpyRows`,
    :class:`~frugalml.runtime.Shared` not yet resolved)."""
    if isinstance(part, NpyRows):
        return part.load()
    if isinstance(part, Shared):
        return part.get()
    return part


def _is_dask_array(x: Any) -> bool:
    mod = type(x).__module__ or ""
    return mod.startswith("dask.array") and hasattr(x, "chunks")


def is_row_sharded(x: Any) -> bool:
    """True when ``x`` is (or describes) row-sharded data :func:`as_row_blocks` accepts: a
    :class:`RowBlocks`, a path, a dask array, or a non-empty list/tuple of NumPy arrays."""
    if isinstance(x, (RowBlocks, str, os.PathLike)) or _is_dask_array(x):
        return True
    return (
        isinstance(x, (list, tuple))
        and len(x) > 0
        and all(isinstance(blk, np.ndarray) for blk in x)
    )


def _check_dtype(dtype: np.dtype, where: str) -> None:
    if dtype.kind not in "biuf":
        raise InvalidInputError(
            f"{where} has dtype {dtype}; row blocks must be real numbers (cast with "
            ".astype(np.float64))"
        )


def _check_finite(block: np.ndarray, where: str, start: int) -> None:
    if block.dtype.kind != "f":
        return
    ok = np.isfinite(block)
    if not ok.all():
        bad = np.argwhere(~ok)[0]
        at = f"row {start + int(bad[0])}" + (f", column {int(bad[1])}" if bad.size > 1 else "")
        raise InvalidInputError(
            f"{where} contains NaN or inf (first at {at}); clean or drop those rows"
        )


class RowBlocks:
    """A (n, d) matrix or (n,) vector held as row blocks (module docstring).

    Attributes
    ----------
    shape: (n, d) or (n,). dtype: the blocks' dtype. offsets: (n_blocks + 1,) first row of
    every block, then n. source: ``"blocks"``, ``"npy"`` or ``"dask"``. path: the ``.npy`` file
    (source ``"npy"``), else None. name: how errors refer to the data.
    """

    def __init__(
        self,
        *,
        source: str,
        shape: tuple[int, ...],
        dtype: np.dtype,
        offsets: Sequence[int],
        blocks: Sequence[np.ndarray] | None = None,
        path: str | None = None,
        darray: Any = None,
        name: str = "A",
    ):
        self.source = source
        self.shape = tuple(int(s) for s in shape)
        self.dtype = np.dtype(dtype)
        self.offsets = tuple(int(o) for o in offsets)
        self.path = path
        self.name = name
        self._blocks = list(blocks) if blocks is not None else None
        self._darray = darray

    @property
    def ndim(self) -> int:
        return len(self.shape)

    @property
    def n_blocks(self) -> int:
        return len(self.offsets) - 1

    @property
    def nbytes(self) -> int:
        return int(np.prod(self.shape)) * self.dtype.itemsize

    def __repr__(self) -> str:
        where = f" {self.path}" if self.path else ""
        return (
            f"RowBlocks({self.name}: {self.source}{where}, shape={self.shape}, "
            f"dtype={self.dtype}, {self.n_blocks} blocks)"
        )

    def block(self, j: int) -> np.ndarray:
        """Block ``j`` (read now: a memmap slice for ``.npy``, computed for dask)."""
        start, stop = self.offsets[j], self.offsets[j + 1]
        if self.source == "blocks":
            return self._blocks[j]
        if self.source == "npy":
            return NpyRows(self.path, start, stop).load()
        return np.asarray(self._darray[start:stop].compute())

    def blocks(self) -> Iterator[tuple[int, np.ndarray]]:
        """``(first row, block)`` for every block, one at a time."""
        for j in range(self.n_blocks):
            yield self.offsets[j], self.block(j)

    def rows(self, start: int, stop: int) -> np.ndarray:
        """Rows ``[start, stop)`` (read from the blocks that hold them)."""
        if self.source == "npy":
            return NpyRows(self.path, start, stop).load()
        if self.source == "dask":
            return np.asarray(self._darray[start:stop].compute())
        pieces = []
        for j in range(self.n_blocks):
            lo, hi = self.offsets[j], self.offsets[j + 1]
            if hi <= start or lo >= stop:
                continue
            pieces.append(self._blocks[j][max(start, lo) - lo : min(stop, hi) - lo])
        return pieces[0] if len(pieces) == 1 else np.concatenate(pieces)

    def to_array(self) -> np.ndarray:
        """The whole matrix in memory (for small data and tests)."""
        return np.concatenate([blk for _, blk in self.blocks()])

    def validate(self) -> RowBlocks:
        """Check every block for NaN/inf, one block at a time; returns ``self``."""
        for j, (start, blk) in enumerate(self.blocks()):
            _check_finite(np.asarray(blk), self._where(j), start)
        return self

    def _where(self, j: int) -> str:
        lo, hi = self.offsets[j], self.offsets[j + 1]
        what = f"{self.name} row block {j} (rows {lo}..{hi - 1})"
        return f"{what} of {self.path}" if self.path else what

    def place(self, executor: Any, *, ship_paths: bool | None = None) -> PlacedRows:
        """Make every block readable by ``executor``'s workers (module docstring).

        ``ship_paths``: send ``.npy`` path + row range instead of sharing the blocks (default:
        when the executor's backend runs workers on this machine, see
        :data:`SHARED_FILE_BACKENDS`).
        """
        backend = getattr(executor, "backend", "")
        if not hasattr(executor, "share"):
            raise InvalidInputError(
                f"{type(executor).__name__} has no share(); pass a frugalml.runtime executor"
            )
        if ship_paths is None:
            ship_paths = backend in SHARED_FILE_BACKENDS
        if self.source == "npy" and ship_paths:
            parts = tuple(
                NpyRows(self.path, self.offsets[j], self.offsets[j + 1])
                for j in range(self.n_blocks)
            )
            return PlacedRows(parts, self.offsets, self.shape, self.dtype, (), 0, executor)
        refs: list[Shared] = []
        try:
            for j in range(self.n_blocks):
                blk = self.block(j)
                if isinstance(blk, np.memmap) or not blk.flags.c_contiguous:
                    blk = np.ascontiguousarray(blk)
                refs.append(executor.share(np.asarray(blk)))
        except BaseException:
            for ref in refs:
                executor.release(ref)
            raise
        placed = sum(ref.nbytes for ref in refs)
        return PlacedRows(tuple(refs), self.offsets, self.shape, self.dtype, tuple(refs), placed,
                          executor)  # fmt: skip


@dataclass(frozen=True, repr=False)
class PlacedRows(ResultRepr):
    """Row blocks made readable by an executor's workers (see :meth:`RowBlocks.place`).

    parts: one entry per block (a :class:`~frugalml.runtime.Shared` that tasks receive as the
    array, or a :class:`NpyRows` read with :func:`load_block`). offsets: (n_blocks + 1,) row
    offsets. nbytes_placed: bytes shared (0 when only paths travel).
    """

    parts: tuple[Any, ...]
    offsets: tuple[int, ...]
    shape: tuple[int, ...]
    dtype: np.dtype
    refs: tuple[Shared, ...] = field(repr=False)
    nbytes_placed: int = 0
    executor: Any = field(default=None, repr=False)

    def summary(self) -> str:
        from .base import fmt_bytes

        return (
            f"{len(self.parts)} row blocks of a {self.shape} {self.dtype} array placed "
            f"({fmt_bytes(self.nbytes_placed)} shared)"
        )

    def release(self) -> None:
        """Free every shared block (idempotent)."""
        for ref in self.refs:
            if ref.key in {r.key for r in getattr(self.executor, "shared", ())}:
                self.executor.release(ref)

    def __enter__(self) -> PlacedRows:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def _from_blocks(data: Sequence[Any], name: str, check_finite: bool) -> RowBlocks:
    blocks = []
    for j, blk in enumerate(data):
        if not isinstance(blk, np.ndarray):
            raise InvalidInputError(
                f"{name} row block {j} is a {type(blk).__name__}; give NumPy arrays"
            )
        blocks.append(blk)
    first = blocks[0]
    if first.ndim not in (1, 2):
        raise InvalidInputError(
            f"{name} row block 0 has shape {first.shape}; blocks must be 2-D (rows, columns) "
            "or, for a vector, 1-D"
        )
    _check_dtype(first.dtype, f"{name} row block 0")
    offsets = [0]
    for j, blk in enumerate(blocks):
        if blk.ndim != first.ndim or blk.shape[1:] != first.shape[1:]:
            raise InvalidInputError(
                f"{name} row block {j} has shape {blk.shape} but block 0 has {first.shape}: "
                "every block needs the same number of columns (cut one matrix by rows)"
            )
        if blk.dtype != first.dtype:
            raise InvalidInputError(
                f"{name} row block {j} has dtype {blk.dtype} but block 0 has {first.dtype}: "
                f"cast every block to one dtype (e.g. .astype(np.{first.dtype}))"
            )
        if blk.shape[0] == 0:
            raise InvalidInputError(f"{name} row block {j} is empty; drop it")
        offsets.append(offsets[-1] + blk.shape[0])
    shape = (offsets[-1], *first.shape[1:])
    rows = RowBlocks(source="blocks", shape=shape, dtype=first.dtype, offsets=offsets,
                     blocks=blocks, name=name)  # fmt: skip
    return rows.validate() if check_finite else rows


def _from_npy(path: Any, name: str, block_rows: int | None, check_finite: bool) -> RowBlocks:
    path = os.fspath(path)
    if not os.path.exists(path):
        raise InvalidInputError(
            f"{name}: no such file {path!r}; pass the path of a .npy file written by np.save"
        )
    if not os.path.isfile(path):
        raise InvalidInputError(f"{name}: {path!r} is not a file; pass a .npy file")
    try:
        arr = np.load(path, mmap_mode="r", allow_pickle=False)
    except (ValueError, OSError, EOFError) as exc:
        raise InvalidInputError(
            f"{name}: {path!r} is not a readable .npy file ({exc}); save the matrix with "
            "np.save(path, A) (plain numeric dtype, no pickled objects)"
        ) from None
    if not isinstance(arr, np.ndarray):  # an .npz archive
        raise InvalidInputError(
            f"{name}: {path!r} is an .npz archive, not a .npy file; save one array with np.save"
        )
    if arr.ndim not in (1, 2) or arr.shape[0] == 0:
        raise InvalidInputError(
            f"{name}: {path!r} holds an array of shape {arr.shape}; need (n, d) or (n,), n >= 1"
        )
    if arr.dtype.fields is not None:
        raise InvalidInputError(f"{name}: {path!r} holds a structured array; save plain numbers")
    _check_dtype(arr.dtype, f"{name} ({path})")
    n = arr.shape[0]
    row_bytes = max(arr.itemsize * (arr.shape[1] if arr.ndim == 2 else 1), 1)
    if block_rows is None:
        block_rows = max(DEFAULT_BLOCK_BYTES // row_bytes, 1)
    elif int(block_rows) < 1:
        raise InvalidInputError(f"block_rows must be >= 1, got {block_rows}")
    block_rows = int(block_rows)
    offsets = [*range(0, n, block_rows), n]
    shape, dtype = arr.shape, arr.dtype
    del arr  # closes the map
    rows = RowBlocks(source="npy", shape=shape, dtype=dtype, offsets=offsets,
                     path=os.path.abspath(path), name=name)  # fmt: skip
    return rows.validate() if check_finite else rows


def _from_dask(x: Any, name: str, check_finite: bool) -> RowBlocks:
    if x.ndim not in (1, 2):
        raise InvalidInputError(f"{name}: dask array of shape {x.shape}; need (n, d) or (n,)")
    if any(np.isnan(c) for c in x.chunks[0]):
        raise InvalidInputError(
            f"{name}: the dask array's row chunks are unknown; call .compute_chunk_sizes() first"
        )
    _check_dtype(np.dtype(x.dtype), f"{name} (dask array)")
    offsets = [0]
    for c in x.chunks[0]:
        offsets.append(offsets[-1] + int(c))
    rows = RowBlocks(source="dask", shape=x.shape, dtype=x.dtype, offsets=offsets, darray=x,
                     name=name)  # fmt: skip
    return rows.validate() if check_finite else rows


def as_row_blocks(
    data: Any,
    *,
    name: str = "A",
    block_rows: int | None = None,
    check_finite: bool = True,
) -> RowBlocks:
    """Row-sharded view of ``data`` (module docstring); validated block by block.

    ``block_rows``: rows per block of a ``.npy`` file (default: about 32 MiB per block).
    ``check_finite``: scan every block for NaN/inf (streaming; one pass over the data).
    """
    if isinstance(data, RowBlocks):
        return data
    if isinstance(data, (str, os.PathLike)):
        return _from_npy(data, name, block_rows, check_finite)
    if _is_dask_array(data):
        return _from_dask(data, name, check_finite)
    if isinstance(data, (list, tuple)):
        if not data:
            raise InvalidInputError(f"{name}: got an empty list of row blocks; give at least one")
        return _from_blocks(data, name, check_finite)
    raise InvalidInputError(
        f"{name}: cannot shard a {type(data).__name__}; give a list of row blocks (arrays), "
        "the path of a .npy file, or a dask.array"
    )
