"""Sketch-and-precondition with conjugate gradients on the normal equations (``solver="cg"``,
:mod:`frugalml.sketch.pcg`) and the mixed-precision factor, against LAPACK ``gelsd`` and
closed forms."""

from __future__ import annotations

import sys

import numpy as np
import pytest
import scipy.linalg
import scipy.sparse as sp

from frugalml.errors import InvalidInputError
from frugalml.sketch import lstsq
from frugalml.sketch.datasets import synthetic_regression
from frugalml.sketch.lstsq import (
    CG_NNZ_PER_COL,
    SketchedFactor,
    cg_sketch_size,
    default_sketch_size,
)
from frugalml.sketch.pcg import gram_matvec, normal_residual, pcg_normal


def gelsd(a, b):
    return scipy.linalg.lstsq(a, b, lapack_driver="gelsd")[0]


def ridge_gelsd(a, b, lam):
    """Ridge solution as the least-squares solution of ``[A; sqrt(lam) I] x ~ [b; 0]``."""
    d = a.shape[1]
    return gelsd(np.vstack([a, np.sqrt(lam) * np.eye(d)]), np.concatenate([b, np.zeros(d)]))


def resid_error(a, b, x, x_ref, lam=0.0):
    """``||[A; sqrt(lam) I](x - x*)|| / sqrt(||b - A x*||^2 + lam ||x*||^2)``."""
    dx = x - x_ref
    num = np.sqrt(np.linalg.norm(a @ dx) ** 2 + lam * dx @ dx)
    r = b - a @ x_ref
    return float(num / np.sqrt(r @ r + lam * x_ref @ x_ref))


@pytest.fixture(scope="module", params=[1e4, 1e6])
def coherent(request):
    """Coherent rows (multivariate t, df = 2) and condition number 1e4 / 1e6."""
    p = synthetic_regression(4000, 30, kappa=request.param, df=2.0, noise=1e-2, rng=21)
    return p.a, p.b, gelsd(p.a, p.b), request.param


@pytest.mark.parametrize("precision", ["double", "mixed"])
def test_cg_matches_gelsd_to_1e10_on_ill_conditioned(coherent, precision):
    a, b, xs, kappa = coherent
    s = np.linalg.svd(a, compute_uv=False)
    assert s[0] / s[-1] == pytest.approx(kappa, rel=1e-6)
    res = lstsq(a, b, solver="cg", precision=precision, tol=1e-10, rng=1)
    assert res.converged and res.solver == "cg"
    assert resid_error(a, b, res.x, xs) < 1e-10
    # the reported residual norm is the true one of the returned x
    assert res.residual_norm == pytest.approx(np.linalg.norm(b - a @ res.x), rel=1e-12)
    # kappa(A M) = O(1): O(log 1/tol) iterations whatever kappa(A) is
    assert 0 < res.iterations < 40
    # the float32 factor is used while eps32 * cond_1(R) <= 10 (here up to kappa = 1e6)
    assert res.precision == precision


@pytest.mark.parametrize("lam", [1e-6, 1e-2])
@pytest.mark.parametrize("precision", ["double", "mixed"])
def test_cg_ridge_matches_augmented_gelsd(coherent, lam, precision):
    a, b, _, _ = coherent
    x_ref = ridge_gelsd(a, b, lam)
    # a second reference: the normal equations in closed form
    x_ne = np.linalg.solve(a.T @ a + lam * np.eye(a.shape[1]), a.T @ b)
    assert resid_error(a, b, x_ne, x_ref, lam) < 1e-6
    res = lstsq(a, b, solver="cg", precision=precision, lam=lam, tol=1e-10, rng=2)
    assert res.converged
    assert resid_error(a, b, res.x, x_ref, lam) < 1e-10
    r = b - a @ res.x
    assert res.residual_norm == pytest.approx(np.sqrt(r @ r + lam * res.x @ res.x), rel=1e-12)


def test_cg_float32_input_solves_the_float32_values_exactly(coherent):
    a, b, _, _ = coherent
    a32, b32 = a.astype(np.float32), b.astype(np.float32)
    ref = gelsd(a32.astype(np.float64), b32.astype(np.float64))
    res = lstsq(a32, b32, solver="cg", precision="mixed", tol=1e-10, rng=3)
    assert res.x.dtype == np.float64
    assert resid_error(a32.astype(np.float64), b32.astype(np.float64), res.x, ref) < 1e-10


def test_cg_sparse_input_matches_dense(coherent):
    a, b, _, _ = coherent
    a_sp = a.copy()
    a_sp[np.abs(a_sp) < 0.5 * np.abs(a_sp).mean()] = 0.0
    ref = gelsd(a_sp, b)
    res = lstsq(sp.csr_matrix(a_sp), b, solver="cg", tol=1e-10, rng=4)
    assert res.converged and resid_error(a_sp, b, res.x, ref) < 1e-10


def test_cg_rank_deficient_gives_minimum_norm_solution():
    gen = np.random.default_rng(5)
    base = gen.standard_normal((2000, 8))
    a = np.hstack([base, base[:, :3] @ gen.standard_normal((3, 4))])  # rank 8 of 12 columns
    b = gen.standard_normal(2000)
    # minimum-norm least-squares solution (rounding makes A's rank 12 unless cut at 1e-10)
    xs = scipy.linalg.lstsq(a, b, cond=1e-10, lapack_driver="gelsd")[0]
    res = lstsq(a, b, solver="cg", sketch="gaussian", precision="mixed", tol=1e-10, rng=6)
    assert res.rank == 8 and res.precision == "double"  # float32 factor refused, SVD in float64
    assert resid_error(a, b, res.x, xs) < 1e-10
    assert np.linalg.norm(res.x - xs) / np.linalg.norm(xs) < 1e-8


def test_cg_and_lsqr_need_similar_iterations(coherent):
    """Same Krylov space in exact arithmetic: CG on the preconditioned normal equations and
    LSQR on A M take about the same number of iterations (CG's each reads A once)."""
    a, b, xs, _ = coherent
    cg = lstsq(a, b, solver="cg", tol=1e-10, rng=7)
    lsqr = lstsq(a, b, solver="lsqr", tol=1e-10, refine=False, rng=7)
    assert abs(cg.iterations - lsqr.iterations) <= 6
    assert resid_error(a, b, lsqr.x, xs) < 1e-8


def test_cg_reports_non_convergence_honestly(coherent):
    a, b, xs, _ = coherent
    res = lstsq(a, b, solver="cg", tol=1e-10, maxiter=2, rng=8)
    assert not res.converged and res.iterations == 2
    assert "NOT converged" in res.summary()
    assert resid_error(a, b, res.x, xs) > 1e-10


def test_mixed_precision_falls_back_to_double_when_too_ill_conditioned():
    p = synthetic_regression(3000, 20, kappa=1e8, rng=9)
    res = lstsq(p.a, p.b, solver="cg", precision="mixed", tol=1e-8, rng=0)
    assert res.precision == "double"
    assert resid_error(p.a, p.b, res.x, gelsd(p.a, p.b)) < 1e-7


@pytest.mark.parametrize("lam", [0.0, 0.3])
def test_blocked_passes_equal_unblocked(lam):
    gen = np.random.default_rng(10)
    a = gen.standard_normal((1001, 17))
    b = gen.standard_normal(1001)
    y = gen.standard_normal(17)
    want = a.T @ (a @ y) + lam * y
    r = b - a @ y
    want_g, want_r = a.T @ r - lam * y, np.sqrt(r @ r + lam * y @ y)
    for block in (1, 7, 128, 1000, 1001, 5000, None):
        np.testing.assert_allclose(gram_matvec(a, y, lam, block), want, rtol=1e-12, atol=1e-12)
        g, rn = normal_residual(a, b, y, lam, block)
        np.testing.assert_allclose(g, want_g, rtol=1e-12, atol=1e-12)
        assert rn == pytest.approx(want_r, rel=1e-13)
    # the whole solve: blocked and unblocked runs agree to rounding
    sa = gen.standard_normal((120, 1001)) @ a / np.sqrt(120)
    f = SketchedFactor(sa, lam)
    x0 = np.zeros(17)
    runs = [
        pcg_normal(a, b, x0, f.matvec, f.rmatvec, lam=lam, tol=1e-12, block=blk)
        for blk in (13, 1001)
    ]
    assert runs[0][1] == runs[1][1]  # same iteration count
    np.testing.assert_allclose(runs[0][0], runs[1][0], rtol=1e-11)
    assert runs[0][2] and runs[1][2]
    x_ref = ridge_gelsd(a, b, lam) if lam > 0 else gelsd(a, b)
    assert resid_error(a, b, runs[0][0], x_ref, lam) < 1e-12


# -- defaults ----------------------------------------------------------------------------------


def test_dense_default_is_cg_mixed_with_the_cost_model_sketch(coherent):
    a, b, xs, _ = coherent
    res = lstsq(a, b, tol=1e-10, rng=11)
    n, d = a.shape
    assert (res.solver, res.precision) == ("cg", "mixed")
    assert res.sketch == {"sketch": "sparse-sign", "m": cg_sketch_size(n, d),
                          "nnz_per_col": CG_NNZ_PER_COL}  # fmt: skip
    assert res.sketch_size == default_sketch_size("sketch-and-precondition", n, d, "cg")
    assert res.converged and resid_error(a, b, res.x, xs) < 1e-10
    # the previous defaults stay selectable and agree
    old = lstsq(a, b, solver="lsqr", sketch="sparse-sign", tol=1e-10, rng=11)
    assert (old.solver, old.precision, old.sketch_size) == ("lsqr", "double", 8 * d)
    assert old.sketch["nnz_per_col"] == 8
    assert resid_error(a, b, old.x, xs) < 1e-8


def test_cost_model_sketch_sizes():
    assert cg_sketch_size(100_000, 500) == 16 * 500  # n = 200 d
    assert cg_sketch_size(1_000_000, 500) == 24 * 500
    assert cg_sketch_size(50_000, 500) == 12 * 500
    assert cg_sketch_size(5_000, 500) == 6 * 500
    assert cg_sketch_size(100, 30) == 100  # capped at n


def test_sparse_default_is_cg_mixed_and_other_methods_keep_theirs(coherent):
    a, b, _, _ = coherent
    a_sp = a.copy()
    a_sp[np.abs(a_sp) < np.abs(a_sp).mean()] = 0.0
    res = lstsq(sp.csr_matrix(a_sp), b, tol=1e-10, rng=12)
    assert (res.solver, res.precision) == ("cg", "mixed")
    assert res.sketch["nnz_per_col"] == CG_NNZ_PER_COL
    assert res.converged and resid_error(a_sp, b, res.x, gelsd(a_sp, b)) < 1e-10
    lsqr = lstsq(sp.csr_matrix(a_sp), b, solver="lsqr", tol=1e-10, rng=12)
    assert (lsqr.solver, lsqr.precision) == ("lsqr", "double")
    for method in ("ihs", "sketch-and-solve"):
        res = lstsq(a, b, method=method, rng=12)
        assert (res.solver, res.precision) == ("", "double")


def test_mixed_factor_of_a_rank_deficient_a_falls_back_to_double():
    """A duplicated column: the float32 factor of a Gaussian sketch sees the two copies differ
    by float32 rounding and passes the condition test, but cannot precondition; the solve
    redoes the factor in float64 (truncated SVD) and returns the minimum-norm solution."""
    gen = np.random.default_rng(0)
    a0 = gen.standard_normal((500, 8))
    a = np.column_stack([a0, a0[:, 2]])
    b = gen.standard_normal(500)
    x_pinv = np.linalg.pinv(a) @ b
    res = lstsq(a, b, sketch="gaussian", precision="mixed", rng=1)
    assert res.converged and res.precision == "double" and res.rank == 8
    assert np.linalg.norm(res.x - x_pinv) / np.linalg.norm(x_pinv) < 1e-10


def test_stall_at_the_rounding_floor_counts_as_converged_within_eps_kappa():
    """tol = 1e-15 is below what float64 can reach at kappa = 1e7: CG stops when a round no
    longer halves the true gradient and reports convergence within eps * cond(R), with the
    error of a backward-stable solver (about eps * kappa)."""
    p = synthetic_regression(3000, 20, kappa=1e7, rng=13)
    xs = gelsd(p.a, p.b)
    res = lstsq(p.a, p.b, tol=1e-15, rng=0)
    assert res.converged and res.iterations < 60
    assert resid_error(p.a, p.b, res.x, xs) < 1e7 * np.finfo(float).eps
    assert res.residual_norm == pytest.approx(np.linalg.norm(p.b - p.a @ res.x), rel=1e-12)


# -- non-finite input: checked on S A ------------------------------------------------------------


@pytest.mark.parametrize("sketch", [None, "countsketch", "uniform", "gaussian"])
@pytest.mark.parametrize("values", [(np.nan,), (np.inf,), (np.inf, -np.inf)])
def test_non_finite_a_is_rejected_with_the_count(sketch, values):
    gen = np.random.default_rng(14)
    a, b = gen.standard_normal((600, 7)), gen.standard_normal(600)
    rows = [599, 0][: len(values)]
    for r, v in zip(rows, values, strict=True):
        a[r, 3] = v  # inf and -inf in rows hashed anywhere: never a finite S A
    with pytest.raises(InvalidInputError, match=f"A contains {len(values)} NaN or inf"):
        lstsq(a, b, sketch=sketch, rng=0)


def test_finite_a_whose_sketch_overflows_is_rejected():
    gen = np.random.default_rng(15)
    a = gen.uniform(0.9, 1.0, size=(400, 5)) * 1.7e308  # finite, but sums of two overflow
    with pytest.raises(InvalidInputError, match="overflowed"):
        lstsq(a, gen.standard_normal(400), rng=0)


# -- compiled kernels ------------------------------------------------------------------------------


@pytest.mark.parametrize("n", [1, 3, 4, 1001])
@pytest.mark.parametrize("lam", [0.0, 0.7])
def test_compiled_passes_equal_numpy(n, lam):
    pytest.importorskip("numba")
    gen = np.random.default_rng(16)
    a, b, y = gen.standard_normal((n, 13)), gen.standard_normal(n), gen.standard_normal(13)
    r = b - a @ y
    np.testing.assert_allclose(gram_matvec(a, y, lam, jit=True), a.T @ (a @ y) + lam * y,
                               rtol=1e-12, atol=1e-12)  # fmt: skip
    g, rn = normal_residual(a, b, y, lam, jit=True)
    np.testing.assert_allclose(g, a.T @ r - lam * y, rtol=1e-12, atol=1e-12)
    assert rn == pytest.approx(np.sqrt(r @ r + lam * y @ y), rel=1e-13)
    # a non-contiguous A falls back to NumPy with the same answer
    at = np.asfortranarray(a)
    np.testing.assert_allclose(gram_matvec(at, y, lam, jit=True), gram_matvec(a, y, lam),
                               rtol=1e-12, atol=1e-12)  # fmt: skip


def test_kernels_are_used_cold_only_for_very_large_a(monkeypatch):
    """Without numba imported, only A of at least JIT_COLD_ENTRIES entries loads it; once it is
    imported (warm_jit), A of JIT_MIN_ENTRIES entries uses the kernels."""
    pytest.importorskip("numba")
    from frugalml.sketch import pcg

    assert pcg.warm_jit()
    a = np.ones((pcg.JIT_MIN_ENTRIES // 10, 10))
    assert pcg._use_jit(a, None, None) and not pcg._use_jit(a, None, 128)
    assert not pcg._use_jit(a[:-1], None, None) and not pcg._use_jit(a, False, None)
    monkeypatch.delitem(sys.modules, "numba")
    assert not pcg._use_jit(a, None, None)
    monkeypatch.setattr(pcg, "JIT_COLD_ENTRIES", a.size)
    assert pcg._use_jit(a, None, None)


def test_solve_with_and_without_kernels_agrees():
    pytest.importorskip("numba")
    p = synthetic_regression(3000, 20, kappa=1e4, rng=17)
    sa = np.random.default_rng(18).standard_normal((200, 3000)) @ p.a
    f = SketchedFactor(sa)
    runs = [pcg_normal(p.a, p.b, np.zeros(20), f.matvec,
                       f.rmatvec, tol=1e-12, jit=j) for j in (True, False)]  # fmt: skip
    assert runs[0][2] and runs[1][2]
    assert abs(runs[0][1] - runs[1][1]) <= 1
    xs = gelsd(p.a, p.b)
    assert resid_error(p.a, p.b, runs[0][0], xs) < 1e-11
    assert resid_error(p.a, p.b, runs[1][0], xs) < 1e-11


@pytest.mark.parametrize("sparse", [False, True])
def test_default_sketch_reaching_n_is_the_identity(sparse):
    """n = d = 40: the default m is capped at n, where a random sparse sign sketch can be
    singular (rank 37 for this seed: CG then converged inside the sketch's range, to a wrong x);
    the default uses S = I and solves the square system."""
    gen = np.random.default_rng(0)
    a, b = gen.standard_normal((40, 40)), gen.standard_normal(40)
    x_ref = np.linalg.solve(a, b)
    res = lstsq(sp.csr_matrix(a) if sparse else a, b, rng=0)
    assert res.sketch == {"sketch": "identity", "m": 40} and res.rank == 40
    assert res.converged and np.linalg.norm(res.x - x_ref) / np.linalg.norm(x_ref) < 1e-10
    # an explicit size is kept (a random sketch of that size): it loses rank here, and the
    # solve says it did not converge instead of returning a wrong x as converged
    rand = lstsq(a, b, sketch_size=40, rng=0)
    assert rand.sketch["sketch"] == "sparse-sign" and rand.rank < 40
    assert not rand.converged and "NOT converged" in rand.summary()
    bad = a.copy()
    bad[7, 3] = np.nan
    if not sparse:
        with pytest.raises(InvalidInputError, match="A contains 1 NaN or inf"):
            lstsq(bad, b, rng=0)
