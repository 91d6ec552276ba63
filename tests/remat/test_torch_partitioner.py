"""PyTorch's min-cut partitioner measured in frugalml.remat's units (float64, CPU).

What is verified:

- the captured forward and backward graphs give the loss and gradients of plain autograd
  (<= 1e-6) for the in-house MLP at budgets 1.0 and 0.5 (and, marked slow, for the ResNet and
  the Transformer at 0.5), and for a model with ``loss_fn=None``;
- the cost model is extract_graph's: measuring the extracted joint graph with the partitioner
  module's interpreter reproduces every node cost of ``tg.graph`` exactly, and its peak is the
  executor's plain-order peak for the MLP;
- at budget 1.0 the MLP's measured peak is the plain-order peak of ``execute_schedule`` (up to
  the 8-byte incoming gradient) and its cost is the joint graph's (no real recomputation);
- at budget 0.5 the partitioner saves fewer bytes for the backward, recomputes forward ops at a
  positive cost overhead, and its peak is not above the peak at 1.0. For the MLP the peak is in
  fact *equal*: it is reached in the backward at the last layer, after the recomputed chain of
  forward activations has been rebuilt (PyTorch recomputes each forward op at most once, right
  where the backward first needs it), so only the forward's peak and the saved bytes shrink.
  For the ResNet and the Transformer the overall peak drops too (slow test);
- bad budgets, models and baselines raise InvalidInputError; a torch without the partitioner
  API or without networkx raises BackendUnavailableError.
"""

from __future__ import annotations

import copy
import math
import sys

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("networkx")

from torch import nn  # noqa: E402

from frugalml.errors import BackendUnavailableError, InvalidInputError  # noqa: E402
from frugalml.remat import models  # noqa: E402
from frugalml.remat.execute import execute_schedule  # noqa: E402
from frugalml.remat.torch_graph import extract_graph  # noqa: E402
from frugalml.remat.torch_partitioner import (  # noqa: E402
    PartitionerResult,
    measure_graph,
    partitioner_schedule,
)

F64 = torch.float64
TOL = 1e-6


def reference(model, loss_fn, inputs):
    """Loss and gradients (aligned with model.parameters()) by plain autograd on a copy."""
    m = copy.deepcopy(model)
    out = m(inputs[0])
    loss = out.sum() if loss_fn is None else loss_fn(out, *inputs[1:])
    loss.backward()
    return loss.detach(), [None if p.grad is None else p.grad.detach() for p in m.parameters()]


def max_grad_diff(res: PartitionerResult, model, loss_fn, inputs) -> float:
    ref_loss, ref_grads = reference(model, loss_fn, inputs)
    assert len(res.grads) == len(ref_grads)
    worst = float((res.loss - ref_loss).abs())
    for g, r in zip(res.grads, ref_grads, strict=True):
        assert (g is None) == (r is None)
        if g is not None:
            assert g.shape == r.shape and g.dtype == F64
            worst = max(worst, float((g - r).abs().max()))
    return worst


@pytest.fixture(scope="module")
def mlp_case():
    model, inputs, loss_fn = models.mlp(dtype=F64)
    tg = extract_graph(model, loss_fn, inputs)
    plain = execute_schedule(tg, np.arange(tg.n), model, inputs)
    runs = {
        b: partitioner_schedule(model, loss_fn, inputs, memory_budget=b, baseline=tg)
        for b in (1.0, 0.5)
    }
    return model, inputs, loss_fn, tg, plain, runs


# -- gradients --------------------------------------------------------------------------------
@pytest.mark.parametrize("budget", [1.0, 0.5])
def test_mlp_gradients_match_autograd(mlp_case, budget):
    model, inputs, loss_fn, _tg, _plain, runs = mlp_case
    res = runs[budget]
    assert res.memory_budget == budget
    assert max_grad_diff(res, model, loss_fn, inputs) <= TOL
    assert res.max_grad_diff <= TOL  # the function's own check agrees


def test_default_loss_and_frozen_parameter():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(8, 16), nn.Tanh(), nn.Linear(16, 4), nn.Tanh()).to(F64)
    model[0].bias.requires_grad_(False)
    x = torch.randn(5, 8, dtype=F64)
    res = partitioner_schedule(model, None, (x,), memory_budget=0.5)
    assert res.grads[1] is None
    assert max_grad_diff(res, model, None, (x,)) <= TOL
    assert res.max_grad_diff <= TOL


# -- units: the same cost and memory model as extract_graph / execute_schedule -----------------
def test_measure_graph_reproduces_extracted_costs(mlp_case):
    model, inputs, _loss_fn, tg, plain, _runs = mlp_case
    m = measure_graph(tg.gm, tg.flat_inputs(model, inputs))
    assert list(m.costs) == list(tg.node_names)
    np.testing.assert_array_equal(np.array(list(m.costs.values())), tg.graph.cost)
    assert m.total_cost == pytest.approx(float(tg.graph.cost.sum()), rel=1e-12)
    # value-granular liveness never holds more than the executor; equal for the MLP
    assert m.peak_bytes == plain.peak_bytes
    assert m.profile.shape == (tg.n,)


def test_budget_one_matches_plain_order(mlp_case):
    *_, plain, runs = mlp_case
    r = runs[1.0]
    # the only difference is the 8-byte gradient of the loss, an input of the backward graph
    assert abs(r.peak_bytes - plain.peak_bytes) <= 0.01 * plain.peak_bytes
    assert abs(r.overhead) < 0.01
    assert r.joint_overhead is not None and abs(r.joint_overhead) < 1e-3
    assert r.joint_peak_bytes is not None
    assert r.total_cost == pytest.approx(r.forward_cost + r.backward_cost)
    assert r.baseline_cost == pytest.approx(float(plain.report.total_cost))


# -- the budget trades memory for compute -----------------------------------------------------
def test_lower_budget_saves_less_and_recomputes(mlp_case):
    *_, runs = mlp_case
    hi, lo = runs[1.0], runs[0.5]
    assert lo.peak_bytes <= hi.peak_bytes
    assert lo.saved_bytes < hi.saved_bytes
    assert lo.forward_peak_bytes < hi.forward_peak_bytes
    assert lo.n_recomputed > hi.n_recomputed
    assert lo.recompute_cost > 0
    assert lo.total_cost > hi.total_cost
    assert lo.overhead >= 0
    assert lo.joint_overhead is not None and lo.joint_overhead > 0
    assert int(lo.profile.max()) == lo.peak_bytes
    for r in (hi, lo):
        assert r.n_saved >= 1 and r.n_forward_ops >= 1 and r.n_backward_ops >= 1
        assert 0 <= r.partition_seconds <= r.seconds
        assert "budget" in r.summary()


# -- errors -----------------------------------------------------------------------------------
@pytest.mark.parametrize("budget", [-0.1, 1.5, -1, 2, math.nan, math.inf, True, "0.5", None])
def test_bad_budget_raises(budget):
    model, inputs, loss_fn = models.mlp(depth=2, width=4, batch=2, dtype=F64)
    with pytest.raises(InvalidInputError, match="memory_budget"):
        partitioner_schedule(model, loss_fn, inputs, memory_budget=budget)


def test_bad_model_and_baseline_raise(mlp_case):
    model, inputs, loss_fn, tg, *_ = mlp_case
    with pytest.raises(InvalidInputError, match=r"nn\.Module"):
        partitioner_schedule(lambda x: x, loss_fn, inputs, memory_budget=1.0)
    with pytest.raises(InvalidInputError, match="baseline"):
        partitioner_schedule(model, loss_fn, inputs, memory_budget=1.0, baseline=tg.graph)
    other, other_inputs, _ = models.mlp(depth=2, width=4, batch=2, dtype=F64)
    with pytest.raises(InvalidInputError):
        partitioner_schedule(other, loss_fn, other_inputs, memory_budget=1.0, baseline=tg)


@pytest.mark.parametrize("module", ["torch._functorch.partitioners", "networkx"])
def test_missing_backend_raises(monkeypatch, module):
    model, inputs, loss_fn = models.mlp(depth=2, width=4, batch=2, dtype=F64)
    monkeypatch.setitem(sys.modules, module, None)  # makes `import module` fail
    with pytest.raises(BackendUnavailableError, match="partitioner"):
        partitioner_schedule(model, loss_fn, inputs, memory_budget=1.0)


# -- larger models ----------------------------------------------------------------------------
@pytest.mark.slow
@pytest.mark.parametrize("build", [models.resnet_cnn, models.transformer_encoder])
def test_larger_models(build):
    model, inputs, loss_fn = build(dtype=F64)
    tg = extract_graph(model, loss_fn, inputs)
    hi = partitioner_schedule(model, loss_fn, inputs, memory_budget=1.0, baseline=tg)
    lo = partitioner_schedule(model, loss_fn, inputs, memory_budget=0.5, baseline=tg)
    for r in (hi, lo):
        assert max_grad_diff(r, model, loss_fn, inputs) <= TOL
    assert lo.peak_bytes < hi.peak_bytes
    assert lo.saved_bytes < hi.saved_bytes
    assert lo.recompute_cost > 0 and lo.total_cost > hi.total_cost
    assert hi.joint_overhead is not None and abs(hi.joint_overhead) < 1e-3
