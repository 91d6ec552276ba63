"""Tests of frugalml.ecc.ensemble: automorphism ensembles of the syndrome decoder, cascades."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from frugalml.ecc.cascade import CascadeDecoder  # noqa: E402
from frugalml.ecc.codes import get_code  # noqa: E402
from frugalml.ecc.decoder import Decoded  # noqa: E402
from frugalml.ecc.ensemble import (  # noqa: E402
    AutomorphismEnsemble,
    frobenius_automorphisms,
    is_automorphism,
)
from frugalml.ecc.neural import SyndromeDecoder  # noqa: E402
from frugalml.ecc.osd import OrderedStatistics  # noqa: E402
from frugalml.errors import FrugalDeprecationWarning, InvalidInputError  # noqa: E402

from ._reference import zero_codeword_frames  # noqa: E402


def _llr(y, sigma):
    return y.astype(np.float64) * (2.0 / sigma**2)


def _decode(ens, y, sigma):
    """Bits of a decoder called by the convention on the LLRs of channel outputs y."""
    out = ens(_llr(y, sigma), sigma=sigma)
    assert isinstance(out, Decoded)
    return out.bits


def _syndrome_weight(code, x):
    return ((x.astype(np.int64) @ code.H.T.astype(np.int64)) % 2).sum(axis=1)


# ---- automorphisms ---------------------------------------------------------------------------


@pytest.mark.parametrize(("name", "order"), [("bch-31-21", 5), ("bch-63-45", 6), ("bch-127-64", 7)])
def test_frobenius_maps_codewords_to_codewords(name, order):
    code = get_code(name)
    perms = frobenius_automorphisms(code)
    assert perms.shape == (order, code.n)  # ord_n(2) = m for n = 2^m - 1
    assert np.array_equal(perms[0], np.arange(code.n))
    assert len({tuple(p) for p in perms}) == order
    msgs = np.random.default_rng(0).integers(0, 2, size=(50, code.k), dtype=np.uint8)
    cw = code.encode(msgs)
    for p in perms:  # independent check: permuted codewords have zero syndrome
        assert not _syndrome_weight(code, cw[:, p]).any()


def test_non_cyclic_codes_get_the_identity_only():
    polar = get_code("polar-32-16")
    perms = frobenius_automorphisms(polar)
    assert perms.shape == (1, 32) and np.array_equal(perms[0], np.arange(32))


def test_is_automorphism_rejects_a_random_permutation(bch):
    p = np.random.default_rng(3).permutation(bch.n)
    assert not is_automorphism(bch, p)
    assert is_automorphism(bch, np.roll(np.arange(bch.n), 5))
    with pytest.raises(InvalidInputError, match="permutation"):
        is_automorphism(bch, np.zeros(bch.n, dtype=int))


# ---- members and selection against an independent reference ----------------------------------


def _reference_member(dec, y, perm, window):
    """Member (perm, window) written out: permute, shift by the window of rank `window` found
    with NumPy, decode without the decoder's own preprocessing, undo both."""
    n, r = dec.n, dec.n - dec.k
    yp = y[:, perm]
    a = np.abs(yp)
    sums = np.array(
        [[a[b, [(t + j) % n for j in range(r)]].sum() for t in range(n)] for b in range(len(y))]
    )
    t = np.argsort(sums, axis=1, kind="stable")[:, window]
    s = (t - dec.k) % n
    out = np.empty(y.shape, dtype=np.uint8)
    dec.permute = False
    try:
        for b in range(len(y)):
            yq = np.roll(yp[b], -s[b])  # yq[i] = yp[(i + s) mod n]
            xq = dec.decode_received(yq.astype(np.float32)).bits
            xp = np.roll(xq, s[b])
            out[b, perm] = xp
    finally:
        dec.permute = True
    return out


def test_member_decode_matches_reference(bch, gru):
    y, _ = zero_codeword_frames(bch, 4.0, 40, 5)
    ens = AutomorphismEnsemble(gru, windows=2)
    for member in (0, 3, len(ens) - 1):
        e, w = ens.members[member]
        ref = _reference_member(gru, y, ens.permutations[e], w)
        assert np.array_equal(ens.member_decode(y, member), ref)


def test_full_ensemble_keeps_the_most_likely_candidate(bch, gru):
    y, sigma = zero_codeword_frames(bch, 3.0, 300, 6)
    ens = AutomorphismEnsemble(gru, windows=2, lazy=False)
    out = _decode(ens, y, sigma)
    cands = np.stack([ens.member_decode(y, m) for m in range(len(ens))], axis=1)  # (B, E, n)
    for b in range(len(y)):
        sw = _syndrome_weight(bch, cands[b])
        corr = (y[b] * (1.0 - 2.0 * cands[b])).sum(axis=1)
        valid = sw == 0
        if valid.any():
            expect = corr[valid].max()
            assert _syndrome_weight(bch, out[b : b + 1])[0] == 0
            assert np.isclose((y[b] * (1.0 - 2.0 * out[b])).sum(), expect, rtol=0, atol=1e-4)
        else:
            assert _syndrome_weight(bch, out[b : b + 1])[0] == sw.min()
    assert ens.last_stats.decoder_words == len(ens) * len(y)


@pytest.mark.parametrize("lazy", [False, True])
def test_selection_rule_on_planted_candidates(bch, gru, monkeypatch, lazy):
    """Members replaced by a table of planted outputs (codewords and non-codewords, several
    distinct codewords per word): the kept output is the brute-force choice."""
    rng = np.random.default_rng(13)
    B = 200
    y, sigma = zero_codeword_frames(bch, 2.0, B, 14)
    ens = AutomorphismEnsemble(gru, windows=2, lazy=lazy)
    E = len(ens)
    cw = bch.encode(rng.integers(0, 2, size=(B, E, bch.k), dtype=np.uint8).reshape(-1, bch.k))
    table = cw.reshape(B, E, bch.n)
    flip = rng.random((B, E)) < 0.5  # half of the outputs become non-codewords
    pos = rng.integers(0, bch.n, size=(B, E))
    table[flip, pos[flip]] ^= 1
    rows_of = {}

    def planted(arr, member):
        idx = [rows_of[arr[i].tobytes()] for i in range(len(arr))]
        return table[idx, member].copy()

    for b in range(B):
        rows_of[y[b].tobytes()] = b
    monkeypatch.setattr(ens, "member_decode", planted)
    out = _decode(ens, y, sigma)
    for b in range(B):
        sw = _syndrome_weight(bch, table[b])
        corr = (y[b].astype(np.float64) * (1.0 - 2.0 * table[b])).sum(axis=1)
        if lazy:  # members after the first codeword are never tried
            first = np.flatnonzero(sw == 0)
            stop = first[0] + 1 if first.size else E
            sw, corr = sw[:stop], corr[:stop]
        if (sw == 0).any():
            pick = np.flatnonzero(sw == 0)[np.argmax(corr[sw == 0])]
        else:
            low = np.flatnonzero(sw == sw.min())
            pick = low[np.argmax(corr[low])]
        assert np.array_equal(out[b], table[b, pick]), b


def test_lazy_runs_later_members_only_on_failures(bch, gru, monkeypatch):
    y, sigma = zero_codeword_frames(bch, 3.5, 400, 7)
    single = gru.decode_received(y).bits
    first_fail = _syndrome_weight(bch, single) > 0
    assert 0 < first_fail.sum() < len(y)
    lazy = AutomorphismEnsemble(gru, windows=2)
    seen: list[int] = []
    original = gru.decode_received

    def spy(arr, **kw):
        seen.append(len(arr))
        return original(arr, **kw)

    monkeypatch.setattr(gru, "decode_received", spy)
    res = lazy(_llr(y, sigma), sigma=sigma)
    out = res.bits
    monkeypatch.undo()
    assert res.fallback_used is None
    np.testing.assert_array_equal(res.valid, _syndrome_weight(bch, out) == 0)
    assert seen[0] == len(y) and seen[1] == first_fail.sum()
    assert all(a >= b for a, b in itertools.pairwise(seen[1:]))
    assert lazy.last_stats.decoder_words == sum(seen)
    # words whose first output is a codeword are left as they were
    assert np.array_equal(out[~first_fail], single[~first_fail])
    # the lazy ensemble finds a codeword exactly where the full one does
    full = _decode(AutomorphismEnsemble(gru, windows=2, lazy=False), y, sigma)
    assert np.array_equal(_syndrome_weight(bch, out) == 0, _syndrome_weight(bch, full) == 0)
    assert lazy.last_stats.unresolved == int((_syndrome_weight(bch, out) > 0).sum())


def test_ensemble_lowers_ber_on_fixed_noise(bch, gru):
    """Monte-Carlo on 20000 fixed words at 4 dB: the single decoder's ~1e-2 BER leaves ~6e3
    bit errors, so a drop by more than 10% is far beyond the noise of the comparison."""
    y, sigma = zero_codeword_frames(bch, 4.0, 20000, 8)
    single = gru.decode_received(y).bits.mean()
    ens = _decode(AutomorphismEnsemble(gru, windows=2), y, sigma).mean()
    assert ens < 0.9 * single


def test_cascade_hands_unresolved_words_to_the_fallback(bch, gru):
    y, sigma = zero_codeword_frames(bch, 3.0, 500, 9)
    osd = OrderedStatistics(bch, order=2)
    plain = AutomorphismEnsemble(gru)
    ens = _decode(plain, y, sigma)
    left = _syndrome_weight(bch, ens) > 0
    cascade = AutomorphismEnsemble(gru, fallback=osd)
    res = cascade(_llr(y, sigma), sigma=sigma)
    out = res.bits
    assert np.array_equal(out[~left], ens[~left])
    assert np.array_equal(out[left], osd(y[left]).bits)
    assert np.array_equal(res.fallback_used, left) and res.valid.all()
    assert cascade.last_stats.fallback_words == left.sum() > 0
    assert not _syndrome_weight(bch, out).any()  # OSD always returns codewords
    # the same as the ensemble followed by a CascadeDecoder
    two = CascadeDecoder(plain, osd)(_llr(y, sigma), sigma=sigma)
    assert np.array_equal(two.bits, out) and np.array_equal(two.fallback_used, left)


def test_identity_cascade_is_decoder_then_fallback(bch, gru):
    y, sigma = zero_codeword_frames(bch, 3.5, 500, 15)
    osd = OrderedStatistics(bch, order=1)
    single = gru.decode_received(y).bits
    left = _syndrome_weight(bch, single) > 0
    cascade = AutomorphismEnsemble(gru, permutations="identity", fallback=osd)
    assert len(cascade) == 1
    out = _decode(cascade, y, sigma)
    assert np.array_equal(out[~left], single[~left])
    assert np.array_equal(out[left], osd(y[left]).bits)
    assert cascade.last_stats.decoder_words == len(y)
    assert np.array_equal(_decode(CascadeDecoder(gru, osd), y, sigma), out)


def test_invariance_on_random_codewords(bch, gru):
    """The paper's Theorem 1 carries over: the same noise gives the same error pattern."""
    y0, sigma = zero_codeword_frames(bch, 3.5, 500, 10)
    msgs = np.random.default_rng(11).integers(0, 2, size=(500, bch.k), dtype=np.uint8)
    c = bch.encode(msgs)
    yc = ((1.0 - 2.0 * c) * y0).astype(np.float32)
    for ens in (
        AutomorphismEnsemble(gru, windows=2),
        AutomorphismEnsemble(gru, windows=2, lazy=False),
        AutomorphismEnsemble(gru, fallback=OrderedStatistics(bch, order=1)),
    ):
        e0 = _decode(ens, y0, sigma)
        ec = _decode(ens, yc, sigma) ^ c
        assert np.array_equal(e0, ec)


def test_single_word_and_empty_batch(bch, gru):
    y, sigma = zero_codeword_frames(bch, 5.0, 3, 12)
    ens = AutomorphismEnsemble(gru, windows=2)
    assert np.array_equal(_decode(ens, y[1], sigma), _decode(ens, y, sigma)[1])
    assert _decode(ens, np.zeros((0, bch.n), dtype=np.float32), sigma).shape == (0, bch.n)
    grid = ens(_llr(y[:2], sigma).reshape(1, 2, bch.n), sigma=sigma)
    assert grid.bits.shape == (1, 2, bch.n) and grid.valid.shape == (1, 2)


def test_deprecated_calls_on_channel_outputs(bch, gru):
    y, sigma = zero_codeword_frames(bch, 3.5, 200, 16)
    osd = OrderedStatistics(bch, order=1)
    ens = AutomorphismEnsemble(gru, windows=2, fallback=osd)
    new = _decode(ens, y, sigma)
    with pytest.warns(FrugalDeprecationWarning, match="ens"):
        np.testing.assert_array_equal(ens(y, sigma), new)
    with pytest.warns(FrugalDeprecationWarning, match="decode"):
        np.testing.assert_array_equal(ens.decode(y, sigma), new)
    with pytest.warns(FrugalDeprecationWarning, match="fallback"):
        old_fb = AutomorphismEnsemble(gru, windows=2, fallback=lambda v, s: osd(v).bits)
    np.testing.assert_array_equal(_decode(old_fb, y, sigma), new)
    plain = AutomorphismEnsemble(gru)
    with pytest.warns(FrugalDeprecationWarning):
        np.testing.assert_array_equal(plain(y), _decode(plain, y, sigma))


def test_bad_input(bch, gru):
    polar = get_code("polar-32-16")
    with pytest.raises(InvalidInputError, match="SyndromeDecoder"):
        AutomorphismEnsemble(object())
    with pytest.raises(InvalidInputError, match="cyclic-shift preprocessing"):
        AutomorphismEnsemble(SyndromeDecoder(polar, "mlp"), windows=2)
    with pytest.raises(InvalidInputError, match="not an automorphism"):
        AutomorphismEnsemble(gru, permutations=np.random.default_rng(0).permutation(bch.n))
    with pytest.raises(InvalidInputError, match="shape"):
        AutomorphismEnsemble(gru, permutations=np.zeros((2, 5), dtype=int))
    with pytest.raises(InvalidInputError, match="'frobenius', 'identity'"):
        AutomorphismEnsemble(gru, permutations="cyclic")
    with pytest.raises(InvalidInputError, match="windows"):
        AutomorphismEnsemble(gru, windows=0)
    with pytest.raises(InvalidInputError, match="fallback"):
        AutomorphismEnsemble(gru, fallback="osd-2")
    ens = AutomorphismEnsemble(gru, fallback=OrderedStatistics(bch, order=1))
    with pytest.raises(InvalidInputError, match="sigma"):
        ens(np.ones((2, bch.n)), sigma=0.0)
    with pytest.warns(FrugalDeprecationWarning), pytest.raises(InvalidInputError, match="sigma"):
        ens(np.ones((2, bch.n), dtype=np.float32))
    with pytest.raises(InvalidInputError, match="shape"):
        AutomorphismEnsemble(gru)(np.ones((2, bch.n + 1)), sigma=1.0)
    bad = np.ones((2, bch.n), dtype=np.float32)
    bad[0, 0] = np.nan
    with pytest.raises(InvalidInputError):
        AutomorphismEnsemble(gru)(bad, sigma=1.0)
    with pytest.raises(InvalidInputError, match="window"):
        gru.decode_received(np.ones((1, bch.n), dtype=np.float32), window=bch.n)
    with pytest.raises(InvalidInputError, match="Decoder"):
        CascadeDecoder(gru, "osd-2")
    with pytest.raises(InvalidInputError, match="different codes"):
        CascadeDecoder(gru, OrderedStatistics(get_code("bch-31-16"), order=1))
