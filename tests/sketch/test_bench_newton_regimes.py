"""Smoke test of benchmarks/bench_newton_regimes.py at tiny size (no timing checked)."""

from __future__ import annotations

import json

from tests._bench_scripts import load_bench


def test_bench_newton_regimes_tiny(tmp_path):
    mod = load_bench("bench_newton_regimes")
    args = ["--n", "600", "--ds", "8", "16", "--sparse-n", "600", "--sparse-d", "60",
            "--nnz-row", "6", "--cap", "2", "--threads", "1", "--out", str(tmp_path)]  # fmt: skip
    payload = mod.main(args)
    saved = json.loads((tmp_path / "newton_regimes.json").read_text())
    assert (tmp_path / "newton_regimes_crossover.png").stat().st_size > 0
    assert [r["d"] for r in saved["dense"]] == [8, 16]
    for res in [*payload["dense"], payload["sparse"]]:
        # every method's objective is within rounding of f* or above it, never below
        for run in res["runs"].values():
            assert run["final_gap"] >= -1e-12
        # the sketch and the exact baseline both reach 1e-6 on these small problems
        assert res["runs"]["Newton sketch (debiased)"]["to_level"] is not None
    assert payload["sparse"]["runs"]["Newton-CG (exact Hessian-vector)"]["to_level"] is not None
    assert set(saved["break_even_d"]) == {"exact Newton", "L-BFGS-B (scipy)", "sklearn lbfgs",
                                          "sklearn newton-cholesky"}  # fmt: skip
