"""GF(2) linear algebra against references written here.

* rank against Gaussian elimination on Python integers (one bitmask per row, a basis keyed by
  leading bit), independent of the packed NumPy implementation;
* the RREF against a plain list-of-lists Gauss-Jordan elimination (the RREF is unique, so
  the two must agree exactly), plus its defining properties;
* null space, systematic form and independent rows through their defining equations;
* ``gf2_matmul`` against integer ``@`` reduced mod 2.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from frugalml.ecc.gf2 import (
    as_bits,
    gf2_independent_rows,
    gf2_matmul,
    gf2_nullspace,
    gf2_rank,
    gf2_row_reduce,
    systematic_form,
)
from frugalml.errors import InvalidInputError

from ._reference import rank_ref

# -- references -------------------------------------------------------------------------------


def rref_ref(m: np.ndarray) -> tuple[list[list[int]], list[int]]:
    """Textbook Gauss-Jordan over GF(2) on lists of ints."""
    a = [[int(v) for v in row] for row in m.tolist()]
    rows = len(a)
    cols = m.shape[1]
    pivots = []
    r = 0
    for c in range(cols):
        p = next((i for i in range(r, rows) if a[i][c]), None)
        if p is None:
            continue
        a[r], a[p] = a[p], a[r]
        for i in range(rows):
            if i != r and a[i][c]:
                a[i] = [x ^ y for x, y in zip(a[i], a[r], strict=True)]
        pivots.append(c)
        r += 1
        if r == rows:
            break
    return a, pivots


bit_matrices = st.tuples(st.integers(1, 12), st.integers(1, 20)).flatmap(
    lambda s: hnp.arrays(np.uint8, s, elements=st.integers(0, 1))
)


def low_rank(rng: np.random.Generator, m: int, n: int, r: int) -> np.ndarray:
    a = rng.integers(0, 2, size=(m, r))
    b = rng.integers(0, 2, size=(r, n))
    return ((a @ b) % 2).astype(np.uint8)


# -- rank and RREF ----------------------------------------------------------------------------


@settings(max_examples=150, deadline=None)
@given(bit_matrices)
def test_rank_and_rref_match_references(m):
    reduced, pivots = gf2_row_reduce(m)
    ref, ref_piv = rref_ref(m)
    assert reduced.dtype == np.uint8 and reduced.shape == m.shape
    assert reduced.tolist() == ref
    assert pivots.tolist() == ref_piv
    assert gf2_rank(m) == rank_ref(m) == len(ref_piv)


@pytest.mark.parametrize(("m", "n", "r"), [(30, 50, 12), (64, 64, 40), (80, 33, 33), (5, 200, 5)])
def test_rank_of_constructed_low_rank_matrices(m, n, r):
    rng = np.random.default_rng(m * n)
    a = low_rank(rng, m, n, r)
    assert gf2_rank(a) == rank_ref(a) <= r
    # product of random full-rank factors has rank exactly r with high probability; the
    # reference decides
    reduced, pivots = gf2_row_reduce(a)
    rank = pivots.size
    # RREF properties: pivot columns are unit vectors, zero rows at the bottom, row space kept
    assert np.array_equal(reduced[:rank][:, pivots], np.eye(rank, dtype=np.uint8))
    assert not reduced[rank:].any()
    assert rank_ref(np.vstack([a, reduced])) == rank
    assert np.all(np.diff(pivots) > 0)


def test_row_reduce_does_not_modify_input_and_handles_edge_shapes():
    a = np.array([[1, 1, 0], [1, 1, 0]], dtype=np.uint8)
    before = a.copy()
    reduced, pivots = gf2_row_reduce(a)
    assert np.array_equal(a, before)
    assert reduced.tolist() == [[1, 1, 0], [0, 0, 0]] and pivots.tolist() == [0]
    assert gf2_rank(np.zeros((4, 9), dtype=np.uint8)) == 0
    assert gf2_rank(np.eye(17, dtype=bool)) == 17
    assert gf2_rank(np.ones((1, 1))) == 1


# -- null space, systematic form, independent rows ---------------------------------------------


@settings(max_examples=100, deadline=None)
@given(bit_matrices)
def test_nullspace_is_a_basis_of_the_kernel(m):
    basis = gf2_nullspace(m)
    n = m.shape[1]
    r = rank_ref(m)
    assert basis.shape == (n - r, n) and basis.dtype == np.uint8
    assert not ((m.astype(int) @ basis.T.astype(int)) % 2).any()
    assert rank_ref(basis) == n - r


@settings(max_examples=100, deadline=None)
@given(bit_matrices)
def test_systematic_form(m):
    h_sys, perm = systematic_form(m)
    r = rank_ref(m)
    n = m.shape[1]
    assert sorted(perm.tolist()) == list(range(n))
    assert h_sys.shape == (r, n)
    assert np.array_equal(h_sys[:, :r], np.eye(r, dtype=np.uint8))
    # same row space as the permuted matrix
    permuted = m[:, perm]
    assert rank_ref(np.vstack([permuted, h_sys])) == r
    # the implied generator [A^T | I] is orthogonal to the original matrix after un-permuting
    a = h_sys[:, r:]
    g_perm = np.hstack([a.T, np.eye(n - r, dtype=np.uint8)])
    g = np.empty_like(g_perm)
    g[:, perm] = g_perm
    assert not ((g.astype(int) @ m.T.astype(int)) % 2).any()


def test_independent_rows_keeps_first_independent_rows():
    a = np.array(
        [[1, 0, 1, 0], [0, 1, 1, 0], [1, 1, 0, 0], [0, 0, 0, 1], [1, 0, 1, 1]], dtype=np.uint8
    )
    # row 2 = row 0 + row 1, row 4 = row 0 + row 3
    assert gf2_independent_rows(a).tolist() == [0, 1, 3]
    rng = np.random.default_rng(3)
    b = low_rank(rng, 40, 30, 11)
    keep = gf2_independent_rows(b)
    assert keep.size == rank_ref(b) == rank_ref(b[keep])


# -- matmul and validation ----------------------------------------------------------------------


def test_gf2_matmul_matches_integer_product():
    rng = np.random.default_rng(0)
    a = rng.integers(0, 2, size=(3, 7, 300), dtype=np.uint8)
    b = rng.integers(0, 2, size=(300, 40), dtype=np.uint8)
    out = gf2_matmul(a, b)
    assert out.dtype == np.uint8 and out.shape == (3, 7, 40)
    assert np.array_equal(out, (a.astype(np.int64) @ b.astype(np.int64)) % 2)


def test_as_bits_validation():
    assert as_bits([True, False], "x").tolist() == [1, 0]
    assert as_bits(np.array([0.0, 1.0]), "x").dtype == np.uint8
    with pytest.raises(InvalidInputError, match="x must hold bits"):
        as_bits([0, 2], "x")
    with pytest.raises(InvalidInputError, match="bits"):
        as_bits([0.5, 1.0], "x")
    with pytest.raises(InvalidInputError, match="NaN"):
        as_bits([np.nan, 1.0], "x")
    with pytest.raises(InvalidInputError, match="2 dimension"):
        gf2_rank([1, 0, 1])
    with pytest.raises(InvalidInputError, match="bits"):
        gf2_row_reduce([[1, -1]])
