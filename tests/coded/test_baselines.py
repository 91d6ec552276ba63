"""Baseline codes: uncoded, replication, Gaussian MDS and real Vandermonde (polynomial) codes.

References are independent of the decoders: the plain product ``u G`` (einsum over the
generator), brute-force rank checks of ``G[:, S]``, and per-block loops for partial decoding.
"""

from __future__ import annotations

import re

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from frugalml.coded.base import Decoded, RealLinearCode
from frugalml.coded.baselines import GaussianMDS, Replication, Uncoded, VandermondeCode
from frugalml.errors import InvalidInputError, NotDecodableError

# -- helpers ----------------------------------------------------------------------------------


def all_masks(n: int) -> np.ndarray:
    """(2**n, n) bool: every arrival pattern."""
    codes = np.arange(2**n)[:, None]
    return ((codes >> np.arange(n)) & 1).astype(bool)


def reference_encode(code: RealLinearCode, u: np.ndarray) -> np.ndarray:
    """x_j = sum_i G[i, j] u_i, written independently of any encoder."""
    return np.einsum("kn,k...->n...", code.generator, u)


def erase(y: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Outputs with NaN in every erased row (decoders must never read those)."""
    out = y.copy()
    out[~mask] = np.nan
    return out


def rel_err(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.linalg.norm(a - b) / np.linalg.norm(b))


def rank_decodable(g: np.ndarray, mask: np.ndarray) -> bool:
    return bool(mask.sum() > 0 and np.linalg.matrix_rank(g[:, mask]) == g.shape[0])


def check_decoded(d: Decoded, k: int, block_shape: tuple[int, ...], mask: np.ndarray) -> None:
    assert isinstance(d, Decoded)
    assert d.blocks.shape == (k, *block_shape)
    assert d.known.shape == (k,)
    assert d.known.dtype == bool
    assert d.n_arrived == int(mask.sum())
    assert isinstance(d.method, str)
    assert np.all(np.isfinite(d.blocks)), "NaN from an erased row leaked into the result"
    assert np.all(d.blocks[~d.known] == 0)


SMALL_MDS = [(1, 1), (3, 1), (4, 2), (5, 3), (6, 3), (4, 4), (7, 4), (8, 5)]


# -- uncoded ----------------------------------------------------------------------------------


@pytest.mark.parametrize("k", [1, 2, 5, 8])
def test_uncoded_every_pattern(k):
    rng = np.random.default_rng(k)
    code = Uncoded(k)
    assert (code.n, code.k) == (k, k)
    np.testing.assert_array_equal(code.generator, np.eye(k))
    u = rng.standard_normal((k, 3, 2))
    y = code.encode(u)
    np.testing.assert_array_equal(y, reference_encode(code, u))
    assert y is not u and not np.shares_memory(y, u)
    for mask in all_masks(k):
        d = code.decode(erase(y, mask), mask)
        check_decoded(d, k, (3, 2), mask)
        np.testing.assert_array_equal(d.known, mask)
        np.testing.assert_array_equal(d.blocks[mask], u[mask])
        assert code.decodable(mask) == d.complete == bool(mask.all())


# -- replication ------------------------------------------------------------------------------


@pytest.mark.parametrize(("k", "r"), [(1, 1), (1, 4), (2, 2), (3, 2), (2, 3), (4, 2), (2, 4)])
def test_replication_every_pattern(k, r):
    rng = np.random.default_rng(10 * k + r)
    code = Replication(k, r)
    n = k * r
    assert (code.n, code.k, code.r) == (n, k, r)
    u = rng.standard_normal((k, 4))
    y = code.encode(u)
    np.testing.assert_array_equal(y, reference_encode(code, u))
    np.testing.assert_array_equal(y[:k], u)  # the first K workers hold one copy each
    for mask in all_masks(n):
        expect = np.array([any(mask[j] for j in range(n) if j % k == i) for i in range(k)])
        d = code.decode(erase(y, mask), mask)
        check_decoded(d, k, (4,), mask)
        np.testing.assert_array_equal(d.known, expect)
        np.testing.assert_array_equal(d.blocks[expect], u[expect])
        assert code.decodable(mask) == d.complete == bool(expect.all())
        assert d.complete == rank_decodable(code.generator, mask)


# -- Gaussian MDS -----------------------------------------------------------------------------


@pytest.mark.parametrize("systematic", [True, False])
@pytest.mark.parametrize(("n", "k"), SMALL_MDS)
def test_gaussian_mds_every_pattern(n, k, systematic):
    rng = np.random.default_rng(100 * n + k)
    code = GaussianMDS(n, k, rng=rng, systematic=systematic)
    g = code.generator
    assert g.shape == (k, n)
    if systematic:
        np.testing.assert_array_equal(g[:, :k], np.eye(k))
    u = rng.standard_normal((k, 2, 3))
    y = code.encode(u)
    np.testing.assert_allclose(y, reference_encode(code, u), rtol=1e-13, atol=1e-13)
    if systematic:
        np.testing.assert_array_equal(y[:k], u)
    for mask in all_masks(n):
        d = code.decode(erase(y, mask), mask)
        check_decoded(d, k, (2, 3), mask)
        full = bool(mask.sum() >= k)
        assert code.decodable(mask) == d.complete == full == rank_decodable(g, mask)
        if full:
            assert rel_err(d.blocks, u) <= 1e-10
            assert np.isfinite(code.condition_number(mask))
        else:
            assert code.condition_number(mask) == np.inf
            expect = mask[:k] if systematic else np.zeros(k, bool)
            np.testing.assert_array_equal(d.known, expect)
            np.testing.assert_array_equal(d.blocks[expect], u[expect])


@pytest.mark.parametrize("systematic", [True, False])
@pytest.mark.parametrize(("n", "k"), [(16, 8), (64, 32)])
@settings(max_examples=100, deadline=None, derandomize=True)
@given(data=st.data())
def test_gaussian_mds_random_patterns(n, k, systematic, data):
    code = GaussianMDS(n, k, rng=n + k, systematic=systematic)
    seed = data.draw(st.integers(0, 2**32 - 1), label="seed")
    a = data.draw(st.integers(k, n), label="arrived")
    shape = data.draw(st.lists(st.integers(1, 4), max_size=2).map(tuple), label="block_shape")
    rng = np.random.default_rng(seed)
    mask = np.zeros(n, bool)
    mask[rng.permutation(n)[:a]] = True
    u = rng.standard_normal((k, *shape))
    d = code.decode(erase(code.encode(u), mask), mask)
    check_decoded(d, k, shape, mask)
    assert d.complete and code.decodable(mask)
    assert rel_err(d.blocks, u) <= 1e-10
    if systematic:  # arrived systematic blocks are copied, not solved for
        np.testing.assert_array_equal(d.blocks[mask[:k]], u[mask[:k]])


def test_gaussian_mds_systematic_decoder_matches_full_solve():
    code = GaussianMDS(12, 6, rng=7)
    rng = np.random.default_rng(0)
    u = rng.standard_normal((6, 5))
    y = code.encode(u)
    mask = np.array([1, 0, 1, 0, 0, 1, 1, 0, 1, 1, 0, 1], bool)  # 3 systematic missing
    used = np.array([0, 2, 5, 6, 8, 9])  # systematic arrivals + first 3 arrived parities
    ref = np.linalg.solve(code.generator[:, used].T, y[used])
    d = code.decode(y, mask)
    np.testing.assert_allclose(d.blocks, ref, rtol=1e-12, atol=1e-12)
    assert code.condition_number(mask) == pytest.approx(np.linalg.cond(code.generator[:, used]))
    assert code.condition_number(np.ones(12, bool)) == pytest.approx(1.0)


def test_gaussian_mds_reproducible_and_scaled():
    a, b = GaussianMDS(40, 20, rng=3), GaussianMDS(40, 20, rng=3)
    np.testing.assert_array_equal(a.generator, b.generator)
    np.testing.assert_array_equal(a.parity, a.generator[:, 20:])
    big = GaussianMDS(2000, 1000, rng=0).parity
    assert big.var() == pytest.approx(1 / 1000, rel=0.02)
    dense = GaussianMDS(8, 4, rng=0, systematic=False).generator
    assert not np.allclose(dense[:, :4], np.eye(4))


# -- Vandermonde ------------------------------------------------------------------------------


@pytest.mark.parametrize("points", ["chebyshev", "equispaced"])
@pytest.mark.parametrize(("n", "k"), SMALL_MDS)
def test_vandermonde_every_pattern(n, k, points):
    rng = np.random.default_rng(n * k)
    code = VandermondeCode(n, k, points=points)
    a = code.nodes
    assert a.shape == (n,) and np.all(np.abs(a) <= 1) and len(np.unique(a)) == n
    np.testing.assert_allclose(code.generator, a[None, :] ** np.arange(k)[:, None])
    u = rng.standard_normal((k, 3))
    y = code.encode(u)
    np.testing.assert_allclose(y, reference_encode(code, u), rtol=1e-13, atol=1e-13)
    for mask in all_masks(n):
        d = code.decode(erase(y, mask), mask)
        check_decoded(d, k, (3,), mask)
        full = bool(mask.sum() >= k)
        assert code.decodable(mask) == d.complete == full == rank_decodable(code.generator, mask)
        if full:
            assert rel_err(d.blocks, u) <= 1e-9
        else:
            assert not d.known.any()
            assert code.condition_number(mask) == np.inf


def test_vandermonde_nodes():
    np.testing.assert_allclose(
        VandermondeCode(4, 2, "chebyshev").nodes, np.cos(np.pi * np.array([1, 3, 5, 7]) / 8)
    )
    np.testing.assert_allclose(VandermondeCode(5, 2, "equispaced").nodes, [-1, -0.5, 0, 0.5, 1])


@settings(max_examples=100, deadline=None, derandomize=True)
@given(
    k=st.integers(1, 6),
    extra=st.integers(0, 6),
    points=st.sampled_from(["chebyshev", "equispaced"]),
    shape=st.lists(st.integers(1, 3), max_size=3).map(tuple),
    seed=st.integers(0, 2**32 - 1),
)
def test_vandermonde_random_patterns(k, extra, points, shape, seed):
    rng = np.random.default_rng(seed)
    n = k + extra
    code = VandermondeCode(n, k, points=points)
    mask = rng.random(n) < 0.7
    u = rng.standard_normal((k, *shape))
    d = code.decode(erase(code.encode(u), mask), mask)
    check_decoded(d, k, shape, mask)
    assert d.complete == code.decodable(mask) == bool(mask.sum() >= k)
    if d.complete:
        assert rel_err(d.blocks, u) <= 1e-9


def test_vandermonde_conditioning_explodes_gaussian_stays_moderate():
    def cond_all(code):
        return code.condition_number(np.ones(code.n, bool))

    c8 = cond_all(VandermondeCode(16, 8, "equispaced"))
    c24 = cond_all(VandermondeCode(48, 24, "equispaced"))
    assert c24 > 1e6 * c8  # orders of magnitude, not a constant factor
    assert c24 > 1e12
    # the same growth shows in the decoded error
    rng = np.random.default_rng(0)
    errs = {}
    for k in (8, 24):
        code = VandermondeCode(2 * k, k, "equispaced")
        u = rng.standard_normal((k, 8))
        errs[k] = rel_err(code.decode(code.encode(u), np.ones(2 * k, bool)).blocks, u)
    assert errs[8] < 1e-9 and errs[24] > 1e3 * errs[8]
    # Gaussian MDS: moderate on typical random patterns, for any K
    for k in (8, 24):
        code = GaussianMDS(2 * k, k, rng=k)
        conds = [code.condition_number(rng.permutation(2 * k)[:k]) for _ in range(30)]
        assert np.median(conds) < 1e3


# -- common behaviour -------------------------------------------------------------------------

ALL_CODES = [
    pytest.param(lambda: Uncoded(5), id="uncoded"),
    pytest.param(lambda: Replication(3, 2), id="replication"),
    pytest.param(lambda: GaussianMDS(8, 4, rng=0), id="gaussian-sys"),
    pytest.param(lambda: GaussianMDS(8, 4, rng=0, systematic=False), id="gaussian"),
    pytest.param(lambda: VandermondeCode(8, 4), id="vandermonde"),
]


@pytest.mark.parametrize("make", ALL_CODES)
def test_integer_indices_equal_bool_mask(make):
    code = make()
    rng = np.random.default_rng(1)
    u = rng.standard_normal((code.k, 2))
    y = code.encode(u)
    for _ in range(5):
        idx = np.sort(rng.permutation(code.n)[: rng.integers(1, code.n + 1)])
        mask = np.zeros(code.n, bool)
        mask[idx] = True
        a, b = code.decode(y, idx), code.decode(y, mask)
        np.testing.assert_array_equal(a.blocks, b.blocks)
        np.testing.assert_array_equal(a.known, b.known)
        assert code.decodable(idx) == code.decodable(mask)


@pytest.mark.parametrize("make", ALL_CODES)
def test_require_complete(make):
    code = make()
    u = np.random.default_rng(2).standard_normal((code.k, 3))
    y = code.encode(u)
    np.testing.assert_allclose(code.decode(y, np.ones(code.n, bool)).require_complete(), u)
    mask = np.zeros(code.n, bool)
    mask[0] = True  # one arrival never decodes these codes (K >= 2 or N = K >= 2)
    d = code.decode(erase(y, mask), mask)
    assert not d.complete
    with pytest.raises(NotDecodableError, match=re.escape("1 coded output(s) arrived")):
        d.require_complete()


@pytest.mark.parametrize("make", ALL_CODES)
def test_scalar_blocks_float32_and_int_inputs(make):
    code = make()
    u = np.arange(code.k, dtype=np.int64) + 1  # scalar blocks, integer input
    y = code.encode(u)
    assert y.shape == (code.n,) and np.issubdtype(y.dtype, np.floating)
    np.testing.assert_allclose(code.decode(y, np.ones(code.n, bool)).blocks, u, rtol=1e-10)
    y32 = code.encode(u.astype(np.float32))
    d = code.decode(y32, np.ones(code.n, bool))
    assert d.blocks.dtype == np.float32
    np.testing.assert_allclose(d.blocks, u, rtol=1e-4)


@pytest.mark.parametrize("make", ALL_CODES)
def test_decode_does_not_alias_or_modify_outputs(make):
    code = make()
    y = code.encode(np.random.default_rng(3).standard_normal((code.k, 4)))
    before = y.copy()
    d = code.decode(y, np.ones(code.n, bool))
    d.blocks[...] = 0
    np.testing.assert_array_equal(y, before)


@pytest.mark.parametrize("make", ALL_CODES)
def test_bad_decode_input(make):
    code = make()
    n, k = code.n, code.k
    y = code.encode(np.ones((k, 2)))
    ok = np.ones(n, bool)
    with pytest.raises(InvalidInputError, match="outputs must have shape"):
        code.decode(np.ones((n + 1, 2)), ok)
    with pytest.raises(InvalidInputError, match="mask must have shape"):
        code.decode(y, np.ones(n + 1, bool))
    with pytest.raises(InvalidInputError, match="mask must have shape"):
        code.decodable(np.ones(n - 1, bool))
    with pytest.raises(InvalidInputError, match=r"arrived indices must lie"):
        code.decode(y, np.array([0, n]))
    bad = y.copy()
    bad[0, 1] = np.nan
    with pytest.raises(InvalidInputError, match="NaN or inf"):
        code.decode(bad, ok)
    mask = ok.copy()
    mask[0] = False
    code.decode(bad, mask)  # the NaN row is erased: fine
    with pytest.raises(InvalidInputError, match="blocks must have shape"):
        code.encode(np.ones((k + 1, 2)))
    with pytest.raises(InvalidInputError, match="NaN"):
        code.encode(np.full((k, 2), np.nan))


@pytest.mark.parametrize(
    ("make", "match"),
    [
        (lambda: Uncoded(0), "k must be >= 1"),
        (lambda: Uncoded(2.5), "k must be an integer"),
        (lambda: Replication(0, 2), "k must be >= 1"),
        (lambda: Replication(3, 0), "r must be >= 1"),
        (lambda: GaussianMDS(3, 4), r"n .* must be >= k .* got n=3, k=4"),
        (lambda: GaussianMDS(4, 0), "k must be >= 1"),
        (lambda: GaussianMDS(4, 2, rng="seed"), "rng must be"),
        (lambda: GaussianMDS(4, 2, systematic="yes"), "systematic must be"),
        (lambda: VandermondeCode(3, 4), r"n .* must be >= k"),
        (lambda: VandermondeCode(4, 2, points="random"), "points must be one of"),
    ],
)
def test_bad_constructor_input(make, match):
    with pytest.raises(InvalidInputError, match=match):
        make()


def test_repr_and_readonly_generator():
    for code in (Uncoded(3), Replication(3, 2), GaussianMDS(6, 3, rng=0), VandermondeCode(6, 3)):
        assert type(code).__name__ in repr(code)
        with pytest.raises(ValueError):
            code.generator[0, 0] = 5.0
