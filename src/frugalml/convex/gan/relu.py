"""ReLU-type discriminator: a convex-concave game over sampled hyperplane arrangements.

Reference: A. Sahiner et al., "Hidden Convexity of Wasserstein GANs: Interpretable Generative
Models with Closed-Form Solutions", ICLR 2022, arXiv:2107.05680 (ReLU discriminators give
piecewise mean matching, a convex-concave game over hyperplane arrangements).

The discriminator is a two-layer network whose hidden units are ReLU-gated by ``P`` sampled
affine hyperplanes ``h_i`` (the arrangement): ``D(x) = sum_i 1[h_i^T [x; 1] >= 0] u_i^T x``
(the gated-ReLU form used by convex reformulations of ReLU networks; gate ``0`` is always on,
a linear neuron). With weight decay ``beta`` the inner maximisation over the discriminator
forces *piecewise mean matching*: for every piece ``i`` the data mean restricted to the
half-space, ``a_i = (1/n) sum_x x 1[h_i^T [x;1] >= 0]``, is within ``beta`` of the generated
one. For a linear generator ``G = [Z, 1] W`` and a *fixed* gate pattern of the generated
samples (``zhat_i = (1/m) sum_j [z_j; 1] 1[h_i^T [g_j; 1] >= 0]``) the game::

    min_W max_{||u_i|| <= rho}  1/2 ||W||_F^2 + sum_i u_i^T (a_i - W^T zhat_i) - beta ||u_i||

is convex in ``W`` and concave in ``u`` (``rho`` bounds the neurons: an exact penalty once
``rho`` exceeds the optimal multipliers). We solve it by proximal **extragradient**
(Korpelevich) with a certificate: the primal value ``p(W) = 1/2 ||W||^2 + rho sum_i
(||a_i - W^T zhat_i|| - beta)_+`` minus the dual value ``q(u) = -1/2 ||sum_i zhat_i u_i^T||^2 +
sum_i (u_i^T a_i - beta ||u_i||)`` bounds the suboptimality of both players. An outer loop
re-gates the generated samples with the new generator (fictitious play: the next game uses the
running average of the hard gate patterns) until the pattern stops changing.

Cost per extragradient step ``O(P (r + d))`` after ``O((n + m) P d)`` set-up per outer step.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..._optional import require
from ..._resources import check_memory
from ..._results import ResultRepr
from ..._validate import RngLike, check_array, check_int, check_positive_float, check_rng
from ...errors import InvalidInputError, SolverFailedError
from .linalg import as_matrix

__all__ = ["ReluWGANResult", "relu_game_cvxpy", "relu_wgan"]


@dataclass(frozen=True, repr=False)
class ReluWGANResult(ResultRepr):
    """Solution of the gated-ReLU WGAN game.

    W: ``(r + 1, d)`` generator (last row the bias); gates: ``(P, d + 1)`` hyperplanes;
    U: ``(P, d)`` discriminator neurons; primal, dual, gap: final values of the game for the
    last gate pattern; iterations: extragradient steps in all; outer: re-gating rounds;
    pattern_changes: generated-sample gates that changed in the last round (0 = consistent);
    constraint: ``max_i ||a_i - b_i(W)||`` with the generated gates of the final ``W``;
    pattern: ``(m, P)`` generated-sample gates (averaged, in [0, 1]) of the last inner game;
    seconds.
    """

    W: np.ndarray
    gates: np.ndarray
    pattern: np.ndarray
    U: np.ndarray
    primal: float
    dual: float
    gap: float
    iterations: int
    outer: int
    pattern_changes: int
    constraint: float
    beta: float
    rho: float
    seconds: float
    sample_shape: tuple[int, ...]

    def generate(self, Z: Any) -> np.ndarray:
        """Generator output ``(m, *sample_shape)`` for latent ``Z`` ``(m, r)``."""
        Zm = check_array(Z, "Z", ndim=2, shape=(None, self.W.shape[0] - 1))
        return (Zm @ self.W[:-1] + self.W[-1]).reshape(Zm.shape[0], *self.sample_shape)

    def sample(self, n: int, *, rng: RngLike = None) -> np.ndarray:
        """``n`` samples from fresh standard Gaussian latents."""
        n = check_int(n, "n", low=1)
        return self.generate(check_rng(rng).standard_normal((n, self.W.shape[0] - 1)))

    def discriminator(self, X: Any) -> np.ndarray:
        """``D(x) = sum_i 1[h_i^T [x;1] >= 0] u_i^T x`` for ``X`` ``(n, d)``: ``(n,)``."""
        M, _ = as_matrix(X)
        gate = _gates(M, self.gates)
        return np.sum(gate * (M @ self.U.T), axis=1)

    def summary(self) -> str:
        return (
            f"gated-ReLU WGAN: P={self.gates.shape[0]} beta={self.beta:.4g} "
            f"primal={self.primal:.6g} gap={self.gap:.2e} max piece mismatch="
            f"{self.constraint:.4g} iters={self.iterations} outer={self.outer} "
            f"pattern changes={self.pattern_changes} ({self.seconds:.3g} s)"
        )


def _gates(M: np.ndarray, H: np.ndarray) -> np.ndarray:
    return ((M @ H[:, :-1].T + H[:, -1]) >= 0).astype(float)


def _piece_means(M: np.ndarray, H: np.ndarray) -> np.ndarray:
    """``(P, d)``: ``(1/n) sum_x x 1[h_i^T [x;1] >= 0]``."""
    return _gates(M, H).T @ M / M.shape[0]


def _sample_gates(M: np.ndarray, P: int, gen: np.random.Generator) -> np.ndarray:
    """``P`` affine hyperplanes through random data points with Gaussian normals; row 0 is the
    always-on gate (a linear neuron: global mean matching)."""
    d = M.shape[1]
    H = np.zeros((P, d + 1))
    H[0, -1] = 1.0
    if P > 1:
        normals = gen.standard_normal((P - 1, d))
        anchors = M[gen.integers(0, M.shape[0], P - 1)]
        H[1:, :-1] = normals
        H[1:, -1] = -np.sum(normals * anchors, axis=1)
    return H


def _values(W, U, A, Zh, beta, rho) -> tuple[float, float]:
    R = A - Zh.T @ W  # (P, d) residuals a_i - W^T zhat_i
    primal = 0.5 * float(np.sum(W**2)) + rho * float(
        np.sum(np.maximum(np.linalg.norm(R, axis=1) - beta, 0.0))
    )
    S = Zh @ U  # sum_i zhat_i u_i^T
    dual = (
        -0.5 * float(np.sum(S**2))
        + float(np.sum(U * A))
        - beta * float(np.sum(np.linalg.norm(U, axis=1)))
    )
    return primal, dual


def _prox_u(V: np.ndarray, t: float, rho: float) -> np.ndarray:
    """prox of ``t beta ||.||`` + ball(rho) per row (block soft-threshold, then clip)."""
    norms = np.linalg.norm(V, axis=1, keepdims=True)
    shrink = np.maximum(1.0 - t / np.maximum(norms, 1e-300), 0.0)
    V = V * shrink
    norms = norms * shrink
    return V * np.minimum(1.0, rho / np.maximum(norms, 1e-300))


def _extragradient(W, U, A, Zh, beta, rho, max_iter, tol):
    L = 1.0 + float(np.linalg.norm(Zh, 2))
    eta = 0.9 / L
    best = (np.inf, W, U, 0.0, 0.0)
    it = 0
    for it in range(1, max_iter + 1):
        gW = W - Zh @ U
        gU = A - Zh.T @ W
        Wh = W - eta * gW
        Uh = _prox_u(U + eta * gU, eta * beta, rho)
        W = W - eta * (Wh - Zh @ Uh)
        U = _prox_u(U + eta * (A - Zh.T @ Wh), eta * beta, rho)
        if it % 20 == 0 or it == max_iter:
            p, q = _values(W, U, A, Zh, beta, rho)
            if p - q < best[0]:
                best = (p - q, W.copy(), U.copy(), p, q)
            if p - q <= tol * max(1.0, abs(p)):
                break
    gap, W, U, p, q = best
    return W, U, p, q, gap, it


def relu_wgan(
    X: Any,
    Z: Any = None,
    *,
    beta: float = 0.1,
    n_arrangements: int = 32,
    latent_dim: int | None = None,
    rho: float = 100.0,
    max_iter: int = 5000,
    tol: float = 1e-5,
    outer_iter: int = 10,
    rng: RngLike = 0,
) -> ReluWGANResult:
    """Fit a linear generator against a gated-ReLU discriminator (piecewise mean matching).

    Parameters
    ----------
    X: ``(n, d)`` data (or ``(n, ...)`` images). Z: ``(m, r)`` latent (default ``n`` Gaussian
    rows of ``latent_dim`` columns, default ``d``). beta: weight decay (> 0). n_arrangements:
    ``P`` sampled hyperplanes (gate 0 is always on). rho: neuron-norm bound of the game.
    max_iter, tol: extragradient budget and relative duality-gap target per gate pattern.
    outer_iter: re-gating rounds.
    """
    t0 = time.perf_counter()
    M, shape = as_matrix(X)
    beta = check_positive_float(beta, "beta")
    rho = check_positive_float(rho, "rho")
    P = check_int(n_arrangements, "n_arrangements", low=1)
    max_iter = check_int(max_iter, "max_iter", low=1)
    outer_iter = check_int(outer_iter, "outer_iter", low=1)
    tol = check_positive_float(tol, "tol")
    gen = check_rng(rng)
    n, d = M.shape
    check_memory(
        8 * (3 * P * n + 4 * P * d),
        f"{P} hyperplane arrangements of {n} samples",
        fix="lower n_arrangements",
    )
    if Z is None:
        r = d if latent_dim is None else check_int(latent_dim, "latent_dim", low=1)
        check_memory(
            8 * (3 * n * r + 3 * r * d),
            f"a latent of {n} x {r}",
            fix="lower latent_dim",
        )
        Zm = gen.standard_normal((n, r))
    else:
        Zm = check_array(Z, "Z", ndim=2)
    Zt = np.hstack([Zm, np.ones((Zm.shape[0], 1))])
    H = _sample_gates(M, P, gen)
    A = _piece_means(M, H)
    if beta >= float(np.max(np.linalg.norm(A, axis=1))):
        raise InvalidInputError(
            f"beta={beta:.6g} is >= the largest piece mean norm "
            f"{float(np.max(np.linalg.norm(A, axis=1))):.6g}: the optimal generator is W = 0 "
            "(degenerate); lower beta"
        )
    W = np.zeros((Zt.shape[1], d))
    U = np.zeros((P, d))
    total, changes, outer = 0, -1, 0
    pattern = _gates(Zt @ W, H)
    used = pattern
    p = q = gap = float("nan")
    soft = pattern
    for outer in range(1, outer_iter + 1):
        used = soft
        Zh = Zt.T @ soft / Zt.shape[0]  # (r+1, P)
        W, U, p, q, gap, its = _extragradient(W, U, A, Zh, beta, rho, max_iter, tol)
        total += its
        new = _gates(Zt @ W, H)
        changes = int(np.sum(new != pattern))
        pattern = new
        if changes == 0:
            break
        # fictitious play: the next game sees the running average of the hard patterns
        soft = soft + (new - soft) / (outer + 1)
    B = pattern.T @ (Zt @ W) / Zt.shape[0]
    constraint = float(np.max(np.linalg.norm(A - B, axis=1)))
    return ReluWGANResult(
        W=W, gates=H, pattern=used, U=U, primal=p, dual=q, gap=gap, iterations=total, outer=outer,
        pattern_changes=changes, constraint=constraint, beta=beta, rho=rho,
        seconds=time.perf_counter() - t0, sample_shape=shape,
    )  # fmt: skip


def relu_game_cvxpy(
    X: Any, Z: Any, gates: np.ndarray, pattern: np.ndarray, *, beta: float, rho: float
) -> tuple[float, np.ndarray]:
    """Reference: the game's primal ``min_W p(W)`` by CVXPY (an SOCP, Clarabel) for the
    generated-sample gate ``pattern`` ``(m, P)``. Returns ``(optimal value, W)``. Small
    problems only. Raises :class:`~frugalml.errors.SolverFailedError` when the solver
    fails."""
    cp = require("cvxpy", what="relu_game_cvxpy", extra="convex")
    M, _ = as_matrix(X)
    Zm = check_array(Z, "Z", ndim=2)
    Zt = np.hstack([Zm, np.ones((Zm.shape[0], 1))])
    A = _piece_means(M, gates)
    Zh = Zt.T @ np.asarray(pattern, dtype=float) / Zt.shape[0]
    W = cp.Variable((Zt.shape[1], M.shape[1]))
    R = A - Zh.T @ W
    obj = 0.5 * cp.sum_squares(W) + rho * cp.sum(cp.pos(cp.norm(R, 2, axis=1) - beta))
    prob = cp.Problem(cp.Minimize(obj))
    try:
        prob.solve(solver=cp.CLARABEL)
    except cp.error.SolverError as exc:
        raise SolverFailedError(
            f"Clarabel failed on the ReLU game ({exc})", status="solver_error"
        ) from exc
    if prob.status not in ("optimal", "optimal_inaccurate") or W.value is None:
        raise SolverFailedError(
            f"Clarabel stopped with status {prob.status!r} on the ReLU game",
            status=str(prob.status),
        )
    return float(prob.value), np.asarray(W.value)
