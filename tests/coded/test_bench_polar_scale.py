"""Smoke test of benchmarks/bench_polar_scale.py at a tiny size (no timing checked): it runs,
writes its JSON and plot into the given directory, and the decoded blocks it measured are
accurate (the accuracy columns are errors against the encoded data)."""

from __future__ import annotations

import json

import pytest

from tests._bench_scripts import load_bench

pytest.importorskip("numba")
pytest.importorskip("matplotlib")


def test_bench_polar_scale_tiny(tmp_path):
    mod = load_bench("bench_polar_scale")
    mod.main(["--quick", "--ns", "16", "64", "--sets", "2", "--trials", "5",
              "--out", str(tmp_path)])  # fmt: skip
    data = json.loads((tmp_path / "polar_scale.json").read_text())
    assert (tmp_path / "polar_scale.png").stat().st_size > 0
    assert [r["n"] for r in data["crossover"]] == [16, 64]
    for r in data["crossover"]:
        assert r["polar_f64_max"] < 1e-12 and r["polar_f32_max"] < 1e-5
        assert r["arrived_over_k"] >= 1.0
    assert [r["n"] for r in data["end_to_end"]] == [64]
    assert {"polar", "gaussian-mds", "ideal-mds", "uncoded"} <= set(data["end_to_end"][0])
    assert "machine" in data and len(data["tables"]) == 3
