"""The iterative Hessian sketch (IHS), with Polyak momentum and an adaptive safeguard.

Pilanci & Wainwright, "Iterative Hessian sketch: fast and accurate solution approximation for
constrained least-squares" (JMLR 2016):
``x+ = x + (A^T S^T S A + lam I)^{-1} (A^T (b - A x) - lam x)``, with a new sketch every
iteration (``refresh=True``) or, by default, one sketch and Polyak momentum
``alpha = (1 - r)^2, beta = r`` ("iterative sketching with momentum", Ozaki & Epperly et al.
2024), converging at rate ``~ sqrt(r)`` with ``r = (sqrt(d) + 2)^2 / m``. Called by
:func:`~frugalml.sketch.lstsq.lstsq` (``method="ihs"``).
"""

from __future__ import annotations

import numpy as np

from .pcg import normal_residual
from .sketched_factor import SketchedFactor

__all__ = ["MAX_RESTARTS", "STALL", "ihs_iterations"]

#: IHS: restarts from the best iterate before giving up (see :func:`ihs_iterations`)
MAX_RESTARTS = 8
#: IHS: iterations without a new best gradient norm before stopping at the rounding floor
STALL = 10


def ihs_iterations(a, b, lam, factor, x, tol, maxiter, refresh, sk, gen, m, d):
    """IHS iterations with an adaptive safeguard.

    The momentum parameters assume the sketched Hessian's spectrum of a Gaussian embedding,
    ``[(1 - sqrt(r))^2, (1 + sqrt(r))^2]`` with ``r = (sqrt(d) + 2)^2 / m`` (the asymptotic
    ``d/m`` widened by about two standard deviations of the edge fluctuations); a sketch whose
    distortion is larger (sampling sketches, small m) can make the iteration grow. When the
    preconditioned gradient norm grows past 4x its best value (or overflows) the run restarts
    from the best iterate with a wider assumed spectrum (momentum ratio doubled; for refreshed
    IHS the step halved), at most ``MAX_RESTARTS`` times. After ``STALL`` iterations without
    progress the run stops; it counts as converged when the best gradient norm is within
    ``1e3 eps cond(S A)`` of the residual (the rounding floor of an ill-conditioned problem).
    """
    n = a.shape[0]
    # Marchenko-Pastur edge with a margin for finite-d fluctuations: (sqrt(d) + 2)^2 / m
    ratio = min((np.sqrt(d) + 2.0) ** 2 / m, 0.95)

    def params(r):
        return (1.0, 0.0) if refresh else ((1.0 - r) ** 2, r)

    alpha, beta = params(ratio)
    prev = x.copy()
    best_x, best_crit, best_rnorm, best_it = x.copy(), np.inf, np.inf, 0
    floor = 1e3 * np.finfo(float).eps * factor.cond_estimate
    history = []
    converged = False
    restarts = 0
    its = 0
    for its in range(1, maxiter + 1):
        g, rnorm = normal_residual(a, b, x, lam)  # one fused pass, recomputed
        if refresh and its > 1:
            s_mat = sk.draw(n, data=a, rng=gen)
            factor = SketchedFactor(s_mat.apply(a), lam)
        pg = factor.rmatvec(g)
        crit = float(np.linalg.norm(pg))
        finite = np.isfinite(crit) and np.isfinite(rnorm)
        history.append(crit / max(rnorm, np.finfo(float).tiny) if finite else float("inf"))
        if finite and crit <= tol * rnorm:
            converged = True
            its -= 1
            break
        if finite and crit < best_crit:
            best_x, best_crit, best_rnorm, best_it = x.copy(), crit, rnorm, its
        if not finite or crit > 4.0 * best_crit:
            if restarts == MAX_RESTARTS:
                break
            restarts += 1
            ratio = min(0.95, 2.0 * ratio + 0.05)
            alpha, beta = params(ratio)
            if refresh:
                alpha = 0.5**restarts
            x, prev = best_x.copy(), best_x.copy()
            continue
        if its - best_it >= STALL:
            # rounding floor reached (ill-conditioned A): the gradient cannot get smaller
            converged = best_crit <= floor * best_rnorm
            break
        step = factor.matvec(pg)
        nxt = x + alpha * step + beta * (x - prev)
        prev, x = x, nxt
    if not converged:
        x = best_x
    return x, its, converged, tuple(history)
