"""Smoke test of benchmarks/bench_dfo_encode.py at a tiny size (no timing checked): it runs,
writes its JSON and plot into the given directory, and its fast and dense runs agree."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

pytest.importorskip("torch")
pytest.importorskip("matplotlib")

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "bench_dfo_encode.py"


def test_bench_dfo_encode_tiny(tmp_path):
    spec = importlib.util.spec_from_file_location("bench_dfo_encode", SCRIPT)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    out = mod.main(["--sizes", "12", "--iters", "1", "--workers", "8", "--sweep", "4", "8",
                    "--sweep-dim", "300", "--out", str(tmp_path)])  # fmt: skip
    data = json.loads((tmp_path / "dfo_encode.json").read_text())
    assert (tmp_path / "dfo_encode_crossover.png").stat().st_size > 0
    assert data["n"] == 8 and data["k"] == 4 and data["attack"][0]["d"] == 3 * 12 * 12
    assert set(data["attack"][0]["runs"]) == {
        "orthogonal/dense", "orthogonal/fast", "hadamard/dense", "hadamard/fast",
    }  # fmt: skip
    for fam in ("orthogonal", "hadamard"):
        assert out["attack"][0][f"{fam}_max_iterate_diff"] < 1e-9
    assert [r["n"] for r in data["sweep"]] == [4, 8]
    assert "machine" in data and len(data["tables"]) == 2
