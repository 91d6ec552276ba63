"""The PyTorch front end of frugalml.remat: extraction, schedule replay, in-house models.

Everything runs in float64 on the CPU. What is verified:

- replaying the plain order (``np.arange(n)``) of each in-house model's extracted graph gives the
  loss and gradients of ``loss.backward()`` on the model (max abs diff <= 1e-9);
- hand-made schedules with recomputations (forward nodes dropped and recomputed right before
  each backward use) give the same gradients, and the executor's measured memory profile, the
  sum of the distinct live storages after every step, is *equal* step by step to the
  evaluator's predicted profile for that schedule (so the measured peak equals the predicted
  one): the graph's memory and edges come from the same storages, with no tolerance needed;
- views cost no memory, keep their base's storage alive (owner -> consumer edges), and a model
  without those edges would mispredict the measured profile;
- bad schedules, inputs and models raise InvalidInputError with clear messages.
"""

from __future__ import annotations

import copy
import dataclasses

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from torch import nn  # noqa: E402

from frugalml.errors import FrugalDeprecationWarning, InvalidInputError  # noqa: E402
from frugalml.remat import models  # noqa: E402
from frugalml.remat.evaluate import evaluate_schedule  # noqa: E402
from frugalml.remat.execute import execute_schedule  # noqa: E402
from frugalml.remat.graph import RematGraph  # noqa: E402
from frugalml.remat.torch_graph import TorchRematGraph, extract_graph  # noqa: E402

F64 = torch.float64
TOL = 1e-9


# -- helpers ----------------------------------------------------------------------------------
def reference(model, loss_fn, inputs, num_model_inputs=1):
    """Loss and gradients (aligned with model.parameters()) by plain autograd on a copy."""
    m = copy.deepcopy(model)
    out = m(*inputs[:num_model_inputs])
    loss = out.sum() if loss_fn is None else loss_fn(out, *inputs[num_model_inputs:])
    loss.backward()
    return loss.detach(), [None if p.grad is None else p.grad.detach() for p in m.parameters()]


def max_grad_diff(grads, ref_grads):
    assert len(grads) == len(ref_grads)
    worst = 0.0
    for g, r in zip(grads, ref_grads, strict=True):
        assert (g is None) == (r is None)
        if g is not None:
            assert g.shape == r.shape
            worst = max(worst, float((g - r).abs().max()))
    return worst


def recompute_schedule(graph: RematGraph, forward: np.ndarray, dropped) -> np.ndarray:
    """The plain order, except that before each backward node, every dropped node it reads is
    recomputed right before it (after its own dropped inputs, recursively; each at most once
    per backward node). A dropped node's forward value is then freed after its last forward
    use. ``O(n * depth)``."""
    dropped = set(int(d) for d in dropped)
    assert all(forward[d] for d in dropped)
    sched: list[int] = []
    for v in range(graph.n):
        if not forward[v]:
            done: set[int] = set()

            def rec(u: int, done=done) -> None:
                for p in graph.preds[u]:
                    if p in dropped and p not in done:
                        rec(p)
                sched.append(u)
                done.add(u)

            for u in graph.preds[v]:
                if u in dropped and u not in done:
                    rec(u)
        sched.append(v)
    return np.asarray(sched, dtype=np.int64)


def check_replay(tg: TorchRematGraph, sched, model, inputs, ref):
    """Replay ``sched``; check the gradients and measured == predicted, step by step."""
    res = execute_schedule(tg, sched, model, inputs)
    ref_loss, ref_grads = ref
    assert abs(float(res.loss) - float(ref_loss)) <= TOL
    assert max_grad_diff(res.grads, ref_grads) <= TOL
    assert res.steps == len(sched)
    assert res.recomputations == len(sched) - tg.n
    np.testing.assert_array_equal(res.profile, res.report.profile)
    assert res.peak_bytes == res.predicted_peak == evaluate_schedule(tg.graph, sched).peak_memory
    return res


# -- the in-house models -----------------------------------------------------------------------
BUILDERS = {
    "mlp": lambda: models.mlp(depth=6, width=64, in_features=32, batch=16, dtype=F64),
    "resnet": lambda: models.resnet_cnn(channels=8, blocks=3, image_size=8, batch=4, dtype=F64),
    "transformer": lambda: models.transformer_encoder(
        layers=2, d_model=32, nhead=4, seq=16, batch=2, dtype=F64
    ),
}


@pytest.fixture(scope="module", params=sorted(BUILDERS))
def extracted(request):
    model, inputs, loss_fn = BUILDERS[request.param]()
    tg = extract_graph(model, loss_fn, inputs)
    return request.param, model, inputs, loss_fn, tg, reference(model, loss_fn, inputs)


def test_plain_schedule_matches_autograd(extracted):
    name, model, inputs, _, tg, ref = extracted
    res = check_replay(tg, np.arange(tg.n), model, inputs, ref)
    assert res.recomputations == 0 and res.rederived == 0
    assert res.cuda_peak_bytes is None
    # neither extraction nor replay touches the model's buffers (BatchNorm running stats)
    fresh, _, _ = BUILDERS[name]()
    for b, b0 in zip(model.buffers(), fresh.buffers(), strict=True):
        assert torch.equal(b, b0)


def test_graph_structure(extracted):
    name, _, _, _, tg, _ = extracted
    g = tg.graph
    assert g.n == len(tg.node_names) == len(tg.owners) > 10
    assert g.ids == tg.node_names
    assert np.all(g.cost >= 1.0) and np.all(g.memory >= 0)
    assert np.all(g.memory[tg.is_alias] == 0)
    assert np.all(tg.bytes_moved[tg.is_alias] == 0)
    assert tg.flops.sum() > 0
    # the forward part: the loss and everything it depends on (closed under predecessors)
    assert tg.is_forward[tg.node_index[tg.outputs.loss]]
    assert 0 < tg.is_forward.sum() < g.n
    for i in np.flatnonzero(tg.is_forward):
        assert all(tg.is_forward[p] for p in g.preds[i])
    assert g.meta["backward"] == [not f for f in tg.is_forward]
    # memory (from the real run's storages) = numel * element_size of the traced metadata
    fx = {nd.name: nd for nd in tg.gm.graph.nodes}
    for i, nm in enumerate(tg.node_names):
        if not tg.is_alias[i]:
            leaves = torch.utils._pytree.tree_leaves(fx[nm].meta["val"])
            dense = sum(t.numel() * t.element_size() for t in leaves if isinstance(t, torch.Tensor))
            assert g.memory[i] == dense, nm
    # every parameter gets a gradient output, in model.parameters() order
    assert len(tg.outputs.grads) == len(tg.param_names)
    assert all(gname is not None for gname in tg.outputs.grads)
    if name == "resnet":
        assert "aten.native_batch_norm.default" in tg.meta["ops"]
        assert len(tg.buffer_names) > 0
    if name == "transformer":
        assert any("scaled_dot_product" in op for op in tg.meta["ops"])


def test_recomputation_schedules(extracted):
    _, model, inputs, _, tg, ref = extracted
    g = tg.graph
    fwd = np.flatnonzero(tg.is_forward)
    plain = evaluate_schedule(g, np.arange(g.n)).peak_memory
    owners = [i for i in fwd if g.memory[i] > 0]
    cases = {
        "all forward nodes": fwd,
        "every other allocating forward node": owners[::2],
        "allocating forward nodes (views kept)": owners,
    }
    rederived = 0
    for label, dropped in cases.items():
        sched = recompute_schedule(g, tg.is_forward, dropped)
        res = check_replay(tg, sched, model, inputs, ref)
        assert res.recomputations > 0, label
        rederived += res.rederived
        if label == "all forward nodes":
            assert res.peak_bytes < plain, (label, res.peak_bytes, plain)
    # dropping the owners but keeping their views makes the kept views stale
    assert rederived > 0


def test_stale_views_must_be_dropped(extracted):
    """Ablation: if the executor kept stale views (no re-derivation), they would pin the
    storage of freed bases and the measured memory would exceed the prediction."""
    name, model, inputs, _, tg, _ = extracted
    g = tg.graph
    owners = [i for i in np.flatnonzero(tg.is_forward) if g.memory[i] > 0]
    sched = recompute_schedule(g, tg.is_forward, owners)
    keep = dataclasses.replace(tg, rederivable=np.zeros(g.n, dtype=bool))
    res = execute_schedule(keep, sched, model, inputs)
    assert res.peak_bytes >= res.predicted_peak
    if name != "mlp":  # the MLP's few stale views are not held across its peak
        assert res.peak_bytes > res.predicted_peak


# -- views --------------------------------------------------------------------------------------
class ViewNet(nn.Module):
    """Reshape, transpose, slicing and strided views of intermediate values."""

    def __init__(self) -> None:
        super().__init__()
        self.lin1 = nn.Linear(16, 32)
        self.lin2 = nn.Linear(16, 8)

    def forward(self, x):  # x: (4, 6, 16)
        h = torch.tanh(self.lin1(x))  # (4, 6, 32)
        a = h.view(4, 6, 2, 16).transpose(1, 2)  # (4, 2, 6, 16), a view of h
        b = a[:, 0]  # (4, 6, 16), a view
        c = a[:, 1, ::2]  # (4, 3, 16), a strided view
        u = torch.sin(self.lin2(b)).reshape(4, -1)  # (4, 48)
        w = (c * c).flatten(1)  # (4, 48)
        return u[:, :24].sum() + (w[:, 1:25] * u[:, ::2]).sum()


@pytest.fixture(scope="module")
def viewnet():
    torch.manual_seed(0)
    model = ViewNet().to(F64)
    x = torch.randn(4, 6, 16, dtype=F64, generator=torch.Generator().manual_seed(1))
    tg = extract_graph(model, None, (x,))
    return model, (x,), tg, reference(model, None, (x,))


def test_views_cost_nothing_and_keep_their_base(viewnet):
    model, inputs, tg, ref = viewnet
    g = tg.graph
    ops = tg.meta["ops"]
    view_ops = {"view", "permute", "transpose", "slice", "select", "expand", "unsqueeze",
                "squeeze", "alias", "t", "as_strided"}  # fmt: skip
    kinds = {op.split(".")[1] for op, a in zip(ops, tg.is_alias, strict=True) if a}
    assert {"slice", "view", "permute"} <= kinds
    for i, op in enumerate(ops):
        if op.startswith("aten.") and op.split(".")[1] in view_ops:
            assert tg.is_alias[i], op
    n_checked = 0
    for i in np.flatnonzero(tg.is_alias):
        assert g.memory[i] == 0
        for j in g.succs[i]:
            for o in tg.owners[i]:  # the base is held while the view is used
                assert o in g.preds[j]
                assert g.memory[o] > 0
                n_checked += 1
    assert n_checked > 0
    for sched in (
        np.arange(g.n),
        recompute_schedule(g, tg.is_forward, np.flatnonzero(tg.is_forward)),
        recompute_schedule(
            g, tg.is_forward, [i for i in np.flatnonzero(tg.is_forward) if g.memory[i] > 0]
        ),
    ):
        check_replay(tg, sched, model, inputs, ref)


def test_without_owner_edges_the_prediction_is_wrong(viewnet):
    """The measured pitfall: with FX edges only, a base is freed while its views live on."""
    model, inputs, tg, _ = viewnet
    g = tg.graph
    index = tg.node_index
    fx = {nd.name: nd for nd in tg.gm.graph.nodes}
    naive_preds = [
        tuple(sorted(index[a.name] for a in fx[nm].all_input_nodes if a.name in index))
        for nm in tg.node_names
    ]
    naive = RematGraph(cost=g.cost, memory=g.memory, preds=tuple(naive_preds))
    sched = np.arange(g.n)
    res = execute_schedule(tg, sched, model, inputs)
    naive_profile = evaluate_schedule(naive, sched).profile
    np.testing.assert_array_equal(res.profile, res.report.profile)
    assert np.any(res.profile > naive_profile)
    assert np.all(res.profile >= naive_profile)


# -- options --------------------------------------------------------------------------------------
def test_default_loss_and_frozen_parameters():
    model, (x, _), _ = models.mlp(depth=3, width=16, in_features=8, batch=4, dtype=F64)
    model[0].weight.requires_grad_(False)
    tg = extract_graph(model, None, x)
    assert tg.outputs.grads[0] is None and tg.num_inputs == 1
    ref = reference(model, None, (x,))
    res = check_replay(tg, np.arange(tg.n), model, (x,), ref)
    assert res.grads[0] is None and res.grads[1] is not None
    # changed parameters are picked up at replay time
    with torch.no_grad():
        model[2].weight.mul_(2.0)
    check_replay(tg, np.arange(tg.n), model, (x,), reference(model, None, (x,)))


def test_measured_cost_model_same_structure():
    model, inputs, loss_fn = models.mlp(depth=3, width=16, in_features=8, batch=4, dtype=F64)
    a = extract_graph(model, loss_fn, inputs)
    b = extract_graph(model, loss_fn, inputs, cost="measured", repeats=2)
    assert b.cost_model == "measured" and a.cost_model == "flops"
    assert a.graph.preds == b.graph.preds and a.node_names == b.node_names
    np.testing.assert_array_equal(a.graph.memory, b.graph.memory)
    assert np.all(b.graph.cost > 0) and np.all(np.isfinite(b.graph.cost))
    # flops cost = flops + 8 * bytes moved (floored at 1); an addmm is dominated by its flops
    mm = [i for i, op in enumerate(a.meta["ops"]) if "addmm" in op]
    assert mm and all(a.flops[i] > 0 for i in mm)
    np.testing.assert_allclose(a.graph.cost, np.maximum(a.flops + 8 * a.bytes_moved, 1.0))


def test_model_builders_are_seeded_and_typed():
    for build in (models.mlp, models.resnet_cnn, models.transformer_encoder):
        m1, in1, _ = build(rng=3, dtype=F64)
        m2, in2, _ = build(rng=3, dtype=torch.float32)
        m3, _, _ = build(rng=4, dtype=F64)
        p1, p2, p3 = (list(m.parameters()) for m in (m1, m2, m3))
        assert all(p.dtype == F64 for p in p1) and all(p.dtype == torch.float32 for p in p2)
        assert all(torch.allclose(a.float(), b) for a, b in zip(p1, p2, strict=True))
        assert any(not torch.equal(a, b) for a, b in zip(p1, p3, strict=True))
        assert torch.allclose(in1[0].float(), in2[0])
    # the old keyword still works (same model), with a warning; a Generator draws the seed
    with pytest.warns(FrugalDeprecationWarning, match="'seed' is deprecated"):
        m4, in4, _ = models.mlp(seed=3, dtype=F64)
    m5, in5, _ = models.mlp(rng=3, dtype=F64)
    assert all(torch.equal(a, b) for a, b in zip(m4.parameters(), m5.parameters(), strict=True))
    assert torch.equal(in4[0], in5[0])
    m6, _, _ = models.mlp(rng=np.random.default_rng(0), dtype=F64)
    m7, _, _ = models.mlp(rng=np.random.default_rng(0), dtype=F64)
    assert all(torch.equal(a, b) for a, b in zip(m6.parameters(), m7.parameters(), strict=True))
    with pytest.raises(InvalidInputError):
        models.mlp(rng=-1)
    with pytest.raises(InvalidInputError):
        models.mlp(depth=0)
    with pytest.raises(InvalidInputError):
        models.resnet_cnn(norm="layer")
    with pytest.raises(InvalidInputError):
        models.transformer_encoder(d_model=30, nhead=4)


def test_group_norm_resnet():
    model, inputs, loss_fn = models.resnet_cnn(channels=4, blocks=2, image_size=6, batch=2,
                                               norm="group", dtype=F64)  # fmt: skip
    tg = extract_graph(model, loss_fn, inputs)
    assert len(tg.buffer_names) == 0
    ref = reference(model, loss_fn, inputs)
    g = tg.graph
    check_replay(tg, recompute_schedule(g, tg.is_forward, np.flatnonzero(tg.is_forward)),
                 model, inputs, ref)  # fmt: skip


# -- bad input ------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def small():
    model, inputs, loss_fn = models.mlp(depth=2, width=8, in_features=4, batch=3, dtype=F64)
    return model, inputs, loss_fn, extract_graph(model, loss_fn, inputs)


def test_schedule_using_a_value_before_it_is_computed(small):
    model, inputs, _, tg = small
    g = tg.graph
    v = next(i for i in range(g.n) if g.preds[i])
    u = g.preds[v][0]
    sched = list(range(g.n))
    sched[u], sched[v] = sched[v], sched[u]
    with pytest.raises(InvalidInputError, match="has not been computed"):
        execute_schedule(tg, sched, model, inputs)


def test_schedule_for_another_graph(small):
    model, inputs, _, tg = small
    with pytest.raises(InvalidInputError, match="not in 0"):
        execute_schedule(tg, np.arange(tg.n + 1), model, inputs)
    with pytest.raises(InvalidInputError, match="never computed"):
        execute_schedule(tg, np.arange(tg.n - 1), model, inputs)
    with pytest.raises(InvalidInputError):
        execute_schedule(tg, [], model, inputs)
    with pytest.raises(InvalidInputError, match="TorchRematGraph"):
        execute_schedule(tg.graph, np.arange(tg.n), model, inputs)


def test_mismatched_model_or_inputs(small):
    model, (x, y), _, tg = small
    with pytest.raises(InvalidInputError, match="shape"):
        execute_schedule(tg, np.arange(tg.n), model, (x[:2], y[:2]))
    with pytest.raises(InvalidInputError, match="example inputs"):
        execute_schedule(tg, np.arange(tg.n), model, (x,))
    other, _, _ = models.mlp(depth=3, width=8, in_features=4, dtype=F64)
    with pytest.raises(InvalidInputError, match="parameters"):
        execute_schedule(tg, np.arange(tg.n), other, (x, y))
    with pytest.raises(InvalidInputError, match="dtype"):
        execute_schedule(tg, np.arange(tg.n), model.float(), (x.float(), y))


class Broken(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(5, 3)

    def forward(self, x):
        return self.lin(x)


def test_failing_forward_is_reported():
    with pytest.raises(InvalidInputError, match="forward of Broken failed") as info:
        extract_graph(Broken().to(F64), None, torch.zeros(2, 4, dtype=F64))
    assert isinstance(info.value.__cause__, RuntimeError)


def test_other_bad_models_and_arguments():
    lin = nn.Linear(4, 3).to(F64)
    x = torch.zeros(2, 4, dtype=F64)
    with pytest.raises(InvalidInputError, match="one element"):
        extract_graph(lin, lambda out: out * 2, (x,))
    with pytest.raises(InvalidInputError, match="random op"):
        extract_graph(nn.Sequential(lin, nn.Dropout(0.5)), None, (x,))
    with pytest.raises(InvalidInputError, match=r"nn\.Module"):
        extract_graph(lambda t: t, None, (x,))
    with pytest.raises(InvalidInputError, match="cost"):
        extract_graph(lin, None, (x,), cost="time")
    with pytest.raises(InvalidInputError, match="tensors"):
        extract_graph(lin, None, (x, 3))
    frozen = nn.Linear(4, 3).requires_grad_(False)
    with pytest.raises(InvalidInputError, match="requires a gradient"):
        extract_graph(frozen, None, (torch.zeros(2, 4),))


@pytest.mark.slow
@pytest.mark.parametrize("build", [models.mlp, models.resnet_cnn, models.transformer_encoder])
def test_default_size_models(build):
    model, inputs, loss_fn = build(dtype=F64)
    tg = extract_graph(model, loss_fn, inputs)
    ref = reference(model, loss_fn, inputs)
    check_replay(tg, np.arange(tg.n), model, inputs, ref)
    fwd = np.flatnonzero(tg.is_forward)
    check_replay(tg, recompute_schedule(tg.graph, tg.is_forward, fwd[::3]), model, inputs, ref)
