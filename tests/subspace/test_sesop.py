"""SESOP against independent references: conjugate-gradient iterates on quadratics (hand-written
CG below), scipy's minimiser on a non-quadratic function, and the bad-input errors."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.optimize

from frugalml.errors import FrugalError, InvalidInputError
from frugalml.subspace import NonFiniteError, sesop_minimize


def spd(n, cond, seed):
    gen = np.random.default_rng(seed)
    q = np.linalg.qr(gen.standard_normal((n, n)))[0]
    return (q * np.geomspace(1.0, cond, n)) @ q.T, gen.standard_normal(n)


def cg_iterates(A, b, x0, k):
    """Textbook conjugate gradients for A x = b; returns x_0 .. x_k."""
    x = x0.copy()
    r = b - A @ x
    p = r.copy()
    out = [x.copy()]
    for _ in range(k):
        ap = A @ p
        a = (r @ r) / (p @ ap)
        x = x + a * p
        r_new = r - a * ap
        p = r_new + (r_new @ r_new) / (r @ r) * p
        r = r_new
        out.append(x.copy())
    return out


@pytest.mark.parametrize(
    ("memory", "directions"),
    [(1, ("gradient", "steps")), (1, ("gradient", "steps", "nemirovski")),
     (3, ("gradient", "steps", "nemirovski"))],
)  # fmt: skip
def test_matches_conjugate_gradients_on_quadratic(memory, directions):
    A, b = spd(40, 50.0, 1)
    x0 = np.random.default_rng(2).standard_normal(40)
    k = 15
    ref = cg_iterates(A, b, x0, k)
    got = []
    sesop_minimize(
        lambda x: 0.5 * x @ A @ x - b @ x, lambda x: A @ x - b, x0, memory=memory,
        directions=directions, hvp=lambda x, v: A @ v, max_iter=k,
        tol=1e-300, callback=lambda it, x: got.append(x),
    )  # fmt: skip
    assert len(got) == k + 1
    scale = np.linalg.norm(ref[0] - np.linalg.solve(A, b))
    for it, (a, c) in enumerate(zip(got, ref, strict=True)):
        assert np.linalg.norm(a - c) <= 1e-7 * scale, it


def test_gradient_only_is_steepest_descent_with_exact_line_search():
    A, b = spd(20, 10.0, 3)
    x = np.zeros(20)
    got = []
    sesop_minimize(lambda z: 0.5 * z @ A @ z - b @ z, lambda z: A @ z - b, x,
                   directions=("gradient",), hvp=lambda z, v: A @ v, max_iter=5, tol=1e-300,
                   callback=lambda it, z: got.append(z))  # fmt: skip
    for k in range(5):
        g = A @ x - b
        x = x - (g @ g) / (g @ A @ g) * g
        assert np.allclose(got[k + 1], x, atol=1e-10)


@pytest.mark.parametrize("inner", ["newton", "bfgs"])
def test_rosenbrock_converges_to_the_known_minimum(inner):
    res = sesop_minimize(scipy.optimize.rosen, scipy.optimize.rosen_der, np.full(6, -1.2),
                         memory=3, inner=inner, tol=1e-8, max_iter=2000)  # fmt: skip
    assert res.converged, res.summary()
    assert np.allclose(res.x, np.ones(6), atol=1e-6)
    assert res.grad_norm <= 1e-8
    assert res.history["grad_evals"][-1] == res.grad_evals


def test_finite_difference_hessian_matches_exact_hvp_on_quadratic():
    A, b = spd(30, 100.0, 4)
    f = lambda x: 0.5 * x @ A @ x - b @ x  # noqa: E731
    g = lambda x: A @ x - b  # noqa: E731
    fd = sesop_minimize(f, g, np.zeros(30), memory=2, tol=1e-9, max_iter=500)
    assert fd.converged
    assert np.allclose(fd.x, np.linalg.solve(A, b), atol=1e-8)


def test_bad_input():
    f = lambda x: float(x @ x)  # noqa: E731
    g = lambda x: 2 * x  # noqa: E731
    with pytest.raises(InvalidInputError, match="memory"):
        sesop_minimize(f, g, np.ones(3), memory=0)
    with pytest.raises(InvalidInputError, match="inner"):
        sesop_minimize(f, g, np.ones(3), inner="lbfgs")
    with pytest.raises(InvalidInputError, match="direction"):
        sesop_minimize(f, g, np.ones(3), directions=("gradient", "momentum"))
    with pytest.raises(InvalidInputError, match="gradient"):
        sesop_minimize(f, g, np.ones(3), directions=("steps",))
    with pytest.raises(InvalidInputError, match="x0"):
        sesop_minimize(f, g, np.ones((3, 2)))
    with pytest.raises(InvalidInputError, match="shape"):
        sesop_minimize(f, lambda x: np.ones(4), np.ones(3))


def test_non_finite_gradient_raises_with_last_good_iterate():
    def grad(x):
        return 2 * x if x[0] > 0.5 else np.full_like(x, np.nan)

    with pytest.raises(NonFiniteError) as info:
        sesop_minimize(lambda x: float(x @ x), grad, np.ones(3), tol=1e-12)
    err = info.value
    assert isinstance(err, FrugalError)
    assert err.x is not None and np.isfinite(err.x).all() and err.x[0] > 0.5
    assert "last finite iterate" in str(err)


def test_sesop_reports_progress():
    calls = []
    sesop_minimize(lambda x: float(x @ x + np.sum(x**4)), lambda x: 2 * x + 4 * x**3,
                   np.ones(6), progress=lambda m, f: calls.append((m, f)))  # fmt: skip
    assert calls and calls[0][0].startswith("sesop: grad norm") and calls[0][1] == 0.0
    assert all(0.0 <= f <= 1.0 for _, f in calls)
