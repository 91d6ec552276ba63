"""Hardening of the ecc API: memory and time guards refuse sizes up front, result objects
show arrays by shape and print their summary, decoder files are never unpickled."""

from __future__ import annotations

import numpy as np
import pytest

from frugalml.ecc import BeliefPropagation, HardDecision, OrderedStatistics, get_code, simulate
from frugalml.errors import InvalidInputError, TooLargeError
from tests._pickles import write_malicious


@pytest.mark.parametrize("name", ["polar-1048576-524288", "ldpc-regular-10000000-3-6"])
def test_huge_codes_are_refused_before_allocation(name):
    with pytest.raises(TooLargeError, match="shorter code"):
        get_code(name)


def test_code_guard_follows_the_memory_limit(monkeypatch):
    get_code("polar-256-128")
    monkeypatch.setenv("FRUGALML_MEMORY_LIMIT", str(100_000))  # < 4 * 256^2
    with pytest.raises(TooLargeError, match="polar-256-128"):
        get_code("polar-256-128")


def test_simulate_refuses_a_batch_that_does_not_fit(monkeypatch):
    code = get_code("bch-31-21")
    monkeypatch.setenv("FRUGALML_MEMORY_LIMIT", str(10**6))
    with pytest.raises(TooLargeError, match="batch"):
        simulate(code, HardDecision(code), 4.0, batch=10**4, max_frames=10**4)
    # the batch is cut to max_frames: a small run with a large batch is fine
    res = simulate(code, HardDecision(code), 4.0, batch=10**9, max_frames=100)
    assert res.frames == 100


def test_bp_iterations_are_capped():
    from frugalml.ecc.bp import MAX_ITERATIONS

    code = get_code("bch-31-21")
    BeliefPropagation(code, iterations=MAX_ITERATIONS)
    with pytest.raises(InvalidInputError, match="iterations"):
        BeliefPropagation(code, iterations=MAX_ITERATIONS + 1)


def test_osd_refuses_too_many_patterns(monkeypatch):
    from frugalml.ecc import osd

    code = get_code("bch-31-21")
    assert OrderedStatistics(code, order=3).patterns == 1 + 21 + 210 + 1330
    monkeypatch.setattr(osd, "MAX_PATTERNS", 1000)
    OrderedStatistics(code, order=2)  # 232 patterns
    with pytest.raises(TooLargeError, match="lower order"):
        OrderedStatistics(code, order=3)


def test_decoder_and_training_memory_guards(monkeypatch):
    pytest.importorskip("torch")
    from frugalml.ecc.neural import SyndromeDecoder, train_decoder

    code = get_code("bch-15-7")
    with pytest.raises(TooLargeError, match="--hidden"):
        SyndromeDecoder(code, "gru", hidden=10**7)
    decoder = SyndromeDecoder(code, "gru")
    monkeypatch.setenv("FRUGALML_MEMORY_LIMIT", str(10**6))
    with pytest.raises(TooLargeError, match="--batch"):
        train_decoder(decoder, batch=10**4, steps=1)


def test_decoder_size_estimate_matches_the_real_parameter_count():
    pytest.importorskip("torch")
    from frugalml.ecc.backbones import estimate_size
    from frugalml.ecc.neural import SyndromeDecoder

    code = get_code("bch-31-21")
    for backbone in ("gru", "mlp", "transformer"):
        dec = SyndromeDecoder(code, backbone)
        params, _ = estimate_size(backbone, dec.config, dec.n, dec.k)
        assert 0.5 <= params / dec.parameter_count() <= 2.0, backbone


def test_load_decoder_never_unpickles(tmp_path):
    pytest.importorskip("torch")
    from frugalml.ecc.neural import load_decoder

    marker = tmp_path / "pwned"
    evil = write_malicious(tmp_path / "evil.pt", marker, "raw-pickle")
    with pytest.raises(InvalidInputError, match="not a frugalml decoder file"):
        load_decoder(evil)
    assert not marker.exists()


def test_results_repr_by_shape_and_print_summary():
    code = get_code("bch-63-45")
    text = repr(code)
    assert "H=array(shape=(18, 63)" in text and "[" not in text.split("H=")[1][:30]
    assert str(code) == code.summary()
    res = simulate(code, HardDecision(code), 4.0, max_frames=50, batch=50)
    assert str(res) == res.summary() and repr(res).startswith("BERResult(")


def test_ensemble_stats_summary():
    from frugalml.ecc.ensemble import EnsembleStats

    stats = EnsembleStats(words=10, decoder_words=25, unresolved=1, fallback_words=1)
    assert "2.50 decoder passes per word" in str(stats)
    assert np.isclose(stats.passes, 2.5)
