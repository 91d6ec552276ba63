"""Smoke test of benchmarks/bench_lstsq_regimes.py at a tiny size (no timing checked): it runs,
writes its JSON and crossover plot into the given directory, every method is recorded with
its error against gelsd, and ours meets the 1e-10 criterion."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

pytest.importorskip("sklearn")
pytest.importorskip("matplotlib")

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "bench_lstsq_regimes.py"


def test_bench_lstsq_regimes_tiny(tmp_path):
    spec = importlib.util.spec_from_file_location("bench_lstsq_regimes", SCRIPT)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    mod.main(["--sizes", "3000x20", "6000x30", "--anchor", "6000x30", "--repeats", "1",
              "--kappa", "1e4", "--out", str(tmp_path)])  # fmt: skip
    data = json.loads((tmp_path / "lstsq_regimes.json").read_text())
    assert (tmp_path / "lstsq_regimes_crossover.png").read_bytes().startswith(b"\x89PNG")
    assert "machine" in data and data["threads"] == 1 and len(data["tables"]) == 2
    small, anchor = data["results"]
    assert (small["n"], small["d"], anchor["n"], anchor["d"]) == (3000, 20, 6000, 30)
    # every baseline at the anchor only; gelsd is the reference (error 0)
    assert "sklearn Ridge cholesky" in anchor["runs"] and "scipy gelss" in anchor["runs"]
    assert "sklearn Ridge cholesky" not in small["runs"]
    for res in data["results"]:
        assert res["runs"]["scipy gelsd"]["err"] == 0.0
        assert res["kappa"] == pytest.approx(1e4, rel=0.5)
        for label in ("ours: cg, mixed-precision factor", "ours: cg, float64 factor"):
            assert res["runs"][label]["err"] <= 1e-10
        fastest = min(r["seconds"] for r in res["runs"].values() if r["kind"] == "lapack")
        assert res["fastest_lapack_s"] == fastest
        assert res["roofline"]["passes"] > 0
    # the defaults with NumPy passes instead of the numba kernels: at the anchor only
    label = "ours: cg, mixed, NumPy blocked passes"
    if importlib.util.find_spec("numba") is not None:
        assert anchor["runs"][label]["err"] <= 1e-10 and label not in small["runs"]
