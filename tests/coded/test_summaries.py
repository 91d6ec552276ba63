"""Result summaries and the progress callback of the latency simulation."""

from __future__ import annotations

import numpy as np

from frugalml.coded import PolarCode, anytime_estimate
from frugalml.coded.matmul import streamed_matmul
from frugalml.coded.simulate import default_schemes, simulate_latency
from frugalml.runtime import ShiftedExponential


def test_decoded_and_estimate_summaries_state_what_was_recovered():
    code = PolarCode(16, 8, rng=0)
    u = np.random.default_rng(0).standard_normal((8, 3))
    y = code.encode(u)
    full = code.decode(y, np.ones(16, dtype=bool))
    assert full.summary() == "sc: 8/8 blocks recovered from 16 outputs"
    mask = np.zeros(16, dtype=bool)
    mask[:5] = True
    part = code.decode(y, mask)
    assert f"{int(part.known.sum())}/8 blocks recovered from 5 outputs" in part.summary()
    est = anytime_estimate(code, y, mask, "unbiased")
    assert f"predicted rel. error {est.predicted_rel_error:.3g}" in est.summary()
    assert "exact" in anytime_estimate(code, y, np.ones(16, dtype=bool), "lstsq").summary()


def test_streamed_summary_counts_rows_and_chunks():
    rng = np.random.default_rng(1)
    res = streamed_matmul(rng.standard_normal((100, 4)), rng.standard_normal((4, 2)),
                          chunk_rows=30, code="mds", n_workers=4)  # fmt: skip
    assert res.summary().startswith("100 rows in 4 chunks")


def test_simulate_latency_reports_progress_per_scheme():
    calls: list[tuple[str, float]] = []
    schemes = default_schemes(16, 8, rng=0)
    simulate_latency(ShiftedExponential(), schemes, k=8, trials=40, rng=0,
                     progress=lambda name, f: calls.append((name, f)))  # fmt: skip
    coded = [name for name, (code, _) in schemes.items() if code is not None]
    assert [n for n in dict.fromkeys(n for n, _ in calls)] == coded
    for name in coded:
        fractions = [f for n, f in calls if n == name]
        assert fractions == sorted(fractions) and 0.0 <= fractions[0] < fractions[-1] < 1.0
