"""``frugalml quant model | eval --hf``: Hugging Face text encoders quantized from the command line
(calibration texts through the model's tokenizer), metrics that agree with a direct library call,
one warning per problem, one-line errors with exit code 2."""

from __future__ import annotations

import json
import re
import warnings

import numpy as np
import pytest

from frugalml.cli import main

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")
pytest.importorskip("sentence_transformers")

from frugalml import quant  # noqa: E402
from frugalml.quant.data import stdlib_docstrings  # noqa: E402
from frugalml.quant.hf import evaluate, load_hf, read_texts  # noqa: E402
from tests.quant.test_hf import TINY_CONTEXT, save_tiny_bert  # noqa: E402

FAST = ("--method", "minmax", "--w-bits", 8, "--a-bits", 8)


def run_cli(capsys, *args) -> tuple[int, str, str]:
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture(scope="module")
def texts(tmp_path_factory):
    """8 calibration texts (plus one longer than MiniLM's 256 tokens), 16 held-out texts."""
    path = tmp_path_factory.mktemp("texts")
    docs = [" ".join(d.split()) for d in stdlib_docstrings(limit=200)]
    docs = [d for d in docs if 20 < len(d) < 400]
    calib, held_out = docs[:8], docs[8:24]
    (path / "calib.txt").write_text("\n".join(calib) + "\n\n" + "word " * 300 + "\n")
    (path / "eval.txt").write_text("\n".join(held_out) + "\n")
    (path / "empty.txt").write_text("\n  \n")
    return path


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory):
    path = tmp_path_factory.mktemp("tiny-bert")
    save_tiny_bert(path)
    return path


def test_model_hf_minilm_writes_export_and_metrics(texts, tmp_path, capsys):
    out = tmp_path / "q.pt"
    code, stdout, _ = run_cli(
        capsys, "quant", "model", "--hf", "minilm", "--calib", texts / "calib.txt",
        "--eval", texts / "eval.txt", "--out", out, *FAST, "--json",
    )  # fmt: skip
    assert code == 0
    payload = json.loads(stdout)
    assert payload["hf"] == "minilm" and payload["format"] == "pt"
    assert len(payload["layers"]) == 37  # all-MiniLM-L6-v2's nn.Linear layers
    # one warning per problem: the truncated text, the layers left in float (listed once)
    truncated = [w for w in payload["warnings"] if "truncated" in w]
    assert truncated == [
        "1 of 9 calibration texts are longer than the model's context of 256 tokens (the "
        "longest has 302); they were truncated to 256 tokens"
    ]
    unsupported = [w for w in payload["warnings"] if "unsupported types" in w]
    assert len(unsupported) == 1 and unsupported[0].count("(LayerNorm)") == 13
    export = torch.load(out, weights_only=False)
    assert len(export["layers"]) == 37 and export["meta"]["hf"] == "minilm"
    # the metrics agree with the library called directly on the same texts and options
    hf = load_hf("minilm")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        batches = hf.batches(read_texts(texts / "calib.txt"))
        report = quant.quantize_model(hf.encoder, batches, w_bits=8, a_bits=8, method="minmax")
        want = evaluate(hf, report.model, read_texts(texts / "eval.txt"))
    assert payload["eval"]["mean_cosine"] == pytest.approx(want.mean_cosine, abs=1e-6)
    assert payload["eval"]["nn_agreement"] == pytest.approx(want.nn_top1_agreement)
    assert 0.9 < payload["eval"]["mean_cosine"] < 1.0


def test_eval_hf_plain_transformers_prints_metrics(texts, tiny_dir, capsys):
    code, stdout, stderr = run_cli(
        capsys, "quant", "eval", "--hf", tiny_dir, "--calib", texts / "calib.txt",
        "--texts", texts / "eval.txt", *FAST,
    )  # fmt: skip
    assert code == 0
    line = " ".join(stdout.split())
    assert re.search(
        r"quantized vs FP32 on 16 held-out texts: mean cosine [01]\.\d{4}, "
        r"nearest-neighbour agreement [01]\.\d{4}",
        line,
    )
    assert f"truncated to {TINY_CONTEXT} tokens" in stderr
    assert stderr.count("unsupported types") == 1
    code, stdout, _ = run_cli(
        capsys, "quant", "eval", "--hf", tiny_dir, "--calib", texts / "calib.txt",
        "--texts", texts / "eval.txt", *FAST, "--json",
    )  # fmt: skip
    payload = json.loads(stdout)
    assert payload["texts"] == 16 and payload["calib_texts"] == 9
    assert payload["seconds"] >= payload["quantize_seconds"] > 0
    assert len(payload["layers"]) == 13
    cos = payload["quantized"]["mean_cosine"]
    assert 0.5 < cos < 1.0 and 0.0 <= payload["quantized"]["nn_agreement"] <= 1.0


def test_onnx_output(texts, tiny_dir, tmp_path, capsys):
    out = tmp_path / "q.onnx"
    args = ("quant", "model", "--hf", tiny_dir, "--calib", texts / "calib.txt", "--out", out)
    if not hasattr(quant, "export_onnx"):
        code, _, err = run_cli(capsys, *args, *FAST)
        assert code == 2 and "no ONNX export" in err and not out.exists()
        return
    code, _, _ = run_cli(capsys, *args, *FAST, "--json")
    assert code == 0 and out.exists()
    hf = load_hf(tiny_dir)
    held_out = read_texts(texts / "eval.txt")[:5]
    enc = hf.tokenizer(held_out, padding=True, truncation=True, max_length=hf.max_length)
    feeds = {name: np.asarray(enc[name], dtype=np.int64) for name in hf.input_names}
    (emb,) = quant.load(out).run(feeds)
    ref = hf.encoder(*(torch.as_tensor(feeds[n]) for n in hf.input_names)).detach().numpy()
    cos = np.sum(emb * ref, axis=1) / (np.linalg.norm(emb, axis=1) * np.linalg.norm(ref, axis=1))
    assert emb.shape == ref.shape and cos.min() > 0.9


@pytest.mark.parametrize(
    ("args", "match"),
    [
        (("--calib", "{texts}/empty.txt"), "empty (no non-blank lines)"),
        (("--calib", "{texts}/nope.txt"), "does not exist"),
        (("--calib", "{texts}"), "is a directory"),
    ],
)
def test_model_hf_bad_texts(texts, tmp_path, capsys, args, match):
    args = tuple(a.format(texts=texts) for a in args)
    code, _, err = run_cli(
        capsys, "quant", "model", "--hf", "minilm", *args, "--out", tmp_path / "q.pt"
    )
    assert code == 2 and match in err and len(err.strip().splitlines()) == 1


def test_model_sources_and_paths(texts, tmp_path, capsys):
    calib = texts / "calib.txt"
    out = tmp_path / "q.pt"
    cases = [
        (("quant", "model", tmp_path / "m.pt", "--hf", "minilm"), "not both"),
        (("quant", "model"), "no model: give MODEL_PATH"),
        (("quant", "model", "--hf", tmp_path / "nodir"), "no such directory"),
        (("quant", "model", "--hf", texts), "neither modules.json nor config.json"),
        (("quant", "model", tmp_path / "m.pt", "--eval", calib), "--eval"),
        (("quant", "model", "--hf", "minilm", "--trust-pickle"), "--trust-pickle"),
        (("quant", "model", "--hf", "minilm", "--smooth", "x"), "--smooth"),
        (("quant", "model", "--hf", "minilm", "--act-mode", "x"), "--act-mode"),
    ]
    for args, match in cases:
        code, _, err = run_cli(capsys, *args, "--calib", calib, "--out", out)
        assert code == 2, args
        assert match in err and err.startswith("frugalml: error:"), (args, err)
        assert len(err.strip().splitlines()) == 1
    code, _, err = run_cli(
        capsys, "quant", "model", "--hf", "minilm", "--calib", calib, "--out", tmp_path / "x/q.pt"
    )
    assert code == 2 and "does not exist" in err
    assert not out.exists()


def test_eval_hf_option_errors(texts, capsys):
    calib, held = texts / "calib.txt", texts / "eval.txt"
    cases = [
        (("--hf", "minilm", "--model", "minilm", "--calib", calib, "--texts", held), "not both"),
        (("--hf", "minilm", "--calib", calib), "--texts"),
        (("--model", "minilm", "--texts", held), "apply to --hf only"),
        (("--hf", "minilm", "--calib", calib, "--texts", texts / "empty.txt"), "empty"),
    ]
    for args, match in cases:
        code, _, err = run_cli(capsys, "quant", "eval", *args)
        assert code == 2 and match in err, (args, err)
    one = texts / "one.txt"
    one.write_text("only one text\n")
    code, _, err = run_cli(
        capsys, "quant", "eval", "--hf", "minilm", "--calib", calib, "--texts", one
    )
    assert code == 2 and "at least 2" in err


def test_model_file_onnx_output(tmp_path, capsys):
    """MODEL_PATH with a single-array --calib can also be written as ONNX; its outputs are
    those of the quantized model quantize_model makes from the same inputs."""
    gen = torch.Generator().manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(16, 8), torch.nn.ReLU(), torch.nn.Linear(8, 3))
    model.eval()
    torch.save(model, tmp_path / "m.pt")
    x = torch.randn(64, 16, generator=gen)
    np.save(tmp_path / "x.npy", x.numpy())
    np.savez(tmp_path / "d.npz", a=x.numpy(), b=x.numpy())
    out = tmp_path / "m.onnx"
    args = ("quant", "model", tmp_path / "m.pt", "--trust-pickle", "--out", out)
    code, _, err = run_cli(capsys, *args, "--calib", tmp_path / "d.npz")
    if not hasattr(quant, "export_onnx"):
        assert code == 2 and "no ONNX export" in err
        return
    assert code == 2 and "one array" in err and not out.exists()
    code, stdout, _ = run_cli(capsys, *args, "--calib", tmp_path / "x.npy", "--json")
    assert code == 0 and json.loads(stdout)["format"] == "onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        want = quant.quantize_model(model, x).model(x).detach().numpy()
    got = quant.load(out)(x.numpy())
    # integer sums vs float simulation: a float rounding difference can move a hidden value
    # across a rounding boundary of the next layer's 8-bit input (one code step) and no more
    # (measured: 84-90% of the outputs equal, the rest within 0.4% of the largest output)
    diff = np.abs(got - want)
    assert got.shape == want.shape
    assert np.mean(diff < 1e-5) > 0.5
    assert diff.max() < 0.02 * np.abs(want).max()
    assert np.linalg.norm(got - want) < 0.02 * np.linalg.norm(want)
