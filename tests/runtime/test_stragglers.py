"""Straggler models: order-statistic expectations, sampling, traces and input checks."""

from __future__ import annotations

import itertools
import json
import math

import numpy as np
import pytest

from frugalml.errors import InvalidInputError
from frugalml.runtime import (
    BimodalStragglers,
    Pareto,
    ShiftedExponential,
    StragglerModel,
    TraceReplay,
    model_from_spec,
)

TRIALS = 20_000
KN = [(1, 1), (1, 5), (3, 5), (5, 5), (7, 20), (20, 20)]


def monte_carlo_order_statistic(model, k, n, trials=TRIALS, seed=0):
    """Mean and standard error of the k-th smallest of n samples, over ``trials`` runs."""
    draws = model.sample(n * trials, rng=seed).reshape(trials, n)
    kth = np.sort(draws, axis=1)[:, k - 1]
    return float(kth.mean()), float(kth.std(ddof=1) / math.sqrt(trials))


def assert_matches_monte_carlo(model, k, n, expected, seed=0):
    mean, se = monte_carlo_order_statistic(model, k, n, seed=seed)
    assert abs(mean - expected) < 4 * se, (
        f"{model!r}: E[T_({k}:{n})] = {expected:.6f}, Monte-Carlo mean {mean:.6f} "
        f"over {TRIALS} trials, standard error {se:.6f} (allowed: 4 SE = {4 * se:.6f})"
    )


# -- closed forms against the generic integral ------------------------------------------------


@pytest.mark.parametrize(
    "model",
    [
        ShiftedExponential(shift=0.5, rate=2.0),
        ShiftedExponential(shift=0.0, rate=0.1),
        Pareto(scale=1.5, alpha=2.5),
        Pareto(scale=2.0, alpha=1.2),
    ],
    ids=repr,
)
@pytest.mark.parametrize(("k", "n"), KN)
def test_closed_form_equals_generic_integral(model, k, n):
    closed = model.expected_order_statistic(k, n)
    generic = StragglerModel.expected_order_statistic(model, k, n)
    assert closed == pytest.approx(generic, rel=1e-6)


def test_shifted_exponential_closed_form_by_hand():
    # E[T_(k:n)] = shift + (1/n + 1/(n-1) + ... + 1/(n-k+1)) / rate
    model = ShiftedExponential(shift=1.0, rate=4.0)
    assert model.expected_order_statistic(1, 1) == pytest.approx(1.25)
    assert model.expected_order_statistic(2, 3) == pytest.approx(1.0 + (1 / 3 + 1 / 2) / 4)


def test_pareto_closed_form_by_hand():
    # min of n Pareto(scale, alpha) is Pareto(scale, n*alpha): mean = scale*n*alpha/(n*alpha-1)
    model = Pareto(scale=2.0, alpha=1.5)
    assert model.expected_order_statistic(1, 4) == pytest.approx(2.0 * 6.0 / 5.0)
    # a single task: the Pareto mean scale*alpha/(alpha-1)
    assert model.expected_order_statistic(1, 1) == pytest.approx(2.0 * 1.5 / 0.5)


def test_cdfs_match_textbook_forms():
    t = np.array([0.0, 0.4, 0.5, 0.7, 1.0, 3.0, 10.0])
    se = ShiftedExponential(shift=0.5, rate=2.0)
    want = np.where(t < 0.5, 0.0, 1.0 - np.exp(-2.0 * (t - 0.5)))
    np.testing.assert_allclose(se.cdf(t), want, rtol=1e-12, atol=0)
    pa = Pareto(scale=0.7, alpha=3.0)
    want = np.where(t < 0.7, 0.0, 1.0 - (0.7 / np.maximum(t, 0.7)) ** 3.0)
    np.testing.assert_allclose(pa.cdf(t), want, rtol=1e-12, atol=0)


# -- Monte-Carlo ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "model",
    # Pareto with alpha > 2 so that every order statistic has a finite variance
    [ShiftedExponential(shift=0.5, rate=2.0), Pareto(scale=1.0, alpha=2.5)],
    ids=repr,
)
@pytest.mark.parametrize(("k", "n"), [(1, 1), (1, 8), (4, 8), (8, 8)])
def test_expectation_matches_monte_carlo(model, k, n):
    assert_matches_monte_carlo(model, k, n, model.expected_order_statistic(k, n))


BIMODAL = BimodalStragglers(ShiftedExponential(shift=1.0, rate=2.0), p_slow=0.2, slowdown=5.0)


@pytest.mark.parametrize(("k", "n"), [(1, 1), (2, 6), (5, 6), (6, 6)])
def test_bimodal_expectation_matches_monte_carlo(k, n):
    assert_matches_monte_carlo(BIMODAL, k, n, BIMODAL.expected_order_statistic(k, n), seed=3)


def test_bimodal_single_task_mean_by_hand():
    # E[T] = (1 - p) E[B] + p * s * E[B], E[B] = shift + 1/rate = 1.5
    assert BIMODAL.expected_order_statistic(1, 1) == pytest.approx(0.8 * 1.5 + 0.2 * 5.0 * 1.5)


def test_bimodal_cdf_matches_formula_and_empirical_fraction():
    t = np.array([0.5, 1.0, 1.2, 1.5, 2.0, 3.0, 5.0, 6.0, 8.0, 15.0])

    def base_cdf(x):
        return np.where(x < 1.0, 0.0, 1.0 - np.exp(-2.0 * (x - 1.0)))

    want = 0.8 * base_cdf(t) + 0.2 * base_cdf(t / 5.0)
    np.testing.assert_allclose(BIMODAL.cdf(t), want, rtol=1e-12, atol=1e-15)

    draws = BIMODAL.sample(100_000, rng=11)
    empirical = (draws[:, None] <= t[None, :]).mean(axis=0)
    cdf = BIMODAL.cdf(t)
    se = np.sqrt(cdf * (1 - cdf) / draws.size)
    bad = np.abs(empirical - cdf) > 4 * se + 1e-12
    assert not bad.any(), (
        f"empirical {empirical[bad]} vs cdf {cdf[bad]} at t={t[bad]} (4 SE = {4 * se[bad]})"
    )


# -- TraceReplay ------------------------------------------------------------------------------


def test_trace_from_json_list(tmp_path):
    path = tmp_path / "trace.json"
    path.write_text(json.dumps([0.5, 1.25, 3.0]))
    trace = TraceReplay.from_file(path)
    np.testing.assert_array_equal(trace.durations, [0.5, 1.25, 3.0])
    assert trace.mode == "bootstrap"


def test_trace_from_json_dict(tmp_path):
    path = tmp_path / "TRACE.JSON"
    path.write_text(json.dumps({"durations": [2, 0, 1.5], "machine": "x"}))
    trace = TraceReplay.from_file(str(path), mode="cycle")
    np.testing.assert_array_equal(trace.durations, [2.0, 0.0, 1.5])
    assert trace.mode == "cycle"


def test_trace_from_csv_with_header(tmp_path):
    path = tmp_path / "trace.csv"
    path.write_text("duration_s,worker\n# a comment line\n0.75,w1\n\n1.5, w2\n  2 ; w3\n4e-1,w4\n")
    trace = TraceReplay.from_file(path)
    np.testing.assert_array_equal(trace.durations, [0.75, 1.5, 2.0, 0.4])


def test_trace_from_plain_text(tmp_path):
    path = tmp_path / "trace.txt"
    path.write_text("1.0\n2.0 extra\n3.5\n")
    np.testing.assert_array_equal(TraceReplay.from_file(path).durations, [1.0, 2.0, 3.5])


def test_trace_cycle_reproduces_trace_in_order_and_wraps():
    durations = [0.3, 0.1, 0.4, 0.2]
    trace = TraceReplay(np.array(durations), mode="cycle")
    np.testing.assert_array_equal(trace.sample(3), [0.3, 0.1, 0.4])
    np.testing.assert_array_equal(trace.sample(3), [0.2, 0.3, 0.1])
    np.testing.assert_array_equal(trace.sample(0), [])
    np.testing.assert_array_equal(trace.sample(10), (durations * 3)[2:12])
    # a fresh model starts from the beginning again
    np.testing.assert_array_equal(TraceReplay(durations, mode="cycle").sample(2), [0.3, 0.1])


def test_trace_cycle_sample_is_a_copy():
    trace = TraceReplay(np.array([1.0, 2.0]), mode="cycle")
    out = trace.sample(2)
    out[:] = -1.0
    np.testing.assert_array_equal(trace.durations, [1.0, 2.0])


def brute_force_order_statistic(durations, k, n):
    """Mean of the k-th smallest over all len(durations)**n equally likely bootstrap draws."""
    draws = list(itertools.product(durations, repeat=n))
    return sum(sorted(d)[k - 1] for d in draws) / len(draws)


@pytest.mark.parametrize(
    "durations",
    [[1.0, 2.0, 5.0], [0.0, 0.5, 3.0], [1.0, 1.0, 4.0], [2.0]],
    ids=["distinct", "with-zero", "duplicate", "single"],
)
@pytest.mark.parametrize(("k", "n"), [(1, 1), (1, 2), (2, 2), (1, 3), (2, 3), (3, 3)])
def test_bootstrap_expectation_is_exact(durations, k, n):
    trace = TraceReplay(np.array(durations))
    assert trace.expected_order_statistic(k, n) == pytest.approx(
        brute_force_order_statistic(durations, k, n), rel=1e-12, abs=1e-12
    )


def test_bootstrap_samples_come_from_the_trace():
    durations = np.array([0.5, 1.0, 7.0])
    draws = TraceReplay(durations).sample(30_000, rng=5)
    assert set(np.unique(draws)) == set(durations)
    counts = np.array([(draws == d).sum() for d in durations])
    # each value has probability 1/3: binomial standard deviation sqrt(n p (1-p))
    sd = math.sqrt(30_000 * (1 / 3) * (2 / 3))
    assert np.all(np.abs(counts - 10_000) < 4 * sd), counts


def test_trace_cdf_is_empirical():
    trace = TraceReplay([3.0, 1.0, 1.0, 2.0])
    np.testing.assert_allclose(
        trace.cdf([0.0, 1.0, 1.5, 2.0, 2.9, 3.0, 9.0]), [0, 0.5, 0.5, 0.75, 0.75, 1.0, 1.0]
    )


# -- bad input --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "make",
    [
        lambda: ShiftedExponential(shift=1.0, rate=-1.0),
        lambda: ShiftedExponential(shift=1.0, rate=0.0),
        lambda: ShiftedExponential(shift=-0.1, rate=1.0),
        lambda: ShiftedExponential(shift=float("inf"), rate=1.0),
        lambda: ShiftedExponential(shift="1", rate=1.0),
        lambda: ShiftedExponential(shift=1.0, rate="2"),
        lambda: Pareto(scale=0.0, alpha=2.0),
        lambda: Pareto(scale=1.0, alpha=-2.0),
        lambda: BimodalStragglers(ShiftedExponential(), p_slow=1.5),
        lambda: BimodalStragglers(ShiftedExponential(), slowdown=0.0),
        lambda: BimodalStragglers(base="shifted-exponential"),
        lambda: TraceReplay(np.array([1.0, -0.5])),
        lambda: TraceReplay(np.array([1.0, np.nan])),
        lambda: TraceReplay(np.array([])),
        lambda: TraceReplay(np.ones((2, 2))),
        lambda: TraceReplay(np.array([1.0]), mode="shuffle"),
    ],
    ids=[
        "negative-rate",
        "zero-rate",
        "negative-shift",
        "infinite-shift",
        "string-shift",
        "string-rate",
        "zero-scale",
        "negative-alpha",
        "p_slow>1",
        "zero-slowdown",
        "base-not-model",
        "negative-duration",
        "nan-duration",
        "empty-trace",
        "2d-trace",
        "unknown-mode",
    ],
)
def test_bad_parameters_raise(make):
    with pytest.raises(InvalidInputError):
        make()


@pytest.mark.parametrize(
    "model",
    [ShiftedExponential(), Pareto(), BIMODAL, TraceReplay([1.0, 2.0])],
    ids=lambda m: type(m).__name__,
)
@pytest.mark.parametrize(("k", "n"), [(3, 2), (0, 2), (1, 0), (2.5, 4), (True, 2)])
def test_bad_k_n_raise(model, k, n):
    with pytest.raises(InvalidInputError):
        model.expected_order_statistic(k, n)


@pytest.mark.parametrize(
    ("alpha", "k", "n"),
    [(0.5, 4, 4), (0.5, 3, 4), (0.25, 1, 4), (1.0, 5, 5)],
    ids=["m*a=0.5", "m*a=1-boundary", "m*a=1-min", "alpha=1-max"],
)
def test_pareto_infinite_expectation_raises(alpha, k, n):
    with pytest.raises(InvalidInputError, match="infinite"):
        Pareto(scale=1.0, alpha=alpha).expected_order_statistic(k, n)
    # just past the boundary (n - k + 1) * alpha = 1 it is finite
    just_past = 1.01 / (n - k + 1)
    assert math.isfinite(Pareto(scale=1.0, alpha=just_past).expected_order_statistic(k, n))


@pytest.mark.parametrize(
    ("name", "text"),
    [
        ("trace.csv", "seconds\n1.0\nfast\n2.0\n"),
        ("trace.txt", "1.0\n2.0\n3.0x\n"),
        ("trace.csv", "seconds\n1.0\n-2.0\n"),
        ("trace.csv", "seconds\n"),
        ("trace.csv", ""),
        ("trace.csv", "seconds\n1.0\nnan\n"),
        ("trace.json", "[1.0, 2.0"),
        ("trace.json", '{"times": [1.0]}'),
        ("trace.json", "3.0"),
        ("trace.json", "[1.0, -2.0]"),
        ("trace.json", "[]"),
        ("trace.json", '[1.0, "fast"]'),
        ("trace.json", "[[1.0, 2.0], [3.0]]"),
        ("trace.csv", "seconds,worker\n1.0,a\n,b\n"),
    ],
    ids=[
        "csv-non-numeric-line",
        "txt-non-numeric-line",
        "csv-negative",
        "csv-header-only",
        "csv-empty",
        "csv-nan",
        "json-invalid",
        "json-dict-without-durations",
        "json-scalar",
        "json-negative",
        "json-empty-list",
        "json-non-numeric-entry",
        "json-ragged",
        "csv-empty-first-field",
    ],
)
def test_bad_trace_file_raises(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text)
    with pytest.raises(InvalidInputError):
        TraceReplay.from_file(path)


def test_missing_trace_file_raises(tmp_path):
    with pytest.raises(InvalidInputError, match="does not exist"):
        TraceReplay.from_file(tmp_path / "nope.csv")
    with pytest.raises(InvalidInputError, match="does not exist"):
        TraceReplay.from_file(tmp_path)  # a directory is not a trace file


def test_bad_sample_size_raises():
    with pytest.raises(InvalidInputError):
        ShiftedExponential().sample(-1)
    with pytest.raises(InvalidInputError):
        Pareto().sample(2.5)


# -- reproducibility and model_from_spec ------------------------------------------------------


@pytest.mark.parametrize(
    "model",
    [ShiftedExponential(0.2, 3.0), Pareto(1.0, 1.7), BIMODAL, TraceReplay([0.1, 0.2, 0.9])],
    ids=lambda m: type(m).__name__,
)
def test_samples_reproducible_from_int_seed(model):
    a = model.sample(64, rng=2024)
    b = model.sample(64, rng=2024)
    assert a.shape == (64,)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, model.sample(64, rng=2025))
    gen = np.random.default_rng(2024)
    np.testing.assert_array_equal(model.sample(64, rng=gen), a)
    assert not np.array_equal(model.sample(64, rng=gen), a)  # the generator moved on
    assert np.all(a >= 0)


def test_model_from_spec_builds_each_model():
    se = model_from_spec("shifted-exponential", shift=0.3, rate=5.0)
    assert isinstance(se, ShiftedExponential)
    assert (se.shift, se.rate) == (0.3, 5.0)
    assert model_from_spec("shifted-exponential") == ShiftedExponential(1.0, 1.0)

    pa = model_from_spec("pareto", scale=2.0, alpha=3.0)
    assert isinstance(pa, Pareto)
    assert (pa.scale, pa.alpha) == (2.0, 3.0)

    bi = model_from_spec("bimodal", shift=0.1, rate=2.0, p_slow=0.3, slowdown=4.0)
    assert isinstance(bi, BimodalStragglers)
    assert bi.base == ShiftedExponential(0.1, 2.0)
    assert (bi.p_slow, bi.slowdown) == (0.3, 4.0)
    assert bi.describe() == {
        "model": "bimodal",
        "base": {"model": "shifted-exponential", "shift": 0.1, "rate": 2.0},
        "p_slow": 0.3,
        "slowdown": 4.0,
    }


@pytest.mark.parametrize("name", ["exponential", "trace", "", "Pareto"])
def test_model_from_spec_rejects_unknown_name(name):
    with pytest.raises(InvalidInputError, match="model must be one of"):
        model_from_spec(name)
