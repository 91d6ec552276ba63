"""The semidefinite lift of a two-layer polynomial network: lifted moments, the feature matrix
whose rows give the network's predictions, and the size limits of the lifted SDP.

Reference: B. Bartan and M. Pilanci, "Neural Spectrahedra and Semidefinite Lifts: Global Convex
Optimization of Polynomial Activation Neural Networks in Fully Polynomial-Time",
arXiv:2101.02429 (2021).

The lifted second moment of a sample is ``S_i = [x_i; 1][x_i; 1]^T`` (``D x D``, ``D = d + 1``)
or, for the convolutional network with patches ``x_p`` (window ``f``, ``stride``), the patch
average ``(1/P) sum_p [x_p; 1][x_p; 1]^T`` (``D = f + 1``). With the activation's coefficient
mask ``C = [[a 11^T, (b/2) 1], [(b/2) 1^T, c]]`` the prediction of the lifted variables is
``y_hat_i = <C o S_i, Z - Z'>``, i.e. ``y_hat = F vec(Z - Z')`` with the ``(n, D^2)`` feature
matrix ``F`` of the rows ``vec(C o S_i)`` (:func:`lifted_features`).
"""

from __future__ import annotations

import numpy as np

from .._resources import check_memory
from ..errors import InvalidInputError
from .activation import Polynomial

__all__ = [
    "MAX_VARIABLES",
    "check_lift_size",
    "check_sdp_memory",
    "coefficient_mask",
    "lifted_features",
    "lifted_moments",
    "patches",
    "sdp_nbytes",
]

#: above ``2 k (d+1)^2`` matrix entries the solver is refused with a suggestion
MAX_VARIABLES = {"clarabel": 200_000, "scs": 2_000_000}


def patches(X: np.ndarray, filter_size: int, stride: int) -> np.ndarray:
    """The patches ``x_p = x[p s : p s + f]`` of each row: (n, P, f), ``P = (d-f)//s + 1``.

    A strided view (no copy).
    """
    view = np.lib.stride_tricks.sliding_window_view(X, filter_size, axis=1)
    return view[:, ::stride, :]


def lifted_moments(
    X: np.ndarray,
    filter_size: int | None = None,
    stride: int | None = None,
    *,
    expected: int | None = None,
) -> np.ndarray:
    """Lifted second moments ``S_i`` (n, D, D): ``[x_i; 1][x_i; 1]^T`` (dense) or the patch
    average ``(1/P) sum_p [x_p; 1][x_p; 1]^T`` (convolutional). ``O(n P D^2)``.

    ``expected``: the required ``D - 1`` (the solution's input dimension) for a clear error.
    """
    n = X.shape[0]
    if filter_size is None:
        if expected is not None and X.shape[1] != expected:
            raise InvalidInputError(f"X must have {expected} columns, got {X.shape[1]}")
        lifted = np.concatenate([X, np.ones((n, 1))], axis=1)
        return lifted[:, :, None] * lifted[:, None, :]
    if X.shape[1] < filter_size:
        raise InvalidInputError(
            f"X has {X.shape[1]} columns, fewer than the filter size {filter_size}"
        )
    P = patches(X, filter_size, stride or 1)
    n_p = P.shape[1]
    D = filter_size + 1
    S = np.empty((n, D, D))
    S[:, :-1, :-1] = np.einsum("npi,npj->nij", P, P) / n_p
    mean = P.mean(axis=1)
    S[:, :-1, -1] = mean
    S[:, -1, :-1] = mean
    S[:, -1, -1] = 1.0
    return S


def coefficient_mask(activation: Polynomial, D: int) -> np.ndarray:
    """``C`` (D, D) ``= [[a 11^T, (b/2) 1], [(b/2) 1^T, c]]``."""
    C = np.full((D, D), activation.a)
    C[:-1, -1] = C[-1, :-1] = activation.b / 2.0
    C[-1, -1] = activation.c
    return C


def lifted_features(moments: np.ndarray, activation: Polynomial) -> np.ndarray:
    """(n, D^2) rows ``vec(C o S_i)`` of the moments (n, D, D): ``y_hat = F @ vec(Z - Z')``.
    ``O(n D^2)``."""
    n, D, _ = moments.shape
    return (moments * coefficient_mask(activation, D)).reshape(n, D * D)


def sdp_nbytes(n: int, D: int, k: int, solver: str) -> int:
    """Estimated peak bytes of building and solving the lifted SDP with CVXPY: the
    ``(n, D^2)`` features and CVXPY's canonical copies (about ``40 n D^2`` per output) and,
    for Clarabel, the dense KKT blocks of the two PSD cones (``T = D (D+1) / 2`` entries each;
    measured about ``128 T^2`` bytes per output, 442 MiB at d = 60)."""
    tri = D * (D + 1) // 2
    base = 40 * n * D * D * k
    if solver == "clarabel":
        return base + 128 * k * tri * tri
    return base + 64 * k * D * D


def check_sdp_memory(n: int, D: int, k: int, solver: str, what: str) -> None:
    """Refuse (:class:`~frugalml.errors.TooLargeError`) a lifted SDP that would not fit in
    memory, before building it."""
    check_memory(
        sdp_nbytes(n, D, k, solver),
        f"the lifted SDP ({what} = {D - 1}, n = {n}, {k} output(s), solver {solver!r})",
        fix=f"reduce {what} (e.g. a PCA or sketch of X), use fewer samples, or use "
        "solver='scs' / 'first-order' (--solver)",
    )


def check_lift_size(D: int, k: int, solver: str, what: str, n: int = 1) -> None:
    """Refuse a lift of ``2 k D^2`` matrix entries above :data:`MAX_VARIABLES` for ``solver``
    (:class:`~frugalml.errors.InvalidInputError`, with a suggestion) or one that would not fit
    in memory (:func:`check_sdp_memory`). ``what`` names the dimension (``"d"``,
    ``"filter_size"``). The first-order solver is not limited here."""
    if solver == "first-order":
        return
    n_vars = 2 * k * D * D
    limit = MAX_VARIABLES[solver]
    if n_vars > limit:
        alt = " or solver='scs' (first-order splitting, less accurate)" if solver != "scs" else ""
        raise InvalidInputError(
            f"{what} = {D - 1} is too large for solver={solver!r}: the lift has "
            f"2 k ({what}+1)^2 = {n_vars} matrix entries (limit {limit}); use "
            f"solver='first-order'{alt}, or reduce the dimension (e.g. a sketch or PCA of X)"
        )
    check_sdp_memory(n, D, k, solver, what)
