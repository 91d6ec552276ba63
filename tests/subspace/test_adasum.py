"""AdaSum (arXiv 2006.02924): closed forms for orthogonal / parallel gradients, the tree order,
per-layer segments, and the DDP hook (2 gloo processes) against the same formula."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from frugalml.errors import InvalidInputError  # noqa: E402
from frugalml.subspace.adasum import adasum_pair, adasum_reduce, adasum_tree  # noqa: E402


def pair_ref(a, b):
    """AdaSum written as in the paper: a + b minus half of each one's projection on the other."""
    return a + b - 0.5 * (a @ b) / (b @ b) * b - 0.5 * (a @ b) / (a @ a) * a


def test_orthogonal_vectors_add():
    a, b = np.array([3.0, 0.0, 0.0]), np.array([0.0, -2.0, 0.0])
    np.testing.assert_allclose(adasum_reduce(np.stack([a, b])), a + b)
    e = np.eye(4) * np.array([1.0, 2.0, 3.0, 4.0])[:, None]
    np.testing.assert_allclose(adasum_reduce(e), e.sum(0))  # tree of orthogonal vectors: sum


def test_parallel_vectors():
    a = np.array([1.0, -2.0, 2.0])
    np.testing.assert_allclose(adasum_reduce(np.stack([a, a])), a)  # identical: the average
    np.testing.assert_allclose(adasum_reduce(np.stack([a, 2 * a])), 1.5 * a)  # closed form
    np.testing.assert_allclose(adasum_reduce(np.stack([a, a, a, a])), a)


def test_pair_matches_projection_form_and_is_symmetric():
    gen = np.random.default_rng(0)
    for _ in range(20):
        a, b = gen.standard_normal(7), gen.standard_normal(7)
        got = adasum_pair(torch.from_numpy(a), torch.from_numpy(b)).numpy()
        np.testing.assert_allclose(got, pair_ref(a, b), rtol=1e-12)
        np.testing.assert_allclose(got, adasum_reduce(np.stack([b, a])), rtol=1e-12)


def test_tree_order_and_odd_count():
    gen = np.random.default_rng(1)
    g = gen.standard_normal((5, 6))
    expected = pair_ref(pair_ref(pair_ref(g[0], g[1]), pair_ref(g[2], g[3])), g[4])
    np.testing.assert_allclose(adasum_reduce(g), expected, rtol=1e-12)
    np.testing.assert_allclose(adasum_reduce(g[:1]), g[0])


def test_per_layer_segments_are_independent():
    gen = np.random.default_rng(2)
    g = gen.standard_normal((4, 9))
    got = adasum_reduce(g, segments=[2, 3, 4])
    for lo, hi in ((0, 2), (2, 5), (5, 9)):
        np.testing.assert_allclose(got[lo:hi], adasum_reduce(g[:, lo:hi]), rtol=1e-12)


def test_zero_operand_returns_the_other():
    a = np.array([1.0, 2.0])
    np.testing.assert_allclose(adasum_reduce(np.stack([np.zeros(2), a])), a)


def test_bad_input():
    with pytest.raises(InvalidInputError, match="sum to P"):
        adasum_reduce(np.ones((2, 3)), segments=[1, 1])
    with pytest.raises(InvalidInputError, match="dimension"):
        adasum_reduce(np.ones(3))
    with pytest.raises(InvalidInputError, match="NaN"):
        adasum_reduce([[1.0, np.inf], [1.0, 2.0]])
    with pytest.raises(InvalidInputError, match=r"\(N, P\)"):
        adasum_tree(torch.ones(3))


def _hook_worker(rank, world):
    from torch.nn.parallel import DistributedDataParallel as DDP

    from frugalml.subspace.adasum import AdaSumState, adasum_hook

    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.ReLU(), torch.nn.Linear(3, 2))
    ddp = DDP(model)
    state = AdaSumState()
    ddp.register_comm_hook(state, adasum_hook)
    gen = torch.Generator().manual_seed(rank)
    x, y = torch.randn(6, 4, generator=gen), torch.randn(6, 2, generator=gen)
    local = torch.autograd.grad(((model(x) - y) ** 2).mean(), list(model.parameters()))
    ((ddp(x) - y) ** 2).mean().backward()
    flat = lambda ts: torch.cat([t.reshape(-1) for t in ts]).double().numpy()  # noqa: E731
    sizes = [p.numel() for p in model.parameters()]
    return flat(local), flat([p.grad for p in model.parameters()]), sizes, state.floats_sent


def test_hook_matches_per_layer_adasum():
    from frugalml.subspace.launcher import run_workers

    res = run_workers(_hook_worker, 2, timeout=120)
    G = np.stack([r[0] for r in res])
    sizes = res[0][2]
    # DDP buckets hold parameters in reverse order; per-layer AdaSum is order-independent
    expected = adasum_reduce(G, segments=sizes)
    for r in res:
        np.testing.assert_allclose(r[1], expected, rtol=1e-5, atol=1e-7)
        assert r[3] == G.shape[1]
    assert not np.allclose(expected, G.mean(0))
