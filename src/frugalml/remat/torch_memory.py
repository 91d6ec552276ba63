"""The real allocator peak of one step of PyTorch code.

:func:`allocator_peak` runs a callable once and reports the most bytes that PyTorch's
allocator held *above the level at the start* while it ran, the quantity that
rematerialisation lowers. Unlike the storage-liveness model of
:mod:`frugalml.remat.torch_measure` (which counts what a graph's values need), this is what
the allocator actually handed out: autograd's saved tensors, temporaries inside kernels,
gradient buffers, copies made by wrappers such as ``torch.utils.checkpoint`` or a
``torch.compile`` backend. It is how the rematerialisation benchmark compares MOCCASIN schedules
(Bartan, Li, Teague, Lott, Dilkina, "Moccasin: Efficient Tensor Rematerialization for Neural
Networks", ICML 2023, arXiv 2304.14463) with the methods PyTorch users already have.

Method:

- **CPU.** The step runs under ``torch.profiler.profile(activities=[CPU],
  profile_memory=True)``. The CPU allocator reports every allocation and every free to the
  profiler as an ``Allocation`` event with a signed ``alloc_size`` (bytes; negative for a
  free) and a timestamp (``prof.profiler.kineto_results.experimental_event_tree()``, the same
  events ``torch.profiler._memory_profiler`` reads; the ``[memory]`` entries of
  ``prof.events()`` are only the frees and allocations not attributed to an operator, so they
  are not enough). The events of the measured device are put in chronological order and
  summed; the peak is the largest prefix sum (at least 0), the net change the total. Cost:
  ``O(E log E)`` for ``E`` events, plus the profiler's overhead while the step runs (do not
  time a step through this function). The allocator does not know the sizes of blocks
  allocated before profiling started, so *frees of memory allocated before the step are not
  seen* (PyTorch warns once, "Memory block of unknown size was allocated before the profiling
  started"): the CPU peak is exact when the step frees only what it allocated, and an upper
  bound of the true peak above the start otherwise (e.g. set gradients to ``None`` before a
  training step rather than freeing last step's gradients inside it). The absolute levels are
  unknown on the CPU (``start_bytes``/``end_bytes`` are ``None``).
- **CUDA.** ``torch.cuda.synchronize``, ``torch.cuda.reset_peak_memory_stats``, the step,
  ``torch.cuda.synchronize``, then ``max_memory_allocated - memory_allocated(at the start)``
  (the caching allocator's statistics, bytes of live blocks including rounding to its
  512-byte granularity, not the reserved cache). Exact; ``O(1)`` overhead.

Only memory obtained through PyTorch's allocator is counted (not, e.g., oneDNN scratch buffers
that a library allocates itself, nor Python objects).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .._optional import require
from ..errors import FrugalError, InvalidInputError

require("torch", what="the allocator peak of a PyTorch step", extra="remat")

import torch  # noqa: E402

__all__ = ["AllocatorPeak", "allocator_peak"]


@dataclass(frozen=True)
class AllocatorPeak:
    """The memory of one run of a step, in bytes.

    ``peak_bytes``: the most bytes allocated above the level at the start (``>= 0``);
    ``net_bytes``: the level at the end minus the level at the start (what the step left
    allocated, e.g. its returned tensors; negative when it freed earlier memory that the
    method sees); ``start_bytes`` / ``end_bytes``: the allocator's absolute levels (CUDA;
    ``None`` on the CPU, whose allocator keeps no total); ``device``: the measured device;
    ``method``: ``"profiler"`` (CPU) or ``"cuda-stats"``; ``events``: allocation and free events
    seen (CPU; 0 for CUDA); ``result``: what the step returned.
    """

    peak_bytes: int
    net_bytes: int
    start_bytes: int | None
    end_bytes: int | None
    device: str
    method: str
    events: int
    result: Any = None

    def summary(self) -> str:
        return (
            f"peak {self.peak_bytes / 2**20:.2f} MiB above the start on {self.device} "
            f"(net {self.net_bytes / 2**20:+.2f} MiB; {self.method})"
        )


def _device(device: Any) -> torch.device:
    if device is None:
        return torch.device("cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise InvalidInputError(
            f"device must be 'cpu', 'cuda', 'cuda:N' or a torch.device, got {device!r}"
        ) from exc
    if dev.type == "cpu":
        return dev
    if dev.type != "cuda":
        raise InvalidInputError(
            f"allocator_peak measures the 'cpu' and 'cuda' allocators, got device {device!r}; "
            "run the step on one of those"
        )
    if not torch.cuda.is_available():
        raise InvalidInputError(
            f"device {device!r} asked for but CUDA is not available here; use device='cpu'"
        )
    if dev.index is None:
        dev = torch.device("cuda", torch.cuda.current_device())
    if dev.index >= torch.cuda.device_count():
        raise InvalidInputError(
            f"device {device!r}: there are only {torch.cuda.device_count()} CUDA devices"
        )
    return dev


def _cpu_events(prof: Any) -> list[tuple[int, int]]:
    """``(time_ns, signed bytes)`` of the CPU allocator's events, in chronological order."""
    from torch._C._profiler import _EventType

    events, stack = [], list(prof.profiler.kineto_results.experimental_event_tree())
    while stack:
        node = stack.pop()
        stack.extend(node.children)
        if node.tag == _EventType.Allocation and node.extra_fields.device.type == "cpu":
            events.append((node.start_time_ns, int(node.extra_fields.alloc_size)))
    events.sort(key=lambda e: e[0])  # a stable sort: ties keep the tree's order
    return events


def _peak_cpu(step: Callable[[], Any]) -> AllocatorPeak:
    from torch.profiler import ProfilerActivity, profile

    if torch._C._autograd._profiler_enabled():
        raise FrugalError(
            "allocator_peak measures the CPU with the PyTorch profiler, and a profiler is "
            "already running (nesting one would stop the outer one); call it outside "
            "torch.profiler.profile / torch.autograd.profiler.profile"
        )
    prof = profile(activities=[ProfilerActivity.CPU], profile_memory=True)
    prof.__enter__()
    try:
        result = step()
    finally:
        prof.__exit__(None, None, None)
    level = peak = 0
    events = _cpu_events(prof)
    for _, size in events:
        level += size
        peak = max(peak, level)
    return AllocatorPeak(peak, level, None, None, "cpu", "profiler", len(events), result)


def _peak_cuda(step: Callable[[], Any], dev: torch.device) -> AllocatorPeak:
    torch.cuda.synchronize(dev)
    start = torch.cuda.memory_allocated(dev)
    torch.cuda.reset_peak_memory_stats(dev)
    result = step()
    torch.cuda.synchronize(dev)
    peak = torch.cuda.max_memory_allocated(dev)
    end = torch.cuda.memory_allocated(dev)
    return AllocatorPeak(peak - start, end - start, start, end, str(dev), "cuda-stats", 0, result)


def allocator_peak(step: Callable[[], Any], *, device: Any = None) -> AllocatorPeak:
    """Run ``step()`` once and measure the allocator's peak above its level at the start.

    ``device``: ``"cpu"`` (the default, also for ``None``), ``"cuda"``, ``"cuda:N"`` or a
    ``torch.device``: whose allocator to measure (the step itself decides where it runs). On the
    CPU the profiler's allocation events are summed in order; on CUDA the caching allocator's
    peak statistics are read (see the module docstring for both methods and the CPU caveat
    about frees of memory allocated before the step). What ``step`` returns is kept alive
    until the end is measured (it counts in ``net_bytes``) and is returned in
    ``AllocatorPeak.result``.

    Warm a step up (compilation, lazy initialisation, caches) before measuring it, or the
    peak includes that. Raises :class:`~frugalml.errors.InvalidInputError` for a ``step`` that
    is not callable or an unknown or unavailable device, :class:`~frugalml.errors.FrugalError`
    when a PyTorch profiler is already running (CPU); exceptions of ``step``
    propagate.
    """
    if not callable(step):
        raise InvalidInputError(
            f"step must be a callable taking no arguments, got {type(step).__name__}; wrap "
            "the code to measure in a function (e.g. lambda: model(x).sum().backward())"
        )
    dev = _device(device)
    return _peak_cpu(step) if dev.type == "cpu" else _peak_cuda(step, dev)
