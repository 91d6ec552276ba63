"""Tests of the polynomial-activation SDP (Bartan & Pilanci, arXiv:2101.02429) and its neural
decomposition: exact decompositions, objective equality, global optimality against the teacher
and against local search (torch Adam), solver agreement, vector outputs, the convolutional
variant, the torch export and input validation."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

pytest.importorskip("cvxpy")

from frugalml.convex import (
    PolyNetwork,
    Polynomial,
    SolverFailedError,
    decompose,
    rank_one_decomposition,
    solve_poly_conv_sdp,
    solve_poly_sdp,
)
from frugalml.convex.poly_sdp import lifted_moments, loss_value
from frugalml.errors import FrugalError, InvalidInputError

ACT = Polynomial.fit_relu()
REGRESSION = ("squared", "absolute", "huber")
CLASSIFICATION = ("logistic", "hinge")
BETA = 0.1


def planted(seed: int = 0, n: int = 60, d: int = 4, m: int = 3, loss: str = "squared", k=None):
    """Teacher network with m neurons (unit u's), noisy targets (signs for classification)."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d))
    U = rng.standard_normal((d, m))
    U /= np.linalg.norm(U, axis=0)
    alpha = rng.standard_normal((m,) if k is None else (m, k))
    noise = 0.1 * rng.standard_normal((n,) if k is None else (n, k))
    y = ACT(X @ U) @ alpha + noise
    if loss in CLASSIFICATION:
        y = np.where(y >= np.median(y), 1.0, -1.0)
    return X, y, PolyNetwork(U, alpha, ACT)


def lifted_matrix(rng: np.random.Generator, d: int, rank: int) -> np.ndarray:
    """A PSD (d+1) x (d+1) matrix with tr(Z1) = Z4 of the given rank (general position)."""
    A = rng.standard_normal((d + 1, rank))
    Z = A @ A.T
    gamma = np.sqrt(np.trace(Z[:d, :d]) / Z[d, d])  # D Z D with D = diag(1, ..., 1, gamma)
    Z[d, :] *= gamma
    Z[:, d] *= gamma
    return Z


def rel(a: float, b: float) -> float:
    return abs(a - b) / max(abs(b), 1e-12)


# ------------------------------------------------------------------------- activation


def test_polynomial_presets_and_validation():
    fitted = Polynomial.fit(lambda t: max(t, 0.0))
    for name in ("a", "b", "c"):
        assert getattr(fitted, name) == pytest.approx(getattr(ACT, name), abs=1e-10)
    normal = Polynomial.fit_relu("normal")
    fitted_n = Polynomial.fit(lambda t: max(t, 0.0), "normal")
    for name in ("a", "b", "c"):
        assert getattr(fitted_n, name) == pytest.approx(getattr(normal, name), abs=1e-8)
    sw = Polynomial.fit_swish()
    assert sw.b == pytest.approx(0.5, abs=1e-10)  # odd part of swish is t/2
    assert ACT(np.array([0.0, 1.0])) == pytest.approx([3 / 32, 15 / 32 + 0.5 + 3 / 32])
    assert "t^2" in ACT.summary()
    with pytest.raises(InvalidInputError, match="non-zero"):
        Polynomial(0.0, 1.0, 0.0)
    with pytest.raises(InvalidInputError, match="finite"):
        Polynomial(1.0, float("nan"))
    with pytest.raises(InvalidInputError, match="domain"):
        Polynomial.fit_relu("cauchy")


# ------------------------------------------------------------------------- decomposition


def check_decomposition(Z: np.ndarray, W: np.ndarray) -> None:
    scale = np.abs(Z).max()
    assert W.shape[1] <= Z.shape[0]
    assert np.abs(W @ W.T - Z).max() <= 1e-9 * scale
    v_norm2 = np.sum(W[:-1] ** 2, axis=0)
    assert np.abs(v_norm2 - W[-1] ** 2).max() <= 1e-9 * scale


@settings(max_examples=40, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    d=st.integers(1, 9),
    rank_frac=st.floats(0.0, 1.0),
)
def test_rank_one_decomposition_general(seed, d, rank_frac):
    rng = np.random.default_rng(seed)
    rank = 1 + round(rank_frac * d)  # 1 .. d+1
    Z = lifted_matrix(rng, d, rank)
    W = rank_one_decomposition(Z)
    check_decomposition(Z, W)
    assert W.shape[1] == rank


@pytest.mark.parametrize("seed", range(5))
def test_rank_one_decomposition_from_neurons(seed):
    rng = np.random.default_rng(seed)
    d, m = 5, 1 + seed
    U = rng.standard_normal((d, m))
    U /= np.linalg.norm(U, axis=0)
    weights = rng.uniform(0.1, 2.0, m)
    lifted = np.vstack([U, np.ones(m)])
    Z = (lifted * weights) @ lifted.T
    W = rank_one_decomposition(Z)
    check_decomposition(Z, W)
    assert W.shape[1] == min(m, d + 1)


def test_rank_one_decomposition_edge_cases():
    assert rank_one_decomposition(np.zeros((4, 4))).shape == (4, 0)
    u = np.array([0.6, 0.8])
    w = np.append(u, 1.0)
    W = rank_one_decomposition(2.0 * np.outer(w, w))
    assert W.shape == (3, 1)
    assert np.abs(W @ W.T - 2.0 * np.outer(w, w)).max() < 1e-12
    with pytest.raises(InvalidInputError):
        rank_one_decomposition(np.zeros((3, 2)))


def test_lift_matches_network_dense_and_conv():
    """y_hat_i = <C o S_i, Z - Z'> with Z = sum_{alpha>0} alpha [u;1][u;1]^T etc. equals f(x)."""
    rng = np.random.default_rng(3)
    for filter_size, stride, d in ((None, None, 5), (3, 1, 8), (3, 3, 9), (4, 2, 10)):
        f = d if filter_size is None else filter_size
        U = rng.standard_normal((f, 4))
        U /= np.linalg.norm(U, axis=0)
        alpha = np.array([1.5, -0.7, 0.3, -2.0])
        net = PolyNetwork(U, alpha, ACT, filter_size=filter_size, stride=stride)
        X = rng.standard_normal((7, d))
        lifted = np.vstack([U, np.ones(4)])
        Zdiff = (lifted * alpha) @ lifted.T  # Z - Z'
        C = np.full((f + 1, f + 1), ACT.a)
        C[:f, f] = C[f, :f] = ACT.b / 2
        C[f, f] = ACT.c
        S = lifted_moments(X, filter_size, stride)
        yhat = np.einsum("nij,ij->n", S, C * Zdiff)
        assert np.abs(yhat - net.predict(X)).max() < 1e-12


# ------------------------------------------------------------------------- SDP + decomposition


@pytest.mark.parametrize("loss", REGRESSION + CLASSIFICATION)
def test_decomposed_objective_equals_sdp(loss):
    X, y, _ = planted(1, loss=loss)
    sol = solve_poly_sdp(X, y, activation=ACT, beta=BETA, loss=loss)
    assert sol.status.startswith("optimal")
    net = decompose(sol)
    d = X.shape[1]
    assert 1 <= net.width <= 2 * (d + 1)
    assert np.allclose(np.linalg.norm(net.U, axis=0), 1.0, atol=1e-12)
    assert rel(net.objective(X, y, loss=loss, beta=BETA), sol.objective) < 1e-6
    assert rel(sol.data_objective(), sol.objective) < 1e-6
    scale = np.abs(sol.predict(X)).max()
    assert np.abs(net.predict(X) - sol.predict(X)).max() < 1e-6 * max(scale, 1.0)
    assert "objective" in sol.summary() and "neurons" in net.summary()


@pytest.mark.parametrize("loss", ["squared", "logistic"])
def test_polish_keeps_objective(loss):
    X, y, _ = planted(2, loss=loss)
    sol = solve_poly_sdp(X, y, activation=ACT, beta=BETA, loss=loss)
    net = decompose(sol)
    polished = decompose(sol, polish=True)
    base = net.objective(X, y, loss=loss, beta=BETA)
    value = polished.objective(X, y, loss=loss, beta=BETA)
    assert polished.width <= net.width
    assert value <= base * (1 + 1e-6)
    assert value >= sol.objective * (1 - 1e-6)


def adam_objective(X, y, loss, beta, width, seed, steps=1500, lr=0.02):
    """Local search on the non-convex objective (unit-norm u_j = w_j / ||w_j||) with Adam."""
    torch = pytest.importorskip("torch")
    gen = torch.Generator().manual_seed(seed)
    Xt = torch.as_tensor(X)
    yt = torch.as_tensor(y)
    W = torch.randn(X.shape[1], width, generator=gen, dtype=torch.float64, requires_grad=True)
    alpha = (0.1 * torch.randn(width, generator=gen, dtype=torch.float64)).requires_grad_()
    opt = torch.optim.Adam([W, alpha], lr=lr)
    for _ in range(steps):
        opt.zero_grad()
        pre = Xt @ (W / W.norm(dim=0))
        out = ((ACT.a * pre + ACT.b) * pre + ACT.c) @ alpha
        if loss == "squared":
            data = 0.5 * ((out - yt) ** 2).sum()
        else:
            data = torch.nn.functional.softplus(-yt * out).sum()
        (data + beta * alpha.abs().sum()).backward()
        opt.step()
    with torch.no_grad():
        U = (W / W.norm(dim=0)).numpy()
    return PolyNetwork(U, alpha.detach().numpy(), ACT).objective(X, y, loss=loss, beta=beta)


@pytest.mark.parametrize("loss", ["squared", "logistic"])
def test_sdp_is_global_lower_bound(loss):
    X, y, teacher = planted(4, loss=loss)
    sol = solve_poly_sdp(X, y, activation=ACT, beta=BETA, loss=loss)
    assert sol.objective <= teacher.objective(X, y, loss=loss, beta=BETA) * (1 + 1e-6)
    width = 2 * (X.shape[1] + 1)
    local = [adam_objective(X, y, loss, BETA, width, seed) for seed in range(3)]
    assert sol.objective <= min(local) * (1 + 1e-6)
    # local search reaches the neighbourhood of the optimum: the comparison is not vacuous
    assert min(local) <= 1.1 * sol.objective


def test_scs_agrees_with_clarabel():
    X, y, _ = planted(5)
    clar = solve_poly_sdp(X, y, activation=ACT, beta=BETA, solver="clarabel")
    scs = solve_poly_sdp(X, y, activation=ACT, beta=BETA, solver="scs")
    assert scs.solver == "scs"
    assert rel(scs.objective, clar.objective) < 1e-3
    net = decompose(scs)
    assert rel(net.objective(X, y, beta=BETA), clar.objective) < 1e-3


@pytest.mark.parametrize("loss", ["squared", "hinge"])
def test_vector_outputs_separate(loss):
    X, y, _ = planted(6, loss=loss, k=2)
    joint = solve_poly_sdp(X, y, activation=ACT, beta=BETA, loss=loss)
    assert joint.Z.shape == (2, 5, 5) and joint.vector_output
    parts = [solve_poly_sdp(X, y[:, j], activation=ACT, beta=BETA, loss=loss) for j in range(2)]
    assert rel(joint.objective, sum(p.objective for p in parts)) < 1e-6
    net = decompose(joint)
    assert net.alpha.ndim == 2 and net.alpha.shape[1] == 2
    assert np.all(np.count_nonzero(net.alpha, axis=1) == 1)
    assert net.width <= 2 * 2 * (X.shape[1] + 1)
    assert rel(net.objective(X, y, loss=loss, beta=BETA), joint.objective) < 1e-6
    assert joint.predict(X).shape == (X.shape[0], 2)


def test_conv_single_patch_equals_dense():
    X, y, _ = planted(7)
    dense = solve_poly_sdp(X, y, activation=ACT, beta=BETA)
    conv = solve_poly_conv_sdp(X, y, filter_size=X.shape[1], activation=ACT, beta=BETA)
    assert rel(conv.objective, dense.objective) < 1e-7
    assert np.abs(conv.predict(X) - dense.predict(X)).max() < 1e-5


@pytest.mark.parametrize(("filter_size", "stride", "d"), [(3, 1, 8), (3, 3, 9)])
def test_conv_decomposition(filter_size, stride, d):
    rng = np.random.default_rng(8)
    X = rng.standard_normal((50, d))
    teacher = PolyNetwork(
        np.linalg.qr(rng.standard_normal((filter_size, 2)))[0],
        np.array([1.0, -0.5]),
        ACT,
        filter_size=filter_size,
        stride=stride,
    )
    y = teacher.predict(X) + 0.05 * rng.standard_normal(50)
    sol = solve_poly_conv_sdp(
        X, y, filter_size=filter_size, stride=stride, activation=ACT, beta=BETA
    )
    assert sol.Z.shape == (1, filter_size + 1, filter_size + 1)
    net = decompose(sol)
    assert net.filter_size == filter_size and net.width <= 2 * (filter_size + 1)
    assert rel(net.objective(X, y, beta=BETA), sol.objective) < 1e-6
    assert sol.objective <= teacher.objective(X, y, beta=BETA) * (1 + 1e-6)
    torch = pytest.importorskip("torch")
    out = net.to_torch()(torch.as_tensor(X)).detach().numpy()
    assert np.abs(out - net.predict(X)).max() < 1e-10


@pytest.mark.parametrize("k", [None, 2])
def test_to_torch_matches_predict(k):
    torch = pytest.importorskip("torch")
    X, y, _ = planted(9, k=k)
    net = decompose(solve_poly_sdp(X, y, activation=ACT, beta=BETA))
    module = net.to_torch()
    out = module(torch.as_tensor(X, dtype=torch.float64)).detach().numpy()
    assert out.shape == net.predict(X).shape
    assert np.abs(out - net.predict(X)).max() < 1e-10
    assert sum(p.numel() for p in module.parameters()) == net.U.size + net.alpha.size


def test_numpy_losses():
    yhat = np.array([0.0, 2.0, -3.0])
    y = np.array([1.0, -1.0, -1.0])
    assert loss_value(yhat, y, "squared") == pytest.approx(0.5 * (1 + 9 + 4))
    assert loss_value(yhat, y, "absolute") == pytest.approx(1 + 3 + 2)
    assert loss_value(yhat, y, "huber", 1.0) == pytest.approx(0.5 + 2.5 + 1.5)
    assert loss_value(yhat, y, "hinge") == pytest.approx(1 + 3 + 0)
    assert loss_value(yhat, y, "logistic") == pytest.approx(np.sum(np.log1p(np.exp(-y * yhat))))


# ------------------------------------------------------------------------- errors


def test_bad_input():
    X, y, _ = planted(10)
    kw = {"activation": ACT, "beta": BETA}
    with pytest.raises(InvalidInputError, match="beta"):
        solve_poly_sdp(X, y, activation=ACT, beta=0.0)
    with pytest.raises(InvalidInputError, match="beta"):
        solve_poly_sdp(X, y, activation=ACT, beta=-1.0)
    Xn = X.copy()
    Xn[3, 1] = np.nan
    with pytest.raises(InvalidInputError, match="X contains 1 NaN"):
        solve_poly_sdp(Xn, y, **kw)
    for loss in CLASSIFICATION:
        with pytest.raises(InvalidInputError, match=r"labels y in \{-1, \+1\}"):
            solve_poly_sdp(X, (y > 0).astype(float), loss=loss, **kw)
    with pytest.raises(InvalidInputError, match="same number of rows"):
        solve_poly_sdp(X, y[:-1], **kw)
    with pytest.raises(InvalidInputError, match="dimension"):
        solve_poly_sdp(X[0], y, **kw)
    with pytest.raises(InvalidInputError, match="loss"):
        solve_poly_sdp(X, y, loss="cross-entropy", **kw)
    with pytest.raises(InvalidInputError, match="activation"):
        solve_poly_sdp(X, y, activation="relu", beta=BETA)
    big = np.zeros((3, 400))
    with pytest.raises(InvalidInputError, match="first-order"):
        solve_poly_sdp(big, np.zeros(3), **kw)
    with pytest.raises(InvalidInputError, match="first-order"):
        solve_poly_conv_sdp(X, y, filter_size=2, solver="first-order", **kw)
    with pytest.raises(InvalidInputError, match="filter_size"):
        solve_poly_conv_sdp(X, y, filter_size=X.shape[1] + 1, **kw)
    with pytest.raises(InvalidInputError, match="pooling"):
        solve_poly_conv_sdp(X, y, filter_size=2, pooling="max", **kw)
    with pytest.raises(InvalidInputError, match="PolySDPSolution"):
        decompose(np.eye(5))


def test_solver_failures_raise_frugal_errors(monkeypatch):
    import cvxpy as cp

    X, y, _ = planted(11)

    def fail(self, *args, **kwargs):
        raise cp.error.SolverError("boom")

    monkeypatch.setattr(cp.Problem, "solve", fail)
    with pytest.raises(SolverFailedError, match="solver='scs'") as info:
        solve_poly_sdp(X, y, activation=ACT, beta=BETA)
    assert isinstance(info.value, FrugalError)

    def infeasible(self, *args, **kwargs):
        self._status = "infeasible"

    monkeypatch.setattr(cp.Problem, "solve", infeasible)
    # the lifted SDP is always feasible: a reported infeasibility is a solver failure
    with pytest.raises(SolverFailedError, match=r"'infeasible'.*solver='clarabel'") as info:
        solve_poly_sdp(X, y, activation=ACT, beta=BETA, solver="scs")
    assert info.value.status == "infeasible"


def test_inaccurate_solve_warns():
    X, y, _ = planted(12)
    with pytest.warns(RuntimeWarning, match="stopped short"):
        sol = solve_poly_sdp(
            X, y, activation=ACT, beta=BETA, solver="scs", solver_options={"max_iters": 5}
        )
    assert sol.status == "optimal_inaccurate"


def test_import_is_light():
    code = (
        "import sys, frugalml.convex; "
        "print('cvxpy' in sys.modules, 'torch' in sys.modules, 'scipy' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False", "False"]


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore:the .* solver stopped short:RuntimeWarning")
@pytest.mark.parametrize("loss", REGRESSION + CLASSIFICATION)
def test_larger_problem_objective_matches(loss):
    X, y, _ = planted(13, n=200, d=10, m=5, loss=loss)
    sol = solve_poly_sdp(X, y, activation=ACT, beta=BETA, loss=loss)
    net = decompose(sol)
    assert net.width <= 2 * 11
    assert rel(net.objective(X, y, loss=loss, beta=BETA), sol.objective) < 1e-6
    scs = solve_poly_sdp(X, y, activation=ACT, beta=BETA, loss=loss, solver="scs", eps=1e-6)
    assert rel(scs.objective, sol.objective) < 1e-3


def test_large_beta_gives_empty_network():
    X, y, _ = planted(14)
    sol = solve_poly_sdp(X, y, activation=ACT, beta=1e4)
    net = decompose(sol, tol=1e-6)
    assert net.width <= 2 * (X.shape[1] + 1)
    assert rel(net.objective(X, y, beta=1e4), sol.objective) < 1e-6
    assert sol.objective == pytest.approx(0.5 * np.sum(y**2), rel=1e-6)


@pytest.mark.slow
def test_build_is_vectorised():
    rng = np.random.default_rng(15)
    X = rng.standard_normal((1000, 20)) / np.sqrt(20)
    y = rng.standard_normal(1000)
    sol = solve_poly_sdp(X, y, activation=ACT, beta=0.01, solver="scs")
    assert sol.build_seconds < 1.0


def test_progress_phases():
    """``progress(message, fraction)`` at the phases of the solve; the result is the same."""
    X, y, _ = planted(13)
    calls = []
    sol = solve_poly_sdp(X, y, activation=ACT, beta=BETA,
                         progress=lambda m, f: calls.append((m, f)))  # fmt: skip
    assert calls == [("building SDP", 0.0), ("solving (clarabel)", 0.1), ("done", 1.0)]
    assert sol.objective == solve_poly_sdp(X, y, activation=ACT, beta=BETA).objective
    calls.clear()
    solve_poly_conv_sdp(X, y, filter_size=2, activation=ACT, beta=BETA, solver="scs",
                        progress=lambda m, f: calls.append((m, f)))  # fmt: skip
    assert [m for m, _ in calls] == ["building SDP", "solving (scs)", "done"]


def test_old_module_paths_still_import():
    """The losses and the lift moved to their own modules; poly_sdp still exports them."""
    from frugalml.convex import lift, losses, poly_sdp
    from frugalml.convex.backprop import torch_loss

    assert poly_sdp.loss_value is losses.loss_value and poly_sdp.LOSSES is losses.LOSSES
    assert poly_sdp.lifted_moments is lift.lifted_moments and poly_sdp.patches is lift.patches
    assert poly_sdp.sdp_nbytes is lift.sdp_nbytes and torch_loss is losses.torch_loss
