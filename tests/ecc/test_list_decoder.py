"""Tests of frugalml.ecc.list_decoder: Chase test patterns around the neural syndrome decoder,
stopped by Taipale & Pursley's ML certificate."""

from __future__ import annotations

from math import comb

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from frugalml.ecc.ensemble import AutomorphismEnsemble  # noqa: E402
from frugalml.ecc.list_decoder import (  # noqa: E402
    NeuralListDecoder,
    chase_patterns,
    ml_certificate,
)
from frugalml.ecc.osd import OrderedStatistics  # noqa: E402
from frugalml.errors import InvalidInputError  # noqa: E402

from ._reference import zero_codeword_frames  # noqa: E402


def _corr(y, x):
    return np.einsum("bn,bn->b", y.astype(np.float64), 1.0 - 2.0 * x.astype(np.float64))


def test_patterns_are_all_subsets_by_weight():
    pats = chase_patterns(5)
    assert len(pats) == 2**5 - 1
    assert [len(p) for p in pats] == sorted(len(p) for p in pats)
    assert len({tuple(p) for p in pats}) == len(pats)
    assert len(chase_patterns(6, max_weight=2)) == comb(6, 1) + comb(6, 2)
    assert chase_patterns(0) == []


def test_list_decoder_is_invariant_to_the_codeword(bch, gru):
    y0, sigma = zero_codeword_frames(bch, 3.0, 400, 10)
    msgs = np.random.default_rng(11).integers(0, 2, size=(400, bch.k), dtype=np.uint8)
    c = bch.encode(msgs)
    yc = ((1.0 - 2.0 * c) * y0).astype(np.float32)
    for dec in (
        NeuralListDecoder(gru, positions=4),
        NeuralListDecoder(gru, positions=3, windows=1),
    ):
        e0 = dec(y0 * (2 / sigma**2), sigma=sigma).bits
        ec = dec(yc * (2 / sigma**2), sigma=sigma).bits ^ c
        assert np.array_equal(e0, ec)


def test_list_decoder_improves_on_its_ensemble_and_certifies_ml(bch, gru):
    y, sigma = zero_codeword_frames(bch, 3.5, 1500, 4)
    llr = y * (2 / sigma**2)
    ens = AutomorphismEnsemble(gru, windows=2)
    base = ens(llr, sigma=sigma)
    dec = NeuralListDecoder(ens, positions=5)
    out = dec(llr, sigma=sigma)
    assert out.valid.sum() >= base.valid.sum()
    both = base.valid & out.valid
    # among words the ensemble already solved, the list decoder's answer is never less likely
    assert np.all(_corr(y, out.bits)[both] >= _corr(y, base.bits)[both] - 1e-4)
    assert out.bits.any(axis=1).sum() < base.bits.any(axis=1).sum()
    stats = dec.last_stats
    assert stats.words == 1500 and stats.patterns_used <= 31
    cert = ml_certificate(y, out.bits, out.valid, bch.designed_distance)
    assert stats.certified == int(cert.sum()) > 0
    # certified answers agree with OSD of order 3 (the ML codeword when certified)
    osd = OrderedStatistics(bch, order=3)(llr[cert]).bits
    assert np.all(_corr(y[cert], out.bits[cert]) >= _corr(y[cert], osd) - 1e-4)


def test_zero_syndrome_words_skip_the_network(bch, gru):
    y = np.ones((3, bch.n), dtype=np.float32)
    y[1, :] = 0.5
    dec = NeuralListDecoder(gru, positions=2)
    out = dec(y * 2.0, sigma=1.0)
    assert not out.bits.any() and out.valid.all()
    assert dec.last_stats.ensemble_words == 0


def test_bad_input(bch, gru):
    with pytest.raises(InvalidInputError, match="SyndromeDecoder or an AutomorphismEnsemble"):
        NeuralListDecoder(object())
    with pytest.raises(InvalidInputError, match="no fallback"):
        NeuralListDecoder(AutomorphismEnsemble(gru, fallback=OrderedStatistics(bch, order=1)))
    with pytest.raises(InvalidInputError, match="min_distance"):
        NeuralListDecoder(gru, min_distance="exact")
    with pytest.raises(InvalidInputError, match="positions"):
        NeuralListDecoder(gru, positions=-1)
    dec = NeuralListDecoder(gru, positions=2)
    with pytest.raises(InvalidInputError, match="sigma"):
        dec(np.zeros((2, bch.n)))
    with pytest.raises(InvalidInputError):
        dec(np.zeros((2, bch.n + 1)), sigma=1.0)
    assert "test patterns" in dec.summary()


def test_without_a_distance_bound_the_search_stops_at_the_first_codeword(bch, gru):
    y, sigma = zero_codeword_frames(bch, 3.5, 800, 6)
    llr = y * (2 / sigma**2)
    lazy = NeuralListDecoder(gru, positions=4, min_distance=None)
    out = lazy(llr, sigma=sigma)
    # every word that got a codeword counts as done; the others tried all 15 patterns
    assert lazy.last_stats.certified == int(out.valid.sum())
    assert "stop at the first codeword" in lazy.summary()
    cert = NeuralListDecoder(gru, positions=4)
    cert(llr, sigma=sigma)
    assert lazy.last_stats.ensemble_words < cert.last_stats.ensemble_words
