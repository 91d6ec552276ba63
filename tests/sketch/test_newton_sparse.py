"""Newton sketch on sparse input, the Woodbury (dual) solve and the sampled worker path.

References: dense input of the same matrix, the primal solve by ``numpy.linalg.solve``,
brute-force traces and determinants, and scipy's L-BFGS-B at high accuracy."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.optimize
import scipy.sparse as sp
import scipy.special

from frugalml.errors import InvalidInputError
from frugalml.runtime import make_executor
from frugalml.sketch.factory import make_sketch
from frugalml.sketch.newton import (
    distributed_newton,
    hessian_sqrt,
    newton_sampled_task,
    newton_task,
)
from frugalml.sketch.sketched_hessian import SketchedHessian


def _bow(n: int, d: int, per_row: int, seed: int) -> tuple[sp.csr_matrix, np.ndarray]:
    """A small bag-of-words matrix (Zipf word frequencies) and logistic labels."""
    gen = np.random.default_rng(seed)
    p = 1.0 / np.arange(1, d + 1)
    words = gen.choice(d, size=(n, per_row), p=p / p.sum())
    a = sp.csr_matrix((np.ones(n * per_row), (np.repeat(np.arange(n), per_row),
                       words.ravel())), shape=(n, d))  # fmt: skip
    a.data = np.log1p(a.data)
    w = gen.standard_normal(d)
    y = np.where(gen.random(n) < scipy.special.expit(a @ w), 1.0, -1.0)
    return a, y


@pytest.mark.parametrize("shape", [(40, 12), (7, 30)])  # primal (m >= d) and dual (m < d)
@pytest.mark.parametrize("sparse", [False, True])
def test_woodbury_equals_primal_solve(shape, sparse):
    gen = np.random.default_rng(3)
    r = gen.standard_normal(shape) * (gen.random(shape) < 0.5)
    g = gen.standard_normal(shape[1])
    lam = 0.7
    h = r.T @ r + lam * np.eye(shape[1])
    ref = np.linalg.solve(h, g)
    operand = sp.csr_matrix(r) if sparse else r
    for form in ("primal", "dual"):
        fac = SketchedHessian(operand, lam, form=form)
        np.testing.assert_allclose(fac.solve(g), ref, rtol=1e-10, atol=1e-12)
        assert fac.logdet == pytest.approx(np.linalg.slogdet(h)[1], rel=1e-10)
        ev = np.linalg.eigvalsh(r.T @ r)
        assert fac.effective_dimension() == pytest.approx(np.sum(ev / (ev + lam)), rel=1e-10)
    assert SketchedHessian(operand, lam).form == ("dual" if shape[0] < shape[1] else "primal")


def test_hutchinson_effective_dimension_within_its_error():
    gen = np.random.default_rng(5)
    r = gen.standard_normal((900, 600)) * np.logspace(0, -2, 600)
    lam = 0.5
    ev = np.linalg.eigvalsh(r.T @ r)
    exact = float(np.sum(ev / (ev + lam)))
    est = SketchedHessian(r, lam).effective_dimension(probes=64, rng=1)  # 600 > exact limit
    # Hutchinson: standard error <= sqrt(2 (d - d_lam) / probes); 5 standard errors
    assert abs(est - exact) <= 5 * np.sqrt(2 * (600 - exact) / 64)


def test_dual_needs_lam_and_singular_primal_is_refused():
    r = np.ones((3, 5))
    with pytest.raises(InvalidInputError, match="lam > 0"):
        SketchedHessian(r, 0.0, form="dual")
    with pytest.raises(InvalidInputError, match=r"positive definite|singular"):
        SketchedHessian(r, 0.0)


def test_sparse_hessian_sqrt_equals_dense():
    a, _ = _bow(50, 20, 6, 1)
    x = np.random.default_rng(2).standard_normal(20)
    np.testing.assert_allclose(hessian_sqrt(a, x, "logistic").toarray(),
                               hessian_sqrt(a.toarray(), x, "logistic"), rtol=1e-13)  # fmt: skip


@pytest.mark.parametrize("m", [60, 12])  # m >= d (primal) and m < d (Woodbury)
def test_sampled_worker_equals_the_explicit_sketch(m):
    """The worker that forms S B from the sampled rows only gives the direction of the
    explicit S applied to B (n, d), for dense and sparse A."""
    a, _ = _bow(300, 25, 5, 4)
    gen = np.random.default_rng(6)
    x, g = 0.1 * gen.standard_normal(25), gen.standard_normal(25)
    sk = make_sketch("uniform", m)
    ref = newton_task(hessian_sqrt(a.toarray(), x, "logistic"), g, sk, 9, 0.3, 0.8)
    for operand in (a, a.toarray()):
        got = newton_sampled_task(operand, x, "logistic", g, sk, 9, 0.3, 0.8)
        np.testing.assert_allclose(got[0], ref[0], rtol=1e-9, atol=1e-12)
        assert got[1] == pytest.approx(ref[1], rel=1e-10)
        assert 0.0 < got[2] < min(m, 25)


@pytest.mark.parametrize("sketch", ["uniform", "sparse-sign"])
def test_sparse_input_gives_the_dense_iterates(sketch):
    a, y = _bow(400, 30, 6, 7)
    runs = []
    for operand in (a, a.toarray()):
        with make_executor("local-thread", max_workers=1) as ex:
            runs.append(distributed_newton(operand, y, loss="logistic", lam=0.5, q=2, m=90,
                                           sketch=sketch, executor=ex, max_iter=6,
                                           rng=11))  # fmt: skip
    np.testing.assert_allclose(runs[0].x, runs[1].x, rtol=1e-8, atol=1e-10)
    assert [h[0] for h in runs[0].history] == pytest.approx([h[0] for h in runs[1].history],
                                                             rel=1e-10)  # fmt: skip


def _lbfgs_reference(a, y, lam):
    def fun(x):
        z = a @ x
        return (float(np.sum(np.logaddexp(0.0, -y * z))) + 0.5 * lam * x @ x,
                a.T @ (-y * scipy.special.expit(-y * z)) + lam * x)  # fmt: skip

    out = scipy.optimize.minimize(
        fun,
        np.zeros(a.shape[1]),
        jac=True,
        method="L-BFGS-B",
        options={"gtol": 1e-12, "ftol": 1e-15, "maxiter": 10000},
    )
    return out.x, out.fun  # fmt: skip


@pytest.mark.parametrize("m", [80, 25])  # primal and Woodbury workers (d = 40)
def test_sparse_newton_sketch_converges_to_lbfgs_optimum(m):
    a, y = _bow(600, 40, 8, 13)
    lam = 10.0  # d_lambda ~ 17 at x = 0 (below m = 25)
    x_ref, f_ref = _lbfgs_reference(a, y, lam)
    with make_executor("local-thread", max_workers=2) as ex:
        res = distributed_newton(a, y, loss="logistic", lam=lam, q=3, m=m, sketch="uniform",
                                 executor=ex, tol=1e-10, max_iter=200, rng=2)  # fmt: skip
    assert res.converged
    np.testing.assert_allclose(res.x, x_ref, rtol=1e-5, atol=1e-6)
    assert res.objective == pytest.approx(f_ref, rel=1e-10)
    exact = distributed_newton(a, y, loss="logistic", lam=lam, averaging="exact", tol=1e-10)
    np.testing.assert_allclose(exact.x, x_ref, rtol=1e-5, atol=1e-6)


def test_dense_uniform_sketch_converges_to_lbfgs_optimum():
    gen = np.random.default_rng(21)
    a = gen.standard_normal((2000, 30)) * np.logspace(0, -1.5, 30)
    y = np.where(gen.random(2000) < scipy.special.expit(a @ gen.standard_normal(30)), 1, -1)
    x_ref, f_ref = _lbfgs_reference(a, y, 0.3)
    res = distributed_newton(a, y, loss="logistic", lam=0.3, q=2, m=150, sketch="uniform",
                             tol=1e-10, max_iter=100, rng=4)  # fmt: skip
    assert res.converged
    np.testing.assert_allclose(res.x, x_ref, rtol=1e-5, atol=1e-6)
    assert res.objective == pytest.approx(f_ref, rel=1e-10)


@pytest.mark.parametrize("shape", [(300, 120), (90, 200)])  # primal (m >= d) and dual (m < d)
def test_cg_form_solves_and_estimates_d_lambda(shape):
    """The cg form against the dense solve (to its relative residual) and its Hutchinson
    d_lambda against the eigenvalue formula."""
    from frugalml.sketch.sketched_hessian import CG_RTOL

    gen = np.random.default_rng(7)
    r = sp.random(*shape, density=0.1, random_state=8, format="csr") * 3.0
    lam = 0.5
    h = (r.T @ r).toarray() + lam * np.eye(shape[1])
    g = gen.standard_normal(shape[1])
    fac = SketchedHessian(r, lam, form="cg")
    x = fac.solve(g)
    assert np.linalg.norm(h @ x - g) <= 1.01 * CG_RTOL * np.linalg.norm(g)
    assert fac.cg_iterations > 0 and np.isnan(fac.logdet)
    ev = np.linalg.eigvalsh((r.T @ r).toarray())
    exact = float(np.sum(ev / (ev + lam)))
    assert fac.effective_dimension(rng=1) == pytest.approx(exact, rel=0.1)
    with pytest.raises(InvalidInputError, match=r"scipy\.sparse"):
        SketchedHessian(r.toarray(), lam, form="cg")
    with pytest.raises(InvalidInputError, match="lam > 0"):
        SketchedHessian(r, 0.0, form="cg")


def test_sparse_newton_sketch_with_cg_workers_converges(monkeypatch):
    """Workers whose sketched root exceeds CG_MIN_DIM solve by CG; forced here at small size:
    the iterates still reach the L-BFGS-B optimum."""
    import frugalml.sketch.sketched_hessian as hessian_mod

    monkeypatch.setattr(hessian_mod, "CG_MIN_DIM", 10)
    a, y = _bow(600, 40, 8, 13)
    lam = 10.0
    x_ref, f_ref = _lbfgs_reference(a, y, lam)
    with make_executor("local-thread", max_workers=2) as ex:
        res = distributed_newton(a, y, loss="logistic", lam=lam, q=3, m=25, sketch="uniform",
                                 executor=ex, tol=1e-10, max_iter=200, rng=2)  # fmt: skip
    assert res.converged
    np.testing.assert_allclose(res.x, x_ref, rtol=1e-5, atol=1e-6)
    assert res.objective == pytest.approx(f_ref, rel=1e-10)
