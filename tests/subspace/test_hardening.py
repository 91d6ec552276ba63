"""subspace hardening: memory guards of the problem generators, input checks of the metrics,
readable result objects."""

from __future__ import annotations

import numpy as np
import pytest

from frugalml.errors import InvalidInputError, TooLargeError
from frugalml.subspace import (
    bilinear_game,
    constrained_least_squares,
    extragradient,
    mode_metrics,
    quadratic_game,
    sesop_minimize,
)


@pytest.mark.parametrize(
    ("make", "match"),
    [
        (lambda: bilinear_game(2000), "n = 2000 bilinear game"),
        (lambda: quadratic_game(2000), "n = 2000, m = 2000 quadratic game"),
        (lambda: constrained_least_squares(2000, 3000, 10), "constrained least-squares"),
    ],
)
def test_problem_generators_refuse_sizes_beyond_memory(make, match, monkeypatch):
    # 2000 x 2000 float64 is 32 MB per matrix; with 100 MB available each generator refuses
    monkeypatch.setenv("FRUGALML_MEMORY_LIMIT", str(100 * 2**20))
    with pytest.raises(TooLargeError, match=match) as info:
        make()
    assert "--dim" in str(info.value) and "available" in str(info.value)


def test_generators_within_memory_still_work(monkeypatch):
    monkeypatch.setenv("FRUGALML_MEMORY_LIMIT", str(100 * 2**20))
    p = bilinear_game(50, 10.0)
    assert p.n == 50 and p.distance(p.x_star, p.y_star) == 0.0


def test_constrained_kappa_below_one_is_refused():
    with pytest.raises(InvalidInputError, match="kappa must be >= 1"):
        constrained_least_squares(10, 15, 3, kappa=0.5)


def test_mode_metrics_checks_its_inputs():
    centers = np.zeros((3, 2))
    with pytest.raises(InvalidInputError, match="samples"):
        mode_metrics(np.full((5, 2), np.nan), centers, 0.1)
    with pytest.raises(InvalidInputError, match="std"):
        mode_metrics(np.zeros((5, 2)), centers, -1.0)
    with pytest.raises(InvalidInputError, match="centers"):
        mode_metrics(np.zeros((5, 2)), np.zeros(3), 0.1)
    assert mode_metrics(np.zeros((5, 2)), centers, 0.1)["quality"] == 1.0


def test_results_print_their_summary_and_repr_by_shape():
    p = bilinear_game(20, 5.0)
    r = extragradient(p, np.zeros(20), np.zeros(20), max_iter=50)
    assert str(r) == r.summary()
    text = repr(r)
    assert text.startswith("SaddleResult(") and "x=array(shape=(20,), dtype=float64)" in text
    assert len(text) < 1000
    s = sesop_minimize(lambda x: float(x @ x), lambda x: 2 * x, np.ones(30))
    assert str(s) == s.summary() and "x=array(shape=(30,)" in repr(s)
