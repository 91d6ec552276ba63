"""Tests of frugalml.ecc.certificate: the ML certificate and the Monte-Carlo ML error bounds,
against brute-force ML decoding over every codeword of BCH(31, 16)."""

from __future__ import annotations

import numpy as np
import pytest

from frugalml.ecc.certificate import ml_certificate, ml_error_bounds
from frugalml.ecc.channel import ebn0_to_sigma
from frugalml.ecc.codes import get_code
from frugalml.errors import InvalidInputError


@pytest.fixture(scope="module")
def book():
    code = get_code("bch-31-16")
    msgs = ((np.arange(2**16)[:, None] >> np.arange(16)) & 1).astype(np.uint8)
    return code, code.encode(msgs)


def _brute_ml(y, book):
    out = np.empty((len(y), book.shape[1]), dtype=np.uint8)
    signs = 1.0 - 2.0 * book.astype(np.float64)
    for s in range(0, len(y), 250):
        out[s : s + 250] = book[np.argmax(y[s : s + 250] @ signs.T, axis=1)]
    return out


def test_certificate_never_certifies_a_non_ml_codeword(book):
    code, cw = book
    sigma = ebn0_to_sigma(2.0, code.rate)
    y = 1.0 + sigma * np.random.default_rng(3).standard_normal((300, code.n))
    scores = y @ (1.0 - 2.0 * cw.astype(np.float64)).T
    order = np.argsort(-scores, axis=1)
    ml, second = cw[order[:, 0]], cw[order[:, 1]]
    valid = np.ones(len(y), dtype=bool)
    cert_ml = ml_certificate(y, ml, valid, 7)
    assert not ml_certificate(y, second, valid, 7).any()  # never a codeword that is not ML
    assert 0.3 < cert_ml.mean() < 1.0  # the test is not vacuous at 2 dB
    assert not ml_certificate(y, ml, ~valid, 7).any()  # non-codewords are never certified
    assert not (ml_certificate(y, ml, valid, 5) & ~cert_ml).any()  # weaker d: a subset


def test_ml_error_bounds_bracket_brute_force_ml(book):
    code, cw = book
    frames, seed, ebn0 = 3000, 5, 2.5
    res = ml_error_bounds(
        code, ebn0, order=2, max_frames=frames, batch=1000, min_frame_errors=10**6, rng=seed
    )
    sigma = ebn0_to_sigma(ebn0, code.rate)
    gen = np.random.default_rng(seed)
    y = np.concatenate([1.0 + sigma * gen.standard_normal((1000, code.n)) for _ in range(3)])
    ml = _brute_ml(y, cw)
    ml_frames = int(ml.any(axis=1).sum())
    assert res.frames == frames and ml_frames >= 20
    assert res.lower_frame_errors <= ml_frames <= res.hybrid_frame_errors
    assert res.lower_frame_errors >= 0.9 * ml_frames
    # certified frames are decoded right by ML
    zero = np.zeros_like(ml)
    cert = ml_certificate(y, zero, np.ones(frames, dtype=bool), 7)
    assert res.certified == int(cert.sum()) and not ml[cert].any()
    assert res.ber_lower <= res.ber_hybrid and "ML bounds" in res.summary()


def test_ml_error_bounds_bad_input():
    with pytest.raises(InvalidInputError, match="min_distance"):
        ml_error_bounds(get_code("ldpc-ldpc_96_48.alist"), 3.0)
    with pytest.raises(InvalidInputError, match="BinaryLinearCode"):
        ml_error_bounds("bch-63-45", 3.0)
