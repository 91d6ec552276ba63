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
from dataclasses import dataclass
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator

from ..._validate import (
    RngLike,
    check_array,
    check_choice,
    check_int,
    check_positive_float,
    check_rng,
)
from ...errors import InvalidInputError, SolverFailedError
from ...progress import Progress
from .closed_form import (
    QuadraticDiscriminator,
    check_beta_range,
    closed_form_generator,
    truncation_beta,
)
from .linalg import (
    RANK_RTOL,
    SVD_MODES,
    as_matrix,
    check_latent_memory,
    gaussian_latent,
    orient_rows,
    psd_factor,
    thin_svd,
)
from .moment_sdp import DISCRIMINATORS, MomentSDPSolution, moment_sdp, quadratic_sdp

# the helpers, the closed form and the CVXPY programs live in .linalg, .closed_form and
# .moment_sdp; their names stay importable from here
__all__ = [
    "DISCRIMINATORS",
    "RANK_RTOL",
    "SOLVERS",
    "SVD_MODES",
    "ConvexWGAN",
    "MomentSDPSolution",
    "QuadraticDiscriminator",
    "SolverFailedError",
    "as_matrix",
    "check_latent_memory",
    "closed_form_generator",
    "gaussian_latent",
    "moment_sdp",
    "quadratic_sdp",
    "truncation_beta",
]

SOLVERS = ("auto", "closed-form", "cvxpy")


def _quiet(message: str, fraction: float) -> None:
    """The progress callback used when none is given."""


@dataclass(frozen=True)
class _Settings:
    """The validated hyper-parameters of a :class:`ConvexWGAN` fit."""

    discriminator: str
    beta: float
    latent_dim: int | None
    truncation: int | None
    bias: bool
    activation: tuple[float, float, float]
    solver: str
    cvxpy_solver: str
    svd: str


# ----------------------------------------------------------------------------- estimator


class ConvexWGAN(BaseEstimator):
    """Globally optimal WGAN with a linear generator and a two-layer discriminator.

    A scikit-learn estimator (``get_params``/``set_params``, ``clone``, its ``repr``): the
    hyper-parameters are stored as given and validated by :meth:`fit`.

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
    ``second_moment_`` ``H``, ``mean_``, ``bias_``, ``sample_shape_``, ``n_features_``,
    ``latent_dim_``, ``fit_seconds_``.
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
        self.discriminator = discriminator
        self.beta = beta
        self.latent_dim = latent_dim
        self.truncation = truncation
        self.bias = bias
        self.activation = activation
        self.solver = solver
        self.cvxpy_solver = cvxpy_solver
        self.svd = svd

    def _settings(self) -> _Settings:
        """The hyper-parameters, validated (``fit`` calls it; ``__init__`` stores them as
        given, as scikit-learn requires)."""
        discriminator = check_choice(self.discriminator, "discriminator", DISCRIMINATORS)
        beta = check_positive_float(self.beta, "beta")
        latent_dim = self.latent_dim
        if latent_dim is not None:
            latent_dim = check_int(latent_dim, "latent_dim", low=1)
        truncation = self.truncation
        if truncation is not None:
            truncation = check_int(truncation, "truncation", low=1)
        bias = bool(self.bias)
        activation = self.activation
        if len(activation) != 3:
            raise InvalidInputError(f"activation must be (a, b, c), got {activation!r}")
        act = (float(activation[0]), float(activation[1]), float(activation[2]))
        if not all(np.isfinite(act)):
            raise InvalidInputError(f"activation must be finite (a, b, c), got {activation!r}")
        solver = check_choice(self.solver, "solver", SOLVERS)
        if solver == "closed-form" and discriminator == "polynomial":
            raise InvalidInputError(
                "the polynomial discriminator has no closed form; use solver='cvxpy' or 'auto'"
            )
        if truncation is not None and discriminator != "quadratic":
            raise InvalidInputError("truncation applies to the quadratic discriminator only")
        svd = check_choice(self.svd, "svd", SVD_MODES)
        return _Settings(discriminator, beta, latent_dim, truncation, bias, act, solver,
                         self.cvxpy_solver, svd)  # fmt: skip

    # -- fitting -------------------------------------------------------------------------
    def _latent(self, n: int, rng: np.random.Generator) -> np.ndarray:
        return rng.standard_normal((n, self.latent_dim_))

    def fit(
        self, X: Any, Z: Any = None, *, rng: RngLike = 0, progress: Progress | None = None
    ) -> ConvexWGAN:
        """Fit on data ``X`` ``(n, d)`` (or ``(n, ...)`` images) with latent ``Z`` ``(m, r)``
        (default: ``n`` standard Gaussian rows of ``latent_dim`` columns). The
        hyper-parameters are validated here (:class:`~frugalml.errors.InvalidInputError`).
        ``progress(message, fraction)`` (:data:`frugalml.progress.Progress`) is called when
        the fit starts (``"closed form"`` or ``"solving (cvxpy)"``) and with ``"done"``."""
        t0 = time.perf_counter()
        opt = self._settings()
        say = progress or _quiet
        M, self.sample_shape_ = as_matrix(X)
        n, d = M.shape
        gen = check_rng(rng)
        if Z is None:
            self.latent_dim_ = opt.latent_dim or d
            check_latent_memory(n, self.latent_dim_, d)
            Zm = gaussian_latent(n, self.latent_dim_, gen)
        else:
            Zm = check_array(Z, "Z", ndim=2, min_size=1)
            if opt.latent_dim is not None and Zm.shape[1] != opt.latent_dim:
                raise InvalidInputError(
                    f"Z has {Zm.shape[1]} columns but latent_dim={opt.latent_dim}"
                )
            self.latent_dim_ = Zm.shape[1]
        self.n_features_ = d
        self.bias_ = opt.bias
        use_cvx = opt.solver == "cvxpy" or (
            opt.solver == "auto" and opt.discriminator == "polynomial"
        )
        say("solving (cvxpy)" if use_cvx else "closed form", 0.0)
        getattr(self, f"_fit_{opt.discriminator}")(opt, M, Zm, use_cvx, gen)
        self.fit_seconds_ = time.perf_counter() - t0
        say("done", 1.0)
        return self

    def _fit_quadratic(self, opt: _Settings, M, Zm, use_cvx, gen) -> None:
        mu_x = M.mean(axis=0)
        Xc = M - mu_x if opt.bias else M
        z_mean = Zm.mean(axis=0)
        Zc = Zm - z_mean if opt.bias else Zm
        beta = opt.beta
        if opt.truncation is not None:
            limit = min(M.shape)
            if opt.truncation > limit:
                raise InvalidInputError(
                    f"truncation={opt.truncation} exceeds the number of components the data "
                    f"has (min(n, d) = {limit}); use truncation <= {limit}"
                )
            _, s, _ = thin_svd(Xc / np.sqrt(M.shape[0]), min(opt.truncation + 1, *M.shape),
                           opt.svd, gen)  # fmt: skip
            beta = truncation_beta(s**2, min(opt.truncation, s.size))
        if use_cvx:
            sol = quadratic_sdp(Xc, beta, solver=opt.cvxpy_solver)
            s2 = np.linalg.eigvalsh(Xc.T @ Xc / M.shape[0])[::-1]
            check_beta_range(beta, float(s2[0]), "squared singular value of X/sqrt(n)")
            # minimum-norm realisation of H on the latent: closed form with H in place of A - bI
            L = psd_factor(sol.H)
            k = L.shape[0]
            _, dz, Qt = np.linalg.svd(Zc / np.sqrt(Zm.shape[0]), full_matrices=False)
            if k > int(np.count_nonzero(dz > RANK_RTOL * dz[0])):
                raise InvalidInputError(
                    f"the latent dimension ({Zm.shape[1]}) is smaller than the truncation "
                    f"index k={k}; raise latent_dim to >= {k}"
                )
            Lo = L * orient_rows(L, mu_x)[:, None]
            Qo = Qt[:k] * orient_rows(Qt[:k], Zm.mean(axis=0))[:, None]
            Wc = (Qo.T / dz[:k]) @ Lo
            self.objective_ = sol.objective
            self.cvxpy_status_ = sol.status
            lam = sol.multiplier
            w_, U_ = np.linalg.eigh(lam)
            keep = w_ > 1e-6 * max(w_.max(), 1e-300)
            center = mu_x if opt.bias else np.zeros_like(mu_x)
            self.discriminator_ = QuadraticDiscriminator(U_[:, keep], w_[keep], center)
            self.sq_singular_values_ = s2
            self.truncation_index_ = k
        else:
            cf = closed_form_generator(Xc, Zc, beta, svd=opt.svd, rng=gen, x_ref=mu_x,
                                       z_ref=z_mean)  # fmt: skip
            Wc = cf["W"]
            self.objective_ = cf["objective"]
            self.sq_singular_values_ = cf["sq_singular"]
            self.truncation_index_ = cf["k"]
            self.discriminator_ = QuadraticDiscriminator(
                cf["V"], 1.0 / cf["latent_sv"] ** 2, mu_x if opt.bias else np.zeros_like(mu_x)
            )
        self.beta_ = beta
        if opt.bias:
            self.W_ = np.vstack([Wc, (mu_x - z_mean @ Wc)[None, :]])
        else:
            self.W_ = Wc
        G = self._generate(Zm)
        Gc = G - mu_x if opt.bias else G
        self.second_moment_ = Gc.T @ Gc / G.shape[0]
        self.mean_ = G.mean(axis=0)
        A = Xc.T @ Xc / M.shape[0]
        self.constraint_ = float(np.linalg.norm(A - self.second_moment_, 2))

    def _fit_linear(self, opt: _Settings, M, Zm, use_cvx, gen) -> None:
        mu_x = M.mean(axis=0)
        norm_mu = float(np.linalg.norm(mu_x))
        if opt.beta >= norm_mu:
            raise InvalidInputError(
                f"beta={opt.beta:.6g} is >= ||mean of X||={norm_mu:.6g}: the optimal generator "
                f"is W = 0 (degenerate); use 0 < beta < {norm_mu:.6g}"
            )
        Zt = np.hstack([Zm, np.ones((Zm.shape[0], 1))]) if opt.bias else Zm
        zbar = Zt.mean(axis=0)
        nz = float(zbar @ zbar)
        if nz <= 1e-300:
            raise InvalidInputError("the latent has zero mean; set bias=True for mean matching")
        target = mu_x * (1.0 - opt.beta / norm_mu)
        if use_cvx:
            sol = moment_sdp(M, opt.beta, "linear", solver=opt.cvxpy_solver)
            target = sol.mu
            self.objective_ = sol.objective
            self.cvxpy_status_ = sol.status
        else:
            self.objective_ = float((norm_mu - opt.beta) ** 2)
        # minimum-norm W with W^T zbar = target
        self.W_ = np.outer(zbar, target) / nz
        self.truncation_index_ = 1
        self.beta_ = opt.beta
        self.sq_singular_values_ = np.array([norm_mu**2])
        G = self._generate(Zm)
        self.mean_ = G.mean(axis=0)
        self.second_moment_ = G.T @ G / G.shape[0]
        self.constraint_ = float(np.linalg.norm(mu_x - self.mean_))
        self.weight_norm_sq_ = float(np.sum(self.W_**2))

    def _fit_polynomial(self, opt: _Settings, M, Zm, use_cvx, gen) -> None:
        if not opt.bias:
            raise InvalidInputError(
                "the polynomial discriminator also matches means; set bias=True"
            )
        sol = moment_sdp(M, opt.beta, "polynomial", activation=opt.activation,
                         solver=opt.cvxpy_solver)  # fmt: skip
        mu, H = sol.mu, sol.H
        L = psd_factor(H - np.outer(mu, mu), tol=1e-7)
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
        self.beta_ = opt.beta
        self.sq_singular_values_ = np.linalg.eigvalsh(M.T @ M / M.shape[0])[::-1]
        G = self._generate(Zm)
        self.mean_ = G.mean(axis=0)
        self.second_moment_ = G.T @ G / G.shape[0]
        a, b, _ = opt.activation
        self.constraint_ = _poly_constraint(
            a * (M.T @ M / M.shape[0] - self.second_moment_), b * (M.mean(axis=0) - self.mean_)
        )

    # -- generation ----------------------------------------------------------------------
    def _generate(self, Zm: np.ndarray) -> np.ndarray:
        if self.bias_:
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

    def sample(self, n: int, *, rng: RngLike = None) -> np.ndarray:
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
