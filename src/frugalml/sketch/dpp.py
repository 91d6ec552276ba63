"""Exact sampling of L-ensemble determinantal point processes from an eigendecomposition.

``P(T) = det(L_T) / det(I + L)`` for ``L = U diag(ev) U^T`` (``U`` (n, r) orthonormal). The
spectral algorithm of Hough, Krishnapur, Peres & Virag (2006), as in Kulesza & Taskar (2012,
Alg. 1): keep eigenvector ``j`` with probability ``ev_j / (ev_j + 1)`` (``ev = inf``: always),
then draw the projection DPP on the kept vectors one item at a time, each with probability
proportional to the squared row norms of the remaining basis, which is then restricted to the
complement of the chosen item. Cost ``O(n k^2)`` per sample for ``k`` kept vectors.
"""

from __future__ import annotations

import numpy as np

__all__ = ["sample_l_ensemble", "sample_projection_dpp"]


def sample_projection_dpp(v: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Items (k,) of the projection DPP with kernel ``V V^T`` (``v`` (n, k) orthonormal)."""
    v = np.array(v, dtype=np.float64, copy=True)
    items = []
    while v.shape[1] > 0:
        w = np.einsum("ij,ij->i", v, v)
        w = np.maximum(w, 0.0)
        i = int(rng.choice(v.shape[0], p=w / w.sum()))
        items.append(i)
        j = int(np.argmax(np.abs(v[i])))
        col = v[:, j].copy()
        v = np.delete(v, j, axis=1)
        if v.shape[1] == 0:
            break
        v -= np.outer(col, v[i] / col[i])  # now v[i] = 0: every remaining vector avoids item i
        v, _ = np.linalg.qr(v)
    return np.array(items, dtype=np.intp)


def sample_l_ensemble(u: np.ndarray, ev: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Items of the L-ensemble ``L = U diag(ev) U^T`` (``ev >= 0``, ``np.inf`` allowed)."""
    ev = np.asarray(ev, dtype=np.float64)
    finite = np.isfinite(ev)
    keep_p = np.ones_like(ev)
    keep_p[finite] = ev[finite] / (ev[finite] + 1.0)
    keep = rng.random(ev.shape[0]) < keep_p
    return sample_projection_dpp(u[:, keep], rng)
