"""Convex Wasserstein GANs with two-layer discriminators and linear generators.

Reference: A. Sahiner, T. Ergen, B. Ozturkler, B. Bartan, J. Pauly, M. Mardani, M. Pilanci,
"Hidden Convexity of Wasserstein GANs: Interpretable Generative Models with Closed-Form
Solutions", ICLR 2022, arXiv:2107.05680.

The WGAN game ``min_G max_D E_x D(x) - E_g D(g) + R_g(G) - beta R_d(D)`` with a two-layer
discriminator ``D(x) = sum_j v_j sigma(u_j^T x)`` and weight decay ``R_d`` becomes, after the
inner maximisation over ``D``, a *constrained* problem over the generator: the discriminator
is unbounded unless the moments it can see agree to within ``beta``.

Moments are empirical **means** (not sums): ``A_X = X^T X / n`` (``n`` samples, ``d``
features), ``H_G = G^T G / m``, ``mu_X = X^T 1 / n``. With ``X / sqrt(n) = U S V^T`` the
squared singular values ``sigma_i^2`` are the eigenvalues of ``A_X``.

* ``"linear"``   ``sigma(t) = t``: mean matching ``||mu_X - mu_G||_2 <= beta``.
* ``"quadratic"`` ``sigma(t) = t^2``: second-moment matching ``||A_X - H_G||_2 <= beta``.
* ``"polynomial"`` ``sigma(t) = a t^2 + b t + c``: ``max_{||u||=1} |a u^T (A_X - H_G) u +
  b u^T (mu_X - mu_G)| <= beta``, an exact SDP by the S-lemma (trust-region subproblem):
  for ``s = +-1`` there is ``lambda_s`` with
  ``[[lambda_s I - s a (A_X - H), -s b (mu_X - mu)/2], [., beta - lambda_s]] >= 0``.

**Closed form** (linear generator ``G = Z W``, ``R_g = ||W||_F^2``, quadratic discriminator).
With ``Z / sqrt(m) = P D Q^T`` and ``k = #{i: sigma_i^2 > beta}`` (the *truncation index*)::

    W* = Q_k D_k^{-1} (S_k^2 - beta I)^{1/2} V_k^T
    ||W*||_F^2 = sum_{i<=k} (sigma_i^2 - beta) / d_i^2

(proof sketch: any feasible ``H = W^T (Z^T Z/m) W`` has ``H >= A_X - beta I`` so
``lambda_i(H) >= sigma_i^2 - beta`` (Weyl), and for a given ``H`` the cheapest ``W`` pairs the
largest eigenvalues of ``H`` with the largest ``d_i``). The generated second moment is
``H* = V_k (S_k^2 - beta) V_k^T``: the constraint is active (``||A_X - H*||_2 = beta``) and
``H*`` is also the minimiser of ``tr(H)`` (``= ||G||_F^2 / m``) over all generator outputs,
which is the convex SDP ``min tr(H) s.t. -beta I <= A_X - H <= beta I, H >= 0`` solved by
:func:`quadratic_sdp`. The recovered discriminator (the Lagrange multiplier of
``A_X - H <= beta I``) is ``D(x) = sum_{i<=k} (v_i^T x)^2 / d_i^2``: quadratic neurons on the
top-``k`` right singular vectors of the data. Cost: one SVD of ``X`` (``O(n d min(n, d))``; a
randomized SVD of rank ``r + 1`` when ``n d`` is large, ``O(n d r)``) and one of ``Z``.

Singular vectors are oriented so that the data mean and the latent mean project
non-negatively; every orientation is optimal for the game, this one also aligns first moments.

``bias=True`` (default) gives the generator a bias row, ``G = [Z, 1] W``. For the quadratic
discriminator the data and the latent are then centred (the discriminator sees ``x - mu_X``)
and the bias row carries the data mean: the centred problem is solved in closed form and the
mean is matched exactly. ``bias=False`` is the pure ``G = Z W`` of the paper (used by the
SDP check). The CVXPY programs (``solver="cvxpy"``) are posed over the generated moments
``(H, mu)`` with regulariser ``tr(H) = E ||g||^2``; the generator weights are then a realisation
of those moments on the fitted latent (exact moments, minimum norm for the quadratic case).
"""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..._optional import require
from ..._resources import check_memory
from ..._results import ResultRepr
from ..._validate import (
    RngLike,
    check_array,
    check_choice,
    check_int,
    check_positive_float,
    check_rng,
)
from ...errors import InvalidInputError, SolverFailedError

__all__ = [
    "DISCRIMINATORS",
    "SOLVERS",
    "ConvexWGAN",
    "MomentSDPSolution",
    "QuadraticDiscriminator",
    "SolverFailedError",
    "as_matrix",
    "closed_form_generator",
    "gaussian_latent",
    "moment_sdp",
    "quadratic_sdp",
    "truncation_beta",
]

DISCRIMINATORS = ("linear", "quadratic", "polynomial")
SOLVERS = ("auto", "closed-form", "cvxpy")
SVD_MODES = ("auto", "exact", "randomized")
#: relative tolerance below which singular values of the latent count as zero
RANK_RTOL = 1e-9


# ----------------------------------------------------------------------------- helpers


def as_matrix(X: Any, name: str = "X") -> tuple[np.ndarray, tuple[int, ...]]:
    """``(n, d)`` float64 matrix and the per-sample shape of ``X``.

    ``X`` is ``(n, d)``, ``(n, L)`` signals, ``(n, h, w)`` images, a list of equally shaped
    arrays, etc.; images of inconsistent shape and NaN/inf raise ``InvalidInputError``.
    """
    if isinstance(X, list | tuple):
        shapes = {np.shape(x) for x in X}
        if len(shapes) > 1:
            raise InvalidInputError(
                f"{name} holds samples of inconsistent shape {sorted(shapes)}; resize or crop "
                "them to one shape first"
            )
    arr = check_array(X, name, ndim=(2, 3, 4), min_size=2)
    if arr.shape[0] < 2:
        raise InvalidInputError(f"{name} needs at least 2 samples, got {arr.shape[0]}")
    return arr.reshape(arr.shape[0], -1), tuple(arr.shape[1:])


def _svd(
    M: np.ndarray, rank: int | None, mode: str, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Thin SVD ``M = U diag(s) Vt`` (descending), at most ``rank`` components if given."""
    full = min(M.shape)
    use_rand = mode == "randomized" or (
        mode == "auto" and rank is not None and M.size > 4_000_000 and rank < full // 4
    )
    if use_rand and rank is not None and rank < full:
        from sklearn.utils.extmath import randomized_svd

        U, s, Vt = randomized_svd(
            M, n_components=rank, n_oversamples=20, n_iter=8,
            random_state=int(rng.integers(2**31 - 1)),
        )  # fmt: skip
        return U, s, Vt
    U, s, Vt = np.linalg.svd(M, full_matrices=False)
    if rank is not None:
        U, s, Vt = U[:, :rank], s[:rank], Vt[:rank]
    return U, s, Vt


def check_latent_memory(n: int, r: int, d: int, what: str = "the latent") -> None:
    """Refuse an ``(n, r)`` latent and ``(r, d)`` generator that would not fit in memory:
    the latent, its whitening (``r x r``), the generated ``(n, d)`` and the working copies."""
    check_memory(
        8 * (4 * n * r + 3 * r * r + 3 * r * d + 3 * n * d),
        f"{what} of {n} x {r} (latent dimension {r}, {d} outputs)",
        fix="lower the latent dimension (latent_dim, --latent-dim), the stage noise "
        "(--stage-noise) or the number of samples",
    )


def gaussian_latent(n: int, r: int, rng: np.random.Generator) -> np.ndarray:
    """``(n, r)`` standard Gaussian latent, then exactly centred and whitened
    (``Z^T 1 = 0``, ``Z^T Z / n = I`` when ``n > r``), so that fresh Gaussian latents reproduce
    the moments fitted on it in expectation."""
    Z = rng.standard_normal((n, r))
    Z -= Z.mean(axis=0)
    if n > r:
        w, V = np.linalg.eigh(Z.T @ Z / n)
        Z = Z @ (V / np.sqrt(w)) @ V.T
    return Z


def _orient(Vt: np.ndarray, mean_row: np.ndarray) -> np.ndarray:
    """Signs that make ``mean_row @ v_i >= 0`` for each row ``v_i`` of ``Vt``; where that
    projection is negligible, the largest-magnitude entry of ``v_i`` is made positive."""
    proj = Vt @ mean_row
    scale = np.linalg.norm(mean_row) + 1e-300
    idx = np.argmax(np.abs(Vt), axis=1)
    fallback = np.sign(Vt[np.arange(Vt.shape[0]), idx])
    sign = np.where(np.abs(proj) > 1e-8 * scale, np.sign(proj), fallback)
    return np.where(sign < 0, -1.0, 1.0)


def truncation_beta(sq_singular: np.ndarray, k: int) -> float:
    """The ``beta`` whose truncation index is ``k``: just above ``sigma_{k+1}^2`` (so the
    ``(k+1)``-th component is dropped with the least shrinkage of the kept ones), or
    ``sigma_k^2 / 2`` when there is no positive ``(k+1)``-th."""
    s2 = np.asarray(sq_singular, dtype=float)
    if not 1 <= k <= s2.size:
        raise InvalidInputError(f"truncation index must lie in [1, {s2.size}], got {k}")
    if k < s2.size and s2[k] > 1e-12 * s2[0] and s2[k] < s2[k - 1]:
        # just above sigma_{k+1}^2 (robust to rounding), never beyond the midpoint to sigma_k^2
        return float(min(s2[k] * (1 + 1e-6), (s2[k] + s2[k - 1]) / 2))
    return float(s2[k - 1] / 2)


def _check_beta_range(beta: float, top_sq: float, what: str) -> None:
    if beta >= top_sq:
        raise InvalidInputError(
            f"beta={beta:.6g} is >= the largest {what} {top_sq:.6g}: the optimal generator is "
            f"W = 0 (degenerate, every sample equals the bias); use 0 < beta < {top_sq:.6g}"
        )


@dataclass(frozen=True, repr=False)
class QuadraticDiscriminator(ResultRepr):
    """``D(x) = sum_j weights_j ((x - center)^T U[:, j])^2``; ``U`` is ``(d, k)``."""

    U: np.ndarray
    weights: np.ndarray
    center: np.ndarray

    def summary(self) -> str:
        return f"quadratic discriminator: {self.U.shape[0]} inputs, {self.U.shape[1]} directions"

    def __call__(self, X: Any) -> np.ndarray:
        """Discriminator values for ``X`` of shape ``(n, d)`` (or images); returns ``(n,)``."""
        M, _ = as_matrix(X)
        return ((M - self.center) @ self.U) ** 2 @ self.weights

    @property
    def multiplier(self) -> np.ndarray:
        """The ``(d, d)`` Lagrange multiplier ``U diag(weights) U^T``."""
        return (self.U * self.weights) @ self.U.T


def closed_form_generator(
    X: np.ndarray,
    Z: np.ndarray,
    beta: float,
    *,
    svd: str = "auto",
    rng: RngLike = 0,
    x_ref: np.ndarray | None = None,
    z_ref: np.ndarray | None = None,
) -> dict[str, Any]:
    """The closed-form quadratic-discriminator WGAN generator for ``G = Z W`` (no centring).

    ``X`` ``(n, d)``, ``Z`` ``(m, r)``. Returns a dict with ``W`` ``(r, d)``, ``k``,
    ``sq_singular`` (eigenvalues of ``X^T X / n`` computed), ``V`` ``(d, k)``, ``latent_sv``
    ``d_1..d_k``, ``objective`` ``||W||_F^2``. ``x_ref``/``z_ref``: vectors that fix the signs
    of the singular vectors (default the means of ``X`` and ``Z``). Raises
    ``InvalidInputError`` for beta outside ``(0, sigma_1^2)`` or a latent of rank below the
    truncation index.
    """
    gen = check_rng(rng)
    n, m, r = X.shape[0], Z.shape[0], Z.shape[1]
    _, s, Vt = _svd(X / np.sqrt(n), min(r + 1, *X.shape), svd, gen)
    s2 = s**2
    _check_beta_range(beta, float(s2[0]), "squared singular value of X/sqrt(n)")
    k = int(np.count_nonzero(s2 > beta))
    _, dz, Qt = np.linalg.svd(Z / np.sqrt(m), full_matrices=False)
    rank_z = int(np.count_nonzero(dz > RANK_RTOL * dz[0])) if dz.size and dz[0] > 0 else 0
    if k > rank_z:
        admissible = float(s2[rank_z]) if rank_z < s2.size else float("nan")
        raise InvalidInputError(
            f"the latent dimension (rank {rank_z} of Z, {r} columns) is smaller than the "
            f"truncation index k={k} (components with sigma^2 > beta={beta:.6g}); raise "
            f"latent_dim to >= {k} or beta to >= {admissible:.6g}"
        )
    x_ref = X.mean(axis=0) if x_ref is None else x_ref
    z_ref = Z.mean(axis=0) if z_ref is None else z_ref
    Vt_k = Vt[:k] * _orient(Vt[:k], x_ref)[:, None]
    Qt_k = Qt[:k] * _orient(Qt[:k], z_ref)[:, None]
    scale = np.sqrt(s2[:k] - beta) / dz[:k]
    W = (Qt_k.T * scale) @ Vt_k
    return {
        "W": W, "k": k, "sq_singular": s2, "V": Vt_k.T, "latent_sv": dz[:k],
        "objective": float(np.sum((s2[:k] - beta) / dz[:k] ** 2)),
    }  # fmt: skip


# ----------------------------------------------------------------------------- CVXPY


@dataclass(frozen=True, repr=False)
class MomentSDPSolution(ResultRepr):
    """Optimal generated moments of a convex WGAN program.

    H: ``(d, d)`` second moment ``E[g g^T]``; mu: ``(d,)`` mean; objective: ``tr(H)``;
    multiplier: ``(d, d)`` dual matrix of ``A_X - H <= beta I`` (quadratic program only,
    else ``None``); status: CVXPY's status; seconds: build + solve wall time.
    """

    H: np.ndarray
    mu: np.ndarray
    objective: float
    multiplier: np.ndarray | None
    status: str
    seconds: float

    def summary(self) -> str:
        return (
            f"moment SDP: tr(H) = {self.objective:.6g}, status {self.status}, {self.seconds:.3g}s"
        )


def _cvxpy() -> Any:
    return require("cvxpy", what="the CVXPY programs of ConvexWGAN", extra="convex")


def _solve(cp: Any, problem: Any, solver: str, eps: float) -> str:
    kwargs: dict[str, Any] = {"solver": solver}
    if solver == "CLARABEL":
        kwargs.update(tol_gap_abs=eps, tol_gap_rel=eps, tol_feas=eps)
    elif solver == "SCS":
        kwargs.update(eps_abs=eps, eps_rel=eps, max_iters=200_000)
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="Solution may be inaccurate")
            problem.solve(**kwargs)
    except cp.error.SolverError as exc:
        raise SolverFailedError(
            f"CVXPY solver {solver} failed ({exc}); try cvxpy_solver='SCS' or rescale X"
        ) from exc
    status = str(problem.status)
    if status not in ("optimal", "optimal_inaccurate"):
        raise SolverFailedError(
            f"CVXPY solver {solver} stopped with status {status!r}; try another solver"
        )
    return status


def quadratic_sdp(
    X: Any, beta: float, *, center: bool = False, solver: str = "CLARABEL", eps: float = 1e-9
) -> MomentSDPSolution:
    """Quadratic-discriminator WGAN as an SDP over the generated second moment ``H``::

        min tr(H)  s.t.  A_X - H <= beta I,  H - A_X <= beta I,  H >= 0

    with ``A_X = X^T X / n`` (``center=True``: the covariance). ``X`` ``(n, d)``; CVXPY with
    Clarabel (interior point, ``O(d^6)`` per iteration: small ``d`` only). The optimum is
    ``sum_i (sigma_i^2 - beta)_+``, attained by the closed-form generator.
    """
    M, _ = as_matrix(X)
    beta = check_positive_float(beta, "beta")
    cp = _cvxpy()
    t0 = time.perf_counter()
    mu = M.mean(axis=0)
    Mc = M - mu if center else M
    A = Mc.T @ Mc / M.shape[0]
    d = A.shape[0]
    H = cp.Variable((d, d), PSD=True)
    upper = beta * np.eye(d) - (A - H)  # >= 0  <=>  A - H <= beta I
    lower = beta * np.eye(d) + (A - H)
    cons = [(upper + upper.T) / 2 >> 0, (lower + lower.T) / 2 >> 0]
    problem = cp.Problem(cp.Minimize(cp.trace(H)), cons)
    status = _solve(cp, problem, solver, eps)
    Hv = (H.value + H.value.T) / 2
    lam = cons[0].dual_value
    lam = None if lam is None else (np.asarray(lam) + np.asarray(lam).T) / 2
    return MomentSDPSolution(
        H=Hv, mu=mu if center else np.zeros(d), objective=float(problem.value),
        multiplier=lam, status=status, seconds=time.perf_counter() - t0,
    )  # fmt: skip


def moment_sdp(
    X: Any,
    beta: float,
    discriminator: str,
    *,
    activation: tuple[float, float, float] = (1.0, 1.0, 0.0),
    solver: str = "CLARABEL",
    eps: float = 1e-9,
) -> MomentSDPSolution:
    """The convex WGAN program for a ``"linear"``, ``"quadratic"`` or ``"polynomial"``
    discriminator over the generated moments ``(H, mu)`` with ``[[H, mu], [mu^T, 1]] >= 0``
    (realisable by some distribution), minimising ``tr(H) = E||g||^2``.

    ``activation = (a, b, c)`` for ``"polynomial"`` (``c`` cancels). Small ``d`` only.
    """
    M, _ = as_matrix(X)
    beta = check_positive_float(beta, "beta")
    discriminator = check_choice(discriminator, "discriminator", DISCRIMINATORS)
    n, d = M.shape
    tri = (d + 1) * (d + 2) // 2
    check_memory(
        8 * (2 * n * d + 200 * tri * tri),
        f"the moment SDP over ({d}+1) x ({d}+1) matrices",
        fix="reduce the data dimension (e.g. a PCA) or use the quadratic discriminator "
        "(closed form)",
    )
    cp = _cvxpy()
    t0 = time.perf_counter()
    A = M.T @ M / n
    mx = M.mean(axis=0)
    Y = cp.Variable((d + 1, d + 1), PSD=True)  # [[H, mu], [mu^T, 1]]
    H, mu = Y[:d, :d], Y[:d, d]
    cons = [Y[d, d] == 1]
    if discriminator == "linear":
        a, b = 0.0, 1.0
    elif discriminator == "quadratic":
        a, b = 1.0, 0.0
    else:
        a, b = float(activation[0]), float(activation[1])
    mult = None
    if a == 0.0:
        cons.append(cp.norm(b * (mx - mu), 2) <= beta)
    elif b == 0.0:
        quad = [beta * np.eye(d) - a * (A - H), beta * np.eye(d) + a * (A - H)]
        cons += [(q + q.T) / 2 >> 0 for q in quad]
        mult = cons[1]
    else:
        for sgn in (1.0, -1.0):
            lam = cp.Variable()
            top = lam * np.eye(d) - sgn * a * (A - H)
            col = cp.reshape(-sgn * b * (mx - mu) / 2, (d, 1), order="F")
            block = cp.bmat([[top, col], [col.T, cp.reshape(beta - lam, (1, 1), order="F")]])
            cons.append((block + block.T) / 2 >> 0)
    problem = cp.Problem(cp.Minimize(cp.trace(H)), cons)
    status = _solve(cp, problem, solver, eps)
    Yv = (Y.value + Y.value.T) / 2
    lamv = None
    if mult is not None and mult.dual_value is not None:
        lamv = (np.asarray(mult.dual_value) + np.asarray(mult.dual_value).T) / 2
    return MomentSDPSolution(
        H=Yv[:d, :d], mu=Yv[:d, d].copy(), objective=float(problem.value), multiplier=lamv,
        status=status, seconds=time.perf_counter() - t0,
    )  # fmt: skip


def _psd_factor(C: np.ndarray, tol: float = 1e-9) -> np.ndarray:
    """``L`` (rank x d) with ``L^T L = C`` (eigenvalues below ``tol * max`` dropped)."""
    w, V = np.linalg.eigh((C + C.T) / 2)
    order = np.argsort(w)[::-1]
    w, V = w[order], V[:, order]
    keep = w > tol * max(float(w[0]), 1e-300)
    return np.sqrt(w[keep])[:, None] * V[:, keep].T


# ----------------------------------------------------------------------------- estimator


class ConvexWGAN:
    """Globally optimal WGAN with a linear generator and a two-layer discriminator.

    Parameters
    ----------
    discriminator:
        ``"linear"`` (mean matching), ``"quadratic"`` (second-moment matching, closed form)
        or ``"polynomial"`` (``a t^2 + b t + c``, CVXPY SDP).
    beta:
        Discriminator weight decay (``> 0``, below the largest squared singular value of the
        data for the quadratic case, below ``||mean||`` for the linear case). Ignored when
        ``truncation`` is given (quadratic only), which sets ``beta`` to the value whose
        truncation index is ``truncation`` (see :func:`truncation_beta`).
    latent_dim:
        Columns of the Gaussian latent ``Z`` drawn when ``fit`` gets none (default ``d``); that
        latent is centred and whitened exactly (:func:`gaussian_latent`).
    bias:
        Append a ones column to the latent (generator bias row); see the module docstring.
    activation:
        ``(a, b, c)`` of the polynomial discriminator.
    solver:
        ``"auto"`` (closed form where one exists, else CVXPY), ``"closed-form"``, ``"cvxpy"``.
    svd:
        ``"auto"``, ``"exact"`` or ``"randomized"`` (sklearn's randomized SVD of rank
        ``latent_dim + 1``; auto picks it for ``n d > 4e6``).

    Attributes after ``fit``: ``W_`` (``(r + bias, d)``), ``truncation_index_``, ``beta_``,
    ``sq_singular_values_``, ``objective_`` (the convex program's value: ``||W_c||_F^2`` for
    the closed form, ``tr(H)`` for CVXPY), ``constraint_`` (the discriminator-side constraint
    at the solution; equals ``beta`` when active), ``discriminator_`` (quadratic only),
    ``second_moment_`` ``H``, ``mean_``, ``fit_seconds_``.
    """

    def __init__(
        self,
        discriminator: str = "quadratic",
        beta: float = 0.1,
        *,
        latent_dim: int | None = None,
        truncation: int | None = None,
        bias: bool = True,
        activation: tuple[float, float, float] = (1.0, 1.0, 0.0),
        solver: str = "auto",
        cvxpy_solver: str = "CLARABEL",
        svd: str = "auto",
    ):
        self.discriminator = check_choice(discriminator, "discriminator", DISCRIMINATORS)
        self.beta = check_positive_float(beta, "beta")
        self.latent_dim = None if latent_dim is None else check_int(latent_dim, "latent_dim",
                                                                    low=1)  # fmt: skip
        self.truncation = None if truncation is None else check_int(truncation, "truncation",
                                                                    low=1)  # fmt: skip
        self.bias = bool(bias)
        if len(activation) != 3:
            raise InvalidInputError(f"activation must be (a, b, c), got {activation!r}")
        self.activation = tuple(float(v) for v in activation)
        if not all(np.isfinite(self.activation)):
            raise InvalidInputError(f"activation must be finite (a, b, c), got {activation!r}")
        self.solver = check_choice(solver, "solver", SOLVERS)
        if self.solver == "closed-form" and discriminator == "polynomial":
            raise InvalidInputError(
                "the polynomial discriminator has no closed form; use solver='cvxpy' or 'auto'"
            )
        if truncation is not None and discriminator != "quadratic":
            raise InvalidInputError("truncation applies to the quadratic discriminator only")
        self.cvxpy_solver = cvxpy_solver
        self.svd = check_choice(svd, "svd", SVD_MODES)

    # -- fitting -------------------------------------------------------------------------
    def _latent(self, n: int, rng: np.random.Generator) -> np.ndarray:
        return rng.standard_normal((n, self.latent_dim_))

    def fit(self, X: Any, Z: Any = None, *, rng: RngLike = 0) -> ConvexWGAN:
        """Fit on data ``X`` ``(n, d)`` (or ``(n, ...)`` images) with latent ``Z`` ``(m, r)``
        (default: ``n`` standard Gaussian rows of ``latent_dim`` columns)."""
        t0 = time.perf_counter()
        M, self.sample_shape_ = as_matrix(X)
        n, d = M.shape
        gen = check_rng(rng)
        if Z is None:
            self.latent_dim_ = self.latent_dim or d
            check_latent_memory(n, self.latent_dim_, d)
            Zm = gaussian_latent(n, self.latent_dim_, gen)
        else:
            Zm = check_array(Z, "Z", ndim=2, min_size=1)
            if self.latent_dim is not None and Zm.shape[1] != self.latent_dim:
                raise InvalidInputError(
                    f"Z has {Zm.shape[1]} columns but latent_dim={self.latent_dim}"
                )
            self.latent_dim_ = Zm.shape[1]
        self.n_features_ = d
        use_cvx = self.solver == "cvxpy" or (
            self.solver == "auto" and self.discriminator == "polynomial"
        )
        getattr(self, f"_fit_{self.discriminator}")(M, Zm, use_cvx, gen)
        self.fit_seconds_ = time.perf_counter() - t0
        return self

    def _fit_quadratic(self, M, Zm, use_cvx, gen) -> None:
        mu_x = M.mean(axis=0)
        Xc = M - mu_x if self.bias else M
        z_mean = Zm.mean(axis=0)
        Zc = Zm - z_mean if self.bias else Zm
        beta = self.beta
        if self.truncation is not None:
            limit = min(M.shape)
            if self.truncation > limit:
                raise InvalidInputError(
                    f"truncation={self.truncation} exceeds the number of components the data "
                    f"has (min(n, d) = {limit}); use truncation <= {limit}"
                )
            _, s, _ = _svd(Xc / np.sqrt(M.shape[0]), min(self.truncation + 1, *M.shape),
                           self.svd, gen)  # fmt: skip
            beta = truncation_beta(s**2, min(self.truncation, s.size))
        if use_cvx:
            sol = quadratic_sdp(Xc, beta, solver=self.cvxpy_solver)
            s2 = np.linalg.eigvalsh(Xc.T @ Xc / M.shape[0])[::-1]
            _check_beta_range(beta, float(s2[0]), "squared singular value of X/sqrt(n)")
            # minimum-norm realisation of H on the latent: closed form with H in place of A - bI
            L = _psd_factor(sol.H)
            k = L.shape[0]
            _, dz, Qt = np.linalg.svd(Zc / np.sqrt(Zm.shape[0]), full_matrices=False)
            if k > int(np.count_nonzero(dz > RANK_RTOL * dz[0])):
                raise InvalidInputError(
                    f"the latent dimension ({Zm.shape[1]}) is smaller than the truncation "
                    f"index k={k}; raise latent_dim to >= {k}"
                )
            Lo = L * _orient(L, mu_x)[:, None]
            Qo = Qt[:k] * _orient(Qt[:k], Zm.mean(axis=0))[:, None]
            Wc = (Qo.T / dz[:k]) @ Lo
            self.objective_ = sol.objective
            self.cvxpy_status_ = sol.status
            lam = sol.multiplier
            w_, U_ = np.linalg.eigh(lam)
            keep = w_ > 1e-6 * max(w_.max(), 1e-300)
            center = mu_x if self.bias else np.zeros_like(mu_x)
            self.discriminator_ = QuadraticDiscriminator(U_[:, keep], w_[keep], center)
            self.sq_singular_values_ = s2
            self.truncation_index_ = k
        else:
            cf = closed_form_generator(Xc, Zc, beta, svd=self.svd, rng=gen, x_ref=mu_x,
                                       z_ref=z_mean)  # fmt: skip
            Wc = cf["W"]
            self.objective_ = cf["objective"]
            self.sq_singular_values_ = cf["sq_singular"]
            self.truncation_index_ = cf["k"]
            self.discriminator_ = QuadraticDiscriminator(
                cf["V"], 1.0 / cf["latent_sv"] ** 2, mu_x if self.bias else np.zeros_like(mu_x)
            )
        self.beta_ = beta
        if self.bias:
            self.W_ = np.vstack([Wc, (mu_x - z_mean @ Wc)[None, :]])
        else:
            self.W_ = Wc
        G = self._generate(Zm)
        Gc = G - mu_x if self.bias else G
        self.second_moment_ = Gc.T @ Gc / G.shape[0]
        self.mean_ = G.mean(axis=0)
        A = Xc.T @ Xc / M.shape[0]
        self.constraint_ = float(np.linalg.norm(A - self.second_moment_, 2))

    def _fit_linear(self, M, Zm, use_cvx, gen) -> None:
        mu_x = M.mean(axis=0)
        norm_mu = float(np.linalg.norm(mu_x))
        if self.beta >= norm_mu:
            raise InvalidInputError(
                f"beta={self.beta:.6g} is >= ||mean of X||={norm_mu:.6g}: the optimal generator "
                f"is W = 0 (degenerate); use 0 < beta < {norm_mu:.6g}"
            )
        Zt = np.hstack([Zm, np.ones((Zm.shape[0], 1))]) if self.bias else Zm
        zbar = Zt.mean(axis=0)
        nz = float(zbar @ zbar)
        if nz <= 1e-300:
            raise InvalidInputError("the latent has zero mean; set bias=True for mean matching")
        target = mu_x * (1.0 - self.beta / norm_mu)
        if use_cvx:
            sol = moment_sdp(M, self.beta, "linear", solver=self.cvxpy_solver)
            target = sol.mu
            self.objective_ = sol.objective
            self.cvxpy_status_ = sol.status
        else:
            self.objective_ = float((norm_mu - self.beta) ** 2)
        # minimum-norm W with W^T zbar = target
        self.W_ = np.outer(zbar, target) / nz
        self.truncation_index_ = 1
        self.beta_ = self.beta
        self.sq_singular_values_ = np.array([norm_mu**2])
        G = self._generate(Zm)
        self.mean_ = G.mean(axis=0)
        self.second_moment_ = G.T @ G / G.shape[0]
        self.constraint_ = float(np.linalg.norm(mu_x - self.mean_))
        self.weight_norm_sq_ = float(np.sum(self.W_**2))

    def _fit_polynomial(self, M, Zm, use_cvx, gen) -> None:
        if not self.bias:
            raise InvalidInputError(
                "the polynomial discriminator also matches means; set bias=True"
            )
        sol = moment_sdp(M, self.beta, "polynomial", activation=self.activation,
                         solver=self.cvxpy_solver)  # fmt: skip
        mu, H = sol.mu, sol.H
        L = _psd_factor(H - np.outer(mu, mu), tol=1e-7)
        k = L.shape[0]
        z_mean = Zm.mean(axis=0)
        Zc = Zm - z_mean
        C = Zc.T @ Zc / Zm.shape[0]
        w, V = np.linalg.eigh(C)
        rank = int(np.count_nonzero(w > RANK_RTOL * w.max()))
        if k > rank:
            raise InvalidInputError(
                f"the latent dimension ({Zm.shape[1]}) is smaller than the rank k={k} of the "
                f"optimal generated covariance; raise latent_dim to >= {k}"
            )
        Vr = V[:, ::-1][:, :k]
        T = Vr / np.sqrt(w[::-1][:k])  # whitening onto the top-k latent directions
        Wc = T @ L
        self.W_ = np.vstack([Wc, (mu - z_mean @ Wc)[None, :]])
        self.objective_ = sol.objective
        self.cvxpy_status_ = sol.status
        self.truncation_index_ = k
        self.beta_ = self.beta
        self.sq_singular_values_ = np.linalg.eigvalsh(M.T @ M / M.shape[0])[::-1]
        G = self._generate(Zm)
        self.mean_ = G.mean(axis=0)
        self.second_moment_ = G.T @ G / G.shape[0]
        a, b, _ = self.activation
        self.constraint_ = _poly_constraint(
            a * (M.T @ M / M.shape[0] - self.second_moment_), b * (M.mean(axis=0) - self.mean_)
        )

    # -- generation ----------------------------------------------------------------------
    def _generate(self, Zm: np.ndarray) -> np.ndarray:
        if self.bias:
            return Zm @ self.W_[:-1] + self.W_[-1]
        return Zm @ self.W_

    def _check_fitted(self) -> None:
        if not hasattr(self, "W_"):
            raise InvalidInputError("this ConvexWGAN is not fitted yet; call fit(X) first")

    def generate(self, Z: Any) -> np.ndarray:
        """Generator output for latent ``Z`` ``(m, latent_dim)``: ``(m, *sample_shape)``."""
        self._check_fitted()
        Zm = check_array(Z, "Z", ndim=2, shape=(None, self.latent_dim_))
        return self._generate(Zm).reshape(Zm.shape[0], *self.sample_shape_)

    def sample(self, n: int, rng: RngLike = None) -> np.ndarray:
        """``n`` samples from fresh Gaussian latents: ``(n, *sample_shape)``."""
        self._check_fitted()
        n = check_int(n, "n", low=1)
        check_latent_memory(n, self.latent_dim_, self.n_features_, "sampling: a latent")
        return self.generate(self._latent(n, check_rng(rng)))

    def summary(self) -> str:
        self._check_fitted()
        return (
            f"ConvexWGAN({self.discriminator}) d={self.n_features_} latent={self.latent_dim_} "
            f"beta={self.beta_:.4g} k={self.truncation_index_} objective={self.objective_:.6g} "
            f"constraint={self.constraint_:.4g} fit {self.fit_seconds_:.3g} s"
        )


def _poly_constraint(dA: np.ndarray, db: np.ndarray) -> float:
    """``max_{||u||=1} |u^T dA u + db^T u|`` via the trust-region dual
    ``min_{lam >= lam_max(Q)} lam + q^T (lam I - Q)^+ q / 4`` (convex in ``lam``; bisection on its
    derivative ``1 - ||u(lam)||^2``). ``O(d^3)``."""
    best = -np.inf
    for sgn in (1.0, -1.0):
        w, V = np.linalg.eigh(sgn * (dA + dA.T) / 2)
        c2 = (V.T @ (sgn * db)) ** 2
        top = w[-1]
        gap = np.maximum(top - w, 0.0)
        tiny = 1e-12 * max(1.0, abs(top))
        on_top = gap <= tiny
        if np.all(c2[on_top] <= 1e-24):  # hard case possible: check the boundary lam = top
            rest = c2[~on_top] / gap[~on_top] ** 2 / 4
            if float(np.sum(rest)) <= 1.0:
                best = max(best, float(top + np.sum(c2[~on_top] / gap[~on_top]) / 4))
                continue

        def dual(lam: float, w=w, c2=c2) -> float:
            return float(lam + np.sum(c2 / (lam - w)) / 4)

        def slope(lam: float, w=w, c2=c2) -> float:
            return 1.0 - float(np.sum(c2 / (lam - w) ** 2)) / 4

        lo, hi = top + tiny, top + np.sqrt(np.sum(c2)) / 2 + tiny + 1.0
        for _ in range(200):
            mid = (lo + hi) / 2
            if slope(mid) < 0:
                lo = mid
            else:
                hi = mid
        best = max(best, dual(hi))
    return float(best)
