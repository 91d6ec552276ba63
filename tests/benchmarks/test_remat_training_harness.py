"""The rematerialisation training harness (benchmarks/remat_baselines.py) on the quick
workloads: it runs end to end and writes its JSON, checkpointing lowers the allocator peak of
ResNet-18, the recomputation FLOPs equal the blocks' forward FLOPs counted independently, and
every method trains the same parameters as eager. No timing is checked."""

from __future__ import annotations

import json

import pytest

torch = pytest.importorskip("torch")

from tests._bench_scripts import load_bench  # noqa: E402

from frugalml.errors import InvalidInputError  # noqa: E402

MODEL = "resnet18-quick"


@pytest.fixture(scope="module")
def rb():
    return load_bench("remat_baselines")


@pytest.fixture(scope="module")
def harness(rb, tmp_path_factory):
    out = tmp_path_factory.mktemp("remat_baselines")
    data = rb.main(["--models", MODEL, "--budgets", "0.5", "--repeats", "1", "--out", str(out)])
    return data, out


def _by_method(records):
    return {r["method"]: r for r in records}


def test_runs_and_writes_the_table(harness):
    data, out = harness
    saved = json.loads((out / "remat_baselines.json").read_text())
    assert saved["data"]["records"] == json.loads(json.dumps(data["records"]))
    assert saved["machine"]["torch_threads"] == 1 and "loadavg_before" in saved["machine"]
    methods = [r["method"] for r in data["records"]]
    assert methods[:3] == ["eager", "checkpoint per block", "selective checkpointing"]
    assert methods[3] == "min-cut 0.5"
    for r in data["records"]:
        assert r["model"] == MODEL
        if r["status"] == "ok":
            assert r["peak_bytes"] > 0 and r["flops"] > 0 and r["median_seconds"] > 0
    # min-cut either ran or failed and was rerun with the BatchNorm running statistics off
    first = _by_method(data["records"])["min-cut 0.5"]
    if first["status"] == "failed":
        assert methods[4] == "min-cut 0.5 (BN stats off)"
        assert data["records"][4]["status"] == "ok"


def test_checkpointing_lowers_the_allocator_peak(harness):
    recs = _by_method(harness[0]["records"])
    eager, ckpt, sac = recs["eager"], recs["checkpoint per block"], recs["selective checkpointing"]
    assert ckpt["peak_bytes"] < eager["peak_bytes"]
    assert sac["peak_bytes"] < eager["peak_bytes"]
    # every parameter gets a gradient inside the step: the peak holds them all at the end,
    # and they (plus the 4-byte loss) are what the step leaves allocated
    grads = eager["param_bytes"]
    for r in (eager, ckpt, sac):
        assert r["peak_bytes"] > grads
        assert r["net_bytes"] == grads + 4


def test_recomputation_flops_are_the_blocks_forward_flops(rb, harness):
    """Checkpoint-per-block recomputes each block's forward once: its extra FLOPs equal the
    blocks' forward FLOPs, counted here block by block on the blocks' recorded inputs."""
    from torch.utils.flop_counter import FlopCounterMode

    recs = _by_method(harness[0]["records"])
    (model, _, loss_fn, blocks), batch = rb.remat_models.build(MODEL)
    inputs = []
    hooks = [b.register_forward_hook(lambda m, a, o: inputs.append(a)) for b in blocks]
    with torch.no_grad():
        loss_fn(model, batch)
    for h in hooks:
        h.remove()
    block_flops = 0
    with torch.no_grad():
        for block, args in zip(blocks, inputs, strict=True):
            with FlopCounterMode(display=False) as counter:
                block(*[a.clone() for a in args])  # clone: in-place ReLU on a shortcut
            block_flops += counter.get_total_flops()
    assert block_flops > 0
    assert recs["checkpoint per block"]["flops"] - recs["eager"]["flops"] == block_flops
    # selective checkpointing saves the convolutions: nothing with FLOPs is recomputed
    assert recs["selective checkpointing"]["flops"] == recs["eager"]["flops"]


def test_every_method_trains_eagers_parameters(rb, harness):
    for r in harness[0]["records"]:
        if r["status"] != "ok":
            continue
        assert r["params_check"] == "required"  # ResNet-18 has no dropout
        assert r["params_equal"], (r["method"], r["params_rel_diff"])
        assert r["params_rel_diff"] <= rb.PARAMS_RTOL


def test_checkpointing_a_gpt2_with_dropout_keeps_eagers_parameters(rb):
    """GPT-2 (default dropout 0.1): the checkpoints restore the RNG state for the
    recomputation, so from one seed the masks, and the trained parameters, are eager's."""
    pytest.importorskip("transformers")  # extra remat-bench
    (model, _, loss_fn, blocks), batch = rb.remat_models.build("gpt2-quick")
    ref = rb.train_params(rb.eager(model, loss_fn, batch, blocks), steps=2)
    for factory in (rb.checkpoint_per_block, rb.selective_checkpointing):
        step = factory(model, loss_fn, batch, blocks)
        assert rb.params_diff(rb.train_params(step, steps=2), ref) == 0.0
    # the methods trained copies: the model itself is untouched
    assert rb.params_diff([p.detach() for p in model.parameters()], ref) > 0


def test_measure_with_sgd_is_train_params(rb):
    """The timed steps of measure(sgd_lr=...) are train_params' SGD steps."""
    (model, _, loss_fn, blocks), batch = rb.remat_models.build(MODEL)
    measured = rb.measure(rb.eager(model, loss_fn, batch, blocks), repeats=2, sgd_lr=1e-3)
    ref = rb.train_params(rb.eager(model, loss_fn, batch, blocks), steps=2, lr=1e-3)
    assert len(measured["seconds"]) == 2
    assert rb.params_diff(measured["params"], ref) == 0.0
    untrained = [p.detach() for p in model.parameters()]
    assert rb.params_diff(untrained, ref) > 0


def test_train_params_detects_a_different_gradient(rb):
    """The parameter check can fail: a step with a perturbed loss trains other parameters."""
    (model, _, loss_fn, blocks), batch = rb.remat_models.build(MODEL)
    ref = rb.train_params(rb.eager(model, loss_fn, batch, blocks), steps=1)
    other = rb.eager(model, lambda m, b: 1.01 * loss_fn(m, b), batch, blocks)
    assert rb.params_diff(rb.train_params(other, steps=1), ref) > rb.PARAMS_RTOL


def test_bad_input(rb):
    (model, _, loss_fn, _blocks), batch = rb.remat_models.build(MODEL)
    with pytest.raises(InvalidInputError, match="budget"):
        rb.min_cut(0.0)
    with pytest.raises(InvalidInputError, match="budget"):
        rb.min_cut(1.5)
    with pytest.raises(InvalidInputError, match="not submodules"):
        rb.eager(model, loss_fn, batch, [torch.nn.Linear(2, 2)])
    with pytest.raises(InvalidInputError, match="repeats"):
        rb.measure(lambda: None, repeats=0)
    with pytest.raises(KeyError, match="unknown workload"):
        rb.remat_models.build("resnet1000")
    with pytest.raises(InvalidInputError, match="batch_size"):
        rb.remat_models.build(MODEL)[0][1](0, 0)
