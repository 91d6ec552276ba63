"""Coded matrix products on any :mod:`frugalml.runtime` executor.

``coded_matmul(A, B, executor, code=...)`` splits A into K row blocks, encodes them into N
worker blocks, and has worker j compute A~_j @ B. The master checks decodability on every
arrival (``on_result``) and decodes as soon as the arrived set suffices, cancelling the
stragglers; in ``mode="anytime"`` it returns at the deadline with an estimate and its
predicted error if the set is not yet decodable (Bartan & Pilanci, arXiv 1901.06811 and
2309.00682). ``CodedMatVec`` encodes A once and serves repeated A @ x.

Data placed once: the N coded blocks are placed with the executor once
(``executor.share``: identity on threads, memory-mapped files on the process pool,
``ray.put``, Dask scatter, Lithops storage) and stay there; a task carries only a reference
to its block and the right-hand side x (``CodedMatVec``), or a reference to B, placed once
per product (``coded_matmul``, ``streamed_matmul``). Results report the bytes moved.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from .._deprecation import deprecated_alias
from .._results import ResultRepr
from .._validate import (
    RngLike,
    check_array,
    check_choice,
    check_int,
    check_nonnegative_float,
    check_probability,
)
from ..errors import InvalidInputError, NotDecodableError
from ..progress import Progress
from ..runtime import Executor, Gathered, Shared, fmt_bytes, make_executor
from ._shared import place, release
from .anytime import anytime_estimate, require_sketch_code
from .base import RealLinearCode
from .baselines import GaussianMDS, Replication, Uncoded, VandermondeCode
from .polar import PolarCode

__all__ = [
    "CodedMatVec",
    "CodedResult",
    "StreamedResult",
    "coded_matmul",
    "make_code",
    "streamed_matmul",
]

CODE_NAMES = ("polar", "uncoded", "replication", "mds", "vandermonde")


def make_code(
    name: str,
    n_workers: int,
    k_blocks: int,
    *,
    design_erasure: float = 0.25,
    rng: RngLike = None,
) -> RealLinearCode:
    """A code by name with N workers and K data blocks.

    ``uncoded`` uses K = N; ``replication`` uses r = N // K copies of each of K blocks.
    """
    name = check_choice(name, "code", CODE_NAMES)
    n = check_int(n_workers, "n_workers", low=1)
    k = check_int(k_blocks, "k_blocks", low=1, high=n)
    if name == "polar":
        return PolarCode(n, k, design_erasure=check_probability(design_erasure, "e"), rng=rng)
    if name == "uncoded":
        return Uncoded(n)
    if name == "replication":
        if n % k:
            raise InvalidInputError(f"replication needs N divisible by K, got N={n}, K={k}")
        return Replication(k, n // k)
    if name == "mds":
        return GaussianMDS(n, k, rng=rng)
    return VandermondeCode(n, k)


@dataclass(frozen=True, repr=False)
class CodedResult(ResultRepr):
    """A coded product.

    value: the product (or its estimate), shape (m, p) or (m,).
    exact: True when decoded exactly.
    predicted_rel_error: predicted E||value - A B||^2 / ||A B||^2 (0 when exact).
    n_arrived / n_workers: outputs used out of N.
    wait_seconds: seconds from submission until decoding started; decode_seconds: decoding
        seconds (``wait_s`` / ``decode_s`` in 0.1, readable until 0.3).
    bytes_sent / bytes_received: bytes of this call's task calls sent to the workers and of
        their results received (measured by the executor; 0 on ``local-thread``, where
        nothing is copied).
    bytes_placed: bytes placed with the executor for this product (``executor.share``): the
        coded blocks, placed once when the operator was built and reused by every call, plus
        an operand placed for this call (B in ``coded_matmul``).
    """

    value: np.ndarray
    exact: bool
    predicted_rel_error: float
    n_arrived: int
    n_workers: int
    code: str
    wait_seconds: float
    decode_seconds: float
    gathered: Gathered
    bytes_sent: int = 0
    bytes_received: int = 0
    bytes_placed: int = 0

    wait_s = deprecated_alias("wait_s", "wait_seconds")
    decode_s = deprecated_alias("decode_s", "decode_seconds")

    def summary(self) -> str:
        kind = (
            "exact" if self.exact else f"estimate (pred. rel. err {self.predicted_rel_error:.3g})"
        )
        return (
            f"{self.code}: {kind} from {self.n_arrived}/{self.n_workers} workers, "
            f"wait {self.wait_seconds:.3f}s + decode {self.decode_seconds:.4f}s; "
            f"{fmt_bytes(self.bytes_sent)} sent, {fmt_bytes(self.bytes_received)} received, "
            f"{fmt_bytes(self.bytes_placed)} placed once"
        )


def _product(block: np.ndarray, rhs: np.ndarray) -> np.ndarray:
    """Worker body: coded block (rows, n) @ rhs (n,) or (n, p). The block may be a read-only
    memory map (process pool); the result is a plain array."""
    return np.asarray(block @ rhs)


def _as_float(arr: np.ndarray) -> np.ndarray:
    """Keep float32/float64 as they are (BLAS speed, memory); integers become float64."""
    return arr if np.issubdtype(arr.dtype, np.floating) else arr.astype(np.float64)


def _split_rows(a: np.ndarray, k: int) -> tuple[np.ndarray, int]:
    """(m, n) -> (K, ceil(m/K), n) zero-padded row blocks, and m."""
    m = a.shape[0]
    rows = -(-m // k)
    pad = rows * k - m
    if pad:
        a = np.concatenate([a, np.zeros((pad, *a.shape[1:]), dtype=a.dtype)])
    return a.reshape(k, rows, *a.shape[1:]), m


class CodedMatVec:
    """Encode A once; serve A @ x (or A @ X) from the first decodable set of workers.

    Parameters
    ----------
    a:
        (m, n) matrix; split into K row blocks (zero-padded so that K divides m).
    executor:
        Any runtime executor (default: a local thread pool, closed by ``close()``).
    code:
        A ``RealLinearCode`` with N workers, or a name from ``CODE_NAMES``.
    n_workers, k_blocks:
        N and K when ``code`` is a name (default N = 16, K = N / 2).

    The N coded blocks (each (ceil(m / K), n)) are placed with the executor once, here
    (``executor.share``), and stay resident until :meth:`close`; each call sends every worker
    only a reference to its block and x. ``bytes_placed`` is what was placed. Call
    :meth:`close` (or use ``with``) to free the blocks; closing the executor frees them too.
    """

    def __init__(
        self,
        a: np.ndarray,
        executor: Executor | None = None,
        *,
        code: str | RealLinearCode = "polar",
        n_workers: int = 16,
        k_blocks: int | None = None,
        design_erasure: float = 0.25,
        rng: RngLike = None,
    ):
        if executor is not None and not isinstance(executor, Executor):
            raise InvalidInputError(
                "executor must implement the frugalml.runtime Executor API (e.g. "
                f"make_executor('local')), got {type(executor).__name__}"
            )
        a = _as_float(check_array(a, "A", ndim=2, dtype=None))
        if isinstance(code, RealLinearCode):
            self.code = code
        else:
            k_blocks = n_workers // 2 if k_blocks is None else k_blocks
            self.code = make_code(code, n_workers, k_blocks, design_erasure=design_erasure, rng=rng)
        if self.code.k > a.shape[0]:
            raise InvalidInputError(f"A has {a.shape[0]} rows, fewer than K={self.code.k} blocks")
        self.code_name = code if isinstance(code, str) else type(code).__name__
        blocks, self.m = _split_rows(a, self.code.k)
        self.n_cols = a.shape[1]
        self.coded = self.code.encode(blocks)  # (N, rows, n)
        self._own = executor is None
        self.executor = executor if executor is not None else make_executor("local-thread")
        self._closed = False
        try:
            self._blocks = [place(self.executor, self.coded[j]) for j in range(self.code.n)]
        except BaseException:
            self.close()
            raise
        #: bytes placed with the executor (the N coded blocks), once
        self.bytes_placed = sum(getattr(r, "nbytes", 0) for r in self._blocks)

    def __call__(
        self,
        x: np.ndarray,
        *,
        mode: Literal["exact", "anytime"] = "exact",
        deadline: float | None = None,
        estimator: Literal["hybrid", "unbiased", "lstsq"] = "hybrid",
        share_x: bool = False,
    ) -> CodedResult:
        """A @ x for x of shape (n,) or (n, p); returns the (m,) or (m, p) product.

        Each task receives a reference to its coded block and x itself: O(len(x)) bytes per
        task. ``share_x=True`` places x once with the executor for this call and sends every
        task a reference instead (worth it for a wide x, e.g. a matrix B; ``coded_matmul``
        does this).
        """
        x = self._check_x(x)
        if not share_x:
            return self._compute(x, x, mode, deadline, estimator)
        mode, deadline, estimator = self._check_options(mode, deadline, estimator)
        ref = place(self.executor, x)
        try:
            return self._compute(x, ref, mode, deadline, estimator)
        finally:
            release(self.executor, [ref])

    def _check_x(self, x: np.ndarray) -> np.ndarray:
        self._check_open()
        x = _as_float(check_array(x, "x", ndim=(1, 2), dtype=None))
        if x.shape[0] != self.n_cols:
            raise InvalidInputError(
                f"shapes do not match: A is ({self.m}, {self.n_cols}), x is {x.shape}"
            )
        return x

    def _check_open(self) -> None:
        if self._closed:
            raise InvalidInputError(
                "this CodedMatVec is closed (its coded blocks were released); build a new one"
            )

    def _check_options(
        self, mode: str, deadline: float | None, estimator: str
    ) -> tuple[Any, float | None, Any]:
        mode = check_choice(mode, "mode", ("exact", "anytime"))
        if mode == "anytime" and deadline is None:
            raise InvalidInputError("mode='anytime' needs a deadline (seconds)")
        if deadline is not None:
            deadline = check_nonnegative_float(deadline, "deadline")
        estimator = check_choice(estimator, "estimator", ("hybrid", "unbiased", "lstsq"))
        if mode == "anytime" and isinstance(self.code, PolarCode):
            require_sketch_code(self.code, estimator)  # fail now, not after the deadline
        return mode, deadline, estimator

    def _compute(
        self,
        x: np.ndarray,
        rhs: Any,
        mode: str,
        deadline: float | None,
        estimator: Any,
        placed: int | None = None,
    ) -> CodedResult:
        """A @ x with ``rhs`` (x itself or a reference to it) sent to every task; ``placed``:
        bytes of x placed for this call (default: ``rhs.nbytes`` when it is a reference)."""
        mode, deadline, estimator = self._check_options(mode, deadline, estimator)
        if placed is None:
            placed = rhs.nbytes if isinstance(rhs, Shared) else 0
        code, n = self.code, self.code.n
        rows = self.coded.shape[1]
        outputs = np.zeros((n, rows, *x.shape[1:]), dtype=np.result_type(self.coded, x))
        arrived = np.zeros(n, dtype=bool)

        def on_result(i: int, value: Any) -> bool:
            outputs[i] = value
            arrived[i] = True
            return code.decodable(arrived)

        t0 = time.perf_counter()
        handles = [self.executor.submit(_product, self._blocks[j], rhs) for j in range(n)]
        got = self.executor.gather(handles, deadline=deadline, on_result=on_result)
        if got.pending:
            self.executor.cancel([handles[i] for i in got.pending])
        wait = time.perf_counter() - t0
        t1 = time.perf_counter()
        dec = code.decode(outputs, arrived)
        if dec.complete:
            blocks, exact, err = dec.blocks, True, 0.0
        elif mode == "exact":
            raise NotDecodableError(
                f"{int(arrived.sum())} of {n} workers returned ({len(got.failures)} failed, "
                f"{len(got.pending)} pending, stopped by {got.stopped_by}); the {self.code_name} "
                f"code needs more outputs to decode {code.k} blocks exactly: wait longer or use "
                "mode='anytime'"
            )
        elif isinstance(code, PolarCode) and arrived.any():
            est = anytime_estimate(code, outputs, arrived, estimator)
            blocks, exact, err = est.blocks, est.exact, est.predicted_rel_error
        else:  # partial decoding: unknown blocks are zero
            blocks, exact = dec.blocks, False
            err = float((~dec.known).sum()) / code.k
        value = blocks.reshape(-1, *x.shape[1:])[: self.m]
        return CodedResult(
            value, exact, err, int(arrived.sum()), n, self.code_name, wait,
            time.perf_counter() - t1, got, got.total_bytes_sent, got.total_bytes_received,
            self.bytes_placed + placed,
        )  # fmt: skip

    def close(self) -> None:
        """Release the coded blocks placed with the executor (and close an executor made
        here). Idempotent."""
        if self._closed:
            return
        self._closed = True
        try:
            release(self.executor, getattr(self, "_blocks", ()))
        finally:
            if self._own:
                self.executor.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def coded_matmul(
    a: np.ndarray,
    b: np.ndarray,
    executor: Executor | None = None,
    *,
    code: str | RealLinearCode = "polar",
    n_workers: int = 16,
    k_blocks: int | None = None,
    mode: Literal["exact", "anytime"] = "exact",
    deadline: float | None = None,
    estimator: Literal["hybrid", "unbiased", "lstsq"] = "hybrid",
    design_erasure: float = 0.25,
    rng: RngLike = None,
) -> CodedResult:
    """A @ B computed by N coded workers (see module docstring); returns (m, p) or (m,).

    ``a`` (m, n), ``b`` (n, p) or (n,). The N coded blocks of A and B are each placed once
    with the executor (``executor.share``) and released before returning; every task carries
    two references, so the bytes per task do not grow with A or B. A worker that fails or
    dies (its process crashes) is one erasure. Raises ``NotDecodableError`` in exact mode
    when the workers that returned (before the deadline, or before too many failed) cannot be
    decoded.
    """
    b = _as_float(check_array(b, "B", ndim=(1, 2), dtype=None))
    with CodedMatVec(
        a, executor, code=code, n_workers=n_workers, k_blocks=k_blocks,
        design_erasure=design_erasure, rng=rng,
    ) as op:  # fmt: skip
        return op(b, mode=mode, deadline=deadline, estimator=estimator, share_x=True)


@dataclass(frozen=True, repr=False)
class StreamedResult(ResultRepr):
    """A product computed chunk by chunk.

    value: (m, p) result (the ``out`` array when one was given).
    seconds / rows_per_s: wall time and throughput over all chunks.
    chunks: number of row chunks; mean_arrivals: workers used per chunk on average.
    """

    value: np.ndarray
    rows: int
    seconds: float
    rows_per_s: float
    chunks: int
    mean_arrivals: float

    def summary(self) -> str:
        return (
            f"{self.rows} rows in {self.chunks} chunks, {self.seconds:.2f}s "
            f"({self.rows_per_s:.4g} rows/s), {self.mean_arrivals:.1f} workers used per chunk"
        )


def streamed_matmul(
    a: np.ndarray,
    b: np.ndarray,
    executor: Executor | None = None,
    *,
    chunk_rows: int = 65536,
    code: str | RealLinearCode = "polar",
    n_workers: int = 16,
    k_blocks: int | None = None,
    out: np.ndarray | None = None,
    design_erasure: float = 0.25,
    rng: RngLike = None,
    progress: Progress | None = None,
) -> StreamedResult:
    """A @ B for an A too large for memory (e.g. a ``np.memmap``), ``chunk_rows`` rows at a time.

    Each chunk is read once, encoded into N worker blocks and decoded from the first
    decodable set of workers (exact). ``out`` (m, p) may itself be a memmap.
    ``progress(message, fraction)`` is called after every chunk (fraction = rows done / m;
    0.1 called ``progress(rows_done, rows_total)``). Memory: about
    (1 + N/K) chunks of A plus the chunk results.

    B is placed with the executor once for the whole stream, each chunk's N coded blocks
    once per chunk (released when the chunk is done): tasks carry references only.
    """
    if not hasattr(a, "shape") or len(a.shape) != 2:
        raise InvalidInputError("A must be a 2-D array or memmap")
    b = _as_float(check_array(b, "B", ndim=(1, 2), dtype=None))
    m, n = a.shape
    if b.shape[0] != n:
        raise InvalidInputError(f"shapes do not match: A is {a.shape}, B is {b.shape}")
    chunk_rows = check_int(chunk_rows, "chunk_rows", low=1)
    if isinstance(code, RealLinearCode):
        the_code, name = code, type(code).__name__
    else:
        k = n_workers // 2 if k_blocks is None else k_blocks
        if code == "uncoded":
            k = n_workers
        the_code, name = make_code(code, n_workers, k, design_erasure=design_erasure, rng=rng), code
    if chunk_rows < the_code.k:
        raise InvalidInputError(f"chunk_rows={chunk_rows} is below K={the_code.k} blocks")
    result_dtype = np.result_type(a.dtype, b.dtype)
    if out is None:
        out = np.empty((m, *b.shape[1:]), dtype=result_dtype)
    elif out.shape != (m, *b.shape[1:]):
        raise InvalidInputError(f"out must have shape {(m, *b.shape[1:])}, got {out.shape}")
    own = executor is None
    ex = make_executor("local-thread", workers=the_code.n) if own else executor
    arrivals = []
    t0 = time.perf_counter()
    b_ref = None
    try:
        b_ref = place(ex, b)
        for start in range(0, m, chunk_rows):
            chunk = np.ascontiguousarray(a[start : start + chunk_rows])
            if not np.all(np.isfinite(chunk)):
                raise InvalidInputError(f"A rows {start}..{start + len(chunk)} contain NaN/inf")
            rows = chunk.shape[0]
            if rows < the_code.k:  # a short last chunk: pad to K rows (zeros decode to zeros)
                chunk = np.concatenate([chunk, np.zeros((the_code.k - rows, n), chunk.dtype)])
            with CodedMatVec(chunk, ex, code=the_code) as op:
                op.code_name = name
                res = op._compute(b, b_ref, "exact", None, "hybrid")
            out[start : start + rows] = res.value[:rows]
            arrivals.append(res.n_arrived)
            if progress is not None:
                progress(f"{start + rows}/{m} rows", (start + rows) / m)
    finally:
        try:
            release(ex, [b_ref])
        finally:
            if own:
                ex.close()
    seconds = time.perf_counter() - t0
    return StreamedResult(out, m, seconds, m / seconds, len(arrivals), float(np.mean(arrivals)))
