"""rematerialize(): training under a memory budget, checked against eager PyTorch."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("ortools")

from torch import nn  # noqa: E402

from frugalml.errors import InfeasibleError, InvalidInputError  # noqa: E402
from frugalml.remat import evaluate_schedule, plain_peak  # noqa: E402
from frugalml.remat.joint_seeds import block_checkpoint_schedule  # noqa: E402
from frugalml.remat.torch_memory import allocator_peak  # noqa: E402
from frugalml.remat.training import remat_plans, rematerialize  # noqa: E402


@pytest.fixture(autouse=True)
def _one_thread():
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


def cnn() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(3, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(inplace=True),
        nn.Conv2d(16, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(inplace=True),
        nn.MaxPool2d(2), nn.Flatten(), nn.Dropout(0.3), nn.Linear(16 * 8 * 8, 10),
    )  # fmt: skip


def transformer(width: int = 32, seq: int = 10) -> nn.Module:
    torch.manual_seed(0)
    layer = nn.TransformerEncoderLayer(width, 4, 2 * width, dropout=0.2, batch_first=True)
    return nn.Sequential(
        nn.TransformerEncoder(layer, 3, enable_nested_tensor=False),
        nn.Flatten(),
        nn.Linear(width * seq, 5),
    )


def wide_transformer() -> nn.Module:
    return transformer(64, 32)


def train(model, batches, opt_cls, **opt_kw):
    opt = opt_cls(model.parameters(), **opt_kw)
    losses = []
    for step, (x, y) in enumerate(batches):
        torch.manual_seed(100 + step)  # the same dropout masks for eager and rematerialised
        loss = nn.functional.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        opt.zero_grad()
        losses.append(loss.item())
    return losses


def assert_same_state(a: nn.Module, b: nn.Module) -> None:
    for (name, p), q in zip(a.named_parameters(), b.parameters(), strict=True):
        torch.testing.assert_close(p, q, rtol=1e-5, atol=1e-6, msg=name)
    for (name, p), q in zip(a.named_buffers(), b.buffers(), strict=True):
        torch.testing.assert_close(p, q, rtol=1e-5, atol=1e-6, msg=name)


@pytest.mark.parametrize("budget", [1.0, 0.8])
def test_cnn_with_batchnorm_trains_like_eager_and_retraces_the_last_batch(budget):
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(8, 3, 16, 16, generator=gen)
    y = torch.randint(0, 10, (8,), generator=gen)
    batches = [(x, y)] * 4 + [(x[:5], y[:5])]  # the last, smaller batch is re-traced
    eager, remat = cnn(), rematerialize(cnn(), x, budget=budget, time_limit=10)
    la = train(eager, batches, torch.optim.SGD, lr=0.1, momentum=0.9)
    lb = train(remat, batches, torch.optim.SGD, lr=0.1, momentum=0.9)
    np.testing.assert_allclose(la, lb, rtol=1e-5)
    assert_same_state(eager, remat)  # parameters and BatchNorm running statistics
    plans = remat_plans(remat)
    assert [p.input_shapes[0] for p in plans] == [(16, 3, 3, 3)] * 2  # one plan per shape
    assert {p.budget_bytes for p in plans} == {p.budget_bytes for p in plans}
    for p in plans:
        assert p.peak_bytes <= p.budget_bytes
        assert p.folded > 0  # views are not solver nodes
        assert p.plain_peak_bytes == plain_peak(p.graph)
        if budget < 1:
            assert p.recomputations > 0 and p.status != "plain"
    # eval after training: no rematerialisation needed, same outputs as eager
    eager.eval(), remat.eval()
    with torch.no_grad():
        torch.testing.assert_close(eager(x), remat(x), rtol=1e-5, atol=1e-6)


def test_transformer_with_dropout_recomputes_masks_with_the_same_random_state():
    gen = torch.Generator().manual_seed(2)
    x = torch.randn(6, 10, 32, generator=gen)
    y = torch.randint(0, 5, (6,), generator=gen)
    eager, remat = transformer(), rematerialize(transformer(), x, budget=0.5, time_limit=10)
    plan = remat_plans(remat)[0]
    assert plan.random_recomputed > 0  # dropout is recomputed, replaying its first draw
    la = train(eager, [(x, y)] * 5, torch.optim.Adam, lr=1e-3)
    lb = train(remat, [(x, y)] * 5, torch.optim.Adam, lr=1e-3)
    np.testing.assert_allclose(la, lb, rtol=1e-5)
    assert_same_state(eager, remat)


def _step(model, x, y):
    def step():
        nn.functional.cross_entropy(model(x), y).backward()

    return step


@pytest.mark.parametrize(("make", "shape", "budget"), [
    (cnn, (16, 3, 16, 16), 1.0), (cnn, (16, 3, 16, 16), 0.9), (wide_transformer, (16, 32, 64), 0.6),
])  # fmt: skip
def test_modelled_peak_is_the_allocator_peak_of_the_step(make, shape, budget):
    """The budget is a real cap: the allocator's peak of a training step (loss and gradients
    included) is at most a few percent above the modelled peak, and not far below it.
    (Unmodelled: the 5 KB generator state kept per recomputed random op, negligible here.)"""
    x = torch.randn(*shape)
    y = torch.randint(0, 5, (shape[0],))
    model = rematerialize(make(), x, budget=budget, time_limit=10)
    step = _step(model, x, y)
    step()  # warm up (gradient buffers, lazy initialisation)
    # gradients freed before the measured step: the profiler cannot see the frees of memory
    # allocated before it started (see allocator_peak)
    model.zero_grad(set_to_none=True)
    measured = allocator_peak(step).peak_bytes
    plan = remat_plans(model)[0]
    # the plain order within 2%; schedules that recompute within 7% (measured worst: +6.3%,
    # the encoder at 60%, at a dropout backward: about one activation more is held than
    # modelled, not yet explained)
    assert measured <= (1.02 if plan.status == "plain" else 1.07) * plan.peak_bytes
    assert measured >= 0.85 * plan.peak_bytes


def test_checkpoint_seeds_are_valid_schedules_that_lower_the_peak():
    x = torch.randn(6, 10, 32)
    model = rematerialize(transformer(), x, budget=1.0)
    graph = remat_plans(model)[0].graph
    plain = plain_peak(graph)
    per_block = evaluate_schedule(graph, block_checkpoint_schedule(graph))
    selective = evaluate_schedule(graph, block_checkpoint_schedule(graph, selective=True))
    assert per_block.peak_memory < selective.peak_memory < plain
    assert per_block.total_cost > selective.total_cost > graph.total_cost
    assert len(set(graph.meta["block"]) - {-1}) == 3  # the three encoder layers


def test_retrace_disabled_raises_on_a_new_shape():
    x = torch.randn(4, 3, 16, 16)
    model = rematerialize(cnn(), x, budget=1.0, retrace=False)
    model(x)
    with pytest.raises(InvalidInputError, match="retrace"):
        model(x[:3])


def test_bad_input():
    x = torch.randn(4, 3, 16, 16)
    with pytest.raises(InvalidInputError, match="eval mode"):
        rematerialize(cnn().eval(), x, budget=0.5)
    with pytest.raises(InvalidInputError, match="budget"):
        rematerialize(cnn(), x, budget=-1)
    with pytest.raises(InvalidInputError, match=r"torch\.nn\.Module"):
        rematerialize(lambda t: t, x, budget=0.5)
    with pytest.raises(InfeasibleError, match="minimum"):
        rematerialize(cnn(), x, budget=0.05)
    model = rematerialize(cnn(), x, budget=1.0)
    with pytest.raises(InvalidInputError, match="already rematerialised"):
        rematerialize(model, x, budget=1.0)


class Branchy(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(4, 4)

    def forward(self, x):
        if x.sum() > 0:  # data-dependent control flow
            return self.lin(x)
        return -self.lin(x)


def test_data_dependent_control_flow_is_a_clear_error():
    with pytest.raises(InvalidInputError, match="captured as one graph"):
        rematerialize(Branchy(), torch.randn(2, 4), budget=0.9)


def test_warm_up_leaves_buffers_and_random_state_unchanged():
    x = torch.randn(4, 3, 16, 16)
    model = cnn()
    before = [b.clone() for b in model.buffers()]
    torch.manual_seed(5)
    state = torch.get_rng_state()
    rematerialize(model, x, budget=1.0)
    assert torch.equal(torch.get_rng_state(), state)
    for a, b in zip(before, model.buffers(), strict=True):
        assert torch.equal(a, b)


def test_a_schedule_that_repeats_the_free_boundary_and_sink_runs():
    """The boundary and the sink cost 0, so a solver may schedule them twice (found on GPT-2):
    the step is cut at the first boundary and gives eager's gradients."""
    from frugalml.remat.joint_codegen import schedule_modules

    captured = {}
    x = torch.randn(4, 3, 16, 16)
    model = rematerialize(cnn(), x, budget=1.0)
    backend = model._frugalml_remat
    original = backend.partition

    def spy(joint, **kw):
        from frugalml.remat.joint_graph import joint_remat_graph

        jg = joint_remat_graph(joint, kw["num_fwd_outputs"])
        plain = np.arange(jg.graph.n)
        twice = np.concatenate([plain[: jg.boundary + 1], [jg.boundary],
                                plain[jg.boundary + 1 :], [jg.sink]])  # fmt: skip
        evaluate_schedule(jg.graph, twice)  # a valid schedule of the model
        captured["modules"] = schedule_modules(jg, twice)
        return captured["modules"]

    backend.partition = spy
    y = torch.randint(0, 10, (3,))
    torch.manual_seed(3)  # the same dropout mask for both
    loss = nn.functional.cross_entropy(model(x[:3]), y)  # a new shape: partitioned by the spy
    loss.backward()
    backend.partition = original
    eager = cnn()
    torch.manual_seed(3)
    nn.functional.cross_entropy(eager(x[:3]), y).backward()
    assert "modules" in captured
    for p, q in zip(eager.parameters(), model.parameters(), strict=True):
        torch.testing.assert_close(p.grad, q.grad, rtol=1e-5, atol=1e-6)
