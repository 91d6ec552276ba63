"""``frugalml quant model | eval``: the export reproduces the quantized layers, JSON metrics
agree with a direct quantize_model call, one-line errors with exit code 2."""

from __future__ import annotations

import json

import numpy as np
import pytest

from frugalml.cli import main

torch = pytest.importorskip("torch")


def run_cli(capsys, *args) -> tuple[int, str, str]:
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture()
def saved(tmp_path):
    gen = torch.Generator().manual_seed(0)
    model = torch.nn.Sequential(
        torch.nn.Conv1d(1, 4, 3), torch.nn.ReLU(), torch.nn.Flatten(), torch.nn.Linear(4 * 14, 3)
    )
    for p in model.parameters():
        p.data = torch.randn(p.shape, generator=gen) * 0.3
    model.eval()
    path = tmp_path / "model.pt"
    torch.save(model, path)
    calib = torch.randn(64, 1, 16, generator=gen)
    np.save(tmp_path / "calib.npy", calib.numpy())
    return model, path, tmp_path / "calib.npy", calib


def test_model_export_matches_library(saved, tmp_path, capsys):
    from frugalml.quant import quantize_model

    model, path, calib_path, calib = saved
    out = tmp_path / "q.pt"
    code, stdout, _ = run_cli(
        capsys,
        "quant",
        "model",
        path,
        "--calib",
        calib_path,
        "--out",
        out,
        "--w-bits",
        4,
        "--a-bits",
        8,
        "--json",
    )
    assert code == 0
    payload = json.loads(stdout)
    export = torch.load(out, weights_only=False)
    ref = quantize_model(model, calib, w_bits=4, a_bits=8)
    assert set(export["layers"]) == {layer.name for layer in ref.layers} == {"0", "3"}
    for layer in ref.layers:
        mod = dict(ref.model.named_modules())[layer.name]
        got = export["layers"][layer.name]
        assert got["w_codes"].dtype == torch.int8
        assert int(got["w_codes"].abs().max()) <= 7
        # dequantized export == the quantized module's weight
        w = got["w_codes"].double() * got["w_scale"].double().reshape(
            -1, *[1] * (got["w_codes"].dim() - 1)
        )
        assert torch.allclose(w.float(), mod.dequantized_weight().float(), atol=1e-6)
    assert [r["name"] for r in payload["layers"]] == ["0", "3"]
    assert payload["layers"][0]["weight_mse"] == pytest.approx(ref.layers[0].weight_mse)


def test_eval_digits_json(capsys):
    code, stdout, _ = run_cli(
        capsys, "quant", "eval", "--model", "digits-cnn", "--w-bits", 8, "--a-bits", 8, "--json"
    )
    assert code == 0
    payload = json.loads(stdout)
    assert payload["fp32"]["accuracy"] > 0.9
    assert abs(payload["quantized"]["accuracy"] - payload["fp32"]["accuracy"]) < 0.03


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--w-bits", 9), "bits"),
        (("--method", "magic"), "method"),
        (("--rounding", "stochastic"), "rounding"),
    ],
)
def test_bad_options_one_line_error(saved, tmp_path, capsys, args, message):
    _, path, calib_path, _ = saved
    code, _, err = run_cli(
        capsys, "quant", "model", path, "--calib", calib_path, "--out", tmp_path / "q.pt", *args
    )
    assert code == 2
    assert err.startswith("frugalml: error:") and message in err
    assert not (tmp_path / "q.pt").exists()


def test_bad_files(tmp_path, saved, capsys):
    _, path, calib_path, _ = saved
    code, _, err = run_cli(
        capsys,
        "quant",
        "model",
        tmp_path / "missing.pt",
        "--calib",
        calib_path,
        "--out",
        tmp_path / "q.pt",
    )
    assert code == 2 and "does not exist" in err
    bad = tmp_path / "calib.txt"
    bad.write_text("1 2 3")
    code, _, err = run_cli(
        capsys, "quant", "model", path, "--calib", bad, "--out", tmp_path / "q.pt"
    )
    assert code == 2 and ".pt, .npy or .npz" in err
    np.save(tmp_path / "nan.npy", np.full((4, 1, 16), np.nan))
    code, _, err = run_cli(
        capsys, "quant", "model", path, "--calib", tmp_path / "nan.npy", "--out", tmp_path / "q.pt"
    )
    assert code == 2 and ("finite" in err.lower() or "nan" in err.lower())
