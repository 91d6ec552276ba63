"""AdaCons (arXiv 2411.03742): the formula against brute-force references, the rank-preserving
momentum mapping, the guard, bad input, and the DDP hook (3 gloo processes) against a
single-process reference computed on the same per-worker gradients."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

torch = pytest.importorskip("torch")

from frugalml.errors import InvalidInputError  # noqa: E402
from frugalml.subspace.aggregation import (  # noqa: E402
    AdaConsAggregator,
    adacons_aggregate,
    adacons_coefficients,
    update_coefficients,
)


def brute_force(grads, beta, mapping_rank=True, rescale=True, references=None):
    """Independent loop implementation of AdaCons over a sequence of (N, P) gradient stacks."""
    state = None
    out = []
    for t, G in enumerate(grads):
        n = len(G)
        ref = np.mean(G, axis=0) if references is None or references[t] is None else references[t]
        raw = [float(np.dot(g / np.linalg.norm(g), ref)) for g in G]
        order = sorted(range(n), key=lambda i: raw[i])
        srt = [raw[i] for i in order]
        state = (
            srt
            if state is None
            else [beta * m + (1 - beta) * v for m, v in zip(state, srt, strict=True)]
        )
        s = [0.0] * n
        for k, i in enumerate(order):  # k-th smallest worker gets k-th smallest smoothed value
            s[i] = state[k] if mapping_rank else None
        if not mapping_rank:
            s = [state[order[i]] for i in range(n)]
        alpha = [v / sum(s) for v in s]
        c = np.mean([np.linalg.norm(g) for g in G]) if rescale else 1.0
        d = c * sum(a * g / np.linalg.norm(g) for a, g in zip(alpha, G, strict=True))
        out.append((np.array(alpha), d))
    return out


def test_identical_gradients_give_uniform_alpha_and_the_mean():
    g = np.random.default_rng(0).standard_normal(50)
    G = np.tile(g, (5, 1))
    d, coef = adacons_aggregate(G)
    np.testing.assert_allclose(coef.alpha, np.full(5, 0.2), rtol=1e-12)
    np.testing.assert_allclose(d, g, rtol=1e-10)  # mean_norm: exactly the average
    d_unit, _ = adacons_aggregate(G, rescale="none")
    np.testing.assert_allclose(d_unit, g / np.linalg.norm(g), rtol=1e-10)


@settings(max_examples=60, deadline=None)
@given(st.integers(2, 9), st.integers(1, 30), st.integers(0, 10_000))
def test_alpha_sums_to_one_and_matches_brute_force(n, p, seed):
    gen = np.random.default_rng(seed)
    G = gen.standard_normal((n, p)) + 2.0 * gen.standard_normal(p)  # a common component
    coef = adacons_coefficients(G, guard=1e-6, eps=0.0)  # brute_force has no eps either
    if coef.fallback:
        assert np.allclose(coef.alpha, 1.0 / n)
        return
    assert abs(coef.alpha.sum() - 1.0) < 1e-12
    alpha_ref, d_ref = brute_force([G], beta=0.0)[0]
    np.testing.assert_allclose(coef.alpha, alpha_ref, rtol=1e-9, atol=1e-12)
    d, _ = adacons_aggregate(G, guard=1e-6, eps=0.0)
    np.testing.assert_allclose(d, d_ref, rtol=1e-8, atol=1e-10)


def test_rank_preserving_mapping_closed_form():
    state = np.array([1.0, 2.0, 3.0])
    raw = np.array([30.0, 10.0, 20.0])
    alpha, new_state, fb = update_coefficients(raw, state, beta=0.5)
    np.testing.assert_allclose(new_state, [5.5, 11.0, 16.5])
    # worker 0 has the largest raw value and gets the largest smoothed one, and so on
    np.testing.assert_allclose(alpha, np.array([16.5, 5.5, 11.0]) / 33.0)
    assert not fb
    # the authors' sample code indexes with the permutation: values land on the wrong workers
    alpha_s, _, _ = update_coefficients(raw, state, beta=0.5, mapping="sample")
    np.testing.assert_allclose(alpha_s, np.array([11.0, 16.5, 5.5]) / 33.0)


@settings(max_examples=40, deadline=None)
@given(st.integers(2, 8), st.integers(0, 10_000), st.floats(0.0, 0.95))
def test_momentum_is_rank_preserving_over_steps(n, seed, beta):
    gen = np.random.default_rng(seed)
    common = gen.standard_normal(12)
    grads = [gen.standard_normal((n, 12)) + 3 * common for _ in range(4)]
    ref = brute_force(grads, beta)
    state = None
    for G, (alpha_ref, d_ref) in zip(grads, ref, strict=True):
        d, coef = adacons_aggregate(G, state=state, beta=beta, guard=0.0)
        state = coef.state
        np.testing.assert_allclose(coef.alpha, alpha_ref, rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(d, d_ref, rtol=1e-8, atol=1e-10)
        # the order of the coefficients follows the order of the raw values
        assert np.all(np.diff(coef.alpha[np.argsort(coef.raw, kind="stable")]) >= -1e-15)
    # first step: smoothing has nothing to average, alpha = raw / sum(raw)
    _, c0 = adacons_aggregate(grads[0], beta=beta, guard=0.0)
    np.testing.assert_allclose(c0.alpha, c0.raw / c0.raw.sum(), rtol=1e-12)


def test_sample_mapping_differs_from_rank_mapping_when_order_changes():
    gen = np.random.default_rng(0)  # its first order is not an involution (checked below)
    grads = [gen.standard_normal((5, 4)) + np.arange(4.0) for _ in range(2)]
    ref_wrong = brute_force(grads, 0.5, mapping_rank=False)
    state = None
    for G, (alpha_ref, _) in zip(grads, ref_wrong, strict=True):
        coef = adacons_coefficients(G, state=state, beta=0.5, mapping="sample")
        state = coef.state
        np.testing.assert_allclose(coef.alpha, alpha_ref, rtol=1e-12)
    right = adacons_coefficients(grads[0], beta=0.5)
    wrong = adacons_coefficients(grads[0], beta=0.5, mapping="sample")
    perm = np.argsort(right.raw)
    assert not np.array_equal(perm[perm], np.arange(5))  # not an involution
    assert not np.allclose(right.alpha, wrong.alpha)


def test_guard_falls_back_to_uniform_when_sum_is_not_positive():
    G = np.array([[100.0, 0.0], [-1.0, 0.0]])  # raw = [49.5, -49.5]: sum 0
    coef = adacons_coefficients(G)
    assert coef.fallback
    np.testing.assert_allclose(coef.alpha, [0.5, 0.5])
    raw = np.array([1.0, -0.999])
    alpha, _, fb = update_coefficients(raw, guard=1e-2)
    assert fb and np.allclose(alpha, 0.5)
    alpha, _, fb = update_coefficients(raw, guard=0.0)  # no guard: huge coefficients
    assert not fb and alpha.max() > 900


def test_zero_gradient_worker_gets_no_weight():
    G = np.array([[1.0, 2.0], [0.0, 0.0], [1.5, 1.0]])
    d, coef = adacons_aggregate(G, rescale="none")
    assert coef.raw[1] == 0.0 and coef.weights[1] == 0.0
    assert np.all(np.isfinite(d))


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: adacons_coefficients(np.ones(4)), "dimension"),
        (lambda: adacons_coefficients([[1.0, np.nan], [1.0, 2.0]]), "NaN"),
        (lambda: adacons_coefficients(np.ones((2, 3)), rescale="max"), "rescale"),
        (lambda: adacons_coefficients(np.ones((2, 3)), reference=np.ones(4)), "shape"),
        (lambda: update_coefficients(np.ones(3), np.ones(4), beta=0.5), "shape"),
        (lambda: update_coefficients(np.ones(3), beta=1.0), "beta"),
        (lambda: update_coefficients(np.ones(3), mapping="inverse"), "mapping"),
        (lambda: AdaConsAggregator("model"), "nn.Module"),
        (lambda: AdaConsAggregator(torch.nn.Linear(2, 1), reference="next"), "reference"),
        (lambda: AdaConsAggregator(torch.nn.Linear(2, 1), schedule="ring"), "schedule"),
        (
            lambda: AdaConsAggregator(
                torch.nn.Linear(2, 1), schedule="allgather", reference="previous"
            ),
            "allgather",
        ),
        (lambda: AdaConsAggregator(torch.nn.Linear(2, 1), auto_max_bytes=-1), "auto_max_bytes"),
    ],
)
def test_bad_input(call, match):
    with pytest.raises(InvalidInputError, match=match):
        call()


def test_world_size_one_warns_and_keeps_local_gradient():
    model = torch.nn.Linear(3, 2)
    with pytest.warns(RuntimeWarning, match="world size is 1"):
        agg = AdaConsAggregator(model, beta=0.5).register()
    model(torch.ones(4, 3)).sum().backward()
    before = [p.grad.clone() for p in model.parameters()]
    info = agg.step()
    assert info.applied and info.alpha.tolist() == [1.0]
    for b, p in zip(before, model.parameters(), strict=True):
        assert torch.equal(b, p.grad)


# ---------------------------------------------------------------------------------------------
# the DDP hook in 3 gloo processes
# ---------------------------------------------------------------------------------------------


def _flat(tensors):
    return torch.cat([t.reshape(-1) for t in tensors]).double().numpy()


def _hook_worker(rank, world, scenarios):
    from torch.nn.parallel import DistributedDataParallel as DDP

    out = {}
    for name, options, steps, nan_step in scenarios:
        torch.manual_seed(0)
        model = torch.nn.Sequential(torch.nn.Linear(6, 5), torch.nn.Tanh(), torch.nn.Linear(5, 3))
        ddp = DDP(model, bucket_cap_mb=1e-5)  # 1 bucket (4 tensors), then 4 buckets
        agg = AdaConsAggregator(ddp, **options).register()
        gen = torch.Generator().manual_seed(10 + rank)
        rows = []
        for step in range(steps):
            x, y = torch.randn(8, 6, generator=gen), torch.randn(8, 3, generator=gen)
            if step == nan_step and rank == 1:
                x[0, 0] = float("nan")
            local = torch.autograd.grad(((model(x) - y) ** 2).mean(), list(model.parameters()))
            ddp.zero_grad(set_to_none=True)
            ((ddp(x) - y) ** 2).mean().backward()
            buckets = agg._pending.calls
            info = agg.step()
            grads = [p.grad for p in model.parameters()]
            agg_flat = None if grads[0] is None else _flat(grads)
            rows.append((_flat(local), agg_flat, info.applied, info.alpha, info.reason, buckets))
        out[name] = (rows, agg.schedule_)
    return out


SCENARIOS = [
    ("mean", {"beta": 0.5, "schedule": "allreduce"}, 4, -1),
    ("mean-allgather", {"beta": 0.5, "schedule": "allgather"}, 4, -1),
    ("auto-none", {"beta": 0.9, "rescale": "none"}, 3, -1),
    ("previous", {"beta": 0.0, "reference": "previous", "rescale": "none"}, 3, -1),
    ("previous-momentum", {"beta": 0.7, "reference": "previous"}, 3, -1),
    ("nan", {"beta": 0.5, "schedule": "allreduce"}, 3, 1),
    ("nan-allgather", {"beta": 0.5, "schedule": "allgather"}, 3, 1),
]


@pytest.fixture(scope="module")
def hook_runs():
    from frugalml.subspace.launcher import run_workers

    return run_workers(_hook_worker, 3, args=(SCENARIOS,), timeout=120)


def _rows(hook_runs, name, rank):
    return hook_runs[rank][name][0]


@pytest.mark.parametrize(
    "name", ["mean", "mean-allgather", "auto-none", "previous", "previous-momentum"]
)
def test_hook_matches_single_process_reference(hook_runs, name):
    options = dict(next(s[1] for s in SCENARIOS if s[0] == name))
    options.pop("schedule", None)
    reference_mode = options.pop("reference", "mean")
    state, prev = None, None
    steps = len(_rows(hook_runs, name, 0))
    for t in range(steps):
        G = np.stack([_rows(hook_runs, name, r)[t][0] for r in range(3)])
        ref = prev if reference_mode == "previous" else None
        d, coef = adacons_aggregate(G, state=state, reference=ref, **options)
        state, prev = coef.state, d
        for r in range(3):
            _, agg, applied, alpha, _, buckets = _rows(hook_runs, name, r)[t]
            assert applied
            # DDP puts everything in one bucket on the first iteration, then rebuilds the
            # buckets with the tiny cap: from step 1 on the coefficients span several buckets
            assert buckets >= 2 or t == 0
            np.testing.assert_allclose(agg, d, rtol=2e-5, atol=1e-6)  # float32 gradients
            np.testing.assert_allclose(alpha, coef.alpha, rtol=1e-4, atol=1e-6)


def test_schedules_resolve_and_agree(hook_runs):
    assert hook_runs[0]["mean"][1] == "allreduce"
    assert hook_runs[0]["mean-allgather"][1] == "allgather"
    assert hook_runs[0]["auto-none"][1] == "allgather"  # 3 x 53 floats << 4 MiB
    assert hook_runs[0]["previous"][1] == "allreduce"  # auto never gathers for "previous"
    for t in range(4):
        for r in range(3):
            a = _rows(hook_runs, "mean", r)[t]
            b = _rows(hook_runs, "mean-allgather", r)[t]
            np.testing.assert_array_equal(a[0], b[0])  # same local gradients
            np.testing.assert_allclose(b[1], a[1], rtol=2e-5, atol=1e-6)
            np.testing.assert_allclose(b[3], a[3], rtol=1e-4, atol=1e-6)
            # the all-gather schedule computes on identical data: identical on every rank
            np.testing.assert_array_equal(b[1], _rows(hook_runs, "mean-allgather", 0)[t][1])


@pytest.mark.parametrize("name", ["nan", "nan-allgather"])
def test_non_finite_gradient_skips_the_step_on_every_rank(hook_runs, name):
    for r in range(3):
        rows = _rows(hook_runs, name, r)
        assert rows[0][2] and rows[2][2]
        _, agg, applied, alpha, reason, _ = rows[1]
        assert not applied and agg is None
        assert "rank(s) [1]" in reason
        assert np.all(np.isnan(alpha))
    # the step after the skipped one is a normal AdaCons step: momentum state continues from step 0
    G0 = np.stack([_rows(hook_runs, name, r)[0][0] for r in range(3)])
    G2 = np.stack([_rows(hook_runs, name, r)[2][0] for r in range(3)])
    _, c0 = adacons_aggregate(G0, beta=0.5)
    d2, _ = adacons_aggregate(G2, beta=0.5, state=c0.state)
    np.testing.assert_allclose(_rows(hook_runs, name, 0)[2][1], d2, rtol=2e-5, atol=1e-6)


def test_without_process_group_step_is_a_noop():
    # world size 1 path never raises; the multi-rank check is exercised through the launcher
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        agg = AdaConsAggregator(torch.nn.Linear(2, 1))
    assert agg.step().applied  # no process group: nothing to aggregate, no error


def test_sign_free_guard_for_an_explicit_reference():
    G = np.array([[1.0, 0.2], [2.0, -0.1], [0.5, 0.0]])
    r = np.array([-1.0, 0.0])  # every gradient points against the previous direction
    d, coef = adacons_aggregate(G, reference=r)
    assert not coef.fallback and np.all(coef.alpha > 0)
    d_flip, _ = adacons_aggregate(G, reference=-r)
    np.testing.assert_allclose(d, d_flip, rtol=1e-12)  # invariant to the reference's sign
    # with the mean gradient as reference a non-positive sum still falls back
    alpha, _, fb = update_coefficients(np.array([-1.0, -2.0]), sign_free=False)
    assert fb and np.allclose(alpha, 0.5)
    alpha, _, fb = update_coefficients(np.array([-1.0, -2.0]), sign_free=True)
    assert not fb and np.allclose(alpha, [1 / 3, 2 / 3])
