"""Real-valued polar codes: erasure profile, encoder, SC decoding and least-squares decoding.

Every check compares against a reference written here, independently of the library:

* the erasure profile against the recursion z_N(e) = [z_{N/2}(2e - e^2), z_{N/2}(e^2)]
  (genuine recursion, not the library's loop) and against Monte-Carlo frequencies of the
  genie-aided SC erasure event, decided by rank tests on the full generator;
* the encoder against an ``np.kron`` power of the kernel with the signs and permutation applied;
* SC decisions against the genie rank test (the first data block SC misses is the first one
  the genie says is undetermined), against the rank condition on ``G[:, S]`` and against
  identifiability (row i of ``G[:, S]`` not in the span of the other rows);
* least squares against the same identifiability test.
"""

from __future__ import annotations

import re
from functools import reduce

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from frugalml.coded.base import Decoded
from frugalml.coded.polar import KERNELS, PolarCode, erasure_profile, polar_transform
from frugalml.errors import InvalidInputError, NotDecodableError

KERNEL_NAMES = ("hadamard", "arikan")
REF_KERNELS = {
    "hadamard": np.array([[1.0, 1.0], [1.0, -1.0]]) / np.sqrt(2.0),
    "arikan": np.array([[1.0, 0.0], [1.0, 1.0]]),
}

# -- references -------------------------------------------------------------------------------


def z_ref(n: int, e: float) -> list[float]:
    """z_N(e) = concat(z_{N/2}(2e - e^2), z_{N/2}(e^2)), z_1(e) = [e], by plain recursion."""
    if n == 1:
        return [e]
    return z_ref(n // 2, 2 * e - e * e) + z_ref(n // 2, e * e)


def z_ref_partial(n: int, e: float, levels: int) -> list[float]:
    """The same recursion stopped after ``levels`` splits (each group keeps its value)."""
    if levels == 0:
        return [e] * n
    return z_ref_partial(n // 2, 2 * e - e * e, levels - 1) + z_ref_partial(
        n // 2, e * e, levels - 1
    )


def z_concat_loop(n: int, e: float) -> np.ndarray:
    """The other expansion order: concatenate minus/plus children at every loop level."""
    z = np.array([e])
    while z.size < n:
        z = np.concatenate([2 * z - z * z, z * z])
    return z


def bit_reverse(n: int) -> np.ndarray:
    bits = n.bit_length() - 1
    return np.array([int(format(i, f"0{bits}b")[::-1], 2) if bits else 0 for i in range(n)])


def kron_generator(kernel: str, n: int, levels: int | None = None) -> np.ndarray:
    """F^{(x)levels} (x) I_{N / 2^levels} in the row convention x = u G."""
    total = n.bit_length() - 1
    levels = total if levels is None else levels
    f = REF_KERNELS[kernel]
    g = reduce(np.kron, [f] * levels, np.eye(1))
    return np.kron(g, np.eye(n >> levels))


def ref_data_positions(n: int, k: int, e: float, levels: int | None = None) -> np.ndarray:
    """K smallest z, ties towards the higher index (the documented rule)."""
    total = n.bit_length() - 1
    z = z_ref_partial(n, e, total if levels is None else levels)
    return np.sort(sorted(range(n), key=lambda i: (z[i], -i))[:k])


def ref_generator(code: PolarCode) -> np.ndarray:
    """(K, N): generator[:, j] = signs * G[data_positions, permutation[j]]."""
    g = kron_generator(code.kernel_name, code.n, code.levels)
    return g[code.data_positions][:, code.permutation] * code.signs[:, None]


def batched_rank(mats: np.ndarray) -> np.ndarray:
    """Ranks of a stack (T, r, c); empty matrices have rank 0."""
    if mats.shape[-1] == 0 or mats.shape[-2] == 0:
        return np.zeros(mats.shape[:-2], dtype=int)
    return np.linalg.matrix_rank(mats)


def genie_undetermined(g_full: np.ndarray, observed: np.ndarray) -> np.ndarray:
    """(T, N) bool: u_i is NOT determined by x_S = (u G)_S given u_0..u_{i-1} (a genie).

    With the prefix known, the unknowns u_i..u_{N-1} are seen through G[i:, S]; u_i is
    determined iff row i is not in the span of rows i+1.., i.e.
    rank(G[i:, S]) == rank(G[i+1:, S]) + 1. Unobserved columns are zeroed (rank unchanged).
    """
    n = g_full.shape[0]
    obs = observed.astype(float)[:, None, :]
    ranks = np.stack(
        [batched_rank(g_full[i:][None] * obs) for i in range(n)]
        + [np.zeros(observed.shape[0], dtype=int)],
        axis=1,
    )
    return ranks[:, :-1] == ranks[:, 1:]


def identifiable(gen: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """(K,) bool: block i is determined by Y_S = G[:, S]^T U (row i not in span of others)."""
    k = gen.shape[0]
    sub = gen[:, mask]
    if sub.shape[1] == 0:
        return np.zeros(k, dtype=bool)
    full = np.linalg.matrix_rank(sub)
    return np.array(
        [
            full == (np.linalg.matrix_rank(np.delete(sub, i, axis=0)) if k > 1 else 0) + 1
            for i in range(k)
        ]
    )


def all_masks(n: int) -> np.ndarray:
    codes = np.arange(2**n)[:, None]
    return ((codes >> np.arange(n)) & 1).astype(bool)


def erase(y: np.ndarray, mask: np.ndarray) -> np.ndarray:
    out = np.array(y, copy=True)
    out[~mask] = np.nan
    return out


def codeword_mask(code: PolarCode, mask: np.ndarray) -> np.ndarray:
    """Codeword positions observed when the workers in ``mask`` arrive."""
    obs = np.zeros(code.n, dtype=bool)
    obs[code.permutation[mask]] = True
    return obs


def first_false(a: np.ndarray) -> int:
    idx = np.flatnonzero(~a)
    return int(idx[0]) if idx.size else a.size


# -- erasure profile --------------------------------------------------------------------------

ERASURES = (0.0, 0.03, 0.3, 0.5, 0.77, 1.0)


@pytest.mark.parametrize("n", [1, 2, 4, 8, 16, 32, 64])
@pytest.mark.parametrize("e", ERASURES)
def test_profile_matches_recursion(n, e):
    z = erasure_profile(n, e)
    assert z.shape == (n,)
    np.testing.assert_allclose(z, z_ref(n, e), rtol=1e-13, atol=0)
    assert np.all((z >= 0) & (z <= 1))


@pytest.mark.parametrize("n", [4, 8, 16, 64])
@pytest.mark.parametrize("e", [0.1, 0.3, 0.5, 0.8])
def test_profile_is_not_the_bit_reversed_order(n, e):
    z = erasure_profile(n, e)
    other = z_concat_loop(n, e)
    np.testing.assert_allclose(other, np.asarray(z_ref(n, e))[bit_reverse(n)], rtol=1e-13)
    assert not np.allclose(z, other), "profile came out in the concatenate-children order"
    # same multiset, different order
    np.testing.assert_allclose(np.sort(z), np.sort(other), rtol=1e-13)


@pytest.mark.parametrize("n", [2, 8, 32, 64])
@pytest.mark.parametrize("e", [0.2, 0.5])
def test_partial_polarisation_profile(n, e):
    total = n.bit_length() - 1
    for levels in range(total + 1):
        z = erasure_profile(n, e, levels)
        np.testing.assert_allclose(z, z_ref_partial(n, e, levels), rtol=1e-13)
        group = n >> levels
        np.testing.assert_allclose(z, np.repeat(z_ref(2**levels, e), group), rtol=1e-13)
    np.testing.assert_array_equal(erasure_profile(n, e, 0), np.full(n, e))
    np.testing.assert_array_equal(erasure_profile(n, e, total), erasure_profile(n, e))


@pytest.mark.parametrize(
    ("n", "e", "kernel", "levels"),
    [(32, 0.3, "hadamard", None), (16, 0.5, "arikan", None), (16, 0.4, "hadamard", 2)],
)
def test_profile_matches_monte_carlo_genie_sc(n, e, kernel, levels):
    """P(u_i undetermined | u_<i known) over random erasures equals profile[i].

    Tolerance: 4 binomial standard errors at the predicted probability, plus 1/T for the
    positions whose probability is ~0 or ~1 (one stray count).
    """
    trials = 2000
    rng = np.random.default_rng(12345 + n)
    observed = rng.random((trials, n)) >= e
    g_full = PolarCode(n, n, kernel=kernel, levels=levels, randomize=False).full_generator
    np.testing.assert_allclose(g_full, kron_generator(kernel, n, levels), atol=1e-12)
    freq = genie_undetermined(g_full, observed).mean(axis=0)
    z = erasure_profile(n, e, levels)
    tol = 4 * np.sqrt(z * (1 - z) / trials) + 1.0 / trials
    bad = np.flatnonzero(np.abs(freq - z) > tol)
    assert bad.size == 0, (
        f"positions {bad}: Monte-Carlo {freq[bad]} vs profile {z[bad]} (tol {tol[bad]})"
    )
    # The bit-reversed order must be rejected by the same data (it is a different law).
    other = z_concat_loop(n, e) if levels is None else None
    if other is not None:
        assert np.any(np.abs(freq - other) > 4 * np.sqrt(other * (1 - other) / trials) + 1e-3)


@pytest.mark.parametrize("levels", [None, 0, 1, 2])
@pytest.mark.parametrize(("n", "k"), [(8, 3), (16, 7), (64, 20)])
def test_data_positions_are_most_reliable(n, k, levels):
    code = PolarCode(n, k, design_erasure=0.37, levels=levels, rng=0)
    np.testing.assert_array_equal(code.data_positions, ref_data_positions(n, k, 0.37, levels))
    assert code.frozen.sum() == n - k
    assert not code.frozen[code.data_positions].any()
    np.testing.assert_allclose(code.profile, erasure_profile(n, 0.37, levels))


# -- encoder ----------------------------------------------------------------------------------


@pytest.mark.parametrize("kernel", KERNEL_NAMES)
@pytest.mark.parametrize("n", [1, 2, 4, 8, 16, 64])
@pytest.mark.parametrize("shape", [(), (3,), (2, 5)])
def test_encoder_matches_kron_generator(kernel, n, shape):
    rng = np.random.default_rng(n)
    for k in sorted({1, max(1, n // 2), n}):
        code = PolarCode(n, k, kernel=kernel, rng=n + k)
        np.testing.assert_allclose(code.full_generator, kron_generator(kernel, n), atol=1e-12)
        np.testing.assert_allclose(code.generator, ref_generator(code), atol=1e-12)
        assert code.generator.shape == (k, n)
        u = rng.standard_normal((k, *shape))
        u_copy = u.copy()
        x = code.encode(u)
        assert x.shape == (n, *shape)
        np.testing.assert_array_equal(u, u_copy)  # input untouched
        np.testing.assert_allclose(
            x, np.tensordot(code.generator.T, u, axes=(1, 0)), rtol=1e-12, atol=1e-12
        )
        np.testing.assert_allclose(
            x, np.einsum("kn,k...->n...", ref_generator(code), u), rtol=1e-12, atol=1e-12
        )


@pytest.mark.parametrize("kernel", KERNEL_NAMES)
@pytest.mark.parametrize("levels", [0, 1, 3])
def test_encoder_partial_polarisation(kernel, levels):
    code = PolarCode(16, 6, kernel=kernel, levels=levels, rng=4)
    np.testing.assert_allclose(code.full_generator, kron_generator(kernel, 16, levels), atol=1e-12)
    np.testing.assert_allclose(code.generator, ref_generator(code), atol=1e-12)
    u = np.random.default_rng(1).standard_normal((6, 3))
    np.testing.assert_allclose(code.encode(u), ref_generator(code).T @ u, atol=1e-12)


@pytest.mark.parametrize(
    ("n", "levels"), [(1, None), (2, None), (8, None), (64, None), (8, 2), (64, 2), (64, 0)]
)
def test_hadamard_generator_is_orthogonal(n, levels):
    code = PolarCode(n, max(1, n // 4), levels=levels, rng=1)
    g = code.full_generator
    np.testing.assert_allclose(g @ g.T, np.eye(n), atol=1e-12)
    assert np.linalg.cond(g) == pytest.approx(1.0, abs=1e-10)
    # the effective generator has orthonormal rows, and fully polarised columns of norm K/N
    np.testing.assert_allclose(code.generator @ code.generator.T, np.eye(code.k), atol=1e-12)
    if levels is None:
        np.testing.assert_allclose(np.abs(g), 1 / np.sqrt(n), rtol=1e-12)


@pytest.mark.parametrize("kernel", KERNEL_NAMES)
@pytest.mark.parametrize("levels", [None, 0, 2])
def test_polar_transform_inverse(kernel, levels):
    rng = np.random.default_rng(7)
    u = rng.standard_normal((16, 2, 3))
    u0 = u.copy()
    f = KERNELS[kernel]
    x = polar_transform(u, f, levels)
    np.testing.assert_array_equal(u, u0)
    assert x.shape == u.shape and x.dtype == u.dtype
    g = kron_generator(kernel, 16, levels)
    np.testing.assert_allclose(x, np.einsum("ij,i...->j...", g, u), atol=1e-12)
    back = polar_transform(x, np.linalg.inv(f), levels)
    np.testing.assert_allclose(back, u, atol=1e-12)


def test_polar_transform_non_contiguous_input():
    """A transposed (non-C-contiguous) input must give the same transform as a contiguous one."""
    f = KERNELS["hadamard"]
    u = np.random.default_rng(0).standard_normal((3, 2, 8)).transpose(2, 1, 0)  # (8, 2, 3)
    assert not u.flags.c_contiguous
    ref = np.einsum("ij,i...->j...", kron_generator("hadamard", 8), u)
    np.testing.assert_allclose(polar_transform(np.ascontiguousarray(u), f), ref, atol=1e-12)
    got = polar_transform(u, f)
    assert np.allclose(got, ref, atol=1e-12), (
        "polar_transform ignored a non-C-contiguous (N, a, b) input: np.array(u, copy=True) "
        "keeps the layout, x.reshape(n, -1) then copies, and the in-place butterflies write "
        f"to that copy (max deviation {np.abs(got - ref).max():.3g}, output == input: "
        f"{np.array_equal(got, u)})"
    )


def test_encode_decode_non_contiguous_and_input_untouched():
    code = PolarCode(16, 6, rng=9)
    u = np.random.default_rng(9).standard_normal((4, 3, 6)).transpose(2, 1, 0)  # (6, 3, 4)
    assert not u.flags.c_contiguous
    y = code.encode(u)
    np.testing.assert_allclose(y, np.einsum("kn,k...->n...", ref_generator(code), u), atol=1e-12)
    mask = np.ones(16, dtype=bool)
    mask[[2, 5]] = False
    y_in = np.asfortranarray(erase(y, mask))
    y_copy = y_in.copy()
    for fn in (code.decode, code.decode_lstsq):
        d = fn(y_in, mask)
        np.testing.assert_array_equal(y_in, y_copy)  # outputs (NaN rows included) untouched
        assert d.complete
        np.testing.assert_allclose(d.blocks, u, atol=1e-10)


# -- exact recovery (SC) ----------------------------------------------------------------------


def check_sc_on_masks(code: PolarCode, masks: np.ndarray, u: np.ndarray, numeric: np.ndarray):
    """All SC properties on the given masks; ``numeric`` selects which also get decoded."""
    k = code.k
    gen = code.generator
    data_pos = code.data_positions
    scale = np.linalg.norm(u)
    y = code.encode(u)
    observed = np.stack([codeword_mask(code, m) for m in masks])
    undetermined = genie_undetermined(code.full_generator, observed)
    ranks = batched_rank(gen[None] * masks[:, None, :].astype(float))
    known_all = np.zeros((len(masks), k), dtype=bool)
    for t, mask in enumerate(masks):
        kb = code.known_blocks(mask)
        assert kb.shape == (k,) and kb.dtype == bool
        known_all[t] = kb
        dec_ok = code.decodable(mask)
        assert dec_ok == bool(kb.all())
        # SC decisions = genie decisions up to the first miss
        first_sc = first_false(kb)
        first_genie = first_false(~undetermined[t, data_pos])
        assert first_sc == first_genie, (
            f"mask {mask.astype(int)}: SC first misses block {first_sc}, genie {first_genie}"
        )
        if dec_ok:
            assert ranks[t] == k, "SC-decodable but G[:, S] is rank deficient"
        if numeric[t]:
            d = code.decode(erase(y, mask), mask)
            assert isinstance(d, Decoded) and d.method == "sc"
            assert d.blocks.shape == u.shape
            assert d.n_arrived == int(mask.sum())
            assert np.all(np.isfinite(d.blocks)), "NaN from an erased row leaked"
            np.testing.assert_array_equal(d.known, kb)
            assert d.complete == dec_ok
            assert np.all(d.blocks[~d.known] == 0)
            err = np.abs(d.blocks[d.known] - u[d.known]).max(initial=0.0)
            assert err <= 1e-10 * scale, f"known blocks wrong by {err} (mask {mask.astype(int)})"
            assert np.all(kb <= identifiable(gen, mask)), "SC claims a non-identifiable block"
    return known_all


@pytest.mark.parametrize("kernel", KERNEL_NAMES)
@pytest.mark.parametrize("k", range(1, 9))
def test_sc_exhaustive_n8(kernel, k):
    code = PolarCode(8, k, kernel=kernel, rng=100 + k)
    masks = all_masks(8)
    u = np.random.default_rng(k).standard_normal((k, 2)) * np.arange(1, k + 1)[:, None]
    known = check_sc_on_masks(code, masks, u, np.ones(len(masks), dtype=bool))
    # monotone: one more arrival never loses a known block (mask index = bit pattern)
    for j in range(8):
        without = np.flatnonzero(((np.arange(256) >> j) & 1) == 0)
        assert np.all(known[without] <= known[without | (1 << j)])
    assert known[-1].all()  # everyone arrived
    assert not known[0].any()  # nobody arrived
    # the vectorised check over all 256 sets agrees with the one-set SC decoder
    np.testing.assert_array_equal(code.decodable_many(masks), known.all(axis=1))
    # K = N: SC is decodable exactly when everyone arrives
    if k == 8:
        assert known.all(axis=1).sum() == 1


@pytest.mark.parametrize("kernel", KERNEL_NAMES)
@pytest.mark.parametrize("levels", [0, 1, 2])
@pytest.mark.parametrize("k", [3, 6])
def test_sc_exhaustive_n8_partial(kernel, levels, k):
    code = PolarCode(8, k, kernel=kernel, levels=levels, rng=7)
    masks = all_masks(8)
    u = np.random.default_rng(k).standard_normal((k, 3))
    known = check_sc_on_masks(code, masks, u, np.ones(len(masks), dtype=bool))
    for j in range(8):
        without = np.flatnonzero(((np.arange(256) >> j) & 1) == 0)
        assert np.all(known[without] <= known[without | (1 << j)])
    np.testing.assert_array_equal(code.decodable_many(masks), known.all(axis=1))
    if levels == 0:  # identity code: block known iff its own worker arrived
        obs = np.stack([codeword_mask(code, m) for m in masks])
        np.testing.assert_array_equal(known, obs[:, code.data_positions])


@pytest.mark.parametrize("kernel", KERNEL_NAMES)
@pytest.mark.parametrize("k", [4, 8, 12])
def test_sc_sampled_n16(kernel, k):
    """2^16 masks at ~0.25 ms each would take ~16 s per code, so: 600 masks with the number
    of arrivals spread evenly over 0..16, numeric decoding on 300 of them."""
    rng = np.random.default_rng(k)
    code = PolarCode(16, k, kernel=kernel, rng=k)
    counts = rng.integers(0, 17, size=600)
    masks = np.stack([np.isin(np.arange(16), rng.choice(16, c, replace=False)) for c in counts])
    numeric = np.zeros(600, dtype=bool)
    numeric[rng.choice(600, 300, replace=False)] = True
    u = rng.standard_normal((k, 2))
    known = check_sc_on_masks(code, masks, u, numeric)
    for t in range(0, 600, 3):  # monotonicity on random one-worker additions
        missing = np.flatnonzero(~masks[t])
        if missing.size:
            bigger = masks[t].copy()
            bigger[rng.choice(missing)] = True
            assert np.all(known[t] <= code.known_blocks(bigger))


@pytest.mark.parametrize("kernel", KERNEL_NAMES)
@pytest.mark.parametrize(("n", "k", "levels"), [(64, 32, None), (128, 77, None), (64, 20, 3)])
def test_decodable_many_matches_one_at_a_time(kernel, n, k, levels):
    rng = np.random.default_rng(n + k)
    code = PolarCode(n, k, kernel=kernel, levels=levels, rng=3)
    masks = rng.random((300, n)) < rng.uniform(0.2, 1.0, size=(300, 1))
    one = np.array([code.decodable(m) for m in masks])
    assert 0 < one.sum() < len(one)  # both outcomes occur
    np.testing.assert_array_equal(code.decodable_many(masks), one)
    assert code.decodable_many(np.zeros((0, n), dtype=bool)).shape == (0,)
    with pytest.raises(InvalidInputError, match="bool array of shape"):
        code.decodable_many(masks[:, :-1])
    with pytest.raises(InvalidInputError, match="bool array of shape"):
        code.decodable_many(masks.astype(int))


def test_decode_accepts_index_lists_and_scalar_blocks():
    code = PolarCode(8, 3, rng=2)
    u = np.array([1.5, -2.0, 0.25])
    y = code.encode(u)
    assert y.shape == (8,)
    d = code.decode(y, list(range(8)))
    np.testing.assert_allclose(d.blocks, u, atol=1e-12)
    assert d.complete and d.n_arrived == 8
    d0 = code.decode(y, [])
    assert d0.n_arrived == 0 and not d0.known.any() and np.all(d0.blocks == 0)
    mask = np.zeros(8, dtype=bool)
    mask[[1, 4, 6]] = True
    assert code.known_blocks(mask).tolist() == code.known_blocks([1, 4, 6]).tolist()


@settings(max_examples=12, deadline=None, database=None)
@given(
    n=st.sampled_from([256, 1024]),
    seed=st.integers(0, 2**31 - 1),
    frac=st.floats(0.65, 1.0),
    kernel=st.sampled_from(KERNEL_NAMES),
)
def test_large_n_sc_exact(n, seed, frac, kernel):
    rng = np.random.default_rng(seed)
    k = n // 2
    code = PolarCode(n, k, kernel=kernel, rng=seed)
    u = rng.standard_normal((k, 2))
    mask = rng.random(n) < frac
    d = code.decode(erase(code.encode(u), mask), mask)
    assert np.all(np.isfinite(d.blocks))
    np.testing.assert_array_equal(d.known, code.known_blocks(mask))
    if d.known.any():
        err = np.linalg.norm(d.blocks[d.known] - u[d.known]) / np.linalg.norm(u[d.known])
        assert err <= 1e-10
    if d.complete:
        assert np.linalg.norm(d.blocks - u) / np.linalg.norm(u) <= 1e-10


@pytest.mark.parametrize("kernel", KERNEL_NAMES)
def test_large_n_full_arrival_and_margin(kernel):
    for n in (256, 1024):
        code = PolarCode(n, n // 2, kernel=kernel, rng=n)
        u = np.random.default_rng(n).standard_normal((n // 2, 2))
        y = code.encode(u)
        d = code.decode(y, np.ones(n, dtype=bool))
        assert d.complete
        assert np.linalg.norm(d.blocks - u) / np.linalg.norm(u) <= 1e-10
        # losing 5% of the workers at random is survivable for a rate-1/2 code here
        mask = np.random.default_rng(1).permutation(n) >= n // 20
        d = code.decode(erase(y, mask), mask)
        assert d.complete, f"N={n}: 5% stragglers not decodable"
        assert np.linalg.norm(d.blocks - u) / np.linalg.norm(u) <= 1e-10


def test_float32_hadamard_n1024():
    """Stated goal: float32 round trip at N=1024, K=512 within 1e-5 relative error."""
    code = PolarCode(1024, 512, rng=11)
    rng = np.random.default_rng(11)
    u = rng.standard_normal((512, 4)).astype(np.float32)
    y = code.encode(u)
    assert y.dtype == np.float32
    for frac in (1.0, 0.9, 0.8):
        mask = rng.random(1024) < frac
        d = code.decode(erase(y, mask), mask)
        assert d.complete, f"not decodable at {frac}"
        err = float(np.linalg.norm(d.blocks.astype(np.float64) - u) / np.linalg.norm(u))
        assert err <= 1e-5, f"float32 relative error {err:.3g} at arrival fraction {frac}"


def test_decode_preserves_float32_dtype():
    """Baseline codes return float32 blocks for float32 outputs; the polar decoders should too."""
    code = PolarCode(16, 8, rng=0)
    u = np.random.default_rng(0).standard_normal((8, 3)).astype(np.float32)
    y = code.encode(u)
    mask = np.ones(16, dtype=bool)
    assert code.decode_lstsq(y, mask).blocks.dtype == np.float32
    got = code.decode(y, mask).blocks.dtype
    assert got == np.float32, (
        f"PolarCode.decode turned float32 outputs into {got} blocks (the data signs are "
        "float64 and upcast the result); baselines and decode_lstsq keep float32"
    )


# -- least squares ----------------------------------------------------------------------------


@pytest.mark.parametrize("kernel", KERNEL_NAMES)
@pytest.mark.parametrize("randomize", [False, True])
def test_lstsq_exhaustive_n8_k4(kernel, randomize):
    code = PolarCode(8, 4, kernel=kernel, randomize=randomize, rng=5)
    gen = code.generator
    u = np.random.default_rng(3).standard_normal((4, 2)) * np.array([[1.0], [3.0], [0.5], [2]])
    y = code.encode(u)
    beyond_sc = 0
    for mask in all_masks(8):
        ys = erase(y, mask)
        ls = code.decode_lstsq(ys, mask)
        sc = code.decode(ys, mask)
        ident = identifiable(gen, mask)
        full_rank = mask.any() and np.linalg.matrix_rank(gen[:, mask]) == 4
        assert ls.method == "lstsq" and ls.n_arrived == int(mask.sum())
        assert np.all(np.isfinite(ls.blocks))
        np.testing.assert_array_equal(ls.known, ident)
        assert ls.complete == full_rank
        np.testing.assert_allclose(ls.blocks[ls.known], u[ls.known], atol=1e-10)
        assert np.all(ls.blocks[~ls.known] == 0), "non-identifiable blocks must be zero"
        # agrees with SC wherever SC succeeds
        assert np.all(sc.known <= ls.known)
        np.testing.assert_allclose(ls.blocks[sc.known], sc.blocks[sc.known], atol=1e-10)
        _, ident2, rank = code.min_norm_solution(ys, mask)
        assert rank == (np.linalg.matrix_rank(gen[:, mask]) if mask.any() else 0)
        np.testing.assert_array_equal(ident2, ident)
        if full_rank and not sc.complete:
            beyond_sc += 1
            np.testing.assert_allclose(ls.blocks, u, atol=1e-10)
    assert beyond_sc > 0, "expected arrival sets that only least squares decodes"


# -- bad input --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs",
    [
        {"n": 12, "k": 4},
        {"n": 0, "k": 1},
        {"n": 8, "k": 9},
        {"n": 8, "k": 0},
        {"n": 8, "k": -1},
        {"n": 8, "k": 4, "kernel": "reed-muller"},
        {"n": 8, "k": 4, "design_erasure": 1.5},
        {"n": 8, "k": 4, "design_erasure": -0.1},
        {"n": 8, "k": 4, "design_erasure": float("nan")},
        {"n": 8, "k": 4, "levels": 4},
        {"n": 8, "k": 4, "levels": -1},
        {"n": 8, "k": 2.5},
    ],
)
def test_bad_construction(kwargs):
    with pytest.raises(InvalidInputError):
        PolarCode(**kwargs)


@pytest.mark.parametrize(
    ("args", "kwargs"),
    [((6, 0.5), {}), ((8, 1.2), {}), ((8, -0.5), {}), ((8, 0.5), {"levels": 4}), ((0, 0.5), {})],
)
def test_bad_profile(args, kwargs):
    with pytest.raises(InvalidInputError):
        erasure_profile(*args, **kwargs)


def test_bad_decode_inputs():
    code = PolarCode(8, 4, rng=0)
    u = np.random.default_rng(0).standard_normal((4, 2))
    y = code.encode(u)
    mask = np.ones(8, dtype=bool)
    with pytest.raises(InvalidInputError):
        code.encode(np.ones((5, 2)))
    for fn in (code.decode, code.decode_lstsq):
        with pytest.raises(InvalidInputError):
            fn(y[:7], mask)
        with pytest.raises(InvalidInputError):
            fn(np.zeros((9, 2)), mask)
        with pytest.raises(InvalidInputError):
            fn(y, np.ones(7, dtype=bool))
        with pytest.raises(InvalidInputError):
            fn(y, [0, 8])
        bad = y.copy()
        bad[3, 1] = np.nan
        with pytest.raises(InvalidInputError):
            fn(bad, mask)
        partial = mask.copy()
        partial[3] = False
        fn(bad, partial)  # NaN in an erased row is fine
    for fn in (code.known_blocks, code.decodable):
        with pytest.raises(InvalidInputError):
            fn(np.ones(9, dtype=bool))


def test_require_complete():
    code = PolarCode(8, 4, rng=0)
    u = np.random.default_rng(0).standard_normal((4, 2))
    y = code.encode(u)
    np.testing.assert_allclose(code.decode(y, np.ones(8, bool)).require_complete(), u, atol=1e-12)
    mask = np.zeros(8, dtype=bool)
    mask[:3] = True
    d = code.decode(erase(y, mask), mask)
    assert not d.complete
    with pytest.raises(NotDecodableError, match=re.escape("3 coded output(s) arrived")):
        d.require_complete()


# -- reproducibility --------------------------------------------------------------------------


def test_same_seed_same_code():
    a = PolarCode(64, 20, rng=7)
    b = PolarCode(64, 20, rng=7)
    c = PolarCode(64, 20, rng=np.random.default_rng(7))
    for other in (b, c):
        np.testing.assert_array_equal(a.signs, other.signs)
        np.testing.assert_array_equal(a.permutation, other.permutation)
        np.testing.assert_array_equal(a.generator, other.generator)
    d = PolarCode(64, 20, rng=8)
    assert not np.array_equal(a.permutation, d.permutation)
    assert sorted(a.permutation) == list(range(64))
    assert set(np.unique(a.signs)) == {-1.0, 1.0}  # both signs occur among 20 blocks
    assert not np.array_equal(a.permutation, np.arange(64))


def test_randomize_false_is_plain():
    code = PolarCode(32, 10, randomize=False, rng=3)
    np.testing.assert_array_equal(code.permutation, np.arange(32))
    np.testing.assert_array_equal(code.signs, np.ones(10))
    np.testing.assert_allclose(
        code.generator, kron_generator("hadamard", 32)[code.data_positions], atol=1e-12
    )
