"""Memory guards (TooLargeError before the allocation) and readable results in the sketch
area; the limit is set with FRUGALML_MEMORY_LIMIT so that the tests stay small."""

from __future__ import annotations

import numpy as np
import pytest

from frugalml.errors import TooLargeError
from frugalml.sketch import (
    GaussianSketch,
    SparseSignSketch,
    SRHTSketch,
    UniformSampling,
    distributed_lstsq,
    distributed_newton,
    lstsq,
)
from frugalml.sketch.lstsq import factor_nbytes
from frugalml.sketch.theory import BiasVariance

LIMIT = 8 << 20  # 8 MiB


@pytest.fixture
def small_memory(monkeypatch):
    monkeypatch.setenv("FRUGALML_MEMORY_LIMIT", str(LIMIT))


@pytest.mark.parametrize(
    "sketch", [GaussianSketch(200_000), SparseSignSketch(200_000), UniformSampling(200_000)]
)
def test_sketch_apply_refused_above_the_limit(small_memory, sketch):
    a = np.ones((50, 10))
    with pytest.raises(TooLargeError, match="sketch size m=200000"):
        sketch.apply(a)


def test_srht_draw_and_dense_sketch_refused(small_memory):
    with pytest.raises(TooLargeError, match="drawing a srht sketch"):
        SRHTSketch(5).draw(10**7)
    with pytest.raises(TooLargeError, match="the dense sketch"):
        GaussianSketch(1000).draw(10**4).to_dense()


def test_lstsq_refuses_a_huge_sketch_but_solves_within_the_limit(small_memory):
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((400, 8)), rng.standard_normal(400)
    with pytest.raises(TooLargeError, match=r"1000000 x 8 sketched matrix S A"):
        lstsq(a, b, sketch="gaussian", sketch_size=10**6)
    res = lstsq(a, b, rng=0)  # ordinary sizes pass
    assert res.converged and factor_nbytes(res.sketch_size, 8) < LIMIT


def test_distributed_and_newton_guards(small_memory):
    rng = np.random.default_rng(1)
    a, b = rng.standard_normal((100, 5)), rng.standard_normal(100)
    with pytest.raises(TooLargeError, match="worker tasks"):
        distributed_lstsq(a, b, 10**6, 20)
    with pytest.raises(TooLargeError, match="sketched 100000 x 5 problems"):
        distributed_lstsq(a, b, 2, 100_000)
    wide = rng.standard_normal((10, 1200))
    with pytest.raises(TooLargeError, match="1200 x 1200 Hessian"):
        distributed_newton(wide, rng.standard_normal(10), lam=1.0, q=2)


def test_results_repr_by_shape_and_print_the_summary():
    rng = np.random.default_rng(2)
    res = lstsq(rng.standard_normal((200, 4)), rng.standard_normal(200), rng=0)
    assert "x=array(shape=(4,), dtype=float64)" in repr(res)
    assert str(res) == res.summary()
    bv = BiasVariance(0.1, 0.3, 5)
    assert str(bv) == bv.summary() and "5 trials" in str(bv)
