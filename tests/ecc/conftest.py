"""Fixtures shared by the ECC tests that need torch."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="module")
def bch():
    from frugalml.ecc.codes import get_code

    return get_code("bch-31-21")


@pytest.fixture(scope="module")
def trained(bch):
    """A small GRU decoder trained briefly on BCH(31, 21) (about 2 s on one core): the decoder
    and its TrainResult."""
    pytest.importorskip("torch")
    from frugalml.ecc.neural import SyndromeDecoder, train_decoder

    dec = SyndromeDecoder(bch, "gru", rng=0)
    result = train_decoder(dec, ebn0_range=(4.0, 6.0), batch=256, steps=300, lr=1e-2, rng=1)
    return dec, result


@pytest.fixture(scope="module")
def gru(trained):
    """The briefly trained BCH(31, 21) GRU decoder of :func:`trained`."""
    return trained[0]
