"""Conditional gradient with a certified gap: trust-region oracle, certificate, agreement."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("torch")

from frugalml.convex.conditional_gradient import trust_region_sphere
from frugalml.convex.first_order import first_order_sdp
from frugalml.errors import InvalidInputError

from ._planted import planted_data


def _sphere_min_bruteforce(Q, g, n=200000, seed=0):
    """Minimum of u^T Q u + g^T u over many sphere points, polished by projected descent."""
    gen = np.random.default_rng(seed)
    U = gen.standard_normal((n, Q.shape[0]))
    U /= np.linalg.norm(U, axis=1, keepdims=True)
    vals = np.einsum("ij,jk,ik->i", U, Q, U) + U @ g
    u = U[np.argmin(vals)]
    for _ in range(20000):  # Riemannian gradient descent from the best sample
        grad = 2 * Q @ u + g
        grad -= (grad @ u) * u
        u = u - 1e-2 * grad
        u /= np.linalg.norm(u)
    return float(u @ Q @ u + g @ u)


@pytest.mark.parametrize("seed", range(6))
def test_trust_region_matches_bruteforce(seed):
    gen = np.random.default_rng(seed)
    d = 4
    A = gen.standard_normal((d, d))
    Q = A + A.T
    g = gen.standard_normal(d) * (0.1 if seed % 2 else 3.0)
    w, V = np.linalg.eigh(Q)
    z, val = trust_region_sphere(w, V.T @ g)
    u = V @ z
    assert np.linalg.norm(u) == pytest.approx(1.0, abs=1e-12)
    assert u @ Q @ u + g @ u == pytest.approx(val, abs=1e-10)
    assert val <= _sphere_min_bruteforce(Q, g, seed=seed) + 1e-9


def test_trust_region_hard_case():
    # g orthogonal to the lowest eigenvector and small: mu = w_0, the "hard case"
    w = np.array([-2.0, 1.0, 3.0])
    gh = np.array([0.0, 0.5, -0.4])
    z, val = trust_region_sphere(w, gh)
    assert np.linalg.norm(z) == pytest.approx(1.0, abs=1e-12)
    Q = np.diag(w)
    assert val <= _sphere_min_bruteforce(Q, gh) + 1e-9
    # g = 0: the smallest eigenvalue
    z0, v0 = trust_region_sphere(w, np.zeros(3))
    assert v0 == pytest.approx(-2.0)
    assert abs(z0[0]) == pytest.approx(1.0)


@pytest.mark.parametrize("loss", ["squared", "huber", "logistic"])
def test_certified_gap_brackets_interior_point_optimum(loss):
    pytest.importorskip("cvxpy")
    from frugalml.convex import Polynomial, solve_poly_sdp

    X, y = planted_data(150, 6, 11, classify=loss == "logistic")
    act = Polynomial.fit_relu()
    ref = solve_poly_sdp(X, y, activation=act, beta=0.1, loss=loss, solver="clarabel")
    for tol in (1e-3, 1e-6):
        res = first_order_sdp(X, y, a=act.a, b=act.b, c=act.c, beta=0.1, loss=loss, tol=tol)
        assert res.method == "cg" and res.converged and res.gap <= tol
        # the certificate: f - f* <= gap * f (Clarabel's optimum is itself accurate to ~1e-7)
        assert res.objective - ref.objective <= res.gap * res.objective + 1e-6 * ref.objective
        assert res.objective >= ref.objective * (1 - 1e-6)
    assert res.objective == pytest.approx(ref.objective, rel=2e-6)


def test_cg_matrices_are_exactly_feasible_and_match_alm():
    X, y = planted_data(100, 5, 12)
    cg = first_order_sdp(X, y, a=1.0, b=0.3, c=0.05, beta=0.1, tol=1e-8)
    alm = first_order_sdp(X, y, a=1.0, b=0.3, c=0.05, beta=0.1, tol=1e-8, method="alm")
    assert cg.objective == pytest.approx(alm.objective, rel=1e-6)
    for Z in (cg.Z[0], cg.Zp[0]):
        assert np.linalg.eigvalsh(Z).min() >= -1e-12
        assert np.trace(Z[:-1, :-1]) == pytest.approx(Z[-1, -1], rel=1e-12, abs=1e-14)
    assert "certified relative gap" in cg.summary()


def test_time_limit_and_bad_method():
    X, y = planted_data(200, 8, 13)
    res = first_order_sdp(X, y, a=1.0, b=0.0, c=0.0, beta=0.01, tol=1e-12, time_limit=1e-6)
    assert not res.converged and res.gap > 1e-12
    with pytest.raises(InvalidInputError, match="method"):
        first_order_sdp(X, y, a=1.0, b=0.0, c=0.0, beta=0.1, method="newton")
    with pytest.raises(InvalidInputError, match="time_limit"):
        first_order_sdp(X, y, a=1.0, b=0.0, c=0.0, beta=0.1, time_limit=0.0)
