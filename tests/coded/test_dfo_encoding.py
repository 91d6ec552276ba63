"""Encoding of coded search directions, fast transform vs dense G^T V
(frugalml.coded.dfo.estimator), and the direction families at scale
(frugalml.coded.dfo.directions), against independent references: generators built from
Kronecker products and identity blocks, scipy's dense Hadamard matrix, and an ES run with the
other encoding."""

from __future__ import annotations

from functools import reduce

import numpy as np
import pytest
from scipy.linalg import hadamard

from frugalml.coded import GaussianMDS, PolarCode, VandermondeCode
from frugalml.coded.base import RealLinearCode
from frugalml.coded.dfo import CodedDirections, CodedES, Quadratic, sample_directions
from frugalml.coded.dfo.directions import hadamard_entries
from frugalml.coded.dfo.estimator import has_fast_encoder
from frugalml.errors import InvalidInputError


def polar_reference_generator(code: PolarCode) -> np.ndarray:
    """(K, N) from the definition: rows of F^{(x)levels} (x) I at the data positions, times
    the signs, columns in worker order (the permutation); no butterflies involved."""
    levels = code.levels
    f = reduce(np.kron, [code.kernel] * levels, np.ones((1, 1)))
    full = np.kron(f, np.eye(code.n >> levels))
    g = full[code.data_positions] * code.signs[:, None]
    return g[:, code.permutation]


def reference_generator(coder: CodedDirections) -> np.ndarray:
    code = coder.code
    n, k = coder.n, coder.k
    if isinstance(code, PolarCode):
        return polar_reference_generator(code)
    if coder.code_name == "replication":
        return np.tile(np.eye(k), (1, n // k))
    if coder.code_name == "none":
        return np.eye(k)
    if isinstance(code, GaussianMDS):
        return np.concatenate([np.eye(k), np.asarray(code._parity)], axis=1)
    raise AssertionError(type(code))


CASES = [
    dict(code="polar"),
    dict(code="mds"),
    dict(code="replication"),
    dict(code="none"),
]


@pytest.mark.parametrize("case", CASES, ids=[c["code"] for c in CASES])
@pytest.mark.parametrize("directions", ["orthogonal", "hadamard", "gaussian"])
def test_fast_encoding_equals_dense_product(case, directions):
    """W from the code's transform == W from G^T V == (reference G)^T V, for every code."""
    n, d = 16, 300
    k = n if case["code"] == "none" else (4 if case["code"] == "replication" else 6)
    fast = CodedDirections(d, k, n, directions=directions, encoding="fast", rng=3, **case)
    dense = CodedDirections(d, k, n, directions=directions, encoding="dense", rng=3, **case)
    assert fast.encoding_ == "fast" and dense.encoding_ == "dense"
    v = fast.sample()
    np.testing.assert_array_equal(v, dense.sample())  # same rng stream
    ref = reference_generator(fast).T @ v
    np.testing.assert_allclose(fast.encode(v), ref, rtol=1e-12, atol=1e-10)
    np.testing.assert_allclose(dense.encode(v), ref, rtol=1e-12, atol=1e-10)


@pytest.mark.parametrize(
    "kwargs",
    [dict(kernel="arikan"), dict(levels=2), dict(randomize=False), dict(kernel="hadamard")],
)
def test_polar_variants_fast_equals_reference(kwargs):
    code = PolarCode(32, 11, rng=5, **kwargs)
    coder = CodedDirections(50, 11, 32, code=code, encoding="fast", rng=0)
    v = coder.sample()
    np.testing.assert_allclose(coder.encode(v), polar_reference_generator(code).T @ v,
                               rtol=1e-12, atol=1e-10)  # fmt: skip


def test_non_systematic_mds_fast_equals_dense():
    code = GaussianMDS(12, 5, rng=1, systematic=False)
    v = np.random.default_rng(0).standard_normal((5, 40))
    fast = CodedDirections(40, 5, 12, code=code, encoding="fast").encode(v)
    np.testing.assert_allclose(fast, np.asarray(code.generator).T @ v, rtol=1e-12, atol=1e-12)


def test_code_without_transform_is_dense_only():
    code = VandermondeCode(8, 4)
    assert not has_fast_encoder(code)
    assert has_fast_encoder(PolarCode(8, 4)) and has_fast_encoder(GaussianMDS(8, 4))
    with pytest.raises(InvalidInputError, match="no fast transform"):
        CodedDirections(10, 4, 8, code=code, encoding="fast")
    auto = CodedDirections(10, 4, 8, code=code, rng=0)
    assert auto.encoding_ == "dense"
    v = auto.sample()
    np.testing.assert_allclose(auto.encode(v), RealLinearCode.encode(code, v), rtol=1e-12)
    with pytest.raises(InvalidInputError, match="encoding"):
        CodedDirections(10, 4, 8, encoding="butterfly")


def test_auto_encoding_picks_dense_for_small_polar_codes_only():
    assert CodedDirections(10, 4, 8, code="polar").encoding_ == "dense"
    assert CodedDirections(10, 4, 2048, code="polar").encoding_ == "fast"
    assert CodedDirections(10, 4, 8, code="replication").encoding_ == "fast"
    assert CodedDirections(10, 4, 8, code="mds").encoding_ == "fast"


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(code="polar", step_rule="gradient"),
        dict(code="polar", step_rule="sign", adam=True, directions="hadamard"),
        dict(code="mds", step_rule="gradient", directions="gaussian"),
        dict(code="replication", step_rule="gradient", n_directions=8),
    ],
    ids=["polar", "polar-sign-adam", "mds", "replication"],
)
def test_es_is_the_same_with_either_encoding(kwargs):
    """Same rng: the same arrivals, decoders and (to float rounding) the same iterates."""
    from frugalml.runtime import ShiftedExponential

    f = Quadratic(24, condition=10.0, rng=0)
    common = dict(n_workers=32, stragglers=ShiftedExponential(1.0, 1.0), step=0.05,
                  batched=True, rng=7, **kwargs)  # fmt: skip
    a, b = (CodedES(f, f.x0, encoding=enc, **common).run(15) for enc in ("fast", "dense"))
    assert a.methods == b.methods
    np.testing.assert_array_equal(a.arrivals, b.arrivals)
    np.testing.assert_array_equal(a.sim_seconds, b.sim_seconds)
    np.testing.assert_allclose(a.losses, b.losses, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(a.x, b.x, rtol=1e-9, atol=1e-12)


def test_step_reports_phase_times():
    f = Quadratic(8, rng=0)
    info = CodedES(f, f.x0, n_workers=16, batched=True, rng=0).step()
    phases = (info.draw_seconds, info.encode_seconds, info.eval_seconds, info.decode_seconds)
    assert all(t >= 0 for t in phases)
    assert sum(phases) <= info.wall_seconds


# -- directions at scale ---------------------------------------------------------------------


@pytest.mark.parametrize("p", [1, 2, 8, 64])
def test_hadamard_entries_match_scipy(p):
    rows = np.arange(p)
    np.testing.assert_array_equal(hadamard_entries(rows, rows), hadamard(p))
    pick_r, pick_c = rows[::-1][: max(1, p // 2)], rows[:: max(1, p // 4)]
    np.testing.assert_array_equal(hadamard_entries(pick_r, pick_c),
                                  hadamard(p)[np.ix_(pick_r, pick_c)])  # fmt: skip


def test_hadamard_directions_equal_dense_construction():
    """The popcount construction draws the same rows as indexing scipy's dense H_P D."""
    for k, d in [(10, 12), (5, 100), (20, 5)]:
        got = sample_directions("hadamard", k, d, rng=4)
        gen = np.random.default_rng(4)
        p = 1 << max(0, (d - 1).bit_length())
        blocks, left = [], k
        while left > 0:
            rows = min(left, p)
            h = hadamard(p) * gen.choice(np.array([-1.0, 1.0]), size=p)
            r = gen.choice(p, size=rows, replace=False)
            c = np.sort(gen.choice(p, size=d, replace=False))
            blocks.append(h[np.ix_(r, c)])
            left -= rows
        np.testing.assert_array_equal(got, np.concatenate(blocks))


def test_thin_orthogonal_block_is_orthonormal_and_isotropic():
    """K < d rows (thin QR): orthogonal, norm sqrt(d), and E[v v^T] = I over many draws."""
    v = sample_directions("orthogonal", 5, 1000, rng=0)
    np.testing.assert_allclose(v @ v.T, 1000 * np.eye(5), atol=1e-8)
    d = 6
    w = np.concatenate([sample_directions("orthogonal", 2, d, rng=s) for s in range(2000)])
    np.testing.assert_allclose(w.T @ w / w.shape[0], np.eye(d), atol=0.1)
