"""The IEEE 802.16e (WiMAX) rate-1/2 QC-LDPC codes.

Independent references:
* the structure the standard prescribes (IEEE Std 802.16e-2005, 8.4.9.2.5): variable degrees
  2, 3, 6 and check degrees 6, 7 (76 nonzero blocks), the h_b column whose three blocks sum to
  the identity, the dual-diagonal parity part, rate exactly 1/2 at every length;
* the standard's own encoder, the dual-diagonal back-substitution (written here from the block
  equations, not with GF(2) elimination), against ``code.encode``;
* 4-cycles counted two ways: brute force over pairs of rows of the expanded H, and Fossorier's
  criterion on the model matrix (a 4-cycle through blocks (i, j), (i, j'), (i', j'), (i', j)
  exists iff p_ij - p_ij' + p_i'j' - p_i'j = 0 mod z; IEEE Trans. IT 50(8), 2004);
* the ``ldpc`` package (Roffe, independent C++ sum-product) decoding the same noisy frames;
* published curves: n = 576 rate 1/2 with 50 sum-product iterations is at FER ~1e-2 near
  2-2.5 dB, so a few hundred random codewords at 2.5 dB see at most a few frame errors.
"""

from __future__ import annotations

import re
from itertools import combinations

import numpy as np
import pytest

from frugalml.ecc.bp import BeliefPropagation
from frugalml.ecc.channel import ebn0_to_sigma, simulate
from frugalml.ecc.gf2 import gf2_matmul, gf2_rank
from frugalml.ecc.linear_code import BinaryLinearCode
from frugalml.ecc.wimax import WIMAX_LENGTHS, ldpc_wimax, wimax_base_matrix
from frugalml.errors import InvalidInputError


@pytest.fixture(scope="module")
def code576() -> BinaryLinearCode:
    return ldpc_wimax(576)


def circulant(z: int, p: int) -> np.ndarray:
    """The z x z identity cyclically shifted right by p (the standard's permutation block)."""
    return np.roll(np.eye(z, dtype=np.uint8), p, axis=1)


# -- the model matrix -------------------------------------------------------------------------


def test_lengths_are_the_standards_19() -> None:
    assert len(WIMAX_LENGTHS) == 19
    assert WIMAX_LENGTHS[0] == 576 and WIMAX_LENGTHS[-1] == 2304
    assert all(n % 24 == 0 and (n // 24) % 4 == 0 for n in WIMAX_LENGTHS)


def test_model_matrix_degree_distribution() -> None:
    base = wimax_base_matrix(2304)  # z = z0 = 96: the standard's shifts unscaled
    assert base.shape == (12, 24)
    assert base.min() == -1 and base.max() <= 95
    nz = base >= 0
    col = nz.sum(axis=0)
    row = nz.sum(axis=1)
    assert int(nz.sum()) == 76
    # variable degrees: 11 parity columns of degree 2; 8 of degree 3 (7 information + h_b);
    # 5 information columns of degree 6
    assert dict(zip(*np.unique(col, return_counts=True), strict=True)) == {2: 11, 3: 8, 6: 5}
    assert dict(zip(*np.unique(row, return_counts=True), strict=True)) == {6: 8, 7: 4}
    # edge-perspective distributions lambda(x) = 0.2895 x + 0.3158 x^2 + 0.3947 x^5,
    # rho(x) = 0.6316 x^5 + 0.3684 x^6
    lam = {d: d * int((col == d).sum()) / 76 for d in (2, 3, 6)}
    rho = {d: d * int((row == d).sum()) / 76 for d in (6, 7)}
    assert lam == pytest.approx({2: 0.2895, 3: 0.3158, 6: 0.3947}, abs=5e-5)
    assert rho == pytest.approx({6: 0.6316, 7: 0.3684}, abs=5e-5)


@pytest.mark.parametrize("n", [576, 672, 1152, 2304])
def test_dual_diagonal_parity_part(n: int) -> None:
    z = n // 24
    base = wimax_base_matrix(n)
    hb = base[:, 12]
    assert list(np.flatnonzero(hb >= 0)) == [0, 5, 11]
    assert hb[0] == hb[11] == (7 * z) // 96 and hb[5] == 0
    for i in range(12):
        for j in range(1, 12):
            assert base[i, 12 + j] == (0 if i in (j - 1, j) else -1)
    # the three h_b blocks sum to the identity over GF(2): what makes H_p invertible
    total = sum(circulant(z, int(hb[i])) for i in (0, 5, 11)) % 2
    np.testing.assert_array_equal(total, np.eye(z, dtype=np.uint8))


def test_shift_scaling_is_floor() -> None:
    big = wimax_base_matrix(2304)
    for n in (576, 1248, 2208):
        z = n // 24
        small = wimax_base_matrix(n)
        np.testing.assert_array_equal(small < 0, big < 0)
        mask = big >= 0
        np.testing.assert_array_equal(small[mask], np.floor(big[mask] * z / 96).astype(int))
    assert wimax_base_matrix(576)[0, 1] == 23  # floor(94 * 24 / 96) = floor(23.5)


# The information part of the rate-1/2 model matrix (z0 = 96), row by row as {column: shift},
# transcribed from the copy in the Coded Modulation Library (github.com/wvu-wcrl/CML,
# mat/InitializeWiMaxLDPC.m), an independent source for the table of IEEE 802.16e 8.4.9.2.5.
CML_INFORMATION_PART = [
    {1: 94, 2: 73, 8: 55, 9: 83},
    {1: 27, 5: 22, 6: 79, 7: 9, 11: 12},
    {3: 24, 4: 22, 5: 81, 7: 33, 11: 0},
    {0: 61, 2: 47, 8: 65, 9: 25},
    {2: 39, 6: 84, 9: 41, 10: 72},
    {4: 46, 5: 40, 7: 82, 11: 79},
    {2: 95, 3: 53, 9: 14, 10: 18},
    {1: 11, 2: 73, 6: 2, 9: 47},
    {0: 12, 4: 83, 5: 24, 7: 43, 11: 51},
    {5: 94, 7: 59, 10: 70, 11: 72},
    {2: 7, 3: 65, 8: 39, 9: 49},
    {0: 43, 5: 66, 7: 41, 11: 26},
]


def test_model_matrix_matches_independent_copy() -> None:
    base = wimax_base_matrix(2304)
    for i, row in enumerate(CML_INFORMATION_PART):
        got = {j: int(base[i, j]) for j in range(12) if base[i, j] >= 0}
        assert got == row, f"row {i}"


# -- the expanded code ------------------------------------------------------------------------


@pytest.mark.parametrize("n", [576, 672, 1536, 2304])
def test_parameters_rank_and_generator(n: int) -> None:
    code = ldpc_wimax(n)
    z = n // 24
    assert (code.n, code.k) == (n, n // 2)
    assert code.name == f"ldpc-wimax-{n}-{n // 2}"
    assert code.H.shape == (12 * z, 24 * z) and code.G.shape == (12 * z, 24 * z)
    assert int(code.H.sum()) == 76 * z
    assert gf2_rank(code.H) == 12 * z  # full rank: k = n - 12 z exactly
    assert not gf2_matmul(code.G, code.H.T).any()
    np.testing.assert_array_equal(code.G[:, : code.k], np.eye(code.k, dtype=np.uint8))
    base = wimax_base_matrix(n)
    for i, j in [(0, 1), (3, 0), (11, 12), (5, 17), (7, 6)]:
        block = code.H[i * z : (i + 1) * z, j * z : (j + 1) * z]
        expected = circulant(z, int(base[i, j])) if base[i, j] >= 0 else np.zeros((z, z))
        np.testing.assert_array_equal(block, expected)


def test_no_four_cycles_at_576_brute_force(code576: BinaryLinearCode) -> None:
    h = code576.H.astype(np.int64)
    overlap = h @ h.T
    np.fill_diagonal(overlap, 0)
    assert overlap.max() == 1  # no two checks share two variables


def base_four_cycles(n: int) -> int:
    """4-cycles of the base graph that survive expansion (Fossorier's criterion)."""
    z = n // 24
    b = wimax_base_matrix(n)
    count = 0
    for i, k in combinations(range(12), 2):
        common = np.flatnonzero((b[i] >= 0) & (b[k] >= 0))
        for j, m in combinations(common, 2):
            count += (b[i, j] - b[i, m] + b[k, m] - b[k, j]) % z == 0
    return count


def test_four_cycles_all_lengths() -> None:
    counts = {n: base_four_cycles(n) for n in WIMAX_LENGTHS}
    assert {n: c for n, c in counts.items() if c} == {672: 1}
    for n in (576, 672, 768):  # each base 4-cycle lifts to z 4-cycles
        h = ldpc_wimax(n).H.astype(np.int64)
        overlap = h @ h.T
        np.fill_diagonal(overlap, 0)
        pairs = int((overlap * (overlap - 1) // 2).sum()) // 2
        assert pairs == counts[n] * (n // 24)


def standard_encode(msg: np.ndarray, n: int) -> np.ndarray:
    """The standard's encoder by back-substitution on the dual diagonal: (B, k) -> (B, n).

    With lambda_i = sum_j P^{p_ij} s_j over the information blocks, summing all block rows
    gives p_0 = sum_i lambda_i (the h_b blocks sum to I); then row 0 gives
    p_1 = lambda_0 + P^{h_0} p_0 and row i gives p_{i+1} = lambda_i + p_i + [h_b,i] p_0.
    """
    z = n // 24
    b = wimax_base_matrix(n)
    s = msg.reshape(msg.shape[0], 12, z)

    def shift(x: np.ndarray, p: int) -> np.ndarray:  # P^p x: (P^p x)_r = x_{(r + p) mod z}
        return np.roll(x, -p, axis=-1)

    lam = np.zeros((msg.shape[0], 12, z), dtype=np.uint8)
    for i in range(12):
        for j in range(12):
            if b[i, j] >= 0:
                lam[:, i] ^= shift(s[:, j], int(b[i, j]))
    parity = np.zeros((msg.shape[0], 12, z), dtype=np.uint8)
    parity[:, 0] = np.bitwise_xor.reduce(lam, axis=1)
    for i in range(11):
        nxt = lam[:, i] ^ (parity[:, i] if i else 0)
        if b[i, 12] >= 0:
            nxt = nxt ^ shift(parity[:, 0], int(b[i, 12]))
        parity[:, i + 1] = nxt
    return np.concatenate([msg, parity.reshape(msg.shape[0], -1)], axis=1)


@pytest.mark.parametrize("n", [576, 2304])
def test_encoder_is_the_standards(n: int) -> None:
    code = ldpc_wimax(n)
    msg = np.random.default_rng(n).integers(0, 2, size=(40, code.k), dtype=np.uint8)
    cw = code.encode(msg)
    np.testing.assert_array_equal(cw, standard_encode(msg, n))
    assert not code.syndrome(cw).any()
    assert np.all(code.is_codeword(cw))
    # a single flipped bit is always detected (every column of H is nonzero)
    flipped = cw.copy()
    flipped[np.arange(40), np.arange(40) * 7 % n] ^= 1
    assert not np.any(code.is_codeword(flipped))


# -- decoding ---------------------------------------------------------------------------------


def test_bp_equals_ldpc_package(code576: BinaryLinearCode) -> None:
    ldpc = pytest.importorskip("ldpc")
    sigma = ebn0_to_sigma(1.5, 0.5)
    gen = np.random.default_rng(7)
    y = 1.0 + sigma * gen.standard_normal((150, 576))
    llr = 2.0 * y / sigma**2
    ours = BeliefPropagation(code576, iterations=50)(llr).bits
    hard = (llr < 0).astype(np.uint8)
    prob = 1.0 / (1.0 + np.exp(np.abs(llr)))
    dec = ldpc.BpDecoder(
        code576.H, error_channel=list(prob[0]), max_iter=50, bp_method="product_sum"
    )
    theirs = np.empty_like(hard)
    for f in range(len(llr)):
        dec.update_channel_probs(prob[f])
        theirs[f] = hard[f] ^ dec.decode(code576.syndrome(hard[f]))
    errors_ours, errors_theirs = ours.any(axis=1), theirs.any(axis=1)
    assert 5 <= errors_ours.sum() <= 60  # 1.5 dB is in the waterfall (FER ~0.1)
    assert (ours == theirs).all(axis=1).mean() >= 0.98
    assert abs(int(errors_ours.sum()) - int(errors_theirs.sum())) <= 2


def test_bp_fer_at_2_5_db(code576: BinaryLinearCode) -> None:
    bp = BeliefPropagation(code576, iterations=50)
    result = simulate(
        code576, bp, 2.5, zero_codeword=False, min_frame_errors=10**9, max_frames=600, rng=3
    )
    assert result.frames == 600
    assert result.fer <= 0.03


# -- bad input --------------------------------------------------------------------------------


@pytest.mark.parametrize("n", [0, 24, 500, 600, 624, 2400, 2208 + 48, 576.5, "576"])
def test_bad_length(n: object) -> None:
    with pytest.raises(InvalidInputError):
        ldpc_wimax(n)  # type: ignore[arg-type]


def test_bad_length_message_names_lengths() -> None:
    with pytest.raises(InvalidInputError, match=re.escape("576, 672, ..., 2304")):
        ldpc_wimax(600)


@pytest.mark.parametrize("rate", ["2/3", "3/4", "5/6", "1/3", 0.5, None])
def test_bad_rate(rate: object) -> None:
    with pytest.raises(InvalidInputError, match="1/2"):
        ldpc_wimax(576, rate)  # type: ignore[arg-type]
    with pytest.raises(InvalidInputError, match="1/2"):
        wimax_base_matrix(576, rate)  # type: ignore[arg-type]
