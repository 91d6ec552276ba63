"""Test problems for saddle-point solvers (Choukroun, Zibulevsky & Kisilev, arXiv 2008.09149).

* :func:`bilinear_game` — ``f = x^T A y + b^T x + c^T y`` with a full-rank square ``A`` of
  prescribed condition number ``kappa`` (singular values log-spaced in ``[1, kappa]``).
* :func:`quadratic_game` — strongly-convex-strongly-concave
  ``f = 1/2 x^T B x + x^T A y - 1/2 y^T C y + b^T x + c^T y``.
* :func:`constrained_least_squares` — ``min 1/2 ||F x - g||^2 s.t. E x = h`` through its
  augmented Lagrangian ``L(x, lam) = 1/2||F x - g||^2 + lam^T (E x - h) + rho/2 ||E x - h||^2``
  (the ADMM setting of the paper), with the constraint violation as a metric.
* :func:`mixture_gan` — a small GAN on a 2-D mixture of Gaussians on a circle (torch), with
  mode-coverage and sample-quality metrics; defined in :mod:`.gan` (with :class:`GANProblem`,
  :func:`mode_metrics` and the Adam-GDA baseline :func:`adam_gda`) and re-exported here.

The saddle points of the first three are computed by a dense direct solve of their
optimality systems (``O((n + m)^3)``).
"""

from __future__ import annotations

import math

import numpy as np

from .._resources import check_memory
from .._validate import (
    RngLike,
    check_int,
    check_nonnegative_float,
    check_positive_float,
    check_rng,
)
from ..errors import InvalidInputError
from .gan import GANProblem, adam_gda, mixture_gan, mode_metrics
from .saddle_problem import SaddleProblem

__all__ = [
    "GANProblem",
    "adam_gda",
    "bilinear_game",
    "constrained_least_squares",
    "mixture_gan",
    "mode_metrics",
    "quadratic_game",
]


def _orthogonal(n: int, gen: np.random.Generator) -> np.ndarray:
    q, r = np.linalg.qr(gen.standard_normal((n, n)))
    return q * np.sign(np.diag(r))


def _spectrum(n: int, low: float, high: float) -> np.ndarray:
    return np.geomspace(high, low, n) if n > 1 else np.array([high])


def bilinear_game(n: int = 100, kappa: float = 100.0, *, rng: RngLike = 0) -> SaddleProblem:
    """Random bilinear game ``min_x max_y x^T A y + b^T x + c^T y`` with ``A`` of shape (n, n).

    ``A = U diag(s) V^T`` with Haar-random ``U, V`` and singular values log-spaced from
    ``kappa`` down to 1 (so ``||A|| = kappa`` = the Lipschitz constant, condition number
    ``kappa``). ``b, c`` are scaled so that the saddle ``y* = -A^{-1} b``,
    ``x* = -A^{-T} c`` has unit norm per block. Gradient: ``(A y + b, A^T x + c)``;
    Hessian-vector product: ``(A q, A^T p)`` (same cost, counted 1).
    """
    n = check_int(n, "n", low=1)
    kappa = check_positive_float(kappa, "kappa")
    if kappa < 1:
        raise InvalidInputError(f"kappa must be >= 1, got {kappa}")
    gen = check_rng(rng)
    # U, V, A, the (2n, 2n) optimality system J and the QR temporaries: about 10 n^2 floats
    check_memory(80.0 * n * n, f"the n = {n} bilinear game (dense {n} x {n} matrices)",
                 fix="use a smaller n (the CLI's --dim)")  # fmt: skip
    s = _spectrum(n, 1.0, kappa)
    U, V = _orthogonal(n, gen), _orthogonal(n, gen)
    A = (U * s) @ V.T
    x_star = gen.standard_normal(n)
    y_star = gen.standard_normal(n)
    x_star /= np.linalg.norm(x_star)
    y_star /= np.linalg.norm(y_star)
    b, c = -A @ y_star, -A.T @ x_star
    J = np.block([[np.zeros((n, n)), A], [-A.T, np.zeros((n, n))]])
    prob = SaddleProblem(
        lambda x, y: A @ y + b,
        lambda x, y: A.T @ x + c,
        n,
        n,
        value=lambda x, y: float(x @ A @ y + b @ x + c @ y),
        hvp=lambda x, y, p, q: (A @ q, A.T @ p),
        x_star=x_star,
        y_star=y_star,
        bilinear=True,
        linear_system=(J, np.concatenate([b, -c])),
        lipschitz=float(s[0]),
        name=f"bilinear(n={n}, kappa={kappa:g})",
    )
    prob.data = {"A": A, "b": b, "c": c}
    return prob


def quadratic_game(
    n: int = 100,
    m: int | None = None,
    *,
    mu: float = 0.01,
    L: float = 1.0,
    coupling: float = 1.0,
    rng: RngLike = 0,
) -> SaddleProblem:
    """Strongly-convex-strongly-concave quadratic game.

    ``f = 1/2 x^T B x + x^T A y - 1/2 y^T C y + b^T x + c^T y`` with ``B`` (n x n) and ``C``
    (m x m) symmetric with eigenvalues log-spaced in ``[mu, L]`` and a Gaussian coupling ``A``
    scaled to spectral norm ``coupling``. The saddle solves
    ``[[B, A], [A^T, -C]] [x; y] = -[b; c]``.
    """
    n = check_int(n, "n", low=1)
    m = n if m is None else check_int(m, "m", low=1)
    mu = check_positive_float(mu, "mu")
    L = check_positive_float(L, "L")
    coupling = check_positive_float(coupling, "coupling")
    if mu > L:
        raise InvalidInputError(f"mu must be <= L, got mu={mu}, L={L}")
    gen = check_rng(rng)
    # B, C, their orthogonal factors and QR temporaries, A, and the (n+m)^2 system J
    check_memory(8.0 * (3 * n * n + 3 * m * m + n * m + (n + m) ** 2),
                 f"the n = {n}, m = {m} quadratic game (dense matrices)",
                 fix="use a smaller n (the CLI's --dim)")  # fmt: skip
    Ub, Uc = _orthogonal(n, gen), _orthogonal(m, gen)
    B = (Ub * _spectrum(n, mu, L)) @ Ub.T
    C = (Uc * _spectrum(m, mu, L)) @ Uc.T
    A = gen.standard_normal((n, m))
    A *= coupling / np.linalg.norm(A, 2)
    x_star = gen.standard_normal(n)
    y_star = gen.standard_normal(m)
    x_star /= np.linalg.norm(x_star)
    y_star /= np.linalg.norm(y_star)
    b = -(B @ x_star + A @ y_star)
    c = -(A.T @ x_star - C @ y_star)
    J = np.block([[B, A], [-A.T, C]])
    prob = SaddleProblem(
        lambda x, y: B @ x + A @ y + b,
        lambda x, y: A.T @ x - C @ y + c,
        n,
        m,
        value=lambda x, y: float(0.5 * x @ B @ x + x @ A @ y - 0.5 * y @ C @ y + b @ x + c @ y),
        hvp=lambda x, y, p, q: (B @ p + A @ q, A.T @ p - C @ q),
        x_star=x_star,
        y_star=y_star,
        affine=True,
        linear_system=(J, np.concatenate([b, -c])),
        lipschitz=float(np.linalg.norm(J, 2)),
        name=f"quadratic(n={n}, m={m}, mu={mu:g}, L={L:g})",
    )
    prob.data = {"A": A, "B": B, "C": C, "b": b, "c": c}
    return prob


def constrained_least_squares(
    n: int = 200,
    p: int = 300,
    k: int = 50,
    *,
    kappa: float = 30.0,
    rho: float = 1.0,
    rng: RngLike = 0,
) -> SaddleProblem:
    """``min_x 1/2 ||F x - g||^2  s.t.  E x = h`` as the saddle of its augmented Lagrangian.

    ``F`` is (p, n) with singular values log-spaced in ``[1, kappa]``, ``E`` (k, n) Gaussian
    normalised to unit spectral norm, ``k <= n`` constraints. Primal ``x`` (n,), dual ``lam``
    (k,). ``grad_x = F^T (F x - g) + E^T lam + rho E^T (E x - h)``, ``grad_lam = E x - h``.
    The saddle ``(x*, lam*)`` solves the KKT system ``[[F^T F, E^T], [E, 0]]``. Metrics:
    ``violation = ||E x - h|| / max(1, ||h||)`` and ``kkt_error = max(violation, distance)``.
    ``problem.data`` holds ``F, g, E, h, rho`` (for :func:`~.baselines.admm_equality_ls`).
    """
    n = check_int(n, "n", low=1)
    p = check_int(p, "p", low=1)
    k = check_int(k, "k", low=1, high=n)
    kappa = check_positive_float(kappa, "kappa")
    rho = check_nonnegative_float(rho, "rho")
    if kappa < 1:
        raise InvalidInputError(f"kappa must be >= 1, got {kappa}")
    gen = check_rng(rng)
    r = min(p, n)
    # U (p, r), V and its QR temporaries (3 n^2), F (p, n), E (k, n), F^T F, H, and the two
    # (n + k)^2 KKT systems
    check_memory(8.0 * (p * r + 5 * n * n + p * n + k * n + 2 * (n + k) ** 2),
                 f"the n = {n}, p = {p}, k = {k} constrained least-squares problem (dense "
                 "matrices)", fix="use a smaller n (the CLI's --dim)")  # fmt: skip
    U = np.linalg.qr(gen.standard_normal((p, r)))[0]
    V = _orthogonal(n, gen)[:, :r]
    F = (U * _spectrum(r, 1.0, kappa)) @ V.T
    E = gen.standard_normal((k, n))
    E /= np.linalg.norm(E, 2)
    g = gen.standard_normal(p)
    h = gen.standard_normal(k)
    kkt = np.block([[F.T @ F, E.T], [E, np.zeros((k, k))]])
    sol = np.linalg.solve(kkt, np.concatenate([F.T @ g, h]))
    x_star, lam_star = sol[:n], sol[n:]
    FtF = F.T @ F
    H = FtF + rho * E.T @ E
    off_x = -(F.T @ g) - rho * E.T @ h
    J = np.block([[H, E.T], [-E, np.zeros((k, k))]])
    hnorm = max(1.0, float(np.linalg.norm(h)))
    zs = max(1.0, math.hypot(np.linalg.norm(x_star), np.linalg.norm(lam_star)))

    def violation(x, y):
        return float(np.linalg.norm(E @ x - h)) / hnorm

    def kkt_error(x, y):
        d = math.hypot(np.linalg.norm(x - x_star), np.linalg.norm(y - lam_star)) / zs
        return max(violation(x, y), d)

    prob = SaddleProblem(
        lambda x, y: H @ x + E.T @ y + off_x,
        lambda x, y: E @ x - h,
        n,
        k,
        value=lambda x, y: float(
            0.5 * np.sum((F @ x - g) ** 2) + y @ (E @ x - h) + 0.5 * rho * np.sum((E @ x - h) ** 2)
        ),
        hvp=lambda x, y, px, qy: (H @ px + E.T @ qy, E @ px),
        x_star=x_star,
        y_star=lam_star,
        affine=True,
        linear_system=(J, np.concatenate([off_x, h])),
        lipschitz=float(np.linalg.norm(J, 2)),
        metrics={"violation": violation, "kkt_error": kkt_error},
        name=f"constrained-ls(n={n}, p={p}, k={k}, kappa={kappa:g}, rho={rho:g})",
    )
    prob.data = {"F": F, "g": g, "E": E, "h": h, "rho": rho}
    return prob
