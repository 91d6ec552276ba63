"""Second low-bit *input* tensors for the layers whose activations quantize worst.

Choukroun, Kravchik, Yang and Kisilev, "Low-bit Quantization of Neural Networks for Efficient
Inference" (ICCV Workshops 2019, arXiv:1902.06822, Sec. 3.3) give the worst-quantized weight
kernels a second low-bit tensor fitted to their residual. :func:`add_input_residuals` applies
the same idea to layer inputs, where low-bit (A4) error concentrates:
``x ~ a q + a2 q2`` with ``a2`` the MMSE scale of the calibration residual ``x - a q``, for the
layers with the largest relative input error, within a budget of extra multiply-accumulates.

Torch is required (extra ``quant``); this module imports it when it is imported.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

import numpy as np

from .._optional import require

require("torch", what="frugalml.quant.quantize_model", extra="quant")

import torch  # noqa: E402
from torch import nn  # noqa: E402

from .calibrate import ActivationHistogram, mmse_from_histogram  # noqa: E402
from .calibration_data import iter_calibration_batches, to_device  # noqa: E402
from .modules import QuantizedLayer  # noqa: E402
from .report import LayerReport  # noqa: E402

__all__ = ["add_input_residuals"]


def add_input_residuals(
    qmodel: nn.Module,
    calib_data: Any,
    device: torch.device | None,
    reports: list[LayerReport],
    qlayers: dict[str, QuantizedLayer],
    a_bits: int,
    budget: float,
) -> list[LayerReport]:
    """Second input tensors for the layers with the largest relative input quantization error,
    within ``budget`` x the quantized MACs (``act_residual`` of
    :func:`~frugalml.quant.convert.quantize_model`). Returns the updated reports.

    ``qmodel``: the converted model; ``qlayers``: its quantized layers by name (those of
    ``reports``, in model order); ``device``: where the calibration tensors go. One more pass
    over ``calib_data`` measures each layer's ``||x - a q||^2 / ||x||^2`` and histograms the
    residuals; layers are then taken worst first while their extra MACs fit the budget, each
    getting an MMSE residual scale (``QuantizedLayer.set_input_residual``). Cost: one forward
    pass plus ``O(values)`` per layer.
    """
    sq = {name: 0.0 for name in qlayers}
    err = {name: 0.0 for name in qlayers}
    hists = {name: ActivationHistogram() for name in qlayers}

    def make_hook(name: str) -> Callable[..., None]:
        def hook(mod: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
            x = args[0] if args else kwargs.get("input")
            if not isinstance(x, torch.Tensor) or x.numel() == 0:
                return
            x = x.detach()
            r = x - mod.fake_quantize_input(x)
            sq[name] += float((x.double() ** 2).sum())
            err[name] += float((r.double() ** 2).sum())
            hists[name].update(r.to(device="cpu", dtype=torch.float32).reshape(-1).numpy())

        return hook

    handles = [
        q.register_forward_pre_hook(make_hook(name), with_kwargs=True)
        for name, q in qlayers.items()
    ]
    try:
        with torch.no_grad():
            for args, kwargs in iter_calibration_batches(calib_data):
                args = tuple(to_device(a, device) for a in args)
                kwargs = {k: to_device(v, device) for k, v in kwargs.items()}
                qmodel(*args, **kwargs)
    finally:
        for h in handles:
            h.remove()
    total = sum(r.macs for r in reports)
    room = budget * total
    by_name = {r.name: r for r in reports}
    order = sorted(
        (n for n in qlayers if sq[n] > 0 and hists[n].count > 0),
        key=lambda n: err[n] / sq[n],
        reverse=True,
    )
    for name in order:
        rep = by_name[name]
        cost = rep.macs * (1.0 + rep.residual_kernels / rep.kernels)
        if cost > room:
            continue
        res = mmse_from_histogram(hists[name], a_bits, signed=True)
        if float(np.asarray(res.scale).reshape(-1)[0]) <= 0:
            continue
        qlayers[name].set_input_residual(res)
        room -= cost
        by_name[name] = replace(rep, extra_macs=rep.extra_macs + cost, input_residual=True)
    return [by_name[r.name] for r in reports]
