"""Fast transforms (frugalml.sketch.transforms) against explicit matrices:
scipy.linalg.hadamard for the Walsh-Hadamard transform, the DCT-II definition and
scipy.fft.dct(norm='ortho') for the cosine transform."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.fft
import scipy.linalg

from frugalml.errors import InvalidInputError
from frugalml.sketch.transforms import (
    MAX_BLOCK_BITS,
    dct,
    fwht,
    fwht_butterfly,
    hadamard_block,
    next_pow2,
)

from ._reference import dct_matrix

SIZES = [2**p for p in range(11)]  # 1 .. 1024


@pytest.mark.parametrize("n", SIZES)
@pytest.mark.parametrize("max_bits", [1, 2, 3, MAX_BLOCK_BITS, 10])
def test_fwht_matches_hadamard_matrix(n, max_bits):
    rng = np.random.default_rng(n + 100 * max_bits)
    h = scipy.linalg.hadamard(n) / np.sqrt(n)
    x1 = rng.standard_normal(n)
    x2 = rng.standard_normal((n, 3))
    y1 = fwht(x1, max_block_bits=max_bits)
    y2 = fwht(x2, max_block_bits=max_bits)
    assert y1.shape == (n,) and y2.shape == (n, 3)
    assert y1.dtype == np.float64
    tol = 1e-12 * np.sqrt(np.log2(n) + 1)
    np.testing.assert_allclose(y1, h @ x1, atol=tol * np.linalg.norm(x1))
    np.testing.assert_allclose(y2, h @ x2, atol=tol * np.linalg.norm(x2))


@pytest.mark.parametrize("n", SIZES)
def test_fwht_equals_butterfly_and_is_orthonormal(n):
    rng = np.random.default_rng(n)
    x = rng.standard_normal((n, 4))
    y = fwht(x)
    np.testing.assert_allclose(y, fwht_butterfly(x), atol=1e-12)
    np.testing.assert_allclose(fwht_butterfly(x[:, 0]), y[:, 0], atol=1e-12)
    # norm preserved column by column; H is symmetric and orthogonal, so H H x = x
    np.testing.assert_allclose(np.linalg.norm(y, axis=0), np.linalg.norm(x, axis=0), rtol=1e-12)
    np.testing.assert_allclose(fwht(y), x, atol=1e-12)
    np.testing.assert_allclose(fwht_butterfly(fwht_butterfly(x)), x, atol=1e-12)


def test_fwht_of_identity_is_normalised_hadamard():
    for n in (1, 2, 16, 256):
        h = scipy.linalg.hadamard(n) / np.sqrt(n)
        np.testing.assert_allclose(fwht(np.eye(n)), h, atol=1e-14)
        np.testing.assert_allclose(fwht(np.eye(n), max_block_bits=1), h, atol=1e-14)
        np.testing.assert_allclose(fwht_butterfly(np.eye(n)), h, atol=1e-14)


def test_fwht_does_not_modify_input_and_handles_layouts():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((64, 5))
    keep = x.copy()
    y = fwht(x)
    fwht_butterfly(x)
    np.testing.assert_array_equal(x, keep)
    assert y is not x
    # non-contiguous, Fortran order, integer and 3-D input
    h = scipy.linalg.hadamard(64) / 8.0
    np.testing.assert_allclose(fwht(x[:, ::2]), h @ x[:, ::2], atol=1e-12)
    np.testing.assert_allclose(fwht(np.asfortranarray(x)), h @ x, atol=1e-12)
    xi = np.arange(64 * 2).reshape(64, 2)
    np.testing.assert_allclose(fwht(xi), h @ xi, atol=1e-10)
    x3 = rng.standard_normal((64, 2, 3))
    np.testing.assert_allclose(fwht(x3), np.einsum("ij,jkl->ikl", h, x3), atol=1e-12)
    np.testing.assert_allclose(fwht_butterfly(x3), np.einsum("ij,jkl->ikl", h, x3), atol=1e-12)
    one = np.array([3.0])
    out = fwht(one)
    assert out is not one and out[0] == 3.0


@pytest.mark.parametrize("n", [0, 3, 6, 12, 100, 1023])
def test_fwht_rejects_non_power_of_two(n):
    x = np.ones(n)
    with pytest.raises(InvalidInputError, match="power-of-two length"):
        fwht(x)
    with pytest.raises(InvalidInputError, match="power-of-two length"):
        fwht_butterfly(x)


def test_hadamard_block_is_cached_and_read_only():
    h = hadamard_block(3)
    np.testing.assert_array_equal(h, scipy.linalg.hadamard(8))
    assert hadamard_block(3) is h
    with pytest.raises(ValueError):
        h[0, 0] = 5.0


@pytest.mark.parametrize("n", [1, 2, 3, 7, 8, 48, 100, 257])
def test_dct_matches_definition_and_scipy(n):
    c = dct_matrix(n)
    d = dct(np.eye(n))
    np.testing.assert_allclose(d, c, atol=1e-12)
    # orthonormal: the DCT of the identity is an orthogonal matrix
    np.testing.assert_allclose(d.T @ d, np.eye(n), atol=1e-12)
    np.testing.assert_allclose(d @ d.T, np.eye(n), atol=1e-12)
    x = np.random.default_rng(n).standard_normal((n, 3))
    np.testing.assert_allclose(dct(x), scipy.fft.dct(x, norm="ortho", axis=0), atol=1e-12)
    np.testing.assert_allclose(dct(x[:, 1]), c @ x[:, 1], atol=1e-12)
    np.testing.assert_allclose(np.linalg.norm(dct(x), axis=0), np.linalg.norm(x, axis=0))


@pytest.mark.parametrize(
    "n, expected",
    [(1, 1), (2, 2), (3, 4), (4, 4), (5, 8), (48, 64), (64, 64), (65, 128), (1000, 1024),
     (1024, 1024), (1025, 2048), (2**40 + 1, 2**41)],
)  # fmt: skip
def test_next_pow2(n, expected):
    assert next_pow2(n) == expected
    assert next_pow2(np.int64(n)) == expected


@pytest.mark.parametrize("n", [0, -1])
def test_next_pow2_rejects_nonpositive(n):
    with pytest.raises(InvalidInputError, match="length must be >= 1"):
        next_pow2(n)


def test_fwht_rejects_bad_block_bits():
    with pytest.raises(InvalidInputError):
        fwht(np.ones(8), max_block_bits=0)
