"""``frugalml quant model | eval``: the export reproduces the quantized layers, JSON metrics
agree with a direct quantize_model call, one-line errors with exit code 2."""

from __future__ import annotations

import json

import numpy as np
import pytest

from frugalml.cli import main
from tests._pickles import write_malicious

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


def _model_args(model, calib, out) -> tuple:
    """``quant model MODEL --trust-pickle --calib CALIB --out OUT`` (the test's own models)."""
    return ("quant", "model", model, "--trust-pickle", "--calib", calib, "--out", out)


def test_model_export_matches_library(saved, tmp_path, capsys):
    from frugalml.quant import quantize_model

    model, path, calib_path, calib = saved
    out = tmp_path / "q.pt"
    code, stdout, _ = run_cli(
        capsys,
        *_model_args(path, calib_path, out),
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
        capsys,
        *_model_args(path, calib_path, tmp_path / "q.pt"),
        *args,
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
    code, _, err = run_cli(capsys, *_model_args(path, bad, tmp_path / "q.pt"))
    assert code == 2 and ".npy" in err and ".npz" in err and ".pt" in err
    np.save(tmp_path / "nan.npy", np.full((4, 1, 16), np.nan))
    code, _, err = run_cli(
        capsys,
        *_model_args(path, tmp_path / "nan.npy", tmp_path / "q.pt"),
    )
    assert code == 2 and ("finite" in err.lower() or "nan" in err.lower())


# ------------------------------------------------------------------------ untrusted files
def _one_line_error(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("frugalml: error:"), err
    return lines[0]


@pytest.mark.parametrize("how", ["raw-pickle", "torch-save", "in-a-dict"])
def test_malicious_pickle_is_not_run(tmp_path, saved, capsys, how):
    _, _, calib_path, _ = saved
    marker = tmp_path / "pwned"
    evil = write_malicious(tmp_path / "evil.pt", marker, how)
    code, out, err = run_cli(
        capsys, "quant", "model", evil, "--calib", calib_path, "--out", tmp_path / "q.pt"
    )
    assert code == 2 and out == ""
    assert "--trust-pickle" in _one_line_error(err)
    assert not marker.exists()
    assert not (tmp_path / "q.pt").exists()


def test_whole_model_needs_trust_pickle(saved, tmp_path, capsys):
    _, path, calib_path, _ = saved
    code, _, err = run_cli(
        capsys, "quant", "model", path, "--calib", calib_path, "--out", tmp_path / "q.pt"
    )
    assert code == 2
    line = _one_line_error(err)
    assert "--trust-pickle" in line and "runs code" in line


def test_trust_pickle_help_says_why_it_is_dangerous(capsys):
    from typer.testing import CliRunner

    from frugalml.cli import app

    result = CliRunner().invoke(app, ["quant", "model", "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0
    text = " ".join(result.output.split())
    assert "--trust-pickle" in text and "DANGEROUS" in text and "runs code" in text


def test_state_dict_is_refused_with_a_hint(saved, tmp_path, capsys):
    model, _, calib_path, _ = saved
    sd = tmp_path / "sd.pt"
    torch.save(model.state_dict(), sd)
    code, _, err = run_cli(
        capsys, "quant", "model", sd, "--calib", calib_path, "--out", tmp_path / "q.pt"
    )
    assert code == 2 and "state_dict" in _one_line_error(err)


# ------------------------------------------------------------------------ outputs and sizes
@pytest.mark.parametrize("where", ["dir", "missing-parent"])
def test_out_checked_before_any_work(saved, tmp_path, capsys, where):
    _, path, _, _ = saved
    out = tmp_path if where == "dir" else tmp_path / "no" / "q.pt"
    # the calibration file does not exist either: --out is checked first
    code, _, err = run_cli(
        capsys, "quant", "model", path, "--calib", tmp_path / "nope.npy", "--out", out
    )
    assert code == 2 and "--out" in _one_line_error(err)


def test_memory_guard_refuses_large_calibration(saved, tmp_path, capsys, monkeypatch):
    _, path, calib_path, _ = saved
    monkeypatch.setenv("FRUGALML_MEMORY_LIMIT", "2000")
    code, _, err = run_cli(
        capsys,
        *_model_args(path, calib_path, tmp_path / "q.pt"),
    )
    line = _one_line_error(err)
    assert code == 2 and "calibration" in line and "available" in line
    assert not (tmp_path / "q.pt").exists()


def test_gptq_memory_guard(monkeypatch):
    from frugalml.errors import TooLargeError
    from frugalml.quant import quantize_model

    monkeypatch.setenv("FRUGALML_MEMORY_LIMIT", str(64 * 64 * 8))  # < one 64 x 64 Gram
    with pytest.raises(TooLargeError, match="gptq"):
        quantize_model(torch.nn.Linear(64, 8).eval(), torch.ones(4, 64), rounding="gptq")


# ------------------------------------------------------------------------ calibration formats
class _TwoInputs(torch.nn.Module):
    """A model called with keywords, like a Hugging Face model: model(input_ids=, mask=)."""

    def __init__(self):
        super().__init__()
        self.embed = torch.nn.Embedding(10, 8)
        self.proj = torch.nn.Linear(8, 4)

    def forward(self, input_ids, mask):
        h = self.embed(input_ids) * mask.unsqueeze(-1)
        return self.proj(h).sum(1)


class _OneDict(_TwoInputs):
    """A model called with one dict, like a SentenceTransformer: model({"input_ids": ...})."""

    def forward(self, features):
        return super().forward(features["input_ids"], features["mask"])


@pytest.mark.parametrize(("cls", "call"), [(_TwoInputs, "kwargs"), (_OneDict, "positional")])
def test_dict_calibration_npz(tmp_path, capsys, cls, call):
    torch.manual_seed(0)
    model = cls().eval()
    torch.save(model, tmp_path / "m.pt")
    rng = np.random.default_rng(0)
    ids = rng.integers(0, 10, size=(40, 6))
    mask = (rng.random((40, 6)) > 0.2).astype(np.int64)
    np.savez(tmp_path / "c.npz", input_ids=ids, mask=mask)
    code, out, err = run_cli(
        capsys, "quant", "model", tmp_path / "m.pt", "--trust-pickle", "--calib",
        tmp_path / "c.npz", "--calib-call", call, "--out", tmp_path / "q.pt", "--json",
    )  # fmt: skip
    assert code == 0, err
    payload = json.loads(out)
    assert [lay["name"] for lay in payload["layers"]] == ["proj"]
    assert any("embed" in w for w in payload["warnings"])  # the Embedding stays float


def test_wrong_calibration_call_is_a_clean_error(tmp_path, capsys):
    torch.save(_OneDict().eval(), tmp_path / "m.pt")
    ids = np.zeros((4, 6), dtype=np.int64)
    np.savez(tmp_path / "c.npz", input_ids=ids, mask=ids)
    code, _, err = run_cli(
        capsys,
        *_model_args(tmp_path / "m.pt", tmp_path / "c.npz", tmp_path / "q.pt"),
    )
    line = _one_line_error(err)
    assert code == 2 and "calibration batch 0" in line and "dict of tensors" in line


# ------------------------------------------------------------------------ the per-layer table
class _Deep(torch.nn.Module):
    def __init__(self, n):
        super().__init__()
        self.blocks = torch.nn.ModuleDict(
            {f"encoder_layer_{i}_attention_output_dense_projection": torch.nn.Linear(4, 4)
             for i in range(n)}
        )  # fmt: skip

    def forward(self, x):
        for m in self.blocks.values():
            x = m(x)
        return x


def test_layer_table_fits_100_columns_and_shows_the_worst(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "100")
    from frugalml.cli import quant as qcli

    monkeypatch.setattr(qcli.console, "_width", 100)
    torch.manual_seed(0)
    torch.save(_Deep(20).eval(), tmp_path / "m.pt")
    np.save(tmp_path / "c.npy", np.random.default_rng(0).normal(size=(16, 4)).astype(np.float32))
    args = _model_args(tmp_path / "m.pt", tmp_path / "c.npy", tmp_path / "q.pt")
    code, out, _ = run_cli(capsys, *args)
    assert code == 0
    assert max(len(line) for line in out.splitlines()) <= 100
    assert "worst" in out and "--all" in out
    assert out.count("│ blocks.encoder") == qcli.WORST_LAYERS
    code, out, _ = run_cli(capsys, *args, "--all")
    assert code == 0 and out.count("│ blocks.encoder") == 20
    assert max(len(line) for line in out.splitlines()) <= 100


@pytest.mark.parametrize(
    ("calib", "needle"),
    [
        (np.ones((4, 1, 9), np.float32), "calibration batch 0"),  # wrong length: traceback before
        (np.array([{"a": 1}], dtype=object), "Python objects"),  # needs pickle: refused
        (np.array(["a", "b"]), "numbers"),
        (np.float32(1.0), "batch dimension"),
        (np.ones((0, 1, 16), np.float32), "at least one sample"),
    ],
)
def test_bad_calibration_arrays_found_by_the_matrix(saved, tmp_path, capsys, calib, needle):
    _, path, _, _ = saved
    np.save(tmp_path / "c.npy", calib, allow_pickle=True)
    code, out, err = run_cli(
        capsys,
        *_model_args(path, tmp_path / "c.npy", tmp_path / "q.pt"),
    )
    assert code == 2 and out == ""
    assert needle in _one_line_error(err)
    assert not (tmp_path / "q.pt").exists()


def test_eval_seed_and_blas_threads_use_no_deprecated_api(capsys):
    """``--seed`` reaches the data split, the initial weights and the batch order through the
    current ``rng=`` spellings: no FrugalDeprecationWarning from the library's own calls."""
    import warnings

    from frugalml.errors import FrugalDeprecationWarning

    args = ("quant", "eval", "--model", "digits-cnn", "--seed", 1, "--blas-threads", 1)
    with warnings.catch_warnings():
        warnings.simplefilter("error", FrugalDeprecationWarning)
        code, stdout, _ = run_cli(capsys, *args, "--weights-only", "--json")
    assert code == 0
    payload = json.loads(stdout)
    assert payload["a_bits"] is None and payload["fp32"]["accuracy"] > 0.9


def test_model_accepts_blas_threads(saved, tmp_path, capsys):
    _, path, calib_path, _ = saved
    out = tmp_path / "q.pt"
    code, stdout, _ = run_cli(
        capsys, *_model_args(path, calib_path, out), "--blas-threads", 2, "--json"
    )
    assert code == 0 and out.exists()
    assert json.loads(stdout)["out"] == str(out)
