"""allocator_peak against independent references: steps that allocate and free tensors of
known sizes in a known order (the peak is computed by hand / by a simulation of the pattern),
and a tiny MLP whose saved activations and gradients are counted by hand."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from frugalml.errors import FrugalError, InvalidInputError  # noqa: E402
from frugalml.remat.torch_memory import AllocatorPeak, allocator_peak  # noqa: E402

MiB = 1 << 20
DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


def _empty(nbytes: int, device: str) -> torch.Tensor:
    return torch.empty(nbytes, dtype=torch.uint8, device=device)


@pytest.mark.parametrize("device", DEVICES)
def test_known_pattern_exact_peak_and_net(device):
    held_before = _empty(4 * MiB, device)  # resident before the step: not counted

    def step():
        a = _empty(1 * MiB, device)
        b = _empty(2 * MiB, device)  # 3 MiB live
        del a  # 2 MiB
        c = _empty(3 * MiB, device)  # 5 MiB: the peak
        del b  # 3 MiB
        d = _empty(1 * MiB, device)  # 4 MiB
        del d
        return c  # kept: 3 MiB at the end

    r = allocator_peak(step, device=device)
    assert isinstance(r, AllocatorPeak)
    assert r.peak_bytes == 5 * MiB
    assert r.net_bytes == 3 * MiB
    assert r.result.numel() == 3 * MiB and r.result.device.type == device
    if device == "cpu":
        assert r.start_bytes is None and r.end_bytes is None and r.method == "profiler"
        assert r.events == 7  # four allocations, three frees inside the step
    else:
        assert r.end_bytes - r.start_bytes == 3 * MiB and r.method == "cuda-stats"
    assert held_before.numel() == 4 * MiB


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_random_pattern_matches_a_simulation(seed):
    """A random sequence of allocations and frees (sizes in bytes, not multiples of anything);
    the reference replays the same sequence on a counter."""
    rng = np.random.default_rng(seed)
    ops = []  # ("alloc", size) or ("free", index into the live list)
    live_sim: list[int] = []
    level = peak = 0
    for _ in range(60):
        if live_sim and rng.random() < 0.45:
            i = int(rng.integers(len(live_sim)))
            ops.append(("free", i))
            level -= live_sim.pop(i)
        else:
            size = int(rng.integers(1, 300_000))
            ops.append(("alloc", size))
            live_sim.append(size)
            level += size
        peak = max(peak, level)

    def step():
        live = []
        for kind, arg in ops:
            if kind == "alloc":
                live.append(_empty(arg, "cpu"))
            else:
                live.pop(arg)
        return live

    r = allocator_peak(step)
    assert r.peak_bytes == peak
    assert r.net_bytes == level == sum(t.numel() for t in r.result)


def test_step_that_allocates_nothing():
    r = allocator_peak(lambda: 3)
    assert (r.peak_bytes, r.net_bytes, r.events, r.result) == (0, 0, 0, 3)


def _tiny_mlp(batch: int):
    gen = torch.Generator().manual_seed(0)
    model = torch.nn.Sequential(
        torch.nn.Linear(16, 32), torch.nn.ReLU(), torch.nn.Linear(32, 8)
    ).float()
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn(p.shape, generator=gen))
    x = torch.randn(batch, 16, generator=gen)
    return model, x


def test_mlp_forward_backward_peak_covers_saved_activations_and_net_is_the_gradients():
    batch = 64
    model, x = _tiny_mlp(batch)

    def step():
        loss = model(x).square().sum()
        loss.backward()
        return loss.detach()

    # by hand: ReLU saves its output h (B x 32 float32; the second Linear saves the same h),
    # square saves the MLP output (B x 8); the first Linear saves x and the weights (resident)
    saved_by_hand = 4 * batch * 32 + 4 * batch * 8
    # independently, what autograd packs for the backward, by distinct storage, resident
    # tensors (input, parameters) excluded
    resident = {x.untyped_storage().data_ptr()} | {
        p.untyped_storage().data_ptr() for p in model.parameters()
    }
    packed: dict[int, int] = {}

    def pack(t):
        s = t.untyped_storage()
        if s.data_ptr() not in resident:
            packed[s.data_ptr()] = s.nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        model(x).square().sum().backward()
    assert sum(packed.values()) == saved_by_hand
    model.zero_grad(set_to_none=True)

    r = allocator_peak(step)
    grad_bytes = 4 * sum(p.numel() for p in model.parameters())
    assert r.peak_bytes >= saved_by_hand + 4  # all saved activations and the loss at once
    assert r.peak_bytes >= grad_bytes + 4
    # what stays: the new .grad tensors and the returned loss (the graph is freed)
    assert r.net_bytes == grad_bytes + 4
    assert torch.equal(r.result, model(x).square().sum().detach())


def test_no_grad_forward_peak_is_below_the_training_step():
    model, x = _tiny_mlp(64)
    with torch.no_grad():
        inference = allocator_peak(lambda: model(x))
    model.zero_grad(set_to_none=True)
    training = allocator_peak(lambda: model(x).sum().backward())
    # inference: the pre-activation and h (B x 32 each) are live together at most, plus out
    assert inference.peak_bytes <= 4 * 64 * (32 + 32 + 8)
    assert inference.net_bytes == 4 * 64 * 8
    assert training.peak_bytes > inference.peak_bytes


def test_errors_propagate_and_the_profiler_is_stopped():
    def bad():
        _empty(MiB, "cpu")
        raise KeyError("inside the step")

    with pytest.raises(KeyError, match="inside the step"):
        allocator_peak(bad)
    assert allocator_peak(lambda: _empty(MiB, "cpu")).peak_bytes == MiB


def test_bad_input():
    with pytest.raises(InvalidInputError, match="callable"):
        allocator_peak(torch.zeros(3))
    with pytest.raises(InvalidInputError, match="device"):
        allocator_peak(lambda: None, device="not-a-device")
    with pytest.raises(InvalidInputError, match="'cpu' and 'cuda'"):
        allocator_peak(lambda: None, device="meta")
    if not torch.cuda.is_available():
        with pytest.raises(InvalidInputError, match="CUDA is not available"):
            allocator_peak(lambda: None, device="cuda")
    else:
        with pytest.raises(InvalidInputError, match="only"):
            allocator_peak(lambda: None, device=f"cuda:{torch.cuda.device_count()}")


def test_refuses_to_nest_in_a_running_profiler():
    from torch.profiler import profile

    with profile(profile_memory=True), pytest.raises(FrugalError, match="already running"):
        allocator_peak(lambda: None)
