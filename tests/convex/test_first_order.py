"""The first-order SDP solver against the interior-point solution of the same SDP."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("torch")
pytest.importorskip("cvxpy")

from frugalml.convex import Polynomial, decompose, solve_poly_sdp
from frugalml.convex.first_order import first_order_sdp
from frugalml.errors import InvalidInputError

from ._planted import planted_data


@pytest.mark.parametrize(
    ("loss", "seed"), [("squared", 0), ("squared", 1), ("huber", 2), ("logistic", 3)]
)
def test_matches_clarabel_objective(loss, seed):
    X, y = planted_data(120, 6, seed, classify=loss == "logistic")
    act = Polynomial.fit_relu()
    ref = solve_poly_sdp(X, y, activation=act, beta=0.1, loss=loss, solver="clarabel")
    got = solve_poly_sdp(X, y, activation=act, beta=0.1, loss=loss, solver="first-order",
                         eps=1e-9)  # fmt: skip
    assert got.solver == "first-order"
    # both are within their tolerances of the same optimum
    assert got.objective == pytest.approx(ref.objective, rel=1e-5)
    # and the decomposed network reproduces the first-order objective (a feasible point)
    net = decompose(got)
    assert net.objective(X, y, loss=loss, beta=0.1) == pytest.approx(got.objective, rel=1e-5)


def test_vector_outputs_equal_separate_solves():
    X, y1 = planted_data(80, 5, 4)
    _, y2 = planted_data(80, 5, 5)
    act = Polynomial(1.0, 0.5, 0.1)
    both = first_order_sdp(X, np.column_stack([y1, y2]), a=1.0, b=0.5, c=0.1, beta=0.05,
                           tol=1e-9)  # fmt: skip
    one = first_order_sdp(X, y1, a=1.0, b=0.5, c=0.1, beta=0.05, tol=1e-9)
    two = first_order_sdp(X, y2, a=1.0, b=0.5, c=0.1, beta=0.05, tol=1e-9)
    assert both.objective == pytest.approx(one.objective + two.objective, rel=1e-6)
    assert both.Z.shape == (2, 6, 6)
    assert act(0.0) == pytest.approx(0.1)


def test_iterates_are_feasible():
    X, y = planted_data(60, 4, 6)
    # tol at the documented floor of the certified gap (~1e-8 relative, set by the L-BFGS-B
    # refinement): at 1e-9 the gap stalled at 1.8e-9 on some CPUs (OpenBLAS kernels differ)
    res = first_order_sdp(X, y, a=1.0, b=0.0, c=0.0, beta=0.2, tol=1e-8)
    for Z in (res.Z[0], res.Zp[0]):
        assert np.linalg.eigvalsh(Z).min() >= -1e-10
        assert abs(np.trace(Z[:-1, :-1]) - Z[-1, -1]) <= 1e-6 * max(Z[-1, -1], 1.0)
    assert res.converged and res.infeasibility <= 1e-8


def test_threads_restored():
    import torch

    before = torch.get_num_threads()
    X, y = planted_data(40, 3, 7)
    first_order_sdp(X, y, a=1.0, b=0.0, c=0.0, beta=0.2, max_iter=50, threads=1)
    assert torch.get_num_threads() == before


def test_bad_input():
    X, y = planted_data(30, 3, 8)
    act = Polynomial.fit_relu()
    with pytest.raises(InvalidInputError, match="smooth"):
        solve_poly_sdp(X, y, activation=act, beta=0.1, loss="absolute", solver="first-order")
    with pytest.raises(InvalidInputError, match="beta"):
        first_order_sdp(X, y, a=1.0, b=0.0, c=0.0, beta=0.0)
    with pytest.raises(InvalidInputError, match="labels"):
        first_order_sdp(X, y, a=1.0, b=0.0, c=0.0, beta=0.1, loss="logistic")
    with pytest.raises(InvalidInputError):
        first_order_sdp(X, y[:-1], a=1.0, b=0.0, c=0.0, beta=0.1)
    bad = X.copy()
    bad[0, 0] = np.nan
    with pytest.raises(InvalidInputError):
        first_order_sdp(bad, y, a=1.0, b=0.0, c=0.0, beta=0.1)
