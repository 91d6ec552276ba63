"""One round of the distributed Newton sketch on the master: submit, gather, average.

Each of the ``q`` tasks (:mod:`.newton_tasks`) gets its sketch spec, a seed and its local
correction ``(lam_local, step)`` (:mod:`.debias`); the master averages the directions that
arrived (first ``k``, or by ``deadline``) with weights ``∝ m_k - d_lambda`` (debiased averaging,
Derezinski, Bartan, Pilanci & Mahoney, NeurIPS 2020, arXiv 2007.01327), uniform (naive
averaging, as in GIANT: Wang, Roosta, Xu & Mahoney, NeurIPS 2018), or ``∝ det`` of the local
Hessians (determinantal averaging, Derezinski & Mahoney, NeurIPS 2019). Used by
:func:`~frugalml.sketch.newton.distributed_newton`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import scipy.sparse as sp

from ..errors import TaskFailedError
from .factory import make_sketch

__all__ = ["averaged_direction", "make_round_sketch", "round_nbytes"]


def round_nbytes(sizes: Sequence[int], a: Any, d: int) -> int:
    """Bytes one sampled-path task holds: its rows of ``A`` and ``S B`` (dense ``m d``, or
    the sampled nonzeros), and the ``k x k`` factor, ``k = min(m, d)``."""
    m = max(sizes)
    per_row = 12 * max(a.nnz // max(a.shape[0], 1), 1) if sp.issparse(a) else 8 * d
    rows = 2 * m * per_row
    k = min(m, d)
    return rows + 2 * 8 * k * k


def make_round_sketch(sketch: str, m: int, lam: float):
    if sketch == "surrogate":  # built for the original lam; the worker uses lam' (debias)
        from .surrogate import SurrogateSketch

        return SurrogateSketch(m, lam=lam)
    return make_sketch(sketch, m)


def averaged_direction(
    ex, call, g, sketch, lam, sizes, corr, weights, d_lam, k, deadline, gen, debias
):
    """``call``: the task function and its data arguments (shared references, or sharded
    parts and offsets, then ``x`` and the loss); each task adds ``g``, its sketch and seed."""
    seeds = gen.integers(0, 2**63 - 1, size=len(sizes))
    handles = []
    for i, mk in enumerate(sizes):
        sk = make_round_sketch(sketch, mk, lam)
        handles.append(ex.submit(*call, g, sk, int(seeds[i]), corr[i].lam_local,
                                 corr[i].step))  # fmt: skip
    got = ex.gather(handles, k=k, deadline=deadline)
    moved = (got.total_bytes_sent, got.total_bytes_received)
    if got.pending:
        ex.cancel([handles[i] for i in got.pending])
    arrived = got.finished
    if not arrived:
        raise TaskFailedError(f"no worker returned a Newton direction ({got.summary()})")
    dirs = np.stack([got.results[i][0] for i in arrived])
    est = [got.results[i][2] for i in arrived if len(got.results[i]) > 2]
    est = [e for e in est if np.isfinite(e)]
    worker_dlam = float(np.mean(est)) if est else None
    if weights == "determinantal":
        logdets = np.array([got.results[i][1] for i in arrived])
        w = np.exp(logdets - logdets.max())
        w = w / w.sum()
        direction = w @ dirs
        if debias:
            # Gaussian, lam = 0: E[adj(H_k)] / E[det(H_k)] = m / (m - d + 1) H^{-1} (Wishart
            # moments), so the determinantal average is rescaled by (m - d + 1)/m; with
            # d -> d_lambda for lam > 0 (approximate there)
            direction = direction * float(
                sum(wk * (sizes[i] - d_lam + 1.0) / sizes[i] for wk, i in zip(w, arrived,
                                                                                strict=True))
            )  # fmt: skip
        return direction, len(arrived), float(got.seconds), moved, worker_dlam
    if weights == "size":
        w = np.array([max(sizes[i] - d_lam, 1.0) for i in arrived])
    else:
        w = np.ones(len(arrived))
    w = w / w.sum()
    return w @ dirs, len(arrived), float(got.seconds), moved, worker_dlam
