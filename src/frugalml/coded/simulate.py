"""Completion time of coded computation under a straggler model (simulated clock).

Each of N workers processes a load ``load`` (in units of one polar/MDS block, 1/K of the
rows of A) and finishes at ``load * T_j``, T_j i.i.d. from a straggler model. A scheme is done
when its arrived set is decodable (for polar codes every prefix of the arrival order is checked
in one vectorised SC pass; otherwise binary search, as decodable sets are monotone) plus its
decode time. The decode time is measured for real on
random data of ``block_shape`` and expressed in model time units via ``unit_seconds`` (the
seconds one unit of model time stands for).

Schemes compared at equal N (Bartan & Pilanci, arXiv 1901.06811, Section VI): uncoded
(N blocks of 1/N of the rows, load K/N, needs all), r-replication (N/r blocks, load rK/N),
Gaussian MDS and polar codes (K blocks, load 1), and the ideal MDS code (K-th arrival, no
decode cost). Cost: O(trials * (N log N + log N * decodability check)), or O(trials * N^2 log N)
vectorised element operations for polar codes.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from .._resources import check_memory
from .._results import ResultRepr
from .._validate import RngLike, check_int, check_positive_float, check_rng
from ..errors import InvalidInputError
from ..progress import Progress
from ..runtime.stragglers import StragglerModel
from . import _polar_kernel
from .base import RealLinearCode
from .baselines import GaussianMDS, Replication, Uncoded
from .polar import PolarCode

__all__ = [
    "SchemeLatency",
    "default_schemes",
    "first_decodable",
    "first_decodable_mask",
    "simulate_latency",
    "smallest_true",
]


@dataclass(frozen=True, repr=False)
class SchemeLatency(ResultRepr):
    """Completion-time statistics of one scheme (model time units)."""

    name: str
    mean: float
    p50: float
    p99: float
    mean_arrivals_over_k: float
    decode_units: float
    samples: np.ndarray

    def summary(self) -> str:
        return (
            f"{self.name}: completion time mean {self.mean:.4g}, p50 {self.p50:.4g}, p99 "
            f"{self.p99:.4g} over {self.samples.size} trials; {self.mean_arrivals_over_k:.3f} K "
            f"arrivals needed, decoding {self.decode_units:.3g} time units"
        )


def _prefix_pass(code: RealLinearCode) -> bool:
    """Whether :func:`first_decodable` checks every prefix in one vectorised pass
    (``decodable_many``: O(N^2 log N) element operations and 4 N^2 bytes, fewer Python calls
    than bisection) rather than bisecting -- which it does for polar codes above N = 256 when
    numba compiles a single check."""
    compiled = isinstance(code, PolarCode) and _polar_kernel.available() and code.n > 256
    return hasattr(code, "decodable_many") and not compiled


def first_decodable(code: RealLinearCode, order: np.ndarray) -> int:
    """Smallest t such that the first t workers of ``order`` are decodable (N+1 if never)."""
    n = code.n
    order = np.asarray(order)
    if order.shape != (n,) or not np.array_equal(np.sort(order), np.arange(n)):
        raise InvalidInputError(f"order must be a permutation of the {n} workers")
    if _prefix_pass(code):
        rank = np.empty(n, dtype=np.intp)
        rank[order] = np.arange(n)
        ok_all = code.decodable_many(rank[None, :] <= np.arange(n)[:, None])
        return int(np.argmax(ok_all)) + 1 if ok_all.any() else n + 1
    mask = np.zeros(n, dtype=bool)

    def ok(t: int) -> bool:
        mask[:] = False
        mask[order[:t]] = True
        return code.decodable(mask)

    if not ok(n):
        return n + 1
    return smallest_true(ok, code.k, n)  # fewer than K arrivals can never decode K blocks


def smallest_true(ok: Callable[[int], bool], lo: int, hi: int) -> int:
    """Smallest ``t`` in ``[lo, hi]`` with ``ok(t)``, for a monotone ``ok`` (false ... false,
    true ... true) with ``ok(hi)`` true: bisection, O(log(hi - lo)) calls. Decodability of
    growing prefixes of an arrival order is such a predicate."""
    while lo < hi:
        mid = (lo + hi) // 2
        if ok(mid):
            hi = mid
        else:
            lo = mid + 1
    return lo


def first_decodable_mask(code: RealLinearCode, order: np.ndarray) -> np.ndarray:
    """(N,) mask of the shortest decodable prefix of ``order`` (all N if none is)."""
    t = first_decodable(code, order)
    mask = np.zeros(code.n, dtype=bool)
    mask[np.asarray(order)[: min(t, code.n)]] = True
    return mask


def default_schemes(
    n: int, k: int, *, replication: int = 2, design_erasure: float = 0.25, rng: RngLike = 0
) -> dict[str, tuple[RealLinearCode | None, float]]:
    """name -> (code, load) for the standard comparison at N workers and K data blocks."""
    gen = check_rng(rng)
    schemes: dict[str, tuple[RealLinearCode | None, float]] = {
        "uncoded": (Uncoded(n), k / n),
    }
    if n % replication == 0:
        schemes[f"{replication}-replication"] = (
            Replication(n // replication, replication),
            k * replication / n,
        )
    schemes["gaussian-mds"] = (GaussianMDS(n, k, rng=gen), 1.0)
    schemes["polar"] = (PolarCode(n, k, design_erasure=design_erasure, rng=gen), 1.0)
    schemes["ideal-mds"] = (None, 1.0)
    return schemes


def _decode_seconds(code: RealLinearCode, block_shape: Sequence[int], gen, repeats: int) -> float:
    data = gen.standard_normal((code.k, *block_shape))
    coded = code.encode(data)
    times = []
    for _ in range(repeats):
        mask = first_decodable_mask(code, gen.permutation(code.n))
        start = time.perf_counter()
        code.decode(coded, mask)
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def simulate_latency(
    model: StragglerModel,
    schemes: dict[str, tuple[RealLinearCode | None, float]],
    *,
    k: int,
    trials: int = 500,
    block_shape: Sequence[int] = (64, 64),
    unit_seconds: float = 1.0,
    rng: RngLike = None,
    progress: Progress | None = None,
) -> list[SchemeLatency]:
    """Completion time (including decoding) of each scheme over ``trials`` draws.

    ``progress(scheme_name, fraction_done)`` is called as each scheme advances.
    """
    if not isinstance(model, StragglerModel):
        raise InvalidInputError(f"model must be a StragglerModel, got {type(model).__name__}")
    trials = check_int(trials, "trials", low=1)
    unit = check_positive_float(unit_seconds, "unit_seconds")
    sizes = {c.n for c, _ in schemes.values() if c is not None}
    if not sizes:
        raise InvalidInputError("schemes must contain at least one code (not only ideal-mds)")
    if len(sizes) > 1:
        raise InvalidInputError(f"all codes must have the same number of workers, got {sizes}")
    (n,) = sizes
    k = check_int(k, "k", low=1, high=n)
    # the (trials, N) completion times (three copies: draws, scaled, sorted) and, for codes
    # checked in one prefix pass, the (N, N) boolean prefixes of one trial's arrival order
    # with the SC recursion's working copies
    prefixes = any(c is not None and _prefix_pass(c) for c, _ in schemes.values())
    check_memory(
        3 * 8.0 * n * trials + (4.0 * n * n if prefixes else 0.0),
        f"{trials} trials of N={n} workers",
        fix="lower the trials (--trials) or N (--n)",
    )
    for name, (_, load) in schemes.items():
        check_positive_float(load, f"load of {name}")
    gen = check_rng(rng)
    base = model.sample(n * trials, gen).reshape(trials, n)
    out = []
    for name, (code, load) in schemes.items():
        times = base * load
        if code is None:  # ideal MDS: the K-th arrival, decoding for free
            done = np.sort(times, axis=1)[:, k - 1]
            out.append(_stats(name, done, np.full(trials, float(k)), k, 0.0))
            continue
        dec_units = _decode_seconds(code, block_shape, gen, repeats=3) / unit
        done = np.empty(trials)
        needed = np.empty(trials)
        for t in range(trials):
            if progress is not None and t % max(1, trials // 20) == 0:
                progress(name, t / trials)
            order = np.argsort(times[t], kind="stable")
            idx = first_decodable(code, order)
            needed[t] = idx
            done[t] = (times[t, order[idx - 1]] if idx <= n else np.inf) + dec_units
        out.append(_stats(name, done, needed, code.k, dec_units))
    return out


def _stats(name: str, done: np.ndarray, needed: np.ndarray, k: int, dec: float) -> SchemeLatency:
    return SchemeLatency(
        name=name,
        mean=float(done.mean()),
        p50=float(np.percentile(done, 50)),
        p99=float(np.percentile(done, 99)),
        mean_arrivals_over_k=float(needed.mean() / k),
        decode_units=dec,
        samples=done,
    )
