"""Simulated completion times of coded schemes (frugalml.coded.simulate).

References: a linear scan over prefixes of the arrival order (first_decodable uses a binary
search), and a deterministic ``TraceReplay(mode="cycle")`` model whose draws are the trace
itself, so the completion time of each scheme in each trial is known in closed form.
"""

from __future__ import annotations

import numpy as np
import pytest

from frugalml.coded.base import Decoded, RealLinearCode
from frugalml.coded.baselines import GaussianMDS, Replication, Uncoded
from frugalml.coded.polar import PolarCode
from frugalml.coded.simulate import (
    SchemeLatency,
    default_schemes,
    first_decodable,
    first_decodable_mask,
    simulate_latency,
    smallest_true,
)
from frugalml.errors import InvalidInputError
from frugalml.runtime import ShiftedExponential, TraceReplay


def linear_scan(code: RealLinearCode, order: np.ndarray) -> int:
    for t in range(code.n + 1):
        mask = np.zeros(code.n, dtype=bool)
        mask[order[:t]] = True
        if code.decodable(mask):
            return t
    return code.n + 1


class NeedsWorkerZero(RealLinearCode):
    """Decodable iff worker 0 and at least K workers arrived (monotone, not MDS)."""

    def __init__(self, n: int, k: int, never: bool = False):
        self.n, self.k, self.never = n, k, never

    @property
    def generator(self) -> np.ndarray:
        return np.eye(self.k, self.n)

    def decodable(self, mask: np.ndarray) -> bool:
        return not self.never and bool(mask[0]) and int(mask.sum()) >= self.k

    def decode(self, outputs: np.ndarray, mask: np.ndarray) -> Decoded:  # pragma: no cover
        raise NotImplementedError


CODES = {
    "polar-16-8": lambda: PolarCode(16, 8, design_erasure=0.25, rng=0),
    "polar-16-4-arikan": lambda: PolarCode(16, 4, kernel="arikan", rng=1),
    "mds-16-8": lambda: GaussianMDS(16, 8, rng=2),
    "replication-4x2": lambda: Replication(4, 2),
    "replication-3x3": lambda: Replication(3, 3),
    "uncoded-8": lambda: Uncoded(8),
    "needs-worker-0": lambda: NeedsWorkerZero(10, 3),
    "never": lambda: NeedsWorkerZero(6, 2, never=True),
}


@pytest.mark.parametrize("name", sorted(CODES))
def test_first_decodable_equals_linear_scan(name):
    code = CODES[name]()
    rng = np.random.default_rng(len(name))
    for _ in range(40):
        order = rng.permutation(code.n)
        t = first_decodable(code, order)
        assert t == linear_scan(code, order)
        if t <= code.n:
            assert t >= code.k
    if name == "never":
        assert first_decodable(code, np.arange(code.n)) == code.n + 1


def test_smallest_true_equals_linear_scan():
    for lo in range(0, 4):
        for hi in range(lo, 12):
            for threshold in range(lo, hi + 1):
                calls = []

                def ok(t, threshold=threshold, calls=calls):
                    calls.append(t)
                    return t >= threshold

                assert smallest_true(ok, lo, hi) == threshold
                assert all(lo <= t <= hi for t in calls)
                assert len(calls) <= max(1, (hi - lo).bit_length())


def test_first_decodable_known_values():
    assert first_decodable(GaussianMDS(8, 3, rng=0), np.arange(8)) == 3
    assert first_decodable(Uncoded(5), np.array([4, 3, 2, 1, 0])) == 5
    # replication r = 2, K = 3: workers j and j + 3 hold block j
    assert first_decodable(Replication(3, 2), np.array([0, 3, 1, 4, 2, 5])) == 5
    assert first_decodable(Replication(3, 2), np.array([0, 4, 2, 3, 1, 5])) == 3


# -- simulate_latency on a deterministic trace ------------------------------------------------


N, K, TRIALS = 16, 8, 150


@pytest.fixture(scope="module")
def trace_run():
    rng = np.random.default_rng(0)
    durations = 1.0 + rng.exponential(1.0, size=N * TRIALS)
    model = TraceReplay(durations, mode="cycle")
    schemes = default_schemes(N, K, rng=1)
    stats = simulate_latency(
        model, schemes, k=K, trials=TRIALS, block_shape=(4, 4), unit_seconds=1e-3, rng=2
    )
    return durations.reshape(TRIALS, N), schemes, {s.name: s for s in stats}


def test_scheme_names_and_fields(trace_run):
    _, schemes, stats = trace_run
    assert list(stats) == list(schemes)
    assert set(stats) == {"uncoded", "2-replication", "gaussian-mds", "polar", "ideal-mds"}
    for s in stats.values():
        assert isinstance(s, SchemeLatency)
        assert s.samples.shape == (TRIALS,)
        assert s.mean == pytest.approx(s.samples.mean())
        assert s.p50 == pytest.approx(np.percentile(s.samples, 50))
        assert s.p99 >= s.p50 and np.all(np.isfinite(s.samples))
        assert s.decode_units >= 0


def test_ideal_mds_is_the_kth_order_statistic(trace_run):
    times, _, stats = trace_run
    ideal = stats["ideal-mds"]
    np.testing.assert_array_equal(ideal.samples, np.sort(times, axis=1)[:, K - 1])
    assert ideal.decode_units == 0.0 and ideal.mean_arrivals_over_k == 1.0


def test_uncoded_waits_for_the_slowest(trace_run):
    times, _, stats = trace_run
    unc = stats["uncoded"]
    expected = (K / N) * times.max(axis=1) + unc.decode_units
    np.testing.assert_allclose(unc.samples, expected, rtol=1e-12)
    assert unc.mean_arrivals_over_k == pytest.approx(N / N)  # all N of the N blocks


def test_mds_needs_exactly_k(trace_run):
    times, _, stats = trace_run
    mds = stats["gaussian-mds"]
    assert mds.mean_arrivals_over_k == 1.0
    expected = np.sort(times, axis=1)[:, K - 1] + mds.decode_units
    np.testing.assert_allclose(mds.samples, expected, rtol=1e-12)


def test_polar_and_replication_need_at_least_k(trace_run):
    times, schemes, stats = trace_run
    ideal = stats["ideal-mds"].samples
    for name in ("polar", "2-replication"):
        s = stats[name]
        assert s.mean_arrivals_over_k >= 1.0
        code, load = schemes[name]
        # recompute each trial by a linear scan over the arrival order
        for t in range(0, TRIALS, 10):
            order = np.argsort(times[t] * load, kind="stable")
            idx = linear_scan(code, order)
            assert s.samples[t] == pytest.approx(times[t, order[idx - 1]] * load + s.decode_units)
    assert np.all(stats["polar"].samples >= ideal)


def test_ideal_mds_mean_matches_order_statistic_law():
    model = ShiftedExponential(shift=1.0, rate=2.0)
    schemes = {"mds": (GaussianMDS(12, 6, rng=0), 1.0), "ideal-mds": (None, 1.0)}
    stats = simulate_latency(model, schemes, k=6, trials=4000, block_shape=(2, 2), rng=3)
    ideal = stats[1].samples
    exact = model.expected_order_statistic(6, 12)
    assert abs(ideal.mean() - exact) <= 4 * ideal.std(ddof=1) / np.sqrt(ideal.size)


def test_reproducible_from_rng():
    model = ShiftedExponential()
    a = simulate_latency(model, default_schemes(8, 4), k=4, trials=30, block_shape=(2,), rng=5)
    b = simulate_latency(model, default_schemes(8, 4), k=4, trials=30, block_shape=(2,), rng=5)
    np.testing.assert_array_equal(a[-1].samples, b[-1].samples)  # ideal-mds: no timing noise


# -- bad input --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"k": 0}, "k must be >= 1"),
        ({"trials": 0}, "trials must be >= 1"),
        ({"trials": 2.5}, "trials must be an integer"),
        ({"unit_seconds": 0.0}, "unit_seconds must be > 0"),
        ({"unit_seconds": -1.0}, "unit_seconds must be > 0"),
        ({"rng": "seed"}, "rng must be"),
    ],
)
def test_bad_input(kwargs, match):
    args = {"k": 4, "trials": 5, "block_shape": (2,), **kwargs}
    with pytest.raises(InvalidInputError, match=match):
        simulate_latency(ShiftedExponential(), default_schemes(8, 4), **args)


def test_bad_input_default_schemes():
    with pytest.raises(InvalidInputError, match="power of two"):
        default_schemes(12, 4)
    with pytest.raises(InvalidInputError, match="must be >= k"):
        default_schemes(8, 9)


@pytest.mark.parametrize(
    ("model", "schemes", "k"),
    [
        (ShiftedExponential(), {"ideal-mds": (None, 1.0)}, 4),  # StopIteration
        (ShiftedExponential(), {}, 4),  # StopIteration
        (ShiftedExponential(), {"mds": (GaussianMDS(8, 4), 1.0), "ideal-mds": (None, 1.0)}, 9),
        ("shifted-exponential", {"mds": (GaussianMDS(8, 4), 1.0)}, 4),  # AttributeError
        (ShiftedExponential(), {"a": (GaussianMDS(8, 4), 1.0), "b": (GaussianMDS(16, 12), 1.0)}, 4),
        (ShiftedExponential(), {"mds": (GaussianMDS(8, 4), -1.0)}, 4),
    ],
    ids=["no-code", "empty", "k-above-n", "model-not-a-model", "mixed-sizes", "negative-load"],
)
def test_bad_input_schemes_and_model(model, schemes, k):
    with pytest.raises(InvalidInputError):
        simulate_latency(model, schemes, k=k, trials=3, block_shape=(2,))


def test_first_decodable_rejects_a_non_permutation():
    with pytest.raises(InvalidInputError, match="permutation"):
        first_decodable(PolarCode(8, 4, rng=0), np.array([0, 1]))
    with pytest.raises(InvalidInputError, match="permutation"):
        first_decodable(PolarCode(8, 4, rng=0), np.zeros(8, dtype=int))


def test_first_decodable_mask_is_the_shortest_decodable_prefix():
    rng = np.random.default_rng(4)
    for code in (PolarCode(16, 8, rng=0), GaussianMDS(16, 8, rng=0), Replication(8, 2)):
        for _ in range(20):
            order = rng.permutation(16)
            mask = first_decodable_mask(code, order)
            t = int(mask.sum())
            assert mask[order[:t]].all() and code.decodable(mask)
            shorter = np.zeros(16, dtype=bool)
            shorter[order[: t - 1]] = True
            assert not code.decodable(shorter)
