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
"""

from __future__ import annotations

import copy
import math
import time
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from .._optional import require
from .._resources import check_memory
from .._results import ResultRepr
from .._validate import (
    check_choice,
    check_nonnegative_float,
    check_positive_float,
    check_probability,
)
from ..errors import FrugalError, InvalidInputError

require("torch", what="frugalml.quant.quantize_model", extra="quant")

import torch  # noqa: E402
from torch import nn  # noqa: E402

from .baselines import SCALE_METHODS  # noqa: E402
from .calibrate import ActivationHistogram, mmse_from_histogram  # noqa: E402
from .gptq import GramAccumulator, error_compensated_residual, fit_layer  # noqa: E402
from .mmse import ScaleResult  # noqa: E402
from .modules import SUPPORTED_LAYERS, QuantizedLayer, layer_macs, quantize_layer  # noqa: E402
from .residual import ResidualTensor, select_residual  # noqa: E402
from .uniform import check_bits  # noqa: E402

__all__ = [
    "CALIB_BATCH_SIZE",
    "ROUNDING_MODES",
    "LayerReport",
    "QuantizationReport",
    "QuantizationWarning",
    "check_options",
    "quantize_model",
]

CALIB_BATCH_SIZE = 64
"""Batch size used when ``calib_data`` is a single tensor (or a single dict of tensors)."""

_SAMPLE_CAP = 1 << 18  # values kept per layer for the sample-based activation baselines

ROUNDING_MODES = ("nearest", "gptq")
"""Accepted values of ``rounding`` in :func:`quantize_model`."""


class QuantizationWarning(UserWarning):
    """Something in the model was left in float, or the model's mode was changed."""


@dataclass(frozen=True, repr=False)
class LayerReport(ResultRepr):
    """What :func:`quantize_model` did to one layer.

    ``weight_mse`` / ``weight_rel_mse``: mean squared error and relative squared error
    ``||W - W_q||^2 / ||W||^2`` of the dequantized weight (residual included);
    ``base_weight_mse``: the same MSE without the residual tensors; ``kernels``: output
    channels; ``residual_kernels``: kernels with a second tensor; ``macs`` / ``extra_macs``:
    multiply-accumulates per calibration sample (the leading dimension of the first tensor of
    the first calibration batch, looking inside tuples and dicts) of the layer and of its
    residual pass; ``a_scale``, ``a_zero_point``, ``a_signed``, ``a_mse``: the input's grid and
    the calibration estimate of its quantization MSE (``None`` without activation
    quantization). ``rounding``: how the weight codes were chosen; with ``"gptq"``,
    ``output_rel_err`` is the relative output-space error ``tr(E H E^T) / tr(W H W^T)`` of the
    dequantized weight (residual included; ``E = W - W_q``, ``H`` the Gram matrix of the
    layer's calibration inputs) and ``output_rel_err_nearest`` the same for round-to-nearest
    with the method's scales, without residual (the paper's first term); both ``None`` with
    ``"nearest"`` (no Gram matrix is collected).
    """

    name: str
    kind: str
    weight_shape: tuple[int, ...]
    w_bits: int
    a_bits: int | None
    weight_mse: float
    weight_rel_mse: float
    base_weight_mse: float
    kernels: int
    residual_kernels: int
    macs: float
    extra_macs: float
    a_scale: float | None = None
    a_zero_point: int | None = None
    a_signed: bool | None = None
    a_mse: float | None = None
    rounding: str = "nearest"
    output_rel_err: float | None = None
    output_rel_err_nearest: float | None = None
    input_residual: bool = False

    def summary(self) -> str:
        if self.a_bits is None:
            act = "float input"
        else:
            kind = "signed" if self.a_signed else "unsigned"
            zp = f" zp {self.a_zero_point}" if self.a_zero_point else ""
            act = f"A{self.a_bits} {kind} scale {self.a_scale:.4g}{zp}"
        res = f", residual {self.residual_kernels}/{self.kernels}" if self.residual_kernels else ""
        out = ""
        if self.output_rel_err is not None:
            out = f", output rel err {self.output_rel_err:.3e}"
            if self.output_rel_err_nearest is not None:
                out += f" (nearest {self.output_rel_err_nearest:.3e})"
        return (
            f"{self.name} ({self.kind} {tuple(self.weight_shape)}): W{self.w_bits} rel MSE "
            f"{self.weight_rel_mse:.3e}{res}{out}; {act}; {self.macs:.4g} MACs"
        )


@dataclass(frozen=True, repr=False)
class QuantizationReport(ResultRepr):
    """Result of :func:`quantize_model`.

    ``model``: the quantized copy; ``layers``: one :class:`LayerReport` per quantized layer in
    model order; ``skipped``: names of the modules left in float (``skip``, unsupported types
    with parameters, never called), also split into ``unsupported`` and ``not_called``;
    ``extra_macs`` / ``total_macs``: residual MACs and MACs of the quantized layers per
    calibration sample; ``seconds``: wall time of the whole conversion; ``rounding``: the
    weight rounding (``"nearest"`` or ``"gptq"``).
    """

    model: nn.Module = field(repr=False)
    layers: tuple[LayerReport, ...]
    skipped: tuple[str, ...]
    extra_macs: float
    total_macs: float
    seconds: float
    method: str = "mmse"
    w_bits: int = 4
    a_bits: int | None = 8
    unsupported: tuple[str, ...] = ()
    not_called: tuple[str, ...] = ()
    calib_batches: int = 0
    rounding: str = "nearest"

    @property
    def extra_mac_fraction(self) -> float:
        """``extra_macs / total_macs`` (0 when there are no MACs)."""
        return self.extra_macs / self.total_macs if self.total_macs else 0.0

    def summary(self) -> str:
        act = "float activations" if self.a_bits is None else f"A{self.a_bits}"
        res = sum(lay.residual_kernels for lay in self.layers)
        rnd = "" if self.rounding == "nearest" else f", {self.rounding} rounding"
        head = (
            f"quantize_model ({self.method}{rnd}, W{self.w_bits} {act}): {len(self.layers)} layers "
            f"quantized, {len(self.skipped)} left float, {res} residual kernels "
            f"(+{100 * self.extra_mac_fraction:.2f}% MACs), {self.calib_batches} calibration "
            f"batches, {self.seconds:.2f}s"
        )
        lines = [head] + ["  " + lay.summary() for lay in self.layers]
        if self.skipped:
            lines.append("  float: " + ", ".join(self.skipped))
        return "\n".join(lines)


# ---------------------------------------------------------------------------------- helpers
class _Sample:
    """Uniform random sample (without replacement) of at most ``cap`` streamed values."""

    def __init__(self, cap: int, seed: int = 0) -> None:
        self.cap = cap
        self.rng = np.random.default_rng(seed)
        self.keys = np.empty(0)
        self.values = np.empty(0, dtype=np.float32)

    def update(self, v: np.ndarray) -> None:
        keys = np.concatenate([self.keys, self.rng.random(v.size)])
        values = np.concatenate([self.values, v])
        if keys.size > self.cap:
            keep = np.argpartition(keys, self.cap)[: self.cap]
            keys, values = keys[keep], values[keep]
        self.keys, self.values = keys, values


class _LayerStats:
    def __init__(self, hist: bool, sample: bool, gram_of: nn.Module | None = None) -> None:
        self.calls = 0
        self.macs_first = 0
        self.lo = math.inf
        self.hi = -math.inf
        self.hist = ActivationHistogram() if hist else None
        self.sample = _Sample(_SAMPLE_CAP) if sample else None
        self.gram = GramAccumulator(gram_of) if gram_of is not None else None


def _check_bits(value: Any, name: str) -> int:
    try:
        return check_bits(value)
    except InvalidInputError as exc:
        raise InvalidInputError(f"{name}: {exc}") from None


def _split(t: torch.Tensor) -> tuple[torch.Tensor, ...]:
    if t.dim() == 0:
        raise InvalidInputError("calib_data must have a batch dimension, got a 0-d tensor")
    return t.split(CALIB_BATCH_SIZE)


def _batches(calib_data: Any) -> Iterator[tuple[tuple[Any, ...], dict[str, Any]]]:
    """Yield ``(args, kwargs)`` for each calibration call (module doc of quantize_model)."""
    if isinstance(calib_data, torch.Tensor):
        for t in _split(calib_data):
            yield (t,), {}
        return
    if isinstance(calib_data, Mapping):  # one dict of tensors sharing the batch dimension
        items = dict(calib_data)
        sizes = {v.shape[0] for v in items.values() if isinstance(v, torch.Tensor) and v.dim()}
        if len(sizes) > 1:
            raise InvalidInputError(
                f"a dict calib_data must hold tensors with one batch size, got sizes {sizes}"
            )
        n = sizes.pop() if sizes else 1
        for i in range(0, n, CALIB_BATCH_SIZE):
            yield (
                (),
                {
                    k: v[i : i + CALIB_BATCH_SIZE] if isinstance(v, torch.Tensor) and v.dim() else v
                    for k, v in items.items()
                },
            )
        return
    if isinstance(calib_data, (str, bytes)) or not hasattr(calib_data, "__iter__"):
        raise InvalidInputError(
            "calib_data must be a tensor, a dict of tensors, or an iterable of tensors, tuples "
            f"or dicts; got {type(calib_data).__name__}"
        )
    for item in calib_data:
        if isinstance(item, torch.Tensor):
            yield (item,), {}
        elif isinstance(item, Mapping):
            yield (), dict(item)
        elif isinstance(item, (tuple, list)):
            yield tuple(item), {}
        else:
            raise InvalidInputError(
                "each calibration batch must be a tensor (model(x)), a tuple/list "
                f"(model(*args)) or a dict (model(**kwargs)); got {type(item).__name__}"
            )


def _describe(value: Any) -> str:
    """``tensor(4, 2) float32`` for a tensor, the type name otherwise (error messages)."""
    if isinstance(value, torch.Tensor):
        dims = ", ".join(str(d) for d in value.shape)
        return f"tensor({dims}) {str(value.dtype).removeprefix('torch.')}"
    return type(value).__name__


def _tensors(value: Any) -> list[torch.Tensor]:
    """The tensors in ``value``, looking inside tuples, lists and dicts, in order."""
    if isinstance(value, torch.Tensor):
        return [value]
    if isinstance(value, Mapping):
        value = list(value.values())
    if isinstance(value, (tuple, list)):
        return [t for v in value for t in _tensors(v)]
    return []


def _model_device(model: nn.Module) -> torch.device | None:
    for t in (*model.parameters(), *model.buffers()):
        return t.device
    return None


def _to(v: Any, device: torch.device | None) -> Any:
    """``v`` with its tensors (also inside tuples, lists and dicts) moved to ``device``."""
    if device is None:
        return v
    if isinstance(v, torch.Tensor):
        return v if v.device == device else v.to(device)
    if isinstance(v, Mapping) and type(v) is dict:
        return {k: _to(x, device) for k, x in v.items()}
    if isinstance(v, (tuple, list)) and type(v) in (tuple, list):
        return type(v)(_to(x, device) for x in v)
    return v


def _has_own_params(module: nn.Module) -> bool:
    return any(True for _ in module.parameters(recurse=False))


def _disable_fused_transformer(model: nn.Module) -> None:
    for m in model.modules():
        if isinstance(m, nn.TransformerEncoderLayer):
            m.activation_relu_or_gelu = 0
        elif isinstance(m, nn.TransformerEncoder):
            m.use_nested_tensor = False


def _listing(names: Sequence[str], modules: Mapping[str, nn.Module]) -> str:
    return ", ".join(f"{n or '<root>'} ({type(modules[n]).__name__})" for n in names)


@dataclass(frozen=True, eq=False)
class _GptqLayer:
    result: ScaleResult  # the method's scales, rounded to float32
    codes: np.ndarray  # (out, -1) int8
    out_err: float  # tr(E H E^T) / tr(W H W^T), error-compensated codes
    out_err_nearest: float  # the same for round-to-nearest with the method's scales


def _group_slices(out: int, groups: int) -> list[slice]:
    per = out // groups
    return [slice(g * per, (g + 1) * per) for g in range(groups)]


def _gptq_weights(W2: np.ndarray, res: ScaleResult, gram: GramAccumulator) -> _GptqLayer:
    """Error-compensated codes of ``W2`` ``(out, -1)`` with ``res``'s scales (one Gram matrix
    per group) and the output-space errors of both roundings."""
    grid = res.grid
    out = W2.shape[0]
    # the quantized layer stores float32 scales: round with those
    scale0 = np.broadcast_to(np.asarray(res.scale, dtype=np.float64).reshape(-1), (out,))
    scale0 = scale0.astype(np.float32).astype(np.float64)
    codes = np.zeros(W2.shape, dtype=np.int8)
    scale = scale0.copy()
    num = num_near = den = 0.0
    for g, sl in enumerate(_group_slices(out, gram.groups)):
        fit = fit_layer(W2[sl], gram.gram(g), scale0[sl], grid, refit=False)
        codes[sl], scale[sl] = fit.codes, fit.scale
        num += float(fit.row_err.sum())
        num_near += float(fit.row_err_nearest.sum())
        den += float(fit.row_power.sum())
    deq = codes * scale[:, None]
    mse = ((W2 - deq) ** 2).mean(axis=1) if W2.shape[1] else np.zeros(out)
    result = ScaleResult(
        scale=scale,
        zero_point=np.zeros(out, dtype=np.int64),
        mse=mse,
        grid=grid,
        method=res.method,
    )
    return _GptqLayer(
        result=result,
        codes=codes,
        out_err=num / den if den > 0 else 0.0,
        out_err_nearest=num_near / den if den > 0 else 0.0,
    )


def _gptq_residual(
    W2: np.ndarray, mask: np.ndarray, info: _GptqLayer, gram: GramAccumulator, method: str
) -> ResidualTensor:
    """Two-term fit of the ``mask`` kernels, the second term error-compensated on the residual
    of the first (:func:`~frugalml.quant.gptq.error_compensated_residual`), group by group."""
    grid = info.result.grid
    scale = np.asarray(info.result.scale, dtype=np.float32).astype(np.float64)
    parts: list[ResidualTensor] = []
    for g, sl in enumerate(_group_slices(W2.shape[0], gram.groups)):
        rows = np.flatnonzero(mask[sl]) + sl.start
        if rows.size:
            parts.append(
                error_compensated_residual(
                    W2[rows],
                    gram.gram(g),
                    info.codes[rows],
                    scale[rows],
                    grid,
                    scale_method=method,
                )
            )
    return ResidualTensor(
        codes1=np.concatenate([p.codes1 for p in parts]),
        scale1=np.concatenate([p.scale1 for p in parts]),
        codes2=np.concatenate([p.codes2 for p in parts]),
        scale2=np.concatenate([p.scale2 for p in parts]),
        mask=np.ones(sum(p.mask.size for p in parts), dtype=bool),
        mse1=np.concatenate([p.mse1 for p in parts]),
        mse=np.concatenate([p.mse for p in parts]),
        grid=grid,
        method=method,
    )


def _output_rel_err(W2: np.ndarray, deq2: np.ndarray, gram: GramAccumulator) -> float:
    num = den = 0.0
    for g, sl in enumerate(_group_slices(W2.shape[0], gram.groups)):
        Wg = torch.from_numpy(np.ascontiguousarray(W2[sl]))
        E = Wg - torch.from_numpy(np.ascontiguousarray(deq2[sl]))
        H = gram.gram(g)
        num += float(((E @ H) * E).sum())
        den += float(((Wg @ H) * Wg).sum())
    return num / den if den > 0 else 0.0


# ---------------------------------------------------------------------------------- public
def _input_residuals(qmodel, calib_data, device, reports, qlayers, a_bits, budget):
    """Second input tensors for the layers with the largest relative input quantization error,
    within ``budget`` x the quantized MACs (see ``act_residual``). Returns the updated reports."""
    sq = {name: 0.0 for name in qlayers}
    err = {name: 0.0 for name in qlayers}
    hists = {name: ActivationHistogram() for name in qlayers}

    def make_hook(name):
        def hook(mod, args, kwargs):
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
            for args, kwargs in _batches(calib_data):
                args = tuple(_to(a, device) for a in args)
                kwargs = {k: _to(v, device) for k, v in kwargs.items()}
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
) -> tuple[int, int, float | None, float | None, float | None]:
    """Validate :func:`quantize_model`'s options without a model (a CLI checks them before it
    loads any file); returns ``(w_bits, a_bits, residual, residual_mse, act_residual)``
    normalised. Raises :class:`~frugalml.errors.InvalidInputError` naming the bad option."""
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
    return w_bits, a_bits, residual, residual_mse, act_residual


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
    skip: Sequence[str] = (),
    progress: Callable[[str, float], None] | None = None,
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
        moved to the model's device.
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
    skip:
        module names to leave in float (a name also covers the modules under it).
    progress:
        ``progress(step, fraction)`` callback, fraction in [0, 1].

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
    )
    gptq = rounding == "gptq"
    if isinstance(skip, str):
        skip = (skip,)
    skip = tuple(skip)
    if not all(isinstance(s, str) for s in skip):
        raise InvalidInputError("skip must be a sequence of module names (strings)")
    if progress is not None and not callable(progress):
        raise InvalidInputError("progress must be a callable progress(step, fraction) or None")
    say = progress or (lambda s, f: None)

    qmodel = copy.deepcopy(model)
    modules = dict(qmodel.named_modules())
    unknown = [s for s in skip if s not in modules]
    if unknown:
        raise InvalidInputError(
            f"skip names not found in the model: {unknown}; use names from model.named_modules()"
        )
    if any(m.training for m in qmodel.modules()):
        warnings.warn(
            "quantize_model: the model is in training mode; the quantized copy is switched to "
            "eval() (dropout off, batch-norm statistics frozen) for calibration and inference",
            QuantizationWarning,
            stacklevel=2,
        )
        qmodel.eval()
    _disable_fused_transformer(qmodel)

    def skipped(name: str) -> bool:
        return any(name == s or name.startswith(s + ".") for s in skip)

    candidates: list[str] = []
    user_skipped: list[str] = []
    unsupported: list[str] = []
    for name, m in modules.items():
        supported = type(m) in SUPPORTED_LAYERS and torch.is_floating_point(m.weight)
        if skipped(name):
            if supported:
                user_skipped.append(name)
        elif supported:
            candidates.append(name)
        elif _has_own_params(m):
            unsupported.append(name)
    if unsupported:
        warnings.warn(
            f"quantize_model: {len(unsupported)} module(s) with parameters of unsupported types "
            f"are left in float: {_listing(unsupported, modules)}",
            QuantizationWarning,
            stacklevel=2,
        )

    if gptq:  # one float64 Gram matrix (d x d per group) per layer until the conversion ends
        gram_bytes = 0
        for name in candidates:
            m = modules[name]
            groups = int(getattr(m, "groups", 1))
            d = m.weight[0].numel()
            gram_bytes += 8 * groups * d * d
        check_memory(
            gram_bytes,
            f'rounding="gptq" over {len(candidates)} layers (their Gram matrices)',
            fix='use rounding="nearest" or skip= the widest layers',
        )

    # ---- calibration
    need_hist = quantize_activations and method == "mmse"
    need_sample = quantize_activations and method in ("percentile", "aciq", "histogram")
    stats = {
        name: _LayerStats(need_hist, need_sample, modules[name] if gptq else None)
        for name in candidates
    }
    state: dict[str, Any] = {"batch": 0, "gram_src": None}

    def make_hook(name: str) -> Callable[..., None]:
        st = stats[name]

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
            st.calls += 1
            if state["batch"] == 0:
                st.macs_first += layer_macs(mod, tuple(x.shape))
            if st.gram is not None and x.numel() and torch.is_floating_point(x):
                # Linear layers fed the very same tensor (attention's query/key/value
                # projections) share one Gram product
                cached = state["gram_src"]
                linear = type(mod) is nn.Linear
                if (
                    linear
                    and cached is not None
                    and cached[0] is src
                    and cached[1]
                    == (
                        src._version,
                        mod.in_features,
                    )
                ):
                    st.gram.add(*cached[2])
                else:
                    delta = st.gram.batch_gram(x)
                    st.gram.add(*delta)
                    state["gram_src"] = (
                        (src, (src._version, mod.in_features), delta) if linear else None
                    )
            if not quantize_activations or x.numel() == 0:
                return
            st.lo = min(st.lo, float(x.min()))
            st.hi = max(st.hi, float(x.max()))
            if st.hist is not None or st.sample is not None:
                v = x.to(device="cpu", dtype=torch.float32).reshape(-1).numpy()
                if st.hist is not None:
                    st.hist.update(v)
                if st.sample is not None:
                    st.sample.update(v)

        return hook

    handles = [
        modules[name].register_forward_pre_hook(make_hook(name), with_kwargs=True)
        for name in candidates
    ]
    total = len(calib_data) if isinstance(calib_data, Sequence) else None
    if isinstance(calib_data, torch.Tensor):
        total = math.ceil(calib_data.shape[0] / CALIB_BATCH_SIZE) if calib_data.dim() else None
    device = _model_device(qmodel)
    first_samples = 1
    try:
        with torch.no_grad():
            for i, (args, kwargs) in enumerate(_batches(calib_data)):
                state["batch"] = i
                args = tuple(_to(a, device) for a in args)
                kwargs = {k: _to(v, device) for k, v in kwargs.items()}
                tensors = _tensors([args, kwargs])
                for t in tensors:
                    if torch.is_floating_point(t) and not bool(torch.isfinite(t).all()):
                        raise InvalidInputError(
                            f"calib_data batch {i} contains NaN or inf; clean the input"
                        )
                if i == 0 and tensors and tensors[0].dim():
                    first_samples = max(int(tensors[0].shape[0]), 1)
                try:
                    qmodel(*args, **kwargs)
                except FrugalError:
                    raise
                except Exception as exc:
                    shapes = ", ".join(
                        [_describe(a) for a in args]
                        + [f"{k}={_describe(v)}" for k, v in kwargs.items()]
                    )
                    raise InvalidInputError(
                        f"the model failed on calibration batch {i} ({type(exc).__name__}: "
                        f"{' '.join(str(exc).split())[:300]}); it was called as model({shapes}). "
                        "calib_data must be what the model accepts: a tensor (model(x)), a dict "
                        "of tensors (model(**d), e.g. a tokenizer's input_ids and attention_mask) "
                        "or an iterable of tensors, tuples or dicts"
                    ) from exc
                state["batch"] = i + 1
                say(f"calibration batch {i + 1}", 0.5 * (i + 1) / total if total else 0.0)
    finally:
        for h in handles:
            h.remove()
        state["gram_src"] = None
    n_batches = state["batch"]
    if n_batches == 0:
        raise InvalidInputError("calib_data is empty; give at least one calibration batch")

    not_called = [name for name in candidates if stats[name].calls == 0]
    if not_called:
        warnings.warn(
            f"quantize_model: {len(not_called)} layer(s) were never called during calibration "
            f"(their parent reads .weight directly, or they are unused) and are left in float: "
            f"{_listing(not_called, modules)}",
            QuantizationWarning,
            stacklevel=2,
        )
    layers = [name for name in candidates if stats[name].calls > 0]

    # ---- weights (first level) and per-kernel relative errors
    w_method = "minmax" if method == "histogram" else method
    w_results: dict[str, ScaleResult] = {}
    w_codes: dict[str, np.ndarray] = {}  # error-compensated codes (out, -1), rounding="gptq"
    gptq_info: dict[str, _GptqLayer] = {}
    rel_by_layer: dict[str, np.ndarray] = {}  # relative weight error per kernel
    macs: dict[str, float] = {}
    for j, name in enumerate(layers):
        m = modules[name]
        W = m.weight.detach().to(device="cpu", dtype=torch.float64).numpy()
        W2 = W.reshape(W.shape[0], -1)
        res = SCALE_METHODS[w_method](W2, w_bits, signed=True, per_channel=True)
        if gptq:
            info = _gptq_weights(W2, res, stats[name].gram)
            gptq_info[name] = info
            res = info.result
            w_codes[name] = info.codes
        w_results[name] = res
        deq = quantize_layer(m, res, codes=w_codes.get(name)).dequantized_weight(torch.float64)
        err = ((W - deq.cpu().numpy()) ** 2).reshape(W.shape[0], -1).sum(axis=1)
        norm = (W2**2).sum(axis=1)
        rel_by_layer[name] = np.where(norm > 0, err / np.where(norm > 0, norm, 1.0), 0.0)
        macs[name] = stats[name].macs_first / first_samples
        say(f"weights {name}", 0.5 + 0.25 * (j + 1) / max(len(layers), 1))

    masks: dict[str, np.ndarray] = {}
    if layers and (residual is not None or residual_mse is not None):
        per_kernel = {
            name: max(round(macs[name] / modules[name].weight.shape[0]), 1) for name in layers
        }
        plan = select_residual(
            rel_by_layer, per_kernel, fraction=residual, mse_threshold=residual_mse
        )
        masks = {name: np.asarray(mk, dtype=bool) for name, mk in plan.masks.items()}

    # ---- activations, layer swap, report
    reports: list[LayerReport] = []
    replacement: dict[int, QuantizedLayer] = {}
    for j, name in enumerate(layers):
        m = modules[name]
        st = stats[name]
        a_res: ScaleResult | None = None
        if quantize_activations:
            signed = st.lo < 0
            if method == "mmse":
                a_res = mmse_from_histogram(st.hist, a_bits)
            elif method == "minmax":
                a_res = SCALE_METHODS["minmax"](
                    np.array([st.lo, st.hi]), a_bits, signed=signed, per_channel=False
                )
            else:
                a_res = SCALE_METHODS[method](
                    st.sample.values.astype(np.float64), a_bits, signed=signed, per_channel=False
                )
        mask = masks.get(name)
        W = m.weight.detach().to(device="cpu", dtype=torch.float64).numpy()
        fit = None
        if gptq and mask is not None and mask.any():
            fit = _gptq_residual(
                W.reshape(W.shape[0], -1), mask, gptq_info[name], stats[name].gram, w_method
            )
        q = quantize_layer(
            m,
            w_results[name],
            a_res,
            mask,
            residual_method=w_method,
            codes=w_codes.get(name),
            residual_fit=fit,
        )
        q.train(m.training)
        replacement[id(m)] = q
        deq = q.dequantized_weight(torch.float64).cpu().numpy()
        out_err = out_err_nearest = None
        if gptq:
            info = gptq_info[name]
            out_err_nearest = info.out_err_nearest
            out_err = info.out_err
            if fit is not None:
                out_err = _output_rel_err(
                    W.reshape(W.shape[0], -1), deq.reshape(W.shape[0], -1), stats[name].gram
                )
        sq = float(((W - deq) ** 2).sum())
        norm = float((W**2).sum())
        base_sq = float(rel_by_layer[name] @ (W.reshape(W.shape[0], -1) ** 2).sum(axis=1))
        n_res = q.n_residual
        reports.append(
            LayerReport(
                name=name,
                kind=type(m).__name__,
                weight_shape=tuple(W.shape),
                w_bits=w_bits,
                a_bits=a_bits if a_res is not None else None,
                weight_mse=sq / W.size,
                weight_rel_mse=sq / norm if norm > 0 else 0.0,
                base_weight_mse=base_sq / W.size,
                kernels=W.shape[0],
                residual_kernels=n_res,
                macs=macs[name],
                extra_macs=macs[name] * n_res / W.shape[0],
                a_scale=None if a_res is None else float(q.a_scale),
                a_zero_point=None if a_res is None else int(q.a_zero_point),
                a_signed=None if a_res is None else bool(q.a_grid.signed),
                a_mse=None if a_res is None else float(np.asarray(a_res.mse).reshape(-1)[0]),
                rounding=rounding,
                output_rel_err=out_err,
                output_rel_err_nearest=out_err_nearest,
            )
        )
        st.gram = None  # free the Gram matrix (d^2 float64 per group)
        say(f"layer {name}", 0.75 + 0.25 * (j + 1) / max(len(layers), 1))

    if id(qmodel) in replacement:  # the model itself is a single supported layer
        qmodel = replacement[id(qmodel)]
    else:
        for parent in qmodel.modules():
            for child_name, child in list(parent._modules.items()):
                if child is not None and id(child) in replacement:
                    parent._modules[child_name] = replacement[id(child)]

    if act_residual is not None and reports:
        say("input residuals", 1.0)
        reports = _input_residuals(
            qmodel,
            calib_data,
            device,
            reports,
            {name: replacement[id(modules[name])] for name in layers},
            a_bits,
            act_residual,
        )

    left_float = tuple(n for n in modules if n in set(user_skipped + unsupported + not_called))
    return QuantizationReport(
        model=qmodel,
        layers=tuple(reports),
        skipped=left_float,
        extra_macs=float(sum(r.extra_macs for r in reports)),
        total_macs=float(sum(r.macs for r in reports)),
        seconds=time.perf_counter() - t0,
        method=method,
        w_bits=w_bits,
        a_bits=a_bits if quantize_activations else None,
        unsupported=tuple(unsupported),
        not_called=tuple(not_called),
        calib_batches=n_batches,
        rounding=rounding,
    )
