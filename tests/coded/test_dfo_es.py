"""Coded ES and its baselines (frugalml.coded.dfo.es): convergence on a quadratic, the
simulated stopping time against an independent linear scan, the executor path (simulated
clock, failures, deadlines), step rules, projections and bad input."""

from __future__ import annotations

import numpy as np
import pytest

from frugalml.coded.dfo import (
    CodedES,
    DropStragglersES,
    LogisticLoss,
    Quadratic,
    StructuredES,
    WaitAllES,
)
from frugalml.errors import InvalidInputError
from frugalml.runtime import (
    BimodalStragglers,
    FailureModel,
    FaultInjector,
    ShiftedExponential,
    TraceReplay,
    make_executor,
)

HEAVY = BimodalStragglers(ShiftedExponential(1.0, 1.0), p_slow=0.2, slowdown=10.0)


@pytest.fixture(scope="module")
def quad():
    return Quadratic(16, condition=10.0, rng=0)


@pytest.mark.parametrize(
    "make",
    [
        lambda f: CodedES(f, f.x0, n_workers=32, n_directions=16, code="polar",
                          stragglers=HEAVY, step=0.1, batched=True, rng=1),
        lambda f: CodedES(f, f.x0, n_workers=32, n_directions=16, code="mds",
                          directions="hadamard", stragglers=HEAVY, step=0.1, rng=1),
        lambda f: WaitAllES(f, f.x0, n_workers=32, stragglers=HEAVY, step=0.05, rng=1),
        lambda f: StructuredES(f, f.x0, n_workers=32, stragglers=HEAVY, step=0.1, rng=1),
        lambda f: DropStragglersES(f, f.x0, n_workers=32, stragglers=HEAVY, step=0.05, rng=1),
    ],
    ids=["coded-polar", "coded-mds-hadamard", "wait-all", "structured", "drop"],
)  # fmt: skip
def test_es_converges_on_quadratic(quad, make):
    es = make(quad)
    res = es.run(400, target=1e-8)
    assert res.stopped_by == "target" and res.loss <= 1e-8
    np.testing.assert_allclose(res.x, quad.x_star, atol=1e-3)
    assert res.losses[0] == pytest.approx(quad(quad.x0))
    assert res.evaluations.tolist() == [64] * res.iterations
    assert res.iterations_to(1e-8) == res.iterations
    assert res.time_to(1e-8) == pytest.approx(res.total_sim_seconds)
    if es.coder.code_name != "none":
        assert res.exact.all()  # coded: every iteration decoded exactly
    assert res.name in res.summary()


def test_coded_exact_gradient_steps_match_gradient_descent(quad):
    """K = d orthogonal + a decodable set each round: the iterates are those of exact GD."""
    es = CodedES(quad, quad.x0, n_workers=32, n_directions=16, code="mds", stragglers=HEAVY,
                 step=0.05, sigma=0.5, rng=3)  # fmt: skip
    x = quad.x0.copy()
    for _ in range(10):
        es.step()
        x = x - 0.05 * quad.gradient(x)
    np.testing.assert_allclose(es.x, x, rtol=1e-9)


def _linear_scan_stop(es, times):
    """Independent reference: walk arrivals in time order, stop at the first decodable set."""
    mask = np.zeros(es.n_workers, bool)
    for j in np.argsort(times, kind="stable"):
        mask[j] = True
        if es.coder.decodable(mask):
            return times[j], mask.copy()
    raise AssertionError("never decodable")


@pytest.mark.parametrize("code", ["polar", "mds"])
def test_simulated_stop_time_is_first_decodable_arrival(quad, code):
    trace = np.random.default_rng(0).exponential(1.0, 32 * 5) + 1.0
    es = CodedES(quad, quad.x0, n_workers=32, n_directions=16, code=code,
                 stragglers=TraceReplay(trace, mode="cycle"), step=0.05, rng=2)  # fmt: skip
    for r in range(5):
        info = es.step()
        t, mask = _linear_scan_stop(es, trace[32 * r : 32 * (r + 1)])
        assert info.sim_seconds == t
        np.testing.assert_array_equal(info.estimate.arrived, mask)


def test_wait_all_and_drop_stop_times(quad):
    trace = np.random.default_rng(1).exponential(1.0, 32) + 1.0
    wait = WaitAllES(quad, quad.x0, n_workers=32, stragglers=TraceReplay(trace, "cycle"), rng=0)
    assert wait.step().sim_seconds == trace.max()
    drop = DropStragglersES(quad, quad.x0, n_workers=32, n_wait=20,
                            stragglers=TraceReplay(trace, "cycle"), rng=0)  # fmt: skip
    info = drop.step()
    assert info.sim_seconds == np.sort(trace)[19] and info.estimate.n_arrived == 20
    assert info.estimate.method == "drop"


def test_deadline_gives_anytime_estimates(quad):
    model = ShiftedExponential(1.0, 1.0)
    es = CodedES(quad, quad.x0, n_workers=32, n_directions=16, code="polar",
                 stragglers=model, deadline=1.05, step=0.05, rng=0)  # fmt: skip
    res = es.run(5)
    assert np.all(res.sim_seconds <= 1.05)
    assert any(m.startswith("anytime") for m in res.methods)
    assert not res.exact.all()


def test_executor_simulated_clock_matches_reference(quad):
    """The same rounds on a thread pool behind a simulated-clock FaultInjector."""
    with make_executor("local-thread", workers=4) as ex:
        inj = FaultInjector(ex, stragglers=HEAVY, clock="simulated", rng=5)
        es = CodedES(quad, quad.x0, n_workers=32, n_directions=16, code="polar",
                     executor=inj, step=0.1, rng=4)  # fmt: skip
        for _ in range(3):
            x_before = es.x.copy()
            info = es.step()
            assert info.estimate.exact
            arrived = info.estimate.arrived
            assert es.coder.decodable(arrived)
            np.testing.assert_allclose(es.x, x_before - 0.1 * quad.gradient(x_before),
                                       rtol=1e-8)  # fmt: skip
            assert info.sim_seconds > 0


def test_executor_failures_are_erasures(quad):
    with make_executor("local-thread", workers=4) as ex:
        inj = FaultInjector(ex, stragglers=ShiftedExponential(1.0, 1.0),
                            failures=FailureModel(p=0.2), clock="simulated", rng=0)  # fmt: skip
        es = CodedES(quad, quad.x0, n_workers=32, n_directions=8, code="mds", executor=inj,
                     wait="all", step=0.05, rng=1)  # fmt: skip
        res = es.run(4)
    assert res.erasures.sum() > 0
    assert np.all(res.arrivals + res.erasures == 32)
    assert res.exact.all()


def test_executor_objective_errors_surface(quad):
    with make_executor("local-thread", workers=2) as ex:
        calls = {"n": 0}

        def f(x):
            calls["n"] += 1
            return float(x @ x) if calls["n"] == 1 else "bad"

        es = CodedES(f, np.ones(4), n_workers=8, n_directions=4, code="mds", executor=ex)
        with pytest.raises(InvalidInputError, match=r"worker \d+: .*real number"):
            es.step()


def test_sign_steps_stay_in_linf_ball_and_projection_applies():
    f = LogisticLoss(8, 100, rng=0)
    center = np.zeros(8)
    seen = []

    def proj(x):
        seen.append(x.copy())
        return np.round(x, 6)

    es = CodedES(f, center, n_workers=16, n_directions=8, code="mds", step=0.3,
                 step_rule="sign", linf_ball=(center, 0.5), projection=proj, rng=0)  # fmt: skip
    res = es.run(10)
    assert len(seen) == 10
    assert np.abs(res.x).max() <= 0.5 + 1e-12
    assert res.losses[-1] < res.losses[0]
    steps = np.diff(np.stack(seen), axis=0)
    assert np.all(np.abs(steps) <= 0.3 + 1e-6)  # sign steps; clipping only shortens them
    assert np.array_equal(res.x, np.round(res.x, 6))  # the projection's output is the iterate


def test_adam_and_forward_differences_converge(quad):
    es = CodedES(quad, quad.x0, n_workers=32, n_directions=16, code="mds", adam=True,
                 step=0.2, antithetic=False, sigma=1e-6, rng=0)  # fmt: skip
    res = es.run(600, target=1e-6)
    assert res.stopped_by == "target"
    assert res.evaluations[0] == 32  # forward differences: one evaluation per worker


def test_stop_callback_and_non_finite_loss_history():
    f = Quadratic(4, rng=0)
    es = CodedES(f, f.x0, n_workers=8, n_directions=4, code="mds", step=0.1, rng=0)
    res = es.run(50, stop=lambda x, loss: loss < 1.0)
    assert res.stopped_by == "stop" and res.loss < 1.0 <= res.losses[-2]


# -- bad input --------------------------------------------------------------------------------


def _sq(x):
    return float(x @ x)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"sigma": 0}, "sigma must be > 0"),
        ({"step": -1}, "step must be > 0"),
        ({"n_directions": 16, "n_workers": 8}, "exceeds n_workers"),
        ({"code": "ldpc"}, "code must be one of"),
        ({"directions": "halton"}, "directions must be one of"),
        ({"step_rule": "newton"}, "step_rule must be one of"),
        ({"wait": "some"}, "wait must be"),
        ({"wait": 99}, "wait must be <= 8"),
        ({"deadline": -1.0}, "deadline must be >= 0"),
        ({"linf_ball": (np.zeros(3), 1.0)}, "center"),
        ({"linf_ball": 0.5}, "pair"),
        ({"stragglers": "bimodal"}, "StragglerModel"),
    ],
)
def test_bad_es_input(kwargs, match):
    kw = {"n_workers": 8, "n_directions": 4, **kwargs}
    with pytest.raises(InvalidInputError, match=match):
        CodedES(_sq, np.ones(4), **kw)


def test_bad_x0_and_objective():
    with pytest.raises(InvalidInputError, match="dimension"):
        CodedES(_sq, np.ones((2, 2)), n_workers=8)
    with pytest.raises(InvalidInputError, match="NaN or inf"):
        CodedES(_sq, np.array([1.0, np.inf]), n_workers=8)
    with pytest.raises(InvalidInputError, match="callable"):
        CodedES("f", np.ones(2), n_workers=8)
    with pytest.raises(InvalidInputError, match="finite"):
        CodedES(lambda x: np.nan, np.ones(2), n_workers=8)
    with pytest.raises(InvalidInputError, match="scalar"):
        CodedES(lambda x: np.ones(2), np.ones(2), n_workers=8)
    with pytest.raises(InvalidInputError, match="batched objective"):
        CodedES(lambda x: 1.0, np.ones(2), n_workers=8, batched=True)


def test_bad_executor_combinations_and_baseline_options():
    with (
        make_executor("local-thread", workers=1) as ex,
        pytest.raises(InvalidInputError, match="FaultInjector"),
    ):
        CodedES(_sq, np.ones(4), n_workers=8, executor=ex, stragglers=HEAVY)
    with pytest.raises(InvalidInputError, match="Executor"):
        CodedES(_sq, np.ones(4), n_workers=8, executor=object())
    with pytest.raises(InvalidInputError, match="takes no code"):
        WaitAllES(_sq, np.ones(4), n_workers=8, code="polar")
    with pytest.raises(InvalidInputError, match="n_wait"):
        DropStragglersES(_sq, np.ones(4), n_workers=8, wait="all")
    with pytest.raises(InvalidInputError, match="n_wait must be <= 8"):
        DropStragglersES(_sq, np.ones(4), n_workers=8, n_wait=9)
    with pytest.raises(InvalidInputError, match="n_iter"):
        CodedES(_sq, np.ones(4), n_workers=8).run(-1)


# -- data placed once: bytes per round --------------------------------------------------------


@pytest.mark.parametrize("backend", ["local-thread", "local"])
def test_objective_placed_once_and_rounds_send_o_d_bytes(backend):
    """The objective (4000 samples, 250 KiB) is placed once per run; a round's task carries
    x and its direction (d = 8), and the iterates are those of the in-process reference."""
    f = LogisticLoss(8, 4000, rng=0)
    kw = dict(n_workers=8, n_directions=4, code="mds", wait="all", step=0.5, rng=3)
    ref = CodedES(f, f.x0, **kw).run(3)
    with make_executor(backend, workers=2) as ex:
        res = CodedES(f, f.x0, executor=ex, **kw).run(3)
        assert ex.shared == ()  # released when the run ended
        es = CodedES(f, f.x0, executor=ex, **kw)
        first, second = es.step(), es.step()
        assert len(ex.shared) == 1  # placed on the first round, reused by the second
        es.close()
        assert ex.shared == ()
    np.testing.assert_array_equal(res.x, ref.x)
    np.testing.assert_array_equal(res.losses, ref.losses)
    assert res.bytes_sent.shape == res.bytes_received.shape == (3,)
    assert second.bytes_placed == 0
    if backend == "local-thread":  # shared by identity: nothing is copied
        assert res.bytes_sent.sum() == 0 and res.bytes_placed == 0
        return
    assert res.bytes_placed >= f.a.nbytes and first.bytes_placed == res.bytes_placed
    per_task = res.bytes_sent / 8
    assert per_task.max() <= 2 * f.dim * 8 + 2048  # x and w_j, not the 250 KiB objective
    assert second.bytes_sent == first.bytes_sent
    assert "placed once" in res.summary()
