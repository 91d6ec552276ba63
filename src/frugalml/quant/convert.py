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
   shapes of the first calibration batch.
3. **Weights.** Per output channel ("kernel"), on a signed symmetric ``w_bits`` grid, with
   ``SCALE_METHODS[method](W, w_bits, signed=True, per_channel=True)`` (``W`` reshaped to
   ``(out, -1)``). ``method="histogram"`` stands for PyTorch's default static recipe: the
   ``HistogramObserver`` for activations and per-channel min-max for weights (the observer is
   per tensor only).
4. **Residual (optional).** The relative quantization error of every kernel,
   ``||W_k - Q(W_k)||^2 / ||W_k||^2``, is ranked across all layers by
   :func:`~frugalml.quant.residual.select_residual`, and the worst kernels (a ``residual``
   fraction of all kernels, or all kernels above ``residual_mse``) get a second low-bit tensor
   fitted to their residual (paper, Sec. 3.3). Each costs one extra pass over that kernel's
   MACs; the report gives the extra MACs relative to the total.
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
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .._optional import require
from .._validate import check_choice, check_nonnegative_float, check_probability
from ..errors import InvalidInputError

require("torch", what="frugalml.quant.quantize_model", extra="quant")

import torch  # noqa: E402
from torch import nn  # noqa: E402

from .baselines import SCALE_METHODS  # noqa: E402
from .calibrate import ActivationHistogram, mmse_from_histogram  # noqa: E402
from .mmse import ScaleResult  # noqa: E402
from .modules import SUPPORTED_LAYERS, QuantizedLayer, layer_macs, quantize_layer  # noqa: E402
from .residual import select_residual  # noqa: E402
from .uniform import check_bits  # noqa: E402

__all__ = [
    "CALIB_BATCH_SIZE",
    "LayerReport",
    "QuantizationReport",
    "QuantizationWarning",
    "quantize_model",
]

CALIB_BATCH_SIZE = 64
"""Batch size used when ``calib_data`` is a single tensor (or a single dict of tensors)."""

_SAMPLE_CAP = 1 << 18  # values kept per layer for the sample-based activation baselines


class QuantizationWarning(UserWarning):
    """Something in the model was left in float, or the model's mode was changed."""


@dataclass(frozen=True)
class LayerReport:
    """What :func:`quantize_model` did to one layer.

    ``weight_mse`` / ``weight_rel_mse``: mean squared error and relative squared error
    ``||W - W_q||^2 / ||W||^2`` of the dequantized weight (residual included);
    ``base_weight_mse``: the same MSE without the residual tensors; ``kernels``: output
    channels; ``residual_kernels``: kernels with a second tensor; ``macs`` / ``extra_macs``:
    multiply-accumulates per calibration sample (the leading dimension of the first tensor of
    the first calibration batch, looking inside tuples and dicts) of the layer and of its
    residual pass; ``a_scale``, ``a_zero_point``, ``a_signed``, ``a_mse``: the input's grid and
    the calibration estimate of its quantization MSE (``None`` without activation
    quantization).
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

    def summary(self) -> str:
        if self.a_bits is None:
            act = "float input"
        else:
            kind = "signed" if self.a_signed else "unsigned"
            zp = f" zp {self.a_zero_point}" if self.a_zero_point else ""
            act = f"A{self.a_bits} {kind} scale {self.a_scale:.4g}{zp}"
        res = f", residual {self.residual_kernels}/{self.kernels}" if self.residual_kernels else ""
        return (
            f"{self.name} ({self.kind} {tuple(self.weight_shape)}): W{self.w_bits} rel MSE "
            f"{self.weight_rel_mse:.3e}{res}; {act}; {self.macs:.4g} MACs"
        )


@dataclass(frozen=True)
class QuantizationReport:
    """Result of :func:`quantize_model`.

    ``model``: the quantized copy; ``layers``: one :class:`LayerReport` per quantized layer in
    model order; ``skipped``: names of the modules left in float (``skip``, unsupported types
    with parameters, never called), also split into ``unsupported`` and ``not_called``;
    ``extra_macs`` / ``total_macs``: residual MACs and MACs of the quantized layers per
    calibration sample; ``seconds``: wall time of the whole conversion.
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

    @property
    def extra_mac_fraction(self) -> float:
        """``extra_macs / total_macs`` (0 when there are no MACs)."""
        return self.extra_macs / self.total_macs if self.total_macs else 0.0

    def summary(self) -> str:
        act = "float activations" if self.a_bits is None else f"A{self.a_bits}"
        res = sum(lay.residual_kernels for lay in self.layers)
        head = (
            f"quantize_model ({self.method}, W{self.w_bits} {act}): {len(self.layers)} layers "
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
    def __init__(self, hist: bool, sample: bool) -> None:
        self.calls = 0
        self.macs_first = 0
        self.lo = math.inf
        self.hi = -math.inf
        self.hist = ActivationHistogram() if hist else None
        self.sample = _Sample(_SAMPLE_CAP) if sample else None


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


# ---------------------------------------------------------------------------------- public
def quantize_model(
    model: nn.Module,
    calib_data: Any,
    *,
    w_bits: int = 4,
    a_bits: int = 8,
    method: str = "mmse",
    residual: float | None = None,
    residual_mse: float | None = None,
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
    residual:
        fraction in (0, 1] of all kernels (across layers) that get a second low-bit tensor,
        the worst-quantized first; or
    residual_mse:
        give every kernel whose relative weight MSE exceeds this threshold a second tensor.
    quantize_activations:
        ``False`` quantizes weights only (``a_bits`` is then ignored but still validated).
    skip:
        module names to leave in float (a name also covers the modules under it).
    progress:
        ``progress(step, fraction)`` callback, fraction in [0, 1].

    Returns a :class:`QuantizationReport`. Cost: one forward pass over ``calib_data`` plus
    the scale searches (linear in the number of weights and calibration values). Raises
    :class:`~frugalml.errors.InvalidInputError` for bad arguments, empty calibration data or
    NaN/inf in the calibration inputs or in the activations they produce; warns
    (:class:`QuantizationWarning`) about layers left in float and about a model in training
    mode.
    """
    t0 = time.perf_counter()
    if not isinstance(model, nn.Module):
        raise InvalidInputError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    w_bits = _check_bits(w_bits, "w_bits")
    a_bits = _check_bits(a_bits, "a_bits")
    check_choice(method, "method", SCALE_METHODS)
    if residual is not None:
        residual = check_probability(residual, "residual")
        if residual == 0:
            raise InvalidInputError("residual must be a fraction in (0, 1], or None for none")
    if residual_mse is not None:
        residual_mse = check_nonnegative_float(residual_mse, "residual_mse")
    if residual is not None and residual_mse is not None:
        raise InvalidInputError("give residual (a fraction of kernels) or residual_mse, not both")
    if not isinstance(quantize_activations, bool):
        raise InvalidInputError(
            f"quantize_activations must be True or False, got {quantize_activations!r}"
        )
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

    # ---- calibration
    need_hist = quantize_activations and method == "mmse"
    need_sample = quantize_activations and method in ("percentile", "aciq", "histogram")
    stats = {name: _LayerStats(need_hist, need_sample) for name in candidates}
    state = {"batch": 0}

    def make_hook(name: str) -> Callable[..., None]:
        st = stats[name]

        def hook(mod: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
            x = args[0] if args else kwargs.get("input")
            if not isinstance(x, torch.Tensor):
                return
            x = x.detach()
            if not bool(torch.isfinite(x).all()):
                raise InvalidInputError(
                    f"NaN or inf reached the input of layer {name!r} during calibration "
                    f"(batch {state['batch']}); check the model and calib_data"
                )
            st.calls += 1
            if state["batch"] == 0:
                st.macs_first += layer_macs(mod, tuple(x.shape))
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
                qmodel(*args, **kwargs)
                state["batch"] = i + 1
                say(f"calibration batch {i + 1}", 0.5 * (i + 1) / total if total else 0.0)
    finally:
        for h in handles:
            h.remove()
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
    rel_by_layer: dict[str, np.ndarray] = {}
    macs: dict[str, float] = {}
    for j, name in enumerate(layers):
        m = modules[name]
        W = m.weight.detach().to(device="cpu", dtype=torch.float64).numpy()
        W2 = W.reshape(W.shape[0], -1)
        res = SCALE_METHODS[w_method](W2, w_bits, signed=True, per_channel=True)
        w_results[name] = res
        deq = quantize_layer(m, res).dequantized_weight(torch.float64).cpu().numpy()
        err = ((W - deq) ** 2).reshape(W.shape[0], -1).sum(axis=1)
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
        q = quantize_layer(m, w_results[name], a_res, mask, residual_method=w_method)
        q.train(m.training)
        replacement[id(m)] = q
        W = m.weight.detach().to(device="cpu", dtype=torch.float64).numpy()
        deq = q.dequantized_weight(torch.float64).cpu().numpy()
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
            )
        )
        say(f"layer {name}", 0.75 + 0.25 * (j + 1) / max(len(layers), 1))

    if id(qmodel) in replacement:  # the model itself is a single supported layer
        qmodel = replacement[id(qmodel)]
    else:
        for parent in qmodel.modules():
            for child_name, child in list(parent._modules.items()):
                if child is not None and id(child) in replacement:
                    parent._modules[child_name] = replacement[id(child)]

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
    )
