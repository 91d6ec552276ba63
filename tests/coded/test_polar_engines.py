"""The compiled (numba) and NumPy SC decoders of real polar codes, and their accuracy at large N.

References: the NumPy decoder for the compiled one (same decisions, same known blocks), the
encoded data themselves for accuracy (relative error of the decoded blocks against the blocks
that were encoded), an ``np.kron`` power of the kernel for the compiled transform, and the
exhaustive boolean SC of ``PolarCode._sc_mask`` for the compiled plan's known masks.

The accuracy checks pin the fix for the loss of accuracy with N: before it, SC decoding of
float32 outputs had relative error 3.8e-4 at N = 4096 and 1.6e-1 at N = 16384, float64 4.7e-9
at N = 16384 (the bottom half of a butterfly was always recovered through the top half's
re-encoding, so errors compounded level after level).
"""

from __future__ import annotations

from functools import reduce

import numpy as np
import pytest

from frugalml.coded import _polar_kernel
from frugalml.coded.polar import KERNELS, PolarCode, _butterflies_inplace, polar_transform
from frugalml.coded.simulate import first_decodable_mask
from frugalml.errors import BackendUnavailableError, InvalidInputError

numba = pytest.importorskip("numba")


def rel(a: np.ndarray, b: np.ndarray) -> float:
    a64, b64 = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return float(np.linalg.norm(a64 - b64) / np.linalg.norm(b64))


@pytest.mark.parametrize("kernel", ["hadamard", "arikan"])
@pytest.mark.parametrize(("n", "levels"), [(8, None), (64, None), (256, 5), (1024, None)])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_engines_agree(kernel, n, levels, dtype):
    rng = np.random.default_rng(n)
    code = PolarCode(n, n // 2, kernel=kernel, levels=levels, rng=n + 1)
    u = rng.standard_normal((n // 2, 3, 2))
    y = code.encode(u).astype(dtype)
    for frac in (0.2, 0.5, 0.7, 0.9, 1.0):
        mask = rng.random(n) < frac
        a = code.decode(y, mask, engine="numpy")
        b = code.decode(y, mask, engine="compiled")
        np.testing.assert_array_equal(a.known, b.known)
        np.testing.assert_array_equal(b.known, code.known_blocks(mask))
        assert b.blocks.dtype == dtype and b.blocks.shape == u.shape
        assert np.all(b.blocks[~b.known] == 0)
        if b.known.any():
            tol = 1e-11 if dtype == np.float64 else 1e-4
            assert rel(b.blocks[b.known], u[b.known]) <= tol
            assert rel(a.blocks[a.known], u[a.known]) <= tol


@pytest.mark.parametrize("kernel", ["hadamard", "arikan"])
@pytest.mark.parametrize("levels", [None, 2])
def test_compiled_plan_known_masks_exhaustive_n8(kernel, levels):
    """Every one of the 256 arrival sets: the compiled plan's known mask is the boolean SC's."""
    for k in (2, 4, 7):
        code = PolarCode(8, k, kernel=kernel, levels=levels, rng=k)
        for bits in range(256):
            mask = ((bits >> np.arange(8)) & 1).astype(bool)
            xk = code._codeword_mask(mask)
            uk_ref, _ = code._sc_mask(xk, code.frozen, 0)
            plan = _polar_kernel.plan(xk, code.frozen, code.levels, code.kernel)
            np.testing.assert_array_equal(plan.known, uk_ref)


@pytest.mark.parametrize("kernel", ["hadamard", "arikan"])
@pytest.mark.parametrize("shape", [(16, 5), (32, 1), (4, 1000)])
def test_compiled_transform_matches_kron(kernel, shape):
    n, p = shape
    f = KERNELS[kernel]
    g = reduce(np.kron, [f] * (n.bit_length() - 1))  # x = u G, rows = inputs
    x = np.random.default_rng(n).standard_normal((n, p))
    got = polar_transform(x, f)
    np.testing.assert_allclose(got, g.T @ x, atol=1e-12)
    ref = x.copy()
    _butterflies_inplace(ref, f, n.bit_length() - 1)
    np.testing.assert_allclose(got, ref, atol=1e-12)
    x32 = x.astype(np.float32)
    got32 = polar_transform(x32, f)
    assert got32.dtype == np.float32
    np.testing.assert_allclose(got32, g.T @ x, rtol=0, atol=1e-5 * np.abs(g.T @ x).max())


def _first_sets(code: PolarCode, count: int, seed: int) -> list[np.ndarray]:
    gen = np.random.default_rng(seed)
    return [first_decodable_mask(code, gen.permutation(code.n)) for _ in range(count)]


@pytest.mark.parametrize(("n", "goal"), [(4096, 1e-5), (16384, 1e-4)])
def test_float32_accuracy_at_scale(n, goal):
    """Goals of issue [15 regimes]: float32 outputs, 8 x 8 blocks, K = N/2, the first decodable
    arrival set of a random order: relative error <= 1e-5 at N = 4096, <= 1e-4 at 16384."""
    code = PolarCode(n, n // 2, rng=n)
    u = np.random.default_rng(n).standard_normal((n // 2, 8, 8))
    y = code.encode(u).astype(np.float32)  # float32 worker outputs
    for mask in _first_sets(code, 4 if n == 4096 else 2, seed=n):
        d = code.decode(y, mask)
        assert d.complete
        assert rel(d.blocks, u) <= goal


@pytest.mark.parametrize("engine", ["numpy", "compiled"])
def test_float64_accuracy_at_n16384(engine):
    """Both engines: float64 relative error <= 1e-10 at N = 16384 (4.7e-9 before the fix)."""
    n = 16384
    code = PolarCode(n, n // 2, rng=3)
    u = np.random.default_rng(3).standard_normal((n // 2, 2, 2))
    y = code.encode(u)
    for mask in _first_sets(code, 2, seed=5):
        d = code.decode(y, mask, engine=engine)
        assert d.complete
        assert rel(d.blocks, u) <= 1e-10


def test_engine_choice_and_missing_numba(monkeypatch):
    code = PolarCode(64, 32, rng=0)
    u = np.random.default_rng(0).standard_normal((32, 4))
    y = code.encode(u)
    mask = np.ones(64, dtype=bool)
    with pytest.raises(InvalidInputError, match="engine"):
        code.decode(y, mask, engine="fast")
    compiled_x = polar_transform(u, code.kernel, 3)
    monkeypatch.setattr(_polar_kernel, "available", lambda: False)
    with pytest.raises(BackendUnavailableError, match="numba"):
        code.decode(y, mask, engine="compiled")
    d = code.decode(y, mask)  # auto falls back to NumPy
    assert rel(d.blocks, u) <= 1e-12
    np.testing.assert_allclose(polar_transform(u, code.kernel, 3).shape, u.shape)
    # without numba the transform and the encoder take the NumPy path, with the same values
    np.testing.assert_allclose(polar_transform(u, code.kernel, 3), compiled_x, atol=1e-12)
    assert rel(code.decode(code.encode(u), mask).blocks, u) <= 1e-12
