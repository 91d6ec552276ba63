"""Step 3 of :func:`~frugalml.quant.convert.quantize_model`: weight scales, codes and residuals.

Choukroun, Kravchik, Yang and Kisilev, "Low-bit Quantization of Neural Networks for Efficient
Inference" (ICCV Workshops 2019, arXiv:1902.06822): every kernel (output channel) of a layer
gets its own scale on a signed symmetric grid, ``SCALE_METHODS[method](W, w_bits, signed=True,
per_channel=True)`` with ``W`` reshaped to ``(out, -1)`` (``method="histogram"``, per tensor
only, uses min-max for weights). The integer codes are round-to-nearest, or with
``rounding="gptq"`` the error-compensated codes of :mod:`frugalml.quant.gptq_layer` for the same
scales. Then the relative error ``||W_k - Q(W_k)||^2 / ||W_k||^2`` of every kernel is ranked
across all layers by :func:`~frugalml.quant.residual.select_residual`, and the worst kernels (a
``residual`` fraction, or all above ``residual_mse``) are marked for a second low-bit tensor
(Sec. 3.3). :func:`plan_weights` does all that and returns a :class:`WeightPlan`; nothing is
swapped yet.

Torch is required (extra ``quant``); this module imports it when it is imported.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from .._optional import require
from .._results import ResultRepr
from ..progress import Progress

require("torch", what="frugalml.quant.quantize_model", extra="quant")

import torch  # noqa: E402
from torch import nn  # noqa: E402

from .baselines import SCALE_METHODS  # noqa: E402
from .calibration_pass import Calibration  # noqa: E402
from .gptq_layer import LayerGptqFit, fit_layer_weights  # noqa: E402
from .groups import group_scale_result  # noqa: E402
from .modules import quantize_layer  # noqa: E402
from .residual import select_residual  # noqa: E402
from .scale_result import ScaleResult  # noqa: E402

__all__ = ["WeightPlan", "plan_weights", "weight_method"]


def weight_method(method: str) -> str:
    """The scale method used for weights: ``"histogram"`` (per tensor only) -> ``"minmax"``."""
    return "minmax" if method == "histogram" else method


@dataclass(eq=False, repr=False)
class WeightPlan(ResultRepr):
    """The first-level weight quantization of every calibrated layer, and the residual choice.

    ``method``: the weight scale method; ``results``: per layer, the per-kernel
    :class:`~frugalml.quant.scale_result.ScaleResult`; ``codes``: the error-compensated codes
    ``(out, -1)`` (``rounding="gptq"`` only); ``gptq``: their
    :class:`~frugalml.quant.gptq_layer.LayerGptqFit` (output errors); ``rel_err``: relative
    weight error per kernel ``(out,)``; ``macs``: MACs per calibration sample; ``masks``:
    boolean ``(out,)`` of the kernels that get a residual tensor (only layers with a choice).
    """

    method: str
    results: dict[str, ScaleResult]
    codes: dict[str, np.ndarray]
    gptq: dict[str, LayerGptqFit]
    rel_err: dict[str, np.ndarray]
    macs: dict[str, float]
    masks: dict[str, np.ndarray]

    def summary(self) -> str:
        kernels = sum(r.size for r in self.rel_err.values())
        res = sum(int(m.sum()) for m in self.masks.values())
        rounding = "gptq" if self.codes else "nearest"
        return (
            f"weight plan ({self.method}, {rounding} rounding): {len(self.results)} layers, "
            f"{kernels} kernels, {res} with a residual tensor"
        )


def plan_weights(
    modules: Mapping[str, nn.Module],
    calibration: Calibration,
    *,
    w_bits: int = 4,
    method: str = "mmse",
    rounding: str = "nearest",
    residual: float | None = None,
    residual_mse: float | None = None,
    group_size: int | None = None,
    progress: Progress | None = None,
) -> WeightPlan:
    """Scales, codes, per-kernel errors and residual masks of the layers calibration called.

    ``modules``: the model copy's modules by name; ``calibration``: from
    :func:`~frugalml.quant.calibration_pass.calibrate_layers` (with Gram matrices when
    ``rounding="gptq"``); the options as for :func:`~frugalml.quant.convert.quantize_model`,
    assumed validated; ``group_size``: group-wise scales for the Linear layers (convolutions
    keep per-kernel scales). ``progress(message, fraction)`` after each layer. Cost: the scale
    searches (linear in the number of weights), plus ``O(d^3 + out d^2)`` per layer with GPTQ.
    """
    say = progress or (lambda s, f: None)
    gptq = rounding == "gptq"
    layers = calibration.called
    w_method = weight_method(method)
    w_results: dict[str, ScaleResult] = {}
    w_codes: dict[str, np.ndarray] = {}  # error-compensated codes (out, -1), rounding="gptq"
    gptq_info: dict[str, LayerGptqFit] = {}
    rel_by_layer: dict[str, np.ndarray] = {}  # relative weight error per kernel
    macs: dict[str, float] = {}
    for j, name in enumerate(layers):
        m = modules[name]
        ob = calibration.observers[name]
        W = m.weight.detach().to(device="cpu", dtype=torch.float64).numpy()
        W2 = W.reshape(W.shape[0], -1)
        groups = group_size if type(m) is nn.Linear else None
        if groups is not None:
            res = group_scale_result(W2, w_bits, groups, w_method)
        else:
            res = SCALE_METHODS[w_method](W2, w_bits, signed=True, per_channel=True)
        if gptq:
            info = fit_layer_weights(W2, res, ob.gram, groups)
            gptq_info[name] = info
            res = info.result
            w_codes[name] = info.codes
        w_results[name] = res
        deq = quantize_layer(m, res, codes=w_codes.get(name), group_size=groups).dequantized_weight(
            torch.float64
        )
        err = ((W - deq.cpu().numpy()) ** 2).reshape(W.shape[0], -1).sum(axis=1)
        norm = (W2**2).sum(axis=1)
        rel_by_layer[name] = np.where(norm > 0, err / np.where(norm > 0, norm, 1.0), 0.0)
        macs[name] = ob.macs_first / calibration.first_samples
        say(f"weights {name}", (j + 1) / max(len(layers), 1))

    masks: dict[str, np.ndarray] = {}
    if layers and (residual is not None or residual_mse is not None):
        per_kernel = {
            name: max(round(macs[name] / modules[name].weight.shape[0]), 1) for name in layers
        }
        chosen = select_residual(
            rel_by_layer, per_kernel, fraction=residual, mse_threshold=residual_mse
        )
        masks = {name: np.asarray(mk, dtype=bool) for name, mk in chosen.masks.items()}
    return WeightPlan(
        method=w_method,
        results=w_results,
        codes=w_codes,
        gptq=gptq_info,
        rel_err=rel_by_layer,
        macs=macs,
        masks=masks,
    )
