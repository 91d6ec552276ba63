"""frugalml.quant.hf: Hugging Face text encoders loaded offline (sentence-transformers and plain
transformers directories, the bundled MiniLM), text calibration batches with one truncation
warning, and the FP32-vs-quantized agreement (Choukroun et al., arXiv:1902.06822)."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest

from frugalml.errors import InvalidInputError

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")
pytest.importorskip("sentence_transformers")

from frugalml.quant import QuantizationWarning, quantize_model  # noqa: E402
from frugalml.quant.hf import HFEncoder, TextEncoder, evaluate, load_hf, read_texts  # noqa: E402
from frugalml.quant.minilm import minilm_path  # noqa: E402

#: the tiny BERT's context (its tokenizer, MiniLM's, allows 256: the smaller one counts)
TINY_CONTEXT = 64

SHORT = [
    "The quick brown fox jumps over the lazy dog.",
    "Quantization maps real numbers to a small set of integers.",
    "A sentence encoder turns text into a vector.",
    "Calibration needs no labels.",
    "Residual tensors fix the worst kernels.",
    "Attention layers are linear maps followed by a softmax.",
    "Integers are cheaper to multiply than floats.",
    "The mean of the token states is the sentence embedding.",
]


def save_tiny_bert(path, *, max_position_embeddings: int = TINY_CONTEXT) -> None:
    """A random 2-layer BERT (hidden 32) saved with save_pretrained, with MiniLM's tokenizer."""
    torch.manual_seed(0)
    config = transformers.BertConfig(
        vocab_size=30522,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=max_position_embeddings,
    )
    transformers.BertModel(config).eval().save_pretrained(path)
    transformers.AutoTokenizer.from_pretrained(str(minilm_path())).save_pretrained(path)


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory):
    path = tmp_path_factory.mktemp("tiny-bert")
    save_tiny_bert(path)
    return path


@pytest.fixture(scope="module")
def tiny(tiny_dir):
    return load_hf(tiny_dir)


# ------------------------------------------------------------------------------- texts files


def test_read_texts_skips_blank_lines_and_strips(tmp_path):
    path = tmp_path / "t.txt"
    path.write_bytes("\ufeffone text\n\n  two  \r\n\t\nthree é\n".encode())
    assert read_texts(path) == ["one text", "two", "three é"]


@pytest.mark.parametrize(
    ("content", "match"),
    [
        (b"", "empty"),
        (b"\n   \n\t\n", "empty"),
        (b"caf\xe9\n", "not UTF-8"),
        (b"abc\x00def\n", "binary"),
    ],
)
def test_read_texts_bad_files(tmp_path, content, match):
    path = tmp_path / "t.txt"
    path.write_bytes(content)
    with pytest.raises(InvalidInputError, match=match):
        read_texts(path, what="--calib")


def test_read_texts_missing_and_directory(tmp_path):
    with pytest.raises(InvalidInputError, match="does not exist"):
        read_texts(tmp_path / "nope.txt")
    with pytest.raises(InvalidInputError, match="is a directory"):
        read_texts(tmp_path)


# ------------------------------------------------------------------------ plain transformers


def _mean_pooled_reference(model_dir, texts, max_length):
    """Independent reference: transformers' BertModel + tokenizer, masked mean in NumPy."""
    model = transformers.AutoModel.from_pretrained(str(model_dir)).eval()
    tok = transformers.AutoTokenizer.from_pretrained(str(model_dir))
    rows = []
    for text in texts:  # one text at a time: no padding at all
        enc = tok([text], truncation=True, max_length=max_length, return_tensors="pt")
        with torch.no_grad():
            h = model(**enc).last_hidden_state[0].numpy().astype(np.float64)
        e = h.mean(axis=0)
        rows.append(e / np.linalg.norm(e))
    return np.array(rows)


def test_plain_transformers_directory(tiny, tiny_dir):
    assert isinstance(tiny, HFEncoder)
    assert tiny.kind == "transformers"
    assert tiny.input_names == ("input_ids", "attention_mask", "token_type_ids")
    assert tiny.max_length == TINY_CONTEXT  # min(tokenizer 256, max_position_embeddings 64)
    texts = [*SHORT, "x"]
    emb = tiny.embed(texts, batch_size=3)  # batches of 3, padded: the mask must matter
    ref = _mean_pooled_reference(tiny_dir, texts, TINY_CONTEXT)
    assert emb.shape == (len(texts), 32)
    np.testing.assert_allclose(emb, ref, atol=2e-5)
    np.testing.assert_allclose(np.linalg.norm(emb, axis=1), 1.0, atol=1e-5)


def test_batches_are_positional_token_tensors(tiny):
    batches = tiny.batches(SHORT[:5], batch_size=2)
    assert [len(b[0]) for b in batches] == [2, 2, 1]
    tok = tiny.tokenizer
    seen = {}
    for ids, mask, types in batches:
        assert ids.dtype == mask.dtype == types.dtype == torch.int64
        assert ids.shape == mask.shape == types.shape
        for row, m in zip(ids.tolist(), mask.tolist(), strict=True):
            tokens = [t for t, keep in zip(row, m, strict=True) if keep]
            seen[tuple(tokens)] = True
    want = {tuple(tok(t)["input_ids"]) for t in SHORT[:5]}
    assert set(seen) == want  # every text once, unpadded tokens as the tokenizer makes them


def test_truncation_warns_once_with_counts(tiny):
    long_a = "word " * 200
    long_b = "token " * 100
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        batches = tiny.batches([SHORT[0], long_a, SHORT[1], long_b], what="calibration texts")
    quant = [w for w in caught if issubclass(w.category, QuantizationWarning)]
    assert len(quant) == 1
    message = str(quant[0].message)
    assert "2 of 4 calibration texts" in message
    assert f"truncated to {TINY_CONTEXT} tokens" in message
    assert "202" in message  # the longest: 200 words + [CLS] + [SEP]
    assert len(batches) == 1 and batches[0][0].shape == (4, TINY_CONTEXT)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # short texts: no warning at all
        tiny.batches(SHORT)


def test_empty_texts_are_refused(tiny):
    with pytest.raises(InvalidInputError, match="empty"):
        tiny.batches([])
    with pytest.raises(InvalidInputError, match="empty texts"):
        tiny.batches(["a", "  "])
    with pytest.raises(InvalidInputError, match="single string"):
        tiny.batches("abc")


# -------------------------------------------------------------------- sentence-transformers


def test_minilm_matches_sentence_transformers_encode():
    hf = load_hf("minilm")
    assert hf.kind == "sentence-transformers"
    assert hf.max_length == 256  # the model's max_seq_length, below the config's 512
    emb = hf.embed(SHORT, batch_size=3)
    ref = hf.encoder.model.encode(SHORT, convert_to_numpy=True, normalize_embeddings=True)
    np.testing.assert_allclose(emb, ref, atol=1e-5)


def test_text_encoder_refuses_other_modules():
    with pytest.raises(InvalidInputError, match="SentenceTransformer or a transformers"):
        TextEncoder(torch.nn.Linear(2, 2))


# -------------------------------------------------------------------------- bad directories


def test_missing_path_and_file(tmp_path):
    with pytest.raises(InvalidInputError, match=r"no such directory.*minilm"):
        load_hf(tmp_path / "nope")
    (tmp_path / "f.bin").write_bytes(b"x")
    with pytest.raises(InvalidInputError, match="is a file"):
        load_hf(tmp_path / "f.bin")
    with pytest.raises(InvalidInputError, match=r"neither modules\.json nor config\.json"):
        load_hf(tmp_path)


@pytest.mark.parametrize(
    ("config", "match"),
    [
        ({"model_type": "t5", "is_encoder_decoder": True}, "sequence-to-sequence"),
        ({"model_type": "gpt2", "architectures": ["GPT2LMHeadModel"]}, "decoder-only"),
        ({"model_type": "no-such-model-type"}, "not a configuration transformers can read"),
    ],
)
def test_unsupported_configs(tmp_path, config, match):
    (tmp_path / "config.json").write_text(json.dumps(config))
    with pytest.raises(InvalidInputError, match=match) as info:
        load_hf(tmp_path)
    assert str(tmp_path) in str(info.value)


def test_config_without_weights_or_tokenizer(tmp_path, tiny_dir):
    config = json.loads((tiny_dir / "config.json").read_text())
    (tmp_path / "config.json").write_text(json.dumps(config))
    with pytest.raises(InvalidInputError, match="no tokenizer files"):
        load_hf(tmp_path)
    transformers.AutoTokenizer.from_pretrained(str(tiny_dir)).save_pretrained(tmp_path)
    with pytest.raises(InvalidInputError, match="AutoModel could not load"):
        load_hf(tmp_path)


def test_tokenizer_larger_than_the_vocabulary(tmp_path, tiny_dir):
    torch.manual_seed(0)
    config = transformers.BertConfig(
        vocab_size=100, hidden_size=8, num_hidden_layers=1, num_attention_heads=1,
        intermediate_size=8,
    )  # fmt: skip
    transformers.BertModel(config).save_pretrained(tmp_path)
    transformers.AutoTokenizer.from_pretrained(str(tiny_dir)).save_pretrained(tmp_path)
    with pytest.raises(InvalidInputError, match="30522 tokens but the model's vocabulary only 100"):
        load_hf(tmp_path)


# --------------------------------------------------------------- quantization and agreement


def test_quantize_and_evaluate(tiny):
    calib = tiny.batches(SHORT, batch_size=4)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        report = quantize_model(tiny.encoder, calib, w_bits=8, a_bits=8, method="minmax")
    unsupported = [w for w in caught if "unsupported types" in str(w.message)]
    assert len(unsupported) == 1  # Embedding and LayerNorm: listed in one warning
    text = str(unsupported[0].message)
    assert "(Embedding)" in text and "(LayerNorm)" in text
    assert any("word_embeddings" in s for s in report.skipped)
    assert len(report.layers) == 2 * 6 + 1  # per layer q, k, v, out, intermediate, output; pooler
    held_out = [f"{a} {b}" for a, b in zip(SHORT, reversed(SHORT), strict=True)]
    got = evaluate(tiny, report.model, held_out, batch_size=3)
    # independent: cosine and nearest neighbours from the two embeddings
    ref = tiny.embed(held_out)
    test = tiny.embed(held_out, report.model)
    cos = np.sum(ref * test, axis=1) / (np.linalg.norm(ref, axis=1) * np.linalg.norm(test, axis=1))
    assert got.mean_cosine == pytest.approx(float(cos.mean()), abs=1e-6)
    assert 0.9 < got.mean_cosine < 1.0  # W8A8 is close to FP32 but not equal
    sims_r, sims_t = ref @ ref.T, test @ test.T
    np.fill_diagonal(sims_r, -np.inf)
    np.fill_diagonal(sims_t, -np.inf)
    agree = np.mean(np.argmax(sims_r, 1) == np.argmax(sims_t, 1))
    assert got.nn_top1_agreement == pytest.approx(agree)
    same = evaluate(tiny, tiny.encoder, held_out)
    assert same.mean_cosine == pytest.approx(1.0, abs=1e-6) and same.nn_top1_agreement == 1.0
    with pytest.raises(InvalidInputError, match="at least 2 texts"):
        evaluate(tiny, report.model, ["one"])
