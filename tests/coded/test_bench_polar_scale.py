"""Smoke test of benchmarks/bench_polar_scale.py at a tiny size (no timing checked): it runs,
writes its JSON and plot into the given directory, and the decoded blocks it measured are
accurate (the accuracy columns are errors against the encoded data)."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

pytest.importorskip("numba")
pytest.importorskip("matplotlib")

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "bench_polar_scale.py"


def test_bench_polar_scale_tiny(tmp_path):
    spec = importlib.util.spec_from_file_location("bench_polar_scale", SCRIPT)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
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
