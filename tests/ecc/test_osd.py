"""Ordered-statistics decoding.

References are independent of the decoder: every codeword is enumerated (as packed integers),
the most reliable basis is found greedily with an integer XOR basis of G's columns, and the
OSD-i answer is the brute-force minimum of the correlation discrepancy over all codewords
whose MRB bits differ from the hard decisions in at most i places; for order >= k that is the
maximum-likelihood codeword.
"""

from __future__ import annotations

import numpy as np
import pytest

from frugalml.ecc.codes import bch_code
from frugalml.ecc.linear_code import BinaryLinearCode
from frugalml.ecc.osd import OrderedStatistics, hard_decision
from frugalml.errors import FrugalDeprecationWarning, InvalidInputError

from ._reference import code_from_h, llr_of, noisy, nullspace

# -- codes built here, without the library ------------------------------------------------


def code_from_g(name: str, g: list[list[int]]) -> BinaryLinearCode:
    g_arr = np.array(g, dtype=np.uint8)
    return BinaryLinearCode(name=name, n=g_arr.shape[1], k=len(g_arr), H=nullspace(g_arr), G=g_arr)


HAMMING_H = [[1, 0, 1, 0, 1, 0, 1], [0, 1, 1, 0, 0, 1, 1], [0, 0, 0, 1, 1, 1, 1]]


def hamming74() -> BinaryLinearCode:
    return code_from_h("hamming-7-4", HAMMING_H)


def simplex73() -> BinaryLinearCode:
    return code_from_g("simplex-7-3", HAMMING_H)


def repetition5() -> BinaryLinearCode:
    return code_from_g("repetition-5", [[1, 1, 1, 1, 1]])


def k2_code() -> BinaryLinearCode:
    return code_from_g("k2-6", [[1, 1, 0, 1, 0, 1], [0, 1, 1, 1, 1, 0]])


def golay23() -> BinaryLinearCode:
    """The (23, 12) Golay code from g(x) = 1 + x^2 + x^4 + x^5 + x^6 + x^10 + x^11."""
    gpoly = [1, 0, 1, 0, 1, 1, 1, 0, 0, 0, 1, 1]
    g = np.zeros((12, 23), dtype=np.uint8)
    for i in range(12):
        g[i, i : i + 12] = gpoly
    return code_from_g("golay-23-12", g.tolist())


# -- brute-force reference ----------------------------------------------------------------


def all_codewords(code: BinaryLinearCode) -> np.ndarray:
    """Every codeword, packed: bit l of the uint64 is position l (needs n <= 64)."""
    g = np.asarray(code.G, dtype=np.uint64)
    rows = (g << np.arange(code.n, dtype=np.uint64)).sum(axis=1)  # distinct bits: sum == or
    words = np.zeros(1, dtype=np.uint64)
    for r in rows:
        words = np.concatenate([words, words ^ r])
    return words


def weighted_popcount(x: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """sum_l weights[l] * bit_l(x) for packed uint64 x, by byte lookup tables."""
    n = len(weights)
    total = np.zeros(x.shape, dtype=np.float64)
    byte_bits = (np.arange(256)[:, None] >> np.arange(8)) & 1
    for b in range((n + 7) // 8):
        w = np.zeros(8)
        chunk = weights[8 * b : 8 * b + 8]
        w[: len(chunk)] = chunk
        table = byte_bits @ w
        total += table[((x >> np.uint64(8 * b)) & np.uint64(255)).astype(np.intp)]
    return total


def greedy_mrb(code: BinaryLinearCode, llr: np.ndarray) -> list[int]:
    """Positions of the most reliable basis: scan by decreasing |llr| (stable), keep a
    column of G if it is independent of the kept ones (XOR basis of k-bit integers)."""
    cols = [int("".join(map(str, code.G[:, j])), 2) for j in range(code.n)]
    basis: dict[int, int] = {}  # leading bit -> vector
    mrb = []
    for j in np.argsort(-np.abs(llr), kind="stable"):
        v = cols[j]
        while v:
            top = v.bit_length() - 1
            if top not in basis:
                basis[top] = v
                mrb.append(int(j))
                break
            v ^= basis[top]
        if len(mrb) == code.k:
            break
    return mrb


def pack(bits: np.ndarray) -> np.uint64:
    return np.uint64(int((bits.astype(np.uint64) << np.arange(len(bits), dtype=np.uint64)).sum()))


def unpack(x: np.uint64, n: int) -> np.ndarray:
    return ((int(x) >> np.arange(n)) & 1).astype(np.uint8)


def reference_osd(code: BinaryLinearCode, words: np.ndarray, llr: np.ndarray, order: int):
    """(codeword, discrepancy) of the brute-force OSD-``order`` answer for one frame."""
    z = pack((llr < 0).astype(np.uint8))
    diff = words ^ z
    cost = weighted_popcount(diff, np.abs(llr))
    mrb_weights = np.zeros(code.n)
    mrb_weights[greedy_mrb(code, llr)] = 1.0
    cost[weighted_popcount(diff, mrb_weights) > order] = np.inf
    best = int(np.argmin(cost))
    return unpack(words[best], code.n), cost[best]


def discrepancy(bits: np.ndarray, llr: np.ndarray) -> np.ndarray:
    return np.where(bits.astype(bool) != (llr < 0), np.abs(llr), 0.0).sum(axis=-1)


def is_codeword(code: BinaryLinearCode, bits: np.ndarray) -> np.ndarray:
    return ~((bits.astype(np.int64) @ np.asarray(code.H, dtype=np.int64).T) % 2).any(axis=-1)


@pytest.fixture(scope="module")
def bch63():
    return bch_code(63, 45)


@pytest.fixture(scope="module")
def bch31():
    return bch_code(31, 21)


# -- exactness against brute force ------------------------------------------------------------


@pytest.mark.parametrize(
    ("make", "order"),
    [(simplex73, 3), (repetition5, 1), (repetition5, 3), (k2_code, 2), (k2_code, 3)],
)
def test_order_at_least_k_is_maximum_likelihood(make, order):
    code = make()
    assert order >= code.k
    words = all_codewords(code)
    _, y, sigma = noisy(code, 300, 0.0, seed=1)
    llr = 2 * y / sigma**2
    out = OrderedStatistics(code, order)(y).bits
    for b in range(len(y)):
        cost = weighted_popcount(words ^ pack((llr[b] < 0).astype(np.uint8)), np.abs(llr[b]))
        ml = unpack(words[int(np.argmin(cost))], code.n)
        np.testing.assert_array_equal(out[b], ml)


def adversarial_llr(code: BinaryLinearCode, frames: int, seed: int) -> np.ndarray:
    """LLRs of random codewords whose 3 positions were flipped and made the most reliable:
    frames where the answer often needs MRB flips."""
    rng = np.random.default_rng(seed)
    cw = (rng.integers(0, 2, size=(frames, code.k)) @ code.G) % 2
    rel = rng.uniform(0.2, 1.0, size=cw.shape)
    for b in range(frames):
        pos = rng.choice(code.n, 3, replace=False)
        rel[b, pos] = rng.uniform(1.5, 1.6, size=3)
        cw[b, pos] ^= 1
    return (1.0 - 2.0 * cw) * rel


@pytest.mark.parametrize("order", [0, 1, 2, 3])
@pytest.mark.parametrize("make", [hamming74, golay23])
def test_matches_brute_force_osd(make, order):
    code = make()
    words = all_codewords(code)
    _, y, sigma = noisy(code, 100, 1.0, seed=order)
    rng = np.random.default_rng(order)
    llr = np.concatenate(
        [
            2 * y / sigma**2,
            rng.standard_normal((100, code.n)),  # pure noise
            adversarial_llr(code, 100, seed=order),
        ]
    )
    osd = OrderedStatistics(code, order)
    out = osd(llr).bits
    np.testing.assert_array_equal(out[:100], osd(y).bits)  # only the order of |llr| matters
    with pytest.warns(FrugalDeprecationWarning, match="decode_llr"):
        np.testing.assert_array_equal(osd.decode_llr(llr), out)
    with pytest.warns(FrugalDeprecationWarning, match="osd"):
        np.testing.assert_array_equal(osd(y, sigma), out[:100])
    for b in range(len(llr)):
        ref, cost = reference_osd(code, words, llr[b], order)
        np.testing.assert_array_equal(out[b], ref)
        assert discrepancy(out[b], llr[b]) == pytest.approx(cost)


def test_bch31_matches_brute_force_osd(bch31):
    words = all_codewords(bch31)  # 2^21 codewords
    llr = adversarial_llr(bch31, 12, seed=0)
    outs = [OrderedStatistics(bch31, order)(llr).bits for order in (1, 2)]
    assert np.any(outs[0] != outs[1])  # the frames do tell order 1 from order 2
    for b in range(len(llr)):
        for order, out in zip((1, 2), outs, strict=True):
            ref, _ = reference_osd(bch31, words, llr[b], order)
            np.testing.assert_array_equal(out[b], ref)


def test_order3_finds_weight3_mrb_pattern():
    """Golay (d = 7): the 12 most reliable positions (an information set) read 0, the other
    11 read a codeword c* that is 1 on exactly 3 of them, slightly less reliably. Then c* is
    the ML codeword (every alternative costs more, using d = 7) and needs 3 MRB flips."""
    code = golay23()
    words = all_codewords(code)
    info_weight = weighted_popcount(words, np.r_[np.ones(12), np.zeros(11)])
    rng = np.random.default_rng(3)
    targets = rng.choice(np.flatnonzero(info_weight == 3), size=20, replace=False)
    llr = np.empty((20, 23))
    for b, t in enumerate(targets):
        c = unpack(words[t], 23)
        llr[b, :12] = 1.0 + 0.01 * rng.random(12)
        llr[b, 12:] = (1.0 - 2.0 * c[12:]) * (0.95 + 0.01 * rng.random(11))
    expect = np.array([unpack(words[t], 23) for t in targets])
    np.testing.assert_array_equal(OrderedStatistics(code, 3)(llr).bits, expect)
    for order in (0, 1, 2):
        assert not np.any(np.all(OrderedStatistics(code, order)(llr).bits == expect, axis=1))
    for b in range(3):
        np.testing.assert_array_equal(reference_osd(code, words, llr[b], 3)[0], expect[b])


def test_hamming_order3_close_to_maximum_likelihood():
    code = hamming74()
    words = all_codewords(code)
    _, y, sigma = noisy(code, 400, 2.0, seed=5)
    llr = 2 * y / sigma**2
    out = OrderedStatistics(code, 3)(llr).bits
    got = discrepancy(out, llr)
    ml = np.array(
        [
            weighted_popcount(words ^ pack((row < 0).astype(np.uint8)), np.abs(row)).min()
            for row in llr
        ]
    )
    assert np.all(got >= ml - 1e-9)  # ML is a lower bound
    assert np.mean(np.isclose(got, ml)) > 0.98


# -- properties on BCH(63, 45) --------------------------------------------------------------


@pytest.mark.parametrize("order", [0, 1, 2, 3])
def test_output_is_always_a_codeword(bch63, order):
    frames = 40 if order == 3 else 400
    _, y, sigma = noisy(bch63, frames, -2.0, seed=order)
    y[:5] = np.random.default_rng(0).standard_normal((5, 63)) * 10  # garbage
    y[5] = 0.0  # every position equally unreliable
    out = OrderedStatistics(bch63, order)(llr_of(y, sigma)).bits
    assert out.dtype == np.uint8 and out.shape == y.shape
    assert set(np.unique(out)) <= {0, 1}
    assert is_codeword(bch63, out).all()


def test_higher_order_never_worse(bch63):
    _, y, sigma = noisy(bch63, 300, 2.0, seed=3)
    llr = 2 * y / sigma**2
    d = [discrepancy(OrderedStatistics(bch63, i)(llr).bits, llr) for i in range(3)]
    assert np.all(d[1] <= d[0] + 1e-9)
    assert np.all(d[2] <= d[1] + 1e-9)
    assert d[2].mean() < d[0].mean()


def test_exact_at_high_snr(bch63):
    cw, y, sigma = noisy(bch63, 1000, 12.0, seed=7)
    for order in (0, 1, 2):
        np.testing.assert_array_equal(OrderedStatistics(bch63, order)(llr_of(y, sigma)).bits, cw)


def test_corrects_errors_at_moderate_snr(bch63):
    cw, y, sigma = noisy(bch63, 500, 4.0, seed=8)
    hard_errors = np.count_nonzero(hard_decision(y) != cw)
    osd_errors = np.count_nonzero(OrderedStatistics(bch63, 2)(llr_of(y, sigma)).bits != cw)
    assert osd_errors < hard_errors / 10


def test_batch_chunking_and_single_frame(bch63, monkeypatch):
    _, y, sigma = noisy(bch63, 50, 2.0, seed=9)
    osd = OrderedStatistics(bch63, 2)
    full = osd(llr_of(y, sigma)).bits
    import frugalml.ecc.osd as osd_module

    monkeypatch.setattr(osd_module, "_ELIM_FRAMES", 3)  # several chunks
    monkeypatch.setattr(osd_module, "_SCORE_BYTES", 1)  # one frame per search block
    np.testing.assert_array_equal(osd(llr_of(y, sigma)).bits, full)
    np.testing.assert_array_equal(osd(llr_of(y[7], sigma)).bits, full[7])
    assert osd(llr_of(y[:0], sigma)).bits.shape == (0, 63)


def test_polar_code_outputs_codewords():
    from frugalml.ecc import codes

    code = codes.polar_code(64, 32)
    _, y, sigma = noisy(code, 200, 1.0, seed=4)
    out = OrderedStatistics(code, 2)(llr_of(y, sigma)).bits
    assert is_codeword(code, out).all()


def test_hard_decision_and_summary(bch63):
    np.testing.assert_array_equal(hard_decision([0.5, -0.1, 0.0, -3.0]), [0, 1, 0, 1])
    assert hard_decision(np.zeros((2, 3))).dtype == np.uint8
    osd = OrderedStatistics(bch63, 2)
    assert osd.patterns == 1 + 45 + 45 * 44 // 2
    assert "OSD order 2" in osd.summary()


# -- bad input ----------------------------------------------------------------------------------


@pytest.mark.parametrize("order", [-1, 4, 1.5, "2", True])
def test_bad_order(bch63, order):
    with pytest.raises(InvalidInputError, match="order"):
        OrderedStatistics(bch63, order)


def test_bad_inputs(bch63):
    osd = OrderedStatistics(bch63, 1)
    y = np.ones((4, 63))
    with pytest.raises(InvalidInputError, match="shape"):
        osd(np.ones((4, 62)))
    assert osd(np.ones((2, 4, 63))).bits.shape == (2, 4, 63)  # any leading dimensions
    for bad in (np.nan, np.inf, -np.inf):
        z = y.copy()
        z[1, 3] = bad
        with pytest.raises(InvalidInputError, match="NaN or inf"):
            osd(z)
        with pytest.raises(InvalidInputError, match="NaN or inf"):
            hard_decision(z)
    for sigma in (0.0, -1.0, np.nan):
        with pytest.raises(InvalidInputError, match="sigma"):
            osd(y, sigma=sigma)
    with pytest.raises(InvalidInputError, match=r"numeric|real"):
        osd(np.full((1, 63), "a"))
    with pytest.raises(InvalidInputError, match="BinaryLinearCode"):
        OrderedStatistics(np.eye(3), 1)


def test_long_code_two_words_per_row():
    """n = 127 > 64: rows span two packed words."""
    code = bch_code(127, 99)
    cw, y, sigma = noisy(code, 200, 3.0, seed=12)
    out = OrderedStatistics(code, 2)(llr_of(y, sigma)).bits
    assert is_codeword(code, out).all()
    assert np.count_nonzero(out != cw) < np.count_nonzero(hard_decision(y) != cw) / 4
    cw, y, sigma = noisy(code, 300, 12.0, seed=13)
    np.testing.assert_array_equal(OrderedStatistics(code, 1)(llr_of(y, sigma)).bits, cw)


def test_uncoded_k_equals_n():
    code = BinaryLinearCode(name="uncoded-5", n=5, k=5, H=np.zeros((0, 5)), G=np.eye(5))
    llr = np.random.default_rng(0).standard_normal((10, 5))
    for order in range(4):
        np.testing.assert_array_equal(OrderedStatistics(code, order)(llr).bits, llr < 0)


@pytest.mark.parametrize("order", [0, 1, 2])
def test_codeword_hard_decisions_skip_elimination_with_the_same_answer(order):
    """The shortcut (a word whose hard decisions are a codeword is returned as it is) gives
    what the full elimination and search give on every word."""
    code = bch_code(63, 45)
    sigma = 0.45  # many words decode to their hard decisions, some do not
    msgs = np.random.default_rng(2).integers(0, 2, (600, code.k), dtype=np.uint8)
    c = code.encode(msgs)
    y = (1.0 - 2.0 * c) + sigma * np.random.default_rng(3).standard_normal((600, code.n))
    llr = 2.0 * y / sigma**2
    osd = OrderedStatistics(code, order=order)
    hard_ok = ~code.syndrome((llr < 0).astype(np.uint8)).any(axis=1)
    assert 0.2 < hard_ok.mean() < 0.9
    assert np.array_equal(osd(llr).bits, osd._decode_chunk(llr))
