"""Smoke tests of the benchmark scripts that are not report areas, at tiny sizes: each runs,
writes its results into the given directory (not into ``benchmarks/results/``) and measures
what it says. (``bench_polar_scale``, ``bench_dfo_encode``, ``bench_lstsq_regimes`` and
``bench_newton_regimes`` have theirs beside their area's tests; ``check_report_page`` and
``bad_input_matrix`` in ``tests/report/test_report_page.py`` and
``tests/test_bad_input_matrix.py``.)"""

from __future__ import annotations

import json
import math

import pytest
from tests._bench_scripts import BENCHMARKS, load_bench

from frugalml.report.discovery import scan


def test_scripts_without_report_area_are_not_areas():
    areas = {b.path.stem for b in scan(BENCHMARKS)}
    for stem in ("bench_convex_gpu", "bench_coded_scale", "bench_second_order_scale"):
        assert (BENCHMARKS / f"{stem}.py").exists() and stem not in areas


def test_bench_convex_gpu_tiny(tmp_path):
    pytest.importorskip("torch")
    pytest.importorskip("cvxpy")
    res = load_bench("bench_convex_gpu").main(
        ["--sizes", "4x40", "--time-limit", "20", "--out", str(tmp_path)]
    )
    data = json.loads((tmp_path / "convex_gpu.json").read_text())
    solvers = {r["solver"] for r in data["data"]["records"]}
    assert {"first-order (cpu)", "scs (cpu)"} <= solvers
    first = [r for r in data["data"]["records"] if r["solver"] == "first-order (cpu)"]
    assert len(first) == 2 and all(r["status"] == "certified" for r in first)
    # the tighter tolerance is within its certified gap of the best objective found
    assert all(abs(r["rel_to_best"]) <= 1e-3 for r in first)
    assert res.name == "convex_gpu" and "cpu_count" in data["machine"]


def test_bench_coded_scale_tiny(tmp_path):
    payload = load_bench("bench_coded_scale").main(
        ["--rows", "1024", "--features", "16", "--classes", "4", "--chunk-rows", "256",
         "--workers", "4", "--workdir", str(tmp_path), "--out", str(tmp_path / "out")]
    )  # fmt: skip
    data = json.loads((tmp_path / "out" / "coded_scale.json").read_text())
    assert data["runs"] == payload["runs"]
    for key in ("uncoded", "polar", "uncoded+stragglers", "polar+stragglers"):
        run = data["runs"][key]
        assert run["rel_error"] < 1e-5 and run["rows_per_s"] > 0  # float32 products
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith("frugalml-scale-")] == []


def test_bench_second_order_scale_tiny(tmp_path):
    pytest.importorskip("sklearn")
    res = load_bench("bench_second_order_scale").main(
        ["--n", "2000", "--d", "10", "--out", str(tmp_path)]
    )
    data = json.loads((tmp_path / "second-order-scale.json").read_text())
    table = data["tables"][0]
    rows = {r[0]: dict(zip(table["columns"], r, strict=True)) for r in table["rows"]}
    assert rows["exact Newton"]["final (f - f*)/|f*|"] == 0.0
    debiased = rows["debiased Newton sketch (uniform)"]
    assert math.isfinite(debiased["final (f - f*)/|f*|"]) and debiased["iterations"] >= 1
    assert res.name == "second-order-scale"


def test_train_ecc_tiny(tmp_path):
    pytest.importorskip("torch")
    pytest.importorskip("galois")
    import torch

    (path,) = load_bench("train_ecc").main(
        ["--codes", "bch-63-45", "--backbones", "mlp", "--steps", "2", "--batch", "16",
         "--models", str(tmp_path)]
    )  # fmt: skip
    assert path == tmp_path / "bch-63-45-mlp.pt"
    ck = torch.load(path, map_location="cpu", weights_only=True)
    assert ck["step"] == 2 and ck["settings"]["batch"] == 16
    # the benchmark reads it back and states its budget
    from frugalml.ecc.codes import get_code

    ecc = load_bench("bench_ecc")
    _, note = ecc._neural(get_code("bch-63-45"), "mlp", 1, lambda *a: None, 0.0, path=path)
    assert note == "stored bch-63-45-mlp.pt: 2 steps x 16 words"
