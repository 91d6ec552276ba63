"""Sketch-and-precondition: iterate on ``A M`` with ``M`` from a sketched factorisation.

Rokhlin & Tygert (PNAS 2008); Blendenpik (Avron, Maymounkov & Toledo, SISC 2010); LSRN (Meng,
Saunders & Mahoney, SISC 2014). ``M`` comes from :class:`.SketchedFactor` of ``S A``;
``kappa(A M) <= (1 + eps)/(1 - eps)`` for an ``eps``-subspace embedding, so the iteration needs
``O(log(1/tol))`` passes over ``A`` whatever ``kappa(A)`` is. Both iterations start from the
sketch-and-solve answer, the variant Meier, Nakatsukasa, Townsend & Webb (SIMAX 2024) show to be
stable: :func:`precondition_krylov` runs LSQR/LSMR (:mod:`scipy.sparse.linalg`) on
``[A; sqrt(lam) I] M`` (two passes over ``A`` per iteration), :func:`precondition_cg` runs
conjugate gradients on the preconditioned normal equations (:mod:`.pcg`, one fused pass).
The defaults of the CG solver (sketch density, sketch size) and of the mixed-precision factor
are here too. Called by :func:`~frugalml.sketch.lstsq.lstsq`.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse.linalg as spla

from .pcg import normal_residual, pcg_normal

__all__ = [
    "CG_NNZ_PER_COL",
    "MIXED_COND_LIMIT",
    "REFINE_COND",
    "cg_sketch_size",
    "precondition_cg",
    "precondition_krylov",
]

#: precision="mixed": a float32 factor whose LAPACK 1-norm condition estimate times eps32
#: exceeds this is redone in float64. Householder QR's error is column-wise small, so the
#: float32 R is the exact factor of a nearby matrix and preconditions well far beyond
#: cond ~ 1/eps32: measured on coherent problems (n = 60000, d = 500, sparse sign m = 8d), CG
#: needed 23/23/26 iterations with the float32 factor against 23/23/25 with the float64 one at
#: cond(A) = 1e5/1e6/1e7, where this product was 0.47/5.7/39; 10 keeps a margin
MIXED_COND_LIMIT = 10.0
#: sketch-and-precondition: condition number of S A above which refine=None refines once
REFINE_COND = 1e6


#: nonzeros per column of the default sparse sign sketch of the CG solver: at n = 100000,
#: d = 500 (m = 8d/12d/16d/24d) CG took 25/21.5/20/18 passes with 2 and 24/20.5/19/17 with 3
#: nonzeros; a third nonzero costs less than the pass it saves, 8 cost about 0.25 s more in the
#: sketch for 7 passes fewer in total (measured by benchmarks/bench_lstsq_regimes.py)
CG_NNZ_PER_COL = 3


def cg_sketch_size(n: int, d: int) -> int:
    """Default ``m`` of the CG solver, from a cost model: the float32 QR costs ``2 m d^2`` flops
    (measured 0.05/0.08/0.12/0.19 s at m = 8d/12d/16d/24d, d = 500, one thread) and saves
    passes of ``8 n d`` bytes (35-48 ms each at n = 100000) as ``m`` grows. Its minimum:
    ``24 d`` for ``n >= 1000 d``, ``16 d`` for ``n >= 200 d``, ``12 d`` for ``n >= 75 d``, else
    ``6 d``; capped at ``n``."""
    k = 24 if n >= 1000 * d else 16 if n >= 200 * d else 12 if n >= 75 * d else 6
    return int(min(n, max(k * d, d + 10)))


def precondition_cg(a, b, lam, factor, x0, tol, maxiter):
    """:func:`~frugalml.sketch.pcg.pcg_normal` with ``factor`` as the preconditioner; a solve
    that stalls within ``eps64 cond(R)`` of zero (the rounding floor of a backward-stable
    solver, ``||A dx|| / ||r|| <~ eps kappa``) counts as converged."""
    floor = np.finfo(np.float64).eps * factor.cond_estimate
    out = pcg_normal(
        a, b, x0, factor.matvec, factor.rmatvec, lam=lam, tol=tol, maxiter=maxiter, floor=floor
    )
    if out[2] and not factor.full_rank:
        # CG only sees range(M): a sketch that lost rank A does not have would let it stop on a
        # wrong x. The gradient's part outside range(M) must be rounding-sized (it is for a
        # rank-deficient A, whose null space S A shares): one more pass, rank-deficient only
        g, rnorm = normal_residual(a, b, out[0], lam)
        v = factor.precond / np.linalg.norm(factor.precond, axis=0)  # V_r (d, r)
        sigma1 = 1.0 / float(np.linalg.norm(factor.precond, axis=0).min())
        if np.linalg.norm(g - v @ (v.T @ g)) > np.sqrt(np.finfo(float).eps) * sigma1 * rnorm:
            out = (out[0], out[1], False, *out[3:])
    return out


def precondition_krylov(a, b, lam, factor, x0, tol, maxiter, solver):
    n, d = a.shape
    pre, pre_t = factor.matvec, factor.rmatvec
    r = factor.rank
    root = np.sqrt(lam)

    if lam > 0:

        def matvec(y):
            z = pre(np.ravel(y))
            return np.concatenate([a @ z, root * z])

        def rmatvec(u):
            u = np.ravel(u)
            return pre_t(a.T @ u[:n] + root * u[n:])

        rhs = np.concatenate([b - a @ x0, -root * x0])
        shape = (n + d, r)
    else:

        def matvec(y):
            return a @ pre(np.ravel(y))

        def rmatvec(u):
            return pre_t(a.T @ np.ravel(u))

        rhs = b - a @ x0
        shape = (n, r)
    op = spla.LinearOperator(shape, matvec=matvec, rmatvec=rmatvec, dtype=np.float64)
    if solver == "lsqr":
        out = spla.lsqr(op, rhs, atol=tol, btol=tol, iter_lim=maxiter)
        y, istop, its = out[0], out[1], out[2]
        converged = istop != 7
    else:
        out = spla.lsmr(op, rhs, atol=tol, btol=tol, maxiter=maxiter)
        y, istop, its = out[0], out[1], out[2]
        converged = istop != 7
    return x0 + pre(y), int(its), bool(converged)
