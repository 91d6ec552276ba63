"""The master's estimates of the effective dimension ``d_lambda`` of the Newton sketch.

The debiasing correction of Derezinski, Bartan, Pilanci & Mahoney (NeurIPS 2020,
arXiv 2007.01327; :mod:`.debias`) and the size weights of the average need
``d_lambda = tr(B^T B (B^T B + lam I)^{-1})`` of the Hessian square root ``B`` at the current
iterate. :func:`estimate_effective_dimension` computes it exactly (SVD) when cheap, else from
a sketch of ``B`` (:func:`~frugalml.sketch.effective.effective_dimension`);
:func:`sampled_effective_dimension` from uniformly sampled rows of ``B`` without forming it (the
uniform-sampling path, where the workers refine it every round). Used by
:func:`~frugalml.sketch.newton.distributed_newton`.
"""

from __future__ import annotations

import numpy as np

from .effective import effective_dimension
from .newton_problem import NewtonProblem, hessian_sqrt
from .sketched_hessian import SketchedHessian

__all__ = [
    "DLAM_ROWS",
    "EXACT_DLAM_FLOPS",
    "estimate_effective_dimension",
    "sampled_effective_dimension",
]

#: at most this many sampled rows for the first d_lambda estimate on the sampled path
DLAM_ROWS = 4096


def sampled_effective_dimension(
    prob: NewtonProblem, x: np.ndarray, gen: np.random.Generator
) -> float:
    """``d_lambda`` of ``B^T B + lam I`` at ``x`` from ``r = min(n, 4 d, DLAM_ROWS)`` uniformly
    sampled rows of ``B`` scaled by ``sqrt(n / r)``: Cholesky of the primal or dual factor
    (:class:`.SketchedHessian`), ``O(r d min(r, d))`` flops (``O(r nnz/row^2 + r^3)`` sparse),
    never ``B`` (n, d). An estimate (it saturates below ``r``); the workers refine it every
    round. The rank bound ``d`` at ``lam = 0``."""
    n, d = prob.a.shape
    if prob.lam == 0.0:
        return float(d)
    r = int(min(n, 4 * d, DLAM_ROWS))
    rows = np.sort(gen.choice(n, size=r, replace=False)) if r < n else np.arange(n)
    b = hessian_sqrt(prob.a[rows], x, prob.loss) * np.sqrt(n / r)
    return SketchedHessian(b, prob.lam).effective_dimension(rng=gen)


#: above this n d^2, d_lambda of the logistic Hessian is re-estimated from a sparse sketch
#: instead of an SVD (which would cost as much as forming the exact Hessian)
EXACT_DLAM_FLOPS = 5e8


def estimate_effective_dimension(
    b: np.ndarray, lam: float, gen: np.random.Generator, sketch: str = "sparse-sign"
) -> float:
    """d_lambda of ``B^T B + lam I``: exact (SVD) when cheap, else from an ``8d``-row sketch —
    uniform rows when the workers sample uniformly (``O(d^3)``, no pass over ``B``; as accurate
    as the workers' own sketches assume), otherwise a sparse sign sketch (``O(nnz(B))``)."""
    n, d = b.shape
    if n * d * d <= EXACT_DLAM_FLOPS:
        return effective_dimension(b, lam)
    if sketch == "uniform" and n > 8 * d:
        rows = gen.choice(n, size=8 * d, replace=False)
        return effective_dimension(b[rows] * np.sqrt(n / (8.0 * d)), lam)
    return effective_dimension(b, lam, method="sketch", rng=gen)
