"""Sketch operators (frugalml.sketch): E[S^T S] = I, apply() consistency, reproducibility,
the structure of each family, and input validation.

Independent references: the Monte-Carlo average of S^T S against the identity (with a
tolerance from the measured standard error), scipy.linalg.hadamard and the textbook DCT-II
formula for the subsampled transforms, explicit selection matrices for the sampling sketches.
"""

from __future__ import annotations

import numpy as np
import pytest
import scipy.linalg
import scipy.sparse as sp

from frugalml.errors import InvalidInputError
from frugalml.sketch import (
    SKETCHES,
    CountSketch,
    GaussianSketch,
    LESSSketch,
    LeverageScoreSampling,
    SparseSignSketch,
    leverage_scores,
    make_sketch,
)
from frugalml.sketch.transforms import next_pow2

from ._reference import dct_matrix

NAMES = sorted(SKETCHES)
DATA_DEPENDENT = {"leverage", "leverage-approx", "less"}
SAMPLING = {"uniform", "leverage", "leverage-approx"}

# n is not a power of two (SRHT pads 48 -> 64); hybrid samples min(n, 4m) = 32 < n rows.
N, M, D = 48, 8, 4


def data_matrix(n: int = N, d: int = D, seed: int = 3) -> np.ndarray:
    """A full-rank (n, d) matrix for the data-dependent sketches."""
    return np.random.default_rng(seed).standard_normal((n, d))


def test_registry_names():
    assert set(SKETCHES) == {
        "gaussian", "rademacher", "srht", "srdct", "sparse-sign", "countsketch", "uniform",
        "leverage", "leverage-approx", "hybrid", "less",
    }  # fmt: skip
    for name in NAMES:
        sk = make_sketch(name, M, rng=0)
        assert sk.m == M
        assert sk.data_dependent == (name in DATA_DEPENDENT)
        assert sk.params()["m"] == M
        assert f"m={M}" in repr(sk)


# --------------------------------------------------------------------------- E[S^T S] = I


@pytest.mark.parametrize("name", NAMES)
def test_expected_gram_is_identity(name):
    """Monte-Carlo check of E[S^T S] = I_n over T independent draws.

    Tolerance: each entry of the mean of T i.i.d. samples of S^T S has standard error
    std/sqrt(T), with std the per-entry sample standard deviation. We require
    |mean - I| <= 5 std / sqrt(T) + 1e-9 entrywise (a 5-sigma band: with ~n^2 = 2304
    entries a correct sketch exceeds it with probability ~1e-3 under the CLT, and the seeds
    are fixed). Entries with zero variance (SRHT / sparse-sign diagonals, the off-diagonals
    of sampling sketches) must therefore equal the identity to rounding (1e-9).
    Sampling sketches have a much larger variance, which the measured std accounts for.
    A second check catches a small *systematic* bias that hides inside the 5-sigma band: the
    mean squared z-score over the diagonal (and, separately, the off-diagonal) entries with
    nonzero variance must be ~1 (< 2; its sampling s.d. is ~sqrt(2/48) = 0.2 on the diagonal).
    """
    t_draws = 3000 if name in SAMPLING | {"less", "hybrid"} else 1500
    a = data_matrix()
    if name.startswith("leverage"):
        # CLT precondition: every row is expected to be sampled many times in total
        p = leverage_scores(a) / D
        assert t_draws * M * p.min() >= 30
    sk = make_sketch(name, M, rng=2024)
    s1 = np.zeros((N, N))
    s2 = np.zeros((N, N))
    for _ in range(t_draws):
        s = sk.draw(N, data=a).to_dense()
        assert s.shape == (M, N)
        g = s.T @ s
        s1 += g
        s2 += g * g
    mean = s1 / t_draws
    var = np.maximum(s2 / t_draws - mean**2, 0.0) * t_draws / (t_draws - 1)
    se = np.sqrt(var / t_draws)
    dev = np.abs(mean - np.eye(N))
    assert np.all(dev <= 5 * se + 1e-9), (
        f"{name}: max deviation {dev.max():.3g} (standard error there {se.flat[dev.argmax()]:.3g})"
    )
    live = se > 1e-12
    z2 = np.zeros_like(dev)
    z2[live] = (dev[live] / se[live]) ** 2
    assert live.any()
    for part, mask in (
        ("diagonal", np.eye(N, dtype=bool)),
        ("off-diagonal", ~np.eye(N, dtype=bool)),
    ):
        sel = live & mask
        if sel.any():
            assert z2[sel].mean() < 2.0, (
                f"{name}: mean squared z-score {z2[sel].mean():.3g} on the {part} "
                "(systematic bias?)"
            )


def test_deterministic_gram_diagonals():
    """Families whose S^T S diagonal is 1 in every realisation (not only in expectation)."""
    for name in ("srht", "sparse-sign", "countsketch"):
        s = make_sketch(name, M, rng=5).draw(N).to_dense()
        np.testing.assert_allclose(np.diag(s.T @ s), 1.0, atol=1e-12, err_msg=name)
    # Rademacher: every entry is +-1/sqrt(m), so every column has unit norm
    s = make_sketch("rademacher", M, rng=5).draw(N).to_dense()
    np.testing.assert_allclose(np.abs(s), 1 / np.sqrt(M), rtol=1e-14)


# --------------------------------------------------------------------------- apply()


def _operands(seed: int = 11):
    rng = np.random.default_rng(seed)
    dense2 = rng.standard_normal((N, 3))
    dense1 = rng.standard_normal(N)
    sparse = sp.random(N, 5, density=0.2, random_state=seed, format="csr")
    sparse.data[:] = rng.standard_normal(sparse.nnz)
    return {
        "dense-1d": (dense1, dense1),
        "dense-2d": (dense2, dense2),
        "int-2d": (np.arange(N * 2).reshape(N, 2), np.arange(N * 2.0).reshape(N, 2)),
        "csr": (sparse, sparse.toarray()),
        "csc": (sparse.tocsc(), sparse.toarray()),
        "coo": (sparse.tocoo(), sparse.toarray()),
    }


@pytest.mark.parametrize("name", NAMES)
def test_apply_matches_dense_matrix(name):
    """S.apply(X) == S.to_dense() @ X for dense 1-D / 2-D and sparse CSR / CSC / COO X."""
    sk = make_sketch(name, M, rng=7)
    s = sk.draw(N, data=data_matrix())
    assert s.shape == (M, N)
    dense = s.to_dense()
    assert isinstance(dense, np.ndarray) and dense.shape == (M, N)
    for label, (x, x_dense) in _operands().items():
        y = s.apply(x)
        assert type(y) is np.ndarray, label
        assert y.shape == ((M,) if x_dense.ndim == 1 else (M, x_dense.shape[1])), label
        np.testing.assert_allclose(y, dense @ x_dense, rtol=1e-10, atol=1e-12, err_msg=label)
        # the same realisation applied again gives the same result; @ is apply
        np.testing.assert_array_equal(s.apply(x), y, err_msg=label)
        np.testing.assert_array_equal(s @ x, y, err_msg=label)


@pytest.mark.parametrize("name", NAMES)
def test_apply_is_linear_in_columns(name):
    """S @ [x, y] == [S @ x, S @ y] and S @ (2x + y) == 2 S x + S y (one realisation)."""
    rng = np.random.default_rng(1)
    x, y = rng.standard_normal(N), rng.standard_normal(N)
    s = make_sketch(name, M, rng=8).draw(N, data=data_matrix())
    both = s.apply(np.column_stack([x, y]))
    np.testing.assert_allclose(both[:, 0], s.apply(x), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(both[:, 1], s.apply(y), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(s.apply(2 * x + y), 2 * s.apply(x) + s.apply(y), atol=1e-10)


@pytest.mark.parametrize("name", NAMES)
def test_sketch_apply_draws_with_data(name):
    """Sketch.apply(A, rng=seed) == draw(n, data=A, rng=seed).apply(A)."""
    a = data_matrix()
    sk = make_sketch(name, M, rng=0)
    np.testing.assert_array_equal(sk.apply(a, rng=42), sk.draw(N, data=a, rng=42).apply(a))


# --------------------------------------------------------------------------- reproducibility


@pytest.mark.parametrize("name", NAMES)
def test_reproducible_from_seed(name):
    a = data_matrix()
    seq1 = [make_sketch(name, M, rng=123).draw(N, data=a).to_dense()]
    sk1, sk2 = make_sketch(name, M, rng=123), make_sketch(name, M, rng=123)
    d1 = [sk1.draw(N, data=a).to_dense() for _ in range(3)]
    d2 = [sk2.draw(N, data=a).to_dense() for _ in range(3)]
    for u, v in zip(d1, d2, strict=True):
        np.testing.assert_array_equal(u, v)
    np.testing.assert_array_equal(seq1[0], d1[0])
    # successive draws of one sketch are new realisations
    assert not np.array_equal(d1[0], d1[1])
    assert not np.array_equal(d1[1], d1[2])
    # a different seed gives a different realisation
    other = make_sketch(name, M, rng=124).draw(N, data=a).to_dense()
    assert not np.array_equal(other, d1[0])


@pytest.mark.parametrize("name", NAMES)
def test_draw_rng_overrides_own_generator(name):
    a = data_matrix()
    u = make_sketch(name, M, rng=1).draw(N, data=a, rng=77).to_dense()
    v = make_sketch(name, M, rng=2).draw(N, data=a, rng=77).to_dense()
    gen = np.random.default_rng(77)
    w = make_sketch(name, M, rng=3).draw(N, data=a, rng=gen).to_dense()
    np.testing.assert_array_equal(u, v)
    np.testing.assert_array_equal(u, w)
    assert not np.array_equal(u, make_sketch(name, M, rng=1).draw(N, data=a, rng=78).to_dense())
    # the override does not advance the sketch's own generator
    sk = make_sketch(name, M, rng=9)
    sk.draw(N, data=a, rng=77)
    np.testing.assert_array_equal(
        sk.draw(N, data=a).to_dense(), make_sketch(name, M, rng=9).draw(N, data=a).to_dense()
    )


# --------------------------------------------------------------------------- structure


@pytest.mark.parametrize("transform", ["srht", "srdct"])
@pytest.mark.parametrize("n", [1, 5, 48, 64, 100])
def test_srht_matches_explicit_construction(transform, n):
    """S = sqrt(N/m) P H D with H from scipy.linalg.hadamard (or the DCT-II formula), applied
    to the input zero-padded to N = next_pow2(n) rows (N = n for the DCT)."""
    m = min(4, n)
    s = make_sketch(transform, m, rng=n).draw(n)
    big = next_pow2(n) if transform == "srht" else n
    assert s.padded == big
    assert s.signs.shape == (big,) and set(np.unique(s.signs)) <= {-1.0, 1.0}
    assert s.rows.shape == (m,) and np.unique(s.rows).size == m  # without replacement
    assert s.rows.min() >= 0 and s.rows.max() < big
    h = scipy.linalg.hadamard(big) / np.sqrt(big) if transform == "srht" else dct_matrix(big)
    ref = np.sqrt(big / m) * h[s.rows][:, :n] * s.signs[:n]
    np.testing.assert_allclose(s.to_dense(), ref, atol=1e-12)


def test_srht_m_equal_padded_length_is_allowed():
    s = make_sketch("srht", 64, rng=0).draw(48)  # m = N = 64 > n = 48 is fine
    dense = s.to_dense()
    assert dense.shape == (64, 48)
    # all rows kept: S = H D (restricted) is an isometry on R^48
    np.testing.assert_allclose(dense.T @ dense, np.eye(48), atol=1e-12)


@pytest.mark.parametrize("s_nnz, m", [(1, 8), (3, 40), (8, 16), (8, 10), (4, 4), (20, 8)])
def test_sparse_sign_columns(s_nnz, m):
    """Each column: exactly min(s, m) nonzeros of magnitude 1/sqrt(s) in distinct rows."""
    n = 300
    mat = SparseSignSketch(m, rng=s_nnz, nnz_per_col=s_nnz).draw(n).matrix.tocsc()
    s_eff = min(s_nnz, m)
    assert mat.shape == (m, n)
    for j in range(n):
        rows = mat.indices[mat.indptr[j] : mat.indptr[j + 1]]
        vals = mat.data[mat.indptr[j] : mat.indptr[j + 1]]
        assert rows.size == s_eff and np.unique(rows).size == s_eff
        np.testing.assert_allclose(np.abs(vals), 1 / np.sqrt(s_eff), rtol=1e-14)
    dense = mat.toarray()
    np.testing.assert_array_equal(np.count_nonzero(dense, axis=0), s_eff)
    # both signs and all rows occur (the sketch is random, not a fixed pattern)
    assert (dense > 0).any() and (dense < 0).any()
    if s_eff < m:
        assert np.count_nonzero(dense, axis=1).min() > 0


def test_countsketch_one_nonzero_per_column():
    dense = CountSketch(16, rng=0).draw(500).to_dense()
    np.testing.assert_array_equal(np.count_nonzero(dense, axis=0), 1)
    np.testing.assert_array_equal(np.abs(dense[dense != 0]), 1.0)
    # rows are roughly balanced: 500 columns into 16 buckets
    counts = np.count_nonzero(dense, axis=1)
    assert counts.min() > 10 and counts.max() < 60
    assert CountSketch(16).params() == {"sketch": "countsketch", "m": 16}


@pytest.mark.parametrize(
    "nnz, scores", [(None, "approx"), (2, "exact"), (3, "uniform"), (10, "approx")]
)
def test_less_rows_have_at_most_s_nonzeros(nnz, scores):
    a = data_matrix(200, 6)
    sk = LESSSketch(30, rng=4, nnz_per_row=nnz, scores=scores)
    mat = sk.draw(200, data=a).matrix
    s = 6 if nnz is None else nnz
    per_row = np.diff(mat.tocsr().indptr)
    assert per_row.max() <= s and per_row.min() >= 1
    assert np.count_nonzero(mat.toarray(), axis=1).max() <= s


def test_less_values_match_probabilities():
    """Single nonzeros have magnitude 1/sqrt(m s p_i); with scores='uniform', p_i = 1/n."""
    n, m, s = 200, 30, 3
    mat = LESSSketch(m, rng=0, nnz_per_row=s, scores="uniform").draw(n, data=data_matrix(n, 6))
    vals = np.abs(mat.matrix.tocsr().data)
    single = 1 / np.sqrt(m * s / n)
    # duplicates within a row are summed (0 or 2x); all others have the single magnitude
    assert np.all(np.isclose(vals, single) | np.isclose(vals, 2 * single) | (vals == 0))
    assert np.mean(np.isclose(vals, single)) > 0.9


def test_sampling_matrices_are_weighted_selections():
    a = data_matrix()
    # uniform: rows idx of the identity scaled by sqrt(n/m)
    s = make_sketch("uniform", M, rng=0).draw(N)
    ref = np.sqrt(N / M) * np.eye(N)[s.idx]
    np.testing.assert_allclose(s.to_dense(), ref, rtol=1e-14)
    # leverage: weights 1/sqrt(m p_i) with p the leverage distribution
    sk = LeverageScoreSampling(M, rng=0)
    s = sk.draw(N, data=a)
    p = leverage_scores(a) / D
    np.testing.assert_allclose(sk.probabilities(a), p, rtol=1e-10)
    ref = (1 / np.sqrt(M * p[s.idx]))[:, None] * np.eye(N)[s.idx]
    np.testing.assert_allclose(s.to_dense(), ref, rtol=1e-10)


def test_leverage_sampling_prefers_high_leverage_rows():
    """Empirical sampling frequencies follow p (chi-square-free check: 6-sigma binomial)."""
    a = data_matrix(40, 3, seed=0)
    a[0] *= 50.0  # row 0 gets leverage ~1
    sk = LeverageScoreSampling(2000, rng=1)
    p = sk.probabilities(a)
    idx = sk.draw(40, data=a).idx
    freq = np.bincount(idx, minlength=40) / 2000
    assert np.all(np.abs(freq - p) <= 6 * np.sqrt(p * (1 - p) / 2000) + 1e-3)
    assert p[0] > 0.3 and freq[0] > 0.3


def test_hybrid_is_projection_of_sample():
    sk = make_sketch("hybrid", 6, rng=0)
    s = sk.draw(100)
    assert s.inner.shape == (24, 100)  # m_sample defaults to min(n, 4 m)
    assert s.outer.shape == (6, 24)
    np.testing.assert_allclose(s.to_dense(), s.outer.to_dense() @ s.inner.to_dense(), atol=1e-12)
    s = make_sketch("hybrid", 6, rng=0, m_sample=16, projection="srht").draw(100)
    assert s.inner.shape == (16, 100) and s.outer.shape == (6, 16)
    np.testing.assert_allclose(s.to_dense(), s.outer.to_dense() @ s.inner.to_dense(), atol=1e-12)
    # small n: the sample is capped at n rows
    assert make_sketch("hybrid", 6, rng=0).draw(10).inner.shape == (10, 10)


@pytest.mark.parametrize("block", [1, 5, 48, 4096])
def test_gaussian_blocks_consistent(block):
    """The block-generated matrix is the same whether applied densely, sparsely or to I."""
    s = GaussianSketch(M, rng=3, block=block).draw(N)
    dense = s.to_dense()
    np.testing.assert_allclose(s.apply(np.eye(N)), dense, rtol=1e-12, atol=1e-14)
    # distinct blocks use distinct random numbers (no repeated columns)
    assert np.unique(np.round(dense, 12), axis=1).shape[1] == N


def test_gaussian_and_rademacher_entry_distribution():
    m, n = 64, 2048
    g = GaussianSketch(m, rng=0, block=500).draw(n).to_dense() * np.sqrt(m)
    k = g.size
    # standardized entries ~ N(0, 1): mean SE 1/sqrt(k), variance SE sqrt(2/k), 6 sigma
    assert abs(g.mean()) < 6 / np.sqrt(k)
    assert abs(g.var() - 1) < 6 * np.sqrt(2 / k)
    assert abs(np.mean(g**4) - 3) < 6 * np.sqrt(96 / k)
    r = make_sketch("rademacher", m, rng=0, block=500).draw(n).to_dense() * np.sqrt(m)
    assert set(np.unique(r)) == {-1.0, 1.0}
    assert abs(r.mean()) < 6 / np.sqrt(k)


# --------------------------------------------------------------------------- validation


def _raises(match: str):
    return pytest.raises(InvalidInputError, match=match)


@pytest.mark.parametrize("name", NAMES)
def test_operand_validation(name):
    s = make_sketch(name, M, rng=0).draw(N, data=data_matrix())
    with _raises(rf"has {N + 1} rows but the sketch was drawn for n={N}"):
        s.apply(np.ones(N + 1))
    with _raises(r"has 3 rows but the sketch was drawn for n="):
        s.apply(sp.csr_matrix(np.ones((3, 2))))
    bad = np.ones((N, 2))
    bad[3, 1] = np.nan
    with _raises("NaN or inf"):
        s.apply(bad)
    bad[3, 1] = np.inf
    with _raises("NaN or inf"):
        s.apply(bad)
    with _raises("NaN or inf"):
        s.apply(sp.csr_matrix(bad))
    with _raises(r"1 or 2 dimension"):
        s.apply(np.ones((N, 2, 2)))
    with _raises("complex"):
        s.apply(np.ones(N, dtype=complex))


@pytest.mark.parametrize("name", NAMES)
def test_draw_validation(name):
    sk = make_sketch(name, M, rng=0)
    with _raises("n must be >= 1"):
        sk.draw(0, data=data_matrix())
    if name in DATA_DEPENDENT:
        with _raises("depends on the data: pass data=A"):
            sk.draw(N)
        with _raises(r"data has 47 rows but the sketch was drawn for n=48"):
            sk.draw(N, data=data_matrix(47))
        bad = data_matrix()
        bad[0, 0] = np.nan
        with _raises("data contains"):
            sk.draw(N, data=bad)
        with _raises("depends on the data"):
            sk.apply(np.ones(N))  # a vector is not used as the data matrix
    else:
        sk.draw(N)  # data is optional
    with pytest.raises(InvalidInputError, match="NaN or inf"):
        sk.apply(np.full((N, 2), np.nan))


def test_factory_and_option_errors():
    with _raises("unknown sketch 'gausian'; choose one of: gaussian"):
        make_sketch("gausian", 10)
    with _raises(r"bad option for the gaussian sketch.*bogus"):
        make_sketch("gaussian", 10, bogus=1)
    with _raises("bad option for the countsketch sketch"):
        make_sketch("countsketch", 10, nnz_per_col=3)
    with _raises("sketch size m must be >= 1"):
        make_sketch("gaussian", 0)
    with _raises("sketch size m must be an integer"):
        make_sketch("srht", 2.5)
    with _raises("transform must be one of"):
        make_sketch("srht", 4, transform="fourier")
    with _raises("projection must be one of"):
        make_sketch("hybrid", 4, projection="countsketch")
    with _raises("mix must lie in"):
        make_sketch("leverage", 4, mix=1.5)
    with _raises("scores must be one of"):
        make_sketch("less", 4, scores="bogus")
    with _raises("nnz_per_col must be >= 1"):
        make_sketch("sparse-sign", 4, nnz_per_col=0)
    with _raises("rng seed must be >= 0"):
        make_sketch("gaussian", 4, rng=-1)
    with _raises("rng must be an int seed"):
        make_sketch("gaussian", 4, rng="abc")


def test_size_errors():
    with _raises(r"SRHT sketch size m=65 exceeds the transform length 64 \(n=48\)"):
        make_sketch("srht", 65, rng=0).draw(48)
    with _raises(r"m=49 exceeds the transform length 48"):
        make_sketch("srdct", 49, rng=0).draw(48)
    with _raises(r"m_sample=5 must be >= m=10"):
        make_sketch("hybrid", 10, rng=0, m_sample=5).draw(100)
    with _raises(r"m_sample=7 must be >= m=10"):  # default m_sample = min(n, 4m) = n
        make_sketch("hybrid", 10, rng=0).draw(7)
