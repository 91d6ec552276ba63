"""Anytime estimation of the coded result before the arrived set is decodable.

Bartan & Pilanci, "Randomized Polar Codes for Anytime Distributed Machine Learning" (IEEE
JSAIT 2023, arXiv 2309.00682), Section IV. With the orthonormal Hadamard kernel, random block
signs and a random worker permutation, the m arrived outputs Y_S = G_{:,S}^T U are a
subsampled randomized Hadamard sketch of the data U (K blocks, P numbers each), and

    U_hat = (N / m) G_{:,S} Y_S                                   ("unbiased")

is unbiased, E[U_hat] = U, because the rows of G are orthonormal and S is a uniformly random
m-subset. Every entry of the fully polarised Hadamard transform has magnitude N^{-1/2}, so
||g_j||^2 = K / N for every column and sampling without replacement gives exactly

    E ||U_hat - U||_F^2 / ||U||_F^2 = (K - 1)(N - m) / (m (N - 1))

for any data U. The least-squares estimate (minimum-norm solution of G_{:,S}^T U = Y_S) has
lower error and is exact once G_{:,S} has full row rank K; with random signs and equal-norm
blocks its expected relative error is (K - r)/K, r = rank. The hybrid estimate keeps the blocks
SC already decoded exactly and applies the unbiased estimator to the rest, after subtracting
the decoded blocks' contribution.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from .._results import ResultRepr
from .._validate import check_choice
from ..errors import InvalidInputError
from .base import check_mask, check_outputs
from .polar import PolarCode

__all__ = ["Estimate", "anytime_estimate", "require_sketch_code", "unbiased_error"]


@dataclass(frozen=True, repr=False)
class Estimate(ResultRepr):
    """An anytime estimate of the K data blocks.

    blocks: (K, *shape) estimate.
    known: (K,) blocks that are exact (decoded), not estimated.
    predicted_rel_error: predicted E||U_hat - U||^2 / ||U||^2 (0 when exact).
    n_arrived: number of outputs used.
    method: "unbiased", "lstsq" or "hybrid".
    """

    blocks: np.ndarray
    known: np.ndarray
    predicted_rel_error: float
    n_arrived: int
    method: str

    @property
    def exact(self) -> bool:
        return bool(self.known.all())

    def summary(self) -> str:
        state = "exact" if self.exact else f"predicted rel. error {self.predicted_rel_error:.3g}"
        return (
            f"{self.method} estimate from {self.n_arrived} outputs: {state} "
            f"({int(self.known.sum())}/{len(self.known)} blocks exact)"
        )


def unbiased_error(n: int, k: int, m: int) -> float:
    """(K - 1)(N - m) / (m (N - 1)): expected relative squared error of the unbiased
    estimator from m of N outputs (0 when m = N; inf when m = 0)."""
    if m <= 0:
        return float("inf")
    if n == 1:
        return 0.0
    return (k - 1) * (n - m) / (m * (n - 1))


def require_sketch_code(code: PolarCode, method: str) -> None:
    """Raise unless ``code`` supports ``method`` (unbiased/hybrid need full Hadamard)."""
    if not isinstance(code, PolarCode):
        raise InvalidInputError("anytime estimates need a PolarCode")
    if method in ("unbiased", "hybrid") and (
        code.kernel_name != "hadamard" or code.levels != code.n.bit_length() - 1
    ):
        raise InvalidInputError(
            f"the {method} estimator needs the orthonormal, fully polarised Hadamard kernel "
            f"(got kernel={code.kernel_name!r}, levels={code.levels}); use method='lstsq'"
        )


def anytime_estimate(
    code: PolarCode,
    outputs: np.ndarray,
    mask: np.ndarray,
    method: Literal["unbiased", "lstsq", "hybrid"] = "hybrid",
) -> Estimate:
    """Estimate the data blocks from whatever arrived.

    ``outputs`` (N, *shape) in worker order (rows outside ``mask`` ignored). Costs: unbiased
    O(m K P); lstsq O(m K^2 + m K P); hybrid O(N log N P) for SC plus O(m K' P) for the K'
    blocks SC left unknown.
    """
    method = check_choice(method, "method", ("unbiased", "lstsq", "hybrid"))
    require_sketch_code(code, method)
    mask = check_mask(mask, code.n)
    y = check_outputs(outputs, code.n, mask)
    m = int(mask.sum())
    shape = y.shape[1:]
    if method == "lstsq":
        sol, known, rank = code.min_norm_solution(y, mask)
        err = 0.0 if known.all() else (code.k - rank) / code.k
        return Estimate(sol, known, err if m else float("inf"), m, "lstsq")
    if m == 0:
        zeros = np.zeros((code.k, *shape), dtype=y.dtype)
        return Estimate(zeros, np.zeros(code.k, dtype=bool), float("inf"), 0, method)
    g = code.generator[:, mask]  # (K, m)
    ys = y[mask].reshape(m, -1)
    if method == "unbiased":
        est = (code.n / m) * (g @ ys)
        return Estimate(
            est.reshape(code.k, *shape).astype(y.dtype, copy=False),
            np.zeros(code.k, dtype=bool),
            unbiased_error(code.n, code.k, m),
            m,
            "unbiased",
        )
    dec = code.decode(y, mask)
    known = dec.known
    out = dec.blocks.reshape(code.k, -1).copy()
    unknown = ~known
    k_rest = int(unknown.sum())
    if k_rest:
        resid = ys - g[known].T @ out[known]
        out[unknown] = (code.n / m) * (g[unknown] @ resid)
    # Predicted error relative to ||U||^2, assuming equal-norm blocks: the unknown blocks
    # carry a fraction k_rest / K of the energy.
    err = unbiased_error(code.n, k_rest, m) * k_rest / code.k if k_rest else 0.0
    return Estimate(out.reshape(code.k, *shape), known, err, m, "hybrid")
