"""Smoke tests of the report benchmarks (``benchmarks/bench_*.py`` with ``REPORT_AREA``) at
tiny size: each script's ``main(["--tiny", "--out", DIR])`` runs every section, writes its JSON
(and its PNGs when matplotlib is installed) into DIR, not into ``benchmarks/results/``, and its
tables hold the expected columns, rows that match them and finite measurements. No timing is
checked. The multi-process aggregation run is ``slow``; its fast variant replaces the process
group by recorded-looking results and checks the tables built from them."""

from __future__ import annotations

import importlib.util
import json
import math
from pathlib import Path

import pytest
from tests._bench_scripts import BENCHMARKS, load_bench

from frugalml.report.discovery import scan

HAVE_PLOT = importlib.util.find_spec("matplotlib") is not None

#: area -> (benchmark file, result name, optional packages the whole benchmark needs,
#: the first table's leading columns)
AREAS: dict[str, tuple[str, str, tuple[str, ...], tuple[str, ...]]] = {
    "runtime": ("bench_runtime", "runtime", (), ("backend", "startup s", "round trip ms")),
    "coded": ("bench_coded", "coded", (), ("N", "model", "scheme", "mean", "p99")),
    "coded-es": ("bench_dfo", "dfo", ("torch", "sklearn"), ("regime", "d", "function")),
    "sketch": ("bench_sketch", "sketch", ("sklearn",), ("sketch", "seconds", "GB/s of A")),
    "sketch-newton": ("bench_second_order", "second-order", ("sklearn",), ("method", "m")),
    "remat": ("bench_remat", "remat", ("ortools", "torch"), ("graph", "n", "budget", "solver")),
    "remat-training": (
        "bench_remat_training",
        "remat-training",
        ("ortools", "torch"),
        ("model", "method", "peak MiB", "peak / eager"),
    ),
    "convex": ("bench_convex", "convex", ("cvxpy", "torch", "sklearn"), ()),
    "convex-gan": ("bench_convex_gan", "convex-gan", ("cvxpy", "torch"), ("goal", "measured")),
    "quant": (
        "bench_quant",
        "quant",
        ("torch", "sentence_transformers", "mnist1d", "sklearn"),
        ("task", "method", "bits", "accuracy"),
    ),
    "quant-deploy": (
        "bench_quant_deploy",
        "quant-deploy",
        ("torch", "sentence_transformers", "mnist1d", "sklearn", "onnx", "onnxruntime"),
        ("tool", "setting", "scheme", "activations"),
    ),
    "ecc": ("bench_ecc", "ecc", ("torch", "galois"), ("code", "Eb/N0 dB", "decoder", "BER")),
    "subspace-saddle": ("bench_saddle", "saddle", ("torch",), ("problem", "method", "state")),
    "subspace-train": ("bench_aggregation", "aggregation", ("torch", "sklearn"), ()),
}


def test_every_report_area_is_covered_here():
    found = {b.area: b.path.stem for b in scan(BENCHMARKS)}
    assert found == {area: spec[0] for area, spec in AREAS.items()}


def _run_tiny(area: str, out: Path) -> dict:
    stem, name, needs, _ = AREAS[area]
    for module in needs:
        pytest.importorskip(module)
    load_bench(stem).main(["--tiny", "--out", str(out)])
    return json.loads((out / f"{name}.json").read_text())


def _check(area: str, data: dict, out: Path) -> None:
    """What every benchmark's result must hold."""
    _, name, _, first_columns = AREAS[area]
    assert data["name"] == name and data["headline"] and "cpu_count" in data["machine"]
    assert data["tables"], "no tables"
    assert tuple(data["tables"][0]["columns"][: len(first_columns)]) == first_columns
    for table in data["tables"]:
        width = len(table["columns"])
        assert all(len(row) == width for row in table["rows"]), table["title"]
        numbers = [
            v
            for row in table["rows"]
            for v in row
            if isinstance(v, (int, float)) and not isinstance(v, bool)
        ]
        if table["rows"]:
            assert any(math.isfinite(v) for v in numbers) or not numbers, table["title"]
    pngs = sorted(p.name for p in out.glob("*.png"))
    assert pngs == sorted(data["figures"].values())
    assert bool(pngs) == HAVE_PLOT
    assert set(p.name for p in out.iterdir()) == {f"{name}.json", *pngs}


def _rows(data: dict, title_start: str) -> list[dict]:
    table = next(t for t in data["tables"] if t["title"].startswith(title_start))
    return [dict(zip(table["columns"], row, strict=True)) for row in table["rows"]]


def test_runtime_tiny(tmp_path):
    data = _run_tiny("runtime", tmp_path)
    _check("runtime", data, tmp_path)
    first_k = _rows(data, "Time to first k")
    assert {r["backend"] for r in first_k} == {"local-thread"}
    assert all(r["measured / ideal"] >= 1.0 for r in first_k)  # sleeps: never faster
    assert set(data["data"]["dataplane"]) == {"lstsq", "newton", "matvec", "crash", "serverless"}
    assert all(r["correct"] is True for r in _rows(data, "Simulated serverless"))


def test_coded_tiny(tmp_path):
    data = _run_tiny("coded", tmp_path)
    _check("coded", data, tmp_path)
    errors = {(r["code"], r["dtype"]): r["rel. error"] for r in _rows(data, "Relative decoding")}
    assert errors[("polar-hadamard", "float64")] < 1e-10
    real = _rows(data, "Real runs")
    assert {r["code"] for r in real} == {"uncoded", "mds", "polar"}
    assert all(r["max abs error"] < 1e-8 for r in real)


def test_coded_es_tiny(tmp_path):
    data = _run_tiny("coded-es", tmp_path)
    _check("coded-es", data, tmp_path)
    cos = _rows(data, "Gradient estimate")
    exact = [
        r
        for r in cos
        if r["regime"] == "K ~ d" and r["method"] == "coded polar (SC)" and r["stragglers"] == 0
    ]
    assert exact and all(r["mean cos"] > 0.999 for r in exact)  # K = d: the exact gradient
    assert {r["method"] for r in _rows(data, "Black-box attack, real run")} == {
        "coded",
        "wait-all",
        "drop",
    }


def test_sketch_tiny(tmp_path):
    data = _run_tiny("sketch", tmp_path)
    _check("sketch", data, tmp_path)
    ls = _rows(data, "Least squares")
    pre = [r for r in ls if r["method"] == "sketch-and-precondition" and r["kappa"] == "1e+00"]
    assert pre and all(r["||x-x_ref|| / ||x_ref||"] < 1e-6 for r in pre)


def test_sketch_newton_tiny(tmp_path):
    data = _run_tiny("sketch-newton", tmp_path)
    _check("sketch-newton", data, tmp_path)
    assert data["data"]["estimate"]["q"] == [1, 2, 4, 8, 16]
    newton = _rows(data, "Distributed Newton")
    exact = [r for r in newton if r["method"] == "exact Newton"]
    assert exact and all(r["final"] < 1e-8 for r in exact)


def test_remat_tiny(tmp_path):
    data = _run_tiny("remat", tmp_path)
    _check("remat", data, tmp_path)
    rows = _rows(data, "Rematerialisation")
    solved = [r for r in rows if r["peak / plain peak"] is not None]
    assert solved and all(r["peak / plain peak"] <= float(r["budget"][:-1]) / 100 for r in solved)
    assert "graphs: generated (tiny)" in data["tables"][0]["note"]
    models = _rows(data, "PyTorch models")
    assert {r["model"] for r in models} == {"mlp"}


@pytest.mark.slow  # compiles eight training steps of a ResNet-18 (about 90 s on 2 cores)
def test_remat_training_tiny(tmp_path):
    data = _run_tiny("remat-training", tmp_path)
    _check("remat-training", data, tmp_path)
    rows = _rows(data, "Training step")
    ok = [r for r in rows if r["peak MiB"] is not None]
    assert {"eager", "moccasin plain"} <= {r["method"] for r in ok}
    assert all(r["params vs eager"] == "0.0e+00" for r in ok)  # no dropout: bit-identical
    fidelity = _rows(data, "Memory model")
    assert all(abs(r["modelled / eager"] - 1) < 0.05 for r in fidelity)


def test_quant_deploy_tiny(tmp_path):
    data = _run_tiny("quant-deploy", tmp_path)
    _check("quant-deploy", data, tmp_path)
    deploy = data["data"]["deploy"]
    assert deploy and all(abs(d["cosine_diff"]) < 0.05 for d in deploy)
    cnn = _rows(data, "CNNs at W4A4")
    assert {r["task"] for r in cnn} == {"digits", "mnist1d"}


def test_convex_tiny(tmp_path):
    data = _run_tiny("convex", tmp_path)
    _check("convex", data, tmp_path)
    assert data["data"]["config"]["planted"] == [60, 4]
    assert len(data["data"]["objective"]) == 4  # planted + three real data sets


def test_convex_gan_tiny(tmp_path):
    data = _run_tiny("convex-gan", tmp_path)
    _check("convex-gan", data, tmp_path)
    sdp = _rows(data, "Closed-form generator")
    assert len(sdp) == 1 and sdp[0]["rel. error"] < 1e-4
    models = {r["model"] for r in _rows(data, "Progressive convex GAN")}
    assert {"convex ProCoGAN", "GDA same architecture", "DCGAN-style"} <= models


def test_quant_tiny(tmp_path):
    data = _run_tiny("quant", tmp_path)
    _check("quant", data, tmp_path)
    cnn = _rows(data, "CNN top-1")
    assert {r["task"] for r in cnn} == {"digits", "mnist1d"}
    assert all(0.0 <= r["accuracy"] <= 1.0 for r in cnn)
    lm = _rows(data, "all-MiniLM-L6-v2")
    assert lm and all(0.0 < r["mean cosine"] <= 1.0 + 1e-9 for r in lm)


def test_ecc_tiny(tmp_path):
    data = _run_tiny("ecc", tmp_path)
    _check("ecc", data, tmp_path)
    ber = _rows(data, "BER / FER")
    assert ber and all(0.0 <= r["BER"] <= 1.0 and r["frames"] > 0 for r in ber)
    assert any(r["decoder"] == "syndrome gru" for r in ber)
    assert any(r["decoder"].startswith("syndrome gru list") for r in ber)
    assert any(r["decoder"].startswith("ML") for r in ber)
    assert all(r["frames / s"] > 0 for r in ber if not r["decoder"].startswith("ML"))
    inv = _rows(data, "Invariance")
    assert inv and all(r["identical errors"] is True for r in inv)


def test_ecc_names_a_missing_larger_model_instead_of_dropping_it(tmp_path):
    """A tagged model that is not there is listed as skipped (with the command that trains
    it); a missing main model is trained here, and the table says so."""
    pytest.importorskip("torch")
    pytest.importorskip("galois")
    ecc = load_bench("bench_ecc")
    models = tmp_path / "models"
    models.mkdir()
    cfg = {**ecc.TINY, "extra_models": (("gru", "medium"),), "model_dir": str(models)}
    skipped: list[str] = []
    from frugalml.ecc.codes import get_code

    decs = ecc._decoders(get_code("bch-63-45"), cfg, lambda *a: None, 0.0, True, skipped)
    notes = {name: note for name, _, note in decs}
    assert notes["syndrome gru"].startswith("trained here: 20 steps")
    assert len(skipped) == 1 and str(models / "bch-63-45-gru-medium.pt") in skipped[0]
    assert "train_ecc.py" in skipped[0]


def test_subspace_saddle_tiny(tmp_path):
    data = _run_tiny("subspace-saddle", tmp_path)
    _check("subspace-saddle", data, tmp_path)
    methods = {r["method"] for r in _rows(data, "Evaluations and time")}
    assert "extragradient (0.9/L)" in methods and any(m.startswith("ADMM") for m in methods)


@pytest.mark.slow
def test_subspace_train_tiny(tmp_path):
    """Real data-parallel runs: 4 gloo processes (15-60 s on 2 cores, with the load)."""
    data = _run_tiny("subspace-train", tmp_path)
    _check("subspace-train", data, tmp_path)


def test_subspace_train_tables_from_recorded_runs(tmp_path, monkeypatch):
    """The fast variant: the process group replaced by plausible results."""
    pytest.importorskip("torch")
    bench = load_bench("bench_aggregation")
    calls = []

    def fake_train_and_time(jobs, timing=None, **kwargs):
        calls.append(kwargs.get("n_workers"))
        results = [
            bench.TrainResult(
                task=task,
                n_workers=kwargs.get("n_workers", 4),
                config=cfg,
                n_params=10,
                eval_steps=(0, cfg.steps),
                eval_loss=(1.0, 0.4 if cfg.aggregation == "adacons" else 0.5),
                train_loss=(1.0,) * cfg.steps,
                step_seconds=(0.01,) * cfg.steps,
                comm_floats=20.0,
            )
            for task, cfg in jobs
        ]
        times = [[[0.01, 0.011, 0.012] for _ in cfgs] for _, cfgs in timing or []]
        return results, times

    monkeypatch.setattr(bench, "train_and_time", fake_train_and_time)
    data = bench.main(["--tiny", "--out", str(tmp_path)])
    assert calls == [4]
    assert data.name == "aggregation"
    payload = json.loads((tmp_path / "aggregation.json").read_text())
    _check("subspace-train", payload, tmp_path)
    assert "linreg" in payload["headline"]
