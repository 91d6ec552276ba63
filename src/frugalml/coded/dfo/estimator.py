"""Coded gradient estimates from finite differences along coded search directions.

Bartan & Pilanci, "Distributed Black-Box Optimization via Error Correcting Codes"
(arXiv 1907.05984). K search directions v_1..v_K (rows of V, (K, d)) are encoded with a real
linear (N, K) code of generator G (K, N) into N coded directions

    W = G^T V   (N, d),   w_j = sum_i G[i, j] v_i .

Worker j returns the central difference y_j = (f(x + s w_j) - f(x - s w_j)) / (2 s) (or the
forward difference (f(x + s w_j) - f(x)) / s). For a quadratic f the central difference is
exactly grad f(x) . w_j; in general it is grad f(x) . w_j + O(s^2 ||w_j||^3). So y = G^T g with
g_i = grad f(x) . v_i the K directional derivatives: the worker outputs are a codeword of g,
the stragglers are erasures, and the master decodes g from the arrived outputs -- by
successive cancellation for a polar code, by a K x K solve for a Gaussian MDS code, or by the
minimum-norm least-squares / anytime estimate (arXiv 2309.00682) when the arrived set is not
decodable yet. The gradient estimate is

    g_hat = (1 / K) sum_i g_i v_i = (1 / K) V^T g .

The directions satisfy E[v v^T] = I (see :mod:`.directions`), so g_hat is unbiased for the
gradient of the Gaussian-smoothed objective; with K = d orthogonal rows of norm sqrt(d),
V^T V = d I and g_hat = grad f(x) exactly (for a quadratic; up to O(s^2) otherwise). With
K < d orthogonal rows g_hat = (d / K) P_V grad f(x), P_V the projection onto span(V).

Uncoded baselines (``code="none"``): N = K, worker j evaluates v_j itself; from the m arrived
workers S the estimate is (1 / m) sum_{j in S} y_j v_j (drop stragglers), or with m = N
(wait for all). ``"replication"`` (r = N / K copies of each direction) is also accepted.

Non-finite worker outputs are erasures, reported in :class:`GradientEstimate`. The finite
differences themselves live in :mod:`.differences` (re-exported here).

Encoding (``encoding=``): ``"fast"`` uses the code's own transform, which never forms G --
polar: log2 N vectorised butterfly passes over the (N, d) array, 2 N d log2 N flops; Gaussian
MDS (systematic): K row copies and the (N - K) x K parity product, 2 (N - K) K d flops;
replication / uncoded: row copies, no flops. ``"dense"`` is the product G^T V with the (K, N)
generator matrix, 2 N K d flops (one GEMM) -- the baseline, and the only choice for a
:class:`~frugalml.coded.RealLinearCode` without its own ``encode``. Both give the same W up to
float rounding. ``"auto"`` (default) picks what measured faster: dense for polar codes with
N <= 128, the code's transform otherwise (and ``"dense"`` for codes without one). With numba
(extra ``coded``) the polar encoder is one fused pass per cache-sized column tile (scatter,
all butterfly levels, permuted write). The encode sweep of ``benchmarks/bench_dfo_encode.py``
(d = 10^4, K = N/2, one BLAS thread) measures the crossover: on the 2-core development machine
the GEMM wins up to N = 128 and the butterflies from N = 256 (2.5x faster at N = 1024);
without numba the NumPy passes lost to the GEMM up to N = 1024. The generator is built once,
lazily (polar: an N x N transform, O(N^2 log N)), only when a dense encode or a least-squares
decode needs it -- never per iteration.

Other costs per draw: the directions (see :mod:`.directions`; orthogonal O(d K^2) for K < d,
Hadamard O(K d)), SC decoding O(N log N) (plus O(N K) for the derivatives), least squares
O(m K^2), the estimate (1/K) V^T g O(K d).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Literal

import numpy as np

from ..._results import ResultRepr
from ..._validate import (
    RngLike,
    check_array,
    check_choice,
    check_int,
    check_positive_float,
    check_probability,
    check_rng,
)
from ...errors import InvalidInputError
from ..anytime import anytime_estimate
from ..base import RealLinearCode, check_mask
from ..baselines import GaussianMDS, Replication, Uncoded
from ..polar import PolarCode
from ..simulate import smallest_true
from .differences import Objective, call_objective, evaluate_differences, finite_difference
from .directions import DIRECTIONS, sample_directions

__all__ = [
    "CODES",
    "ENCODINGS",
    "CodedDirections",
    "GradientEstimate",
    "Objective",
    "call_objective",
    "estimate_gradient",
    "evaluate_differences",
    "finite_difference",
]

CODES: tuple[str, ...] = ("polar", "mds", "replication", "none")
ENCODINGS: tuple[str, ...] = ("auto", "fast", "dense")
#: ``encoding="auto"`` uses the dense product for polar codes up to this many workers (measured
#: crossover, see the module docstring).
AUTO_DENSE_POLAR_N = 128


@dataclass(frozen=True, repr=False)
class GradientEstimate(ResultRepr):
    """A decoded gradient estimate.

    gradient: (d,) estimate (1/K) V^T g_hat.
    derivatives: (K,) decoded (or estimated) directional derivatives g_hat.
    known: (K,) bool, derivatives recovered exactly from the arrived outputs.
    arrived: (N,) bool, workers whose finite output was used.
    erased: (N,) bool, workers that returned a non-finite value or failed (erasures).
    method: decoder used: ``"sc"``, ``"mds"``, ``"lstsq"``, ``"replication"``, ``"uncoded"``
        (every worker), ``"drop"`` (uncoded, stragglers dropped), ``"anytime-<estimator>"``.
    exact: every derivative was recovered (the estimate equals the full-information one).
    """

    gradient: np.ndarray
    derivatives: np.ndarray
    known: np.ndarray
    arrived: np.ndarray
    erased: np.ndarray
    method: str
    exact: bool

    @property
    def n_arrived(self) -> int:
        return int(self.arrived.sum())

    @property
    def n_erased(self) -> int:
        return int(self.erased.sum())

    def summary(self) -> str:
        state = "exact" if self.exact else f"{int(self.known.sum())}/{self.known.size} exact"
        return (
            f"{self.method} gradient estimate from {self.n_arrived}/{self.arrived.size} workers "
            f"({self.n_erased} erased): {state}, |g| = {np.linalg.norm(self.gradient):.4g}"
        )


def _make_code(
    code: str | RealLinearCode, n: int, k: int, design_erasure: float, gen: np.random.Generator
) -> tuple[RealLinearCode, str]:
    if isinstance(code, RealLinearCode):
        if code.n != n or code.k != k:
            raise InvalidInputError(
                f"the code has N={code.n}, K={code.k} but n_workers={n}, n_directions={k}"
            )
        return code, type(code).__name__
    name = check_choice(code, "code", CODES)
    if name == "polar":
        if n & (n - 1):
            raise InvalidInputError(
                f"a polar code needs n_workers to be a power of two, got {n}; use 2^m workers "
                "or code='mds'"
            )
        return PolarCode(n, k, design_erasure=design_erasure, rng=gen), name
    if name == "mds":
        return GaussianMDS(n, k, rng=gen), name
    if name == "replication":
        if n % k:
            raise InvalidInputError(
                f"code='replication' needs n_workers divisible by n_directions, got N={n}, K={k}"
            )
        return Replication(k, n // k), name
    if n != k:
        raise InvalidInputError(
            f"code='none' evaluates one direction per worker, so n_directions must equal "
            f"n_workers; got K={k}, N={n} (leave n_directions unset)"
        )
    return Uncoded(k), name


def has_fast_encoder(code: RealLinearCode) -> bool:
    """Whether ``code`` encodes by its own transform rather than RealLinearCode's dense G^T U."""
    return type(code).encode is not RealLinearCode.encode


class CodedDirections:
    """Draw, encode and decode K search directions for N workers.

    Parameters
    ----------
    dim:
        Dimension d of the search space.
    n_directions, n_workers:
        K directions and N workers, K <= N (``code="none"``: K = N).
    code:
        ``"polar"`` (N a power of two), ``"mds"`` (systematic Gaussian MDS), ``"replication"``,
        ``"none"`` (uncoded), or a :class:`~frugalml.coded.RealLinearCode` with N, K.
    directions:
        ``"orthogonal"``, ``"hadamard"`` or ``"gaussian"`` (see :mod:`.directions`).
    decoder:
        For polar codes: ``"sc"`` (successive cancellation, O(N log N); stop waiting once SC
        can decode) or ``"lstsq"`` (stop once G[:, S] has rank K, O(m K^2)).
    anytime:
        Estimator used when the arrived set is not decodable (deadline reached): ``"hybrid"``
        or ``"unbiased"`` (polar codes with the Hadamard kernel) or ``"lstsq"``; other codes
        always use the minimum-norm least-squares estimate.
    design_erasure:
        Straggler probability the polar code is designed for.
    encoding:
        ``"fast"`` (the code's own transform: polar butterflies O(N d log N), MDS parity
        product, replication copies), ``"dense"`` (G^T V with the generator matrix,
        O(N K d)) or ``"auto"`` (dense for polar codes with N <= 128, where the GEMM
        measured faster; else the transform when the code has one); see the module
        docstring. The resolved choice is in ``encoding_``.
    rng:
        Seed or generator: code randomisation and the directions drawn by :meth:`draw`.
    """

    def __init__(
        self,
        dim: int,
        n_directions: int,
        n_workers: int,
        *,
        code: str | RealLinearCode = "polar",
        directions: str = "orthogonal",
        decoder: Literal["sc", "lstsq"] = "sc",
        anytime: Literal["hybrid", "unbiased", "lstsq"] = "hybrid",
        design_erasure: float = 0.25,
        encoding: Literal["auto", "fast", "dense"] = "auto",
        rng: RngLike = None,
    ):
        self.dim = check_int(dim, "dimension", low=1)
        self.n = check_int(n_workers, "n_workers", low=1)
        self.k = check_int(n_directions, "n_directions", low=1)
        if self.k > self.n:
            raise InvalidInputError(
                f"n_directions K={self.k} exceeds n_workers N={self.n}: a code maps K "
                "directions to N >= K workers; lower K or add workers"
            )
        self.directions = check_choice(directions, "directions", DIRECTIONS)
        self.decoder = check_choice(decoder, "decoder", ("sc", "lstsq"))
        self.anytime = check_choice(anytime, "anytime", ("hybrid", "unbiased", "lstsq"))
        design_erasure = check_probability(design_erasure, "design_erasure")
        self._gen = check_rng(rng)
        self.code, self.code_name = _make_code(code, self.n, self.k, design_erasure, self._gen)
        if isinstance(self.code, PolarCode) and self.anytime != "lstsq":
            hadamard_full = self.code.kernel_name == "hadamard" and self.code.levels == (
                self.code.n.bit_length() - 1
            )
            if not hadamard_full:
                self.anytime = "lstsq"
        self.encoding = check_choice(encoding, "encoding", ENCODINGS)
        fast = has_fast_encoder(self.code)
        if self.encoding == "fast" and not fast:
            raise InvalidInputError(
                f"the code {type(self.code).__name__} has no fast transform (it does not "
                "override RealLinearCode.encode); use encoding='dense' or 'auto'"
            )
        if self.encoding == "auto":
            small_polar = isinstance(self.code, PolarCode) and self.n <= AUTO_DENSE_POLAR_N
            self.encoding_ = "fast" if fast and not small_polar else "dense"
        else:
            self.encoding_ = self.encoding

    @cached_property
    def generator(self) -> np.ndarray:
        """(K, N) float64 generator, built once on first use (dense encode, lstsq decode)."""
        return np.asarray(self.code.generator, dtype=np.float64)

    @property
    def uncoded(self) -> bool:
        return isinstance(self.code, Uncoded)

    def sample(self) -> np.ndarray:
        """Fresh directions V (K, d) from the generator (see :mod:`.directions` for costs)."""
        return sample_directions(self.directions, self.k, self.dim, self._gen)

    def draw(self) -> tuple[np.ndarray, np.ndarray]:
        """Fresh directions V (K, d) and coded directions W = G^T V (N, d)."""
        v = self.sample()
        return v, self.encode(v)

    def encode(self, v: np.ndarray) -> np.ndarray:
        """(K, d) directions -> (N, d) coded directions G^T V.

        ``encoding_ == "fast"``: the code's transform (polar O(N d log N)); ``"dense"``: one
        GEMM with the generator, O(N K d).
        """
        v = check_array(v, "directions", shape=(self.k, self.dim))
        if self.encoding_ == "dense":
            return self.generator.T @ v
        return self.code.encode(v)

    def decodable(self, mask: np.ndarray) -> bool:
        """Whether the arrived set (N,) recovers every directional derivative."""
        mask = check_mask(mask, self.n)
        if int(mask.sum()) < self.k:
            return False
        if self.decoder == "lstsq" and not isinstance(self.code, (Uncoded, Replication)):
            return bool(np.linalg.matrix_rank(self.generator[:, mask]) == self.k)
        return bool(self.code.decodable(mask))

    def first_decodable(self, order: np.ndarray, usable: np.ndarray, limit: int) -> int | None:
        """Smallest t <= ``limit`` such that the first t workers of ``order`` (a permutation),
        restricted to the ``usable`` (N,) ones, are decodable; None if no such t.

        Decodable sets are monotone, so a binary search over t needs O(log N) checks; for the
        polar code's SC decoder every prefix is checked in one vectorised pass instead.
        """
        n = self.n
        rank = np.empty(n, dtype=np.intp)
        rank[order] = np.arange(n)
        if isinstance(self.code, PolarCode) and self.decoder == "sc":
            prefixes = (rank[None, :] < np.arange(1, limit + 1)[:, None]) & usable
            ok = self.code.decodable_many(prefixes) & (prefixes.sum(axis=1) >= self.k)
            return int(np.argmax(ok)) + 1 if ok.any() else None

        def ok_at(t: int) -> bool:
            return self.decodable((rank < t) & usable)

        if limit < 1 or not ok_at(limit):
            return None
        return smallest_true(ok_at, 1, limit)

    def _min_norm(self, y: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        a = self.generator[:, mask].T  # (m, K)
        if a.shape[0] == 0:
            return np.zeros(self.k), np.zeros(self.k, dtype=bool)
        u, s, vt = np.linalg.svd(a, full_matrices=True)
        tol = s.max() * max(a.shape) * np.finfo(float).eps
        r = int((s > tol).sum())
        sol = vt[:r].T @ ((u[:, :r].T @ y[mask]) / s[:r])
        null = vt[r:]
        known = np.all(np.abs(null) < 1e-9, axis=0) if null.size else np.ones(self.k, bool)
        return sol, known

    def decode(self, values: np.ndarray, arrived: np.ndarray) -> tuple[np.ndarray, np.ndarray, str]:
        """Directional derivatives (K,), known mask (K,) and method from worker outputs.

        ``values`` (N,): rows outside ``arrived`` (or non-finite) are ignored.
        """
        mask = check_mask(arrived, self.n) & np.isfinite(values)
        y = np.where(mask, values, 0.0)
        code = self.code
        if isinstance(code, Uncoded):
            return y.copy(), mask, "uncoded" if mask.all() else "drop"
        if isinstance(code, Replication):
            dec = code.decode(y[:, None], mask)
            return dec.blocks[:, 0], dec.known, "replication"
        if isinstance(code, PolarCode) and self.decoder == "sc":
            dec = code.decode(y[:, None], mask)
            if dec.complete:
                return dec.blocks[:, 0], dec.known, "sc"
        elif not isinstance(code, PolarCode) and code.decodable(mask):
            dec = code.decode(y[:, None], mask)
            return dec.blocks[:, 0], dec.known, self.code_name
        sol, known = self._min_norm(y, mask)
        if known.all():
            return sol, known, "lstsq"
        if isinstance(code, PolarCode) and self.anytime != "lstsq" and mask.any():
            est = anytime_estimate(code, y[:, None], mask, self.anytime)
            return est.blocks[:, 0], est.known, f"anytime-{self.anytime}"
        return sol, known, "anytime-lstsq"

    def estimate(
        self,
        values: np.ndarray,
        arrived: np.ndarray,
        directions: np.ndarray,
        erased: np.ndarray | None = None,
    ) -> GradientEstimate:
        """Decode the outputs of the arrived workers into a gradient estimate.

        ``values`` (N,) worker outputs (non-finite ones are erasures), ``arrived`` (N,) bool,
        ``directions`` V (K, d) the uncoded directions of this round, ``erased`` (N,) extra
        erasures (failed workers). Cost: decoding plus O(K d).
        """
        values = check_array(values, "values", shape=(self.n,), finite=False)
        arrived = check_mask(arrived, self.n)
        v = check_array(directions, "directions", shape=(self.k, self.dim))
        bad = arrived & ~np.isfinite(values)
        if erased is not None:
            bad |= check_mask(erased, self.n)
        used = arrived & ~bad
        g, known, method = self.decode(values, used)
        if self.uncoded:
            m = int(used.sum())
            grad = (v[used].T @ g[used]) / m if m else np.zeros(self.dim)
        elif isinstance(self.code, Replication):
            m = int(known.sum())
            grad = (v[known].T @ g[known]) / m if m else np.zeros(self.dim)
        else:
            grad = (v.T @ g) / self.k
        return GradientEstimate(
            gradient=grad,
            derivatives=g,
            known=known,
            arrived=used,
            erased=bad,
            method=method,
            exact=bool(known.all()),
        )


def estimate_gradient(
    objective: Objective,
    x: np.ndarray,
    *,
    n_directions: int | None = None,
    n_workers: int = 64,
    code: str | RealLinearCode = "polar",
    directions: str = "orthogonal",
    sigma: float = 1e-3,
    antithetic: bool = True,
    arrived: np.ndarray | None = None,
    decoder: Literal["sc", "lstsq"] = "sc",
    anytime: Literal["hybrid", "unbiased", "lstsq"] = "hybrid",
    batched: bool = False,
    encoding: Literal["auto", "fast", "dense"] = "auto",
    rng: RngLike = None,
) -> GradientEstimate:
    """One coded gradient estimate at ``x`` (d,), evaluated in this process.

    ``arrived`` (N,) bool marks the workers that are not stragglers (default: all); the others
    are erasures. ``n_directions`` defaults to min(d, N) (``code="none"``: N). See
    :class:`CodedDirections` for the other parameters.
    """
    x = check_array(x, "x", ndim=1)
    sigma = check_positive_float(sigma, "sigma")
    if not callable(objective):
        raise InvalidInputError("objective must be callable: f(x) -> float")
    n = check_int(n_workers, "n_workers", low=1)
    if n_directions is None:
        n_directions = n if code == "none" else min(x.size, n)
    coder = CodedDirections(
        x.size, n_directions, n, code=code, directions=directions, decoder=decoder,
        anytime=anytime, encoding=encoding, rng=rng,
    )  # fmt: skip
    v, w = coder.draw()
    f0 = None if antithetic else float(call_objective(objective, x[None, :], batched)[0])
    vals = evaluate_differences(objective, x, w, sigma, antithetic=antithetic, f0=f0,
                                batched=batched)  # fmt: skip
    mask = np.ones(n, dtype=bool) if arrived is None else check_mask(arrived, n)
    return coder.estimate(vals, mask, v)
