"""Hardening of the coded area: wrong-length x0, diverging ES runs, memory guards, and the
readable result objects (repr by shape, print = summary)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from frugalml.coded import GaussianMDS, PolarCode, ProductCode, VandermondeCode
from frugalml.coded.dfo import (
    CodedES,
    DivergedError,
    DivergenceWarning,
    Quadratic,
    Rosenbrock,
    WaitAllES,
)
from frugalml.coded.simulate import default_schemes, simulate_latency
from frugalml.errors import InvalidInputError, TooLargeError
from frugalml.runtime import ShiftedExponential


@pytest.mark.parametrize("fn", [Quadratic(8), Rosenbrock(8)])
def test_x0_of_the_wrong_length_is_refused(fn):
    with pytest.raises(InvalidInputError, match=r"x0 has 5 entries .* dimension 8"):
        CodedES(fn, np.zeros(5), n_workers=8)
    with pytest.raises(InvalidInputError, match="dimension 8"):
        WaitAllES(fn, np.zeros(9), n_workers=8)


def test_objective_failing_at_x0_is_an_input_error():
    a = np.eye(3)

    def f(x):
        return float(x @ a @ x)  # only 3-vectors

    with pytest.raises(InvalidInputError, match=r"failed at x0 of shape \(4,\)"):
        CodedES(f, np.zeros(4), n_workers=8)


def test_rosenbrock_with_default_step_is_reported_as_diverged():
    f = Rosenbrock(4)
    es = CodedES(f, f.x0, n_workers=8, rng=0)  # default step 0.1, plain gradient steps
    with pytest.warns(DivergenceWarning, match="diverged at iteration"):
        res = es.run(200)
    assert res.diverged and res.stopped_by == "diverged"
    assert res.iterations < 200  # stopped, not run on to 1e95
    assert np.all(np.isfinite(res.x))
    assert "DIVERGED" in res.summary()
    with pytest.raises(DivergedError, match="lower the step"):
        CodedES(f, f.x0, n_workers=8, rng=0, on_divergence="raise").run(200)


def test_rosenbrock_with_adam_converges_without_a_divergence_flag():
    f = Rosenbrock(4)
    with warnings.catch_warnings():
        warnings.simplefilter("error", DivergenceWarning)
        res = CodedES(f, f.x0, n_workers=8, adam=True, rng=0).run(150)
    assert not res.diverged and res.stopped_by == "iterations"
    assert res.loss < 0.1 * f(f.x0)


def test_quadratic_with_a_huge_step_stops_at_the_growth_bound():
    f = Quadratic(8)
    with pytest.warns(DivergenceWarning):
        res = CodedES(f, f.x0, n_workers=16, step=100.0, rng=0).run(300)
    f0 = res.losses[0]
    assert res.diverged and res.loss > f0 + 1e6 * f0 and np.isfinite(res.loss)
    assert np.all(res.losses[:-1] <= f0 + 1e6 * f0)  # it stopped at the first crossing


def test_non_finite_loss_at_an_iterate_is_divergence():
    def f(x):
        return float(x @ x) if np.all(np.abs(x) < 5) else float("inf")

    with pytest.warns(DivergenceWarning, match="f\\(x\\) = inf"):
        res = CodedES(f, np.ones(4), n_workers=8, step=10.0, max_growth=None, rng=0).run(20)
    assert res.diverged and res.iterations == 1


def test_a_converging_run_is_not_flagged():
    f = Quadratic(8)
    res = CodedES(f, f.x0, n_workers=16, rng=0).run(60)
    assert not res.diverged and res.loss < 1e-3 * res.losses[0]


@pytest.mark.parametrize(
    "make",
    [
        lambda: PolarCode(4096, 2048).generator,
        lambda: GaussianMDS(4096, 2048),
        lambda: VandermondeCode(4096, 2048),
        lambda: Quadratic(2000),
        lambda: CodedES(lambda x: 0.0, np.zeros(4), n_workers=4096),  # polar: N x N
        lambda: simulate_latency(ShiftedExponential(), default_schemes(8, 4), k=4, trials=10**6),
    ],
)
def test_large_sizes_are_refused_before_allocating(monkeypatch, make):
    monkeypatch.setenv("FRUGALML_MEMORY_LIMIT", str(20 * 2**20))
    with pytest.raises(TooLargeError, match="would need about"):
        make()


def test_results_repr_by_shape_and_print_the_summary():
    f = Quadratic(4)
    res = CodedES(f, f.x0, n_workers=8, rng=0).run(3)
    text = repr(res)
    assert "x=array(shape=(4,), dtype=float64)" in text and "diverged=False" in text
    assert str(res) == res.summary()
    code = ProductCode(PolarCode(4, 2), PolarCode(4, 2))
    dec = code.decode(np.zeros((4, 4, 2)), np.ones((4, 4), dtype=bool))
    assert "blocks=array(shape=(2, 2, 2)" in repr(dec)
    assert str(dec) == dec.summary() and "4/4 product blocks recovered from 16" in dec.summary()
    (lat, *_) = simulate_latency(ShiftedExponential(), default_schemes(8, 4), k=4, trials=20)
    assert "samples=array(shape=(20,)" in repr(lat) and "p99" in str(lat)
