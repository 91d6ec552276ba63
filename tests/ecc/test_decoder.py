"""The one decoder call convention: every decoder is ``decoder(llr, sigma=...) -> Decoded`` on
LLRs of any leading shape, and gives the bits of its earlier entry point on the same words."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest

from frugalml.ecc import (
    BeliefPropagation,
    CascadeDecoder,
    Decoded,
    Decoder,
    HardDecision,
    OrderedStatistics,
    ebn0_to_sigma,
    get_code,
    hard_decision,
    simulate,
)
from frugalml.errors import InvalidInputError

MODELS = Path(__file__).resolve().parents[2] / "benchmarks" / "models" / "ecc"


def _words(code, frames, ebn0, seed):
    sigma = ebn0_to_sigma(ebn0, code.rate)
    y = 1.0 + sigma * np.random.default_rng(seed).standard_normal((frames, code.n))
    return y, y * (2.0 / sigma**2), sigma


def _old(call):
    """The result of a deprecated entry point, its warning silenced."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return call()


def _check_convention(dec, llr, sigma, old_bits):
    """``dec`` through the convention on (b, n), (n,) and (a, b, n) LLRs gives ``old_bits``."""
    assert isinstance(dec, Decoder)
    b, n = llr.shape
    out = dec(llr, sigma=sigma)
    assert isinstance(out, Decoded)
    assert out.bits.shape == (b, n) and out.bits.dtype == np.uint8
    assert out.valid.shape == (b,) and out.valid.dtype == bool
    np.testing.assert_array_equal(out.bits, old_bits)
    np.testing.assert_array_equal(out.valid, dec.code.is_codeword(out.bits))
    one = dec(llr[3], sigma=sigma)
    assert one.bits.shape == (n,) and one.valid.shape == ()
    np.testing.assert_array_equal(one.bits, old_bits[3])
    grid = dec(llr[:6].reshape(2, 3, n), sigma=sigma)
    assert grid.bits.shape == (2, 3, n) and grid.valid.shape == (2, 3)
    np.testing.assert_array_equal(grid.bits, old_bits[:6].reshape(2, 3, n))
    empty = dec(llr[:0], sigma=sigma)
    assert empty.bits.shape == (0, n) and empty.valid.shape == (0,)
    np.testing.assert_array_equal(np.asarray(out), out.bits)
    assert str(out) == out.summary() and f"{b} word(s)" in out.summary()
    return out


def test_numpy_decoders_match_their_earlier_entry_points(bch):
    y, llr, sigma = _words(bch, 60, 3.0, seed=1)
    _check_convention(HardDecision(bch), llr, sigma, hard_decision(y))
    for variant in ("sum-product", "min-sum"):
        bp = BeliefPropagation(bch, 20, variant)
        out = _check_convention(bp, llr, sigma, _old(lambda bp=bp: bp(y, sigma)))
        _bits, converged = _old(lambda bp=bp: bp.decode_llr(llr))
        np.testing.assert_array_equal(out.valid, converged)
        np.testing.assert_array_equal(out.iterations, bp.iterations_used(llr))
        assert "BP iterations" in out.summary()
    for order in (0, 2):
        osd = OrderedStatistics(bch, order)
        out = _check_convention(osd, llr, sigma, _old(lambda osd=osd: osd(y, sigma)))
        np.testing.assert_array_equal(out.bits, _old(lambda osd=osd: osd.decode_llr(llr)))
        assert out.valid.all()
    # the NumPy decoders do not need sigma, and accept a tensor
    np.testing.assert_array_equal(HardDecision(bch)(llr).bits, hard_decision(y))
    torch = pytest.importorskip("torch")
    np.testing.assert_array_equal(
        OrderedStatistics(bch, 1)(torch.from_numpy(llr)).bits, OrderedStatistics(bch, 1)(llr).bits
    )


def test_cascade_of_numpy_decoders(bch):
    y, llr, sigma = _words(bch, 200, 2.0, seed=2)
    bp = BeliefPropagation(bch, 5)
    osd = OrderedStatistics(bch, 1)
    first = bp(llr)
    cascade = CascadeDecoder(bp, osd)
    expect = first.bits.copy()
    expect[~first.valid] = osd(llr[~first.valid]).bits
    out = _check_convention(cascade, llr, sigma, expect)
    np.testing.assert_array_equal(out.fallback_used, ~first.valid)
    assert out.valid.all() and 0 < out.fallback_used.sum() < len(y)
    assert "to the fallback" in out.summary() and "cascade" in cascade.summary()


def test_torch_decoders_match_their_earlier_entry_points(bch, trained):
    pytest.importorskip("torch")
    from frugalml.ecc import AutomorphismEnsemble

    gru, _ = trained
    y, llr, sigma = _words(bch, 60, 3.0, seed=3)
    _check_convention(gru, llr, sigma, _old(lambda: gru.decode(y)))
    osd = OrderedStatistics(bch, 2)
    for ens in (
        AutomorphismEnsemble(gru, windows=2),
        AutomorphismEnsemble(gru, windows=2, fallback=osd),
    ):
        _check_convention(ens, llr, sigma, _old(lambda ens=ens: ens(y, sigma)))
    old_cascade = AutomorphismEnsemble(gru, permutations="identity", fallback=osd)
    out = _check_convention(
        CascadeDecoder(gru, osd), llr, sigma, _old(lambda: old_cascade(y, sigma))
    )
    assert out.fallback_used.any()


def test_simulate_takes_any_decoder(bch, trained):
    pytest.importorskip("torch")
    gru, _ = trained
    kw = {"min_frame_errors": 10**9, "max_frames": 600, "batch": 200, "rng": 5}
    osd = OrderedStatistics(bch, 1)
    for dec, old in (
        (HardDecision(bch), hard_decision),
        (gru, lambda y: gru.decode_received(y).bits),
        (CascadeDecoder(gru, osd), None),
    ):
        res = simulate(bch, dec, 3.0, **kw)
        assert res.frames == 600
        if old is not None:
            ref = _old(lambda old=old: simulate(bch, old, 3.0, **kw))
            assert (res.bit_errors, res.frame_errors) == (ref.bit_errors, ref.frame_errors)


# ---- pretrained decoders ---------------------------------------------------------------------


def test_pretrained_equals_loading_the_same_file():
    pytest.importorskip("torch")
    import importlib.resources

    import torch

    from frugalml.ecc import list_pretrained, load_decoder, pretrained

    assert {("bch-63-45", b) for b in ("gru", "mlp", "transformer")} <= set(list_pretrained())
    code = get_code("bch-63-45")
    dec = pretrained("bch-63-45", device="cpu")
    assert dec.backbone == "gru" and not dec.training and dec.device.type == "cpu"
    shipped = Path(str(importlib.resources.files("frugalml.ecc") / "checkpoints"))
    paths = [shipped / "bch-63-45-gru.pt"]
    if (MODELS / "bch-63-45-gru.pt").exists():  # the benchmark's copy in a checkout
        paths.append(MODELS / "bch-63-45-gru.pt")
        assert paths[0].read_bytes() == paths[1].read_bytes()
    kw = {"min_frame_errors": 10**9, "max_frames": 2000, "batch": 1000, "rng": 4}
    res = simulate(code, dec, 4.0, **kw)
    assert 0 < res.ber < 0.05
    for path in paths:
        other = load_decoder(path, code=code)
        for a, b in zip(dec.state_dict().values(), other.state_dict().values(), strict=True):
            assert torch.equal(a, b)
        again = simulate(code, other, 4.0, **kw)
        assert (again.bit_errors, again.frame_errors) == (res.bit_errors, res.frame_errors)


def test_pretrained_cascade_is_near_osd():
    pytest.importorskip("torch")
    from frugalml.ecc import pretrained

    code = get_code("bch-63-45")
    cascade = CascadeDecoder(pretrained("bch-63-45"), OrderedStatistics(code, 2))
    kw = {"min_frame_errors": 10**9, "max_frames": 1000, "batch": 500, "rng": 6}
    gru = simulate(code, cascade.first, 4.0, **kw)
    both = simulate(code, cascade, 4.0, **kw)
    assert both.ber < 0.2 * gru.ber


def test_pretrained_lists_what_is_available():
    pytest.importorskip("torch")
    from frugalml.ecc import pretrained

    with pytest.raises(InvalidInputError, match=r"available: .*bch-63-45 \(gru\)"):
        pretrained("bch-31-21")
    with pytest.raises(InvalidInputError, match="backbone"):
        pretrained("bch-63-45", "cnn")
    with pytest.raises(InvalidInputError, match="string"):
        pretrained(63)
    with pytest.raises(InvalidInputError, match="device"):
        pretrained("bch-63-45", device="tpu")
