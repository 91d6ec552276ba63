"""Post-training quantization of a whole PyTorch model: calibrate, choose scales, swap layers.

:func:`quantize_model` applies the post-training scheme of Choukroun, Kravchik, Yang and Kisilev,
"Low-bit Quantization of Neural Networks for Efficient Inference" (ICCV Workshops 2019,
arXiv:1902.06822) to every ``nn.Linear``, ``nn.Conv1d`` and ``nn.Conv2d`` of a model, without
labels and without retraining:

1. **Copy.** The model is deep-copied; the caller's model is never modified. A model in
   training mode is switched to ``eval()`` on the copy (with a warning): dropout and batch-norm
   statistics updates would corrupt both calibration and inference.
2. **Calibration.** Forward pre-hooks on the layers record their inputs while ``calib_data``
   runs through the copy under ``torch.no_grad()``: a streaming histogram per layer
   (:class:`~frugalml.quant.calibrate.ActivationHistogram`) for ``method="mmse"``, the exact
   minimum and maximum, and for ``"percentile"``, ``"aciq"`` and ``"histogram"`` a uniform random
   sample of at most 2^18 values per layer (bottom-k sampling with random keys, seed 0), which
   the baseline scale functions then see. The MACs of each layer are counted from the input
   shapes of the first calibration batch. With ``rounding="gptq"`` the same hooks also
   accumulate each layer's input Gram matrix ``H = sum_x x x^T``
   (:class:`~frugalml.quant.gptq.GramAccumulator`; for convolutions of the unfolded input
   patches, one ``H`` per group; Linear layers fed the very same tensor, such as attention's
   query/key/value projections, share one product).
3. **Weights.** Per output channel ("kernel"), on a signed symmetric ``w_bits`` grid, with
   ``SCALE_METHODS[method](W, w_bits, signed=True, per_channel=True)`` (``W`` reshaped to
   ``(out, -1)``). ``method="histogram"`` stands for PyTorch's default static recipe: the
   ``HistogramObserver`` for activations and per-channel min-max for weights (the observer is
   per tensor only). The integer codes are ``clip(round(W_k / s_k))`` (``rounding="nearest"``,
   the paper's), or, with ``rounding="gptq"``, chosen by the error-compensating GPTQ / Optimal
   Brain Quantization sweep (:func:`~frugalml.quant.gptq.error_compensated_codes`, Frantar et
   al., arXiv:2210.17323) with the same scales: the input columns are rounded in order and
   each rounding error is pushed onto the columns not yet rounded so as to minimise the
   output error ``||(W - W_q) X||^2`` on the calibration inputs (damping ``0.01 mean(diag H)``,
   blocks of 128 columns; inputs that were always zero are rounded to nearest). The scales
   are kept as the method chose them (re-fitting them by least squares in the output metric,
   :func:`~frugalml.quant.gptq.refit_scales`, lowered the calibration error but not the
   error on held-out MiniLM inputs, so it is not applied). ``H`` comes from the float
   model's inputs (all layers are calibrated in one pass, none is quantized yet). The
   quantized layers have the same form (integer kernels, one float scale per kernel) and
   cost as with nearest rounding.
4. **Residual (optional).** The relative quantization error of every kernel,
   ``||W_k - Q(W_k)||^2 / ||W_k||^2``, is ranked across all layers by
   :func:`~frugalml.quant.residual.select_residual`, and the worst kernels (a ``residual``
   fraction of all kernels, or all kernels above ``residual_mse``) get a second low-bit tensor
   fitted to their residual (paper, Sec. 3.3). Each costs one extra pass over that kernel's
   MACs; the report gives the extra MACs relative to the total. With ``rounding="gptq"`` the
   ranking uses the error-compensated codes (their weight-space error: ranking by the
   relative output error ``e_k^T H e_k / w_k^T H w_k`` instead did worse on MiniLM), and the
   second tensor is fitted to ``W_k - s_k Q_k`` of those codes, itself with error-compensated
   rounding, then both scales are re-fitted jointly in the output metric
   (:func:`~frugalml.quant.gptq.error_compensated_residual`).
5. **Activations.** Per tensor, one scale per layer input: MMSE from the histogram
   (:func:`~frugalml.quant.calibrate.mmse_from_histogram`) for ``"mmse"``, otherwise the
   matching baseline of :data:`~frugalml.quant.baselines.SCALE_METHODS`. An input that was never
   negative during calibration (after a ReLU) gets an unsigned grid ``[0, 2^b - 1]``, any other
   a signed symmetric one.
6. **Swap.** Each layer is replaced by :class:`~frugalml.quant.modules.QuantizedLinear`,
   :class:`~frugalml.quant.modules.QuantizedConv1d` or
   :class:`~frugalml.quant.modules.QuantizedConv2d` (fake-quantized float simulation in
   ``forward``, integer arithmetic in ``integer_forward``).

Left in float, with one warning each: layers listed in ``skip``; modules of other types that
own parameters (``Embedding``, ``LayerNorm``, ``MultiheadAttention``'s packed projections,
``Conv3d``, subclasses of ``Linear`` ...); supported layers that calibration never called
(their parent reads ``.weight`` directly, or they are unused). PyTorch's fused
``TransformerEncoderLayer`` fast path reads ``linear1.weight`` directly and would bypass the
quantized layers' input quantization (and their calibration hooks), so it is switched off in the
copy (``activation_relu_or_gelu = 0`` on each such layer, ``use_nested_tensor = False`` on each
``TransformerEncoder``); the layers then run their regular, numerically equivalent path.

The steps are functions with one job each, composed by :func:`quantize_model`:
:func:`~frugalml.quant.prepare.prepare_model` (step 1),
:func:`~frugalml.quant.calibration_pass.calibrate_layers` (step 2),
:func:`~frugalml.quant.plan.plan_weights` (steps 3 and 4: scales, codes, residual choice),
:func:`convert_layers` (steps 4 to 6: residual fits, activation scales, swap) and, with
``act_residual``, :func:`~frugalml.quant.input_residual.add_input_residuals`. The reports are in
:mod:`frugalml.quant.report`, the calibration input handling in
:mod:`frugalml.quant.calibration_data`.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np

from .._optional import require
from .._validate import (
    check_choice,
    check_nonnegative_float,
    check_positive_float,
    check_probability,
)
from ..errors import InvalidInputError
from ..progress import Progress

require("torch", what="frugalml.quant.quantize_model", extra="quant")

import torch  # noqa: E402
from torch import nn  # noqa: E402

from .baselines import SCALE_METHODS  # noqa: E402
from .calibration_data import CALIB_BATCH_SIZE, as_device  # noqa: E402
from .calibration_pass import Calibration, calibrate_layers  # noqa: E402
from .dynamic import ACT_MODES  # noqa: E402
from .gptq_layer import fit_layer_residual, layer_output_error  # noqa: E402
from .groups import check_group_size  # noqa: E402
from .input_residual import add_input_residuals  # noqa: E402
from .modules import QuantizedLayer, quantize_layer  # noqa: E402
from .plan import WeightPlan, plan_weights, weight_method  # noqa: E402
from .prepare import PreparedModel, describe_modules, prepare_model  # noqa: E402
from .report import LayerReport, QuantizationReport, QuantizationWarning  # noqa: E402
from .scale_result import ScaleResult  # noqa: E402
from .uniform import check_bits  # noqa: E402

__all__ = [
    "CALIB_BATCH_SIZE",
    "ROUNDING_MODES",
    "LayerReport",
    "QuantizationReport",
    "QuantizationWarning",
    "check_deploy_options",
    "check_options",
    "convert_layers",
    "quantize_model",
    "swap_layers",
]

ROUNDING_MODES = ("nearest", "gptq")
"""Accepted values of ``rounding`` in :func:`quantize_model`."""


def _check_bits(value: Any, name: str) -> int:
    try:
        return check_bits(value)
    except InvalidInputError as exc:
        raise InvalidInputError(f"{name}: {exc}") from None


def _stage(progress: Progress, lo: float, hi: float) -> Progress:
    """The callback of one step that fills the part [lo, hi] of the whole bar."""
    return lambda message, fraction: progress(message, lo + (hi - lo) * fraction)


def check_options(
    *,
    w_bits: Any = 4,
    a_bits: Any = 8,
    method: Any = "mmse",
    rounding: Any = "nearest",
    residual: Any = None,
    residual_mse: Any = None,
    act_residual: Any = None,
    quantize_activations: Any = True,
    act_mode: Any = "static",
    group_size: Any = None,
    smooth: Any = None,
) -> tuple[int, int, float | None, float | None, float | None]:
    """Validate :func:`quantize_model`'s options without a model (a CLI checks them before it
    loads any file); returns ``(w_bits, a_bits, residual, residual_mse, act_residual)``
    normalised (``act_mode``, ``group_size`` and ``smooth`` are checked, see
    :func:`check_deploy_options`). Raises :class:`~frugalml.errors.InvalidInputError` naming
    the bad option."""
    w_bits = _check_bits(w_bits, "w_bits")
    a_bits = _check_bits(a_bits, "a_bits")
    check_choice(method, "method", SCALE_METHODS)
    if not isinstance(rounding, str):
        raise InvalidInputError(f"rounding must be one of 'nearest', 'gptq'; got {rounding!r}")
    check_choice(rounding, "rounding", ROUNDING_MODES)
    if residual is not None:
        residual = check_probability(residual, "residual")
        if residual == 0:
            raise InvalidInputError("residual must be a fraction in (0, 1], or None for none")
    if residual_mse is not None:
        residual_mse = check_nonnegative_float(residual_mse, "residual_mse")
    if residual is not None and residual_mse is not None:
        raise InvalidInputError("give residual (a fraction of kernels) or residual_mse, not both")
    if act_residual is not None:
        act_residual = check_positive_float(act_residual, "act_residual")
        if not quantize_activations:
            raise InvalidInputError("act_residual needs quantize_activations=True")
    if not isinstance(quantize_activations, bool):
        raise InvalidInputError(
            f"quantize_activations must be True or False, got {quantize_activations!r}"
        )
    act_mode, group_size, smooth = check_deploy_options(
        act_mode=act_mode, group_size=group_size, smooth=smooth
    )
    if act_mode == "dynamic" and act_residual is not None:
        raise InvalidInputError(
            'act_residual needs static input scales (act_mode="static"); per-token scales '
            "already follow each input"
        )
    if group_size is not None and (residual is not None or residual_mse is not None):
        raise InvalidInputError(
            "residual tensors need per-kernel weight scales; use group_size=None with "
            "residual= or residual_mse="
        )
    if smooth is not None and not quantize_activations:
        raise InvalidInputError(
            "smooth= migrates activation outliers; it needs activation "
            "quantization (quantize_activations=True)"
        )
    return w_bits, a_bits, residual, residual_mse, act_residual


def check_deploy_options(
    *, act_mode: Any = "static", group_size: Any = None, smooth: Any = None
) -> tuple[str, int | None, str | float | None]:
    """``(act_mode, group_size, smooth)`` checked: ``act_mode`` one of
    :data:`~frugalml.quant.dynamic.ACT_MODES`; ``group_size`` ``None`` or an integer ``>= 2``
    (that it divides each layer's inputs is checked per layer); ``smooth`` ``None``,
    ``"mmse"`` or a migration strength ``alpha`` in ``[0, 1]``."""
    if not isinstance(act_mode, str):
        raise InvalidInputError(f"act_mode must be one of 'static', 'dynamic'; got {act_mode!r}")
    check_choice(act_mode, "act_mode", ACT_MODES)
    group_size = check_group_size(group_size)
    if smooth is not None and not (isinstance(smooth, str) and smooth == "mmse"):
        if isinstance(smooth, str):
            raise InvalidInputError(
                f"smooth must be None, 'mmse' or a number in [0, 1]; got {smooth!r}"
            )
        smooth = check_probability(smooth, "smooth")
    return act_mode, group_size, smooth


def swap_layers(model: nn.Module, replacement: dict[int, nn.Module]) -> nn.Module:
    """Replace, in place, every submodule ``m`` of ``model`` with ``replacement[id(m)]``;
    returns the model (the replacement itself when ``model`` is one of the replaced).
    ``O(modules)``."""
    if id(model) in replacement:  # the model itself is a single supported layer
        return replacement[id(model)]
    for parent in model.modules():
        for child_name, child in list(parent._modules.items()):
            if child is not None and id(child) in replacement:
                parent._modules[child_name] = replacement[id(child)]
    return model


def convert_layers(
    prepared: PreparedModel,
    calibration: Calibration,
    plan: WeightPlan,
    *,
    w_bits: int = 4,
    a_bits: int = 8,
    method: str = "mmse",
    rounding: str = "nearest",
    quantize_activations: bool = True,
    act_mode: str = "static",
    group_size: int | None = None,
    input_scales: dict[str, np.ndarray] | None = None,
    progress: Progress | None = None,
) -> tuple[nn.Module, list[LayerReport], dict[str, QuantizedLayer]]:
    """Build the quantized layers of ``plan`` and swap them into ``prepared.model``.

    For each calibrated layer: the input's per-tensor scale
    (:meth:`~frugalml.quant.observers.LayerObserver.activation_scale`, without
    ``quantize_activations`` none), the residual fit of its masked kernels (with
    ``rounding="gptq"`` error-compensated,
    :func:`~frugalml.quant.gptq_layer.fit_layer_residual`; otherwise inside
    :func:`~frugalml.quant.modules.quantize_layer`), the quantized layer and its
    :class:`~frugalml.quant.report.LayerReport`. Each layer's Gram matrix is freed once used.
    With ``act_mode="dynamic"`` the Linear layers get per-token scales (convolutions keep a
    static one); ``group_size`` gives the Linear layers group-wise weight scales (as planned
    by :func:`~frugalml.quant.plan.plan_weights` with the same ``group_size``);
    ``input_scales[name]`` ``(in,)`` is a multiplier of the layer's input (the ``1 / s`` of
    smoothing, whose ``s`` the float weight already carries).
    Returns ``(model, reports, layers by name)``; options as for :func:`quantize_model`,
    assumed validated. ``progress(message, fraction)`` after each layer. Cost: ``O(weights)``
    per layer plus the residual fits.
    """
    say = progress or (lambda s, f: None)
    gptq = rounding == "gptq"
    modules = prepared.modules
    layers = calibration.called
    w_method = plan.method
    reports: list[LayerReport] = []
    replacement: dict[int, QuantizedLayer] = {}
    for j, name in enumerate(layers):
        m = modules[name]
        ob = calibration.observers[name]
        linear = type(m) is nn.Linear
        dynamic = quantize_activations and act_mode == "dynamic" and linear
        a_res: ScaleResult | None = None
        if quantize_activations and not dynamic:
            a_res = ob.activation_scale(method, a_bits)
        mask = plan.masks.get(name)
        W = m.weight.detach().to(device="cpu", dtype=torch.float64).numpy()
        fit = None
        if gptq and mask is not None and mask.any():
            fit = fit_layer_residual(
                W.reshape(W.shape[0], -1), mask, plan.gptq[name], ob.gram, w_method
            )
        q = quantize_layer(
            m,
            plan.results[name],
            a_res,
            mask,
            residual_method=w_method,
            codes=plan.codes.get(name),
            residual_fit=fit,
            group_size=group_size if linear else None,
            dynamic_bits=a_bits if dynamic else None,
        )
        if input_scales is not None and name in input_scales:
            q.set_input_scale(input_scales[name])
        q.train(m.training)
        replacement[id(m)] = q
        deq = q.dequantized_weight(torch.float64).cpu().numpy()
        out_err = out_err_nearest = None
        if gptq:
            info = plan.gptq[name]
            out_err_nearest = info.out_err_nearest
            out_err = info.out_err
            if fit is not None:
                out_err = layer_output_error(
                    W.reshape(W.shape[0], -1), deq.reshape(W.shape[0], -1), ob.gram
                )
        sq = float(((W - deq) ** 2).sum())
        norm = float((W**2).sum())
        base_sq = float(plan.rel_err[name] @ (W.reshape(W.shape[0], -1) ** 2).sum(axis=1))
        n_res = q.n_residual
        macs = plan.macs[name]
        reports.append(
            LayerReport(
                name=name,
                kind=type(m).__name__,
                weight_shape=tuple(W.shape),
                w_bits=w_bits,
                a_bits=a_bits if (a_res is not None or dynamic) else None,
                weight_mse=sq / W.size,
                weight_rel_mse=sq / norm if norm > 0 else 0.0,
                base_weight_mse=base_sq / W.size,
                kernels=W.shape[0],
                residual_kernels=n_res,
                macs=macs,
                extra_macs=macs * n_res / W.shape[0],
                a_scale=None if a_res is None else float(q.a_scale),
                a_zero_point=None if a_res is None else int(q.a_zero_point),
                a_signed=None if a_res is None else bool(q.a_grid.signed),
                a_mse=None if a_res is None else float(np.asarray(a_res.mse).reshape(-1)[0]),
                rounding=rounding,
                output_rel_err=out_err,
                output_rel_err_nearest=out_err_nearest,
            )
        )
        ob.gram = None  # free the Gram matrix (d^2 float64 per group)
        say(f"layer {name}", (j + 1) / max(len(layers), 1))
    qmodel = swap_layers(prepared.model, replacement)
    return qmodel, reports, {name: replacement[id(modules[name])] for name in layers}


def quantize_model(
    model: nn.Module,
    calib_data: Any,
    *,
    w_bits: int = 4,
    a_bits: int = 8,
    method: str = "mmse",
    rounding: str = "nearest",
    residual: float | None = None,
    residual_mse: float | None = None,
    act_residual: float | None = None,
    quantize_activations: bool = True,
    act_mode: str = "static",
    group_size: int | None = None,
    smooth: str | float | None = None,
    skip: Sequence[str] = (),
    progress: Progress | None = None,
    device: str | torch.device | None = None,
) -> QuantizationReport:
    """Quantize a copy of ``model`` after calibration on ``calib_data`` (module doc).

    Parameters
    ----------
    model:
        any ``nn.Module``; its ``nn.Linear`` / ``nn.Conv1d`` / ``nn.Conv2d`` layers (exact
        types) are quantized. Not modified.
    calib_data:
        unlabeled calibration inputs: a tensor (split into batches of
        :data:`CALIB_BATCH_SIZE` along dim 0, each run as ``model(x)``), a dict of tensors
        (split the same way, run as ``model(**d)``, e.g. a tokenizer's output), or an iterable
        whose items are tensors (``model(x)``), tuples/lists (``model(*args)``) or dicts
        (``model(**kwargs)``). Drop labels first (``(x for x, _ in loader)``). Tensors are
        moved to the device the copy runs on.
    w_bits, a_bits:
        bit widths of weights and activations, integers in 2..8.
    method:
        scale selection, a key of :data:`~frugalml.quant.baselines.SCALE_METHODS`: ``"mmse"``
        (the paper's), ``"minmax"``, ``"percentile"``, ``"aciq"`` or ``"histogram"``.
    rounding:
        how the weights' integer codes are chosen for those scales: ``"nearest"`` (the paper's
        round-to-nearest) or ``"gptq"`` (activation-aware error-compensated rounding, module
        doc step 3; the report's layers then carry ``output_rel_err`` and
        ``output_rel_err_nearest``).
    residual:
        fraction in (0, 1] of all kernels (across layers) that get a second low-bit tensor,
        the worst-quantized first; or
    residual_mse:
        give every kernel whose relative weight MSE exceeds this threshold a second tensor.
    act_residual:
        budget, as a fraction of the quantized layers' MACs, for second low-bit *input*
        tensors (``x ~ a q + a2 q2``, ``a2`` by MMSE on the calibration residual): after the
        conversion, one more calibration pass measures each layer's relative input
        quantization error ``||x - a q||^2 / ||x||^2``, and the worst layers get a residual
        input tensor while the extra MACs (one more integer pass of the layer) fit the budget.
        Needs activation quantization. This extends the paper's residual tensors, stated for
        weights, to activations, where low-bit (A4) error concentrates.
    quantize_activations:
        ``False`` quantizes weights only (``a_bits`` is then ignored but still validated).
    act_mode:
        ``"static"`` (default, the paper's): one calibrated scale per layer input;
        ``"dynamic"``: the Linear layers quantize their input per token (row) with a scale
        computed at run time, ``max |x_t| / (2^(a_bits-1) - 1)``
        (:mod:`frugalml.quant.dynamic`); convolutions keep a static scale.
    group_size:
        ``None`` (default): one weight scale per output channel; an integer ``g``: one scale
        per output channel and group of ``g`` consecutive inputs of each Linear layer
        (:mod:`frugalml.quant.groups`; must divide ``in_features``; not with residuals).
    smooth:
        ``None`` (default), ``"mmse"`` or a number ``alpha`` in ``[0, 1]``: SmoothQuant-style
        migration of activation outliers into the Linear weights (Xiao et al. 2023),
        ``x W^T = (x / s)(W s)^T`` with ``s_j = max|x_j|^alpha / max|W_j|^(1-alpha)``; with
        ``"mmse"`` each layer's ``alpha`` (or none) minimises the quantized layer's output
        error on the calibration data (:mod:`frugalml.quant.smooth`).
    skip:
        module names to leave in float (a name also covers the modules under it).
    progress:
        ``progress(message, fraction)`` callback (:data:`frugalml.progress.Progress`),
        fraction in [0, 1]: calibration fills [0, 0.5], the weights [0.5, 0.75], the
        conversion [0.75, 1].
    device:
        where the quantized copy is built and calibrated (``"cpu"``, ``"cuda"``, a
        ``torch.device``); ``None`` (default): the model's own device. ``model`` itself is
        never moved.

    Returns a :class:`QuantizationReport`. Cost: one forward pass over ``calib_data`` plus
    the scale searches (linear in the number of weights and calibration values); with
    ``rounding="gptq"`` also ``O(rows d^2)`` per layer for the Gram matrices (``d`` inputs per
    output, ``rows`` calibration columns), ``O(d^3 + out d^2)`` for the rounding and ``d^2``
    float64 memory per layer (per group) until the conversion ends. Raises
    :class:`~frugalml.errors.InvalidInputError` for bad arguments, empty calibration data or
    NaN/inf in the calibration inputs or in the activations they produce; warns
    (:class:`QuantizationWarning`) about layers left in float and about a model in training
    mode.
    """
    t0 = time.perf_counter()
    if not isinstance(model, nn.Module):
        raise InvalidInputError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    w_bits, a_bits, residual, residual_mse, act_residual = check_options(
        w_bits=w_bits,
        a_bits=a_bits,
        method=method,
        rounding=rounding,
        residual=residual,
        residual_mse=residual_mse,
        act_residual=act_residual,
        quantize_activations=quantize_activations,
        act_mode=act_mode,
        group_size=group_size,
        smooth=smooth,
    )
    act_mode, group_size, smooth = check_deploy_options(
        act_mode=act_mode, group_size=group_size, smooth=smooth
    )
    if isinstance(skip, str):
        skip = (skip,)
    skip = tuple(skip)
    if not all(isinstance(s, str) for s in skip):
        raise InvalidInputError("skip must be a sequence of module names (strings)")
    if progress is not None and not callable(progress):
        raise InvalidInputError("progress must be a callable progress(message, fraction) or None")
    target = None if device is None else as_device(device)
    say: Progress = progress or (lambda s, f: None)

    # ---- 1. copy the model and sort its modules
    prepared = prepare_model(model, skip)
    if prepared.was_training:
        warnings.warn(
            "quantize_model: the model is in training mode; the quantized copy is switched to "
            "eval() (dropout off, batch-norm statistics frozen) for calibration and inference",
            QuantizationWarning,
            stacklevel=2,
        )
    if target is not None:
        prepared.model.to(target)
    modules = prepared.modules
    if prepared.unsupported:
        warnings.warn(
            f"quantize_model: {len(prepared.unsupported)} module(s) with parameters of "
            f"unsupported types are left in float: "
            f"{describe_modules(prepared.unsupported, modules)}",
            QuantizationWarning,
            stacklevel=2,
        )

    # ---- 1b. smoothing (migrates input outliers into the float weights of the copy)
    input_scales: dict[str, np.ndarray] = {}
    smoothing = None
    if smooth is not None:
        from .smooth import smooth_layers

        smoothing = smooth_layers(
            prepared,
            calib_data,
            w_bits=w_bits,
            a_bits=a_bits,
            act_mode=act_mode,
            group_size=group_size,
            method=weight_method(method),
            alpha=smooth,
            progress=_stage(say, 0.0, 0.2),
        )
        input_scales = {
            name: (1.0 / np.asarray(ch.scales, dtype=np.float64)).astype(np.float32)
            for name, ch in smoothing.items()
            if ch.alpha is not None
        }

    # ---- 2. calibration
    calibration = calibrate_layers(
        prepared,
        calib_data,
        method=method,
        quantize_activations=quantize_activations,
        gram=rounding == "gptq",
        progress=_stage(say, 0.2 if smooth is not None else 0.0, 0.5),
    )
    not_called = calibration.not_called
    if not_called:
        warnings.warn(
            f"quantize_model: {len(not_called)} layer(s) were never called during calibration "
            f"(their parent reads .weight directly, or they are unused) and are left in float: "
            f"{describe_modules(not_called, modules)}",
            QuantizationWarning,
            stacklevel=2,
        )

    # ---- 3. weights (first level), per-kernel errors and the residual choice
    plan = plan_weights(
        modules,
        calibration,
        w_bits=w_bits,
        method=method,
        rounding=rounding,
        residual=residual,
        residual_mse=residual_mse,
        group_size=group_size,
        progress=_stage(say, 0.5, 0.75),
    )

    # ---- 4. residual fits, activations, layer swap, reports
    qmodel, reports, qlayers = convert_layers(
        prepared,
        calibration,
        plan,
        w_bits=w_bits,
        a_bits=a_bits,
        method=method,
        rounding=rounding,
        quantize_activations=quantize_activations,
        act_mode=act_mode,
        group_size=group_size,
        input_scales=input_scales,
        progress=_stage(say, 0.75, 1.0),
    )

    if act_residual is not None and reports:
        say("input residuals", 1.0)
        reports = add_input_residuals(
            qmodel, calib_data, calibration.device, reports, qlayers, a_bits, act_residual
        )

    left = set(prepared.user_skipped + prepared.unsupported + not_called)
    return QuantizationReport(
        model=qmodel,
        layers=tuple(reports),
        skipped=tuple(n for n in modules if n in left),
        extra_macs=float(sum(r.extra_macs for r in reports)),
        total_macs=float(sum(r.macs for r in reports)),
        seconds=time.perf_counter() - t0,
        method=method,
        w_bits=w_bits,
        a_bits=a_bits if quantize_activations else None,
        unsupported=tuple(prepared.unsupported),
        not_called=tuple(not_called),
        calib_batches=calibration.batches,
        rounding=rounding,
    )
