"""Tests of frugalml.ecc.neural: the syndrome-based neural decoder (Bennatan et al. 2018)."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from frugalml.ecc.channel import ebn0_to_sigma, simulate  # noqa: E402
from frugalml.ecc.codes import get_code  # noqa: E402
from frugalml.ecc.decoder import Decoded, HardDecision  # noqa: E402
from frugalml.ecc.neural import (  # noqa: E402
    SyndromeDecoder,
    code_identity,
    is_cyclic,
    load_decoder,
    save_decoder,
    tanner_mask,
    train_decoder,
)
from frugalml.errors import FrugalDeprecationWarning, InvalidInputError  # noqa: E402


@pytest.fixture(scope="module")
def polar():
    return get_code("polar-32-16")


def _noisy(code, ebn0, frames, seed):
    sigma = ebn0_to_sigma(ebn0, code.rate)
    return 1.0 + sigma * np.random.default_rng(seed).standard_normal((frames, code.n))


def _flip_codewords(code, y0, seed):
    """Random codewords c and the received words (1 - 2c) * y0: the same noise magnitudes,
    with the signs that the noise realisation of y0 has relative to c."""
    msgs = np.random.default_rng(seed).integers(0, 2, size=(y0.shape[0], code.k), dtype=np.uint8)
    c = code.encode(msgs)
    return c, (1.0 - 2.0 * c) * y0


# ---- features and preprocessing -------------------------------------------------------------


@pytest.mark.parametrize("permute", [False, True])
def test_features_are_reliabilities_and_syndrome(bch, permute):
    dec = SyndromeDecoder(bch, "mlp", permute=permute)
    y0 = _noisy(bch, 3.0, 200, seed=1)
    feats, idx = dec.features(torch.from_numpy(y0))
    assert feats.shape == (200, 2 * bch.n - bch.k)
    hard = (y0 < 0).astype(np.uint8)
    if permute:
        idx = idx.numpy()
        y_p = np.take_along_axis(y0, idx, axis=1)
        np.testing.assert_array_equal(feats[:, : bch.n].numpy(), np.abs(y_p))
        syn = bch.syndrome(np.take_along_axis(hard, idx, axis=1))
    else:
        assert idx is None
        np.testing.assert_array_equal(feats[:, : bch.n].numpy(), np.abs(y0))
        syn = bch.syndrome(hard)
    np.testing.assert_array_equal(feats[:, bch.n :].numpy(), 1.0 - 2.0 * syn)
    # adding a codeword (flipping the signs of y at its ones) changes nothing
    _c, yc = _flip_codewords(bch, y0, seed=2)
    feats_c, idx_c = dec.features(torch.from_numpy(yc))
    assert torch.equal(feats_c, feats)
    if permute:
        np.testing.assert_array_equal(idx_c.numpy(), idx)


def test_shift_is_the_least_reliable_window_brute_force(bch):
    dec = SyndromeDecoder(bch, "mlp")
    assert dec.permute
    n, k = bch.n, bch.k
    rel = np.abs(_noisy(bch, 2.0, 100, seed=3))
    idx = dec.shift_index(torch.from_numpy(rel)).numpy()
    for b in range(rel.shape[0]):
        s = idx[b, 0]
        np.testing.assert_array_equal(idx[b], (np.arange(n) + s) % n)
        cost = [rel[b, (np.arange(k, n) + t) % n].sum() for t in range(n)]
        assert cost[s] <= min(cost) + 1e-12


def test_permutation_only_for_cyclic_codes(bch, polar):
    assert is_cyclic(bch) and not is_cyclic(polar)
    assert SyndromeDecoder(bch, "mlp").permute
    assert not SyndromeDecoder(bch, "mlp", permute=False).permute
    assert not SyndromeDecoder(polar, "mlp").permute
    y = _noisy(polar, 3.0, 10, seed=4)
    _feats, idx = SyndromeDecoder(polar, "mlp").features(torch.from_numpy(y))
    assert idx is None


class _Probe(torch.nn.Module):
    """Stand-in network: logits = a chosen function of the (shifted) features."""

    def __init__(self, n, mode):
        super().__init__()
        self.n, self.mode = n, mode
        self.dummy = torch.nn.Parameter(torch.zeros(1))

    def forward(self, x):
        rel = x[:, : self.n]
        if self.mode == "never":
            return torch.full_like(rel, -5.0)
        if self.mode == "echo":  # logits = |y_p|: un-shifting must give back |y|
            return rel.clone()
        # flip the least reliable position (in the shifted coordinates)
        out = torch.full_like(rel, -1.0)
        return out.scatter_(1, rel.argmin(1, keepdim=True), 1.0)


def test_permutation_is_undone_exactly(bch):
    dec = SyndromeDecoder(bch, "gru")
    assert dec.permute
    y = _noisy(bch, 2.0, 500, seed=5)
    hard = (y < 0).astype(np.uint8)
    dec.net = _Probe(bch.n, "never")
    np.testing.assert_array_equal(dec.decode_received(y).bits, hard)
    dec.net = _Probe(bch.n, "echo")
    with torch.no_grad():
        out = dec.logits(torch.from_numpy(y))
    np.testing.assert_array_equal(out.numpy(), np.abs(y.astype(np.float32)))
    dec.net = _Probe(bch.n, "least")
    expect = hard.copy()
    rows = np.arange(y.shape[0])
    expect[rows, np.abs(y).argmin(1)] ^= 1
    np.testing.assert_array_equal(dec.decode_received(y).bits, expect)
    # gather then scatter with the same index is the identity
    idx = dec.shift_index(torch.from_numpy(np.abs(y)))
    yt = torch.from_numpy(y)
    back = torch.empty_like(yt).scatter_(1, idx, yt.gather(1, idx))
    assert torch.equal(back, yt)


# ---- backbones ------------------------------------------------------------------------------


def test_tanner_mask_matches_brute_force(bch, polar):
    rng = np.random.default_rng(6)
    for H in (bch.H, polar.H, rng.integers(0, 2, size=(5, 9)).astype(np.uint8)):
        r, n = H.shape
        want = np.zeros((n + r, n + r), dtype=bool)
        for a in range(n + r):
            for b in range(n + r):
                if a == b:
                    want[a, b] = True
                elif a < n and b < n:
                    want[a, b] = any(H[c, a] and H[c, b] for c in range(r))
                elif a < n <= b:
                    want[a, b] = bool(H[b - n, a])
                elif b < n <= a:
                    want[a, b] = bool(H[a - n, b])
                else:
                    want[a, b] = any(H[a - n, i] and H[b - n, i] for i in range(n))
        np.testing.assert_array_equal(tanner_mask(H), want)
    dec = SyndromeDecoder(bch, "transformer")
    np.testing.assert_array_equal(dec.net.mask.numpy(), tanner_mask(bch.H))


def test_gru_matches_torch_gru(bch):
    dec = SyndromeDecoder(bch, "gru", hidden=12, layers=3, steps=4).double()
    net = dec.net
    ref = torch.nn.GRU(dec.m, 12, 3, batch_first=True).double()
    with torch.no_grad():
        for i in range(3):
            getattr(ref, f"weight_ih_l{i}").copy_(net.ih[i].weight)
            getattr(ref, f"bias_ih_l{i}").copy_(net.ih[i].bias)
            getattr(ref, f"weight_hh_l{i}").copy_(net.hh[i].weight)
            getattr(ref, f"bias_hh_l{i}").copy_(net.hh[i].bias)
        x = torch.randn(9, dec.m, dtype=torch.float64)
        seq, _ = ref(x.unsqueeze(1).expand(9, 4, dec.m))
        torch.testing.assert_close(net(x), net.out(seq[:, -1]), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("backbone", ["gru", "mlp", "transformer"])
def test_backbones_shapes_and_decode(bch, backbone):
    dec = SyndromeDecoder(bch, backbone, rng=3)
    y = _noisy(bch, 3.0, 37, seed=7)
    logits = dec.logits(torch.from_numpy(y).float())
    assert logits.shape == (37, bch.n)
    res = dec.decode_received(y, batch_size=10)
    bits = res.bits
    assert bits.dtype == np.uint8 and bits.shape == y.shape
    np.testing.assert_array_equal(res.valid, bch.is_codeword(bits))
    np.testing.assert_array_equal(bits, dec.decode_received(y).bits)
    np.testing.assert_array_equal(dec.decode_received(y[0]).bits, bits[0])
    assert dec.decode_received(np.zeros((0, bch.n))).bits.shape == (0, bch.n)
    # the call convention: LLRs and sigma, any leading shape, NumPy or a tensor
    sigma = ebn0_to_sigma(3.0, bch.rate)
    llr = y * (2.0 / sigma**2)
    out = dec(llr, sigma=sigma)
    assert isinstance(out, Decoded)
    np.testing.assert_array_equal(out.bits, bits)
    np.testing.assert_array_equal(out.valid, res.valid)
    grid = dec(llr[:36].reshape(4, 9, -1), sigma=sigma)
    assert grid.bits.shape == (4, 9, bch.n) and grid.valid.shape == (4, 9)
    np.testing.assert_array_equal(grid.bits, bits[:36].reshape(4, 9, -1))
    np.testing.assert_array_equal(dec(llr[5], sigma=sigma).bits, bits[5])
    np.testing.assert_array_equal(dec(torch.from_numpy(llr), sigma=sigma).bits, bits)
    # the init is seeded and leaves torch's global RNG alone
    state = torch.random.get_rng_state()
    twin = SyndromeDecoder(bch, backbone, rng=3)
    assert torch.equal(torch.random.get_rng_state(), state)
    for a, b in zip(dec.state_dict().values(), twin.state_dict().values(), strict=True):
        assert torch.equal(a, b)
    assert backbone in dec.summary()
    # a few training steps run and give finite losses
    res = train_decoder(dec, batch=16, steps=3, rng=0)
    assert len(res.losses) == 3 and np.all(np.isfinite(res.losses))


def test_presets_and_validation(bch):
    m = 2 * bch.n - bch.k
    assert SyndromeDecoder(bch, "gru", preset="paper").config["hidden"] == 5 * m
    assert SyndromeDecoder(bch, "gru").config["layers"] == 2
    with pytest.raises(InvalidInputError):
        SyndromeDecoder(bch, "cnn")
    with pytest.raises(InvalidInputError):
        SyndromeDecoder(bch, "mlp", steps=3)
    with pytest.raises(InvalidInputError):
        SyndromeDecoder(bch, "transformer", hidden=30, heads=4)
    with pytest.raises(InvalidInputError):
        SyndromeDecoder(bch, "gru", preset="huge")
    with pytest.raises(InvalidInputError):
        SyndromeDecoder(bch, "gru", flip_prior=0.0)
    dec = SyndromeDecoder(bch, "mlp")
    with pytest.raises(InvalidInputError):
        dec.decode_received(np.zeros((3, bch.n + 1)))
    with pytest.raises(InvalidInputError):
        dec.decode_received(np.full((2, bch.n), np.nan))
    with pytest.raises(InvalidInputError, match="shape"):
        dec(np.zeros((3, bch.n + 1)), sigma=1.0)
    with pytest.raises(InvalidInputError, match="NaN or inf"):
        dec(np.full((2, bch.n), np.nan), sigma=1.0)
    with pytest.raises(InvalidInputError, match="NaN or inf"):
        dec(torch.full((2, bch.n), float("nan")), sigma=1.0)
    with pytest.raises(InvalidInputError, match="sigma"):
        dec(np.zeros((2, bch.n)))  # the neural decoder needs sigma
    with pytest.raises(InvalidInputError, match="sigma"):
        dec(np.zeros((2, bch.n)), sigma=None)
    with pytest.raises(InvalidInputError, match="sigma"):
        dec(np.zeros((2, bch.n)), sigma=0.0)
    with pytest.raises(InvalidInputError, match="device"):
        SyndromeDecoder(bch, "mlp", device="tpu")
    with pytest.raises(InvalidInputError):
        train_decoder(dec, ebn0_range=(7.0, 4.0), steps=1)
    with pytest.raises(InvalidInputError):
        train_decoder(dec, ebn0_range=(4.0, 40.0), steps=1)
    with pytest.raises(InvalidInputError):
        train_decoder(dec, steps=0)
    if not torch.cuda.is_available():
        with pytest.raises(InvalidInputError):
            train_decoder(dec, steps=1, device="cuda")


# ---- training -------------------------------------------------------------------------------


def test_short_training_beats_hard_decision(bch, trained):
    dec, result = trained
    assert result.steps == 300 and len(result.losses) == 300
    assert result.final_loss < np.mean(result.losses[:20])
    for ebn0 in (4.0, 6.0):
        kw = {"min_frame_errors": 10**9, "max_frames": 20000, "batch": 5000, "rng": 11}
        neural = simulate(bch, dec, ebn0, **kw)
        hard = simulate(bch, HardDecision(bch), ebn0, **kw)  # same noise
        assert neural.frames == hard.frames == 20000
        assert neural.ber < 0.75 * hard.ber, (ebn0, neural.ber, hard.ber)
        assert neural.fer < hard.fer


def test_error_pattern_is_codeword_independent(bch, trained):
    dec, _ = trained
    for ebn0, seed in ((3.0, 20), (5.0, 21)):
        y0 = _noisy(bch, ebn0, 4000, seed=seed)
        c, yc = _flip_codewords(bch, y0, seed=seed + 100)
        err0 = dec.decode_received(y0).bits  # the zero codeword was sent: the error pattern
        errc = dec.decode_received(yc).bits ^ c
        assert err0.any()
        np.testing.assert_array_equal(errc, err0)


def test_ber_on_random_codewords_matches_zero_codeword(bch, trained):
    dec, _ = trained
    kw = {"min_frame_errors": 10**9, "max_frames": 20000, "batch": 10000}
    zero = simulate(bch, dec, 4.5, zero_codeword=True, rng=31, **kw)
    rand = simulate(bch, dec, 4.5, zero_codeword=False, rng=32, **kw)
    p = (zero.ber + rand.ber) / 2
    sd = np.sqrt(2 * p * (1 - p) / (zero.frames * bch.n)) * 3  # errors cluster within frames
    assert abs(zero.ber - rand.ber) < 4 * sd, (zero.ber, rand.ber)


class _Stop(Exception):
    pass


def test_resume_equals_uninterrupted_training(tmp_path, bch):
    kw = {"batch": 64, "steps": 20, "lr": 5e-3, "ebn0_range": (3.0, 5.0), "rng": 7}
    full = SyndromeDecoder(bch, "gru", hidden=16, rng=1)
    ref = train_decoder(full, **kw)

    path = tmp_path / "ckpt.pt"

    def stop_at_10(message, fraction):
        assert isinstance(message, str) and 0 < fraction <= 1
        if fraction >= 0.5:
            raise _Stop

    first = SyndromeDecoder(bch, "gru", hidden=16, rng=1)
    with pytest.raises(_Stop):
        train_decoder(first, checkpoint=path, checkpoint_every=5, progress=stop_at_10, **kw)
    assert path.exists()
    assert not list(tmp_path.glob(".*tmp"))  # atomic writes leave no temporary files

    copy = tmp_path / "copy.pt"
    copy.write_bytes(path.read_bytes())
    resumed = SyndromeDecoder(bch, "gru", hidden=16, rng=99)  # weights come from the file
    res = train_decoder(resumed, checkpoint=path, checkpoint_every=5, **kw)
    assert res.resumed_from == 10
    assert res.losses == ref.losses
    for (name, a), b in zip(full.state_dict().items(), resumed.state_dict().values(), strict=True):
        assert torch.equal(a, b), name

    # rng=None on resume continues with the checkpoint's seed
    res_none = train_decoder(
        SyndromeDecoder(bch, "gru", hidden=16), checkpoint=copy, **{**kw, "rng": None}
    )
    assert res_none.resumed_from == 10 and res_none.losses == ref.losses and res_none.seed == 7

    # a finished checkpoint: nothing left to do, same weights
    again = SyndromeDecoder(bch, "gru", hidden=16, rng=5)
    res2 = train_decoder(again, checkpoint=path, **kw)
    assert res2.resumed_from == 20 and res2.losses == ref.losses
    assert all(
        torch.equal(a, b) for a, b in zip(again.parameters(), full.parameters(), strict=True)
    )

    # other training settings, another architecture: refused
    with pytest.raises(InvalidInputError, match="settings"):
        train_decoder(SyndromeDecoder(bch, "gru", hidden=16), checkpoint=path, **{**kw, "lr": 1e-3})
    with pytest.raises(InvalidInputError, match="architecture"):
        train_decoder(SyndromeDecoder(bch, "gru", hidden=8), checkpoint=path, **kw)
    # resume=False starts over
    res3 = train_decoder(
        SyndromeDecoder(bch, "gru", hidden=16, rng=1), checkpoint=path, resume=False, **kw
    )
    assert res3.resumed_from == 0 and res3.losses == ref.losses


def test_checkpoint_of_another_code_is_refused(tmp_path, bch, polar):
    path = tmp_path / "bch.pt"
    kw = {"batch": 8, "steps": 2, "rng": 0}
    train_decoder(SyndromeDecoder(bch, "mlp", hidden=8), checkpoint=path, **kw)
    with pytest.raises(InvalidInputError, match="bch-31-21"):
        train_decoder(SyndromeDecoder(polar, "mlp", hidden=8), checkpoint=path, **kw)
    with pytest.raises(InvalidInputError):
        load_decoder(path, code=polar)
    assert code_identity(bch) != code_identity(polar)


def test_save_load_round_trip(tmp_path, bch, polar, trained):
    dec, _ = trained
    path = save_decoder(dec, tmp_path / "sub" / "dec.pt")
    y = _noisy(bch, 4.0, 300, seed=40)
    for loaded in (load_decoder(path), load_decoder(path, code=bch)):
        assert loaded.config == dec.config and loaded.permute == dec.permute
        assert code_identity(loaded.code) == code_identity(bch)
        np.testing.assert_array_equal(loaded.decode_received(y).bits, dec.decode_received(y).bits)
    with pytest.raises(InvalidInputError):
        load_decoder(path, code=polar)
    with pytest.raises(InvalidInputError):
        load_decoder(tmp_path / "missing.pt")
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(InvalidInputError):
        load_decoder(tmp_path / "junk.pt")
    # a training checkpoint loads as a decoder too
    ckpt = tmp_path / "ck.pt"
    small = SyndromeDecoder(polar, "transformer", hidden=8, layers=1, heads=2)
    train_decoder(small, batch=8, steps=2, checkpoint=ckpt, rng=0)
    back = load_decoder(ckpt)
    yp = _noisy(polar, 4.0, 20, seed=41)
    np.testing.assert_array_equal(back.decode_received(yp).bits, small.decode_received(yp).bits)


def test_deprecated_entry_points_give_the_same_output(bch, trained):
    dec, _ = trained
    y = _noisy(bch, 4.0, 50, seed=50)
    bits = dec.decode_received(y).bits
    with pytest.warns(FrugalDeprecationWarning, match="decode"):
        np.testing.assert_array_equal(dec.decode(y), bits)
    yt = torch.from_numpy(y).float()
    with pytest.warns(FrugalDeprecationWarning, match="logits"), torch.no_grad():
        torch.testing.assert_close(dec(yt), dec.logits(yt), rtol=0, atol=0)


def test_decoder_on_the_device_it_is_given(bch):
    dec = SyndromeDecoder(bch, "mlp", rng=4, device="cpu")
    assert dec.device.type == "cpu"
    ref = SyndromeDecoder(bch, "mlp", rng=4)
    for a, b in zip(dec.state_dict().values(), ref.state_dict().values(), strict=True):
        assert torch.equal(a, b)
