"""Smoke test of benchmarks/bench_dfo_encode.py at a tiny size (no timing checked): it runs,
writes its JSON and plot into the given directory, and its fast and dense runs agree."""

from __future__ import annotations

import json

import pytest

from tests._bench_scripts import load_bench

pytest.importorskip("torch")
pytest.importorskip("matplotlib")


def test_bench_dfo_encode_tiny(tmp_path):
    mod = load_bench("bench_dfo_encode")
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
