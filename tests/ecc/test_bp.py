"""Belief propagation.

Independent references: on codes whose Tanner graph is a tree, sum-product's a-posteriori LLRs
must equal the exact bitwise MAP LLRs, and min-sum's the exact max-log (max-marginal) LLRs, both
computed by enumerating every codeword; on BCH(63, 45) BP must beat hard decisions and be
error-free at high SNR.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy.special import logsumexp

from frugalml.ecc.bp import BeliefPropagation
from frugalml.ecc.codes import bch_code
from frugalml.ecc.decoder import Decoded
from frugalml.ecc.linear_code import BinaryLinearCode
from frugalml.errors import FrugalDeprecationWarning, InvalidInputError

from ._reference import code_from_h, llr_of, noisy

# -- codes built here -------------------------------------------------------------------------


def repetition_chain(n: int = 5) -> BinaryLinearCode:
    """Repetition code with checks x_i + x_{i+1} = 0: a path Tanner graph."""
    h = np.zeros((n - 1, n), dtype=np.uint8)
    for i in range(n - 1):
        h[i, i : i + 2] = 1
    return code_from_h(f"repetition-{n}", h)


def single_parity(n: int = 6) -> BinaryLinearCode:
    return code_from_h(f"spc-{n}", np.ones((1, n), dtype=np.uint8))


def tree_code() -> BinaryLinearCode:
    """(9, 5) code whose Tanner graph (9 variables, 4 checks, 12 edges) is a tree."""
    h = [
        [1, 1, 1, 0, 0, 0, 0, 0, 0],
        [0, 0, 1, 1, 1, 0, 0, 0, 0],
        [0, 1, 0, 0, 0, 1, 0, 1, 0],
        [0, 0, 0, 0, 1, 0, 1, 0, 1],
    ]
    return code_from_h("tree-9-5", h)


TREE_CODES = [repetition_chain, single_parity, tree_code]


def all_codewords(code: BinaryLinearCode) -> np.ndarray:
    msgs = (np.arange(2**code.k)[:, None] >> np.arange(code.k)) & 1
    return (msgs @ code.G) % 2


def is_tree(code: BinaryLinearCode) -> bool:
    h = np.asarray(code.H)
    nodes = code.n + h.shape[0]
    return int(h.sum()) == nodes - 1  # connected (checked by the MAP test) with E = V - 1


def map_llr(code: BinaryLinearCode, llr: np.ndarray) -> np.ndarray:
    """Exact bitwise MAP LLRs (B, n) by enumeration: p(c | y) ∝ exp(-sum_l llr_l c_l)."""
    words = all_codewords(code)  # (W, n)
    score = -llr @ words.T  # (B, W) log-likelihoods up to a constant
    out = np.empty_like(llr)
    for i in range(code.n):
        zero, one = words[:, i] == 0, words[:, i] == 1
        out[:, i] = logsumexp(score[:, zero], axis=1) - logsumexp(score[:, one], axis=1)
    return out


def maxlog_llr(code: BinaryLinearCode, llr: np.ndarray) -> np.ndarray:
    """Exact max-marginal LLRs: max over c_i = 0 minus max over c_i = 1 of the score."""
    words = all_codewords(code)
    score = -llr @ words.T
    out = np.empty_like(llr)
    for i in range(code.n):
        zero, one = words[:, i] == 0, words[:, i] == 1
        out[:, i] = score[:, zero].max(axis=1) - score[:, one].max(axis=1)
    return out


def syndrome_ok(code: BinaryLinearCode, bits: np.ndarray) -> np.ndarray:
    return ~((bits.astype(np.int64) @ np.asarray(code.H, dtype=np.int64).T) % 2).any(axis=-1)


@pytest.fixture(scope="module")
def bch63():
    return bch_code(63, 45)


# -- exactness on cycle-free graphs --------------------------------------------------------------


@pytest.mark.parametrize("make", TREE_CODES)
def test_sum_product_is_bitwise_map_on_a_tree(make):
    code = make()
    assert is_tree(code)
    _, y, sigma = noisy(code, 200, 1.0, seed=0)
    llr = 2 * y / sigma**2
    bp = BeliefPropagation(code, iterations=2 * code.n)
    post = bp.posterior_llr(llr)
    ref = map_llr(code, llr)
    np.testing.assert_allclose(post, ref, rtol=1e-8, atol=1e-8)
    np.testing.assert_array_equal(bp.posterior_llr(llr[3]), post[3])


@pytest.mark.parametrize("make", TREE_CODES)
def test_min_sum_is_max_log_on_a_tree(make):
    code = make()
    _, y, sigma = noisy(code, 200, 1.0, seed=1)
    llr = 2 * y / sigma**2
    post = BeliefPropagation(code, 2 * code.n, "min-sum").posterior_llr(llr)
    np.testing.assert_allclose(post, maxlog_llr(code, llr), rtol=1e-10, atol=1e-10)


def test_tree_decisions_are_map_decisions():
    code = tree_code()
    _, y, sigma = noisy(code, 500, 0.0, seed=2)
    llr = 2 * y / sigma**2
    bp = BeliefPropagation(code, iterations=20)
    post = bp.posterior_llr(llr)
    np.testing.assert_array_equal(post < 0, map_llr(code, llr) < 0)
    res = bp(llr)
    bits, converged = res.bits, res.valid
    # a frame stops as soon as its decisions form a codeword; the others run to the MAP
    assert np.all(syndrome_ok(code, bits)[converged])
    np.testing.assert_array_equal(bits[~converged], (post[~converged] < 0).astype(np.uint8))


# -- BCH(63, 45) ------------------------------------------------------------------------------


@pytest.mark.parametrize("variant", ["sum-product", "min-sum"])
def test_exact_at_high_snr(bch63, variant):
    cw, y, sigma = noisy(bch63, 1000, 12.0, seed=3)
    np.testing.assert_array_equal(BeliefPropagation(bch63, 50, variant)(llr_of(y, sigma)).bits, cw)


def test_beats_hard_decision_at_5db(bch63):
    cw, y, sigma = noisy(bch63, 2000, 5.0, seed=4)
    hard_ber = np.mean((y < 0) != cw)
    for dec in (
        BeliefPropagation(bch63, 50, "sum-product"),
        BeliefPropagation(bch63, 50, "min-sum"),
        BeliefPropagation(bch63, 50, "min-sum", normalization=0.8),
        BeliefPropagation(bch63, 50, "min-sum", offset=0.3),
        BeliefPropagation(bch63, 50, "sum-product", damping=0.3),
    ):
        ber = np.mean(dec(llr_of(y, sigma)).bits != cw)
        assert ber < 0.5 * hard_ber, dec.summary()


def test_early_stop_and_batch_independence(bch63):
    _, y, sigma = noisy(bch63, 300, 3.0, seed=5)
    llr = 2 * y / sigma**2
    bp = BeliefPropagation(bch63, 20)
    res = bp(llr)
    assert isinstance(res, Decoded)
    bits, converged = res.bits, res.valid
    used = bp.iterations_used(llr)
    np.testing.assert_array_equal(res.iterations, used)
    assert bits.dtype == np.uint8 and converged.dtype == bool
    np.testing.assert_array_equal(converged, syndrome_ok(bch63, bits))
    assert 0 < converged.mean() < 1  # the batch mixes both outcomes
    assert np.all(used[~converged] == 20) and np.all(used[converged] <= 20)
    assert len(np.unique(used[converged])) > 2  # frames stop at different iterations
    assert np.all(used[syndrome_ok(bch63, (y < 0).astype(np.uint8))] == 0)
    # compacting the active batch must not mix frames up
    for b in (0, 7, 123):
        one = bp(llr[b])
        np.testing.assert_array_equal(one.bits, bits[b])
        assert one.valid.shape == () and one.valid == converged[b]
    np.testing.assert_array_equal(bp(y * (2.0 / sigma**2), sigma=sigma).bits, bits)


def test_deprecated_entry_points_give_the_same_bits(bch63):
    _, y, sigma = noisy(bch63, 50, 3.0, seed=5)
    bp = BeliefPropagation(bch63, 20)
    res = bp(llr_of(y, sigma))
    with pytest.warns(FrugalDeprecationWarning, match="bp"):
        np.testing.assert_array_equal(bp(y, sigma), res.bits)
    with pytest.warns(FrugalDeprecationWarning, match="decode_llr"):
        bits, conv = bp.decode_llr(llr_of(y, sigma))
    np.testing.assert_array_equal(bits, res.bits)
    np.testing.assert_array_equal(conv, res.valid)
    with pytest.warns(FrugalDeprecationWarning), pytest.raises(InvalidInputError, match="sigma"):
        bp(y, 0.0)


def test_one_iteration_and_empty_batch(bch63):
    _, y, sigma = noisy(bch63, 20, 6.0, seed=6)
    bp = BeliefPropagation(bch63, iterations=1)
    llr = llr_of(y, sigma)
    assert bp(llr).bits.shape == y.shape
    assert bp(llr[:0]).bits.shape == (0, 63)
    res = bp(np.zeros((0, 63)))
    assert res.bits.shape == (0, 63) and res.valid.shape == (0,) and res.iterations.shape == (0,)


def test_summary(bch63):
    text = BeliefPropagation(bch63, 10, "min-sum", normalization=0.75).summary()
    assert "min-sum" in text and "10" in text and "0.75" in text


# -- bad input ----------------------------------------------------------------------------------


def test_bad_constructor_arguments(bch63):
    for it in (0, -3, 2.5, "10"):
        with pytest.raises(InvalidInputError, match="iterations"):
            BeliefPropagation(bch63, iterations=it)
    with pytest.raises(InvalidInputError, match="variant"):
        BeliefPropagation(bch63, variant="max-product")
    for damping in (-0.1, 1.0, np.nan):
        with pytest.raises(InvalidInputError, match="damping"):
            BeliefPropagation(bch63, damping=damping)
    for norm in (0.0, 1.5, -1.0):
        with pytest.raises(InvalidInputError, match="normalization"):
            BeliefPropagation(bch63, variant="min-sum", normalization=norm)
    with pytest.raises(InvalidInputError, match="offset"):
        BeliefPropagation(bch63, variant="min-sum", offset=-0.5)
    with pytest.raises(InvalidInputError, match="min-sum only"):
        BeliefPropagation(bch63, variant="sum-product", normalization=0.8)
    with pytest.raises(InvalidInputError, match="BinaryLinearCode"):
        BeliefPropagation(np.ones((3, 7)))


def test_bad_observations(bch63):
    bp = BeliefPropagation(bch63, 5)
    y = np.ones((4, 63))
    with pytest.raises(InvalidInputError, match="shape"):
        bp(np.ones((4, 64)))
    with pytest.raises(InvalidInputError, match="shape"):
        bp(1.0)
    assert bp(np.ones((2, 2, 63))).bits.shape == (2, 2, 63)  # any leading dimensions
    with pytest.raises(InvalidInputError, match="dimension"):
        bp.posterior_llr(np.ones((2, 2, 63)))
    for bad in (np.nan, np.inf):
        z = y.copy()
        z[2, 5] = bad
        with pytest.raises(InvalidInputError, match="NaN or inf"):
            bp(z)
        with pytest.raises(InvalidInputError, match="NaN or inf"):
            bp.posterior_llr(z)
    for sigma in (0.0, -1.0, np.inf):
        with pytest.raises(InvalidInputError, match="sigma"):
            bp(y, sigma=sigma)


def test_degenerate_graphs():
    uncoded = BinaryLinearCode(name="uncoded-5", n=5, k=5, H=np.zeros((0, 5)), G=np.eye(5))
    llr = np.random.default_rng(0).standard_normal((10, 5))
    res = BeliefPropagation(uncoded, 3)(llr)
    np.testing.assert_array_equal(res.bits, llr < 0)
    assert res.valid.all()
    # a degree-1 check pins its bit to 0, with a large but finite message
    code = code_from_h("pinned", [[1, 0, 0, 0], [0, 1, 1, 1]])
    llr = np.random.default_rng(1).standard_normal((20, 4))
    llr[:, 0] = -2.0
    for variant in ("sum-product", "min-sum"):
        post = BeliefPropagation(code, 5, variant).posterior_llr(llr)
        assert np.all(np.isfinite(post)) and np.all(post[:, 0] > 10)
