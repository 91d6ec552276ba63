"""Scratch memory of an op: what the allocator hands out while a kernel runs, beyond its
outputs.

Kernels allocate temporaries through PyTorch's allocator: measured on this CPU (torch 2.13,
float32, a 16x32x32x32 activation), ``convolution_backward`` peaks at 4.2 MB above its 2.1 MB
of outputs, ``convolution`` at 2.1 MB above its output, ``native_batch_norm_backward`` at 2 MB.
A memory model that counts only outputs and held values therefore underestimates every step
where such an op runs, and a budget solved with it is not a real cap (the peak of a
rematerialised step is usually in the backward, where these ops run).

:func:`op_workspace` runs the op of an FX node once on real tensors of the traced shapes,
strides and dtypes (random floats; zeros for integer and boolean tensors, valid as indices and
masks) and returns ``peak - bytes of the fresh outputs`` (at least 0), with the peak from
:func:`~frugalml.remat.torch_memory.allocator_peak` (CPU profiler allocation events, or the
CUDA allocator's statistics). Results are cached per (op, argument signature), so a model with
repeated blocks measures each distinct op once. Ops whose inputs are smaller than
``min_bytes`` are not measured (0): their scratch cannot matter at the scale of a budget.

Paper: Bartan et al., "Moccasin" (ICML 2023, arXiv 2304.14463) for the memory model these
temporaries extend (each becomes a node held only while its op runs, see
:mod:`~frugalml.remat.joint_graph`).
"""

from __future__ import annotations

import threading
from typing import Any

from .._optional import require
from .torch_memory import allocator_peak

require("torch", what="the PyTorch rematerialisation front end", extra="remat")

import torch  # noqa: E402
import torch.fx  # noqa: E402
from torch.utils import _pytree as pytree  # noqa: E402

__all__ = ["MIN_BYTES", "op_workspace"]

#: inputs smaller than this (bytes, summed) are not measured
MIN_BYTES = 1 << 16

_cache: dict[Any, int] = {}
_lock = threading.Lock()


def _signature(value: Any) -> Any:
    if isinstance(value, torch.Tensor):
        return ("T", tuple(value.shape), tuple(value.stride()), str(value.dtype),
                value.device.type)  # fmt: skip
    if isinstance(value, (list, tuple)):
        return tuple(_signature(v) for v in value)
    if isinstance(value, (int, float, bool, str, type(None), torch.dtype, torch.device)):
        return value
    return repr(value)


def _real(value: Any, gen: torch.Generator) -> Any:
    if not isinstance(value, torch.Tensor):
        return value
    size = 0
    if value.numel():
        size = 1 + sum((n - 1) * st for n, st in zip(value.shape, value.stride(), strict=True))
    if value.dtype.is_floating_point:
        flat = torch.randn(size, generator=gen, dtype=value.dtype)
    else:
        flat = torch.zeros(size, dtype=value.dtype)
    return flat.as_strided(tuple(value.shape), tuple(value.stride())).to(value.device)


def op_workspace(fx_node: Any, *, min_bytes: int = MIN_BYTES) -> int:
    """Scratch bytes of ``fx_node``'s op on its traced arguments (see the module doc); 0 for
    a node that is not an op call, small inputs, or an op that fails on synthetic data."""
    target = fx_node.target
    if fx_node.op != "call_function" or not isinstance(target, torch._ops.OpOverload):
        return 0
    args, kwargs = pytree.tree_map(
        lambda a: a.meta.get("val") if isinstance(a, torch.fx.Node) else a,
        (fx_node.args, fx_node.kwargs),
    )
    tensors = [t for t in pytree.tree_leaves((args, kwargs)) if isinstance(t, torch.Tensor)]
    if sum(t.untyped_storage().nbytes() for t in tensors) < min_bytes:
        return 0
    key = (target, _signature(args), _signature(kwargs))
    with _lock:
        if key in _cache:
            return _cache[key]
    from torch._subclasses.fake_tensor import unset_fake_temporarily

    with unset_fake_temporarily():  # a partitioner runs under the tracing fake mode
        scratch = _measure(target, args, kwargs, tensors[0].device if tensors else None)
    with _lock:
        _cache[key] = scratch
    return scratch


def _measure(target: Any, args: Any, kwargs: Any, device: Any) -> int:
    gen = torch.Generator().manual_seed(0)
    try:
        real_args, real_kwargs = pytree.tree_map(lambda v: _real(v, gen), (args, kwargs))
    except Exception:  # a value that cannot be materialised (symbolic, opaque): unmeasured
        return 0
    outputs: list[Any] = []

    def run() -> None:
        with torch.no_grad():
            outputs.append(target(*real_args, **real_kwargs))

    state = torch.get_rng_state()
    try:
        peak = allocator_peak(run, device=device).peak_bytes
    except Exception:  # an op that rejects synthetic values (e.g. data-dependent checks)
        return 0
    finally:
        torch.set_rng_state(state)
    seen = {t.untyped_storage().data_ptr() for t in pytree.tree_leaves((real_args, real_kwargs))
            if isinstance(t, torch.Tensor)}  # fmt: skip
    out_bytes = 0
    for t in pytree.tree_leaves(outputs):
        if isinstance(t, torch.Tensor):
            ptr = t.untyped_storage().data_ptr()
            if ptr not in seen:
                seen.add(ptr)
                out_bytes += t.untyped_storage().nbytes()
    return max(0, int(peak) - out_bytes)
