"""Step 2 of :func:`~frugalml.quant.convert.quantize_model`: one pass over the calibration data.

Choukroun, Kravchik, Yang and Kisilev, "Low-bit Quantization of Neural Networks for Efficient
Inference" (ICCV Workshops 2019, arXiv:1902.06822) calibrate without labels: the calibration
inputs run through the (float) model copy under ``torch.no_grad()`` while forward pre-hooks on
the layers to quantize feed each layer's input to its
:class:`~frugalml.quant.observers.LayerObserver` (range, histogram or random sample, and with
``rounding="gptq"`` the input Gram matrix; Linear layers fed the very same tensor, such as
attention's query/key/value projections, share one Gram product). The MACs of each layer are
counted from the input shapes of the first batch. NaN or inf in the inputs or in any layer's
input, and a model that fails on a batch, raise :class:`~frugalml.errors.InvalidInputError`.

Torch is required (extra ``quant``); this module imports it when it is imported.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .._optional import require
from .._resources import check_memory
from .._results import ResultRepr
from ..errors import InvalidInputError
from ..progress import Progress

require("torch", what="frugalml.quant.quantize_model", extra="quant")

import torch  # noqa: E402
from torch import nn  # noqa: E402

from .calibration_data import model_device, run_calibration  # noqa: E402
from .modules import layer_macs  # noqa: E402
from .observers import LayerObserver  # noqa: E402
from .prepare import PreparedModel  # noqa: E402

__all__ = ["Calibration", "calibrate_layers", "gram_bytes"]


@dataclass(eq=False, repr=False)
class Calibration(ResultRepr):
    """What :func:`calibrate_layers` recorded.

    ``observers``: one :class:`~frugalml.quant.observers.LayerObserver` per candidate layer (in
    model order); ``batches``: calibration calls made; ``first_samples``: the leading dimension
    of the first tensor of the first batch (MACs are per sample of it); ``device``: the
    model's device, where the inputs were sent.
    """

    observers: dict[str, LayerObserver]
    batches: int
    first_samples: int
    device: torch.device | None

    @property
    def called(self) -> list[str]:
        """Layers that calibration called at least once, in model order."""
        return [name for name, ob in self.observers.items() if ob.calls > 0]

    @property
    def not_called(self) -> list[str]:
        """Layers never called (their parent reads ``.weight`` directly, or they are unused)."""
        return [name for name, ob in self.observers.items() if ob.calls == 0]

    def summary(self) -> str:
        return (
            f"calibration: {self.batches} batches, {len(self.called)} layers observed, "
            f"{len(self.not_called)} never called"
        )


def gram_bytes(modules: dict[str, nn.Module], names: list[str]) -> int:
    """Bytes of the float64 Gram matrices (``d x d`` per group) of the layers ``names``."""
    total = 0
    for name in names:
        m = modules[name]
        groups = int(getattr(m, "groups", 1))
        d = m.weight[0].numel()
        total += 8 * groups * d * d
    return total


def calibrate_layers(
    prepared: PreparedModel,
    calib_data: Any,
    *,
    method: str = "mmse",
    quantize_activations: bool = True,
    gram: bool = False,
    progress: Progress | None = None,
) -> Calibration:
    """Run ``calib_data`` through ``prepared.model`` and observe its candidate layers.

    ``calib_data`` as for :func:`~frugalml.quant.convert.quantize_model` (tensors are moved to
    the model's device); ``method``: the scale method, which decides what each observer keeps
    (a histogram for ``"mmse"``, a sample for ``"percentile"``, ``"aciq"``, ``"histogram"``,
    the range only for ``"minmax"``; nothing without ``quantize_activations``); ``gram``: also
    accumulate the input Gram matrices (checked against the memory limit first);
    ``progress(message, fraction)`` after each batch (fraction 0 when the number of batches is
    not known). Arguments are assumed validated. Cost: one forward pass plus
    ``O(input values)`` per layer per batch, ``O(rows d^2)`` with ``gram``.
    """
    candidates = prepared.candidates
    modules = prepared.modules
    qmodel = prepared.model
    say = progress or (lambda s, f: None)
    if gram:  # one float64 Gram matrix (d x d per group) per layer until the conversion ends
        check_memory(
            gram_bytes(modules, candidates),
            f'rounding="gptq" over {len(candidates)} layers (their Gram matrices)',
            fix='use rounding="nearest" or skip= the widest layers',
        )
    need_hist = quantize_activations and method == "mmse"
    need_sample = quantize_activations and method in ("percentile", "aciq", "histogram")
    observers = {
        name: LayerObserver(need_hist, need_sample, modules[name] if gram else None)
        for name in candidates
    }
    state: dict[str, Any] = {"batch": 0, "gram_src": None}

    def make_hook(name: str) -> Callable[..., None]:
        ob = observers[name]

        def hook(mod: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
            x = args[0] if args else kwargs.get("input")
            if not isinstance(x, torch.Tensor):
                return
            src = x
            x = x.detach()
            if not bool(torch.isfinite(x).all()):
                raise InvalidInputError(
                    f"NaN or inf reached the input of layer {name!r} during calibration "
                    f"(batch {state['batch']}); check the model and calib_data"
                )
            ob.calls += 1
            if state["batch"] == 0:
                ob.macs_first += layer_macs(mod, tuple(x.shape))
            if ob.gram is not None and x.numel() and torch.is_floating_point(x):
                # Linear layers fed the very same tensor (attention's query/key/value
                # projections) share one Gram product
                cached = state["gram_src"]
                linear = type(mod) is nn.Linear
                if (
                    linear
                    and cached is not None
                    and cached[0] is src
                    and cached[1] == (src._version, mod.in_features)
                ):
                    ob.gram.add(*cached[2])
                else:
                    delta = ob.gram.batch_gram(x)
                    ob.gram.add(*delta)
                    state["gram_src"] = (
                        (src, (src._version, mod.in_features), delta) if linear else None
                    )
            if not quantize_activations or x.numel() == 0:
                return
            ob.record_values(x)

        return hook

    handles = [
        modules[name].register_forward_pre_hook(make_hook(name), with_kwargs=True)
        for name in candidates
    ]

    def before(i: int) -> None:
        state["batch"] = i

    def after(i: int, total: int | None) -> None:
        state["batch"] = i + 1
        say(f"calibration batch {i + 1}", (i + 1) / total if total else 0.0)

    try:
        batches, first_samples = run_calibration(qmodel, calib_data, before=before, after=after)
    finally:
        for h in handles:
            h.remove()
        state["gram_src"] = None
    return Calibration(
        observers=observers,
        batches=batches,
        first_samples=first_samples,
        device=model_device(qmodel),
    )
