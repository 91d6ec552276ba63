"""Two-dimensional product codes (frugalml.coded.product).

Worker outputs are built independently of the decoder: worker (i, j) holds
A~_i B~_j = einsum over the coded factors, itself checked against
X[i, j] = sum_{a, b} G1[a, i] G2[b, j] A_a B_b. Erased outputs are NaN, so a decoder that
read them would fail. Brute force on tiny products compares every arrival pattern with the
rank criterion: block (a, b) is identifiable iff e_(a,b) lies in the row space of the arrived
columns of G1 (x) G2.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from frugalml.coded.baselines import GaussianMDS
from frugalml.coded.polar import PolarCode
from frugalml.coded.product import ProductCode, ProductDecoded
from frugalml.errors import InvalidInputError, NotDecodableError


def case(pc: ProductCode, seed: int, r: int = 2, n: int = 3, c: int = 2):
    """Message blocks C (K1, K2, r, c) and worker outputs X (N1, N2, r, c)."""
    rng = np.random.default_rng(seed)
    k1, k2 = pc.k_shape
    a_blocks = rng.standard_normal((k1, r, n))
    b_blocks = rng.standard_normal((k2, n, c))
    at, bt = pc.encode(a_blocks, b_blocks)
    x = np.einsum("irn,jnc->ijrc", at, bt)
    c_ref = np.einsum("arn,bnc->abrc", a_blocks, b_blocks)
    g1, g2 = pc.row_code.generator, pc.col_code.generator
    np.testing.assert_allclose(x, np.einsum("ai,bj,abrc->ijrc", g1, g2, c_ref), atol=1e-12)
    return c_ref, x


def erase(x: np.ndarray, mask: np.ndarray) -> np.ndarray:
    out = x.copy()
    out[~mask] = np.nan
    return out


def identifiable(pc: ProductCode, mask: np.ndarray) -> np.ndarray:
    """(K1, K2) bool: blocks determined by the arrived outputs (rank criterion)."""
    g = np.kron(pc.row_code.generator, pc.col_code.generator)  # (K1 K2, N1 N2)
    rows = g[:, mask.reshape(-1)].T  # arrived equations
    k = g.shape[0]
    if rows.shape[0] == 0:
        return np.zeros(pc.k_shape, dtype=bool)
    _, s, vt = np.linalg.svd(rows, full_matrices=True)
    rank = int((s > 1e-9 * s.max()).sum())
    null = vt[rank:]
    ok = np.all(np.abs(null) < 1e-9, axis=0) if null.size else np.ones(k, bool)
    return ok.reshape(pc.k_shape)


PRODUCTS = {
    "polar x polar": lambda: ProductCode(PolarCode(8, 4, rng=0), PolarCode(4, 2, rng=1)),
    "polar x mds": lambda: ProductCode(PolarCode(8, 4, rng=2), GaussianMDS(4, 2, rng=3)),
}


@pytest.mark.parametrize("name", sorted(PRODUCTS))
def test_random_masks_exact_recovery(name):
    pc = PRODUCTS[name]()
    c_ref, x = case(pc, seed=5)
    rng = np.random.default_rng(6)
    complete = partial = 0
    for p in (0.2, 0.3, 0.4, 0.6):
        for _ in range(25):
            mask = rng.random(pc.shape) < p
            dec = pc.decode(erase(x, mask), mask)
            assert isinstance(dec, ProductDecoded)
            assert dec.blocks.shape == c_ref.shape and dec.known.shape == pc.k_shape
            assert dec.n_arrived == int(mask.sum()) and dec.sweeps >= 1
            np.testing.assert_allclose(dec.blocks[dec.known], c_ref[dec.known], atol=1e-9)
            assert pc.decodable(mask) == dec.complete
            assert not (dec.known & ~identifiable(pc, mask)).any()
            if dec.complete:
                complete += 1
                np.testing.assert_allclose(dec.require_complete(), c_ref, atol=1e-9)
            elif dec.known.any():
                partial += 1
    assert complete >= 20 and partial >= 2  # both regimes were exercised


def test_all_arrived_and_decoder_leaves_inputs_alone():
    pc = PRODUCTS["polar x mds"]()
    c_ref, x = case(pc, seed=7, r=1, n=2, c=3)
    mask = np.ones(pc.shape, dtype=bool)
    before = x.copy()
    dec = pc.decode(x, mask)
    assert dec.complete and dec.sweeps == 1
    np.testing.assert_allclose(dec.blocks, c_ref, atol=1e-10)
    np.testing.assert_array_equal(x, before)
    # scalar blocks (outputs of shape (N1, N2))
    rng = np.random.default_rng(0)
    cs = rng.standard_normal(pc.k_shape)
    xs = np.einsum("ai,bj,ab->ij", pc.row_code.generator, pc.col_code.generator, cs)
    np.testing.assert_allclose(pc.decode(xs, mask).blocks, cs, atol=1e-10)


@pytest.mark.parametrize(
    "make",
    [
        lambda: ProductCode(PolarCode(2, 1, rng=0), GaussianMDS(2, 1, rng=1)),
        lambda: ProductCode(PolarCode(2, 1, rng=2), PolarCode(2, 1, rng=3)),
        lambda: ProductCode(PolarCode(4, 2, rng=4), PolarCode(2, 1, rng=5)),
        lambda: ProductCode(GaussianMDS(3, 2, rng=6), PolarCode(2, 1, rng=7)),
        lambda: ProductCode(GaussianMDS(3, 2, rng=8), GaussianMDS(2, 1, rng=9)),
    ],
    ids=[
        "polar2x1-mds2x1",
        "polar2x1-polar2x1",
        "polar4x2-polar2x1",
        "mds3x2-polar2x1",
        "mds3x2-mds2x1",
    ],
)
def test_brute_force_every_mask(make):
    """Every arrival pattern: known blocks are exact and identifiable; decodable agrees."""
    pc = make()
    c_ref, x = case(pc, seed=11, r=2, n=2, c=1)
    n1, n2 = pc.shape
    full = 0
    for bits in itertools.product([False, True], repeat=n1 * n2):
        mask = np.array(bits).reshape(n1, n2)
        dec = pc.decode(erase(x, mask), mask)
        np.testing.assert_allclose(dec.blocks[dec.known], c_ref[dec.known], atol=1e-9)
        assert not (dec.known & ~identifiable(pc, mask)).any()
        assert pc.decodable(mask) == dec.complete
        full += dec.complete
    assert full >= 1
    # nothing arrived: nothing known
    none = np.zeros(pc.shape, dtype=bool)
    assert not pc.decode(erase(x, none), none).known.any()


def test_single_parity_codes_decode_from_any_one_arrival():
    """(2,1) x (2,1): every worker output is a nonzero multiple of the single block."""
    pc = ProductCode(PolarCode(2, 1, rng=0), GaussianMDS(2, 1, rng=1, systematic=False))
    c_ref, x = case(pc, seed=3)
    for i, j in itertools.product(range(2), range(2)):
        mask = np.zeros((2, 2), dtype=bool)
        mask[i, j] = True
        dec = pc.decode(erase(x, mask), mask)
        assert dec.complete
        np.testing.assert_allclose(dec.blocks, c_ref, atol=1e-10)


def test_require_complete_and_bad_input():
    pc = PRODUCTS["polar x mds"]()
    _, x = case(pc, seed=1)
    none = np.zeros(pc.shape, dtype=bool)
    dec = pc.decode(erase(x, none), none)
    with pytest.raises(NotDecodableError, match=r"0 worker output\(s\) arrived"):
        dec.require_complete()
    for bad in (np.ones((8, 3), bool), np.ones(32, bool), np.ones(pc.shape, int), [[True]]):
        with pytest.raises(InvalidInputError, match="mask must be a boolean array of shape"):
            pc.decode(x, bad)
        with pytest.raises(InvalidInputError, match="mask must be a boolean array of shape"):
            pc.decodable(bad)
    mask = np.ones(pc.shape, dtype=bool)
    with pytest.raises(InvalidInputError, match="outputs must have shape"):
        pc.decode(x[:4], mask)
    with pytest.raises(InvalidInputError, match="NaN or inf"):
        pc.decode(erase(x, ~mask), mask)
    with pytest.raises(InvalidInputError, match="two RealLinearCode"):
        ProductCode(PolarCode(4, 2), np.eye(2))
