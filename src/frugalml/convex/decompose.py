"""Neural decomposition: from the lifted SDP solution back to a two-layer network.

Reference: B. Bartan and M. Pilanci, "Neural Spectrahedra and Semidefinite Lifts: Global Convex
Optimization of Polynomial Activation Neural Networks in Fully Polynomial-Time",
arXiv:2101.02429 (2021), whose neural decomposition uses the matrix rank-one decomposition of
J. F. Sturm and S. Zhang, "On cones of nonnegative quadratic functions", Math. Oper. Res. 28
(2003).

**Rank-one decomposition** (:func:`rank_one_decomposition`). Let ``G = diag(I_d, -1)``. A PSD
``Z`` ((d+1) x (d+1)) with ``tr(G Z) = tr(Z1) - Z4 = 0`` is written as ``Z = sum_j w_j w_j^T``
with ``w_j^T G w_j = 0``, i.e. ``w_j = [v_j; s_j]``, ``||v_j|| = |s_j|``. Start from
``Z = sum_i p_i p_i^T``, ``p_i = sqrt(lambda_i) q_i`` (eigenvalues below ``tol * lambda_max``
dropped, so at most ``rank(Z) <= d+1`` vectors). While two vectors have
``g_i = p_i^T G p_i > 0 > g_j``, take the root ``t`` of
``(p_i + t p_j)^T G (p_i + t p_j) = g_i + 2 t p_i^T G p_j + t^2 g_j = 0`` (real, of either
sign since ``g_i g_j < 0``), output ``w = (p_i + t p_j)/sqrt(1 + t^2)`` and replace the pair by
``(p_j - t p_i)/sqrt(1 + t^2)``: ``w w^T + p' p'^T = p_i p_i^T + p_j p_j^T`` and
``p'^T G p' = g_i + g_j`` (the total ``tr(G Z) = 0`` is kept). Vectors with ``g = 0`` are
output as they are; when one vector remains its ``g`` equals ``tr(G Z) = 0``. Cost: one
symmetric eigendecomposition ``O(d^3)`` plus ``O(d^2)`` for at most ``d`` rotations.

**Network** (conventions of :mod:`frugalml.convex.poly_sdp`). ``w w^T = s^2 [u; 1][u; 1]^T``
with ``u = v / s`` (unit norm), and ``a x^T (s^2 u u^T) x + b x^T (s^2 u) + c s^2 =
s^2 sigma(x^T u)``; so a vector of ``Z_k`` gives the neuron ``u`` with output weight
``alpha_{j,k} = +s^2`` and a vector of ``Z'_k`` one with ``alpha_{j,k} = -s^2``. The sum of
``|alpha|`` is ``sum_k (Z4_k + Z4'_k)``, the network's predictions are the SDP's, hence its
non-convex objective equals the SDP optimum (up to the solver's accuracy), with at most
``2 (d+1)`` neurons per output. For numerically imperfect input (``||v|| != |s|`` by the
solver's residual) ``u = sign(s) v / ||v||`` is used, so that ``U`` has unit columns exactly.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from .._results import ResultRepr
from .._validate import check_array, check_choice, check_positive_float
from ..errors import InvalidInputError, SolverFailedError
from ._checks import check_data
from ._cvxpy import import_cvxpy, solver_kwargs
from ._torch import torch_device
from .activation import Polynomial
from .lift import patches
from .losses import LOSSES, cvx_loss, loss_value
from .poly_sdp import SOLVERS, PolySDPSolution

__all__ = ["PolyNetwork", "decompose", "rank_one_decomposition"]


def rank_one_decomposition(Z: Any, *, tol: float = 1e-9) -> np.ndarray:
    """Sturm–Zhang decomposition of a PSD ``Z`` (D, D) with ``tr(Z[:-1, :-1]) = Z[-1, -1]``.

    Returns W (D, r), ``r <= rank(Z)``, with ``Z ~= W W^T`` and every column ``w = [v; s]``
    satisfying ``||v||^2 = s^2`` (up to rounding and ``tr(G Z)``'s residual). Eigenvalues below
    ``tol * lambda_max`` (and negative ones, from solver round-off) are dropped. ``O(D^3)``.
    """
    Z = check_array(Z, "Z", ndim=2)
    if Z.shape[0] != Z.shape[1] or Z.shape[0] < 2:
        raise InvalidInputError(f"Z must be square of size >= 2, got shape {Z.shape}")
    tol = check_positive_float(tol, "tol")
    D = Z.shape[0]
    lam, Q = np.linalg.eigh(0.5 * (Z + Z.T))
    lam_max = float(lam[-1]) if lam.size else 0.0
    if not lam_max > 0.0:
        return np.zeros((D, 0))
    keep = lam > tol * lam_max
    P = Q[:, keep] * np.sqrt(lam[keep])
    remaining = [P[:, i].copy() for i in range(P.shape[1])]

    def gform(p: np.ndarray) -> float:
        return float(p[:-1] @ p[:-1] - p[-1] * p[-1])

    g = [gform(p) for p in remaining]
    out: list[np.ndarray] = []
    while len(remaining) > 1:
        i = int(np.argmax(g))
        j = int(np.argmin(g))
        gi, gj = g[i], g[j]
        if not (gi > 0.0 > gj):
            break  # all of one sign (or zero): only rounding-level residuals are left
        pi, pj = remaining[i], remaining[j]
        gij = float(pi[:-1] @ pj[:-1] - pi[-1] * pj[-1])
        # g_j t^2 + 2 g_ij t + g_i = 0, discriminant > 0 because g_i g_j < 0
        q = -(gij + math.copysign(math.sqrt(gij * gij - gi * gj), gij))
        t = gi / q
        norm = math.sqrt(1.0 + t * t)
        out.append((pi + t * pj) / norm)
        new = (pj - t * pi) / norm
        remaining[j] = new
        g[j] = gform(new)
        del remaining[i]
        del g[i]
    out.extend(remaining)
    if not out:
        return np.zeros((D, 0))
    return np.stack(out, axis=1)


@dataclass(frozen=True, repr=False)
class PolyNetwork(ResultRepr):
    """A two-layer polynomial-activation network ``f(x) = sum_j sigma(x^T u_j) alpha_j``.

    U: (d, m) unit-norm columns ``u_j`` ((f, m) filters for the convolutional network
    ``f(x) = sum_j alpha_j (1/P) sum_p sigma(x_p^T u_j)``, when ``filter_size`` is set).
    alpha: (m,) or (m, k) output weights. residual: the largest violation
    ``| ||v_j||^2 - s_j^2 |`` met in the decomposition, relative to ``tr(Z)`` of its matrix
    (rounding level for an exact input; the solver's residual in ``tr(Z1) = Z4`` otherwise).
    """

    U: np.ndarray
    alpha: np.ndarray
    activation: Polynomial
    filter_size: int | None = None
    stride: int | None = None
    residual: float = 0.0

    def __post_init__(self) -> None:
        U = check_array(self.U, "U", ndim=2, min_size=0)
        alpha = check_array(self.alpha, "alpha", ndim=(1, 2), min_size=0)
        if alpha.shape[0] != U.shape[1]:
            raise InvalidInputError(
                f"alpha must have one row per column of U ({U.shape[1]}), got shape {alpha.shape}"
            )
        if not isinstance(self.activation, Polynomial):
            raise InvalidInputError(
                f"activation must be a Polynomial, got {type(self.activation).__name__}"
            )
        if self.filter_size is not None and U.shape[0] != self.filter_size:
            raise InvalidInputError(
                f"U must have filter_size = {self.filter_size} rows, got {U.shape[0]}"
            )
        object.__setattr__(self, "U", U)
        object.__setattr__(self, "alpha", alpha)

    @property
    def width(self) -> int:
        return int(self.U.shape[1])

    def hidden(self, X: Any) -> np.ndarray:
        """Hidden activations H (n, m): ``sigma(X U)`` (pooled patch averages for conv).
        ``O(n P f m)``."""
        X = check_array(X, "X", ndim=2)
        if self.filter_size is None:
            if X.shape[1] != self.U.shape[0]:
                raise InvalidInputError(f"X must have {self.U.shape[0]} columns, got {X.shape[1]}")
            return self.activation(X @ self.U)
        if X.shape[1] < self.filter_size:
            raise InvalidInputError(
                f"X has {X.shape[1]} columns, fewer than the filter size {self.filter_size}"
            )
        return self.activation(patches(X, self.filter_size, self.stride or 1) @ self.U).mean(axis=1)

    def predict(self, X: Any) -> np.ndarray:
        """Outputs (n,) or (n, k). ``O(n P f m + n m k)``."""
        return self.hidden(X) @ self.alpha

    def objective(
        self,
        X: Any,
        y: Any,
        *,
        loss: str = "squared",
        beta: float,
        huber_delta: float = 1.0,
    ) -> float:
        """The non-convex training objective ``loss(f(X), y) + beta sum_j ||alpha_j||_1``."""
        check_choice(loss, "loss", LOSSES)
        beta = check_positive_float(beta, "beta")
        huber_delta = check_positive_float(huber_delta, "huber_delta")
        X, y = check_data(X, y, loss)
        yhat = self.predict(X)
        if yhat.shape != y.shape:
            raise InvalidInputError(f"y must have shape {yhat.shape}, got {y.shape}")
        return loss_value(yhat, y, loss, huber_delta) + beta * float(np.sum(np.abs(self.alpha)))

    def to_torch(self, dtype: Any = None, device: Any = "cpu") -> Any:
        """A ``torch.nn.Module`` computing :meth:`predict` (parameters ``U``, ``alpha``;
        default dtype float64) on ``device`` (``"cpu"`` default, ``"cuda"``). Input (n, d)
        tensor, output (n,) or (n, k)."""
        from .._optional import require

        torch = require("torch", what="PolyNetwork.to_torch", extra="torch")
        dev = torch_device(torch, device)
        cls = _torch_module_class(torch)
        return cls(self, torch.float64 if dtype is None else dtype).to(dev)

    def summary(self) -> str:
        k = 1 if self.alpha.ndim == 1 else self.alpha.shape[1]
        kind = "dense" if self.filter_size is None else f"conv f={self.filter_size}"
        return (
            f"polynomial network ({kind}, {self.activation.summary()}): {self.width} neurons, "
            f"{k} output(s), sum|alpha| = {float(np.sum(np.abs(self.alpha))):.6g}, "
            f"decomposition residual {self.residual:.2g}"
        )


_TORCH_CLASS: dict[str, Any] = {}


def _torch_module_class(torch: Any) -> Any:
    if "cls" in _TORCH_CLASS:
        return _TORCH_CLASS["cls"]

    class PolyNetworkModule(torch.nn.Module):
        """Two-layer polynomial-activation network (dense or 1-D convolutional)."""

        def __init__(self, net: PolyNetwork, dtype: Any):
            super().__init__()
            self.U = torch.nn.Parameter(torch.as_tensor(net.U, dtype=dtype).clone())
            self.alpha = torch.nn.Parameter(torch.as_tensor(net.alpha, dtype=dtype).clone())
            self.a, self.b, self.c = net.activation.a, net.activation.b, net.activation.c
            self.filter_size = net.filter_size
            self.stride = net.stride or 1

        def forward(self, x: Any) -> Any:
            if self.filter_size is None:
                pre = x @ self.U
                return ((self.a * pre + self.b) * pre + self.c) @ self.alpha
            pre = x.unfold(1, self.filter_size, self.stride) @ self.U  # (n, P, m)
            return ((self.a * pre + self.b) * pre + self.c).mean(dim=1) @ self.alpha

    _TORCH_CLASS["cls"] = PolyNetworkModule
    return PolyNetworkModule


def _neurons(W: np.ndarray, sign: float) -> tuple[list[np.ndarray], list[float], float]:
    units, weights, residual = [], [], 0.0
    scale = float(np.sum(W * W))
    for w in W.T:
        v, s = w[:-1], float(w[-1])
        nv = float(np.linalg.norm(v))
        if s == 0.0 or nv == 0.0:
            continue
        residual = max(residual, abs(nv * nv - s * s) / scale)
        units.append(math.copysign(1.0, s) * v / nv)
        weights.append(sign * s * s)
    return units, weights, residual


def decompose(
    solution: PolySDPSolution,
    *,
    tol: float = 1e-9,
    polish: bool = False,
    solver: str | None = None,
) -> PolyNetwork:
    """The network of an SDP solution: at most ``2 (d+1)`` neurons per output (module doc).

    ``tol``: relative eigenvalue cut-off of :func:`rank_one_decomposition`. ``polish=True``
    re-fits the output weights over the recovered neurons by the convex problem
    ``min loss(H alpha, y) + beta sum |alpha|``, ``H = sigma(X U)`` (CVXPY, ``solver`` or the
    solution's), which can only lower the objective and usually zeroes some neurons (those
    with ``max_k |alpha_jk| <= tol max |alpha|`` are dropped). Neurons of different outputs
    are kept apart: without polishing ``alpha`` (m, k) has one non-zero per row.
    """
    if not isinstance(solution, PolySDPSolution):
        raise InvalidInputError(f"decompose needs a PolySDPSolution, got {type(solution).__name__}")
    tol = check_positive_float(tol, "tol")
    k = solution.n_outputs
    units: list[np.ndarray] = []
    cols: list[int] = []
    weights: list[float] = []
    residual = 0.0
    for col in range(k):
        for M, sign in ((solution.Z[col], 1.0), (solution.Zp[col], -1.0)):
            u, w, r = _neurons(rank_one_decomposition(M, tol=tol), sign)
            units += u
            weights += w
            cols += [col] * len(u)
            residual = max(residual, r)
    d = solution.input_dim
    m = len(units)
    U = np.stack(units, axis=1) if m else np.zeros((d, 0))
    alpha = np.zeros((m, k))
    alpha[np.arange(m), cols] = weights
    net = PolyNetwork(
        U=U,
        alpha=alpha if solution.vector_output else alpha[:, 0],
        activation=solution.activation,
        filter_size=solution.filter_size,
        stride=solution.stride,
        residual=residual,
    )
    if polish and m:
        net = _polish(net, solution, tol, solver or solution.solver)
    return net


def _polish(net: PolyNetwork, solution: PolySDPSolution, tol: float, solver: str) -> PolyNetwork:
    check_choice(solver, "solver", SOLVERS)
    cp = import_cvxpy()
    H = net.hidden(solution.X)
    y2 = solution.y if solution.y.ndim == 2 else solution.y[:, None]
    A = cp.Variable((net.width, y2.shape[1]))
    terms = [
        cvx_loss(cp, H @ A[:, col], y2[:, col], solution.loss, solution.huber_delta)
        for col in range(y2.shape[1])
    ]
    problem = cp.Problem(cp.Minimize(cp.sum(terms) + solution.beta * cp.sum(cp.abs(A))))
    try:
        problem.solve(**solver_kwargs(cp, solver, None, None))
    except cp.error.SolverError as exc:
        raise SolverFailedError(
            f"polishing failed ({exc}); use polish=False", status="solver_error"
        ) from exc
    if A.value is None or problem.status not in ("optimal", "optimal_inaccurate"):
        raise SolverFailedError(
            f"polishing stopped with status {problem.status!r}; use polish=False",
            status=str(problem.status),
        )
    alpha = np.asarray(A.value, dtype=float)
    big = np.max(np.abs(alpha), axis=1)
    keep = big > tol * max(float(big.max()), 1e-300)
    return PolyNetwork(
        U=net.U[:, keep],
        alpha=alpha[keep] if solution.vector_output else alpha[keep, 0],
        activation=net.activation,
        filter_size=net.filter_size,
        stride=net.stride,
        residual=net.residual,
    )
