"""Randomized least squares (:func:`frugalml.sketch.lstsq`) against LAPACK, closed forms,
an extended-precision reference and the exact sketch-and-solve error theory."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import scipy.linalg
import scipy.sparse as sp

from frugalml.errors import InvalidInputError
from frugalml.sketch import SKETCHES, GaussianSketch, LstsqResult, lstsq
from frugalml.sketch.datasets import synthetic_regression
from frugalml.sketch.lstsq import METHODS, SketchedFactor, default_sketch_size

EPS = np.finfo(float).eps

# Oblivious projections (embed range(A) for any A) and the data-aware families.
PROJECTIONS = ("gaussian", "rademacher", "srht", "srdct", "sparse-sign", "countsketch")
ALL_SKETCHES = tuple(SKETCHES)


def gelsd(a, b):
    return scipy.linalg.lstsq(a, b, lapack_driver="gelsd")[0]


def rel_errors(a, b, x, x_ref):
    """(||A(x - x*)|| / ||b - A x*||, ||x - x*|| / ||x*||)."""
    r = np.linalg.norm(b - a @ x_ref)
    return (
        float(np.linalg.norm(a @ (x - x_ref)) / r),
        float(np.linalg.norm(x - x_ref) / np.linalg.norm(x_ref)),
    )


def perturbation_bounds(a, b, x_ref):
    """First-order error bounds of a backward-stable LS solver (unit backward error ``eps``):

    residual-space ``||A dx|| / ||r|| <= eps (kappa + ||A|| ||x|| / ||r||)`` and forward
    ``||dx|| / ||x|| <= eps (kappa + kappa^2 ||r|| / (||A|| ||x||))`` (Wedin; Higham, ASNA
    ch. 20). gelsd itself only meets these, not more, on an ill-conditioned problem.
    """
    s = np.linalg.svd(a, compute_uv=False)
    kappa = s[0] / s[-1]
    r = np.linalg.norm(b - a @ x_ref)
    nx = np.linalg.norm(x_ref)
    return EPS * (kappa + s[0] * nx / r), EPS * (kappa + kappa**2 * r / (s[0] * nx))


@pytest.fixture(scope="module")
def well():
    p = synthetic_regression(1500, 12, kappa=10.0, rng=11)
    return p.a, p.b, gelsd(p.a, p.b)


@pytest.fixture(scope="module")
def ill():
    p = synthetic_regression(1500, 12, kappa=1e8, rng=12)
    return p.a, p.b, gelsd(p.a, p.b)


# -- sketch-and-precondition against LAPACK -----------------------------------------------------


@pytest.mark.parametrize("sketch", ALL_SKETCHES)
@pytest.mark.parametrize("solver", ["lsqr", "lsmr"])
def test_precondition_matches_gelsd_well_conditioned(well, sketch, solver):
    a, b, xs = well
    res = lstsq(a, b, method="sketch-and-precondition", sketch=sketch, solver=solver, rng=3)
    assert isinstance(res, LstsqResult)
    assert res.converged and res.rank == a.shape[1]
    e_res, e_sol = rel_errors(a, b, res.x, xs)
    assert e_res < 1e-10 and e_sol < 1e-10
    # kappa(A M) = O(1): LSQR/LSMR needs O(log 1/tol) iterations, far fewer than maxiter
    assert 0 < res.iterations < 60
    assert res.residual_norm == pytest.approx(np.linalg.norm(b - a @ xs), rel=1e-13)
    assert res.sketch_size == default_sketch_size("sketch-and-precondition", *a.shape)


@pytest.mark.parametrize("sketch", ALL_SKETCHES)
def test_precondition_ill_conditioned_kappa_1e8(ill, sketch):
    """kappa = 1e8: no solver in double precision is accurate to 1e-10 in the solution or even
    in A x (gelsd itself is off by ~1e-9 from the exact answer, see the mpmath test below).
    The errors against gelsd must stay inside the backward-stable perturbation bounds (about
    kappa eps = 2.2e-8 for the residual-space error, kappa eps (1 + kappa ||r||/(||A|| ||x||))
    for the solution) -- the test of the warm-started preconditioned solver's stability --
    while the optimal residual norm ||b - A x|| (which moves only at second order in the
    error) agrees to 1e-10: evaluating it in floating point costs up to
    eps ||A|| ||x|| / ||r|| ~ 1e-9 here, typically 1e-12."""
    a, b, xs = ill
    s = np.linalg.svd(a, compute_uv=False)
    assert s[0] / s[-1] == pytest.approx(1e8, rel=1e-3)
    res = lstsq(a, b, method="sketch-and-precondition", sketch=sketch, rng=4)
    assert res.converged
    e_res, e_sol = rel_errors(a, b, res.x, xs)
    tol_res, tol_sol = perturbation_bounds(a, b, xs)
    assert tol_res < 3e-8 and tol_sol < 1e-4  # the bounds are of the kappa * eps size
    assert e_res < tol_res
    assert e_sol < tol_sol
    r_opt = np.linalg.norm(b - a @ xs)
    assert abs(np.linalg.norm(b - a @ res.x) - r_opt) / r_opt < 1e-10


def test_ill_conditioned_against_extended_precision_reference():
    """Against the exact solution (normal equations in 60-digit arithmetic): the randomized
    solver is as accurate as gelsd up to a small factor, both within the perturbation bounds."""
    mpmath = pytest.importorskip("mpmath")
    p = synthetic_regression(300, 8, kappa=1e8, rng=5)
    a, b = p.a, p.b
    with mpmath.workdps(60):
        am, bm = mpmath.matrix(a.tolist()), mpmath.matrix(b.tolist())
        exact = mpmath.lu_solve(am.T * am, am.T * bm)
        x_exact = np.array([float(v) for v in exact])
    tol_res, tol_sol = perturbation_bounds(a, b, x_exact)
    e_lapack = rel_errors(a, b, gelsd(a, b), x_exact)
    for sketch in ("gaussian", "sparse-sign", "srht"):
        res = lstsq(a, b, method="sketch-and-precondition", sketch=sketch, rng=6)
        e_res, e_sol = rel_errors(a, b, res.x, x_exact)
        assert e_res < tol_res and e_sol < tol_sol
        assert e_res < 30 * max(e_lapack[0], 1e2 * EPS)
        assert e_sol < 30 * max(e_lapack[1], 1e2 * EPS)


def test_precondition_minimum_sketch_size_m_equals_d(well):
    a, b, xs = well
    d = a.shape[1]
    for sketch in ("gaussian", "sparse-sign"):
        res = lstsq(a, b, sketch=sketch, sketch_size=d, rng=0)
        assert res.converged and res.sketch_size == d
        assert max(rel_errors(a, b, res.x, xs)) < 1e-10


def test_sketch_instance_size_wins_and_is_reported(well):
    a, b, xs = well
    res = lstsq(a, b, sketch=GaussianSketch(50), sketch_size=999, rng=0)
    assert res.sketch_size == 50 and res.sketch == {"sketch": "gaussian", "m": 50}
    assert max(rel_errors(a, b, res.x, xs)) < 1e-10


def test_reproducible_from_seed(well):
    a, b, _ = well
    for method in METHODS:
        x1 = lstsq(a, b, method=method, rng=17).x
        x2 = lstsq(a, b, method=method, rng=np.random.default_rng(17)).x
        np.testing.assert_array_equal(x1, x2)


def test_list_input_is_accepted(well):
    a, b, _xs = well
    res = lstsq(a[:200].tolist(), b[:200].tolist(), rng=0)
    assert max(rel_errors(a[:200], b[:200], res.x, gelsd(a[:200], b[:200]))) < 1e-10


# -- ridge ----------------------------------------------------------------------------------------


def ridge_closed_form(a, b, lam):
    a = a.toarray() if sp.issparse(a) else a
    return scipy.linalg.solve(a.T @ a + lam * np.eye(a.shape[1]), a.T @ b, assume_a="pos")


def ridge_errors(a, b, lam, x, x_ref):
    """(||[A; sqrt(lam) I](x - x_r)|| / ||[b; 0] - [A; sqrt(lam) I] x_r||, ||x - x_r||/||x_r||)."""
    dx = x - x_ref
    num = np.sqrt(np.linalg.norm(a @ dx) ** 2 + lam * dx @ dx)
    r = b - a @ x_ref
    den = np.sqrt(r @ r + lam * x_ref @ x_ref)
    return float(num / den), float(np.linalg.norm(dx) / np.linalg.norm(x_ref))


@pytest.mark.parametrize("method", ["sketch-and-precondition", "ihs"])
@pytest.mark.parametrize("solver", ["lsqr", "lsmr"])
@pytest.mark.parametrize("lam", [1e-3, 0.5, 50.0])
def test_ridge_dense_matches_closed_form(method, solver, lam):
    p = synthetic_regression(800, 15, kappa=1e3, rng=21)
    a, b = p.a, p.b
    xr = ridge_closed_form(a, b, lam)
    size = 16 * 15 if method == "ihs" else None  # momentum IHS is fragile at m = 4d (xfail below)
    res = lstsq(a, b, method=method, solver=solver, lam=lam, sketch_size=size, rng=2)
    assert res.converged and res.lam == lam
    e_energy, e_sol = ridge_errors(a, b, lam, res.x, xr)
    # the closed form is accurate to ~kappa(A^T A + lam I) eps <= 1e6 eps here
    assert e_energy < 1e-10 and e_sol < 1e-9
    r = b - a @ xr
    assert res.residual_norm == pytest.approx(np.sqrt(r @ r + lam * xr @ xr), rel=1e-12)


@pytest.mark.parametrize("method", ["sketch-and-precondition", "ihs"])
@pytest.mark.parametrize("solver", ["lsqr", "lsmr"])
@pytest.mark.parametrize("sketch", ["sparse-sign", "gaussian", "countsketch", "srht"])
@pytest.mark.parametrize("lam", [0.0, 1e-2])
def test_sparse_a_matches_closed_form(method, solver, sketch, lam):
    a = sp.random(2000, 30, density=0.05, random_state=4, format="csr")
    b = np.random.default_rng(5).standard_normal(2000)
    xr = ridge_closed_form(a, b, lam)  # kappa(A) ~ 2: the normal equations are accurate
    size = 16 * 30 if method == "ihs" else None
    res = lstsq(a, b, method=method, solver=solver, sketch=sketch, lam=lam, tol=1e-14,
                sketch_size=size, rng=1)  # fmt: skip
    assert res.converged
    e_energy, e_sol = ridge_errors(a, b, lam, res.x, xr)
    assert e_energy < 1e-10 and e_sol < 1e-10
    # dense and sparse input give the same answer
    dense = lstsq(a.toarray(), b, method=method, solver=solver, sketch=sketch, lam=lam,
                  tol=1e-14, sketch_size=size, rng=1)  # fmt: skip
    np.testing.assert_allclose(dense.x, res.x, rtol=1e-9, atol=1e-12)


def test_ridge_underdetermined_n_less_than_d():
    """n < d is fine with lam > 0: [S A; sqrt(lam) I] has full column rank."""
    rng = np.random.default_rng(8)
    a, b = rng.standard_normal((50, 80)), rng.standard_normal(50)
    xr = ridge_closed_form(a, b, 0.1)
    for solver in ("lsqr", "lsmr"):
        res = lstsq(a, b, method="sketch-and-precondition", lam=0.1, solver=solver, rng=1)
        assert res.converged and res.rank == 80
        assert max(ridge_errors(a, b, 0.1, res.x, xr)) < 1e-10
    # IHS with a sketch larger than d converges there too
    res = lstsq(a, b, method="ihs", lam=0.1, sketch="gaussian", sketch_size=320, rng=1)
    assert res.converged and max(ridge_errors(a, b, 0.1, res.x, xr)) < 1e-10


def test_ihs_never_reports_a_diverged_iteration_as_converged():
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((50, 80)), rng.standard_normal(50)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        res = lstsq(a, b, method="ihs", lam=0.1, sketch="gaussian", refresh=True, rng=1)
        if res.converged:
            assert np.all(np.isfinite(res.x))
            assert max(ridge_errors(a, b, 0.1, res.x, ridge_closed_form(a, b, 0.1))) < 1e-6


def test_sketch_and_solve_ridge_solves_the_sketched_problem():
    """SketchedFactor: the min of ||S A x - S b||^2 + lam ||x||^2 in closed form, and the
    inverse sketched Gram matrix."""
    rng = np.random.default_rng(9)
    sa, sb = rng.standard_normal((30, 7)), rng.standard_normal(30)
    g = rng.standard_normal(7)
    for lam in (0.0, 0.3):
        f = SketchedFactor(sa, lam)
        gram = sa.T @ sa + lam * np.eye(7)
        np.testing.assert_allclose(f.solve(sb), np.linalg.solve(gram, sa.T @ sb), rtol=1e-12)
        np.testing.assert_allclose(f.apply_inverse_gram(g), np.linalg.solve(gram, g), rtol=1e-12)
        assert f.rank == 7
    # fewer sketch rows than columns: minimum-norm solution
    short = rng.standard_normal((4, 7))
    f = SketchedFactor(short)
    assert f.rank == 4
    np.testing.assert_allclose(f.solve(sb[:4]), np.linalg.pinv(short) @ sb[:4], rtol=1e-10)
    with pytest.raises(InvalidInputError, match="zero"):
        SketchedFactor(np.zeros((10, 3)))


# -- IHS ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("refresh", [False, True])
@pytest.mark.parametrize("sketch", ["gaussian", "sparse-sign", "srht"])
def test_ihs_converges_to_gelsd(refresh, sketch):
    p = synthetic_regression(1000, 15, kappa=1e3, rng=2)
    a, b = p.a, p.b
    xs = gelsd(a, b)
    # refreshed IHS contracts on average at the default m = 4d; the fixed-sketch momentum
    # variant needs a wide margin over the Marchenko-Pastur edge at finite d, so m = 16d
    size = None if refresh else 16 * 15
    res = lstsq(a, b, method="ihs", sketch=sketch, refresh=refresh, sketch_size=size, rng=3)
    assert res.converged and 0 < res.iterations < 500
    e_res, e_sol = rel_errors(a, b, res.x, xs)
    assert e_res < 1e-10 and e_sol < 1e-9  # kappa = 1e3: the solution error is <= kappa e_res
    # history: one criterion per iteration plus the final check, ending below tol
    assert len(res.history) == res.iterations + 1
    assert res.history[-1] <= 1e-12 < res.history[0]


def test_ihs_momentum_rate_is_about_sqrt_r():
    """Momentum IHS (fixed sketch) converges at rate ~ sqrt(r), r = (sqrt(d) + 2)^2 / m the
    margin-widened Marchenko-Pastur ratio: with d = 10, m = 160, r = 0.166 and the rate
    sqrt(r) = 0.41; allow 25% for the transient and the finite-size spectrum."""
    p = synthetic_regression(2000, 10, rng=7)
    res = lstsq(p.a, p.b, method="ihs", sketch="gaussian", sketch_size=160, rng=1)
    hist = np.array(res.history)
    rate = (hist[-1] / hist[0]) ** (1.0 / (len(hist) - 1))
    assert res.converged and rate < 1.25 * np.sqrt((np.sqrt(10) + 2) ** 2 / 160)


def test_ihs_default_momentum_converges_for_every_seed():
    p = synthetic_regression(400, 6, kappa=100.0, rng=3)
    xs = gelsd(p.a, p.b)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        for seed in range(20):
            res = lstsq(p.a, p.b, method="ihs", sketch="gaussian", rng=seed)
            assert res.converged, seed
            assert rel_errors(p.a, p.b, res.x, xs)[0] < 1e-10


def test_ihs_momentum_with_m_16d_converges_for_every_seed():
    p = synthetic_regression(400, 6, kappa=100.0, rng=3)
    xs = gelsd(p.a, p.b)
    for seed in range(20):
        res = lstsq(p.a, p.b, method="ihs", sketch="gaussian", sketch_size=96, rng=seed)
        assert res.converged and rel_errors(p.a, p.b, res.x, xs)[0] < 1e-10


def test_ihs_too_small_sketch_with_refresh_is_right_when_it_says_converged():
    """Refreshed IHS with m = 2d grows at step 1 (its step needs a good embedding); the
    safeguard restarts with smaller steps. Whatever it reports must be true."""
    p = synthetic_regression(500, 10, rng=0)
    xs = gelsd(p.a, p.b)
    for maxiter in (5, 300):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            res = lstsq(p.a, p.b, method="ihs", sketch="gaussian", sketch_size=20, refresh=True,
                        maxiter=maxiter, rng=1)  # fmt: skip
        assert np.all(np.isfinite(res.x))
        err = rel_errors(p.a, p.b, res.x, xs)[0]
        if res.converged:
            assert err < 1e-9
        else:
            assert err > 1e-11


# -- rank-deficient A ------------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["sketch-and-precondition", "ihs"])
@pytest.mark.parametrize("sketch", ["gaussian", "sparse-sign", "srht", "countsketch"])
def test_rank_deficient_gives_minimum_norm_solution(method, sketch):
    rng = np.random.default_rng(0)
    a0 = rng.standard_normal((500, 8))
    a = np.column_stack([a0, a0[:, 2]])  # duplicated column: rank 8 of 9
    b = rng.standard_normal(500)
    x_pinv = np.linalg.pinv(a) @ b
    size = 16 * 9 if method == "ihs" else None
    res = lstsq(a, b, method=method, sketch=sketch, sketch_size=size, rng=1)
    assert res.rank == 8 and res.converged
    assert np.linalg.norm(res.x - x_pinv) / np.linalg.norm(x_pinv) < 1e-10
    # the minimum-norm solution splits the weight evenly between the duplicated columns
    assert res.x[2] == pytest.approx(res.x[8], rel=1e-9)


# -- sketch-and-solve error theory -----------------------------------------------------------------


def _sketch_and_solve_errors(trials, n=300, d=10, m=40, seed=0):
    p = synthetic_regression(n, d, rng=seed)
    a, b = p.a, p.b
    xs = gelsd(a, b)
    f = float(np.sum((b - a @ xs) ** 2))
    errs = np.empty(trials)
    for t in range(trials):
        res = lstsq(a, b, method="sketch-and-solve", sketch="gaussian", sketch_size=m,
                    rng=1000 * seed + t)  # fmt: skip
        assert res.iterations == 0 and res.converged
        errs[t] = np.sum((a @ (res.x - xs)) ** 2) / f
    return errs, d / (m - d - 1)


def _check_mean(errs, expected):
    se = errs.std(ddof=1) / np.sqrt(errs.size)
    assert abs(errs.mean() - expected) < 4 * se, (errs.mean(), expected, se)
    return se


def test_sketch_and_solve_mean_error_is_d_over_m_minus_d_minus_1():
    """E||A(xhat - x*)||^2 = f(x*) d/(m - d - 1) = 10/29 f(x*). 400 trials: the relative
    standard deviation of one error is ~0.55, so the standard error is ~2.7% and 4 sigma ~11%."""
    errs, expected = _sketch_and_solve_errors(400)
    se = _check_mean(errs, expected)
    assert se / expected < 0.04


@pytest.mark.slow
def test_sketch_and_solve_mean_error_many_trials():
    errs, expected = _sketch_and_solve_errors(6000, seed=1)
    se = _check_mean(errs, expected)
    assert se / expected < 0.01


def test_sketch_and_solve_uses_one_sketch_of_size_m(well):
    a, b, xs = well
    d = a.shape[1]
    res = lstsq(a, b, method="sketch-and-solve", sketch="gaussian", sketch_size=d + 2, rng=0)
    assert res.sketch_size == d + 2 and res.iterations == 0 and res.converged
    assert res.summary().startswith("sketch-and-solve with a gaussian sketch of m=14")
    # a sketch-and-solve answer is not the exact solution
    assert rel_errors(a, b, res.x, xs)[0] > 1e-3


# -- result object ---------------------------------------------------------------------------------


def test_summary_and_not_converged(well):
    a, b, _ = well
    for method in ("sketch-and-precondition", "ihs"):
        res = lstsq(a, b, method=method, maxiter=1, tol=1e-15, rng=0)
        assert res.converged is False and res.iterations == 1
        text = res.summary()
        assert isinstance(text, str) and "NOT converged" in text and method in text
        assert "1 iterations" in text
    ok = lstsq(a, b, rng=0)
    assert "NOT converged" not in ok.summary() and "sparse-sign" in ok.summary()
    assert ok.seconds >= ok.setup_seconds >= 0


# -- bad input -------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def small():
    rng = np.random.default_rng(1)
    return rng.standard_normal((100, 10)), rng.standard_normal(100)


def test_sketch_and_solve_needs_m_above_d_plus_1(small):
    a, b = small
    for m in (5, 10, 11):
        with pytest.raises(InvalidInputError, match=r"d \+ 1"):
            lstsq(a, b, method="sketch-and-solve", sketch_size=m)
    with pytest.raises(InvalidInputError, match=r"d \+ 1"):
        lstsq(a, b, method="sketch-and-solve", sketch=GaussianSketch(11))
    lstsq(a, b, method="sketch-and-solve", sketch_size=12, rng=0)  # m = d + 2 is fine
    # with ridge the sketched problem is well posed for any m
    lstsq(a, b, method="sketch-and-solve", sketch_size=3, lam=1.0, rng=0)


@pytest.mark.parametrize("method", ["sketch-and-precondition", "ihs"])
def test_iterative_methods_need_m_at_least_d(small, method):
    a, b = small
    with pytest.raises(InvalidInputError, match="m >= d"):
        lstsq(a, b, method=method, sketch_size=9)


@pytest.mark.parametrize(
    ("kwargs", "needle"),
    [
        ({"a": np.ones((5, 10)), "b": np.ones(5)}, "n < d"),
        ({"a": "not a matrix"}, "numeric"),
        ({"a": None}, "numeric"),
        ({"a": np.ones(100)}, "2-D"),
        ({"a": np.ones((100, 2, 2))}, "dimension"),
        ({"b": np.ones(99)}, "99 entries"),
        ({"b": np.ones((100, 1))}, "dimension"),
        ({"lam": -1.0}, "lam must be >= 0"),
        ({"lam": float("nan")}, "lam must be finite"),
        ({"method": "normal-equations"}, "method must be one of"),
        ({"solver": "gmres"}, "solver must be one of"),
        ({"precision": "half"}, "precision must be one of"),
        ({"method": "ihs", "solver": "cg"}, "applies to method='sketch-and-precondition'"),
        ({"method": "sketch-and-solve", "precision": "mixed"}, "use precision='double'"),
        ({"sketch": "fourier"}, "unknown sketch"),
        ({"sketch": 3}, "sketch must be a name"),
        ({"tol": 0.0}, "tol must be > 0"),
        ({"maxiter": 0}, "maxiter must be >= 1"),
        ({"sketch_size": 0}, "sketch_size must be >= 1"),
        ({"sketch_size": 2.5}, "integer"),
        ({"rng": "seed"}, "rng must be"),
    ],
)
def test_bad_input_raises(small, kwargs, needle):
    a, b = small
    args = {"a": a, "b": b, **kwargs}
    with pytest.raises(InvalidInputError, match=needle):
        lstsq(args.pop("a"), args.pop("b"), **args)


@pytest.mark.parametrize("where", ["A", "b", "sparse A"])
@pytest.mark.parametrize("value", [np.nan, np.inf])
def test_nan_or_inf_input_raises(small, where, value):
    a, b = small[0].copy(), small[1].copy()
    if where == "b":
        b[3] = value
    elif where == "A":
        a[3, 4] = value
    else:
        a = sp.csr_matrix(a)
        a.data[7] = value
    with pytest.raises(InvalidInputError, match="NaN or inf"):
        lstsq(a, b)


def test_zero_matrix_raises():
    with pytest.raises(InvalidInputError, match="zero"):
        lstsq(np.zeros((50, 3)), np.ones(50), rng=0)


def test_refinement_round_is_automatic_for_ill_conditioned_and_does_not_hurt(ill, well):
    """LSQR (refine is its option; CG checks the true gradient anyway): refine=None refines
    once exactly when cond(S A) > 1e6 (kappa = 1e8 here, 10 for
    `well`); the extra round restarts from the recomputed residual, so it adds iterations and
    keeps the error at the stable-solver level (kappa * eps ~ 2e-8 in ||A(x - x*)|| / ||r*||)."""
    a, b, xs = ill
    base = lstsq(a, b, solver="lsqr", refine=False, rng=5)
    auto = lstsq(a, b, solver="lsqr", rng=5)
    assert auto.iterations > base.iterations
    assert rel_errors(a, b, auto.x, xs)[0] < 1e-8
    a, b, xs = well
    assert (lstsq(a, b, solver="lsqr", rng=5).iterations
            == lstsq(a, b, solver="lsqr", refine=False, rng=5).iterations)  # fmt: skip
    forced = lstsq(a, b, solver="lsqr", refine=True, rng=5)
    assert forced.converged and rel_errors(a, b, forced.x, xs)[0] < 1e-10
