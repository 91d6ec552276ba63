"""BPSK-AWGN channel and the BER/FER simulator.

References: the closed form sigma^2 = 1 / (2 R Eb/N0) evaluated by hand; sample moments of
the noise within a few standard errors; the uncoded hard-decision bit error probability
Q(sqrt(2 Eb/N0)) (via ``scipy.special.erfc``) within 3 binomial standard deviations; exact
Gaussian log-likelihood ratios; deterministic decoders (always right / always wrong) whose
frame counts under the stopping rule are known exactly.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.special import erfc

from frugalml.ecc.channel import BERResult, bpsk_awgn, bpsk_llr, ebn0_to_sigma, simulate
from frugalml.ecc.codes import bch_code
from frugalml.ecc.decoder import Decoded, HardDecision
from frugalml.ecc.linear_code import BinaryLinearCode
from frugalml.errors import FrugalDeprecationWarning, InvalidInputError


def q_function(x: float) -> float:
    return 0.5 * erfc(x / math.sqrt(2.0))


def hard(y: np.ndarray) -> np.ndarray:
    return (y < 0).astype(np.uint8)


def uncoded(n: int) -> BinaryLinearCode:
    return BinaryLinearCode(f"uncoded-{n}", n, n, np.zeros((0, n), dtype=np.uint8), np.eye(n))


class FnDecoder:
    """A test-local decoder following frugalml.ecc's convention: ``bits = fn(llr)``."""

    def __init__(self, code: BinaryLinearCode, fn):
        self.code, self.fn = code, fn

    def __call__(self, llr, *, sigma=None):
        self.sigma = sigma
        bits = np.asarray(self.fn(llr))
        return Decoded(bits=bits, valid=np.ones(bits.shape[:-1], dtype=bool))


# -- sigma and noise ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("ebn0", "rate", "sigma"),
    [
        (0.0, 0.5, 1.0),  # 1 / (2 * 0.5 * 1)
        (0.0, 1.0, math.sqrt(0.5)),
        (10.0, 1.0, math.sqrt(1 / 20)),
        (-10.0, 0.25, math.sqrt(1 / (2 * 0.25 * 0.1))),
        (3.0, 45 / 63, math.sqrt(1 / (2 * (45 / 63) * 10**0.3))),
        (30.0, 1.0, math.sqrt(1 / 2000)),
    ],
)
def test_ebn0_to_sigma_closed_form(ebn0, rate, sigma):
    assert ebn0_to_sigma(ebn0, rate) == pytest.approx(sigma, rel=1e-12)


def test_noise_statistics_and_bpsk_mapping():
    n = 200_000
    rate, ebn0 = 0.5, 2.0
    sigma = math.sqrt(1 / (2 * rate * 10 ** (ebn0 / 10)))
    bits = np.zeros(n, dtype=np.uint8)
    bits[n // 2 :] = 1
    y = bpsk_awgn(bits, ebn0, rate, rng=1)
    assert y.shape == (n,) and y.dtype == np.float64
    noise = y - (1.0 - 2.0 * bits)  # 0 -> +1, 1 -> -1
    half = n // 2
    for part in (noise[:half], noise[half:]):
        se_mean = sigma / math.sqrt(half)
        se_std = sigma / math.sqrt(2 * half)
        assert abs(part.mean()) < 4 * se_mean
        assert abs(part.std() - sigma) < 4 * se_std
    # reproducible from the seed, different for another seed
    assert np.array_equal(y, bpsk_awgn(bits, ebn0, rate, rng=1))
    assert not np.array_equal(y, bpsk_awgn(bits, ebn0, rate, rng=2))
    assert bpsk_awgn(np.ones((3, 4, 5)), 30.0, 1.0, rng=0).shape == (3, 4, 5)


def test_llr_matches_gaussian_likelihood_ratio():
    sigma = 0.8
    y = np.linspace(-3, 3, 13)

    def log_pdf(x, mu):
        return -((x - mu) ** 2) / (2 * sigma**2)

    expected = log_pdf(y, 1.0) - log_pdf(y, -1.0)  # bit 0 sent as +1
    assert np.allclose(bpsk_llr(y, sigma), expected)
    assert np.all(np.sign(bpsk_llr(y, sigma)) == np.sign(y))
    with pytest.raises(InvalidInputError, match="sigma"):
        bpsk_llr(y, 0.0)


# -- uncoded BER against theory -----------------------------------------------------------------


@pytest.mark.parametrize(("ebn0", "zero"), [(0.0, True), (2.0, False), (4.0, True), (6.0, False)])
def test_uncoded_hard_decision_ber_matches_q_function(ebn0, zero):
    n, frames = 16, 25_000
    code = uncoded(n)
    res = simulate(
        code,
        HardDecision(code),
        ebn0,
        min_frame_errors=10**9,
        max_frames=frames,
        batch=5_000,
        zero_codeword=zero,
        rng=int(ebn0 * 10),
    )
    p = q_function(math.sqrt(2 * 10 ** (ebn0 / 10)))
    bits = n * frames
    assert res.frames == frames and res.bit_errors == round(res.ber * bits)
    assert abs(res.ber - p) <= 3 * math.sqrt(p * (1 - p) / bits)
    p_frame = 1 - (1 - p) ** n
    assert abs(res.fer - p_frame) <= 3 * math.sqrt(p_frame * (1 - p_frame) / frames)


def test_random_codewords_are_codewords_and_decode_cleanly_at_high_snr():
    code = bch_code(31, 16)
    seen = []

    def spy(y):
        bits = hard(y)
        seen.append(bits)
        return bits

    dec = FnDecoder(code, spy)
    res = simulate(code, dec, 30.0, max_frames=500, batch=250, zero_codeword=False, rng=3)
    assert dec.sigma == ebn0_to_sigma(30.0, code.rate)  # simulate passes sigma on
    assert res.frames == 500 and res.bit_errors == 0 and res.fer == 0.0
    words = np.concatenate(seen)
    assert np.all(code.is_codeword(words)) and words.any()


# -- stopping rule ------------------------------------------------------------------------------


def test_stopping_rule_frame_errors():
    code = bch_code(31, 26)

    def always_wrong(y):
        return np.ones(y.shape, dtype=np.uint8)  # every frame wrong (zero codeword sent)

    dec = FnDecoder(code, always_wrong)
    res = simulate(code, dec, 3.0, min_frame_errors=5, batch=3, rng=0)
    assert (res.frames, res.frame_errors, res.bit_errors) == (6, 6, 6 * 31)
    assert res.fer == 1.0 and res.ber == 1.0
    res = simulate(code, dec, 3.0, min_frame_errors=6, batch=3, rng=0)
    assert res.frames == 6


def test_stopping_rule_max_frames_and_progress():
    code = bch_code(31, 26)
    calls: list[BERResult] = []
    sizes: list[int] = []
    reports: list[tuple[str, float]] = []

    def perfect(y):
        sizes.append(y.shape[0])
        return np.zeros(y.shape, dtype=np.uint8)

    res = simulate(
        code,
        FnDecoder(code, perfect),
        1.0,
        min_frame_errors=1,
        max_frames=1000,
        batch=300,
        on_batch=calls.append,
        progress=lambda message, fraction: reports.append((message, fraction)),
    )
    assert res.frames == 1000 and res.frame_errors == 0 and res.ber == 0.0
    assert sizes == [300, 300, 300, 100]  # the last batch is cut to max_frames
    assert [c.frames for c in calls] == [300, 600, 900, 1000]
    assert [f for _, f in reports] == [0.3, 0.6, 0.9, 1.0]
    assert reports[-1][0] == "Eb/N0 1 dB: 0 frame errors / 1000 frames"
    assert res.seconds >= 0 and "0 frame errors / 1000 frames" in res.summary()
    assert res.to_dict()["frames"] == 1000


def test_deprecated_decoder_callable_and_progress_still_work():
    code = bch_code(31, 21)
    ref = simulate(code, HardDecision(code), 2.0, min_frame_errors=20, batch=100, rng=5)
    calls: list[BERResult] = []
    with pytest.warns(FrugalDeprecationWarning, match="decoder callable"):
        old = simulate(code, hard, 2.0, min_frame_errors=20, batch=100, rng=5)
    with pytest.warns(FrugalDeprecationWarning, match="on_batch"):
        simulate(code, HardDecision(code), 2.0, max_frames=200, batch=100, progress=calls.append)
    assert (old.bit_errors, old.frame_errors, old.frames) == (
        ref.bit_errors,
        ref.frame_errors,
        ref.frames,
    )
    assert [c.frames for c in calls] == [100, 200]


def test_simulate_is_reproducible():
    code = bch_code(31, 21)
    a = simulate(code, HardDecision(code), 2.0, min_frame_errors=20, batch=100, rng=5)
    b = simulate(code, HardDecision(code), 2.0, min_frame_errors=20, batch=100, rng=5)
    assert (a.bit_errors, a.frame_errors, a.frames) == (b.bit_errors, b.frame_errors, b.frames)
    assert a.frame_errors >= 20


# -- bad inputs ---------------------------------------------------------------------------------


@pytest.mark.parametrize("ebn0", [float("nan"), float("inf"), 30.5, -10.5, "3", True, None])
def test_ebn0_out_of_range_or_wrong_type(ebn0):
    with pytest.raises(InvalidInputError, match="ebn0_db"):
        ebn0_to_sigma(ebn0, 0.5)
    with pytest.raises(InvalidInputError, match="ebn0_db"):
        bpsk_awgn(np.zeros(4), ebn0, 0.5)
    with pytest.raises(InvalidInputError, match="ebn0_db"):
        simulate(bch_code(31, 26), HardDecision(bch_code(31, 26)), ebn0)


@pytest.mark.parametrize("rate", [0.0, -0.5, 1.5, float("nan")])
def test_bad_rate(rate):
    with pytest.raises(InvalidInputError, match="rate"):
        ebn0_to_sigma(3.0, rate)


def test_simulate_rejects_bad_arguments_and_decoder_outputs():
    code = bch_code(31, 26)
    dec = HardDecision(code)
    with pytest.raises(InvalidInputError, match="LinearCode"):
        simulate("bch-31-26", dec, 3.0)
    with pytest.raises(InvalidInputError, match="Decoder"):
        simulate(code, None, 3.0)
    with pytest.raises(InvalidInputError, match="not for"):
        simulate(code, HardDecision(bch_code(31, 21)), 3.0)
    with pytest.raises(InvalidInputError, match="min_frame_errors"):
        simulate(code, dec, 3.0, min_frame_errors=0)
    with pytest.raises(InvalidInputError, match="batch"):
        simulate(code, dec, 3.0, batch=0)
    with pytest.raises(InvalidInputError, match="shape"):
        simulate(code, FnDecoder(code, lambda x: hard(x)[:, :-1]), 3.0, max_frames=10)
    with pytest.raises(InvalidInputError, match="invalid bits"):
        simulate(code, FnDecoder(code, lambda x: np.full(x.shape, 2)), 3.0, max_frames=10)
    with pytest.raises(InvalidInputError, match="Decoded"):
        simulate(code, _Raw(code), 3.0, max_frames=10)
    with pytest.raises(InvalidInputError, match="codewords must hold bits"):
        bpsk_awgn(np.array([0, 1, 2]), 3.0, 0.5)


class _Raw:
    """A decoder with the right call signature that returns bits, not a Decoded."""

    def __init__(self, code):
        self.code = code

    def __call__(self, llr, *, sigma=None):
        return hard(llr)
