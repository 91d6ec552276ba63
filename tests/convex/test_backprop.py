"""Backprop baseline (:mod:`frugalml.convex.backprop`): it trains the SDP's own non-convex
objective, so it can never beat the SDP optimum (the global one), it descends, and it is
reproducible from its seed."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("torch")
pytest.importorskip("cvxpy")

from frugalml.convex import PolyNetwork, Polynomial, solve_poly_sdp
from frugalml.convex.backprop import BackpropResult, train_poly_backprop
from frugalml.errors import InvalidInputError

ACT = Polynomial.fit_relu()
REL = 1e-6  # Clarabel's optimum is accurate to ~1e-8 relative


def planted(n, d, seed, *, k=3, outputs=None, classify=False):
    gen = np.random.default_rng(seed)
    X = gen.standard_normal((n, d)) / np.sqrt(d)
    U = gen.standard_normal((d, k))
    U /= np.linalg.norm(U, axis=0)
    H = ACT(X @ U)
    if outputs is None:
        y = H @ np.array([1.0, -0.7, 0.5][:k]) + 0.1 * gen.standard_normal(n)
        return X, (np.where(y >= np.median(y), 1.0, -1.0) if classify else y)
    return X, H @ gen.standard_normal((k, outputs)) + 0.1 * gen.standard_normal((n, outputs))


def sdp_optimum(X, y, beta, loss="squared"):
    return solve_poly_sdp(X, y, activation=ACT, beta=beta, loss=loss, solver="clarabel").objective


@pytest.mark.parametrize(
    ("loss", "optimizer", "unit_norm"),
    [
        ("squared", "adam", True),
        ("squared", "sgd", True),
        ("squared", "adam", False),
        ("logistic", "adam", True),
        ("huber", "sgd", True),
    ],
)
def test_never_below_the_sdp_optimum(loss, optimizer, unit_norm):
    X, y = planted(60, 4, seed=1, classify=loss == "logistic")
    beta = 0.1
    opt = sdp_optimum(X, y, beta, loss)
    lr = 3e-2 if optimizer == "adam" else 0.5 / X.shape[0]
    for seed in range(3):
        res = train_poly_backprop(X, y, activation=ACT, beta=beta, width=10, loss=loss,
                                  optimizer=optimizer, lr=lr, momentum=0.9 * (optimizer == "sgd"),
                                  steps=800, rng=seed, unit_norm=unit_norm)  # fmt: skip
        assert not res.diverged
        assert res.objective >= opt * (1.0 - REL)
        # the reported objective is the network's own (a feasible point of the SDP's problem)
        net = res.network
        assert isinstance(net, PolyNetwork)
        np.testing.assert_allclose(np.linalg.norm(net.U, axis=0), 1.0, rtol=1e-12)
        assert net.objective(X, y, loss=loss, beta=beta) == pytest.approx(res.objective, rel=1e-12)


def test_adam_gets_close_on_an_easy_problem():
    X, y = planted(80, 3, seed=2)
    opt = sdp_optimum(X, y, 0.1)
    res = train_poly_backprop(X, y, activation=ACT, beta=0.1, width=8, lr=3e-2, steps=1500,
                              rng=0)  # fmt: skip
    assert opt * (1.0 - REL) <= res.objective <= 1.01 * opt


def test_vector_outputs():
    X, Y = planted(50, 3, seed=3, outputs=2)
    opt = sdp_optimum(X, Y, 0.05)
    res = train_poly_backprop(X, Y, activation=ACT, beta=0.05, width=8, steps=600, lr=3e-2, rng=1)
    assert res.network.alpha.shape == (8, 2)
    assert res.network.predict(X).shape == (50, 2)
    assert res.objective >= opt * (1.0 - REL)
    # the SDP problem separates over outputs, and so does its optimum
    parts = sdp_optimum(X, Y[:, 0], 0.05) + sdp_optimum(X, Y[:, 1], 0.05)
    assert opt == pytest.approx(parts, rel=1e-6)


def test_objective_decreases():
    X, y = planted(60, 4, seed=4)
    for optimizer, lr in (("adam", 1e-2), ("sgd", 0.3 / 60)):
        res = train_poly_backprop(X, y, activation=ACT, beta=0.1, width=10, optimizer=optimizer,
                                  lr=lr, steps=500, rng=0, record_every=50)  # fmt: skip
        h = np.array(res.history)
        assert len(h) == 500 // 50 + 1  # every 50 steps, and the final iterate
        assert h[-1] < 0.5 * h[0]
        assert res.objective <= h.min() * (1.0 + 1e-12)  # the best iterate is returned
        assert res.objective <= res.final_objective * (1.0 + 1e-12)
        assert res.steps == 500
        assert isinstance(res, BackpropResult) and res.seconds > 0.0
        assert "backprop" in res.summary()


def test_reproducible_from_seed():
    X, y = planted(40, 3, seed=5)
    kw = dict(activation=ACT, beta=0.1, width=6, steps=200)
    a = train_poly_backprop(X, y, rng=7, **kw)
    b = train_poly_backprop(X, y, rng=7, **kw)
    c = train_poly_backprop(X, y, rng=8, **kw)
    assert a.objective == b.objective
    assert a.history == b.history
    np.testing.assert_array_equal(a.network.U, b.network.U)
    np.testing.assert_array_equal(a.network.alpha, b.network.alpha)
    assert a.history != c.history
    gen1, gen2 = np.random.default_rng(3), np.random.default_rng(3)
    assert (
        train_poly_backprop(X, y, rng=gen1, **kw).objective
        == train_poly_backprop(X, y, rng=gen2, **kw).objective
    )


def test_sgd_divergence_is_reported():
    X, y = planted(40, 3, seed=6)
    res = train_poly_backprop(X, y, activation=ACT, beta=0.1, width=6, optimizer="sgd", lr=50.0,
                              steps=300, rng=0)  # fmt: skip
    assert res.diverged and res.steps < 300
    assert np.isfinite(res.objective)  # the best (finite) iterate is still returned


def test_threads_restored():
    import torch

    before = torch.get_num_threads()
    X, y = planted(30, 3, seed=7)
    train_poly_backprop(X, y, activation=ACT, beta=0.1, width=4, steps=5, rng=0, num_threads=1)
    assert torch.get_num_threads() == before


def test_bad_input():
    X, y = planted(30, 3, seed=8)
    kw = dict(activation=ACT, beta=0.1, width=4, steps=5)
    cases = [
        (dict(width=0), "width"),
        (dict(width=2.5), "width"),
        (dict(optimizer="rmsprop"), "optimizer"),
        (dict(loss="cross-entropy"), "loss"),
        (dict(beta=0.0), "beta"),
        (dict(lr=-1.0), "lr"),
        (dict(steps=0), "steps"),
        (dict(momentum=1.0), "momentum"),
        (dict(unit_norm="yes"), "unit_norm"),
        (dict(activation=(0.0, 1.0, 0.0)), "non-zero"),
        (dict(activation="relu"), "activation"),
        (dict(rng=-1), "seed"),
        (dict(record_every=0), "record_every"),
    ]
    for override, match in cases:
        with pytest.raises(InvalidInputError, match=match):
            train_poly_backprop(X, y, **{**kw, **override})
    with pytest.raises(InvalidInputError, match="labels"):
        train_poly_backprop(X, y, loss="logistic", **kw)
    with pytest.raises(InvalidInputError, match="same number of rows"):
        train_poly_backprop(X, y[:-1], **kw)
    with pytest.raises(InvalidInputError, match="NaN"):
        train_poly_backprop(np.where(X > 1.0, np.nan, X), y, **kw)
