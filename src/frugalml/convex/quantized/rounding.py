"""Rounding the quantized SDP relaxation to sign neurons (Gaussian sign sampling with the
arcsine correction, in the spirit of Goemans-Williamson / Grothendieck), with a certified gap.

Paper: Bartan & Pilanci, "Training Quantized Neural Networks to Global Optimality via
Semidefinite Programming" (ICML 2021, arXiv 2105.01420).
"""

from __future__ import annotations

import time
from dataclasses import replace
from typing import Any

import numpy as np

from ..._resources import check_memory
from ..._validate import RngLike, check_array, check_int, check_rng
from ...errors import InvalidInputError
from .network import QuantizedNetwork, refit_output_weights, unique_neurons
from .problem import check_quantized_data, is_even
from .sdp import QuantizedSDPSolution

__all__ = ["round_quantized", "sample_sign_neurons"]


def _unit_diagonal(M: np.ndarray) -> np.ndarray:
    s = np.sqrt(np.clip(np.diag(M), 1e-300, None))
    C = M / s[:, None] / s[None, :]
    C = np.clip(0.5 * (C + C.T), -1.0, 1.0)
    np.fill_diagonal(C, 1.0)
    return C


def _psd_factor(C: np.ndarray) -> np.ndarray:
    """``L`` with ``L L^T = C_+`` (``C`` with negative eigenvalues clipped). ``O(D^3)``."""
    w, V = np.linalg.eigh(0.5 * (C + C.T))
    return V * np.sqrt(np.clip(w, 0.0, None))[None, :]


def sample_sign_neurons(
    C: Any, n_samples: int, *, rng: RngLike = None, arcsin_correction: bool = True
) -> np.ndarray:
    """Sample sign neurons from a lifted matrix ``C`` ``(d+1, d+1)`` (PSD; rescaled to unit
    diagonal, i.e. ``C = Z / Z4``).

    Draw ``g ~ N(0, C')`` and return ``u = sign(g[:d]) sign(g[d])`` (the last coordinate of the
    lift ``[u; 1]`` fixes the global sign). By Grothendieck's identity
    ``E[sign(g_i) sign(g_j)] = (2/pi) arcsin(C'_ij)``, so sampling from ``C' = C``
    (Goemans-Williamson) shrinks the correlations. With ``arcsin_correction`` we take
    ``C' = sin(pi/2 C)`` (elementwise), projected to the PSD cone and rescaled to unit diagonal:
    when ``sin(pi/2 C)`` is PSD the sampled ``[u; 1]`` have second moment exactly ``C``, and
    otherwise as close as that projection allows. For ``C = v v^T`` of a single sign vector
    ``sin(pi/2 C) = C`` and every sample is that ``u``.

    Returns ``(n_samples, d)`` in ``{-1, +1}`` (rows, with repeats). Cost ``O(D^3 + n_samples
    D^2)``.
    """
    Ca = check_array(C, "C", ndim=2)
    if Ca.shape[0] != Ca.shape[1] or Ca.shape[0] < 2:
        raise InvalidInputError(f"C must be square of size >= 2, got shape {Ca.shape}")
    n_samples = check_int(n_samples, "n_samples", low=1)
    gen = check_rng(rng)
    C0 = _unit_diagonal(Ca)
    if arcsin_correction:
        L0 = _psd_factor(np.sin(0.5 * np.pi * C0))
        C0 = _unit_diagonal(L0 @ L0.T)
    L = _psd_factor(C0)
    g = gen.standard_normal((n_samples, L.shape[1])) @ L.T
    s = np.where(g >= 0.0, 1.0, -1.0)
    return s[:, :-1] * s[:, -1:]


def round_quantized(
    solution: QuantizedSDPSolution,
    X: Any,
    y: Any,
    *,
    n_samples: int = 2000,
    max_neurons: int | None = None,
    rng: RngLike = None,
    solver: str = "clarabel",
    solver_options: dict[str, Any] | None = None,
) -> QuantizedNetwork:
    """Round an SDP solution to a quantized network and certify it against the SDP bound.

    1. From each of ``Z`` and ``Z'`` (skipped when its ``Z4`` is ~0), ``n_samples`` sign
       neurons by :func:`sample_sign_neurons` (arcsine-corrected Gaussian signs), plus the signs
       of the leading eigenvector (the deterministic rank-one rounding); when both are ~0,
       uniform random signs. Duplicates are merged (``u ~ -u`` for an even activation).
    2. A convex refit of the output weights over all candidates
       (:func:`refit_output_weights`); with ``max_neurons=k`` the ``k`` neurons with the largest
       ``|alpha_j|`` are kept and refitted.

    ``X``, ``y``: the data the SDP was solved for. Returns a :class:`QuantizedNetwork` with
    ``lower_bound``, ``train_objective`` and ``certified_gap``. Cost: sampling
    ``O(n_samples d^2)``, one refit over at most ``min(2 n_samples + 2, 2^d)`` neurons.
    """
    if not isinstance(solution, QuantizedSDPSolution):
        raise InvalidInputError("solution must be a QuantizedSDPSolution (solve_quantized_sdp)")
    Xa, ya = check_quantized_data(X, y, solution.loss)
    if Xa.shape != (solution.n, solution.d):
        raise InvalidInputError(
            f"X has shape {Xa.shape} but the SDP was solved for ({solution.n}, {solution.d})"
        )
    n_samples = check_int(n_samples, "n_samples", low=1)
    if max_neurons is not None:
        max_neurons = check_int(max_neurons, "max_neurons", low=1)
    width = min(2 * n_samples + 2, 2 ** min(solution.d, 62))
    check_memory(
        8 * 2 * n_samples * (solution.d + 1) * 3 + 40 * solution.n * width,
        f"rounding with n_samples={n_samples} sign neurons (n = {solution.n}, d = {solution.d})",
        fix="lower n_samples (--samples)",
    )
    gen = check_rng(rng)
    t0 = time.perf_counter()
    d = solution.d
    act = solution.activation
    scale = max(solution.Z[d, d] + solution.Zp[d, d], 1e-300)
    blocks = []
    for M in (solution.Z, solution.Zp):
        if M[d, d] <= 1e-9 * scale or M[d, d] <= 1e-12:
            continue
        blocks.append(sample_sign_neurons(M, n_samples, rng=gen))
        V = np.linalg.eigh(M)[1]
        v = np.where(V[:, -1] >= 0, 1.0, -1.0)
        blocks.append((v[:d] * v[d])[None, :])
    if not blocks:
        blocks.append(np.where(gen.standard_normal((n_samples, d)) >= 0, 1.0, -1.0))
    cand = unique_neurons(np.vstack(blocks).T, is_even(act))
    common = dict(
        activation=act,
        beta=solution.beta,
        loss=solution.loss,
        solver=solver,
        solver_options=solver_options,
    )
    net = refit_output_weights(Xa, ya, cand, **common)
    if max_neurons is not None and net.width > max_neurons:
        top = np.argsort(-np.abs(net.alpha), kind="stable")[:max_neurons]
        net = refit_output_weights(Xa, ya, net.U[:, top], **common)
    return replace(
        net,
        lower_bound=solution.lower_bound,
        n_candidates=int(cand.shape[1]),
        seconds=time.perf_counter() - t0,
    )
