"""OverSketch-style approximate products: average independent CountSketch estimates.

Gupta, Chaudhari, Pilanci, Ramchandran, Mahoney, "OverSketch: Approximate Matrix
Multiplication for the Cloud" (IEEE BigData 2018). The sketch-averaging idea, as a baseline
for the coded products of :mod:`frugalml.coded.matmul`: worker w draws its own CountSketch
S_w of the inner dimension, (n, d), each row of which holds one random sign s_j = +-1 in one
random column h_j, so that E[S S^T] = I, and returns the unbiased estimate

    C_w = (A S_w)(S_w^T B)                                       (m, p)

The master averages whatever arrived (the first k, or by a deadline): no decoding, and any
number of arrivals >= 1 gives an estimate, but it is never exact.

Error law (derived here, checked by Monte-Carlo in the tests). Write a_j = A[:, j] and
b_j = B[j, :]. Since (S S^T)_{jj} = 1 and (S S^T)_{jk} = s_j s_k [h_j = h_k],

    A S S^T B - A B = sum_{j != k} s_j s_k [h_j = h_k] a_j b_k      (outer products).

In E||.||_F^2 a cross term (j, k), (j', k') has E[s_j s_k s_j' s_k'] = 0 unless
{j', k'} = {j, k}; both survivors have P(h_j = h_k) = 1/d, and give ||a_j||^2 ||b_k||^2 and
(a_j . a_k)(b_j . b_k). Summing, with sum_{j,k} (a_j . a_k)(b_j . b_k) = tr(A^T A B B^T) =
||A B||_F^2, for one CountSketch of width d

    E||A S S^T B - A B||_F^2
        = (1/d) (||A||_F^2 ||B||_F^2 + ||A B||_F^2 - 2 sum_j ||a_j||^2 ||b_j||^2).

This needs only pairwise-independent hashes h and 4-wise independent signs s (here all are
fully independent). The r arrived estimates are independent and unbiased, so their average
has expected squared error 1/r of that; ``predicted_rel_error`` is the result divided by
||A B||_F^2 (see :func:`countsketch_error`).

Cost per worker: O((m + p) n) to apply the sketch (a sparse product, i.e. a scatter-add of
columns of A and rows of B into d buckets) plus 2 m d p flops for the small product; the
master does O(m p) per arrival to accumulate. A and B are placed once with the executor
(``executor.share``) per product; a task carries their two references and an int seed, and
the sketch is rebuilt on the worker from the seed (:func:`countsketch`).
"""

from __future__ import annotations

import math
import time
from typing import Any, Literal

import numpy as np
import scipy.sparse as sp

from .._deprecation import renamed_parameters
from .._validate import (
    RngLike,
    check_array,
    check_choice,
    check_int,
    check_nonnegative_float,
    check_rng,
)
from ..errors import InvalidInputError, NotDecodableError
from ..runtime import Executor, make_executor
from ._shared import place, release
from .matmul import CodedResult

__all__ = ["countsketch", "countsketch_error", "sketch_matmul"]


@renamed_parameters(seed="rng")
def countsketch(n: int, d: int, rng: RngLike = None) -> sp.csr_matrix:
    """The transpose S^T, (d, n) CSR, of the CountSketch S (n, d) drawn from ``rng``.

    Column j of S^T (row j of S) holds the sign s_j = +-1 in row h_j; h and s are i.i.d.
    uniform. ``rng``: an int seed (the same seed rebuilds the same sketch, which is how the
    workers of :func:`sketch_matmul` get theirs) or a Generator; ``seed=`` is its 0.1
    spelling. It stays positional (``countsketch(n, d, 7)``) as in 0.1. Cost O(n) to build;
    S^T X costs O(nnz(X)) (one sparse product).
    """
    n = check_int(n, "n", low=1)
    d = check_int(d, "sketch_dim", low=1)
    gen = check_rng(rng)
    rows = gen.integers(0, d, size=n)
    signs = gen.integers(0, 2, size=n) * 2.0 - 1.0
    return sp.csr_matrix((signs, (rows, np.arange(n))), shape=(d, n))


def _sketch_product(a: np.ndarray, b: np.ndarray, seed: int, d: int) -> np.ndarray:
    """Worker body: (A S)(S^T B) with S rebuilt from ``seed``; (m, p) or (m,)."""
    st = countsketch(a.shape[1], d, rng=seed)  # (d, n)
    sa = np.asarray(st @ a.T).T  # (m, d) = A S
    sb = np.asarray(st @ b)  # (d, p) or (d,) = S^T B
    return sa @ sb


def _ab_norm_sq(a: np.ndarray, b: np.ndarray) -> float:
    """||A B||_F^2 exactly, by the cheaper of A @ B and tr((A^T A)(B B^T))."""
    if b.ndim == 1:
        return float(np.sum((a @ b) ** 2))
    m, n = a.shape
    p = b.shape[1]
    if n * n * (m + p) < m * n * p:
        return float(np.sum((a.T @ a) * (b @ b.T)))
    return float(np.sum((a @ b) ** 2))


def _error_terms(a: np.ndarray, b: np.ndarray) -> float:
    """||A||_F^2 ||B||_F^2 - 2 sum_j ||a_j||^2 ||b_j||^2, O(m n + n p)."""
    col = np.einsum("ij,ij->j", a, a)  # ||a_j||^2
    row = np.sum(b.reshape(b.shape[0], -1) ** 2, axis=1)  # ||b_j||^2
    return float(col.sum() * row.sum() - 2.0 * np.dot(col, row))


def _relative(num: float, den: float) -> float:
    if den > 0:
        return max(num, 0.0) / den
    return 0.0 if num <= 0 else math.inf


def countsketch_error(
    a: np.ndarray,
    b: np.ndarray,
    sketch_dim: int,
    n_sketches: int = 1,
    *,
    relative: bool = True,
) -> float:
    """Expected squared error of the average of ``n_sketches`` CountSketch estimates of A B.

    E||C_hat - A B||_F^2 = (||A||_F^2 ||B||_F^2 + ||A B||_F^2 - 2 sum_j ||a_j||^2 ||b_j||^2)
    / (d r) with d = ``sketch_dim``, r = ``n_sketches`` (see the module docstring), divided by
    ||A B||_F^2 when ``relative`` (inf when A B = 0 but the error is not). ``a`` (m, n), ``b``
    (n, p) or (n,). Cost O(min(m n p, n^2 (m + p))) for ||A B||_F^2.
    """
    a = check_array(a, "A", ndim=2)
    b = check_array(b, "B", ndim=(1, 2))
    if a.shape[1] != b.shape[0]:
        raise InvalidInputError(f"shapes do not match: A is {a.shape}, B is {b.shape}")
    d = check_int(sketch_dim, "sketch_dim", low=1)
    m = check_int(n_sketches, "n_sketches", low=1)
    ab = _ab_norm_sq(a, b)
    num = (_error_terms(a, b) + ab) / (d * m)
    return _relative(num, ab) if relative else max(num, 0.0)


def sketch_matmul(
    a: np.ndarray,
    b: np.ndarray,
    executor: Executor | None = None,
    *,
    n_workers: int = 16,
    sketch_dim: int | None = None,
    k: int | None = None,
    deadline: float | None = None,
    predict: Literal["exact", "plugin"] = "exact",
    rng: RngLike = None,
) -> CodedResult:
    """Approximate A @ B as the average of the CountSketch estimates that arrived.

    Parameters
    ----------
    a, b:
        (m, n) and (n, p) or (n,) finite arrays.
    executor:
        Any runtime executor (default: a local thread pool, created and closed here).
    n_workers:
        N, the number of independent sketches submitted.
    sketch_dim:
        d, the sketch width; default ceil(2 n / N), which gives each worker the flops of a
        worker of a rate-1/2 coded product (K = N / 2 row blocks), up to the sketching.
    k, deadline:
        Average the first ``k`` arrivals, or those that arrived within ``deadline`` seconds
        (whichever comes first); neither: wait for all N.
    predict:
        ``"exact"``: ``predicted_rel_error`` is the exact expectation (the formula in the
        module docstring, divided by the number r of arrivals), which needs ||A B||_F^2: the
        master computes it, O(min(m n p, n^2 (m + p))), outside ``wait_seconds`` and
        ``decode_seconds``.
        ``"plugin"``: ||A B||_F^2 is replaced by the unbiased U-statistic
        sum_{w != v} <C_w, C_v> / (r (r - 1)) of the arrived estimates (O(m p) per arrival;
        with a single arrival its squared norm is used), so nothing exact is computed.
    rng:
        Seed or generator for the N sketch seeds.

    Returns a :class:`~frugalml.coded.matmul.CodedResult` with ``code="oversketch"``,
    ``exact=False``; raises ``NotDecodableError`` when no worker returned.
    """
    a = check_array(a, "A", ndim=2)
    b = check_array(b, "B", ndim=(1, 2))
    if a.shape[1] != b.shape[0]:
        raise InvalidInputError(
            f"shapes do not match: A is {a.shape}, B is {b.shape}; need A (m, n), B (n, p)"
        )
    n_workers = check_int(n_workers, "n_workers", low=1)
    n_inner = a.shape[1]
    d = (
        max(1, math.ceil(2 * n_inner / n_workers))
        if sketch_dim is None
        else check_int(sketch_dim, "sketch_dim", low=1)
    )
    if k is not None:
        k = check_int(k, "k", low=1, high=n_workers)
    if deadline is not None:
        deadline = check_nonnegative_float(deadline, "deadline")
    predict = check_choice(predict, "predict", ("exact", "plugin"))
    if executor is not None and not isinstance(executor, Executor):
        raise InvalidInputError("executor must implement the Executor protocol (or be None)")
    seeds = check_rng(rng).integers(0, 2**63 - 1, size=n_workers).tolist()

    shape = (a.shape[0], *b.shape[1:])
    total = np.zeros(shape)
    norms_sq = [0.0]  # sum of ||C_w||_F^2 (for the plug-in)

    def on_result(i: int, value: Any) -> None:
        value = np.asarray(value, dtype=np.float64)
        np.add(total, value, out=total)
        if predict == "plugin":
            norms_sq[0] += float(np.vdot(value, value))

    own = executor is None
    ex = make_executor("local-thread") if own else executor
    refs: list[Any] = []
    try:
        refs = [place(ex, a), place(ex, b)]
        placed = sum(getattr(r, "nbytes", 0) for r in refs)
        t0 = time.perf_counter()  # placing A and B is not waiting (as in coded_matmul)
        handles = [ex.submit(_sketch_product, refs[0], refs[1], seed, d) for seed in seeds]
        got = ex.gather(handles, k=k, deadline=deadline, on_result=on_result)
        if got.pending:
            ex.cancel([handles[i] for i in got.pending])
        wait = time.perf_counter() - t0
    finally:
        try:
            release(ex, refs)
        finally:
            if own:
                ex.close()
    m = len(got.results)
    if m == 0:
        raise NotDecodableError(
            f"0 of {n_workers} sketch workers returned ({len(got.failures)} failed, "
            f"{len(got.pending)} pending, stopped by {got.stopped_by}); an OverSketch estimate "
            "needs at least one: wait longer (raise the deadline)"
        )
    t1 = time.perf_counter()
    value = total / m
    decode = time.perf_counter() - t1
    if predict == "exact":
        ab = _ab_norm_sq(a, b)
    elif m >= 2:  # sum_{w != v} <C_w, C_v> = ||sum C||^2 - sum ||C_w||^2
        ab = (float(np.vdot(total, total)) - norms_sq[0]) / (m * (m - 1))
    else:
        ab = norms_sq[0]
    err = _relative((_error_terms(a, b) + ab) / (d * m), ab)
    return CodedResult(
        value, False, err, m, n_workers, "oversketch", wait, decode, got,
        got.total_bytes_sent, got.total_bytes_received, placed,
    )  # fmt: skip
